"""Stress runs under the backtest's configuration files (docs/stress.md, "Configurations"):
a configuration's tiers, leverage cap and margin model reach the population as input events
before step 1, worked by hand.

The population is tests/replay/test_stress.py's three longs: 10 X at 100 each on 100, 110 and 128
USDC against `mm`, on one tier of 10x (MM = notional / 20). The book is deep (1% per 10^10 USDC),
so a liquidation fill moves no price and each account's fate is its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from clearinghouse.state import LiquidationConfig
from replay.stress.configs import ConfigError, StressConfig, load_config
from replay.stress.scenario import parse
from tests.support.pair import TEN_X
from tests.support.rulebook import deposit, market, prices, trade
from tests.support.stress import population, stressed

DEEP = LiquidationConfig(mode="impact", impact_ppm=10_000, depth=10**16, fee_ppm=0)
FALL = parse({"steps": 1, "paths": {"X": [[0, "0"], [1, "-6"]]}}, "fall")


def _longs(*more: str) -> bytes:
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
        *more,
    )


def _config(tmp_path: Path, body: dict, flags: LiquidationConfig = DEEP) -> StressConfig:
    path = tmp_path / f"{body['name']}.json"
    path.write_text(json.dumps(body))
    return load_config(str(path), flags)


def test_a_lower_leverage_cap_liquidates_more_at_step_1(tmp_path: Path) -> None:
    # Default (10x): X falls 6% to 94; notional 940, MM 47. a's value is 100 - 60 = 40 < 47:
    # liquidated (above 2/3 of MM, 31.33: the market phase, 10 sold at 94). b has 50, c 68: safe.
    default = stressed(_longs(), FALL, DEEP)
    assert default.steps[1].found_below == 1
    assert default.steps[1].liquidated == {"market": 940_000_000, "backstop": 0, "adl": 0, "borrow": 0}
    # Capped at 8x, X is re-listed before step 1 with one tier of 8x: MM = notional / 16. At 100
    # (MM 62.5) nobody is below, so step 0 liquidates nobody. At 94, MM = 58.75: a (40) and b (50)
    # are below, both above 2/3 of it (39.17): two market sales of 10 at 94; c (68) is safe.
    capped = stressed(_longs(), FALL, _config(tmp_path, {"name": "cap8", "max_leverage": 8}))
    assert (capped.config, capped.unapplied) == ("cap8", [])
    assert capped.steps[0].found_below == 0 and capped.steps[0].liquidated_notional == 0
    assert capped.steps[1].found_below == 2
    assert capped.steps[1].liquidated == {"market": 1_880_000_000, "backstop": 0, "adl": 0, "borrow": 0}
    assert capped.steps[1].marks == {"X": 9_400_000_000}
    assert capped.digest != default.digest


def test_tiers_that_put_an_account_under_at_once_liquidate_it_in_step_0(tmp_path: Path) -> None:
    # One tier of 5x: MM = notional / 10 = 100 at X 100. a's value is 100, not below 100: safe;
    # a second tier from 500 USDC at 4x: MM = 1000 / 8 - 500 * (1/8 - 1/10) = 125 - 12.5 = 112.5,
    # so a (100) and b (110) are below at the re-listing, c (128) is not. a is above 2/3 of
    # 112.5 (75), so both go through the market phase at step 0: 10 sold at 100 each.
    tiers = {"X": [{"lower_bound": "0", "max_leverage": 5}, {"lower_bound": "500", "max_leverage": 4}]}
    run = stressed(_longs(), FALL, _config(tmp_path, {"name": "tiers", "tiers": tiers}))
    assert run.steps[0].found_below == 2
    assert run.steps[0].liquidated["market"] == 2_000_000_000
    # step 1: X 94, c's notional 940 (second tier): MM 940 / 8 - 12.5 = 105; c has 68: below,
    # and above 2/3 of 105 (70)? No: 68 < 70, so the backstop takes c over (10 at mark 94).
    assert run.steps[1].found_below == 1
    assert run.steps[1].liquidated == {"market": 0, "backstop": 940_000_000, "adl": 0, "borrow": 0}


def test_a_model_switch_the_engine_refuses_is_reported(tmp_path: Path) -> None:
    # d holds USDC only: its switch to unified is applied. a, b, c and mm hold positions: the
    # engine refuses each switch (no open position allowed) and they stay standard, so step 1 is
    # the default's (a alone liquidated).
    config = _config(tmp_path, {"name": "unified", "model": "unified"})
    run = stressed(_longs(deposit("d", "50")), FALL, config)
    reason = "switching modes needs no open position"
    assert [(u.event, u.subject, u.reason) for u in run.unapplied] == [
        ("set_mode", name, reason) for name in ("a", "b", "c", "mm")
    ]
    assert run.steps[1].found_below == 1
    assert run.steps[1].liquidated["market"] == 940_000_000
    # a listed account the population does not hold is refused by the engine too
    listed = _config(tmp_path, {"name": "listed", "model": "unified", "accounts": ["d", "zed"]})
    run = stressed(_longs(deposit("d", "50")), FALL, listed)
    assert [(u.event, u.subject, u.reason) for u in run.unapplied] == [("set_mode", "zed", "unknown account 'zed'")]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"name": "x", "max_leverage": 0}, "Expected `int` >= 1 - at `$.max_leverage`"),
        ({"name": "x", "model": "cross"}, "unknown margin model 'cross'"),
        ({"name": "x", "liquidation": {"impact": "1"}}, "Object contains unknown field `impact` - at `$.liquidation`"),
        ({"name": "x", "liquidation": {"liquidation": "off"}}, "mode 'off' cannot be stressed"),
        (
            {"name": "x", "liquidation": {"market_depth": {"X": "0"}}},
            "liquidation.market_depth.X: expected from 0.000001 to 10000000000 USDC, got '0'",
        ),
        (
            {"name": "x", "liquidation": {"market_depth": {"X": "1.0000001"}}},
            "liquidation.market_depth.X: ",
        ),
        (
            {"name": "x", "liquidation": {"market_depth": {"X Y": "5"}}},
            "liquidation market depth: 'X Y' is not a coin name",
        ),
        (
            {"name": "x", "liquidation": {"market_depth": {f"C{i}": "1" for i in range(1001)}}},
            "liquidation market depth names 1001 markets, at most 1000",
        ),
        (
            {"name": "x", "liquidation": {"market_depth": {"X": 5}}},
            "Expected `str`, got `int` - at `$.liquidation.market_depth[...]`",
        ),
    ],
)
def test_bad_configurations_are_the_backtests_errors(tmp_path: Path, body: dict, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, body)
    assert said in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_null_loss_limit_is_an_unlimited_backstop(tmp_path: Path) -> None:
    limited = LiquidationConfig(mode="impact", loss_limit=100_000_000)
    path = tmp_path / "open.json"
    path.write_text(json.dumps({"name": "open", "liquidation": {"liquidator_loss_limit": None, "depth": "600"}}))
    config = load_config(str(path), limited)
    assert (config.liquidation.loss_limit, config.liquidation.depth, config.plan) == (None, 600_000_000, None)


def test_a_market_depth_replaces_the_flags_map(tmp_path: Path) -> None:
    """`market_depth` in a file is the whole map (USDC as decimal strings), over the flags' one;
    `{}` clears it; left out, the flags' map stays."""
    flags = LiquidationConfig(mode="impact", market_depth={"Y": 1})
    given = {"name": "own", "liquidation": {"market_depth": {"X": "600", "BTC": "0.5"}}}
    assert _config(tmp_path, given, flags).liquidation.market_depth == {"BTC": 500_000, "X": 600_000_000}
    cleared = {"name": "cleared", "liquidation": {"market_depth": {}}}
    assert _config(tmp_path, cleared, flags).liquidation.market_depth is msgspec.UNSET
    kept = {"name": "kept", "liquidation": {"depth": "600"}}
    assert _config(tmp_path, kept, flags).liquidation.market_depth == {"Y": 1}
