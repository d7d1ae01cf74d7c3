"""Why was this account liquidated: every liquidation of it, explained from the log.

A replay from the first event records the account's equity and maintenance margin whenever
something that moves them happens (its own events, ticks and funding of coins it holds,
decisions about it) and groups the decisions by the input event that caused them: the trigger, the marks, equity
against maintenance before and after, what was closed at what price, what the account kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearinghouse.liquidation import scopes
from clearinghouse.runner import LogDir, Position, settings
from clearinghouse.state import State
from clearinghouse.units import PX_DECIMALS, USD_DECIMALS, format_decimal
from events import schema as ev
from events.codec import to_wire
from replay.decisions import OnEvent, Point, replay

DECISIONS = (ev.LiquidationTriggered, ev.LiquidationFill, ev.LiquidationOrder, ev.Backstop, ev.Adl, ev.BadDebt, ev.BorrowLiquidation)


@dataclass
class Episode:
    cause: int
    trigger: dict[str, Any]  # the input event, wire form
    time: int
    marks: dict[str, str]
    before: dict[str, str] = field(default_factory=dict)  # equity / maintenance per scope, as found
    after: dict[str, str] = field(default_factory=dict)  # equity / maintenance once the event was done
    actions: list[dict[str, Any]] = field(default_factory=list)
    kept: str = "0.0"  # the account's whole value after


@dataclass
class Audit:
    account: str
    series: list[tuple[int, int, int, int]] = field(default_factory=list)  # (seq, ts, equity, maintenance)
    episodes: list[Episode] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "liquidations": [episode.__dict__ for episode in self.episodes],
            "series": [
                {"seq": s, "ts": t, "equity": format_decimal(e, USD_DECIMALS), "maintenance": format_decimal(m, USD_DECIMALS)}
                for s, t, e, m in self.series
            ],
        }


def _concerns(event: Any, name: str, coins: set[str]) -> bool:
    """Whether an input event can move the account's equity or maintenance."""
    kind = type(event)
    if kind is ev.Prices:
        return not coins.isdisjoint(event.prices)
    if kind is ev.Funding or kind is ev.Market:
        return event.coin in coins
    if kind is ev.Trade:
        return name in (event.buyer, event.seller)
    if kind is ev.Transfer:
        return name in (event.from_, event.to)
    return getattr(event, "account", None) == name


def _about(decision: Any, name: str) -> bool:
    return isinstance(decision, DECISIONS) and (decision.account == name or getattr(decision, "counterparty", None) == name)


def _figures(state: State, name: str) -> tuple[int, int]:
    """Whole-account equity and maintenance (cross plus isolated)."""
    account = state.accounts[name]
    found = scopes(account, state.markets)
    return sum(s.equity for s in found), sum(s.maintenance for s in found)


def _scopes_view(state: State, name: str) -> dict[str, str]:
    view = {}
    for scope in scopes(state.accounts[name], state.markets):
        if scope.maintenance or scope.equity:
            view[scope.name] = f"equity {format_decimal(scope.equity, USD_DECIMALS)} / maintenance {format_decimal(scope.maintenance, USD_DECIMALS)}"
    return view


def audit(log: LogDir, name: str) -> Audit:
    """A replay from the first event, guided by the recorded decisions (`replay.decisions`)."""
    result = Audit(name)
    replay(log, lambda: Position(State(liquidation=settings(log).liquidation)), Point(), lambda state: _watcher(result, state))
    return result


def _watcher(result: Audit, state: State) -> OnEvent:
    """Records what `audit` shows, from the start (an attempt that falls back starts over)."""
    result.series.clear()
    result.episodes.clear()
    name = result.account

    def on_event(seq: int, event: Any, derived: list[Any]) -> None:
        account = state.accounts.get(name)
        if account is None:
            return
        mine = [d for d in derived if _about(d, name)]
        coins = {c for c, p in account.positions.items() if p.szi}
        if mine or _concerns(event, name, coins | {d.coin for d in mine if hasattr(d, "coin")}):
            equity, maintenance = _figures(state, name)
            result.series.append((seq, state.time, equity, maintenance))
        if not mine:
            return
        episode = Episode(cause=seq, trigger=to_wire(event), time=state.time, marks={})
        for decision in mine:
            if isinstance(decision, ev.LiquidationTriggered) and decision.account == name:
                episode.before[decision.scope] = (
                    f"equity {format_decimal(decision.equity, USD_DECIMALS)} / maintenance {format_decimal(decision.maintenance, USD_DECIMALS)} ({decision.phase})"
                )
                for p in decision.positions:
                    episode.marks[p.coin] = format_decimal(p.mark, PX_DECIMALS)
            else:
                if isinstance(decision, ev.BorrowLiquidation):
                    episode.before["borrow"] = (
                        f"borrowed {format_decimal(decision.borrowed, USD_DECIMALS)} / threshold {format_decimal(decision.threshold, USD_DECIMALS)} ({decision.kind})"
                    )
                episode.actions.append(to_wire(decision))
        episode.after = _scopes_view(state, name)
        equity, _ = _figures(state, name)
        episode.kept = format_decimal(equity, USD_DECIMALS)
        result.episodes.append(episode)

    return on_event
