"""Portfolio margin (docs/portfolio-margin.md): LTV headroom, the automatic borrow, repay and
supply of USDC, withdrawal limits, the fallback when a cap is hit, the PM ratio and its
liquidation through the liquidation engine, the borrow liquidation (partial 20% steps and full,
by the backstop) with the rulebook's worked numbers, and the carry trade.

Hand working next to each assertion; `Book` checks conservation (every token, the pool
included) after every event. Fees are zero unless said.
"""

from __future__ import annotations

import pytest

from clearinghouse import lending, portfolio
from events import schema as ev
from events.units import HOUR_MS, usd
from tests.support.pair import LIQUIDATOR, stamped
from tests.support.pm import OLD_ERA, lender, two_borrow_lines
from tests.support.rulebook import (
    Book,
    class_transfer,
    deposit,
    lend,
    market,
    pm_rules,
    prices,
    set_leverage,
    set_mode,
    spot_trade,
    token,
    trade,
    withdraw,
)

TEN_X = [("0", 10)]  # MM = 5% of notional


def _with_lender(book: Book, amount: str = "1000000") -> None:
    book.ok(*lender(amount))


def _boundary(book: Book, hour: int, **points: str) -> None:
    """An event at the start of `hour` (a repeated price): that hour's interest accrues, then the
    PM accounts whose USDC moved are settled with the pool (borrow, repay, supply)."""
    book.ok(stamped(prices(**points), hour * HOUR_MS))


def _figures(book: Book, name: str) -> portfolio.Figures:
    state = book.state
    return portfolio.figures(state, state.accounts[name], state.spot[name])


def test_borrowable_worked_number():
    # 10,000 HYPE at 40, LTV 0.5: 10,000 * 40 * 0.5 = 200,000 borrowable
    book = Book()
    book.ok(pm_rules(**OLD_ERA), token("HYPE"), prices(HYPE="40"))
    _with_lender(book)
    book.ok(deposit("pm", "10000", token="HYPE"), set_mode("pm", "portfolio"))
    assert _figures(book, "pm").borrow_limit == usd("200000")
    assert "headroom 200000.0" in book.reject(lend("borrow", "pm", "200000.000001")).reason
    book.ok(lend("borrow", "pm", "200000"))
    # borrowed funds never leave: withdrawable = min(usdc 200,000 - borrowed 200,000, ...) = 0
    assert "withdrawable 0.0" in book.reject(withdraw("pm", "0.000001")).reason
    # nor the collateral behind them
    assert "borrow limit" in book.reject(withdraw("pm", "0.00000001", token="HYPE")).reason


def test_the_current_era_ltv_is_the_default():
    book = Book()
    book.ok(pm_rules(pm={"min_value": "0"}), token("HYPE"), token("BTC"), prices(HYPE="40", BTC="100000"))
    book.ok(deposit("pm", "100", token="HYPE"), deposit("pm", "0.1", token="BTC"), set_mode("pm", "portfolio"))
    # 100 * 40 * 0.65 + 0.1 * 100,000 * 0.5 = 2,600 + 5,000 = 7,600
    assert _figures(book, "pm").borrow_limit == usd("7600")


def _pm_hype(book: Book, hype: str = "100") -> None:
    """`pm`: a portfolio account holding `hype` HYPE at 40 and no USDC; ETH perp at 2,000."""
    book.ok(pm_rules(pm={"min_value": "0"}), token("HYPE"), market("ETH", 4, TEN_X), prices(HYPE="40", ETH="2000"))
    _with_lender(book)
    book.ok(deposit("mm", "1000000"), deposit("pm", hype, token="HYPE"), set_mode("pm", "portfolio"))


