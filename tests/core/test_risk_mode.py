"""The risk model as an account mode (docs/risk-margin.md): `set_mode ... "risk"`, its
parameters by a `rules` event, trades and removals checked against IM, and a liquidation when
equity falls below MM, through the same engine (indexed and full scan alike). Figures by hand
under the parameters of risk-model.md (BTC moves -15%, 0, +15% at weight 1; MM factor 0.5, IM
factor 1; basis 0.5% / 1%; no perp contingency, floor or concentration for BTC)."""

from __future__ import annotations

import json

import pytest

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.models.registry import model_of
from clearinghouse.models.risk import RISK
from events import schema as ev
from events.codec import decode_json
from events.units import usd
from tests.support.risk import SPEC_PARAMS
from tests.support.rulebook import (
    BTC_TIERS,
    ETH_TIERS,
    Book,
    class_transfer,
    deposit,
    isolated_margin,
    lend,
    market,
    prices,
    set_leverage,
    set_mode,
    trade,
)


def _risk_rules(data: dict = SPEC_PARAMS) -> str:  # type: ignore[type-arg]
    return json.dumps({"type": "rules", "risk": data})


def _book(full_scan: bool = False) -> Book:
    book = Book()
    if full_scan:
        book.engine = Engine(full_scan=True)
    book.ok(
        market("BTC", 5, BTC_TIERS),
        prices(BTC="100000"),
        _risk_rules(),
        deposit("a", "20000"),
        set_mode("a", "risk"),
        deposit("b", "1000000"),
    )
    return book


def test_set_mode_risk_and_its_figures() -> None:
    book = _book()
    assert book.state.spot["a"].mode == "risk"
    assert model_of(book.state, "a") is RISK
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    # long 1 BTC: scan 0.15 * 100,000 = 15,000; MM 7,500, IM 15,000; equity the 20,000 deposited
    req = RISK.requirement(book.state, book.state.accounts["a"], book.state.spot["a"])
    assert (req.equity, req.initial, req.maintenance) == (usd("20000"), usd("15000"), usd("7500"))


def test_a_trade_above_initial_is_rejected() -> None:
    book = _book()
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    # 1.5 BTC: IM 0.15 * 150,000 = 22,500 above equity 20,000
    rejected = book.reject(trade("BTC", "100000", "0.5", buyer="a", seller="b"))
    assert rejected.reason == "'a': equity 20000.0 would be below the initial requirement 22500.0"
    # reducing is always booked, even when equity is below IM (here it is not needed, but allowed)
    book.ok(trade("BTC", "100000", "0.5", buyer="b", seller="a"))


def test_a_withdrawal_must_leave_initial() -> None:
    book = _book()
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    # equity 20,000 - IM 15,000 = 5,000 withdrawable
    book.reject(json.dumps({"type": "withdraw", "account": "a", "amount": "5000.000001"}))
    book.ok(json.dumps({"type": "withdraw", "account": "a", "amount": "5000"}))


@pytest.mark.parametrize("full_scan", [False, True])
def test_liquidated_when_equity_falls_below_maintenance(full_scan: bool) -> None:
    book = _book(full_scan)
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    # at 90,000: equity 20,000 - 10,000 = 10,000, MM 0.5 * 0.15 * 90,000 = 6,750: healthy
    book.ok(prices(BTC="90000"))
    # at 85,000: equity 5,000, MM 0.5 * 0.15 * 85,000 = 6,375: the position (85,000 of notional,
    # under the 100k partial threshold) is closed whole at the mark, fee 0.045% = 38.25
    derived = book.send(prices(BTC="85000"))
    assert [type(d) for d in derived] == [ev.LiquidationTriggered, ev.LiquidationFill]
    triggered, fill = derived
    assert (triggered.scope, triggered.equity, triggered.maintenance) == ("risk", usd("5000"), usd("6375"))
    assert (fill.sz, fill.px, fill.fee) == (-(10**8), 85_000 * 10**8, usd("38.25"))
    assert book.state.accounts["a"].raw_usd == usd("4961.75")


def test_risk_parameters_out_of_range_are_rejected_and_change_nothing() -> None:
    book = _book()
    rejected = book.reject(_risk_rules({**SPEC_PARAMS, "im_loss_factor": "0.1"}))
    assert rejected.reason == "im_loss_factor must not be below mm_loss_factor"


def test_a_state_that_never_set_risk_parameters_digests_as_before() -> None:
    """The `risk` field of the state is not encoded while unset, so the digest of every earlier
    state stays as it was; a `rules` event sets it."""
    engine = Engine()
    before = state_digest(engine.state)
    assert before == "12c94172f6eaec2e0977424cfcb2603fb40cc26625e5396bae90e1b51e5e1a1d"  # State() before risk existed
    event = decode_json(_risk_rules())
    engine.apply(event)
    assert engine.state.risk == event.risk


