"""Stress runs through the engine (docs/stress.md), worked by hand: scenario levels, an impact
cascade where each liquidation's fill pushes the next account under, and borrow liquidations
whose collateral sales move HYPE into a second borrower and leave the pool short.

Every run goes through `tests.support.stress.stressed`: the trigger index and the full-scan
twin give the same figures and digest, and conservation and bounds hold after every round.
"""

from __future__ import annotations

import msgspec
import pytest

from clearinghouse.digest import decode_state, encode_state
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig
from events.units import usd
from replay import overdeleverage
from replay.overdeleverage import DEFAULT_GAP_MS, measure, rounds_of
from replay.stress.cascade import Stepper, run
from replay.stress.configs import STRESS_LIQUIDATION, StressConfig
from replay.stress.overshoot import Overshoot, overshoot_of
from replay.stress.population import generated
from replay.stress.scenario import BUILTINS, ScenarioError, along, parse
from replay.workload import GeneratorConfig
from tests.support.pair import TEN_X
from tests.support.pm import OLD_ERA, lender
from tests.support.rulebook import deposit, lend, market, pm_rules, prices, set_mode, token, trade
from tests.support.stress import population, stressed

# impact mode, 1% of price per 600 USDC of notional, no liquidation fee
IMPACT = LiquidationConfig(mode="impact", impact_ppm=10_000, depth=600_000_000, fee_ppm=0)


# ---- scenarios ------------------------------------------------------------------------------------


def test_paths_interpolate_and_hold() -> None:
    anchors = ((0, 0), (10, -100_000), (20, -50_000))
    # step 3: 0 + (-100,000 - 0) * 3 / 10 = -30,000; step 15: -100,000 + 50,000 * 5 / 10 = -75,000
    assert [along(anchors, k) for k in (0, 3, 10, 15, 20, 25)] == [0, -30_000, -100_000, -75_000, -50_000, -50_000]
    # a first anchor past step 0 starts from 0: step 1 of [(4, -10)] is -10 * 1 / 4 = -2.5, floored to -3
    assert along(((4, -10),), 1) == -3


def test_btc_led_alts_fall_further() -> None:
    s = BUILTINS["btc-led"]
    # step 20: BTC's path -10%, plus the shared gap of step 10 (BTC -1%): -11%, level 89%
    assert s.level("BTC", 20) == 890_000
    # ETH follows at 1.5x BTC's move (-16.5%) and adds the gap's -2% for the others: -18.5%
    assert s.level("ETH", 20) == 815_000
    # HYPE at 3x: -33% - 2% = -35%; a market not named follows at 2x: -22% - 2%
    assert (s.level("HYPE", 20), s.level("M9", 20)) == (650_000, 760_000)
    # before the gap (step 5): BTC -10% * 5 / 20 = -2.5%, SOL 2x = -5%
    assert (s.level("BTC", 5), s.level("SOL", 5)) == (975_000, 950_000)


