"""Fills (docs/rules.md 3): open, add (size-weighted entry), reduce (entry unchanged), flip
("Long > Short": remainder opened at the fill price), close; unrealised pnl; fees to the fee
account; zero-sum. Expected values are worked out by hand next to each assertion."""

from __future__ import annotations

from tests.support.rulebook import ETH_TIERS, Book, deposit, market, prices, trade


def _book() -> Book:
    book = Book()
    book.ok(market("ETH", 4, ETH_TIERS), deposit("alice", "100000"), deposit("bob", "100000"))
    return book


def _check(book: Book, szi: str, entry: str, mark: str, upnl: str) -> None:
    book.ok(prices(ETH=mark))
    pos = book.position("alice", "ETH")
    assert pos["szi"] == szi
    assert pos["entryPx"] == entry
    assert pos["unrealizedPnl"] == upnl


def test_open_add_reduce_flip_add_close():
    book = _book()
    # open: buy 2 at 3,000 -> szi 2, entry 3,000; at mark 3,000 uPnL 0
    book.ok(trade("ETH", "3000", "2", "alice", "bob"))
    _check(book, "2.0", "3000.0", "3000", "0.0")
    # add: buy 1 at 3,300 -> entry (2*3,000 + 1*3,300)/3 = 9,300/3 = 3,100; mark 3,300:
    # uPnL = 3 * (3,300 - 3,100) = 600
    book.ok(trade("ETH", "3300", "1", "alice", "bob"))
    _check(book, "3.0", "3100.0", "3300", "600.0")
    # reduce: sell 1 at 3,400 -> szi 2, entry stays 3,100; mark 3,400: uPnL = 2 * 300 = 600
    book.ok(trade("ETH", "3400", "1", "bob", "alice"))
    _check(book, "2.0", "3100.0", "3400", "600.0")
    # flip: sell 5 at 3,200 with a taker fee of 16,000 * 0.00045 = 7.2 (bob's rebate -1.6):
    # closes the 2 long, opens 3 short at 3,200 -> szi -3, entry 3,200; mark 3,200: uPnL 0
    book.ok(trade("ETH", "3200", "5", "bob", "alice", buyer_fee="-1.6", seller_fee="7.2"))
    _check(book, "-3.0", "3200.0", "3200", "0.0")
    # add to the short: sell 1 at 3,000 -> entry (3*3,200 + 3,000)/4 = 12,600/4 = 3,150;
    # mark 3,000: uPnL = -4 * (3,000 - 3,150) = 600
    book.ok(trade("ETH", "3000", "1", "bob", "alice"))
    _check(book, "-4.0", "3150.0", "3000", "600.0")
    # close: buy 4 at 3,100
    book.ok(trade("ETH", "3100", "4", "alice", "bob"))
    assert book.position("alice", "ETH") is None
    assert book.position("bob", "ETH") is None
    # alice cash legs: -6,000 - 3,300 + 3,400 + 16,000 + 3,000 - 12,400 = +700
    # (= realised long 1*(3,400-3,100) + 2*(3,200-3,100) = 500, short 4*(3,150-3,100) = 200)
    # alice rawUsd = 100,000 + 700 - 7.2 = 100,692.8; bob = 100,000 - 700 + 1.6 = 99,301.6
    a, b = book.summary("alice"), book.summary("bob")
    assert a["marginSummary"]["accountValue"] == "100692.8"
    assert a["marginSummary"]["totalRawUsd"] == "100692.8"
    assert b["marginSummary"]["accountValue"] == "99301.6"
    assert book.state.fees == 5_600_000  # 7.2 - 1.6 = 5.6
    # zero-sum: 100,692.8 + 99,301.6 + 5.6 = 200,000 deposited
    assert (
        book.state.accounts["alice"].raw_usd + book.state.accounts["bob"].raw_usd + book.state.fees == 200_000 * 10**6
    )


def test_counterparty_mirror_and_short_flip():
    book = _book()
    book.ok(trade("ETH", "3000", "2", "alice", "bob"), prices(ETH="2900"))
    bob = book.position("bob", "ETH")
    # bob short 2 at 3,000; mark 2,900: uPnL = -2 * (2,900 - 3,000) = 200
    assert (bob["szi"], bob["entryPx"], bob["unrealizedPnl"]) == ("-2.0", "3000.0", "200.0")
    # "Short > Long": bob buys 3 at 2,900 -> closes 2, opens 1 long at 2,900
    book.ok(trade("ETH", "2900", "3", "bob", "alice"))
    bob = book.position("bob", "ETH")
    assert (bob["szi"], bob["entryPx"], bob["unrealizedPnl"]) == ("1.0", "2900.0", "0.0")
    alice = book.position("alice", "ETH")
    assert (alice["szi"], alice["entryPx"]) == ("-1.0", "2900.0")  # alice did "Long > Short"
    # bob AV = 100,000 + 6,000 - 8,700 + 1 * 2,900 = 100,200 (= 2 * 100 of realised pnl)
    assert book.summary("bob")["marginSummary"]["accountValue"] == "100200.0"


def test_entry_price_average_not_exact():
    book = _book()
    # entry = (2*3,000 + 1*3,001)/3 = 9,001/3 = 3,000.333333333... -> 3,000.33333333 at 1e-8
    book.ok(trade("ETH", "3000", "2", "alice", "bob"), trade("ETH", "3001", "1", "alice", "bob"))
    assert book.position("alice", "ETH")["entryPx"] == "3000.33333333"
