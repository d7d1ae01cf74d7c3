"""The lending pool (docs/portfolio-margin.md): the kinked rate curve, share-based balances,
hourly accrual in event time, caps, explicit supply / withdraw_supply / borrow / repay, and
interest by index against hourly compounding over a year.

Hand working next to each assertion. `Book` checks conservation after every event, pools
included: idle + lent = supplied + protocol + dust, interest paid = earned + protocol share.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

import pytest

from clearinghouse import lending
from clearinghouse.rules import PmRules
from events.units import HOUR_MS, RATE, usd
from tests.support.pair import stamped
from tests.support.rulebook import (
    Book,
    class_transfer,
    deposit,
    lend,
    pm_rules,
    prices,
    set_mode,
    token,
)

RULES = PmRules()


def r(text: str) -> int:
    """A ratio in the 1e-12 scale."""
    return int(Decimal(text) * RATE)


def test_kinked_borrow_curve():
    # 5% flat up to 80% utilisation, then 4.75 per unit above: U = 0.9 -> 0.05 + 0.475 = 0.525; U = 1 -> 1.0
    assert lending.borrow_apy(RULES, 0, 1000) == r("0.05")
    assert lending.borrow_apy(RULES, 500, 1000) == r("0.05")
    assert lending.borrow_apy(RULES, 800, 1000) == r("0.05")
    assert lending.borrow_apy(RULES, 900, 1000) == r("0.525")
    assert lending.borrow_apy(RULES, 1000, 1000) == r("1")
    # U = 0.8000001: 4.75 * 1e-7 = 4.75e-7 -> 0.050000475 exactly
    assert lending.borrow_apy(RULES, 8_000_001, 10_000_000) == r("0.050000475")
    # no supply: the base rate
    assert lending.borrow_apy(RULES, 0, 0) == r("0.05")


def test_supply_rate_worked_number():
    # rulebook: borrow 0.05 at U = 0.018322226 -> 0.05 * 0.018322226 * 0.9 = 0.000824500170 (0.0008245 shown)
    assert lending.supply_apy(RULES, r("0.05"), 18_322_226, 1_000_000_000) == r("0.00082450017")
    # 10% is the protocol's: at U = 1 and APY 1.0 suppliers get 0.9
    assert lending.supply_apy(RULES, r("1"), 1000, 1000) == r("0.9")


def _pool_book() -> Book:
    """lender supplies 1,000 USDC (standard, from spot USDC); borrower is a PM account with
    1,000 HYPE at 40 (40,000 of value, LTV 0.65: limit 26,000). Event time: hour 1."""
    book = Book()
    book.ok(
        token("HYPE"),
        prices(HYPE="40"),
        deposit("lender", "1000"),
        class_transfer("lender", "1000", to_perp=False),
        lend("supply", "lender", "1000"),
        deposit("borrower", "1000", token="HYPE"),
        set_mode("borrower", "portfolio"),
        # the first hour boundary: the new PM account is settled (nothing to do); from here on
        # nothing settles it, so what it borrows stays in its ledger
        stamped(prices(HYPE="40"), HOUR_MS),
    )
    return book


def test_supply_borrow_repay_withdraw_and_one_hour_of_interest():
    book = _pool_book()
    pool = book.state.pools["USDC"]
    assert (pool.supply_shares, pool.idle) == (usd("1000"), usd("1000"))  # index 1: one share per micro-USDC
    book.ok(lend("borrow", "borrower", "500"))
    # the borrowed 500 lands in the borrower's USDC ledger; the pool lent 500, holds 500
    assert book.state.accounts["borrower"].raw_usd == usd("500")
    assert (lending.lent(pool), pool.idle) == (usd("500"), usd("500"))
    assert lending.rates(pool, book.state.pm_rules) == (r("0.5"), r("0.05"), r("0.0225"))  # 0.05 * 0.5 * 0.9

    book.ok(stamped(prices(HYPE="40"), 2 * HOUR_MS))  # the next hour boundary: one hour of interest
    # borrow index 1 + ceil(1e18 * 0.05 / 8760) / 1e18 = 1 + 5,707,762,557,078e-18
    # debt: 500e6 * 5.707762557078e-6 = 2,853.88 -> 2,854 micro -> 500.002854
    assert lending.owed(pool, book.state.spot["borrower"].borrowed["USDC"]) == usd("500.002854")
    # supply index: 1 + floor(1e18 * 0.0225 / 8760) / 1e18 = 1 + 2,568,493,150,684e-18
    # claim: 1,000e6 * 2.568493150684e-6 = 2,568.49 -> 2,568 micro -> 1,000.002568
    assert lending.claim(pool, book.state.spot["lender"].supplied["USDC"]) == usd("1000.002568")
    # paid 2,854 = earned 2,568 + protocol 286 (10% and the rounding)
    assert (pool.interest_paid, pool.interest_earned, pool.protocol) == (2854, 2568, 286)

    # repay more than the debt: only the debt (500.002854) is taken, from the free ledger cash,
    # which holds 500: refused
    assert "free USDC" in book.reject(lend("repay", "borrower", "501")).reason
    book.ok(lend("repay", "borrower", "200"))
    # burns floor(200e6 / 1.000005707762557078) = 199,998,858 shares of 500,000,000; the rest,
    # 300,001,142 shares, owe ceil(300,001,142 * 1.000005707762557078) = ceil(300,002,854.34)
    # = 300.002855 (the rounding goes against the borrower)
    assert lending.owed(pool, book.state.spot["borrower"].borrowed["USDC"]) == usd("300.002855")
    book.ok(deposit("borrower", "1"), lend("repay", "borrower", "600"))
    # the rest of the debt, 300.002855, comes out of the free cash 300 + 1 = 301
    assert book.state.spot["borrower"].borrowed == {}
    assert book.state.accounts["borrower"].raw_usd == usd("0.997145")
    book.ok(lend("withdraw_supply", "lender", "1000.002568"))
    assert book.state.spot["lender"].balances["USDC"] == usd("1000.002568")
    # idle: 500 + 200 + 300.002855 - 1,000.002568 = 0.000287 = protocol 286 micro + dust 1, the
    # partial repay's rounding (lent fell 199,999,999 for 200,000,000 paid); nothing supplied
    assert (pool.idle, pool.protocol, pool.dust, lending.supplied(pool)) == (287, 286, 1, 0)


def test_lending_rejections():
    book = _pool_book()
    book.ok(token("PURR", 2), deposit("lender", "5", token="PURR"), deposit("std", "100"))
    assert "cannot be supplied" in book.reject(lend("supply", "lender", "1", "PURR")).reason
    assert "cannot be borrowed" in book.reject(lend("borrow", "borrower", "1", "HYPE")).reason
    assert "portfolio margin account" in book.reject(lend("borrow", "std", "1")).reason
    # headroom: 1,000 HYPE * 40 * 0.65 = 26,000, but only 1,000 is supplied
    assert "what may be borrowed (1000.0)" in book.reject(lend("borrow", "borrower", "1000.000001")).reason
    assert "above the supplied" in book.reject(lend("withdraw_supply", "lender", "1000.000001")).reason
    assert "no USDC borrowed" in book.reject(lend("repay", "borrower", "1")).reason
    assert "nothing supplied" in book.reject(lend("withdraw_supply", "std", "1")).reason
    assert "available 0.0" in book.reject(lend("supply", "std", "1")).reason  # standard: from spot USDC only
    book.ok(lend("borrow", "borrower", "900"))
    # 900 lent out: 100 idle
    assert "holds only 100.0" in book.reject(lend("withdraw_supply", "lender", "100.000001")).reason


def test_borrow_headroom_by_ltv():
    book = _pool_book()
    book.ok(
        deposit("lender2", "100000"),
        class_transfer("lender2", "100000", to_perp=False),
        lend("supply", "lender2", "100000"),
    )
    # 1,000 HYPE at 40 with LTV 0.65: 26,000
    assert "headroom 26000.0" in book.reject(lend("borrow", "borrower", "26000.000001")).reason
    book.ok(lend("borrow", "borrower", "26000"))
    assert book.summary("borrower")["spot"]["healthFactor"] == "1.0"  # 26,000 / 26,000


def test_caps_global_and_per_user_are_rules():
    book = _pool_book()
    # USDC caps in whole tokens: global supply 1,500, per user 1,200; borrow 600 global, 400 per user
    book.ok(pm_rules(caps={"USDC": {"supply": 1500, "user_supply": 1200, "borrow": 600, "user_borrow": 400}}))
    book.ok(deposit("lender", "2000"), class_transfer("lender", "2000", to_perp=False))
    # lender has 1,000 supplied: 200 more reaches the user cap
    assert "cap room 200.0" in book.reject(lend("supply", "lender", "200.000001")).reason
    book.ok(lend("supply", "lender", "200"))
    book.ok(deposit("other", "1000"), class_transfer("other", "1000", to_perp=False))
    # global 1,500 - 1,200 = 300 left
    assert "cap room 300.0" in book.reject(lend("supply", "other", "300.000001")).reason
    assert "what may be borrowed (400.0)" in book.reject(lend("borrow", "borrower", "400.000001")).reason
    book.ok(lend("borrow", "borrower", "400"))
    assert book.state.pm_rules.caps["USDC"].user_borrow == 400
    # caps of a token must not be negative
    assert "must not be negative" in book.reject(pm_rules(caps={"USDC": {"supply": -1}})).reason


@pytest.mark.slow
def test_interest_by_index_equals_hourly_compounding_over_a_year():
    """8,760 hourly events: the borrower's debt by index equals 500 USDC compounded every hour
    at 0.05 / 8760 (utilisation stays below the kink, so the rate is flat), rounded up; the
    lender's claim equals 1,000 compounded every hour at 0.05 * U * 0.9 / 8760 with U taken
    from the compounded amounts themselves, rounded down; both to the micro-USDC. The reference
    runs in 60-digit decimals."""
    book = _pool_book()
    book.ok(lend("borrow", "borrower", "500"))
    for hour in range(2, 8762):  # borrowed during hour 1, then 8,760 hourly boundaries
        book.send(stamped(prices(HYPE="40"), hour * HOUR_MS))
    pool = book.state.pools["USDC"]
    assert pool.hour == 8761
    with localcontext() as ctx:
        ctx.prec = 60
        debt, supplied = Decimal(500_000_000), Decimal(1_000_000_000)
        step = Decimal("0.05") / 8760
        for _ in range(8760):
            supply_step = Decimal("0.05") * (debt / supplied) * Decimal("0.9") / 8760
            debt *= 1 + step
            supplied *= 1 + supply_step
        expected_debt = int(debt.to_integral_value(ROUND_CEILING))
        expected_claim = int(supplied.to_integral_value(ROUND_FLOOR))
    # 500 * (1 + 0.05/8760)^8760 = 525.6354...: about 25.64 of interest in a year
    assert 525_000_000 < expected_debt < 526_000_000
    assert lending.owed(pool, book.state.spot["borrower"].borrowed["USDC"]) == expected_debt
    assert lending.claim(pool, book.state.spot["lender"].supplied["USDC"]) == expected_claim
    # every hour's interest went to suppliers or the protocol
    assert pool.interest_paid == pool.interest_earned + pool.protocol
    assert pool.interest_paid == expected_debt - 500_000_000
