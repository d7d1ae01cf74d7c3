"""Liquidation price and return on equity (docs/rules.md 2).

liqPx = mark - side * margin_available / |szi| / (1 - l * side), l = 1 / (2 * maxLeverage);
cross margin_available = AV_cross - crossMM, isolated marginUsed_iso - MM_position; the 2023
rule omits the (1 - l * side) factor. Rounded toward the mark at 1e-8 (long up, short down),
null when no positive price solves it. Each value is worked by hand, and checked against the
defining equation AV + szi*(P - mark) = MM(P).
"""

from __future__ import annotations

import pytest

from tests.support.rulebook import (
    BTC_TIERS,
    ETH_TIERS,
    XYZ_TIERS,
    Book,
    deposit,
    market,
    prices,
    set_leverage,
    trade,
)


def _btc_pair(rule_set: str, deposit_each: str = "10000") -> Book:
    book = Book(rule_set)
    book.ok(
        market("BTC", 5, BTC_TIERS),
        deposit("alice", deposit_each),
        deposit("bob", deposit_each),
        prices(BTC="100000"),
        trade("BTC", "100000", "1", "alice", "bob"),  # alice long 1, bob short 1
    )
    return book


# Both: AV = 10,000, MM = 100,000/80 = 1,250, margin_available = 8,750, l = 1/80.
@pytest.mark.parametrize(
    "rule_set, long_px, short_px",
    [
        # long: 100,000 - 8,750 / (1 - 1/80) = 100,000 - 8,750*80/79 = 100,000 - 8,860.759493670886...
        #       = 91,139.240506329113... -> up to 91,139.24050633
        #       (check: 10,000 + (P - 100,000) = P/80 -> P = 90,000*80/79 = 91,139.2405...)
        # short: 100,000 + 8,750 / (1 + 1/80) = 100,000 + 8,750*80/81 = 100,000 + 8,641.975308641975...
        #       = 108,641.975308641975... -> down to 108,641.97530864
        #       (check: 10,000 - (P - 100,000) = P/80 -> P = 110,000*80/81)
        ("hl-current", "91139.24050633", "108641.97530864"),
        # 2023: 100,000 -/+ 8,750 / 1
        ("hl-2023", "91250.0", "108750.0"),
    ],
)
def test_cross_long_and_short(rule_set, long_px, short_px):
    book = _btc_pair(rule_set)
    assert book.summary("alice")["crossMaintenanceMarginUsed"] == "1250.0"
    assert book.position("alice", "BTC")["liquidationPx"] == long_px
    assert book.position("bob", "BTC")["liquidationPx"] == short_px


@pytest.mark.parametrize(
    "rule_set, btc_px",
    [
        # margin_available = 20,000 - (1,250 + 250) = 18,500
        # 100,000 - 18,500*80/79 = 100,000 - 18,734.177215189873... = 81,265.822784810126... -> up
        ("hl-current", "81265.82278482"),
        ("hl-2023", "81500.0"),  # 100,000 - 18,500
    ],
)
def test_cross_two_positions_and_null(rule_set, btc_px):
    book = Book(rule_set)
    book.ok(
        market("BTC", 5, BTC_TIERS),
        market("XYZ", 2, XYZ_TIERS),
        deposit("alice", "20000"),
        deposit("mm", "1000000"),
        prices(BTC="100000", XYZ="100"),
        trade("BTC", "100000", "1", "alice", "mm"),  # MM 100,000/80 = 1,250
        trade("XYZ", "100", "100", "alice", "mm"),  # ntl 10,000, MM 10,000/40 = 250
    )
    # AV = 20,000 (marks = trade prices); crossMM = 1,250 + 250 = 1,500
    assert book.summary("alice")["crossMaintenanceMarginUsed"] == "1500.0"
    assert book.position("alice", "BTC")["liquidationPx"] == btc_px
    # XYZ: 100 - 18,500/100 / (1 - 1/40) = 100 - 185*40/39 = -89.7... (2023: 100 - 185 = -85):
    # no positive price -> null
    assert book.position("alice", "XYZ")["liquidationPx"] is None


@pytest.mark.parametrize("rule_set", ["hl-current", "hl-2023"])
def test_long_with_more_collateral_than_notional_is_null(rule_set):
    # margin_available = 200,000 - 1,250 = 198,750 > 100,000 * (1 - 1/80): P < 0 -> null
    book = _btc_pair(rule_set, "200000")
    assert book.position("alice", "BTC")["liquidationPx"] is None
    # the short always has one: current 100,000 + 198,750*80/81 = 100,000 + 196,296.296296296...
    # = 296,296.29629629|6... -> down to 296,296.29629629; 2023: 100,000 + 198,750 = 298,750
    expected = {"hl-current": "296296.29629629", "hl-2023": "298750.0"}[rule_set]
    assert book.position("bob", "BTC")["liquidationPx"] == expected