def test_a_borrow_is_financed_against_initial_with_the_loan_charge() -> None:
    book = _book()
    book.ok(
        deposit("lender", "1000000"),
        class_transfer("lender", "1000000", to_perp=False),
        lend("supply", "lender", "1000000"),
        trade("BTC", "100000", "1", buyer="a", seller="b"),
    )
    # equity 20,000 (a borrow adds cash and debt alike), IM 15,000 + 0.02 * borrowed:
    # 250,000.05 borrowed needs 15,000 + 5,000.001 = 20,000.001 > 20,000
    rejected = book.reject(lend("borrow", "a", "250000.05"))
    assert rejected.reason == "equity 20000.0 would be below the initial requirement 20000.001"
    # 250,000: IM 15,000 + 5,000 = 20,000, equal to equity
    book.ok(lend("borrow", "a", "250000"))
    assert book.state.accounts["a"].raw_usd == usd("270000") - usd("100000")  # deposit + borrow - the BTC bought


def _spot(buyer: str, seller: str, px: str, sz: str = "1") -> str:
    return json.dumps(
        {"type": "spot_trade", "base": "BTC", "quote": "USDC", "px": px, "sz": sz, "buyer": buyer, "seller": seller}
    )


def test_selling_the_spot_leg_of_a_carry_must_leave_initial() -> None:
    book = _book()
    book.ok(
        json.dumps({"type": "token", "token": "BTC", "decimals": 8}),
        deposit("lender", "1000000"),
        class_transfer("lender", "1000000", to_perp=False),
        lend("supply", "lender", "1000000"),
        json.dumps({"type": "deposit", "account": "m", "amount": "1", "token": "BTC"}),
        deposit("s", "200000"),
        class_transfer("s", "200000", to_perp=False),
        deposit("c", "20000"),
        set_mode("c", "risk"),
        # 80,000 borrowed: IM 2% of it = 1,600 <= equity 20,000
        lend("borrow", "c", "80000"),
        # 1 BTC bought: IM 15,000 + 1,600 = 16,600 <= 20,000; then the perp short hedges it:
        # IM basis 1% of 100,000 + 1,600 = 2,600
        _spot("c", "m", "100000"),
        trade("BTC", "100000", "1", buyer="b", seller="c"),
        # at 130,000: ledger 20,000 + 80,000 - 100,000 + 100,000 = 100,000, AV -30,000; equity
        # -30,000 + 130,000 - 80,000 = 20,000; MM 650 + 800: healthy
        prices(BTC="130000"),
    )
    # selling the spot at 130,000 unhedges the short: IM 15% of 130,000 + 1,600 = 21,100 > 20,000
    rejected = book.reject(_spot("s", "c", "130000"))
    assert rejected.reason == "equity 20000.0 would be below the initial requirement 21100.0"
    # half of it: net short 0.5 BTC, IM 9,750 + basis 1% of 65,000 = 650 + 1,600 = 12,000
    book.ok(_spot("s", "c", "130000", "0.5"))


def test_margin_moved_into_an_isolated_position_leaves_the_risk_book() -> None:
    book = _book()
    book.ok(
        market("ETH", 4, ETH_TIERS),
        prices(BTC="100000", ETH="4000"),
        set_leverage("a", "ETH", 10, cross=False),
        # isolated long 1 ETH at 10x: its margin 400 leaves the cross ledger (the risk book)
        trade("ETH", "4000", "1", buyer="a", seller="b"),
        trade("BTC", "100000", "1", buyer="a", seller="b"),
    )
    # risk book: equity 20,000 - 400 = 19,600, IM 15,000: 4,600 may move; the cross
    # withdrawable of the rulebook (19,600 - max(100,000 / 20, 10% of 100,000)) = 9,600 would allow more
    rejected = book.reject(isolated_margin("a", "ETH", "4600.000001"))
    assert rejected.reason == "delta 4600.000001 is above the risk model's withdrawable 4600.0"
    book.ok(isolated_margin("a", "ETH", "4600"))


def test_the_overview_ranks_a_risk_account_on_its_own_figures() -> None:
    from clearinghouse.overview import overview

    book = _book()
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    ranked = overview(book.state)["most_leveraged"]
    # a: equity 20,000, MM 7,500 (above): ratio 0.375, leverage 100,000 / 20,000 = 5.
    # b (standard, BTC at 40x): MM 100,000 / 80 = 1,250 on 1,000,000: ratio 12.5 bp, shown to
    # 4 decimals half to even 0.0012; leverage 0.1
    assert [
        (r["account"], r["margin_ratio"], r["leverage"], r["account_value"], r["maintenance"]) for r in ranked
    ] == [
        ("a", "0.375", "5.0", "20000.0", "7500.0"),
        ("b", "0.0012", "0.1", "1000000.0", "1250.0"),
    ]
