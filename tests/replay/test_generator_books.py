"""The workload's books option (replay/workload/books.py): off, every seed gives the stream it
always gave; on, the extra accounts hold the mix of books asked for, in turn, built in the head
and never traded by the body."""

from __future__ import annotations

import hashlib

import pytest

from events.codec import encode_json
from events.schema import ClassTransfer, Deposit, SpotTrade, Trade
from replay.workload import GeneratorConfig, generate
from replay.workload.books import BOOK_DESK, Books
from replay.workload.draws import Draws
from replay.workload.markets import Markets


def _sha256(config: GeneratorConfig) -> str:
    digest = hashlib.sha256()
    for e in generate(config):
        digest.update(encode_json(e) + b"\n")
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("config", "sha256"),
    [  # the values test_generator.py pins for these configs without the option
        (
            GeneratorConfig(accounts=300, events=5_000, seed=7, books=0),
            "9fe62a83ddf7c7c3215ad69da8541d69f86d7b3f632ab72107e75e2e0487cca3",
        ),
        (
            GeneratorConfig(accounts=300, markets=5, events=6_000, seed=9, pm_share=0.4, books=0),
            "f35914dd0bd8613f9b9751424768fcc7112029917463b6a42464f017bd068258",
        ),
    ],
)
def test_off_the_stream_is_unchanged(config: GeneratorConfig, sha256: str) -> None:
    assert _sha256(config) == sha256


def test_books_need_two_markets() -> None:
    with pytest.raises(ValueError, match="books need at least 2 markets"):
        list(generate(GeneratorConfig(markets=1, books=4)))
    with pytest.raises(ValueError, match="books must be from 0 to"):
        list(generate(GeneratorConfig(books=-1)))


@pytest.mark.parametrize("pm_share", [0.0, 0.3])
def test_on_the_books_are_the_mix_asked_for(pm_share: float) -> None:
    config = GeneratorConfig(accounts=100, markets=5, events=20_000, seed=4, pm_share=pm_share, books=10)
    stream = list(generate(config))
    assert any(isinstance(e, Deposit) and e.account == BOOK_DESK for e in stream)
    # Ten book accounts in turn: carry, pair, directional, maker, carry, ...: 3 + 3 + 2 + 2.
    perps: dict[str, dict[str, int]] = {}
    spot: dict[str, int] = {}
    moved: dict[str, int] = {}
    last_head = 0
    for i, e in enumerate(stream):
        if isinstance(e, Trade) and BOOK_DESK in (e.buyer, e.seller):
            name, signed = (e.buyer, e.sz) if e.seller == BOOK_DESK else (e.seller, -e.sz)
            book = perps.setdefault(name, {})
            book[e.coin] = book.get(e.coin, 0) + signed
            last_head = i
        elif isinstance(e, SpotTrade):
            spot[e.buyer] = spot.get(e.buyer, 0) + e.sz
        elif isinstance(e, ClassTransfer):
            moved[e.account] = e.amount
    kinds = {"carry": 0, "pair": 0, "directional": 0, "maker": 0}
    for name, book in perps.items():
        sides = [book[c] for c in sorted(book)]
        if name in spot:  # long the token spot, short the same size of its perp (HYPE, the fourth market)
            assert book == {"HYPE": -spot[name]} and name in moved
            kinds["carry"] += 1
        elif len(sides) == 1:
            kinds["directional"] += 1
        elif len(sides) == 2:
            assert sides[0] * sides[1] < 0
            kinds["pair"] += 1
        else:  # five markets, alternating sides: three one way and two the other
            assert len(sides) == 5 and sorted(s > 0 for s in sides) in (
                [False] * 2 + [True] * 3,
                [False] * 3 + [True] * 2,
            )
            kinds["maker"] += 1
    assert kinds == {"carry": 3, "pair": 3, "directional": 2, "maker": 2}
    # The books are built in the head: no later event names a book account.
    book_names = set(perps)
    later = [
        e
        for e in stream[last_head + 1 :]
        if book_names & {getattr(e, f, None) for f in ("buyer", "seller", "account")}
    ]
    assert later == []
    assert last_head < 1_000 and len(stream) == 20_000


def test_kinds_come_in_turn() -> None:
    books = Books(9, Draws(1), Markets(3, Draws(2)))
    assert list(books.kinds.values()) == ["carry", "pair", "directional", "maker"] * 2 + ["carry"]
