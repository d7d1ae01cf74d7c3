"""Isolated margin (docs/rules.md 2): opening moves opened_size * px / leverage from cross to
the isolated ledger; trades, fees and funding are booked in it; adding is limited by the cross
withdrawable; removal must leave marginUsed_iso >= max(IM, 0.1 * ntl) (hl-current) or IM (hl-2023);
closing returns the ledger to cross; strict isolated: no removal, margin released in proportion.
Expected values are worked out by hand next to each assertion."""

from __future__ import annotations

import pytest

from tests.support.rulebook import (
    ETH_TIERS,
    HYPE_TIERS,
    Book,
    deposit,
    funding,
    isolated_margin,
    line,
    market,
    prices,
    set_leverage,
    trade,
)


def _eth(rule_set: str | None = None) -> Book:
    book = Book(rule_set)
    book.ok(
        market("ETH", 4, ETH_TIERS),
        deposit("alice", "10000"),
        deposit("bob", "100000"),
        prices(ETH="4000"),
        set_leverage("alice", "ETH", 20, cross=False),
    )
    return book


@pytest.mark.parametrize(
    "rule_set, removable, used_after",
    [
        # marginUsed 4,982 - max(IM 40,000/20 = 2,000, 0.1 * 40,000 = 4,000) = 982 -> leaves 4,000
        ("hl-current", "982", "4000.0"),
        # 4,982 - IM 2,000 = 2,982 -> leaves 2,000
        ("hl-2023", "2982", "2000.0"),
    ],
)
def test_isolated_lifecycle(rule_set, removable, used_after):
    book = _eth(rule_set)
    # alice buys 10 ETH at 4,000 isolated 20x, taker fee 18 (0.045% of 40,000)
    book.ok(trade("ETH", "4000", "10", "alice", "bob", buyer_fee="18"))
    s, pos = book.summary("alice"), book.position("alice", "ETH")
    # margin moved = 10 * 4,000 / 20 = 2,000; cross ledger 10,000 - 2,000 = 8,000
    # isolated ledger = 2,000 - 18 - 40,000 = -38,018; marginUsed = -38,018 + 40,000 = 1,982
    assert pos["leverage"] == {"type": "isolated", "value": 20, "rawUsd": "-38018.0"}
    assert pos["marginUsed"] == "1982.0"
    assert s["crossMarginSummary"] == {
        "accountValue": "8000.0",
        "totalNtlPos": "0.0",
        "totalRawUsd": "8000.0",
        "totalMarginUsed": "0.0",
    }
    # whole account: AV 8,000 + 1,982 = 9,982 (= 10,000 - 18); raw 8,000 - 38,018 = -30,018
    assert s["marginSummary"] == {
        "accountValue": "9982.0",
        "totalNtlPos": "40000.0",
        "totalRawUsd": "-30018.0",
        "totalMarginUsed": "1982.0",
    }
    assert s["withdrawable"] == "8000.0"  # cross only: AV_cross 8,000, no cross positions

    # adding is limited by the cross withdrawable (8,000)
    book.reject(isolated_margin("alice", "ETH", "8000.000001"))
    book.ok(isolated_margin("alice", "ETH", "3000"))
    # ledger -38,018 + 3,000 = -35,018; marginUsed 4,982; cross 5,000
    assert book.position("alice", "ETH")["marginUsed"] == "4982.0"
    assert book.summary("alice")["crossMarginSummary"]["accountValue"] == "5000.0"

    book.reject(isolated_margin("alice", "ETH", f"-{removable}.000001"))
    book.ok(isolated_margin("alice", "ETH", f"-{removable}"))
    assert book.position("alice", "ETH")["marginUsed"] == used_after
    # cross = 5,000 + removed
    cross = 5000 + int(removable)
    assert book.summary("alice")["crossMarginSummary"]["accountValue"] == f"{cross}.0"

    # funding is booked in the isolated ledger: oracle 4,000, rate 0.0000125 -> 0.05/coin -> pays 0.5
    book.ok(prices(ETH=("4100", "4000")), funding("ETH", rate="0.0000125"))
    pos = book.position("alice", "ETH")
    # marginUsed = previous ledger - 0.5 + 10 * 4,100: current -36,000.5 + 41,000 = 4,999.5,
    # 2023 -38,000.5 + 41,000 = 2,999.5
    assert pos["marginUsed"] == {"hl-current": "4999.5", "hl-2023": "2999.5"}[rule_set]
    assert pos["leverage"]["rawUsd"] == {"hl-current": "-36000.5", "hl-2023": "-38000.5"}[rule_set]
    assert pos["cumFunding"]["allTime"] == "0.5"
    assert book.summary("alice")["crossMarginSummary"]["accountValue"] == f"{cross}.0"  # cross untouched

    # closing at 4,100 returns the ledger to cross:
    # current 5,982 + (-36,000.5 + 41,000) = 10,981.5; 2023 7,982 + 2,999.5 = 10,981.5
    # (= 10,000 - 18 fee - 0.5 funding + 10 * 100 pnl)
    book.ok(trade("ETH", "4100", "10", "bob", "alice"))
    s = book.summary("alice")
    assert book.position("alice", "ETH") is None
    assert s["marginSummary"]["accountValue"] == "10981.5"
    assert s["crossMarginSummary"]["totalRawUsd"] == "10981.5"
    assert s["withdrawable"] == "10981.5"
    assert book.state.accounts["alice"].positions["ETH"].iso_raw == 0


