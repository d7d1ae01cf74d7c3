"""ADL's per-coin holder index (`clearinghouse.holders`) against its scan twin.

The index is built on the first ADL and kept by the handlers that create a position record
(a trade, a leverage setting, an import) from then on: a counterparty whose position opened
after the first ADL must be found by the next one. Every scenario runs through `Pair` (the
indexed engine and the full scan, which scans every account for ADL, in lockstep: equal
derived events and digests). ETH: sz_decimals 4, one tier at 10x, MM = 5% of notional.
"""

from __future__ import annotations

from clearinghouse.holders import scan
from events import schema as ev
from tests.support.pair import TEN_X, Pair, px, sz, usd
from tests.support.rulebook import deposit, line, market, prices, set_leverage, trade, withdraw


def _same_as_scan(book: Pair) -> None:
    state = book.state
    for coin in state.markets:
        assert sorted(book.fast.ctx.holders.of(coin)) == sorted(scan(state, coin)), coin


def _bankrupt_buys(book: Pair, name: str, size: str) -> tuple[int, list[ev.DerivedEvent]]:
    """`name`, with no cash, buys `size` ETH of carol's long at 100 while the mark is 99."""
    book.ok(deposit(name, "1"), withdraw(name, "1"))
    return book.at(trade("ETH", "100", size, name, "carol"))


def test_a_counterparty_that_opened_after_the_first_adl_is_found_by_the_next():
    book = Pair(mode="mark", loss_limit=0)
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("amy", "1000"),
        deposit("ben", "1000"),
        deposit("carol", "1000"),
        prices(ETH="100"),
        trade("ETH", "100", "30", "carol", "amy"),
        trade("ETH", "100", "50", "carol", "ben"),
        prices(ETH="99"),  # the previous mark 100 is the ADL price
    )
    # bob: raw -4,000, AV -4,000 + 3,960 = -40 < MM 198: ben ranks first (4.76 against amy's 2.91,
    # as in test_adl_policies) and takes all 40 at 100; the index is built here
    seq, derived = _bankrupt_buys(book, "bob", "40")
    assert derived[1:] == [
        ev.Adl(account="bob", counterparty="ben", coin="ETH", sz=sz("-40"), px=px("100"), cause=seq, ts=0)
    ]
    _same_as_scan(book)
    # dan opens after it, by a trade: a short of 10 at 110 on 100 USDC: raw 100 + 1,100 = 1,200,
    # AV at 99 = 1,200 - 990 = 210 >= MM 49.5; fay sets her leverage (a record, no position)
    book.ok(deposit("dan", "100"), trade("ETH", "110", "10", "carol", "dan"))
    book.ok(deposit("fay", "1"), set_leverage("fay", "ETH", 10))
    _same_as_scan(book)
    # an import adds a short and the import account's long (neither ranks above dan)
    book.ok(
        line(
            type="import_account",
            account="vault",
            raw_usd="10000",
            positions=[{"coin": "ETH", "szi": "-1", "entry_px": "99", "leverage": 10}],
        )
    )
    _same_as_scan(book)
    # eve: raw -500, AV -500 + 495 = -5 < MM 24.75. Scores (entry x ntl / (mark x AV)) of the shorts:
    # dan 110 x 990 / (99 x 210) = 5.24; amy 100 x 2,970 / (99 x 1,030) = 2.91 (raw 4,000);
    # ben 100 x 990 / (99 x 1,010) = 0.99 (raw 1,000 + 5,000 - 4,000 = 2,000, short 10);
    # vault 99 x 99 / (99 x 9,901) = 0.01 (raw 10,000, short 1). dan takes all 5 at 100.
    seq, derived = _bankrupt_buys(book, "eve", "5")
    assert derived == [
        ev.LiquidationTriggered(
            account="eve",
            scope="cross",
            cause=seq,
            equity=usd("-5"),
            maintenance=usd("24.75"),
            positions=[ev.PositionView("ETH", sz("5"), px("99"))],
            phase="backstop",
            ts=0,
        ),
        ev.Adl(account="eve", counterparty="dan", coin="ETH", sz=sz("-5"), px=px("100"), cause=seq, ts=0),
    ]
    # dan bought back 5 at 100: raw 1,200 - 500 = 700, short 5
    assert book.szi("dan", "ETH") == sz("-5") and book.raw("dan") == usd("700")
    _same_as_scan(book)
