"""Withdrawable (docs/rules.md 2): hl-current max(0, AV_cross - max(IM, 0.1 * ntl)),
hl-2023 max(0, AV - totalMarginUsed) with no floor; the same limit for transfers.
Expected values are worked out by hand next to each assertion."""

from __future__ import annotations

import pytest

from tests.support.rulebook import BTC_TIERS, Book, deposit, market, prices, rules, trade, transfer, withdraw


def _book(rule_set: str) -> Book:
    book = Book(rule_set)
    book.ok(
        market("BTC", 5, BTC_TIERS),
        deposit("alice", "3000"),
        deposit("mm", "100000"),
        prices(BTC="100000"),
        # alice long 0.1 BTC at 100,000 (default 20x): ntl 10,000, IM 10,000/20 = 500,
        # 10% floor = 1,000; rawUsd = 3,000 - 10,000 = -7,000; AV = -7,000 + 10,000 = 3,000
        trade("BTC", "100000", "0.1", "alice", "mm"),
    )
    return book


@pytest.mark.parametrize(
    "rule_set, available",
    [
        ("hl-current", "2000.0"),  # 3,000 - max(500, 1,000) = 2,000
        ("hl-2023", "2500.0"),  # 3,000 - 500 = 2,500
    ],
)
def test_withdrawal_at_and_above_withdrawable(rule_set, available):
    book = _book(rule_set)
    assert book.summary("alice")["withdrawable"] == available
    above = f"{available[:-2]}.000001"  # one micro-USDC more
    rejected = book.reject(withdraw("alice", above))
    assert "withdrawable" in rejected.reason
    book.reject(transfer("alice", "carol", above))  # a transfer is a removal too
    book.ok(withdraw("alice", available))
    s = book.summary("alice")
    assert s["withdrawable"] == "0.0"
    # AV after = 3,000 - withdrawn: current 1,000 (= the 10% floor), 2023 500 (= IM)
    assert s["marginSummary"]["accountValue"] == {"hl-current": "1000.0", "hl-2023": "500.0"}[rule_set]
    assert book.state.withdrawn == int(available[:-2]) * 10**6


@pytest.mark.parametrize(
    "rule_set, available",
    [
        # mark 90,000: AV = -7,000 + 9,000 = 2,000; ntl 9,000; IM 450; floor 900
        ("hl-current", "1100.0"),  # 2,000 - max(450, 900) = 1,100
        ("hl-2023", "1550.0"),  # 2,000 - 450 = 1,550
    ],
)
def test_withdrawable_follows_the_mark(rule_set, available):
    book = _book(rule_set)
    book.ok(prices(BTC="90000"))
    assert book.summary("alice")["withdrawable"] == available
    book.reject(transfer("alice", "carol", f"{available[:-2]}.000001"))
    book.ok(transfer("alice", "carol", available))
    assert book.summary("carol")["marginSummary"]["accountValue"] == available


def test_rule_switch_changes_withdrawable_mid_stream():
    book = _book("hl-current")
    assert book.summary("alice")["withdrawable"] == "2000.0"
    book.ok(rules("hl-2023"))
    assert book.summary("alice")["withdrawable"] == "2500.0"
    book.ok(rules("hl-current"))
    assert book.summary("alice")["withdrawable"] == "2000.0"


def test_withdrawable_never_negative_and_no_positions():
    book = _book("hl-current")
    # mark 75,000: AV = -7,000 + 7,500 = 500 < floor 750 -> withdrawable max(0, 500 - 750) = 0
    book.ok(prices(BTC="75000"))
    assert book.summary("alice")["withdrawable"] == "0.0"
    book.reject(withdraw("alice", "0.000001"))
    # carol has no position: withdrawable = AV = deposit
    book.ok(deposit("carol", "12.345678"))
    assert book.summary("carol")["withdrawable"] == "12.345678"
    book.reject(withdraw("carol", "12.345679"))
    book.ok(withdraw("carol", "12.345678"))
    assert book.summary("carol")["marginSummary"]["accountValue"] == "0.0"
