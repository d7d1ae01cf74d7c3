"""What one configuration's replay measures, event by event (docs/backtest.md, "Metrics").

`Meter` watches an engine as a replay applies a stream: the derived events (rejections by
reason, liquidations by phase, backstop takeovers, ADL, bad debt, borrow liquidations) and, once
an hour of event time, the requirement: the sum of every account's initial and maintenance
margin in its own model (`models.registry`), the lending pools' utilisation, and per account
its requirement and its exposure (for the hedged and directional split of `compare`). All in
integers; the meter reads the state and never changes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clearinghouse import lending, margin
from clearinghouse.engine import SYSTEM_ACCOUNTS, Engine
from clearinghouse.models.standard import STANDARD
from clearinghouse.state import SpotAccount, State
from events import schema as ev
from events.units import TOKEN_DECIMALS

HOUR_MS = 3_600_000
USDC = "USDC"
SPOT_VALUE_DIV = 10 ** (TOKEN_DECIMALS + 8 - 6)  # 1e-8 token x 1e-8 USDC per token -> micro-USDC
UTILISATION_PPM = 1_000_000
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")  # a number standing alone (not part of a name)
SHORTFALL = "pool holds only"  # the reason of a payment or withdrawal the pool could not make (lent out)


def reason_group(rejected: ev.Rejected) -> str:
    """A rejection's event type and reason with its numbers stripped, so alike ones add up."""
    return f"{rejected.event}: {NUMBER.sub('N', rejected.reason)}"


@dataclass
class Sample:
    """The requirement at one point of event time: the state after the last event before `ts`
    (an hour boundary), or at the end."""

    ts: int
    initial: int
    maintenance: int


@dataclass
class AccountTally:
    """One account over the samples: its requirement summed, and its exposure summed as the
    net (|sum of signed exposures|) and the gross (sum of their sizes)."""

    initial: int = 0
    maintenance: int = 0
    net: int = 0
    gross: int = 0
    end_initial: int = 0
    end_maintenance: int = 0


@dataclass
class Outcome:
    """Everything one configuration's replay measured (plain data: it crosses processes)."""

    samples: list[Sample] = field(default_factory=list)
    accounts: dict[str, AccountTally] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)  # reason group -> count
    rejected_by_type: dict[str, int] = field(default_factory=dict)
    liquidations: int = 0
    by_phase: dict[str, int] = field(default_factory=dict)  # liquidation_triggered by phase
    notional_by_phase: dict[str, int] = field(default_factory=dict)  # market fills, backstop takeovers
    liquidation_hours: dict[int, int] = field(default_factory=dict)  # hour start (ms) -> liquidations
    orders: int = 0  # external mode: orders sent to the book
    backstops: int = 0
    adl: int = 0
    adl_notional: int = 0
    bad_debt_events: int = 0
    bad_debt: int = 0  # the state's recorded bad debt at the end
    borrow_liquidations: int = 0
    borrow_liquidated: int = 0  # the borrowed value that crossed the threshold
    peak_utilisation: dict[str, int] = field(default_factory=dict)  # token -> ppm
    shortfalls: int = 0
    events: int = 0
    derived: int = 0
    digest: str = ""


