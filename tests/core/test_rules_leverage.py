"""Leverage (docs/rules.md 2): integer 1..maxLeverage of the tier holding the position,
cross/isolated fixed while a position is open, isolated-only markets, lowering needs margin;
default for a new position: cross (isolated on isolated-only markets) at min(20, market max)."""

from __future__ import annotations

import pytest

from tests.support.rulebook import (
    BTC_TIERS,
    HYPE_TIERS,
    Book,
    deposit,
    market,
    prices,
    set_leverage,
    trade,
)


def _btc(alice_deposit: str = "1000000000") -> Book:
    book = Book()
    book.ok(
        market("BTC", 5, BTC_TIERS),
        deposit("alice", alice_deposit),
        deposit("mm", "1000000000"),
        prices(BTC="100000"),
    )
    return book


def test_leverage_bounds_without_a_position():
    book = _btc()
    book.reject(set_leverage("alice", "BTC", 41))  # the first tier allows 40
    book.reject(set_leverage("alice", "BTC", 0))
    book.reject(set_leverage("alice", "BTC", -3))
    book.ok(set_leverage("alice", "BTC", 40))
    book.ok(trade("BTC", "100000", "1", "alice", "mm"))
    pos = book.position("alice", "BTC")
    assert pos["leverage"] == {"type": "cross", "value": 40}
    assert pos["marginUsed"] == "2500.0"  # 100,000 / 40


@pytest.mark.parametrize(
    "size, max_ok",
    [
        ("1499.99999", 40),  # ntl 149,999,999 < 150M: tier 0, 40x
        ("1500", 20),  # ntl exactly 150,000,000: the lower bound belongs to tier 1, 20x
        ("1500.00001", 20),  # ntl 150,000,001: tier 1
    ],
)
def test_leverage_cap_follows_the_tier_of_the_position(size, max_ok):
    book = _btc()
    book.ok(trade("BTC", "100000", size, "alice", "mm"))  # default 20x
    book.reject(set_leverage("alice", "BTC", max_ok + 1))
    book.ok(set_leverage("alice", "BTC", max_ok))
    assert book.position("alice", "BTC")["leverage"]["value"] == max_ok


def test_default_leverage_of_a_new_position():
    book = Book()
    book.ok(
        market("BTC", 5, BTC_TIERS),  # 40x
        market("SOL", 2, [("0", 20), ("70000000", 10)]),  # 20x
        market("ALT", 1, [("0", 10), ("20000000", 5)]),  # 10x
        market("LOW", 0, [("0", 3)]),  # 3x
        market("HYPE", 2, HYPE_TIERS, only_isolated=True),  # 10x, isolated-only
        deposit("alice", "1000000"),
        deposit("mm", "1000000"),
        prices(BTC="100000", SOL="200", ALT="10", LOW="1", HYPE="40"),
        trade("BTC", "100000", "1", "alice", "mm"),
        trade("SOL", "200", "1", "alice", "mm"),
        trade("ALT", "10", "1", "alice", "mm"),
        trade("LOW", "1", "1", "alice", "mm"),
        trade("HYPE", "40", "1", "alice", "mm"),
    )
    assert book.position("alice", "BTC")["leverage"] == {"type": "cross", "value": 20}  # min(20, 40)
    assert book.position("alice", "SOL")["leverage"] == {"type": "cross", "value": 20}  # min(20, 20)
    assert book.position("alice", "ALT")["leverage"] == {"type": "cross", "value": 10}  # min(20, 10)
    assert book.position("alice", "LOW")["leverage"] == {"type": "cross", "value": 3}  # min(20, 3)
    hype = book.position("alice", "HYPE")["leverage"]
    assert (hype["type"], hype["value"]) == ("isolated", 10)  # min(20, 10), isolated-only
    # the counterparty got the same defaults
    assert book.position("mm", "LOW")["leverage"] == {"type": "cross", "value": 3}


def test_cross_on_an_isolated_only_market_is_rejected():
    book = Book()
    book.ok(market("HYPE", 2, HYPE_TIERS, only_isolated=True), deposit("alice", "1000"))
    book.reject(set_leverage("alice", "HYPE", 5, cross=True))
    book.ok(set_leverage("alice", "HYPE", 5, cross=False))


def test_switching_margin_mode_with_an_open_position_is_rejected():
    book = _btc()
    book.ok(trade("BTC", "100000", "1", "alice", "mm"))
    book.reject(set_leverage("alice", "BTC", 20, cross=False))  # cross -> isolated while open
    book.ok(trade("BTC", "100000", "1", "mm", "alice"))  # closed
    book.ok(set_leverage("alice", "BTC", 10, cross=False))  # now allowed
    book.ok(trade("BTC", "100000", "1", "alice", "mm"))
    assert book.position("alice", "BTC")["leverage"]["type"] == "isolated"
    book.reject(set_leverage("alice", "BTC", 10, cross=True))  # isolated -> cross while open


def test_lowering_leverage_needs_margin():
    book = _btc(alice_deposit="1000")
    # long 0.1 BTC at 100,000, 20x: ntl 10,000, IM 500, AV 1,000
    book.ok(trade("BTC", "100000", "0.1", "alice", "mm"))
    book.reject(set_leverage("alice", "BTC", 5))  # IM would be 10,000/5 = 2,000 > AV 1,000
    book.reject(set_leverage("alice", "BTC", 2))  # 5,000 > 1,000
    book.ok(set_leverage("alice", "BTC", 40))  # raising is always allowed: IM 250
    book.ok(deposit("alice", "5000"))  # AV 6,000
    book.ok(set_leverage("alice", "BTC", 5))  # IM 2,000 <= 6,000
    pos = book.position("alice", "BTC")
    assert pos["leverage"] == {"type": "cross", "value": 5}
    assert pos["marginUsed"] == "2000.0"  # 10,000 / 5