@pytest.mark.parametrize(
    "rule_set, long_px, short_px",
    [
        # isolated ETH 10 at 4,000, 10x: margin 4,000 each; MM = 40,000/50 = 800; available 3,200;
        # l = 1/50.  long: 4,000 - 3,200/10 / (1 - 1/50) = 4,000 - 320*50/49 = 4,000 - 326.5306122448...
        #   = 3,673.469387755102... -> up 3,673.46938776
        #   (check: -36,000 + 10P = 10P/50 -> P = 36,000*50/490 = 3,673.469...)
        # short: 4,000 + 320*50/51 = 4,000 + 313.725490196078... = 4,313.72549019607... -> down
        ("hl-current", "3673.46938776", "4313.72549019"),
        ("hl-2023", "3680.0", "4320.0"),  # 4,000 -/+ 320
    ],
)
def test_isolated_long_and_short(rule_set, long_px, short_px):
    book = Book(rule_set)
    book.ok(
        market("ETH", 4, ETH_TIERS),
        deposit("alice", "10000"),
        deposit("bob", "10000"),
        prices(ETH="4000"),
        set_leverage("alice", "ETH", 10, cross=False),
        set_leverage("bob", "ETH", 10, cross=False),
        trade("ETH", "4000", "10", "alice", "bob"),
    )
    alice, bob = book.position("alice", "ETH"), book.position("bob", "ETH")
    # ledgers: alice 4,000 - 40,000 = -36,000; bob 4,000 + 40,000 = 44,000; marginUsed 4,000 each
    assert alice["leverage"]["rawUsd"] == "-36000.0" and alice["marginUsed"] == "4000.0"
    assert bob["leverage"]["rawUsd"] == "44000.0" and bob["marginUsed"] == "4000.0"
    assert alice["liquidationPx"] == long_px
    assert bob["liquidationPx"] == short_px
    # the isolated position's margin is not cross maintenance
    assert book.summary("alice")["crossMaintenanceMarginUsed"] == "0.0"


@pytest.mark.parametrize(
    "deposit_amount, expected",
    [
        # 2,000 BTC long at 100,000 (ntl 200M, tier 1). Deposit 20M: tier-1 solution
        # 20M + 2,000(P - 100,000) = 2,000P/40 - 1,875,000 -> 1,950P = 178,125,000
        # -> P = 91,346.153846153846... (ntl 182.7M, in tier 1) -> up 91,346.15384616
        # (closed form: 100,000 - (20M - 3.125M)/2,000 * 40/39 = 100,000 - 8,437.5*40/39)
        ("20000000", "91346.15384616"),
        # Deposit 60M: tier 1 would give 100,000 - 28,437.5*40/39 = 70,833.33 (ntl 141.7M < 150M, not
        # tier 1); tier 0: 60M + 2,000(P - 100,000) = 2,000P/80 -> 1,975P = 140M
        # -> P = 70,886.075949367088... (ntl 141.8M, tier 0) -> up 70,886.07594937
        ("60000000", "70886.07594937"),
    ],
)
def test_tiered_liquidation_price_uses_the_tier_at_that_price(deposit_amount, expected):
    _tiered(deposit_amount, expected, None)


@pytest.mark.parametrize(
    "deposit_amount, expected",
    [
        # 2023 (no (1 - l) factor). Deposit 20M: tier 0 would give 100,000 - (20M - 2.5M)/2,000
        # = 91,250 (ntl 182.5M, not tier 0); tier 1: 100,000 - (20M - 3.125M)/2,000 = 100,000 - 8,437.5
        # = 91,562.5 (ntl 183.1M, tier 1)
        ("20000000", "91562.5"),
        # Deposit 60M: tier 0: 100,000 - (60M - 2.5M)/2,000 = 100,000 - 28,750 = 71,250 (ntl 142.5M, tier 0)
        ("60000000", "71250.0"),
    ],
)
def test_tiered_liquidation_price_2023(deposit_amount, expected):
    _tiered(deposit_amount, expected, "hl-2023")


def _tiered(deposit_amount: str, expected: str, rule_set: str | None) -> None:
    book = Book(rule_set)
    book.ok(
        market("BTC", 5, BTC_TIERS),
        deposit("alice", deposit_amount),
        deposit("mm", "1000000000"),
        prices(BTC="100000"),
        trade("BTC", "100000", "2000", "alice", "mm"),
    )
    assert book.position("alice", "BTC")["liquidationPx"] == expected


# ---- return on equity -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule_set, long_roe, short_roe",
    [
        # mark 125,000; uPnL long +25,000, short -25,000
        # current: uPnL / (|szi| * entry / leverage) = 25,000 / (100,000/10 = 10,000) = 2.5
        ("hl-current", "2.5", "-2.5"),
        # 2023: uPnL / marginUsed, marginUsed = 125,000/10 = 12,500 -> 25,000/12,500 = 2
        ("hl-2023", "2.0", "-2.0"),
    ],
)
def test_return_on_equity_cross(rule_set, long_roe, short_roe):
    book = Book(rule_set)
    book.ok(
        market("BTC", 5, BTC_TIERS),
        deposit("alice", "100000"),
        deposit("bob", "100000"),
        prices(BTC="100000"),
        set_leverage("alice", "BTC", 10),
        set_leverage("bob", "BTC", 10),
        trade("BTC", "100000", "1", "alice", "bob"),
        prices(BTC="125000"),
    )
    assert book.position("alice", "BTC")["unrealizedPnl"] == "25000.0"
    assert book.position("alice", "BTC")["returnOnEquity"] == long_roe
    assert book.position("bob", "BTC")["returnOnEquity"] == short_roe


@pytest.mark.parametrize(
    "rule_set, roe",
    [
        # isolated ETH 10 at 4,000, 10x; mark 4,400: uPnL 4,000
        ("hl-current", "1.0"),  # 4,000 / (10 * 4,000 / 10 = 4,000) = 1
        # marginUsed_iso = -36,000 + 44,000 = 8,000 -> 4,000 / 8,000 = 0.5
        ("hl-2023", "0.5"),
    ],
)
def test_return_on_equity_isolated(rule_set, roe):
    book = Book(rule_set)
    book.ok(
        market("ETH", 4, ETH_TIERS),
        deposit("alice", "10000"),
        deposit("bob", "100000"),
        prices(ETH="4000"),
        set_leverage("alice", "ETH", 10, cross=False),
        trade("ETH", "4000", "10", "alice", "bob"),
        prices(ETH="4400"),
    )
    pos = book.position("alice", "ETH")
    assert pos["marginUsed"] == "8000.0"
    assert pos["returnOnEquity"] == roe
