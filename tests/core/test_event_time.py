"""Event time is bounded (docs/wire-format.md, "Rule parameters and event time"): one event can
move it past at most 8,784 hour boundaries (366 days) once the state has a time or a pool is
open, never past `MAX_TS` before that, and never back. A refused time is a `rejected` event that
leaves the state as it was, event time included, so the pools never accrue more than 8,784 hours
for one event."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec

from clearinghouse.digest import encode_state
from clearinghouse.engine import Engine
from clearinghouse.state import State
from events.schema import Deposit
from events.units import HOUR_MS
from tests.support.pair import stamped
from tests.support.rejecting import rejected
from tests.support.rulebook import Book, class_transfer, deposit, lend

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z: hour 472,222
YEAR_AND_A_DAY = 366 * 24 * HOUR_MS  # 8,784 hours
LATEST = 481_007 * HOUR_MS - 1  # from T0: the last ms before the 8,785th boundary (472,222 + 8,785)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fails the block if it runs longer than `seconds` (the old engine looped ~10^15 hours)."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _pool_at_t0() -> Book:
    """A USDC pool opened at T0 by a standard account's supply."""
    book = Book()
    book.ok(
        stamped(deposit("lender", "1000"), T0),
        class_transfer("lender", "1000", to_perp=False),
        lend("supply", "lender", "1000"),
    )
    return book


def test_a_far_future_ts_is_rejected_at_once_and_time_stays():
    book = _pool_at_t0()
    pool = book.state.pools["USDC"]
    assert (book.state.time, pool.hour) == (T0, 472_222)
    with within(5):
        # int64's largest, T0 in nanoseconds, one ms too far
        for ts in (9_223_372_036_854_775_807, T0 * 1_000_000, LATEST + 1):
            assert "ts" in rejected(book.engine, Deposit(ts=ts, account="a", amount=1_000_000)).reason
            assert (book.state.time, pool.hour) == (T0, 472_222)  # time did not move, nothing accrued
    assert "a" not in book.state.accounts
    book.ok(stamped(deposit("a", "1"), LATEST))
    assert (book.state.time, pool.hour) == (LATEST, 481_006)


def test_a_year_and_a_day_is_accepted_and_an_earlier_ts_keeps_time():
    book = _pool_at_t0()
    book.ok(stamped(deposit("a", "1"), T0 + YEAR_AND_A_DAY))
    # 472,222 + 8,784 hours: every hour of the jump accrued (nothing is lent: no interest)
    assert (book.state.time, book.state.pools["USDC"].hour) == (T0 + YEAR_AND_A_DAY, 481_006)
    book.ok(stamped(deposit("a", "1"), T0))  # earlier: applied at the state's time, which stays
    assert book.state.time == T0 + YEAR_AND_A_DAY
    assert book.state.accounts["a"].raw_usd == 2_000_000


def test_the_first_ts_may_jump_unless_a_pool_accrues_from_hour_zero():
    book = Book()
    book.ok(stamped(deposit("a", "1"), T0))  # no time yet, no pool: any first ts
    assert book.state.time == T0
    untimed = Book()
    untimed.ok(
        deposit("lender", "1000"), class_transfer("lender", "1000", to_perp=False), lend("supply", "lender", "1000")
    )
    assert untimed.state.pools["USDC"].hour == 0
    with within(5):
        # it would accrue 472,222 hours
        assert "ts" in rejected(untimed.engine, Deposit(ts=T0, account="a", amount=1)).reason
    untimed.ok(stamped(deposit("a", "1"), YEAR_AND_A_DAY))
    assert untimed.state.pools["USDC"].hour == 8_784


def test_an_engine_rebuilt_from_the_state_bounds_time_as_the_running_one():
    """The time limit is a function of the encoded state: after every event an engine rebuilt
    from it refuses or accepts the next `ts` exactly as the running engine does."""
    events = [
        Deposit(ts=5, account="a", amount=1),
        Deposit(ts=T0, account="a", amount=1),
        Deposit(ts=LATEST + 1, account="a", amount=1),
        Deposit(ts=LATEST, account="a", amount=1),
        Deposit(ts=LATEST + YEAR_AND_A_DAY + HOUR_MS, account="a", amount=1),
    ]
    running = Engine()
    for event in events:
        rebuilt = Engine(msgspec.msgpack.decode(encode_state(running.state), type=State))
        assert rebuilt.apply(event) == running.apply(event)
        assert encode_state(rebuilt.state) == encode_state(running.state)
    assert running.state.time == LATEST  # the third and the fifth were refused
