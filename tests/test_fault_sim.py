"""The storage fault harness (tests/sim/faults.py) over a fixed range of seeds: every fault
injected under ingest and run ends where an uninterrupted run ends, or is reported loudly
with nothing silently lost."""

from __future__ import annotations

from tests.sim.faults import run_seeds

SEEDS = range(0, 60)


def test_fault_cases_hold_for_a_fixed_range_of_seeds() -> None:
    totals, failures = run_seeds(SEEDS)
    assert failures == {}
    assert totals.cases == len(SEEDS)
    assert sum(totals.faults.values()) >= 2 * len(SEEDS)  # the cases do inject faults
    assert all(totals.faults[kind] > 0 for kind in ("torn", "short", "bitflip", "enospc", "erofs", "crash"))
    assert totals.restarts > 0 and totals.loud > 0
