"""The cash convention (docs/rules.md 2-3): rawUsd takes every cash leg, fees and funding;
AV = rawUsd + sum(szi * mark); marginSummary vs crossMarginSummary with an isolated position.
Expected values are worked out by hand next to each assertion."""

from __future__ import annotations

from tests.support.rulebook import (
    BTC_TIERS,
    ETH_TIERS,
    Book,
    deposit,
    market,
    prices,
    set_leverage,
    trade,
)


def test_cash_legs_fees_rebate_and_summaries():
    book = Book()
    book.ok(
        market("BTC", 5, BTC_TIERS),
        market("ETH", 4, ETH_TIERS),
        deposit("alice", "10000"),
        deposit("bob", "10000"),
        prices(BTC="100000", ETH="4000"),
        # alice buys 0.1 BTC at 100,000: notional 10,000; taker fee 0.045% = 4.5;
        # bob is the maker with a rebate of 0.002% = -0.2
        trade("BTC", "100000", "0.1", "alice", "bob", buyer_fee="4.5", seller_fee="-0.2"),
    )
    a, b = book.summary("alice"), book.summary("bob")
    # alice rawUsd = 10,000 - 0.1 * 100,000 - 4.5 = -4.5; AV = -4.5 + 0.1 * 100,000 = 9,995.5
    assert a["marginSummary"]["totalRawUsd"] == "-4.5"
    assert a["marginSummary"]["accountValue"] == "9995.5"
    # bob rawUsd = 10,000 + 10,000 - (-0.2) = 20,000.2; AV = 20,000.2 - 10,000 = 10,000.2
    assert b["marginSummary"]["totalRawUsd"] == "20000.2"
    assert b["marginSummary"]["accountValue"] == "10000.2"
    # fee account = 4.5 + (-0.2) = 4.3 USDC = 4,300,000 micro
    assert book.state.fees == 4_300_000

    book.ok(prices(BTC="101000"))
    # alice AV = -4.5 + 0.1 * 101,000 = 10,095.5; uPnL = 0.1 * (101,000 - 100,000) = 100
    assert book.summary("alice")["marginSummary"]["accountValue"] == "10095.5"
    assert book.position("alice", "BTC")["unrealizedPnl"] == "100.0"
    # bob AV = 20,000.2 - 10,100 = 9,900.2; uPnL = -0.1 * 1,000 = -100
    assert book.summary("bob")["marginSummary"]["accountValue"] == "9900.2"
    assert book.position("bob", "BTC")["unrealizedPnl"] == "-100.0"

    # alice sells 0.05 back to bob at 102,000: cash leg 0.05 * 102,000 = 5,100; taker fee
    # 5,100 * 0.00045 = 2.295
    book.ok(trade("BTC", "102000", "0.05", "bob", "alice", seller_fee="2.295"), prices(BTC="102000"))
    a = book.summary("alice")
    # rawUsd = -4.5 + 5,100 - 2.295 = 5,093.205; AV = 5,093.205 + 0.05 * 102,000 = 10,193.205
    # (= 10,000 - 4.5 - 2.295 + 0.1 * 2,000 of pnl)
    assert a["marginSummary"]["totalRawUsd"] == "5093.205"
    assert a["marginSummary"]["accountValue"] == "10193.205"
    assert book.position("alice", "BTC")["entryPx"] == "100000.0"  # a reduce leaves entry alone
    # bob rawUsd = 20,000.2 - 5,100 = 14,900.2; AV = 14,900.2 - 0.05 * 102,000 = 9,800.2
    assert book.summary("bob")["marginSummary"]["accountValue"] == "9800.2"
    assert book.state.fees == 6_595_000  # 4.3 + 2.295 = 6.595

    # an isolated ETH position at 5x: opening 1 ETH at 4,000 moves 1 * 4,000 / 5 = 800 from cross
    book.ok(
        set_leverage("alice", "ETH", 5, cross=False),
        trade("ETH", "4000", "1", "alice", "bob"),
        prices(ETH="4100"),
    )
    a = book.summary("alice")
    eth = book.position("alice", "ETH")
    # isolated ledger = 800 - 4,000 = -3,200; marginUsed_iso = -3,200 + 1 * 4,100 = 900
    assert eth["leverage"] == {"type": "isolated", "value": 5, "rawUsd": "-3200.0"}
    assert eth["marginUsed"] == "900.0"
    assert eth["positionValue"] == "4100.0"
    assert eth["unrealizedPnl"] == "100.0"  # 1 * (4,100 - 4,000)
    # cross ledger = 5,093.205 - 800 = 4,293.205
    # crossMarginSummary: AV = 4,293.205 + 0.05 * 102,000 = 9,393.205; ntl 5,100; IM 5,100/20 = 255
    assert a["crossMarginSummary"] == {
        "accountValue": "9393.205",
        "totalNtlPos": "5100.0",
        "totalRawUsd": "4293.205",
        "totalMarginUsed": "255.0",
    }
    # marginSummary adds the isolated position: AV = 9,393.205 + 900 = 10,293.205
    # (= 10,193.205 + 100 ETH pnl); ntl 5,100 + 4,100 = 9,200; raw 4,293.205 - 3,200 = 1,093.205;
    # margin used 255 + 900 = 1,155
    assert a["marginSummary"] == {
        "accountValue": "10293.205",
        "totalNtlPos": "9200.0",
        "totalRawUsd": "1093.205",
        "totalMarginUsed": "1155.0",
    }
    # crossMaintenanceMarginUsed only counts cross positions: 5,100 / 80 = 63.75
    assert a["crossMaintenanceMarginUsed"] == "63.75"
    # withdrawable = 9,393.205 - max(255, 0.1 * 5,100 = 510) = 8,883.205
    assert a["withdrawable"] == "8883.205"


def test_trade_is_zero_sum_and_fees_go_to_the_fee_account():
    book = Book()
    book.ok(
        market("ETH", 4, ETH_TIERS),
        deposit("alice", "5000"),
        deposit("bob", "7000"),
        prices(ETH="3000"),
    )
    before = {n: book.state.accounts[n].raw_usd for n in ("alice", "bob")}
    # 2 ETH at 3,000 = 6,000; buyer fee 2.7 (0.045%), seller rebate -0.6 (-0.01%)
    book.ok(trade("ETH", "3000", "2", "alice", "bob", buyer_fee="2.7", seller_fee="-0.6"))
    accounts = book.state.accounts
    d_alice = accounts["alice"].raw_usd - before["alice"]
    d_bob = accounts["bob"].raw_usd - before["bob"]
    assert d_alice == -6_002_700_000  # -6,000 - 2.7
    assert d_bob == 6_000_600_000  # +6,000 + 0.6
    assert book.state.fees == 2_100_000  # 2.7 - 0.6 = 2.1
    assert d_alice + d_bob + book.state.fees == 0  # nothing created or destroyed
    assert accounts["alice"].positions["ETH"].szi + accounts["bob"].positions["ETH"].szi == 0
    # AV alice = 5,000 - 2.7 = 4,997.3; bob = 7,000 + 0.6 = 7,000.6 (mark = trade price)
    assert book.summary("alice")["marginSummary"]["accountValue"] == "4997.3"
    assert book.summary("bob")["marginSummary"]["accountValue"] == "7000.6"