def test_oct_2025_anchors() -> None:
    s = BUILTINS["oct-2025"]
    # BTC 112,209.36 at 21:15 -> the bar's low 103,800.00 at step 25: 103,800 / 112,209.36 =
    # 0.92505883..., the anchor -7.4941%, level 925,059 ppm; 11,220,936 cents * 0.925059 =
    # 10,380,027.8: 103,800.27, the low to the cent of a percent
    assert s.level("BTC", 25) == 925_059
    assert 11_220_936 * s.level("BTC", 25) // 1_000_000 == 10_380_027
    # the close of the bar at step 30 (103,975.26) and the ADL VWAP level at 21:25 (106,427.71)
    assert (s.level("BTC", 30), s.level("BTC", 60)) == (926_618, 948_476)
    # HYPE falls 2.7 times as far: -74,941 * 2.7 = -202,340.7, floored to -202,341
    assert s.level("HYPE", 25) == 797_659
    assert s.level("ETH", 25) < s.level("BTC", 25) and s.level("SOL", 25) < s.level("BTC", 25)
    # books emptied by 98% at the worst
    assert min(s.depth_share(k) for k in range(61)) == 20_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected a JSON object"),
        ({"paths": {}}, "paths must name at least one market"),
        ({"paths": {"BTC": [[0, "0"], [0, "-1"]]}}, "paths.BTC[1]: steps must increase (0 after 0)"),
        ({"paths": {"BTC": [[0, "-101"]]}}, "paths.BTC[0] percent must be a percentage from -100"),
        ({"paths": {"BTC": [[61, "-1"]]}}, "paths.BTC[0] step must be an integer from 0 to 60, got 61"),
        ({"paths": {"BTC": [[1, "abc"]]}}, "paths.BTC[0] percent"),
        ({"paths": {"BTC": [[1, "-1"]]}, "steps": 0}, "steps must be an integer from 1 to 10000"),
        ({"paths": {"BTC": [[1, "-1"]]}, "follow": {"of": "ETH"}}, "follow.of must name a market with its own path"),
        ({"paths": {"BTC": [[1, "-1"]]}, "shocks": [{"step": 1}]}, "shocks[0] must be an object"),
        ({"paths": {"BTC": [[1, "-1"]]}, "depth": [[0, "0"]]}, "depth must stay above 0%"),
        ({"paths": {"BTC": [[1, "-1"]]}, "depth": {"HYPE": [[0, "5"], [1, "0"]]}}, "depth.HYPE must stay above 0%"),
        ({"paths": {"BTC": [[1, "-1"]]}, "depth": {"*": "50"}}, "depth.* must be a list"),
        (
            {"paths": {"BTC": [[1, "-1"]]}, "depth": {"BTC": [[61, "50"]]}},
            "depth.BTC[0] step must be an integer from 0 to 60",
        ),
        ({"paths": {"BTC": [[1, "-1"]]}, "spot_depth": {"HYPE": "-5"}}, "spot_depth.HYPE must be above 0"),
        ({"paths": {"BTC": [[1, "-1"]]}, "speed": 3}, "unknown field 'speed'"),
    ],
)
def test_bad_scenarios_are_named(body: object, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(body, "bad")
    assert message in str(caught.value)


def test_a_market_thins_along_its_own_depth_path() -> None:
    s = parse(
        {"steps": 10, "paths": {"*": [[10, "-5"]]}, "depth": {"*": [[0, "100"], [10, "20"]], "HYPE": [[5, "4"]]}}, "x"
    )
    # every market but HYPE: 100% -> 20% over 10 steps, 92% at step 1 (and the spot sales' depth)
    assert (s.depth_share(1), s.market_share("BTC", 1)) == (920_000, 920_000)
    # HYPE's own path starts from 0% (a path past step 0), 4% at step 5: 0.8% at step 1, held after 5
    assert [s.market_share("HYPE", k) for k in (1, 5, 10)] == [8_000, 40_000, 40_000]
    # a book never reaches 0: its share at step 0 is 1 ppm
    assert s.market_share("HYPE", 0) == 1
    # without an object, one path for every market, as before
    assert parse({"paths": {"*": [[1, "-1"]]}}, "y").market_depths == {}


# ---- the impact cascade -----------------------------------------------------------------------------


def _three_longs() -> bytes:
    # X: sz_decimals 2 (tick 0.0001), one tier at 10x: MM = notional / 20. Three accounts long 10 X
    # at 100 with 100, 110 and 128 USDC: AV = d + 10 (p - 100) < MM = p / 2 below
    # p < (1000 - d) / 9.5: a below 94.7368, b below 93.6842, c below 91.7894.
    return population(
        market("X", 2, TEN_X),
        prices(X="100"),
        deposit("mm", "10000"),
        deposit("a", "100"),
        deposit("b", "110"),
        deposit("c", "128"),
        trade("X", "100", "10", "a", "mm"),
        trade("X", "100", "10", "b", "mm"),
        trade("X", "100", "10", "c", "mm"),
    )


def test_impact_of_the_first_liquidation_triggers_the_second_and_third() -> None:
    scenario = parse({"steps": 1, "paths": {"X": [[0, "0"], [1, "-6"]]}}, "fall")
    run = stressed(_three_longs(), scenario, IMPACT)
    step = run.steps[1]
    # The step moves X to 100 * 94% = 94: only a is below (AV 40 < MM 47, above 2/3 of it: the
    # market phase). a sells 10 (notional 940): the price moves 1% * 940 / 600 = 15,666 ppm,
    # 94 * 0.984334 = 92.527396, to the tick below 92.5273, the new mark. b is below it (< 93.6842):
    # notional 925.273 moves 15,421 ppm: 92.5273 * 0.984579 = 91.10043... -> 91.1004; c is below
    # that (< 91.7894): 911.004 moves 15,183 ppm: 91.1004 * 0.984817 = 89.71722... -> 89.7172.
    assert step.marks == {"X": 8_971_720_000}
    assert step.found_below == 3 and step.still_below == 0
    # market notional: 925.273 + 911.004 + 897.172
    assert step.liquidated == {"market": 2_733_449_000, "backstop": 0, "adl": 0, "borrow": 0}
    # The liquidator bought 30 at 92.5273, 91.1004 and 89.7172, valued at 89.7172:
    # 10 * (-2.8101) + 10 * (-1.3832) + 0 = -41.933
    assert step.liquidator_pnl == -41_933_000
    assert (step.rounds, step.converged, step.bad_debt, step.adl_count) == (1, True, 0, 0)


def test_without_impact_only_the_first_goes() -> None:
    # With a deep book (1% per 10^10 USDC) a's fill of 940 moves nothing: 94 stays the mark.
    deep = LiquidationConfig(mode="impact", impact_ppm=10_000, depth=10**16, fee_ppm=0)
    run = stressed(_three_longs(), parse({"steps": 1, "paths": {"X": [[1, "-6"]]}}, "fall"), deep)
    assert run.steps[1].marks == {"X": 9_400_000_000}
    assert run.steps[1].found_below == 1
    assert run.steps[1].liquidated["market"] == 940_000_000


def _two_markets() -> bytes:
    # _three_longs in two markets: xa, xb, xc long 10 X, ya, yb, yc long 10 Y, each at 100 on
    # 100, 110 and 128 USDC (below at 94.7368, 93.6842 and 91.7894 in their own market).
    lines = [market("X", 2, TEN_X), market("Y", 2, TEN_X), prices(X="100", Y="100"), deposit("mm", "10000")]
    for coin in ("X", "Y"):
        owner = coin.lower()
        lines += [deposit(f"{owner}a", "100"), deposit(f"{owner}b", "110"), deposit(f"{owner}c", "128")]
        lines += [trade(coin, "100", "10", f"{owner}{n}", "mm") for n in "abc"]
    return population(*lines)


DEEP_60K = LiquidationConfig(mode="impact", impact_ppm=10_000, depth=60_000_000_000, fee_ppm=0)


@pytest.mark.parametrize(
    ("liquidation", "depth"),
    [
        # Y's own depth in the configuration: 600 USDC, X keeps the 60,000
        (msgspec.structs.replace(DEEP_60K, market_depth={"Y": 600_000_000}), None),
        # or the scenario thins Y's book alone, to 1% of 60,000 (X has no path: 100%)
        (DEEP_60K, {"Y": [[0, "1"]]}),
    ],
)
def test_only_the_thin_market_cascades(liquidation: LiquidationConfig, depth: object) -> None:
    body = {"steps": 1, "paths": {"*": [[0, "0"], [1, "-6"]]}, **({"depth": depth} if depth else {})}
    step = stressed(_two_markets(), parse(body, "fall"), liquidation).steps[1]
    # X and Y fall to 94: xa and ya are below. X's book is 60,000 deep: xa's sale of 940 moves it
    # 10,000 * 940 / 60,000 = 156 ppm, 94 * 0.999844 = 93.985336 -> 93.9853, above xb's 93.6842.
    # Y's is 600 deep: ya, yb and yc go as the three longs' cascade, 92.5273, 91.1004, 89.7172.
    assert step.marks == {"X": 9_398_530_000, "Y": 8_971_720_000}
    assert (step.found_below, step.still_below) == (4, 0)
    # market notional: X 939.853, Y 925.273 + 911.004 + 897.172 = 2,733.449
    assert step.liquidated["market"] == 939_853_000 + 2_733_449_000
    # the liquidator's X holds its price (0); its Y is the cascade's -41.933
    assert step.liquidator_pnl == -41_933_000


# ---- borrow liquidations and the pool ------------------------------------------------------------------


def _two_borrowers() -> bytes:
    # LTV 0.5 (the older era): partial above value * 0.75, full above value * 0.833 (docs/portfolio-margin.md).
    # p1 holds 10 HYPE and borrows 250: full below 250 / 8.33 = 30.012; p2 borrows 220: partial below
    # 220 / 7.5 = 29.333, full below 220 / 8.33 = 26.41.
    return population(
        pm_rules(**OLD_ERA),
        token("HYPE"),
        prices(HYPE="50"),
        *lender(),
        deposit("p1", "10", token="HYPE"),
        deposit("p2", "10", token="HYPE"),
        set_mode("p1", "portfolio"),
        set_mode("p2", "portfolio"),
        lend("borrow", "p1", "250"),
        lend("borrow", "p2", "220"),
    )


def test_a_collateral_sale_moves_hype_into_a_second_borrower() -> None:
    scenario = parse({"steps": 1, "paths": {"HYPE": [[0, "0"], [1, "-40.2"]]}, "spot_depth": {"HYPE": "100"}}, "hype")
    step = stressed(_two_borrowers(), scenario, IMPACT).steps[1]
    # HYPE 50 * 59.8% = 29.9: p1 is past its full threshold (299 * 0.833 = 249.067 < 250), p2 is
    # not (224.25 >= 220). The backstop takes p1's 10 HYPE (worth 299) and its 250 of debt; sold
    # into a 100 USDC book at 1% per depth: 299 / 100 * 1% = 29,900 ppm, HYPE 29.9 * 0.9701 = 29.00599,
    # so the 10 fetch 290.0599 >= 250: no shortfall. p2 is now past its partial threshold
    # (290.0599 * 0.75 = 217.544925 < 220): one 20% step takes 2 HYPE (58.01198) and debt worth
    # as much; sold: 58.01198 / 100 * 1% = 5,801 ppm, HYPE 29.00599 * 0.994199 = 28.83772625; the
    # 2 fetch 57.6754525 (57.675452 in micro-USDC): 58.011980 - 57.675452 = 0.336528 short.
    # A third round finds nothing (p2: 8 * 28.8377 * 0.75 = 173.03 >= 161.99 left): converged.
    assert step.marks == {"HYPE": 2_883_772_625}
    assert step.found_below == 2 and step.rounds == 3 and step.converged
    assert step.liquidated["borrow"] == 357_011_980  # 299 + 58.01198
    assert step.pool_shortfall == 336_528
    pool = step.pools["USDC"]
    # the lender's 1,000,000 supplied, 470 lent: 0.047% used; the shortfall comes off what suppliers hold
    assert (pool.supplied, pool.lent, pool.utilisation) == (1_000_000_000_000, 470_000_000, 470_000_000)
    assert pool.supplied_after_loss == 1_000_000_000_000 - 336_528
    assert pool.utilisation_after_loss == 470_000_000 * 10**12 // (1_000_000_000_000 - 336_528)


def test_a_step_that_reaches_the_round_cap_is_reported() -> None:
    # The cascade above needs three rounds; capped at two, the step stops after p2's partial step:
    # HYPE is where round 2 found it (29.00599, the first sale's price), p2's sale is booked
    # (shortfall 0.336528) but its move is not fed, and the step is reported as not converged.
    scenario = parse({"steps": 1, "paths": {"HYPE": [[0, "0"], [1, "-40.2"]]}, "spot_depth": {"HYPE": "100"}}, "hype")
    config = StressConfig("capped", IMPACT)
    capped = run(_two_borrowers(), scenario, config, "hl-queue", check=True, max_rounds=2)
    twin = run(_two_borrowers(), scenario, config, "hl-queue", check=True, max_rounds=2, full_scan=True)
    assert capped.steps == twin.steps and capped.digest == twin.digest
    step = capped.steps[1]
    assert (step.rounds, step.converged, capped.converged) == (2, False, False)
    assert step.marks == {"HYPE": 2_900_599_000}
    assert step.pool_shortfall == 336_528


def test_a_gap_through_the_threshold_leaves_the_pool_short() -> None:
    scenario = parse({"steps": 1, "paths": {"HYPE": [[1, "-52"]]}, "spot_depth": {"HYPE": "100"}}, "gap")
    run = stressed(_two_borrowers(), scenario, IMPACT)
    step = run.steps[1]
    # HYPE 24: both past their full thresholds (199.92 < 220). 20 HYPE worth 480 sold at once:
    # 4.8% off, 24 * 0.952 = 22.848; p1's 10 fetch 228.48 against 250 (21.52 short), p2's 228.48
    # cover its 220.
    assert step.marks == {"HYPE": 2_284_800_000}
    assert (step.liquidated["borrow"], step.pool_shortfall) == (480_000_000, 21_520_000)
    assert run.total("pool_shortfall") == 21_520_000


def test_prices_stop_at_the_price_bound() -> None:
    # X at 50,000,000 and a token T with its own price at 90,000,000 rise 10,000% (a level of 101x):
    # both stop at the price bound, 100,000,000 (MAX_PX, 10^16 in 1e-8); then a fall to the 1%
    # floor: the bound times 10,000 / 101,000,000 ppm = 9,900.990099 for T, X down to its tick
    # (sz_decimals 2: 4 decimals) 9,900.99.
    pop = population(market("X", 2, TEN_X), token("T"), prices(X="50000000", T="90000000"), deposit("a", "100"))
    scenario = parse({"steps": 2, "paths": {"*": [[0, "0"], [1, "10000"], [2, "-100"]]}}, "up")
    run = stressed(pop, scenario, IMPACT)
    assert run.steps[1].marks == {"X": 10**16, "T": 10**16}
    assert run.steps[2].marks == {"X": 990_099_000_000, "T": 990_099_009_900}
    assert run.steps[1].rejected == [] and run.steps[2].rejected == []


def test_the_overshoot_replays_the_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated population (300 accounts) under `btc-led` with a backstop that declines any
    loss above 10 USDC reaches ADL. The run itself records each event's time and whether the
    liquidator declined a scope in it, so its overshoot groups the ADL rounds without replaying
    the run to find them (`measure`'s first pass): the scoring alone replays it, pass A up to
    the last round's scored event and pass B over each round, and the figures are `measure`'s."""
    pop = encode_state(generated(GeneratorConfig(accounts=300, events=6000)))
    config = StressConfig("thin", msgspec.structs.replace(STRESS_LIQUIDATION, loss_limit=usd("10")))
    stepper = Stepper(decode_state(pop), BUILTINS["btc-led"], config, "hl-queue", False)
    stepper.figures0(False)
    for k in range(1, BUILTINS["btc-led"].steps + 1):
        stepper.step(k, 20, False)
    trace = stepper.trace
    spans = rounds_of([f.time for f in trace], [i for i, f in enumerate(trace) if f.declined], DEFAULT_GAP_MS, 0)
    assert spans
    replayed: list[int] = []
    apply = overdeleverage._apply

    def counted(engine: Engine, event: object, settings: object, i: int, absorbing: bool) -> list:
        replayed.append(i)
        return apply(engine, event, settings, i, absorbing)  # type: ignore[arg-type]

    monkeypatch.setattr(overdeleverage, "_apply", counted)
    found = overshoot_of(pop, stepper.base, trace)
    assert len(replayed) == spans[-1].scored + 1 + sum(s.scored - s.first + 1 for s in spans)
    monkeypatch.setattr(overdeleverage, "_apply", apply)
    events, settings = [f.event for f in trace], [f.settings for f in trace]
    whole = measure(decode_state(pop), events, stepper.base, settings=settings).as_dict()
    assert found == Overshoot(whole["over"], whole["under"], whole["net"]) and found.over > 0
