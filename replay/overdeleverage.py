"""Over-deleveraging (docs/adl.md): how much auto-deleveraging took from winners beyond what the
bankrupt accounts needed, measured as arXiv 2602.15182 does, with a two-pass replay.

- A **round** is a burst of ADL fills: it opens at an input event that deleverages, takes in
  every later input event until one comes more than `gap_ms` of event time after the round's
  last deleveraging event, and is scored on the states after its last event within `horizon_ms`
  of that last deleveraging event (0: the event itself).
- **Pass A** is the run itself. **Pass B** applies the same input events from the same state
  with the liquidator absorbing every loss (`loss_limit` None): the accounts that went through
  ADL in A are taken over instead, so no winner is deleveraged, on the same input price path.
- Per round: the **deficit** D (the needed budget) sums, over the scopes deleveraged, their
  negative equity at the mark when they were found (`liquidation_triggered`): what closing them
  at their bankruptcy price would move, sum of `|mark - bankruptcy price| * size`. The **fill
  budget** B sums `|mark - px| * |sz|` over the round's ADL fills (the mark the position was
  found at, the fill's price). The **haircut** H sums, over the round's winners (ADL
  counterparties), how much their equity gap between the passes (`equity in B - equity in A`)
  grew since the end of the last round they were winners of (from 0 before their first), when
  positive.
- Scores, each summed over rounds with the positive and negative parts kept apart:
  `overshoot` H - D (winners' loss beyond the need), `severity` B - D (how much the policy set
  out to take beyond the need) and `allocation` H - B (what the choice of winners and sizes
  added on top, as the price went on); `fairness` is the largest share of one winner's
  capacity (its positive PnL in pass B at the scoring point) taken in one round, in ppm, over
  a capacity of at least one micro-USDC.

Every figure is an integer in micro-USDC (shares in ppm) and a pure function of the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from clearinghouse import margin
from clearinghouse.digest import decode_state, encode_state
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.units import NTL_DIV

DEFAULT_GAP_MS = 5_000  # the paper's clustering of 10 October 2025's fills into 16 rounds
PPM = 1_000_000


def equity(state: State, name: str) -> int:
    """An account's perp equity at the marks: cross account value plus every isolated
    position's margin used (spot balances, which ADL never touches, left out)."""
    account = state.accounts.get(name)
    if account is None:
        return 0
    markets = state.markets
    iso = sum(margin.iso_margin_used(p, markets[c]) for c, p in account.positions.items() if not p.cross)
    return margin.cross_value(account, markets) + iso


