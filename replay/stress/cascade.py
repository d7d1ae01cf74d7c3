"""A stress run: a population and a scenario through the engine, step by step (docs/stress.md).

Each step of the scenario is one `prices` event at the step's event time: every market's mark
and oracle (and every spot token's own price) moved by the scenario's ratio of this step's level
to the last one, from where the step found it, so the impact of earlier liquidations stays in
the price. The engine liquidates in its own execution mode; in `impact` mode each liquidation
fill moves its market's mark by the configuration's depth for that market (its own, else the
global one), thinned at the step by the scenario's depth share for it (`thinned`), and the
engine re-checks the holders of the moved markets within the same event until nothing moves.

After the engine, the stress layer sells what the backstop seized from portfolio-margin
borrowers (the `taken` of each `borrow_liquidation`) into the token's price with the spot depth
(`Scenario.spot_depth`, default the configuration's depth, thinned alike): the price falls by
`impact * value / depth` (at most half), the sale fetches the taken amount at the fallen price,
and what it does not cover of the debt repaid is pool shortfall, the suppliers' loss. A spot
token that is also a perp market moves its mark and oracle together (the perp follows its
spot). The fallen price and the accounts still below maintenance make another round: a `prices`
event at the same event time naming only what the sales moved. Rounds repeat until one
decides nothing (the fixed point), at most `max_rounds`; a step that stops at the cap is
reported as not converged.

A configuration that changes the population (the backtest's margin model, rules, tiers or
leverage cap) is applied first, as input events at the population's event time
(`replay.backtest.stream.state_events`): what they liquidate is step 0's, and an event the
engine refuses is reported as `unapplied` with its reason (a model switch of an account with
open positions: the account stays in its mode).

Every division rounds down (prices to the tick below, shares of a price, notional), documented
where it happens; every figure is an int in micro-USDC or in the price scale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from clearinghouse import lending
from clearinghouse.digest import decode_state, state_digest
from clearinghouse.engine import Engine
from clearinghouse.invariants import bound_errors, conservation_errors
from clearinghouse.liquidator import LIQUIDATOR, highest_mark, to_tick
from clearinghouse.portfolio import account_value
from clearinghouse.spot import price
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.bounds import MAX_PX
from events.units import NTL_DIV, RATE
from replay.backtest.stream import state_events
from replay.overdeleverage import declined
from replay.stress.configs import StressConfig, with_policy
from replay.stress.overshoot import Fed, Overshoot, Trace, overshoot_of
from replay.stress.scenario import PPM, Scenario

MAX_ROUNDS = 20  # stress rounds in one step before it is reported as not converged
MAX_SPOT_MOVE_PPM = 500_000  # one sale moves a price by at most half, as an impact fill
PHASES = ("market", "backstop", "adl", "borrow")
DECISIONS = (ev.LiquidationTriggered, ev.LiquidationFill, ev.Backstop, ev.Adl, ev.BadDebt, ev.BorrowLiquidation)


class StressError(RuntimeError):
    """A run that broke an invariant (with `check`): a bug, never a property of the scenario."""


@dataclass
class PoolFigures:
    """A lending pool at the end of a step: as the engine keeps it, and with the run's pool
    shortfall so far taken from the suppliers (USDC pool; 1e-12 shares and rates)."""

    supplied: int
    lent: int
    utilisation: int
    borrow_apy: int
    supplied_after_loss: int
    utilisation_after_loss: int
    borrow_apy_after_loss: int


@dataclass
class StepFigures:
    step: int
    ts: int
    rounds: int = 0
    converged: bool = True
    marks: dict[str, int] = field(default_factory=dict)
    found_below: int = 0  # accounts found liquidatable during the step
    still_below: int = 0  # accounts still below maintenance at its end (the watch list)
    liquidated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PHASES, 0))
    takeovers: int = 0
    liquidator_pnl: int = 0
    adl_count: int = 0
    adl_notional: int = 0
    bad_debt: int = 0
    pool_shortfall: int = 0
    pools: dict[str, PoolFigures] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)

    @property
    def liquidated_notional(self) -> int:
        return sum(self.liquidated.values())


@dataclass(frozen=True)
class Unapplied:
    """A configuration's event the engine refused: the event type, the account or market it
    names, and the engine's reason."""

    event: str
    subject: str
    reason: str


@dataclass
class StressRun:
    """One configuration under one ADL policy: the figures of every step (step 0 is the
    population), the final state's digest, and the overshoot."""

    config: str
    adl: str
    scenario: str
    steps: list[StepFigures]
    digest: str
    overshoot: Overshoot
    accounts: int
    unapplied: list[Unapplied] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.steps)

    def phase_total(self, phase: str) -> int:
        return sum(s.liquidated[phase] for s in self.steps)

    @property
    def converged(self) -> bool:
        return all(s.converged for s in self.steps)


def _notional(size: int, px: int) -> int:
    return abs(size) * px // NTL_DIV


