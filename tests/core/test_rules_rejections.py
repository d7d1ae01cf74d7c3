"""Rejections (docs/architecture.md rule 4; docs/rules.md 1-2): each bad event yields exactly one
`Rejected` with a reason and the event's seq, and leaves the state (digest) unchanged apart from
`next_seq` and `time` (checked by `Book.reject` on the canonical state encoding)."""

from __future__ import annotations

import pytest

from clearinghouse.digest import state_digest
from events.codec import CodecError, decode_json
from tests.support.rulebook import (
    BTC_TIERS,
    ETH_TIERS,
    Book,
    deposit,
    funding,
    isolated_margin,
    line,
    market,
    prices,
    rules,
    set_leverage,
    trade,
    transfer,
    withdraw,
)


def _base() -> Book:
    book = Book()
    book.ok(
        market("BTC", 5, BTC_TIERS),  # lot 0.00001, prices at most 6 - 5 = 1 decimal
        market("ETH", 4, ETH_TIERS),  # lot 0.0001, prices at most 2 decimals
        deposit("alice", "10000", id="dep-a", ts=1000),
        deposit("bob", "10000", ts=2000),
        prices(BTC="100000", ETH="3000"),
        # alice long 0.1 BTC: ntl 10,000, IM 500, floor 1,000, AV 10,000 -> withdrawable 9,000
        trade("BTC", "100000", "0.1", "alice", "bob"),
    )
    assert book.summary("alice")["withdrawable"] == "9000.0"
    return book


CASES = [
    # (label, event line, a word the reason must name)
    ("unknown market: trade", trade("DOGE", "1", "1", "alice", "bob"), "DOGE"),
    ("unknown market: prices", prices(DOGE="1"), "DOGE"),
    ("unknown market: set_leverage", set_leverage("alice", "DOGE", 2), "DOGE"),
    ("unknown market: funding", funding("DOGE", rate="0.0001"), "DOGE"),
    ("unknown market: isolated_margin", isolated_margin("alice", "DOGE", "1"), "DOGE"),
    ("unknown account: withdraw", withdraw("nobody", "1"), "nobody"),
    ("unknown account: transfer", transfer("nobody", "alice", "1"), "nobody"),
    ("unknown account: buyer", trade("BTC", "100000", "0.1", "nobody", "bob"), "nobody"),
    ("unknown account: seller", trade("BTC", "100000", "0.1", "alice", "nobody"), "nobody"),
    ("unknown account: set_leverage", set_leverage("nobody", "BTC", 2), "nobody"),
    ("withdrawal above withdrawable", withdraw("alice", "9000.000001"), "withdrawable"),
    ("transfer above withdrawable", transfer("alice", "bob", "9000.000001"), "withdrawable"),
    ("size off the BTC lot", trade("BTC", "100000", "0.000001", "alice", "bob"), "lot"),
    ("size off the ETH lot", trade("ETH", "3000", "1.00001", "alice", "bob"), "lot"),
    ("zero deposit", deposit("alice", "0"), ""),
    ("negative deposit", deposit("alice", "-1"), ""),
    ("zero withdrawal", withdraw("alice", "0"), ""),
    ("negative withdrawal", withdraw("alice", "-1"), ""),
    ("zero transfer", transfer("alice", "bob", "0"), ""),
    ("negative transfer", transfer("alice", "bob", "-5"), ""),
    ("zero trade size", trade("BTC", "100000", "0", "alice", "bob"), ""),
    ("negative trade size", trade("BTC", "100000", "-0.1", "alice", "bob"), ""),
    ("zero trade price", trade("BTC", "0", "0.1", "alice", "bob"), ""),
    ("negative trade price", trade("BTC", "-100000", "0.1", "alice", "bob"), ""),
    ("zero mark", prices(BTC="0"), ""),
    ("zero leverage", set_leverage("alice", "ETH", 0), ""),
    ("leverage above the table", set_leverage("alice", "ETH", 26), ""),  # ETH first tier 25x
    # BTC prices have at most 6 - 5 = 1 decimal: 100000.05 has 2 (and 0.00001 * 100000.05 = 1.0000005
    # is not even exact in micro-USDC)
    ("BTC px with 2 decimals, inexact notional", trade("BTC", "100000.05", "0.00001", "alice", "bob"), ""),
    ("self-trade", trade("BTC", "100000", "0.1", "alice", "alice"), ""),
    ("transfer to self", transfer("alice", "alice", "1"), ""),
    ("duplicate id", deposit("alice", "5", id="dep-a"), "dep-a"),
    ("unknown rule set", rules("hl-1999"), "hl-1999"),
    ("funding with rate and premium", funding("BTC", rate="0.0001", premium="0.0001"), ""),
    ("tiers with rising leverage", market("XRP", 1, [("0", 10), ("1000000", 20)]), ""),
    ("tiers not starting at 0", market("XRP", 1, [("5", 10)]), ""),
    ("sz_decimals of a listed market changed", market("BTC", 4, BTC_TIERS), ""),
    ("only_isolated changed with positions open", market("BTC", 5, BTC_TIERS, only_isolated=True), ""),
    ("import of an existing account", line(type="import_account", account="alice", raw_usd="1"), ""),
    ("isolated margin without a position", isolated_margin("bob", "ETH", "1"), ""),
]