def positive_pnl(state: State, name: str) -> int:
    """An account's unrealised perp PnL at the marks, when positive (its haircut capacity)."""
    account = state.accounts.get(name)
    if account is None:
        return 0
    markets = state.markets
    pnl = sum((p.szi * (markets[c].mark - p.entry_px)) // NTL_DIV for c, p in account.positions.items() if p.szi)
    return max(0, pnl)


class Round(msgspec.Struct):
    """One round's figures (micro-USDC; `max_share_ppm` in ppm)."""

    first_seq: int
    last_seq: int  # the last deleveraging input event
    fills: int
    deficit: int  # D
    budget: int  # B
    haircut: int  # H
    winners: int
    max_share_ppm: int


class Signed(msgspec.Struct):
    """A sum over rounds kept in its positive (`over`) and negative (`under`, as a positive
    amount) parts; `net` = over - under."""

    over: int = 0
    under: int = 0

    @property
    def net(self) -> int:
        return self.over - self.under

    def add(self, amount: int) -> None:
        if amount > 0:
            self.over += amount
        else:
            self.under -= amount

    def as_dict(self) -> dict[str, int]:
        return {"over": self.over, "under": self.under, "net": self.net}


@dataclass
class Overdeleverage:
    """The measure over a run: its rounds and the scores (docs/adl.md)."""

    rounds: list[Round] = field(default_factory=list)
    overshoot: Signed = field(default_factory=Signed)  # H - D
    severity: Signed = field(default_factory=Signed)  # B - D
    allocation: Signed = field(default_factory=Signed)  # H - B
    fairness: int = 0  # ppm

    def add(self, r: Round) -> None:
        self.rounds.append(r)
        self.overshoot.add(r.haircut - r.deficit)
        self.severity.add(r.budget - r.deficit)
        self.allocation.add(r.haircut - r.budget)
        self.fairness = max(self.fairness, r.max_share_ppm)

    def as_dict(self) -> dict[str, Any]:
        """Plain integers: over/under/net of the overshoot at the top level, the parts beside."""
        return {
            **self.overshoot.as_dict(),
            "fairness": self.fairness,
            "rounds": len(self.rounds),
            "deficit": sum(r.deficit for r in self.rounds),
            "budget": sum(r.budget for r in self.rounds),
            "haircut": sum(r.haircut for r in self.rounds),
            "severity": self.severity.as_dict(),
            "allocation": self.allocation.as_dict(),
        }


@dataclass
class _Open:
    first_seq: int
    last_seq: int
    last_ts: int
    fills: int = 0
    deficit: int = 0
    budget_num: int = 0  # sum of |mark - px| * |sz|, in 1e-8 x 1e-8
    winners: dict[str, None] = field(default_factory=dict)  # in the order first met
    scored: dict[str, tuple[int, int]] = field(default_factory=dict)  # winner -> (gap, capacity) last scored


class Meter:
    """Scores a run event by event: give it each input event with what pass A derived from it
    and pass A's state after it (`observe`), then `result()`. It runs pass B itself, from the
    state the run started from."""

    def __init__(
        self,
        start: State,
        config: LiquidationConfig,
        gap_ms: int = DEFAULT_GAP_MS,
        horizon_ms: int = 0,
    ) -> None:
        if not 0 <= horizon_ms <= gap_ms:
            raise ValueError("the horizon must be from 0 to the gap")
        absorbing = msgspec.structs.replace(config, loss_limit=None)
        self.pass_b = Engine(msgspec.structs.replace(decode_state(encode_state(start)), liquidation=absorbing))
        self.gap_ms, self.horizon_ms, self.limit = gap_ms, horizon_ms, config.loss_limit
        self.result_ = Overdeleverage()
        self._open: _Open | None = None
        self._base: dict[str, int] = {}  # winner -> its gap at the end of its last round

    def observe(self, event: Any, derived: list[Any], state: State) -> None:
        """One input event: `derived` and `state` are pass A's (the run's) after it."""
        self.pass_b.apply(event)
        now = state.time
        current = self._open
        if current is not None and now > current.last_ts + self.gap_ms:
            self._close()
            current = None
        declined = self._declined(derived)
        if declined:
            seq = declined[0].cause
            if current is None:
                current = self._open = _Open(seq, seq, now)
            self._take(current, derived, declined)
            current.last_seq, current.last_ts = seq, now
        if current is not None and now <= current.last_ts + self.horizon_ms:
            b = self.pass_b.state
            current.scored = {n: (equity(b, n) - equity(state, n), positive_pnl(b, n)) for n in current.winners}

    def _declined(self, derived: list[Any]) -> list[ev.LiquidationTriggered]:
        """The scopes the liquidator declined (negative equity past its loss limit), which the
        ADL policy then closed: the backstop triggers of `backstop.take_over`'s ADL branch."""
        limit = self.limit
        if limit is None:
            return []
        found = [d for d in derived if isinstance(d, ev.LiquidationTriggered) and d.phase == "backstop"]
        return [d for d in found if -d.equity > limit]

    def result(self) -> Overdeleverage:
        """The measure so far (closes the round still open)."""
        if self._open is not None:
            self._close()
        return self.result_

    @staticmethod
    def _take(current: _Open, derived: list[Any], declined: list[ev.LiquidationTriggered]) -> None:
        """The deficits, fills and winners of one event's derived events (the fills of a scope
        follow its trigger, at the marks the trigger shows)."""
        current.deficit += sum(-d.equity for d in declined)
        marks: dict[str, int] = {}
        for d in derived:
            if isinstance(d, ev.LiquidationTriggered):
                marks = {v.coin: v.mark for v in d.positions}
            elif isinstance(d, ev.Adl):
                current.fills += 1
                current.budget_num += abs(marks[d.coin] - d.px) * abs(d.sz)
                current.winners.setdefault(d.counterparty)

    def _close(self) -> None:
        current = self._open
        assert current is not None
        self._open = None
        haircut = share = 0
        for name in current.winners:
            gap, capacity = current.scored.get(name, (0, 0))
            taken = max(0, gap - self._base.get(name, 0))
            self._base[name] = gap
            haircut += taken
            share = max(share, taken * PPM // max(capacity, 1))
        self.result_.add(
            Round(
                current.first_seq,
                current.last_seq,
                current.fills,
                current.deficit,
                current.budget_num // NTL_DIV,
                haircut,
                len(current.winners),
                share,
            )
        )


def measure(
    start: State,
    events: Iterable[Any],
    config: LiquidationConfig,
    gap_ms: int = DEFAULT_GAP_MS,
    horizon_ms: int = 0,
) -> Overdeleverage:
    """Runs `events` (decoded input events) from `start` under `config` (pass A) and scores its
    ADL rounds against pass B; `start` is left as it was."""
    engine = Engine(msgspec.structs.replace(decode_state(encode_state(start)), liquidation=config))
    meter = Meter(start, config, gap_ms, horizon_ms)
    for event in events:
        meter.observe(event, engine.apply(event), engine.state)
    return meter.result()