def test_adding_to_an_isolated_position_moves_its_margin():
    book = _eth()
    book.ok(
        trade("ETH", "4000", "10", "alice", "bob"),  # moves 10 * 4,000 / 20 = 2,000
        trade("ETH", "4200", "5", "alice", "bob"),  # moves 5 * 4,200 / 20 = 1,050
        prices(ETH="4200"),
    )
    s, pos = book.summary("alice"), book.position("alice", "ETH")
    # ledger = 2,000 - 40,000 + 1,050 - 21,000 = -57,950; marginUsed = -57,950 + 15 * 4,200 = 5,050
    assert pos["leverage"]["rawUsd"] == "-57950.0"
    assert pos["marginUsed"] == "5050.0"
    # entry = (40,000 + 21,000) / 15 = 4,066.666666666... -> 4,066.66666667
    assert pos["entryPx"] == "4066.66666667"
    # cross = 10,000 - 2,000 - 1,050 = 6,950
    assert s["crossMarginSummary"]["accountValue"] == "6950.0"
    assert s["marginSummary"]["accountValue"] == "12000.0"  # 6,950 + 5,050 = 10,000 + 10 * 200


def test_isolated_flip():
    book = _eth()
    book.ok(trade("ETH", "4000", "10", "alice", "bob"))  # ledger 2,000 - 40,000 = -38,000; cross 8,000
    # sell 15 at 4,200: close 10 -> ledger -38,000 + 42,000 = 4,000 back to cross (12,000);
    # open 5 short at 4,200: moves 5 * 4,200 / 20 = 1,050 -> cross 10,950, ledger 1,050 + 21,000 = 22,050
    book.ok(trade("ETH", "4200", "15", "bob", "alice"), prices(ETH="4200"))
    pos = book.position("alice", "ETH")
    assert (pos["szi"], pos["entryPx"]) == ("-5.0", "4200.0")
    assert pos["leverage"] == {"type": "isolated", "value": 20, "rawUsd": "22050.0"}
    assert pos["marginUsed"] == "1050.0"  # 22,050 - 5 * 4,200
    s = book.summary("alice")
    assert s["crossMarginSummary"]["accountValue"] == "10950.0"
    assert s["marginSummary"]["accountValue"] == "12000.0"  # 10,000 + 10 * 200


