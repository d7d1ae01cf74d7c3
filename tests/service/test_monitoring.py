"""Monitoring agrees with itself, on the real service (`serve` on a file log, no Kafka): at start
`/health` and `/metrics` show the snapshot loaded and the seq reached, the start and stop lines
log the same kind of seq (the last applied input event), and a start logs no `gc_pause`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.served import Served

pytestmark = pytest.mark.slow  # every test runs the command in a subprocess

EVENTS = 20_000


def _lines(logs: Path, event: str) -> list[dict]:
    return [json.loads(line) for line in logs.read_text().splitlines() if f'"{event}"' in line]


def test_health_metrics_and_session_lines_agree_at_start_and_stop(tmp_path: Path) -> None:
    """`run` applies seqs 0..19,999 and writes its last snapshot at 19,999: the service loads it,
    so before and after any new event every figure says 19,999."""
    source = tmp_path / "gen.jsonl"
    cli("generate", "--events", str(EVENTS), "--accounts", "2000", "--markets", "3", "--out", str(source))
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    assert json.loads(cli("run", "--log", str(log), "--snapshot-every", "5000", "--json").stdout)["seq"] == EVENTS - 1
    logs = tmp_path / "serve.log"
    served = Served(["--log", str(log)], logs)
    health = served.wait(lambda h: h["status"] == "ok")
    assert (health["seq"], health["snapshot_seq"]) == (EVENTS - 1, EVENTS - 1)
    status, metrics = served.get("/metrics")
    assert status == 200
    assert f"clearinghouse_seq {EVENTS - 1:.1f}" in metrics.splitlines()
    assert f"clearinghouse_snapshot_seq {EVENTS - 1:.1f}" in metrics.splitlines()
    assert served.stop() == 0
    (started,) = _lines(logs, "session_started")
    (stopped,) = _lines(logs, "stopped")
    assert started["seq"] == stopped["seq"] == EVENTS - 1  # nothing new applied in between
    assert _lines(logs, "gc_pause") == []


def test_a_log_never_run_starts_with_no_snapshot_in_health_and_metrics(tmp_path: Path) -> None:
    """An empty log: nothing applied (seq -1) and no snapshot (null in /health, -1 in /metrics)."""
    log = tmp_path / "log"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cli("ingest", str(empty), "--log", str(log))
    logs = tmp_path / "serve.log"
    served = Served(["--log", str(log)], logs)
    health = served.wait(lambda h: h["status"] == "ok")
    assert (health["seq"], health["snapshot_seq"]) == (-1, None)
    lines = served.get("/metrics")[1].splitlines()
    assert "clearinghouse_seq -1.0" in lines and "clearinghouse_snapshot_seq -1.0" in lines
    assert served.stop() == 0
    assert _lines(logs, "session_started")[0]["seq"] == -1
