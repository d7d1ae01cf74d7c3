"""The engine: `apply(event)` folds one input event into the state and returns derived events.

Single-threaded and pure (LMAX's business logic processor): no I/O, no clock, no randomness.
Every handler validates completely before it mutates, so a rejected event leaves the state as it
was (apart from the sequence number and event time, which count every event of the log).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any

from clearinghouse import (
    account_modes,
    cash,
    lending,
    lending_actions,
    perp_accounts,
    perps,
    portfolio,
    rule_changes,
    spot_trading,
    venue_records,
)
from clearinghouse.checks import AccountChecks, FullScanChecks, GuidedChecks, IndexedChecks
from clearinghouse.context import Context
from clearinghouse.errors import Reject
from clearinghouse.holders import Holders, ScanHolders
from clearinghouse.liquidation import Liquidations, healthy, settings_error
from clearinghouse.liquidator import LIQUIDATOR
from clearinghouse.perp_accounts import IMPORT_ACCOUNT
from clearinghouse.pm_triggers import PmBands
from clearinghouse.rules import RuleSet
from clearinghouse.scopes import below_maintenance
from clearinghouse.state import State
from clearinghouse.triggers import FullScan, TriggerIndex
from events import schema as ev
from events.bounds import MAX_JUMP_HOURS, MAX_TS
from events.units import HOUR_MS

SYSTEM_ACCOUNTS = frozenset({IMPORT_ACCOUNT, LIQUIDATOR})  # never liquidated
DEDUP_WINDOW = 100_000  # how many recent source ids are remembered for de-duplication


class Engine:
    """`full_scan` selects the reference trigger mode (every account checked on every tick);
    both modes make the same decisions.

    `guide` replaces both with the decisions a log already records, for reading history: input
    seq -> the accounts its derived events name. After each event only those accounts (and the
    watch list) are checked, in the same rounds, so a replay of the same log under the same
    settings decides exactly as the indexed run did: the index found every account below
    maintenance, each of those is named, and checking one found healthy changes nothing that
    the watch list does not already cover. The trigger index is never built. A guide that does
    not come from the log (tampered, other settings) can mislead it: readers compare the
    decisions it makes with the recorded ones (`replay.decisions`)."""

    def __init__(
        self,
        state: State | None = None,
        *,
        full_scan: bool = False,
        guide: Mapping[int, Collection[str]] | None = None,
    ) -> None:
        self.state = state if state is not None else State()
        problem = settings_error(self.state.liquidation)
        if problem:
            raise ValueError(problem)
        self._liquidating = self.state.liquidation.mode != "off"
        self._guide = guide
        self._indexed = self._liquidating and guide is None  # the trigger index and bands are kept
        self.triggers: TriggerIndex | FullScan = FullScan() if full_scan else TriggerIndex()
        # Each account's margin model, chosen from its mode (`ctx.models`). Accounts of a banded
        # model (unified, portfolio) stay out of the trigger index (its keys are for standard
        # maintenance): their own price and funding bands (`pm_triggers`) pick those a tick may
        # have made liquidatable; the full scan checks all those exposed to the coin.
        self.ctx = ctx = Context(self.state, self._liquidating, self._indexed)
        self.models = ctx.models
        self.pm_bands: PmBands | None = None if full_scan else PmBands()
        self.checks: AccountChecks  # which accounts to check after each event
        if guide is not None:
            self.checks = GuidedChecks(ctx, guide)
        elif isinstance(self.triggers, FullScan):
            self.checks = FullScanChecks(ctx, self.triggers)
        else:
            self.checks = IndexedChecks(ctx, self.triggers, self.pm_bands)
        ctx.checks = self.checks
        self._unbuilt = self._indexed  # built by the first `apply`: a resume with nothing to apply skips it
        self._derived: list[ev.DerivedEvent] = []
        # ADL's counterparties per coin: kept as positions open (`ctx.holders`); the full scan's twin scans
        ctx.holders = ScanHolders(self.state) if full_scan else Holders(self.state)
        self.liquidations = Liquidations(self.state, self._derived.append, ctx.holders)
        # each event type's handler, in the module of its rule, with the context bound
        handlers: dict[type, Callable[[Context, Any], None]] = {
            ev.Market: perp_accounts.list_market,
            ev.Deposit: cash.deposit,
            ev.Withdraw: cash.withdraw,
            ev.Transfer: cash.transfer,
            ev.SetLeverage: perp_accounts.set_leverage,
            ev.IsolatedMargin: perp_accounts.isolated_margin,
            ev.Prices: perps.prices,
            ev.Trade: perps.trade,
            ev.Funding: perps.funding,
            ev.Rules: rule_changes.change_rules,
            ev.ImportAccount: perp_accounts.import_account,
            ev.Token: spot_trading.list_token,
            ev.SpotTrade: spot_trading.spot_trade,
            ev.ClassTransfer: cash.class_transfer,
            ev.SetMode: account_modes.set_mode,
            ev.Supply: lending_actions.supply,
            ev.WithdrawSupply: lending_actions.withdraw_supply,
            ev.Borrow: lending_actions.borrow,
            ev.Repay: lending_actions.repay,
            ev.LiquidationRecord: venue_records.liquidation_record,
        }
        self._handlers: dict[type, Callable[[Any], None]] = {kind: partial(h, ctx) for kind, h in handlers.items()}

    @property
    def rules(self) -> RuleSet:
        """The perp rule set in force (a `rules` event may change it)."""
        return self.ctx.rules

    # ---- the fold ---------------------------------------------------------------------------

    def apply(self, event: ev.InputEvent) -> list[ev.DerivedEvent]:
        """Folds one input event into the state: event time and the pools' hourly interest, the
        event's handler (a `Reject` refuses the event and leaves the state as it was), then the
        liquidation checks of the accounts the event may have lowered. Returns the derived
        events, in order."""
        if self._unbuilt:  # keys are taken from the state before the first event, as after a load
            self._unbuilt = False
            self.checks.build(SYSTEM_ACCOUNTS)
        state, ctx = self.state, self.ctx
        seq = state.next_seq
        state.next_seq = seq + 1
        ts = event.ts
        if ts is not None and ts > state.time:
            if ts > ctx.latest:
                return [ev.Rejected(seq=seq, reason=self._time_error(ts), event=ev.event_type(event))]
            state.time = ts
        if state.time >= ctx.accrue_at:
            self._accrue()
        source_id = event.id
        checked: ev.InputEvent | None = event
        try:
            if source_id is not None and source_id in state.recent_ids:
                first = state.recent_ids[source_id]
                raise Reject(f"duplicate id {source_id!r} (first applied at seq {first})")
            self._handlers[type(event)](event)
        except Reject as exc:
            rejected = ev.Rejected(seq=seq, reason=str(exc), event=ev.event_type(event), ts=ts)
            if not (self.ctx.accrued and self._liquidating):
                return [rejected]
            # The hour's interest accrued before the event was refused: its checks are due now,
            # not at the next event (an engine rebuilt from this state would never make them).
            self._derived.append(rejected)
            checked = None
        else:
            if source_id is not None:
                self._remember(source_id, seq)
        if self._liquidating:
            self._check_triggers(checked, seq)
        if not self._derived:
            return []
        derived = self._derived[:]
        self._derived.clear()
        return derived

    def _time_error(self, ts: int) -> str:
        """The reason for refusing `ts` (it is past `_latest`)."""
        if self.ctx.latest == MAX_TS:
            return f"ts {ts} is past the latest event time {MAX_TS}"
        return f"ts {ts} is more than {MAX_JUMP_HOURS} hours past the event time {self.state.time}"

    def _accrue(self) -> None:
        """Interest for every hour boundary event time has passed, then the settlement of the PM
        accounts whose USDC moved (before the event applies; it happens whatever the event's
        fate, as time passing does)."""
        state = self.state
        hour = state.time // HOUR_MS
        if any(pool.hour < hour for pool in state.pools.values()):
            rebased = lending.accrue(state.pools, state.pm_rules, hour, state.spot)
            self.ctx.accrued = True
            if rebased and self._liquidating:
                self.ctx.recheck.update(
                    name
                    for name, spot in state.spot.items()
                    if any(t in spot.supplied or t in spot.borrowed for t in rebased)
                )
            if self._indexed:
                self.ctx.settled_since_check.update(state.unswept)
            spots, accounts, settle, settling = state.spot, state.accounts, portfolio.settle, self.ctx.models.settling
            for name in sorted(state.unswept):  # then PM accounts' USDC is settled with the pool
                if name in settling:
                    settle(state, accounts[name], spots[name])
            state.unswept.clear()
        self.ctx.accrue_at = (hour + 1) * HOUR_MS
        self.ctx.latest = self.ctx.time_limit()

    def _remember(self, source_id: str, seq: int) -> None:
        """Keeps the id of an applied event; a rejected one leaves no trace, so its redelivery
        is judged again."""
        seen = self.state.recent_ids
        seen[source_id] = seq
        if len(seen) > DEDUP_WINDOW:
            del seen[next(iter(seen))]

    # ---- liquidation checks ------------------------------------------------------------------

    def _check_triggers(self, event: ev.InputEvent | None, seq: int) -> None:
        """Checks the accounts `self.checks` names exactly, in rounds: each round's accounts
        liquidatable in their model (as found at its start) are liquidated in account-id order,
        at most once per event; the next round looks at what those liquidations moved (impact
        prices, ADL). An account liquidated in the event is re-indexed once, at its end: within
        the event it is never checked again, only watched if a later fill leaves it below."""
        state, checks, liq = self.state, self.checks, self.liquidations
        picked = checks.first(event, seq)
        if picked is None:
            return
        candidates, ticked = picked
        if not candidates and not state.watch:  # most events: nothing to check
            return
        accounts, markets = state.accounts, state.markets
        begun = False  # `liq.begin_event()` before the event's first liquidation
        done: set[str] = set()
        idle: set[str] = set()  # found below, but an earlier liquidation of the round moved them back above
        acted: set[str] = set()  # liquidated in the event: re-indexed at its end
        while True:
            candidates = (candidates | state.watch.keys()) - done - SYSTEM_ACCOUNTS
            if not candidates:
                break
            below = []
            chosen, spots = self.models.chosen, state.spot
            for name in sorted(candidates):
                now = None
                model = chosen.get(name)
                if model is None:  # the standard model, without a call
                    liquidatable = below_maintenance(accounts[name], markets)
                else:
                    account, spot = accounts[name], spots[name]
                    now = model.precheck(state, account, spot)
                    liquidatable = model.liquidatable(state, account, spot, now)
                if liquidatable:
                    below.append(name)
                else:
                    healthy(state, name)
                    checks.checked(name, now, name in ticked)
            if not below:
                break
            if not begun:
                begun = True
                liq.begin_event()
            liq.moved.clear()
            liq.counterparties.clear()
            for name in below:
                made = len(self._derived)
                liq.check(name, self.models.of(name), seq)
                if len(self._derived) == made:  # a later round may check it again: indexed as it is now
                    idle.add(name)
                    checks.acted(name)
                else:
                    idle.discard(name)
                    acted.add(name)
            done.update(below)
            if liq.moved or liq.counterparties:  # fills moved marks (impact) or positions (ADL)
                done -= idle  # never liquidated: a later round may find them again
                idle.clear()
                for name in self._moved_by(done, liq):
                    self._moved_after(name, seq)
            candidates = checks.next_round(liq)
            # those only the round's marks moved (not an ADL counterparty) are re-referenced as after a tick
            ticked = candidates - liq.counterparties
        for name in sorted(acted):
            checks.acted(name)

    def _moved_by(self, names: set[str], liq: Liquidations) -> list[str]:
        """Of `names`, those the round's fills may have moved, in account order: ADL
        counterparties, holders of a coin whose mark an impact fill moved, and banded accounts
        exposed to one. The others' figures are as their last check left them."""
        moved, counterparties, exposed = liq.moved, liq.counterparties, self.ctx.exposed
        accounts, banded = self.state.accounts, self.models.banded

        def touched(name: str) -> bool:
            if name in counterparties:
                return True
            if name in banded:
                return any(name in exposed.get(coin, ()) for coin in moved)
            return any(pos.szi and coin in moved for coin, pos in accounts[name].positions.items())

        return sorted(filter(touched, names))

    def _moved_after(self, name: str, seq: int) -> None:
        """An account liquidated earlier in this event that a later fill may have moved (an
        impact fill's price, an ADL closing its position at the previous mark): not liquidated
        twice in one event, but watched if left below maintenance (the next event liquidates
        it); it is re-indexed on what it holds at the event's end."""
        state = self.state
        if self.models.of(name).liquidatable(state, state.accounts[name], state.spot.get(name)):
            state.watch.setdefault(name, seq)