def test_strict_isolated_market():
    # bob's short goes below maintenance at 48: liquidation is off so the release arithmetic
    # can be followed (tests/core/test_liquidation*.py cover what a live engine does).
    book = Book(liquidation=False)
    book.ok(
        market("HYPE", 2, HYPE_TIERS, only_isolated=True),
        deposit("alice", "10000"),
        deposit("bob", "100000"),
        prices(HYPE="40"),
        trade("HYPE", "40", "100", "alice", "bob"),
    )
    pos = book.position("alice", "HYPE")
    # default: isolated at min(20, 10) = 10; margin 100 * 40 / 10 = 400; ledger 400 - 4,000 = -3,600
    assert pos["leverage"] == {"type": "isolated", "value": 10, "rawUsd": "-3600.0"}
    assert pos["marginUsed"] == "400.0"
    assert book.summary("alice")["crossMarginSummary"]["accountValue"] == "9600.0"
    # bob short: margin 400, ledger 400 + 4,000 = 4,400
    assert book.position("bob", "HYPE")["leverage"] == {"type": "isolated", "value": 10, "rawUsd": "4400.0"}

    # adding is allowed; removing never is (even though 400 of the 900 would be above IM)
    book.ok(isolated_margin("alice", "HYPE", "500"))  # ledger -3,100, marginUsed 900, cross 9,100
    rejected = book.reject(isolated_margin("alice", "HYPE", "-100"))
    assert "strict" in rejected.reason or "isolated" in rejected.reason
    book.reject(set_leverage("alice", "HYPE", 10, cross=True))  # cross on an isolated-only market
    book.reject(set_leverage("alice", "HYPE", 11, cross=False))  # above the 10x table

    # sell 25 of 100 at 40: marginUsed before 900 -> release 900 * 25/100 = 225
    # ledger -3,100 + 1,000 - 225 = -2,325; marginUsed -2,325 + 75 * 40 = 675 (= 900 * 75/100)
    book.ok(trade("HYPE", "40", "25", "bob", "alice"))
    pos = book.position("alice", "HYPE")
    assert pos["leverage"]["rawUsd"] == "-2325.0"
    assert pos["marginUsed"] == "675.0"
    assert book.summary("alice")["crossMarginSummary"]["accountValue"] == "9325.0"  # 9,100 + 225
    # bob: marginUsed 4,400 - 4,000 = 400 -> release 100; ledger 4,400 - 1,000 - 100 = 3,300, used 300
    assert book.position("bob", "HYPE")["marginUsed"] == "300.0"
    assert book.summary("bob")["crossMarginSummary"]["accountValue"] == "99700.0"  # 99,600 + 100

    # at 48, sell 25 of 75: marginUsed before -2,325 + 75 * 48 = 1,275 -> release 1,275 * 25/75 = 425
    # ledger -2,325 + 1,200 - 425 = -1,550; marginUsed -1,550 + 50 * 48 = 850 (= 1,275 * 50/75)
    book.ok(prices(HYPE="48"), trade("HYPE", "48", "25", "bob", "alice"))
    pos = book.position("alice", "HYPE")
    assert pos["leverage"]["rawUsd"] == "-1550.0"
    assert pos["marginUsed"] == "850.0"
    assert book.summary("alice")["crossMarginSummary"]["accountValue"] == "9750.0"  # 9,325 + 425

    # close the last 50 at 48: ledger -1,550 + 2,400 = 850 back to cross -> 10,600
    # (= 10,000 + 25 * 0 + 25 * 8 + 50 * 8)
    book.ok(trade("HYPE", "48", "50", "bob", "alice"))
    assert book.position("alice", "HYPE") is None
    assert book.summary("alice")["marginSummary"]["accountValue"] == "10600.0"
    # bob lost the same 600: 100,000 - 600
    assert book.summary("bob")["marginSummary"]["accountValue"] == "99400.0"


def test_isolated_margin_needs_an_open_isolated_position():
    book = _eth()
    book.reject(isolated_margin("alice", "ETH", "100"))  # no position yet
    book.ok(trade("ETH", "4000", "1", "bob", "alice"))
    book.reject(isolated_margin("bob", "ETH", "100"))  # bob's position is cross (the default)
    book.reject(isolated_margin("alice", "ETH", "0"))  # zero delta


def test_imported_isolated_position_keeps_its_ledger():
    book = Book()
    book.ok(
        market("ETH", 4, ETH_TIERS),
        prices(ETH="3900"),
        line(
            type="import_account",
            account="vault",
            raw_usd="1000",
            positions=[
                {"coin": "ETH", "szi": "-10", "entry_px": "4000", "leverage": 10, "cross": False, "raw_usd": "44000"}
            ],
        ),
    )
    s, pos = book.summary("vault"), book.position("vault", "ETH")
    # marginUsed_iso = rawUsd_iso + szi * mark = 44,000 - 10 * 3,900 = 5,000; uPnL = -10 * (3,900 - 4,000) = 1,000
    assert pos["leverage"] == {"type": "isolated", "value": 10, "rawUsd": "44000.0"}
    assert pos["marginUsed"] == "5000.0"
    assert pos["unrealizedPnl"] == "1000.0"
    # AV = cross 1,000 + 5,000 = 6,000; totalRawUsd = 1,000 + 44,000 = 45,000; ntl 39,000
    assert s["marginSummary"] == {
        "accountValue": "6000.0",
        "totalNtlPos": "39000.0",
        "totalRawUsd": "45000.0",
        "totalMarginUsed": "5000.0",
    }
    assert s["withdrawable"] == "1000.0"
    # removable (hl-current) = 5,000 - max(39,000/10 = 3,900, 3,900) = 1,100
    book.reject(isolated_margin("vault", "ETH", "-1100.000001"))
    book.ok(isolated_margin("vault", "ETH", "-1100"))
    assert book.position("vault", "ETH")["marginUsed"] == "3900.0"