class Meter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state: State = engine.state
        self.outcome = Outcome()
        self.hour: int | None = None  # the hour of event time the stream is in
        self.cuts: dict[int, int] = {}  # seq -> the hour boundary a sample after it stands for

    def begin(self, events: list[ev.InputEvent]) -> None:
        """Before a block is applied: where its hour boundaries fall. A sample is taken after the
        last event of each hour (now, when the block's first event starts a new one)."""
        first = self.state.next_seq
        hour = self.hour
        for i, event in enumerate(events):
            ts = event.ts
            if ts is None or (hour is not None and ts // HOUR_MS <= hour):
                continue
            if hour is not None:
                if i == 0:
                    self.sample(ts // HOUR_MS * HOUR_MS)
                else:
                    self.cuts[first + i - 1] = ts // HOUR_MS * HOUR_MS
            hour = ts // HOUR_MS
        self.hour = hour

    def on_event(self, seq: int, event: ev.InputEvent, derived: list[ev.DerivedEvent]) -> None:
        """After each event: its decisions tallied, and the hour's sample if it ended one."""
        if derived:
            self._tally(derived)
        if self.cuts:
            boundary = self.cuts.pop(seq, None)
            if boundary is not None:
                self.sample(boundary)

    def _tally(self, derived: list[ev.DerivedEvent]) -> None:
        o = self.outcome
        for d in derived:
            kind = type(d)
            if kind is ev.Checkpoint:
                continue
            o.derived += 1
            if kind is ev.Rejected:
                group = reason_group(d)  # type: ignore[arg-type]
                o.rejected[group] = o.rejected.get(group, 0) + 1
                o.rejected_by_type[d.event] = o.rejected_by_type.get(d.event, 0) + 1  # type: ignore[union-attr]
                o.shortfalls += SHORTFALL in d.reason  # type: ignore[union-attr]
            elif kind is ev.LiquidationTriggered:
                o.liquidations += 1
                o.by_phase[d.phase] = o.by_phase.get(d.phase, 0) + 1  # type: ignore[union-attr]
                hour = self.state.time // HOUR_MS * HOUR_MS
                o.liquidation_hours[hour] = o.liquidation_hours.get(hour, 0) + 1
            elif kind is ev.LiquidationFill:
                _add(o.notional_by_phase, "market", margin.notional(d.sz, d.px))  # type: ignore[union-attr]
            elif kind is ev.LiquidationOrder:
                o.orders += 1
            elif kind is ev.Backstop:
                o.backstops += 1
                taken = sum(margin.notional(p.szi, p.mark) for p in d.positions)  # type: ignore[union-attr]
                _add(o.notional_by_phase, "backstop", taken)
            elif kind is ev.Adl:
                o.adl += 1
                o.adl_notional += margin.notional(d.sz, d.px)  # type: ignore[union-attr]
            elif kind is ev.BadDebt:
                o.bad_debt_events += 1
            elif kind is ev.BorrowLiquidation:
                o.borrow_liquidations += 1
                o.borrow_liquidated += d.borrowed  # type: ignore[union-attr]

    def sample(self, ts: int, end: bool = False) -> None:
        """The requirement of every account now, in its own model, and the pools' utilisation."""
        state, models, tallies = self.state, self.engine.models, self.outcome.accounts
        markets, spots, value = state.markets, state.spot, margin.value
        total_im = total_mm = 0
        for name, account in state.accounts.items():
            if name in SYSTEM_ACCOUNTS:
                continue
            model = models.of(name)
            exposures = [value(p.szi, markets[c].mark) for c, p in account.positions.items() if p.szi]
            if not exposures and model is STANDARD:
                continue  # a standard account without a position requires nothing
            spot = spots.get(name)
            need = model.requirement(state, account, spot)
            total_im += need.initial
            total_mm += need.maintenance
            if spot is not None:
                exposures += _spot_exposures(state, spot)
            tally = tallies.get(name)
            if tally is None:
                tally = tallies[name] = AccountTally()
            tally.initial += need.initial
            tally.maintenance += need.maintenance
            tally.net += abs(sum(exposures))
            tally.gross += sum(abs(x) for x in exposures)
            if end:
                tally.end_initial, tally.end_maintenance = need.initial, need.maintenance
        self.outcome.samples.append(Sample(ts, total_im, total_mm))
        peaks = self.outcome.peak_utilisation
        for token, pool in state.pools.items():
            supplied = lending.supplied(pool)
            if supplied:
                used = lending.lent(pool) * UTILISATION_PPM // supplied
                if used > peaks.get(token, -1):
                    peaks[token] = used

    def finish(self, digest: str) -> Outcome:
        """The last sample (at the latest event time) and the end figures."""
        self.sample(self.state.time, end=True)
        o = self.outcome
        o.bad_debt = self.state.bad_debt
        o.events = self.state.next_seq
        o.digest = digest
        return o


def _spot_exposures(state: State, spot: SpotAccount) -> list[int]:
    """The value of each spot token held (balance plus supply less borrows) at its oracle; USDC
    is cash, not exposure."""
    out = []
    tokens, pools = state.tokens, state.pools
    for token in sorted({*spot.balances, *spot.supplied, *spot.borrowed} - {USDC}):
        listed = tokens.get(token)
        if listed is None or not listed.oracle:
            continue
        pool = pools.get(token)
        amount = spot.balances.get(token, 0)
        if pool is not None:
            supplied, borrowed = spot.supplied.get(token, 0), spot.borrowed.get(token, 0)
            amount += lending.claim(pool, supplied) - lending.owed(pool, borrowed)
        out.append(amount * listed.oracle // SPOT_VALUE_DIV)
    return out


def _add(into: dict[str, int], key: str, amount: int) -> None:
    into[key] = into.get(key, 0) + amount