def test_auto_borrow_on_a_perp_fill_and_auto_repay_from_profit():
    book = Book()
    _pm_hype(book)
    # pm buys 1 ETH at 2,000 paying 0.9: ledger -2,000.9, AV_cross = -0.9, borrowed at the next
    # hour boundary (no interest is owed before it)
    book.ok(trade("ETH", "2000", "1", "pm", "mm", buyer_fee="0.9"))
    spot = book.state.spot["pm"]
    assert spot.borrowed == {} and _figures(book, "pm").usdc == usd("-0.9")
    _boundary(book, 1, ETH="2000")
    assert portfolio.debt(book.state, spot, "USDC") == usd("0.9")
    assert book.state.accounts["pm"].raw_usd == usd("-2000")  # -2,000.9 + 0.9
    # closes at 2,100 paying 0.945: ledger -2,000 + 2,100 - 0.945 = 99.055 = AV_cross
    book.ok(prices(ETH="2100"), trade("ETH", "2100", "1", "mm", "pm", seller_fee="0.945"))
    _boundary(book, 2, ETH="2100")
    # hour 1 -> 2 first: U = 0.9 / 1,000,000, APY 0.05: the debt becomes
    # ceil(900,000 * (1 + 5,707,762,557,078e-18)) = 900,000 + ceil(5.14) = 0.900006; supply APY
    # 0.05 * 9e-7 * 0.9 = 4.05e-8 -> 0.0000000405: index step floor(1e18 * 4.05e-8 / 8760) = 4,623,287,671
    # then the settlement repays 0.900006 and supplies 99.055 - 0.900006 = 98.154994:
    # floor(98,154,994 / (1 + 4.623287671e-9)) = 98,154,993 shares, a claim of
    # floor(98,154,993 * (1 + 4.623287671e-9)) = floor(98,154,993.45) = 98.154993
    assert spot.borrowed == {}
    assert book.state.accounts["pm"].raw_usd == 0
    assert lending.claim(book.state.pools["USDC"], spot.supplied["USDC"]) == usd("98.154993")
    # the state output
    out = book.summary("pm")["spot"]
    assert out["supplied"] == {"USDC": "98.154993"}
    # PM figures: usdc 98.154993; req = 20 (no position, no borrow); liqValue = 98.154993 +
    # 100 * 40 * (0.5 + 0.5 * 0.65) = 98.154993 + 3,300; net = 98.154993 + 4,000
    assert out["pmRequirement"] == "20.0"
    assert out["pmLiquidationValue"] == "3398.154993"
    assert out["netBalance"] == "4098.154993"
    assert out["healthFactor"] is None
    # withdraw 50: from the supply, burning ceil(50e6 / (1 + 4.6e-9)) = 50,000,000 shares:
    # 48,154,993 left, a claim of floor(48,154,993.22) = 48.154993
    book.ok(withdraw("pm", "50"))
    assert lending.claim(book.state.pools["USDC"], spot.supplied["USDC"]) == usd("48.154993")


def test_a_spot_buy_borrows_against_what_it_buys():
    book = Book()
    book.ok(pm_rules(**OLD_ERA), token("HYPE"), prices(HYPE="50"))
    _with_lender(book)
    book.ok(deposit("seller", "5", token="HYPE"), deposit("pm", "5", token="HYPE"), set_mode("pm", "portfolio"))
    # 5 more HYPE at 50 = 250: headroom after the buy 10 * 50 * 0.5 = 250, so it may borrow it all
    assert "can pay 250.0" in book.reject(spot_trade("HYPE", "50", "5", "pm", "seller", buyer_fee="0.000001")).reason
    book.ok(spot_trade("HYPE", "50", "5", "pm", "seller"))
    spot = book.state.spot["pm"]
    assert spot.balances == {"HYPE": 1_000_000_000}  # 10 HYPE
    assert _figures(book, "pm").usdc == usd("-250")  # the shortfall, borrowed at the hour boundary
    _boundary(book, 1, HYPE="50")
    assert portfolio.debt(book.state, spot, "USDC") == usd("250")
    assert book.summary("pm")["spot"]["healthFactor"] == "1.0"  # 250 / 250


def test_fallback_when_the_borrow_cap_is_hit():
    book = Book()
    _pm_hype(book)
    book.ok(
        pm_rules(caps={"USDC": {"supply": 1000000000, "user_supply": 250000000, "borrow": 0, "user_borrow": 50000000}})
    )
    # the global borrow cap is reached (0): the fee stays a negative USDC balance (the account must
    # post USDC); the PM ratio counts it: (20 + 100) / (-0.9 + 3,300) = 0.036
    book.ok(trade("ETH", "2000", "1", "pm", "mm", buyer_fee="0.9"))
    _boundary(book, 1, ETH="2000")
    assert book.state.spot["pm"].borrowed == {}
    assert _figures(book, "pm").usdc == usd("-0.9")
    book.ok(deposit("pm", "1"))  # posts USDC: 0.1 free, supplied at the next boundary
    _boundary(book, 2, ETH="2000")
    assert lending.claim(book.state.pools["USDC"], book.state.spot["pm"].supplied["USDC"]) == usd("0.1")


