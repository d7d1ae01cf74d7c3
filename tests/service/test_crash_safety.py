"""`run` killed with SIGKILL at random points, again and again, ends exactly where an
uninterrupted run ends: same digest, every derived event once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clearinghouse.edges.runner import run
from clearinghouse.state import LiquidationConfig
from events.eventlog import EventLog
from replay.logdir import LogDir
from replay.snapshot import SnapshotStore
from replay.workload import GeneratorConfig, generate


def _write(root: Path, events: list) -> LogDir:
    log = LogDir(root)
    with EventLog(log.events) as out:
        for i in range(0, len(events), 200):
            out.append(events[i : i + 200])
    return log


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_repeats_nothing(tmp_path: Path) -> None:
    stream = list(generate(GeneratorConfig(accounts=400, markets=5, events=200_000, seed=13)))
    reference = _write(tmp_path / "reference", stream)
    expected = run(reference, snapshot_every=2_000, liquidation=LiquidationConfig(loss_limit=0))
    with EventLog(reference.derived, derived=True, readonly=True) as derived:
        expected_derived = [e for _, e in derived.read()]
    victim = _write(tmp_path / "victim", stream)
    command = [
        sys.executable,
        "-m",
        "clearinghouse",
        "-q",
        "run",
        "--log",
        str(victim.root),
        "--snapshot-every",
        "2000",
        "--liquidator-loss-limit",
        "0",
    ]
    rng = random.Random(5)
    kills = 0
    for attempt in range(41):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(
                timeout=rng.uniform(0.6, 1.6) if attempt < 40 else None
            )  # on a loaded machine, the last run is left to finish
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read().decode()
        break
    assert kills >= 3, "the run finished before it could be killed often enough; make the stream longer"
    final = run(victim)  # nothing left to apply
    assert final.applied == 0
    assert SnapshotStore(victim.state).latest()[0].digest == SnapshotStore(reference.state).latest()[0].digest
    with EventLog(victim.derived, derived=True, readonly=True) as derived:
        assert [e for _, e in derived.read()] == expected_derived
    assert expected.applied == len(stream)


def test_a_torn_input_tail_is_cut_and_the_run_goes_on(tmp_path: Path) -> None:
    stream = list(generate(GeneratorConfig(accounts=100, markets=3, events=3_000, seed=2)))
    log = _write(tmp_path / "log", stream)
    segment = sorted(log.events.glob("*.seg"))[-1]
    with open(segment, "ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")  # a record header promising 64 bytes, then a crash
    with EventLog(log.events) as events:  # opening for writing cuts the torn record
        assert events.next_seq == 3_000
    assert run(log).applied == 3_000
