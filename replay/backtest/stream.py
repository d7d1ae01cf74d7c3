"""How a configuration is applied: as input events, so the engine stays the one code path.

`Rewriter` turns each block of the log's input into the block a configuration replays, in the
log's order, deterministically (it reads nothing but the events):

- the configuration's `rules` event goes before the log's first event, and again right after
  each `rules` event the log holds (so the log's own rule changes still happen, but the
  parameters the configuration sets keep its values);
- `market` events get the configuration's tiers for the coins it names, and every tier's
  leverage is capped at its `max_leverage`;
- the margin model: for `accounts` "all" or a list, a `set_mode` to the model is injected at
  each account's first appearance (right after it, or right before it when that event is a
  trade, which would open a position a switch must not find); for "portfolio", the log's own
  `set_mode` to portfolio margin is rewritten to the model, in place. An account's logged
  `set_mode` events are rewritten to the model when they name a mode other than standard, and
  dropped when they would set the mode the account already has in the replayed stream.

Injected events carry the time of the event they sit next to and no source id. A block nothing
touches is returned as it is (the `as-logged` configuration touches none), so its stored bytes
and the input chain are the log's own.

`state_events` applies a configuration to a state instead of a stream (a stress run's
population): the same `rules` event, the listed markets re-listed with the configuration's
tiers, and a `set_mode` per account in scope, all at the state's event time. The engine judges
each; a switch it refuses (an account with open positions) leaves that account in its mode.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from clearinghouse.engine import SYSTEM_ACCOUNTS
from clearinghouse.state import State
from events import schema as ev
from replay.backtest.config import Plan

STANDARD = "standard"
PORTFOLIO = "portfolio"


def _names(*fields: str) -> Callable[[ev.InputEvent], tuple[str, ...]]:
    return lambda e: tuple(getattr(e, f) for f in fields)


_one = _names("account")
_two = _names("buyer", "seller")
# The accounts an input event names, by event type (the others name none).
ACCOUNTS_OF: dict[type, Callable[[ev.InputEvent], tuple[str, ...]]] = {
    ev.Deposit: _one,
    ev.Withdraw: _one,
    ev.Transfer: _names("from_", "to"),
    ev.SetLeverage: _one,
    ev.IsolatedMargin: _one,
    ev.Trade: _two,
    ev.ImportAccount: _one,
    ev.SpotTrade: _two,
    ev.ClassTransfer: _one,
    ev.SetMode: _one,
    ev.Supply: _one,
    ev.WithdrawSupply: _one,
    ev.Borrow: _one,
    ev.Repay: _one,
}
OPENS_POSITIONS = (ev.Trade, ev.SpotTrade, ev.ImportAccount)  # the switch goes before these


class Rewriter:
    """The configuration's input stream, block by block (see the module's doc)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.started = False
        self.seen: set[str] = set()
        self.modes: dict[str, str] = {}  # account -> the mode the replayed stream last set
        model = plan.model
        self.inject_modes = model is not None and plan.accounts != PORTFOLIO
        self.scope: Callable[[str], bool] = (
            (lambda name: True) if plan.accounts in ("all", PORTFOLIO) else plan.accounts.__contains__  # type: ignore[union-attr]
        )

    def block(self, events: list[ev.InputEvent]) -> list[ev.InputEvent]:
        """The replayed block for one logged block (the same list when nothing changes)."""
        plan = self.plan
        if plan.keeps_input:
            return events
        out: list[ev.InputEvent] = []
        if not self.started and events:
            self.started = True
            if plan.rules is not None:
                out.append(msgspec.structs.replace(plan.rules, ts=events[0].ts))
        for event in events:
            kind = type(event)
            after: list[ev.InputEvent] = []
            if self.inject_modes:
                names = ACCOUNTS_OF.get(kind)
                if names is not None:
                    for name in names(event):
                        if name not in self.seen:
                            self.seen.add(name)
                            switch = self._first(name, event.ts)
                            if switch is not None:
                                (out if kind in OPENS_POSITIONS else after).append(switch)
            if kind is ev.SetMode:
                event = self._set_mode(event)  # type: ignore[arg-type]
                if event is None:
                    out.extend(after)
                    continue
            elif kind is ev.Market:
                event = self._market(event)  # type: ignore[arg-type]
            elif kind is ev.Rules and plan.rules is not None:
                after.insert(0, msgspec.structs.replace(plan.rules, ts=event.ts))
            out.append(event)
            out.extend(after)
        return out

    def _first(self, name: str, ts: int | None) -> ev.SetMode | None:
        """The switch injected at an account's first appearance (none to the standard model, every
        account's first)."""
        model = self.plan.model
        if model is None or model == STANDARD or not self.scope(name):
            return None
        self.modes[name] = model
        return ev.SetMode(ts=ts, account=name, mode=model)

    def _set_mode(self, event: ev.SetMode) -> ev.SetMode | None:
        """A logged switch as replayed: rewritten to the model, or dropped when it would set the
        mode the account already has."""
        model, mode = self.plan.model, event.mode
        if model is None or not self.scope(event.account):
            return event
        if mode != STANDARD and (self.plan.accounts != PORTFOLIO or mode == PORTFOLIO):
            mode = model
        if mode == self.modes.get(event.account, STANDARD):
            return None
        self.modes[event.account] = mode
        return event if mode == event.mode else msgspec.structs.replace(event, mode=mode)

    def _market(self, event: ev.Market) -> ev.Market:
        return relisted(self.plan, event)


def relisted(plan: Plan, event: ev.Market) -> ev.Market:
    """A listing with the configuration's tiers and leverage cap (the same event when neither
    changes it)."""
    tiers = (plan.tiers or {}).get(event.coin, event.margin_tiers)
    cap = plan.max_leverage
    if cap is not None:
        tiers = [t if t.max_leverage <= cap else ev.MarginTier(t.lower_bound, cap) for t in tiers]
    return event if tiers == event.margin_tiers else msgspec.structs.replace(event, margin_tiers=tiers)


def state_events(plan: Plan, state: State) -> list[ev.InputEvent]:
    """The input events that apply `plan` to `state` (see the module's doc), at its event time:
    the `rules` event; a `market` event for each listed market whose tiers the configuration
    changes (coins it names that are not listed are left out, as a log that never lists them);
    a `set_mode` to the model for each account in scope not already in it, in account order
    (accounts named in a list are switched whether or not the state holds them, so the engine
    names the ones it does not know)."""
    ts = state.time
    out: list[ev.InputEvent] = []
    if plan.rules is not None:
        out.append(msgspec.structs.replace(plan.rules, ts=ts))
    for coin in sorted(state.markets):
        market = state.markets[coin]
        tiers = [ev.MarginTier(t.lower_bound, t.max_leverage) for t in market.table.tiers]
        listing = ev.Market(
            ts=ts, coin=coin, sz_decimals=market.sz_decimals, margin_tiers=tiers, only_isolated=market.only_isolated
        )
        changed = relisted(plan, listing)
        if changed is not listing:
            out.append(changed)
    model = plan.model
    if model is None:
        return out
    mode_of = {name: spot.mode for name, spot in state.spot.items()}
    if plan.accounts == "all":
        names = sorted(set(state.accounts) - SYSTEM_ACCOUNTS)
    elif plan.accounts == PORTFOLIO:
        names = sorted(name for name, mode in mode_of.items() if mode == PORTFOLIO)
    else:
        names = sorted(plan.accounts)
    held = state.accounts
    out += [
        ev.SetMode(ts=ts, account=n, mode=model) for n in names if n not in held or mode_of.get(n, STANDARD) != model
    ]
    return out
