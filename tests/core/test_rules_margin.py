"""Margin tiers, maintenance margin with deductions, initial margin, rounding against the account
(docs/rules.md 2). Every expected value is worked out by hand in the comment next to it.

Tier arithmetic used below:
  BTC (40x to 150M, then 20x): mmr0 = 1/80 = 0.0125, mmr1 = 1/40 = 0.025,
      deduction1 = 150,000,000 * (0.025 - 0.0125) = 1,875,000.
  XYZ (20x, 10x from 1M, 5x from 5M): mmr = 0.025, 0.05, 0.1;
      deduction1 = 1,000,000 * (0.05 - 0.025) = 25,000;
      deduction2 = 25,000 + 5,000,000 * (0.1 - 0.05) = 275,000.
"""

from __future__ import annotations

import pytest

from tests.support.rulebook import (
    BTC_TIERS,
    ETH_TIERS,
    XYZ_TIERS,
    Book,
    deposit,
    line,
    market,
    prices,
    set_leverage,
    trade,
)


def _one_position(coin: str, sz_decimals: int, tiers, px: str, size: str) -> Book:
    book = Book()
    book.ok(
        market(coin, sz_decimals, tiers),
        deposit("alice", "1000000000"),
        deposit("mm", "1000000000"),
        prices(**{coin: px}),
        trade(coin, px, size, "alice", "mm"),
    )
    return book


# BTC at mark 100,000: ntl = size * 100,000.
@pytest.mark.parametrize(
    "size, ntl, mm, im",
    [
        # 1 BTC: ntl 100,000; tier 0: 100,000 * 0.0125 = 1,250; IM at default 20x: 100,000/20 = 5,000
        ("1", "100000.0", "1250.0", "5000.0"),
        # just below the bound: ntl 149,999,999; tier 0: 149,999,999 * 0.0125 = 1,874,999.9875;
        # IM 149,999,999 / 20 = 7,499,999.95
        ("1499.99999", "149999999.0", "1874999.9875", "7499999.95"),
        # exactly at the bound (a lower bound belongs to its tier): 150,000,000 * 0.025 - 1,875,000
        # = 3,750,000 - 1,875,000 = 1,875,000; IM 150,000,000/20 = 7,500,000
        ("1500", "150000000.0", "1875000.0", "7500000.0"),
        # just above: 150,000,001 * 0.025 - 1,875,000 = 3,750,000.025 - 1,875,000 = 1,875,000.025
        # (tier 0 would give 1,875,000.0125); IM 150,000,001/20 = 7,500,000.05
        ("1500.00001", "150000001.0", "1875000.025", "7500000.05"),
        # deep in tier 1: 300,000,000 * 0.025 - 1,875,000 = 7,500,000 - 1,875,000 = 5,625,000;
        # IM 300,000,000 / 20 = 15,000,000
        ("3000", "300000000.0", "5625000.0", "15000000.0"),
    ],
)
def test_btc_two_tier_maintenance_at_boundaries(size, ntl, mm, im):
    book = _one_position("BTC", 5, BTC_TIERS, "100000", size)
    for account in ("alice", "mm"):  # the long and the short carry the same notional
        s = book.summary(account)
        assert s["crossMaintenanceMarginUsed"] == mm
        assert s["crossMarginSummary"]["totalNtlPos"] == ntl
        assert s["crossMarginSummary"]["totalMarginUsed"] == im
        pos = book.position(account, "BTC")
        assert pos["positionValue"] == ntl
        assert pos["marginUsed"] == im
        assert pos["maxLeverage"] == 40  # the table's first tier
        assert pos["leverage"] == {"type": "cross", "value": 20}  # default min(20, 40)