class Stepper:
    """Runs the scenario's steps on one engine; `check` verifies conservation and bounds after
    every round (tests do)."""

    def __init__(self, state: State, scenario: Scenario, config: StressConfig, policy: str, full_scan: bool) -> None:
        self.state, self.scenario, self.config = state, scenario, config
        self.base = with_policy(config.liquidation, policy)
        state.liquidation = self.base
        self.engine = Engine(state, full_scan=full_scan)
        self.start = state.time
        self.trace: Trace = []  # what the overshoot replays
        self.shortfall_so_far = 0

    # ---- prices -----------------------------------------------------------------------------

    def _priced_tokens(self) -> list[str]:
        """Spot tokens with a price of their own (no perp market of their name)."""
        state = self.state
        return [t for t in sorted(state.tokens) if t not in state.markets and price(state, t)]

    def _moved(self, coin_moves: dict[str, tuple[int, int]]) -> dict[str, ev.PricePoint]:
        """Price points for coins moved by `num/den` each, from their current mark and oracle
        (prices round down: marks to their tick, at most the highest mark the market allows;
        every price within the price bound)."""
        state, points = self.state, {}
        for coin, (num, den) in coin_moves.items():
            market = state.markets.get(coin)
            if market is not None:
                mark = min(to_tick(market.mark * num // den, market, up=False), highest_mark(market))
                oracle = min(MAX_PX, max(1, (market.oracle or market.mark) * num // den))
                points[coin] = ev.PricePoint(mark=mark, oracle=oracle)
            else:
                points[coin] = ev.PricePoint(mark=min(MAX_PX, max(1, price(state, coin) * num // den)))
        return points

    def _scenario_points(self, k: int) -> dict[str, ev.PricePoint]:
        s = self.scenario
        coins = [c for c in sorted(self.state.markets) if self.state.markets[c].mark] + self._priced_tokens()
        return self._moved({c: (s.level(c, k), s.level(c, k - 1)) for c in coins})

    # ---- the steps --------------------------------------------------------------------------

    def figures0(self, check: bool) -> tuple[StepFigures, list[Unapplied]]:
        """Step 0: the population, with the configuration applied (its decisions are step 0's)
        and the configuration's events the engine refused."""
        figures = StepFigures(step=0, ts=self.start)
        unapplied: list[Unapplied] = []
        plan = self.config.plan
        if plan is not None:
            liquidator_before = self._liquidator_value()
            found: set[str] = set()
            for event in state_events(plan, self.state):
                seq = self.state.next_seq
                derived = self.engine.apply(event)
                figures.rounds += 1
                self._check(check, f"the configuration's {ev.event_type(event)} event")
                for refused in (d for d in derived if type(d) is ev.Rejected and d.seq == seq):
                    subject = event.coin if type(event) is ev.Market else getattr(event, "account", "")
                    unapplied.append(Unapplied(refused.event, subject, refused.reason))
                self._tally(figures, derived, found)
                self._fed(event, derived)
            figures.found_below = len(found)
            figures.liquidator_pnl = self._liquidator_value() - liquidator_before
        self._close(figures)
        return figures, unapplied

    def step(self, k: int, max_rounds: int, check: bool) -> StepFigures:
        state, scenario = self.state, self.scenario
        figures = StepFigures(step=k, ts=self.start + k * scenario.step_ms)
        state.liquidation = thinned(self.base, scenario, k, state.markets)
        liquidator_before = self._liquidator_value()
        found: set[str] = set()
        points = self._scenario_points(k)
        figures.converged = False
        for _ in range(max_rounds):
            event = ev.Prices(ts=figures.ts, prices=points)
            derived = self.engine.apply(event)
            figures.rounds += 1
            self._check(check, f"step {k}, round {figures.rounds}")
            decided = self._tally(figures, derived, found)
            self._fed(event, derived)
            rejected = [d.reason for d in derived if type(d) is ev.Rejected]
            if rejected:
                figures.rejected += rejected
                figures.converged = True  # nothing more this step can do: reported with the reason
                break
            sales = self._sell_seized(figures, derived)
            if not decided or not (state.watch or sales):
                figures.converged = True
                break
            points = self._moved(sales)
        state.liquidation = self.base
        figures.found_below = len(found)
        figures.liquidator_pnl = self._liquidator_value() - liquidator_before
        self._close(figures)
        return figures

    def _fed(self, event: ev.InputEvent, derived: list[ev.DerivedEvent]) -> None:
        """Records an event fed to the engine for the overshoot's replay."""
        refused = bool(declined(derived, self.base.loss_limit))
        self.trace.append(Fed(event, self.state.liquidation, self.state.time, refused))

    def _check(self, check: bool, where: str) -> None:
        if check:
            errors = conservation_errors(self.state) + bound_errors(self.state)
            if errors:
                raise StressError(f"{where}: {errors[0]}")

    def _tally(self, figures: StepFigures, derived: list[ev.DerivedEvent], found: set[str]) -> bool:
        """Adds the round's decisions to the step's figures; whether there were any."""
        decided = False
        liquidated = figures.liquidated
        for d in derived:
            kind = type(d)
            if kind not in DECISIONS:
                continue
            decided = True
            if kind is ev.LiquidationTriggered or kind is ev.BorrowLiquidation:
                found.add(d.account)
            elif kind is ev.LiquidationFill:
                liquidated["market"] += _notional(d.sz, d.px)
            elif kind is ev.Backstop:
                figures.takeovers += 1
                liquidated["backstop"] += sum(_notional(p.szi, p.mark) for p in d.positions)
            elif kind is ev.Adl:
                figures.adl_count += 1
                amount = _notional(d.sz, d.px)
                figures.adl_notional += amount
                liquidated["adl"] += amount
            elif kind is ev.BadDebt:
                figures.bad_debt += d.amount
        return decided

    def _sell_seized(self, figures: StepFigures, derived: list[ev.DerivedEvent]) -> dict[str, tuple[int, int]]:
        """Sells the collateral seized this round into each token's price; books the borrow
        phase's notional (at the price before the sale) and the pool shortfall; returns each
        moved token's move as (num, den)."""
        seized = [d for d in derived if type(d) is ev.BorrowLiquidation]
        if not seized:
            return {}
        state, scenario = self.state, self.scenario
        amounts: dict[str, int] = {}
        for d in seized:
            for token, amount in d.taken.items():
                amounts[token] = amounts.get(token, 0) + amount
        share = scenario.depth_share(figures.step)
        cfg = self.base
        after: dict[str, int] = {}
        moves: dict[str, tuple[int, int]] = {}
        for token in sorted(amounts):
            px = price(state, token)
            worth = amounts[token] * px // NTL_DIV
            figures.liquidated["borrow"] += worth
            depth = max(1, scenario.spot_depth.get(token, cfg.depth) * share // PPM)
            move = min(MAX_SPOT_MOVE_PPM, cfg.impact_ppm * worth // depth)
            after[token] = px * (PPM - move) // PPM
            if move:
                moves[token] = (PPM - move, PPM)
        for d in seized:
            proceeds = d.usdc + sum(amount * after[t] // NTL_DIV for t, amount in d.taken.items())
            figures.pool_shortfall += max(0, d.repaid - proceeds)
        return moves

    def _liquidator_value(self) -> int:
        state = self.state
        account = state.accounts.get(LIQUIDATOR)
        return 0 if account is None else account_value(state, account, state.spot.get(LIQUIDATOR))

    def _close(self, figures: StepFigures) -> None:
        """The step's closing figures: marks, spot prices, the watch list, the pools."""
        state = self.state
        figures.marks = {c: m.mark for c, m in sorted(state.markets.items()) if m.mark}
        figures.marks.update({t: price(state, t) for t in self._priced_tokens()})
        figures.still_below = len(state.watch)
        self.shortfall_so_far += figures.pool_shortfall
        for token in sorted(state.pools):
            pool = state.pools[token]
            util, borrow, _ = lending.rates(pool, state.pm_rules)
            supplied, lent = lending.supplied(pool), lending.lent(pool)
            loss = self.shortfall_so_far if token == lending.USDC else 0
            left = max(0, supplied - loss)
            figures.pools[token] = PoolFigures(
                supplied=supplied,
                lent=lent,
                utilisation=util,
                borrow_apy=borrow,
                supplied_after_loss=left,
                utilisation_after_loss=min(lent, left) * RATE // left if left else RATE,
                borrow_apy_after_loss=lending.borrow_apy(state.pm_rules, lent, left),
            )


def thinned(base: LiquidationConfig, scenario: Scenario, step: int, markets: Iterable[str]) -> LiquidationConfig:
    """The settings in force at `step`: the global depth at the scenario's depth share, and each
    listed market whose depth differs from that (its own in the configuration, or its own path
    in the scenario) at its own share of its own depth; each rounded down, at least 1 micro-USDC."""
    depth = max(1, base.depth * scenario.depth_share(step) // PPM)
    own = {}
    for coin in sorted(markets):
        depth_of = max(1, base.depth_of(coin) * scenario.market_share(coin, step) // PPM)
        if depth_of != depth:
            own[coin] = depth_of
    return msgspec.structs.replace(base, depth=depth, market_depth=own or msgspec.UNSET)


def run(
    population: bytes,
    scenario: Scenario,
    config: StressConfig,
    policy: str,
    *,
    full_scan: bool = False,
    check: bool = False,
    max_rounds: int = MAX_ROUNDS,
    progress: Callable[[int, int], None] | None = None,
) -> StressRun:
    """Runs the encoded population through the scenario under one configuration and ADL policy.
    `full_scan` runs the engine's reference twin (same decisions); `check` verifies conservation
    and bounds after every round."""
    state = decode_state(population)
    stepper = Stepper(state, scenario, config, policy, full_scan)
    figures0, unapplied = stepper.figures0(check)
    steps = [figures0]
    for k in range(1, scenario.steps + 1):
        steps.append(stepper.step(k, max_rounds, check))
        if progress is not None:
            progress(k, scenario.steps)
    return StressRun(
        config=config.name,
        adl=policy,
        scenario=scenario.name,
        steps=steps,
        digest=state_digest(state),
        overshoot=overshoot_of(population, stepper.base, stepper.trace),
        accounts=len(state.accounts),
        unapplied=unapplied,
    )
