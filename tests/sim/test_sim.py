"""The simulation harness in the suite: a fixed set of 2,000 seeded streams through the twins,
the reproducers it has shrunk (each once a failure, now passing), and the parts of the harness
itself: a seed replays exactly, the shrinker keeps what a failure needs, and the command runs
from the repository root."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sim.cases import Settings, run_one
from tests.sim.shrink import shrink
from tests.sim.stream import stream
from tests.sim.twins import Totals, family, run_case

ROOT = Path(__file__).resolve().parents[2]
REPRODUCERS = sorted((Path(__file__).parent / "reproducers").glob("*.jsonl"))
SEEDS = range(2_000)
HOSTILE_SEEDS = range(400)
RISK_SEEDS = range(400)
ADL_SEEDS = range(300)
EVENTS = 120  # lines per case: 2,000 cases in about two minutes on two cores


def _run_seeds(seeds: range, settings: Settings) -> Totals:
    """Runs the seeds on two worker processes; fails with the first few failures and the command."""
    totals, failed = Totals(), []
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for outcome in pool.imap_unordered(run_one, [(seed, settings) for seed in seeds], chunksize=20):
            totals.add(outcome.totals)
            if outcome.failure is not None:
                failed.append(f"seed {outcome.seed}: {outcome.failure}")
    hostile = " --hostile" if settings.hostile else ""
    adl = f" --adl {settings.adl}" if settings.adl else ""
    assert failed == [], (
        "\n".join(failed[:5]) + f"\nreproduce: python -m tests.sim --seed N --events {EVENTS}{hostile}{adl}"
    )
    assert totals.cases == len(seeds)
    return totals


@pytest.mark.slow
def test_two_thousand_seeds_run_through_the_twins_without_a_failure() -> None:
    totals = _run_seeds(SEEDS, Settings(events=EVENTS))
    # the streams reach what they exist for: liquidations of every kind, and every refusal counted
    for kind in (
        "liquidation_triggered",
        "liquidation_fill",
        "liquidation_order",
        "backstop",
        "adl",
        "bad_debt",
        "borrow_liquidation",
    ):
        assert totals.derived[kind] > 0, kind
    assert totals.codec_rejected > 0 and totals.rejected["duplicate id"] > 0 and totals.rejected["unknown account"] > 0
    assert totals.comparisons == 3 * totals.events


@pytest.mark.slow
def test_hostile_seeds_run_through_the_twins_without_a_failure() -> None:
    """The values only the codec and engine bounds make safe (`--hostile`: marks at the price
    bound, notionals past the encoding, times past 2100, `liq_ratio` 0, year-long jumps at 1000%
    APY, trades on markets with no price yet) on a smaller set of seeds."""
    totals = _run_seeds(HOSTILE_SEEDS, Settings(events=EVENTS, hostile=True))
    assert totals.derived["liquidation_triggered"] > 0 and totals.comparisons == 3 * totals.events


@pytest.mark.slow
def test_risk_seeds_run_through_the_twins_without_a_failure() -> None:
    """Streams with risk-model accounts and parameters (`--risk`): the trigger bands and the
    full scan make the same decisions on them."""
    totals = _run_seeds(RISK_SEEDS, Settings(events=EVENTS, risk=True))
    assert totals.derived["liquidation_triggered"] > 0 and totals.comparisons == 3 * totals.events


@pytest.mark.slow
@pytest.mark.parametrize("adl", ["pro-rata", "deficit-pro-rata"])
def test_the_other_adl_policies_run_the_same_seeds_through_the_twins(adl: str) -> None:
    """The same streams (a policy changes no stream) under each non-default ADL policy: the twins
    agree, the books conserve, and ADL happens."""
    totals = _run_seeds(ADL_SEEDS, Settings(events=EVENTS, adl=adl))
    assert totals.derived["adl"] > 0 and totals.derived["bad_debt"] > 0
    assert totals.comparisons == 3 * totals.events


@pytest.mark.parametrize("path", REPRODUCERS, ids=[p.stem for p in REPRODUCERS])
def test_a_shrunk_reproducer_passes(path: Path) -> None:
    mode = path.stem.rsplit(".", 1)[1]
    lines = path.read_text(encoding="utf-8").splitlines()
    _, failure = run_case(lines, mode)
    assert failure is None, failure.describe()


def test_a_seed_gives_the_same_stream_and_the_same_run() -> None:
    assert stream(7, 200) == stream(7, 200)
    assert stream(7, 200) != stream(8, 200)
    first, second = run_one((7, Settings(events=200))), run_one((7, Settings(events=200)))
    assert first.totals == second.totals and first.totals.events > 150


def test_the_shrinker_keeps_exactly_what_the_failure_needs() -> None:
    lines = [f"line {i}" for i in range(100)]
    tries: list[int] = []

    def fails(candidate: list[str]) -> bool:
        tries.append(len(candidate))
        return "line 17" in candidate and "line 80" in candidate

    assert shrink(lines, fails) == ["line 17", "line 80"]
    assert len(tries) < 200


def test_a_rejection_reason_is_counted_by_its_family() -> None:
    assert family("amount 12.5 is above withdrawable 3.0") == "amount is above withdrawable"
    assert family("unknown account 'ghost1'") == "unknown account"
    assert family("duplicate id 's4' (first applied at seq 9)") == "duplicate id"


def test_the_command_runs_a_seed_from_the_repository_root() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.sim", "--seed", "3", "--events", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "cases 1" in done.stdout and "twin comparisons" in done.stdout and done.stdout.rstrip().endswith("passed")
