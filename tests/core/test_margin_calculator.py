"""The margin calculator (clearinghouse/calculator.py): a book held as one account under each
model, worked by hand: the cash convention of the positions, isolated margin, supplied and
borrowed amounts, a model that cannot hold a book, and books that are not holdings."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from clearinghouse.calculator import Answer, BookError, CannotHold, answer, book_state
from events.book import MarginBook
from events.codec import decode_document
from events.units import usd


def _book(**fields: Any) -> MarginBook:
    data = {"prices": {"BTC": {"mark": "100000"}}, **fields}
    return decode_document(msgspec.json.encode(data), MarginBook, "book")


def test_a_cross_position_in_profit_counts_in_equity() -> None:
    # long 2 BTC entered at 90,000, mark 100,000: AV = 10,000 + 2 * (100,000 - 90,000) = 30,000;
    # standard IM 200,000 / 40 = 5,000 at leverage 40, MM 200,000 / 80 = 2,500
    book = _book(
        balances={"USDC": "10000"}, positions=[{"coin": "BTC", "szi": "2", "entry_px": "90000", "leverage": 40}]
    )
    a = answer(book, "standard")
    assert isinstance(a, Answer)
    assert (a.equity, a.initial, a.maintenance) == (usd("30000"), usd("5000"), usd("2500"))
    assert a.ratio == 83_334  # 2,500 / 30,000 = 0.083333..., rounded up to 1e-6
    assert a.breakdown == {"parts": {"cross": {"equity": "30000.0", "initial": "5000.0", "maintenance": "2500.0"}}}


def test_an_isolated_position_holds_its_margin_apart() -> None:
    # isolated short 1 BTC at 100,000, leverage 10: margin 10,000 by default, out of the 25,000:
    # cross 15,000, the position's part 10,000 (IM 10,000, MM 1,250); the risk model leaves it
    # outside: its own part is the 15,000 of USDC, with nothing to scan
    book = _book(
        balances={"USDC": "25000"},
        positions=[{"coin": "BTC", "szi": "-1", "entry_px": "100000", "leverage": 10, "cross": False}],
    )
    a = answer(book, "standard")
    assert isinstance(a, Answer)
    assert a.breakdown["parts"]["BTC"] == {"equity": "10000.0", "initial": "10000.0", "maintenance": "1250.0"}
    assert a.breakdown["parts"]["cross"]["equity"] == "15000.0"
    r = answer(book, "risk")
    assert isinstance(r, Answer)
    assert r.breakdown["parts"]["risk"] == {"equity": "15000.0", "initial": "0.0", "maintenance": "0.0"}


def test_supplied_and_borrowed_amounts_are_pool_shares() -> None:
    # 1 BTC supplied and 20,000 USDC borrowed (held): risk equity 20,000 - 20,000 + 100,000;
    # BTC's scan 15,000 (MM 7,500), its concentration 0.1 * 100,000^2 / 1e9 = 1, the loan charge
    # 1% / 2% of 20,000 = 200 / 400: IM 15,401, MM 7,701
    book = _book(balances={"USDC": "20000"}, supplied={"BTC": "1"}, borrowed={"USDC": "20000"})
    state = book_state(book, "risk")
    assert state.spot["book"].supplied["BTC"] and state.spot["book"].borrowed["USDC"]
    r = answer(book, "risk")
    assert isinstance(r, Answer)
    assert (r.equity, r.initial, r.maintenance) == (usd("100000"), usd("15401"), usd("7701"))
    assert r.breakdown["terms"]["loan USDC"] == {"maintenance": "200.0", "initial": "400.0"}


def test_a_model_that_cannot_borrow_says_so() -> None:
    book = _book(borrowed={"USDC": "1"})
    assert answer(book, "standard") == CannotHold("a standard account cannot borrow")
    assert isinstance(answer(book, "portfolio"), Answer)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"balances": {"USDC": "1.0000001"}}, "a balance of USDC has more than 6 decimals"),
        ({"balances": {"ETH": "1"}}, "no price for ETH: give it in prices"),
        ({"balances": {"BTC": "-1"}}, "a balance of BTC is negative: give a debt in borrowed"),
        (
            {
                "positions": [
                    {"coin": "BTC", "szi": "1", "entry_px": "1"},
                    {"coin": "BTC", "szi": "2", "entry_px": "1"},
                ]
            },
            "a coin has more than one position: give one per coin",
        ),
        (
            {"positions": [{"coin": "BTC", "szi": "1", "entry_px": "1", "leverage": 41}]},
            "leverage 41 of BTC is outside 1..its maximum",
        ),
    ],
)
def test_books_that_are_not_holdings_are_refused_with_the_reason(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BookError) as caught:
        answer(_book(**fields), "standard")
    assert str(caught.value) == message
