"""Over-deleveraging (docs/adl.md): how much auto-deleveraging took from winners beyond what the
bankrupt accounts needed, measured as arXiv 2602.15182 does, with a two-pass replay.

- A **round** is a burst of ADL: it opens at an input event in which the liquidator declined a
  scope (its ADL policy then closed it), takes in every later input event until one comes more
  than `gap_ms` of event time after the round's last such event, and is scored on the states
  after its last event within `horizon_ms` of that last deleveraging event (0: the event itself).
- **Pass A** is the run itself. **Pass B** of a round starts from pass A's state before the
  round and applies the same input events with the liquidator absorbing every loss (`loss_limit`
  None): the accounts that went through ADL in A are taken over instead, so no winner is
  deleveraged, on the same input price path; a round's figures are its own.
- Per round: the **deficit** D (the needed budget) sums, over the scopes declined, their
  negative equity at the mark when they were found (`liquidation_triggered`): what closing them
  at their bankruptcy price would move, sum of `|mark - bankruptcy price| * size`. The **fill
  budget** B sums `|mark - px| * |sz|` over the round's ADL fills (the mark the position was
  found at, the fill's price). The **haircut** H sums, over the round's winners (ADL
  counterparties), `equity in B - equity in A` at the scoring point, when positive.
- Scores, each summed over rounds with the positive and negative parts kept apart:
  `overshoot` H - D (winners' loss beyond the need), `severity` B - D (how much the policy set
  out to take beyond the need) and `allocation` H - B (what the choice of winners and sizes
  added on top, as the price went on); `fairness` is the largest share of one winner's
  capacity (its positive PnL in pass B at the scoring point in the coins it was deleveraged in,
  at least 1 USDC) taken in one round, in ppm.

Every figure is an integer in micro-USDC (shares in ppm) and a pure function of the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from clearinghouse import margin
from clearinghouse.digest import decode_state, encode_state
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.units import NTL_DIV, USD

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


def positive_pnl(state: State, name: str, coins: Iterable[str]) -> int:
    """An account's positive unrealised PnL at the marks in each of `coins`, summed: what ADL
    in them could take from it (its haircut capacity)."""
    account = state.accounts.get(name)
    if account is None:
        return 0
    total = 0
    for coin in coins:
        pos = account.positions.get(coin)
        if pos is not None and pos.szi:
            total += max(0, (pos.szi * (state.markets[coin].mark - pos.entry_px)) // NTL_DIV)
    return total


class Round(msgspec.Struct):
    """One round's figures (micro-USDC; `max_share_ppm` in ppm); events by their index in the
    input given."""

    first: int  # its first deleveraging event
    last: int  # its last deleveraging event
    scored: int  # the event after which it is scored
    winners: int
    deficit: int  # D
    budget: int  # B
    haircut: int  # H
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


class Span(NamedTuple):
    """A round's input events, by index: from `first` (its first deleveraging event) to
    `scored` (the states it is scored on); `last` is its last deleveraging event."""

    first: int
    last: int
    scored: int


def declined(derived: list[Any], limit: int | None) -> list[ev.LiquidationTriggered]:
    """The scopes the liquidator declined in one event's derived events (negative equity past its
    loss limit), which the ADL policy then closed: the backstop triggers of
    `backstop.take_over`'s ADL branch."""
    if limit is None:
        return []
    found = [d for d in derived if isinstance(d, ev.LiquidationTriggered) and d.phase == "backstop"]
    return [d for d in found if -d.equity > limit]


def rounds_of(times: list[int], deleveraging: list[int], gap_ms: int, horizon_ms: int) -> list[Span]:
    """Groups deleveraging events (indices, rising) into rounds: a round takes in the events up to
    one more than `gap_ms` after its last deleveraging event, and is scored after its last event
    within `horizon_ms` of it. `times[i]`: event time after input event i (never falling)."""
    if not 0 <= horizon_ms <= gap_ms:
        raise ValueError("the horizon must be from 0 to the gap")
    spans: list[Span] = []
    first = last = -1
    for i in deleveraging:
        if first >= 0 and times[i] > times[last] + gap_ms:
            spans.append(_span(times, first, last, horizon_ms))
            first = -1
        if first < 0:
            first = i
        last = i
    if first >= 0:
        spans.append(_span(times, first, last, horizon_ms))
    return spans