# XYZ at mark 100: ntl = size * 100.
@pytest.mark.parametrize(
    "size, ntl, mm",
    [
        # 9,999.99 * 100 = 999,999 (tier 0): 999,999 * 0.025 = 24,999.975
        ("9999.99", "999999.0", "24999.975"),
        # 1,000,000 (tier 1 starts): 1,000,000 * 0.05 - 25,000 = 50,000 - 25,000 = 25,000
        ("10000", "1000000.0", "25000.0"),
        # 1,000,001: 1,000,001 * 0.05 - 25,000 = 50,000.05 - 25,000 = 25,000.05
        ("10000.01", "1000001.0", "25000.05"),
        # 4,999,999 (tier 1): 4,999,999 * 0.05 - 25,000 = 249,999.95 - 25,000 = 224,999.95
        ("49999.99", "4999999.0", "224999.95"),
        # 5,000,000 (tier 2 starts): 5,000,000 * 0.1 - 275,000 = 500,000 - 275,000 = 225,000
        ("50000", "5000000.0", "225000.0"),
        # 5,000,001: 5,000,001 * 0.1 - 275,000 = 500,000.1 - 275,000 = 225,000.1
        ("50000.01", "5000001.0", "225000.1"),
        # 10,000,000: 1,000,000 - 275,000 = 725,000
        ("100000", "10000000.0", "725000.0"),
    ],
)
def test_three_tier_maintenance_at_boundaries(size, ntl, mm):
    book = _one_position("XYZ", 2, XYZ_TIERS, "100", size)
    for account in ("alice", "mm"):
        s = book.summary(account)
        assert s["crossMaintenanceMarginUsed"] == mm
        assert s["crossMarginSummary"]["totalNtlPos"] == ntl
        assert book.position(account, "XYZ")["positionValue"] == ntl


def test_requirements_round_up_and_value_rounds_down():
    """Notional and requirements round up, position value szi*mark toward -infinity."""
    book = Book()
    book.ok(
        market("XYZ", 2, XYZ_TIERS),
        deposit("alice", "100"),
        deposit("bob", "100"),
        prices(XYZ="1"),
        trade("XYZ", "1", "0.01", "alice", "bob"),  # alice raw 100 - 0.01 = 99.99; bob 100.01
        prices(XYZ="1.00000001"),
    )
    # exact szi*mark = 0.01 * 1.00000001 = 0.0100000001
    for account in ("alice", "bob"):
        s = book.summary(account)
        assert book.position(account, "XYZ")["positionValue"] == "0.010001"  # ntl up: 0.0100000001 -> 0.010001
        assert s["crossMarginSummary"]["totalMarginUsed"] == "0.000501"  # 0.0100000001/20 = 0.000500000005 -> up
        assert s["crossMaintenanceMarginUsed"] == "0.000251"  # 0.0100000001*0.025 = 0.0002500000025 -> up
    # long: value floor(+0.0100000001) = 0.01 -> AV = 99.99 + 0.01 = 100
    assert book.summary("alice")["marginSummary"]["accountValue"] == "100.0"
    # short: value floor(-0.0100000001) = -0.010001 -> AV = 100.01 - 0.010001 = 99.999999
    assert book.summary("bob")["marginSummary"]["accountValue"] == "99.999999"


