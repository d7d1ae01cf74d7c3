"""Every rule parameter has a documented range (docs/wire-format.md, "Rule parameters and event
time"); a `rules` or `market` event outside it is rejected with the reason and changes nothing,
liquidation settings outside theirs are refused before a run starts, and paths that divide by a
mark or a parameter never see zero."""

from __future__ import annotations

import msgspec
import pytest

from clearinghouse.engine import Engine
from clearinghouse.liquidation import settings_error
from clearinghouse.state import LiquidationConfig, State
from events.schema import Adl, BadDebt, Caps, LiquidationTriggered, MarginTier, Market, PmParams, Rules
from events.units import RATE, usd
from tests.support.pair import Pair
from tests.support.rejecting import accepted, rejected
from tests.support.rulebook import BTC_TIERS, Book, deposit, market, pm_rules, trade


@pytest.mark.parametrize(
    ("pm", "reason"),
    [
        ({"liq_ratio": 0}, "liq_ratio"),  # divided by in the PM maintenance and withdrawable
        ({"liq_ratio": 1}, "liq_ratio"),  # 1e-12: a maintenance of req * 10^12
        ({"liq_ratio": RATE // 100 - 1}, "liq_ratio"),
        ({"liq_ratio": RATE + 1}, "liq_ratio"),
        ({"partial_step": RATE // 100 - 1}, "partial_step"),  # more than 100 borrow-liquidation steps
        ({"partial_step": RATE + 1}, "partial_step"),
        ({"threshold_quantum": 0}, "threshold_quantum"),
        ({"base_apy": 100 * RATE + 1}, "base_apy"),
        ({"slope": -1}, "slope"),
        ({"kink": 0}, "kink"),
        ({"supply_share": RATE + 1}, "supply_share"),
        ({"min_requirement": usd("10000000000") + 1}, "min_requirement"),
        ({"max_value": -1}, "max_value"),
    ],
)
def test_pm_parameters_out_of_range_are_rejected(pm: dict[str, int], reason: str):
    assert reason in rejected(Engine(), Rules(pm=PmParams(**pm))).reason


def test_the_liq_ratio_of_zero_on_the_wire_is_rejected():
    book = Book()
    assert "liq_ratio" in book.reject(pm_rules(pm={"liq_ratio": "0"})).reason


def test_pm_parameters_at_their_limits_are_accepted():
    engine = Engine()
    accepted(
        engine,
        Rules(
            pm=PmParams(
                liq_ratio=RATE // 100,
                partial_step=RATE // 100,
                base_apy=100 * RATE,
                slope=0,
                min_requirement=usd("10000000000"),
            )
        ),
    )
    accepted(engine, Rules(pm=PmParams(liq_ratio=RATE, partial_step=RATE)))
    rules = engine.state.pm_rules
    assert (rules.liq_ratio, rules.partial_step) == (RATE, RATE)
    assert (rules.base_apy, rules.min_requirement) == (100 * RATE, usd("10000000000"))


def test_caps_are_bounded_in_whole_tokens():
    engine = Engine()
    assert "at most 10000000000 tokens" in rejected(engine, Rules(caps={"USDC": Caps(supply=10_000_000_001)})).reason
    assert "must not be negative" in rejected(engine, Rules(caps={"USDC": Caps(user_borrow=-1)})).reason
    accepted(engine, Rules(caps={"USDC": Caps(supply=10_000_000_000)}))


def _tiers(*tiers: tuple[int, int]) -> Market:
    return Market(coin="XYZ", sz_decimals=2, margin_tiers=[MarginTier(lower, lev) for lower, lev in tiers])


@pytest.mark.parametrize(
    ("tiers", "reason"),
    [
        ([(usd("1") * i, 20) for i in range(17)], "at most 16"),  # 17 tiers
        ([(usd("1") * i, 20) for i in range(47)], "at most 16"),
        ([(0, 201)], "between 1 and 200"),
        ([(0, 20), (usd("1000000000000"), 10)], "at most 10000000000"),  # a bound of 1e12 USDC
        # 16 distinct primes: their product (above 127^16 = 4.6e33) is the table's denominator
        (
            list(enumerate([199, 197, 193, 191, 181, 179, 173, 167, 163, 157, 151, 149, 139, 137, 131, 127])),
            "too large",
        ),
        # den = 2 * lcm(200, 199, 1) = 79,600; the last tier's deduction numerator is at least
        # 10^16 * (79,600 - 200) = 7.9e20 (the 200x to 1x step of multipliers over 10^10 USDC)
        ([(0, 200), (1, 199), (usd("10000000000"), 1)], "too large"),
    ],
)
def test_margin_tables_out_of_range_are_rejected(tiers: list[tuple[int, int]], reason: str):
    engine = Engine()
    assert reason in rejected(engine, _tiers(*tiers)).reason
    assert "XYZ" not in engine.state.markets


def test_liquidation_settings_out_of_range_are_refused():
    assert settings_error(LiquidationConfig()) is None
    assert settings_error(LiquidationConfig(loss_limit=0, slippage_ppm=500_000, partial_ppm=1_000_000)) is None
    bad = {
        "mode": "fast",
        "depth": 0,
        "slippage_ppm": 500_001,
        "impact_ppm": -1,
        "fee_ppm": 1_000_001,
        "partial_ppm": 0,
        "partial_above": -1,
        "cooldown_ms": -1,
        "loss_limit": -1,
    }
    for field, value in bad.items():
        config = msgspec.structs.replace(LiquidationConfig(), **{field: value})
        assert settings_error(config), field
        with pytest.raises(ValueError):
            Engine(State(liquidation=config))


def test_a_trade_in_a_market_that_never_had_a_price_with_a_loss_limit():
    """No mark: the buyer's position is worth 0, so paying 100 for it leaves equity -99 (below its
    maintenance of 0, and below 2/3 of it: the backstop), a loss above the liquidator's limit of 1:
    ADL. The seller's short ranks with score 0 (no mark, no notional) instead of dividing by the
    mark, and closes against the buyer at the previous mark, none: one tick, 0.0001."""
    pair = Pair(loss_limit=usd("1"))
    pair.ok(market("XYZ", 2, BTC_TIERS), deposit("buyer", "1"), deposit("seller", "1"))
    seq, derived = pair.at(trade("XYZ", "100", "1", "buyer", "seller"))
    kinds = [type(d) for d in derived]
    assert kinds == [LiquidationTriggered, Adl, BadDebt], derived
    adl, debt = derived[1], derived[2]
    assert (adl.account, adl.counterparty, adl.sz, adl.px, adl.cause) == ("buyer", "seller", -100_000_000, 10_000, seq)
    # buyer: 1 - 100 + 0.0001 = -98.9999, flat: bad debt (the liquidator declined it)
    assert (debt.amount, pair.raw("buyer")) == (usd("98.9999"), 0)
    # seller: 1 + 100 - 0.0001 = 100.9999, flat
    assert (pair.raw("seller"), pair.szi("seller", "XYZ")) == (usd("100.9999"), 0)


def test_the_cli_refuses_liquidation_settings_out_of_range(tmp_path, capsys):
    from clearinghouse.edges.cli import main

    source = tmp_path / "one.jsonl"
    source.write_text('{"type":"deposit","account":"a","amount":"1"}\n')
    assert main(["-q", "ingest", str(source), "--log", str(tmp_path / "log")]) == 0
    # The flags take their ranges from the core's table (liquidation.SETTING_RANGES): argparse refuses.
    for flag, value, message in (
        ("--liquidator-loss-limit", "-5", "expected from 0 to 10000000000 USDC, got '-5'"),
        ("--depth", "0", "expected from 0.000001 to 10000000000 USDC, got '0'"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["-q", "run", "--log", str(tmp_path / "log"), flag, value])
        assert exit_.value.code == 2
        assert f"argument {flag}: {message}" in capsys.readouterr().err
    # settings that reach the core by another road (a settings file) get the same ranges, in the same units
    assert settings_error(LiquidationConfig(loss_limit=-5)) == (
        "liquidation liquidator loss limit must be between 0 USDC and 10000000000 USDC"
    )
    assert (
        settings_error(LiquidationConfig(slippage_ppm=500_001))
        == "liquidation slippage must be between 0 bps and 5000 bps"
    )