def _span(times: list[int], first: int, last: int, horizon_ms: int) -> Span:
    scored = last
    while scored + 1 < len(times) and times[scored + 1] <= times[last] + horizon_ms:
        scored += 1
    return Span(first, last, scored)


def measure(
    start: State,
    events: Sequence[Any],
    config: LiquidationConfig,
    gap_ms: int = DEFAULT_GAP_MS,
    horizon_ms: int = 0,
    settings: Sequence[LiquidationConfig] | None = None,
) -> Overdeleverage:
    """Runs `events` (decoded input events) from `start` under `config` (pass A), finds its rounds,
    and scores each against its own pass B (from pass A's state before the round, the liquidator
    absorbing). Pass A runs twice (once to find the rounds, once to score them), pass B over the
    rounds only. `settings`, if given, are the liquidation settings in force at each event (a
    stress run thins the market depth step by step; the ADL policy and loss limit stay
    `config`'s). `start` is left as it was."""
    engine = _engine(start, config)
    times, deleveraging = [], []
    for i, event in enumerate(events):
        if declined(_apply(engine, event, settings, i, False), config.loss_limit):
            deleveraging.append(i)
        times.append(engine.state.time)
    return score(start, events, config, rounds_of(times, deleveraging, gap_ms, horizon_ms), settings)


def score(
    start: State,
    events: Sequence[Any],
    config: LiquidationConfig,
    spans: list[Span],
    settings: Sequence[LiquidationConfig] | None = None,
) -> Overdeleverage:
    """Scores the rounds `spans` of the run of `events` from `start` under `config`."""
    result = Overdeleverage()
    absorbing = msgspec.structs.replace(config, loss_limit=None)
    engine = _engine(start, config)
    done = 0
    for span in spans:
        for i in range(done, span.first):
            _apply(engine, events[i], settings, i, False)
        pass_b = _engine(engine.state, absorbing)
        deficit = budget = 0
        winners: dict[str, dict[str, None]] = {}  # -> the coins it was deleveraged in, in the order met
        for i in range(span.first, span.scored + 1):
            derived = _apply(engine, events[i], settings, i, False)
            _apply(pass_b, events[i], settings, i, True)
            deficit += sum(-d.equity for d in declined(derived, config.loss_limit))
            budget += _fills(derived, winners)
        haircut = share = 0
        a, b = engine.state, pass_b.state
        for name in winners:
            taken = max(0, equity(b, name) - equity(a, name))
            haircut += taken
            share = max(share, taken * PPM // max(positive_pnl(b, name, winners[name]), USD))
        result.add(Round(span.first, span.last, span.scored, len(winners), deficit, budget // NTL_DIV, haircut, share))
        done = span.scored + 1
    return result


def _fills(derived: list[Any], winners: dict[str, dict[str, None]]) -> int:
    """Sum of |mark - px| x |sz| over an event's ADL fills (1e-8 x 1e-8; the fills of a scope
    follow its trigger, at the marks the trigger shows); their counterparties join `winners`."""
    total = 0
    marks: dict[str, int] = {}
    for d in derived:
        if isinstance(d, ev.LiquidationTriggered):
            marks = {v.coin: v.mark for v in d.positions}
        elif isinstance(d, ev.Adl):
            total += abs(marks[d.coin] - d.px) * abs(d.sz)
            winners.setdefault(d.counterparty, {})[d.coin] = None
    return total


def _apply(engine: Engine, event: Any, settings: Sequence[LiquidationConfig] | None, i: int, absorbing: bool) -> list:
    """One event, under the settings in force at it (if given; pass B's liquidator absorbing)."""
    if settings is not None:
        engine.state.liquidation = msgspec.structs.replace(settings[i], loss_limit=None) if absorbing else settings[i]
    return engine.apply(event)


def _engine(state: State, config: LiquidationConfig) -> Engine:
    """An engine on a copy of `state` under `config`."""
    return Engine(msgspec.structs.replace(decode_state(encode_state(state)), liquidation=config))
