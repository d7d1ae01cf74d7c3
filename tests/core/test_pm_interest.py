"""Hourly interest and the band index: a USDC borrower keeps 1/16 of its buffer back for the
interest on its debt and is sent for an exact check only once the interest has used that up;
the index and the full scan (which checks every borrower at every hour) decide alike.

Hand working: the rules set a flat 87.6% borrow APY (kink at 100% utilisation), so every hour
multiplies the borrow index by exactly 1 + 0.876 / 8760 = 1.0001. The PM account holds
1,000 HYPE at 10 (worth 10,000; LTV 0.65) and borrows 6,400 USDC, which stays in its ledger.
Partial borrow threshold: 10,000 * (0.65 + 0.35 / 2) = 8,250, so its buffer is
8,250 - 6,400 = 1,850 (the PM ratio's is wider: 0.95 * (6,400 + 8,250) - 20 - 6,400 = 7,497.50),
and it keeps 1,850 / 16 = 115.625 back: checked once its debt is above 6,515.625, and liquidated
once it is above 8,250.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events.schema import BorrowLiquidation, event_type
from events.units import HOUR_MS, usd
from replay.workload import GeneratorConfig, generate
from tests.support.borrower import at_hour, borrower, hours_until_above


def test_interest_sends_a_borrower_for_a_check_once_it_used_up_what_it_kept_back():
    pair = borrower()
    bands = pair.fast.pm_bands
    assert bands is not None and bands.debts["pm"] == (usd("6400"), usd("6515.625"))
    first = hours_until_above(Fraction(6515625, 1000))
    assert first == 180  # 6,400 * 1.0001^179 = 6,515.59; ^180 = 6,516.24
    for hour in range(2, 2 + first):
        pair.ok(at_hour(hour))
        rebanded = bands.debts["pm"][1] != usd("6515.625")
        assert rebanded == (hour == 1 + first), hour


@pytest.mark.slow
def test_interest_liquidates_the_borrower_at_the_same_hour_in_both_modes():
    pair = borrower()
    due = hours_until_above(Fraction(8250))
    assert due == 2540  # 6,400 * 1.0001^2539 = 8,249.77; ^2540 = 8,250.59
    for hour in range(2, 1 + due):
        pair.ok(at_hour(hour))
    derived = pair.send(at_hour(1 + due))
    assert [(type(d), d.kind, d.threshold) for d in derived] == [(BorrowLiquidation, "partial", usd("8250"))]


@pytest.mark.slow
def test_band_index_and_full_scan_decide_alike_over_many_hours_of_pm_stream():
    """About five hours of a PM stream (steps of up to 3 s), so the hourly interest and the
    settlement with the pool run several times with borrowers on both sides of their reserve."""
    config = GeneratorConfig(accounts=120, markets=4, events=12_000, seed=5, pm_share=0.3, max_step_ms=3_000)
    fast = Engine(State(liquidation=LiquidationConfig()))
    full = Engine(State(liquidation=LiquidationConfig()), full_scan=True)
    kinds: Counter[str] = Counter()
    for event in generate(config):
        derived = fast.apply(event)
        assert derived == full.apply(event)
        kinds.update(event_type(d) for d in derived)
    assert state_digest(fast.state) == state_digest(full.state)
    assert fast.state.time - next(iter(generate(config))).ts > 4 * HOUR_MS
    assert any(s.borrowed for s in fast.state.spot.values())