def _two_borrow_books(liquidation: bool = True) -> Book:
    book = Book(liquidation=liquidation)
    book.ok(*two_borrow_lines())
    return book


def test_borrow_thresholds_worked_numbers():
    book = _two_borrow_books(liquidation=False)  # to read the stages without acting on them
    state, spot = book.state, book.state.spot["pm"]
    book.ok(prices(HYPE="33"))
    # 33: collateral 330; partial 330 * (0.5 + 0.5/2) = 247.50 < 250 -> partial; full 330 * 0.833 = 274.89
    assert portfolio.thresholds(state, spot) == (usd("330"), usd("247.5"), usd("274.89"))
    assert portfolio.borrow_stage(state, spot) == ("partial", usd("250"), usd("330"), usd("247.5"))
    book.ok(prices(HYPE="30"))
    # 30: full threshold 300 * 0.833 = 249.90 < 250 -> full (the exact factor would give 250.00: not full)
    assert portfolio.borrow_stage(state, spot) == ("full", usd("250"), usd("300"), usd("249.9"))


def test_threshold_factor_rounds_down_to_a_thousandth():
    # LTV 0.5: 0.5 + 2 * 0.5 / 3 = 0.8333... -> 0.833 (rounding down lowers the threshold: against
    # the borrower); 300 * 0.833 = 249.90 where the exact factor gives 250.00
    assert portfolio._factor(500_000_000_000, 2, 3, 1_000_000_000) == 833_000_000_000
    assert portfolio._factor(500_000_000_000, 1, 2, 1_000_000_000) == 750_000_000_000
    # LTV 0.65: 0.65 + 0.35 * 2/3 = 0.88333 -> 0.883; 0.65 + 0.35/2 = 0.825
    assert portfolio._factor(650_000_000_000, 2, 3, 1_000_000_000) == 883_000_000_000
    assert portfolio._factor(650_000_000_000, 1, 2, 1_000_000_000) == 825_000_000_000


def test_partial_borrow_liquidation_at_33():
    book = _two_borrow_books()
    derived = book.send(prices(HYPE="33"))
    # partial (250 > 247.50). Step 1: 20% of the 10 HYPE = 2 HYPE, worth 66, go to the backstop
    # with 66 of the debt: borrowed 184, collateral 264, partial threshold 198: below it; but the
    # PM ratio (20 + 184) / (8 * 33 * 0.75) = 204 / 198 = 1.03 > 0.95 with no position to close,
    # so step 2: 2 more HYPE, 66 more debt: borrowed 118, collateral 198; ratio
    # 138 / (6 * 33 * 0.75 = 148.5) = 0.929: done
    seq = book.state.next_seq - 1
    assert derived == [
        ev.BorrowLiquidation(
            account="pm",
            kind="partial",
            borrowed=usd("250"),
            collateral_value=usd("330"),
            threshold=usd("247.5"),
            taken={"HYPE": 400_000_000},
            usdc=0,
            repaid=usd("132"),
            cause=seq,
            ts=HOUR_MS,
        ),
    ]
    spot = book.state.spot["pm"]
    assert spot.balances == {"HYPE": 600_000_000}
    assert portfolio.debt(book.state, spot, "USDC") == usd("118")
    liquidator = book.state.spot[LIQUIDATOR]
    assert liquidator.balances == {"HYPE": 400_000_000}
    assert portfolio.debt(book.state, liquidator, "USDC") == usd("132")  # the backstop carries the debt it took


