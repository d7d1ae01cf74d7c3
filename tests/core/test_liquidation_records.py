"""`liq_record`: a venue's record that it liquidated an account is kept in the log and changes
nothing in the engine (docs/hyperliquid-data.md, "Misc events"); `hl reconcile` compares it."""

from __future__ import annotations

import msgspec

from clearinghouse.digest import encode_state
from tests.support.rulebook import ETH_TIERS, Book, deposit, line, market, prices, trade


def test_a_liquidation_record_changes_nothing_but_the_sequence() -> None:
    book = Book()
    book.ok(
        market("ETH", 4, ETH_TIERS),
        deposit("u", "200"),
        deposit("c", "100000"),
        prices(ETH="3000"),
        trade("ETH", "3000", "1", "u", "c"),
    )
    # u: 200 of collateral, 1 ETH at 3000 (maintenance 3000 / 50 = 60): healthy, and the venue's
    # word that it was liquidated moves nothing: no position closed, no cash, no derived event
    seq, before = book.state.next_seq, encode_state(book.state)
    record = line(
        type="liq_record",
        account="u",
        cross=True,
        account_value="-5",
        notional="3000",
        positions=[{"coin": "ETH", "szi": "1"}],
    )
    assert book.send(record) == []
    assert book.state.next_seq == seq + 1
    assert encode_state(msgspec.structs.replace(book.state, next_seq=seq)) == before
    # and one for an account the engine never heard of is kept all the same
    assert book.send(line(type="liq_record", account="nobody")) == []