def test_cross_maintenance_and_initial_margin_summed_over_positions():
    book = Book()
    book.ok(
        market("BTC", 5, BTC_TIERS),
        market("XYZ", 2, XYZ_TIERS),
        market("ETH", 4, ETH_TIERS),
        deposit("alice", "200000"),
        deposit("mm", "10000000"),
        prices(BTC="100000", XYZ="100", ETH="4000"),
        set_leverage("alice", "BTC", 10),
        set_leverage("alice", "ETH", 5),
        trade("BTC", "100000", "1", "alice", "mm"),  # long 1 BTC: cash -100,000
        trade("XYZ", "100", "10000", "mm", "alice"),  # short 10,000 XYZ: cash +1,000,000
        trade("ETH", "4000", "10", "alice", "mm"),  # long 10 ETH: cash -40,000
    )
    s = book.summary("alice")
    # MM: BTC 100,000/80 = 1,250; XYZ ntl 1,000,000 tier 1: 50,000 - 25,000 = 25,000;
    #     ETH ntl 40,000 tier 0 (25x): 40,000/50 = 800.  Sum = 1,250 + 25,000 + 800 = 27,050
    assert s["crossMaintenanceMarginUsed"] == "27050.0"
    # totalNtlPos = 100,000 + 1,000,000 + 40,000 = 1,140,000
    assert s["crossMarginSummary"]["totalNtlPos"] == "1140000.0"
    # IM: 100,000/10 + 1,000,000/20 (default) + 40,000/5 = 10,000 + 50,000 + 8,000 = 68,000
    assert s["crossMarginSummary"]["totalMarginUsed"] == "68000.0"
    assert book.position("alice", "BTC")["marginUsed"] == "10000.0"
    assert book.position("alice", "XYZ")["marginUsed"] == "50000.0"
    assert book.position("alice", "ETH")["marginUsed"] == "8000.0"
    # rawUsd = 200,000 - 100,000 + 1,000,000 - 40,000 = 1,060,000; AV = raw + sum szi*mark
    #        = 1,060,000 + 100,000 - 1,000,000 + 40,000 = 200,000
    assert s["crossMarginSummary"]["totalRawUsd"] == "1060000.0"
    assert s["crossMarginSummary"]["accountValue"] == "200000.0"

    book.ok(prices(BTC="110000", XYZ="90", ETH="3900"))
    s = book.summary("alice")
    # MM: 110,000/80 = 1,375; XYZ ntl 900,000 falls back to tier 0: 900,000 * 0.025 = 22,500;
    #     ETH 39,000/50 = 780.  Sum = 1,375 + 22,500 + 780 = 24,655
    assert s["crossMaintenanceMarginUsed"] == "24655.0"
    # totalNtlPos = 110,000 + 900,000 + 39,000 = 1,049,000
    assert s["crossMarginSummary"]["totalNtlPos"] == "1049000.0"
    # IM = 11,000 + 45,000 + 7,800 = 63,800
    assert s["crossMarginSummary"]["totalMarginUsed"] == "63800.0"
    # AV = 1,060,000 + 110,000 - 900,000 + 39,000 = 309,000 (= 200,000 + 10,000 + 100,000 - 1,000)
    assert s["crossMarginSummary"]["accountValue"] == "309000.0"
    assert book.position("alice", "BTC")["unrealizedPnl"] == "10000.0"  # 1 * (110,000 - 100,000)
    assert book.position("alice", "XYZ")["unrealizedPnl"] == "100000.0"  # -10,000 * (90 - 100)
    assert book.position("alice", "ETH")["unrealizedPnl"] == "-1000.0"  # 10 * (3,900 - 4,000)
    # withdrawable (hl-current) = 309,000 - max(63,800, 0.1 * 1,049,000 = 104,900) = 204,100
    assert s["withdrawable"] == "204100.0"


def test_position_max_leverage_replaces_the_tier_table():
    """A position's own max_leverage (import_account only) is a single tier: mmr = 1/(2*10) = 0.05."""
    book = Book()
    book.ok(
        market("BTC", 5, BTC_TIERS),
        prices(BTC="100000"),
        line(
            type="import_account",
            account="vault",
            raw_usd="-180000000",
            positions=[{"coin": "BTC", "szi": "2000", "entry_px": "100000", "leverage": 5, "max_leverage": 10}],
        ),
    )
    s = book.summary("vault")
    pos = book.position("vault", "BTC")
    assert pos["maxLeverage"] == 10
    # ntl 2,000 * 100,000 = 200,000,000; single tier 10x: MM = 200,000,000 * 0.05 = 10,000,000
    # (the market table would give 200,000,000 * 0.025 - 1,875,000 = 3,125,000)
    assert s["crossMaintenanceMarginUsed"] == "10000000.0"
    # IM = 200,000,000 / 5 = 40,000,000; AV = -180,000,000 + 200,000,000 = 20,000,000
    assert s["crossMarginSummary"]["totalMarginUsed"] == "40000000.0"
    assert s["crossMarginSummary"]["accountValue"] == "20000000.0"
    # the position's cap is 10, although the market's tier at 200M allows 20
    book.reject(line(type="set_leverage", account="vault", coin="BTC", leverage=11))
    book.ok(line(type="set_leverage", account="vault", coin="BTC", leverage=10))
    assert book.position("vault", "BTC")["leverage"] == {"type": "cross", "value": 10}


def test_relisting_a_market_replaces_its_tiers():
    book = _one_position("BTC", 5, BTC_TIERS, "100000", "2000")
    # ntl 200,000,000 (tier 1): 200,000,000 * 0.025 - 1,875,000 = 3,125,000
    assert book.summary("alice")["crossMaintenanceMarginUsed"] == "3125000.0"
    # new table 50x up to 100M, then 25x: mmr 0.01 / 0.02; deduction 100,000,000 * 0.01 = 1,000,000
    # MM = 200,000,000 * 0.02 - 1,000,000 = 3,000,000
    book.ok(market("BTC", 5, [("0", 50), ("100000000", 25)]))
    assert book.summary("alice")["crossMaintenanceMarginUsed"] == "3000000.0"
    assert book.position("alice", "BTC")["maxLeverage"] == 50