def test_full_borrow_liquidation_at_30():
    book = _two_borrow_books()
    derived = book.send(prices(HYPE="30"))
    # full: 250 > 300 * 0.833 = 249.90. Everything goes to the backstop: 10 HYPE and the 250 debt
    seq = book.state.next_seq - 1
    assert derived == [
        ev.BorrowLiquidation(
            account="pm",
            kind="full",
            borrowed=usd("250"),
            collateral_value=usd("300"),
            threshold=usd("249.9"),
            taken={"HYPE": 1_000_000_000},
            usdc=0,
            repaid=usd("250"),
            cause=seq,
            ts=HOUR_MS,
        ),
    ]
    assert book.state.spot["pm"].balances == {} and book.state.spot["pm"].borrowed == {}
    assert book.state.spot[LIQUIDATOR].balances == {"HYPE": 1_000_000_000}


def test_pm_ratio_liquidates_perps_through_the_liquidation_engine():
    book = Book()
    _pm_hype(book)  # 100 HYPE at 40: liquidation value 100 * 40 * 0.825 = 3,300
    book.ok(trade("ETH", "2000", "10", "mm", "pm"))  # short 10 ETH, no fee: AV_cross 0
    # ETH 2,200: AV -2,000; MM 22,000 * 5% = 1,100; req 1,120; liqValue 1,300: 0.8615
    book.ok(prices(ETH="2200"))
    f = _figures(book, "pm")
    assert (f.requirement, f.liq_value) == (usd("1120"), usd("1300"))
    # ETH 2,250: AV -2,500; MM 1,125; req 1,145; liqValue 800: 1.43 > 0.95
    derived = book.send(prices(ETH="2250"))
    seq = book.state.next_seq - 1
    assert derived == [
        # maintenance shown: req / 0.95 = 1,205.263157.9 -> rounded up 1,205.263158
        ev.LiquidationTriggered(
            account="pm",
            scope="portfolio",
            cause=seq,
            equity=usd("800"),
            maintenance=usd("1205.263158"),
            positions=[ev.PositionView("ETH", -1_000_000_000, 225_000_000_000)],
            phase="market",
            ts=0,
        ),
        # 10 ETH at 2,250 = 22,500 (below 100k: all of it), fee 0.045% = 10.125
        ev.LiquidationFill(
            account="pm", coin="ETH", sz=1_000_000_000, px=225_000_000_000, fee=usd("10.125"), cause=seq, ts=0
        ),
    ]
    # ledger 20,000 - 22,500 - 10.125 = -2,510.125, borrowed at the next hour boundary (headroom
    # 100 * 40 * 0.65 = 2,600)
    assert book.state.accounts["pm"].raw_usd == usd("-2510.125")
    _boundary(book, 1, ETH="2250")
    spot = book.state.spot["pm"]
    assert portfolio.debt(book.state, spot, "USDC") == usd("2510.125")
    assert book.state.accounts["pm"].raw_usd == 0
    # afterwards: req 20 + 2,510.125 = 2,530.125, liqValue 3,300: 0.767, healthy
    assert not portfolio.pm_liquidatable(book.state, book.state.accounts["pm"], spot)


