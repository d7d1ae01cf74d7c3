"""Unified accounts (docs/portfolio-margin.md): one USDC balance backs spot and cross perps; the
unified ratio `crossMM / (spotTotal(USDC) - isolated marginUsed)` = `crossMM / AV_cross` (every
perp is USDC-margined) is liquidatable at 1 or above, where a standard account needs AV below MM.

Hand working next to each assertion; `Pair` runs the trigger index and the full scan side by
side (identical decisions and digests) with conservation checked after every event.
"""

from __future__ import annotations

from events import schema as ev
from tests.support.pair import TEN_X, Pair, px, sz, usd
from tests.support.rulebook import Book, deposit, market, prices, set_mode, spot_trade, token, trade


def _long_one_eth(book: Pair, mode: str) -> None:
    book.ok(market("ETH", 4, TEN_X), deposit("alice", "1050"), deposit("mm", "1000000"), prices(ETH="2000"))
    if mode != "standard":
        book.ok(set_mode("alice", mode))
    book.ok(trade("ETH", "2000", "1", "alice", "mm"))


def test_unified_is_liquidated_at_a_ratio_of_exactly_one():
    standard, unified = Pair(mode="mark"), Pair(mode="mark")
    _long_one_eth(standard, "standard")
    _long_one_eth(unified, "unified")
    # ledger 1,050 - 2,000 = -950; at mark 1,000: AV 50, MM 1,000 / 20 = 50
    standard.ok(prices(ETH="1000"))  # AV = MM: a standard account is not below maintenance
    seq, derived = unified.at(prices(ETH="1000"))
    # unified ratio 50 / 50 = 1: liquidatable; 3 * 50 >= 2 * 50: market phase, fee 1,000 * 0.045% = 0.45
    assert derived == [
        ev.LiquidationTriggered(
            account="alice",
            scope="cross",
            cause=seq,
            equity=usd("50"),
            maintenance=usd("50"),
            positions=[ev.PositionView("ETH", sz("1"), px("1000"))],
            phase="market",
            ts=0,
        ),
        ev.LiquidationFill(account="alice", coin="ETH", sz=sz("-1"), px=px("1000"), fee=usd("0.45"), cause=seq, ts=0),
    ]
    assert unified.raw("alice") == usd("49.55")  # -950 + 1,000 - 0.45


def test_one_balance_backs_spot_and_perps():
    book = Book()
    book.ok(
        token("HYPE"),
        market("ETH", 4, TEN_X),
        prices(ETH="2000", HYPE="40"),
        deposit("alice", "1000"),
        deposit("mm", "100000"),
        deposit("seller", "100", token="HYPE"),
        set_mode("alice", "unified"),
    )
    # a spot buy of 10 HYPE at 40 comes out of the perp ledger: 1,000 - 400 = 600
    book.ok(spot_trade("HYPE", "40", "10", "alice", "seller"))
    assert book.state.accounts["alice"].raw_usd == usd("600")
    assert book.state.spot["alice"].balances == {"HYPE": sz("10")}
    # a perp long of 2 ETH at 2,000: IM 4,000 / 10 = 400; floor 10% of 4,000 = 400: withdrawable
    # 600 - 400 = 200 is all a spot buy may spend now
    book.ok(trade("ETH", "2000", "2", "alice", "mm"))
    assert "can pay 200.0" in book.reject(spot_trade("HYPE", "40", "5.1", "alice", "seller")).reason  # 204
    book.ok(spot_trade("HYPE", "40", "5", "alice", "seller"))
    # unified ratio: MM 4,000 * 5% = 200 over AV 600 - 200 - 4,000 + 4,000 = 400: 0.5
    assert book.summary("alice")["spot"]["unifiedRatio"] == "0.5"
