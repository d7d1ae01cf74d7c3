"""The storage fault harness (tests/sim/faults.py) over a fixed range of seeds: every fault
injected under ingest and run ends where an uninterrupted run ends, or is reported loudly
with nothing silently lost."""

from __future__ import annotations

import pytest

from tests.sim.faults import run_seeds

SEEDS = range(0, 60)


@pytest.mark.slow
def test_fault_cases_hold_for_a_fixed_range_of_seeds() -> None:
    totals, failures = run_seeds(SEEDS)
    assert failures == {}
    assert totals.cases == len(SEEDS)
    assert sum(totals.faults.values()) >= 2 * len(SEEDS)  # the cases do inject faults
    assert all(totals.faults[kind] > 0 for kind in ("torn", "short", "bitflip", "enospc", "erofs", "crash"))
    assert totals.restarts > 0 and totals.loud > 0


def test_a_damaged_index_entry_pointing_past_its_segment_is_not_followed() -> None:
    """Seeds 6462 and 6673: a bit flip in an offset index entry made it point past any file
    (past 2^63), and the search for a valid record after a damaged tail seeked there: every
    later `run` stopped on EINVAL. Such an entry is now skipped, as any outside the segment."""
    _, failures = run_seeds(range(6462, 6463))
    assert failures == {}
    _, failures = run_seeds(range(6673, 6674))
    assert failures == {}