def _carry(mode: str, leverage: int, move: str) -> list:
    """Long 1,000 HYPE spot and short 1,000 HYPE perp at 40 with 40,000 / leverage USDC of margin;
    then HYPE moves to `move`. Returns what the move derived."""
    book = Book()
    book.ok(
        token("HYPE"),
        market("HYPE", 2, TEN_X),
        prices(HYPE="40"),
        deposit("mm", "10000000"),
        deposit("carry", str(40_000 // leverage)),
        deposit("carry", "1000", token="HYPE"),
    )
    if mode == "portfolio":
        _with_lender(book)
        book.ok(set_mode("carry", "portfolio"))  # value 40,000 / L + 40,000 > 10k
    book.ok(set_leverage("carry", "HYPE", leverage), trade("HYPE", "40", "1000", "mm", "carry"))
    return book.send(prices(HYPE=move))


@pytest.mark.parametrize("leverage", [1, 2, 3, 4, 5])
def test_carry_trade_survives_50_percent_either_way_in_portfolio_margin(leverage):
    # +50% (60): the short loses 20,000; usdc = -20,000 + 40,000 / L (supplied); HYPE counts
    # 1,000 * 60 * 0.825 = 49,500; req = 20 + 60,000 * 5% = 3,020. At 5x: 3,020 / 37,500 = 0.08.
    # -50% (20): usdc = 20,000 + 40,000 / L; HYPE 16,500; req 1,020: far from 0.95
    assert _carry("portfolio", leverage, "60") == []
    assert _carry("portfolio", leverage, "20") == []


@pytest.mark.parametrize("leverage", [2, 3, 4, 5])
def test_the_same_carry_in_a_standard_account_is_liquidated(leverage):
    # standard: the perp ledger only has 40,000 / L; at 60 AV = 40,000 / L - 20,000 <= 0 < MM 3,000
    # (the spot HYPE is a separate balance). At 1x AV = 20,000 >= 3,000: a fully funded short
    # survives even in a standard account.
    derived = _carry("standard", leverage, "60")
    assert derived and isinstance(derived[0], ev.LiquidationTriggered) and derived[0].account == "carry"
    assert _carry("standard", 1, "60") == []


def test_lowering_leverage_in_portfolio_margin_needs_no_cross_margin():
    book = Book()
    _pm_hype(book)  # USDC none, 100 HYPE of collateral
    book.ok(set_leverage("pm", "ETH", 10), trade("ETH", "2000", "1", "pm", "mm"))
    # cross AV 0 < the 2,000 a 1x position would need: a standard account is refused, a PM
    # account's cross book answers to the PM ratio ((20 + 100) / 3,300) only
    book.ok(set_leverage("pm", "ETH", 1))
    assert book.state.accounts["pm"].positions["ETH"].leverage == 1


def test_a_pm_seller_pays_a_fee_above_its_proceeds_out_of_its_supply():
    """`pm`'s 1,000 USDC sits in the pool (its ledger is 0). It sells 0.1 HYPE at 50 (5 USDC) with
    a fee of 8: the 3 its proceeds do not cover come out of its supply, so its ledger stays 0 and
    its supply claim falls to 997; the buyer pays 5 from its spot USDC."""
    book = Book()
    book.ok(pm_rules(**OLD_ERA), token("HYPE"), prices(HYPE="50"))
    book.ok(
        deposit("pm", "1000"),
        deposit("pm", "1", token="HYPE"),
        set_mode("pm", "portfolio"),
        deposit("buyer", "10"),
        class_transfer("buyer", "10", to_perp=False),
    )
    _boundary(book, 1, HYPE="50")
    pool = book.state.pools["USDC"]
    assert book.state.accounts["pm"].raw_usd == 0 and pool.idle == usd("1000")
    book.ok(spot_trade("HYPE", "50", "0.1", "buyer", "pm", seller_fee="8"))
    spot = book.state.spot["pm"]
    assert book.state.accounts["pm"].raw_usd == 0
    assert lending.claim(pool, spot.supplied["USDC"]) == usd("997") and pool.idle == usd("997")
    assert spot.balances == {"HYPE": 90_000_000}
    assert book.state.spot["buyer"].balances == {"USDC": usd("5"), "HYPE": 10_000_000}
    assert book.state.fees == usd("8")


def test_a_spot_buy_the_pool_cannot_pay_out_is_rejected_whole():
    """A PM buyer whose USDC sits in the pool, lent out but for 100: a buy of 200 would need 200
    of it, so the trade is rejected, and nothing of it (balances, the pool) has moved."""
    book = Book()
    book.ok(pm_rules(**OLD_ERA), token("HYPE"), prices(HYPE="50"))
    book.ok(
        deposit("pm", "1000"),
        set_mode("pm", "portfolio"),
        deposit("b", "100", token="HYPE"),
        set_mode("b", "portfolio"),
        deposit("seller", "10", token="HYPE"),
    )
    _boundary(book, 1, HYPE="50")  # pm's idle 1,000 USDC is supplied to the pool
    book.ok(lend("borrow", "b", "900"))  # against 100 HYPE * 50 * 0.5 = 2,500 of room: the pool keeps 100
    assert book.state.pools["USDC"].idle == usd("100")
    rejected = book.reject(spot_trade("HYPE", "50", "4", "pm", "seller"))
    assert rejected.reason == "the USDC pool holds only 100.0 (the rest is lent out)"
    assert (
        book.state.spot["seller"].balances == {"HYPE": 1_000_000_000} and "HYPE" not in book.state.spot["pm"].balances
    )