@pytest.mark.parametrize("label, text, word", CASES, ids=[c[0] for c in CASES])
def test_rejected_event_leaves_state_unchanged(label, text, word):
    book = _base()
    rejected = book.reject(text)  # one Rejected, seq = 6, state unchanged but next_seq/time
    assert rejected.seq == 6  # events 0..5 were the setup
    if word:
        assert word in rejected.reason, rejected.reason


@pytest.mark.parametrize(
    "coin, px, size",
    [
        # ETH: at most 6 - 4 = 2 decimals; 3000.001 has 3 (1 * 3000.001 = 3000.001 is exact in micro-USDC)
        ("ETH", "3000.001", "1"),
        # ETH: 0.001 * 3000.001 = 3.000001, exact in micro-USDC, but the price still has 3 decimals
        ("ETH", "3000.001", "0.001"),
        # BTC: at most 1 decimal; 100000.05 has 2 (1 * 100000.05 = 100000.05 is exact in micro-USDC)
        ("BTC", "100000.05", "1"),
    ],
)
def test_px_with_more_decimals_than_the_market_allows_is_rejected(coin, px, size):
    """docs/rules.md 1: prices have at most 6 - szDecimals decimals, whatever the size."""
    book = _base()
    book.reject(trade(coin, px, size, "alice", "bob"))


def test_consecutive_rejections_have_consecutive_seqs_and_time_may_advance():
    book = _base()
    digest = state_digest(book.state)
    seqs = [
        book.reject(withdraw("nobody", "1", ts=5000)).seq,
        book.reject(deposit("alice", "0")).seq,
        book.reject(trade("BTC", "100000", "0.1", "bob", "bob")).seq,
    ]
    assert seqs == [6, 7, 8]
    assert book.state.next_seq == 9
    assert book.state.time == 5000  # a rejected event still counts its time
    book.state.next_seq, book.state.time = 6, 2000
    assert state_digest(book.state) == digest


def test_rejected_event_carrying_a_fresh_id_leaves_state_unchanged():
    """A rejected event leaves the state unchanged apart from next_seq and time, including the
    de-duplication window: the id of an event that did not happen is not spent."""
    book = _base()
    book.reject(withdraw("alice", "9000.000001", id="w-1"))
    # had the rejected withdrawal not touched the state, the same request can succeed later
    book.ok(deposit("alice", "1"))
    book.ok(withdraw("alice", "9000.000001", id="w-1"))


def test_accepted_events_are_not_rejected_by_their_own_id_once():
    book = _base()
    book.ok(deposit("alice", "1", id="dep-b"))
    rejected = book.reject(deposit("alice", "1", id="dep-b"))
    assert "dep-b" in rejected.reason
    assert book.summary("alice")["marginSummary"]["accountValue"] == "10001.0"  # 10,000 + 1 once


@pytest.mark.parametrize(
    "text",
    [
        trade("BTC", "1.000000001", "1", "alice", "bob"),  # px finer than 1e-8
        trade("BTC", "1", "0.000000001", "alice", "bob"),  # sz finer than 1e-8
        deposit("alice", "0.0000001"),  # amount finer than 1e-6
        funding("BTC", rate="0.0000000000001"),  # rate finer than 1e-12
        '{"type": "deposit", "account": "alice", "amount": 1.5}',  # a float, not a decimal string
    ],
)
def test_malformed_wire_decimals_fail_at_the_codec(text):
    with pytest.raises(CodecError):
        decode_json(text)
