"""`ingest` lands a whole file or nothing, and never appends the same events twice unasked."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from events.codec import encode_json
from events.eventlog import EventLog
from replay.workload import GeneratorConfig, generate

pytestmark = pytest.mark.slow  # every test runs the command in a subprocess

ROOT = Path(__file__).resolve().parents[2]
# The command line with a decoder that fails (not a clean rejection) on the 3,000th event:
# what a codec bug does to one line of a long file.
BROKEN_DECODER = """
import sys
import events.codec as codec
import clearinghouse.edges.cli as cli
real, seen = codec.decode_json, [0]
def decode(line):
    seen[0] += 1
    if seen[0] == 3000:
        raise ArithmeticError("the decoder broke")
    return real(line)
codec.decode_json = cli.decode_json = decode
sys.exit(cli.main(sys.argv[1:]))
"""


def cli(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    head = ["-c", code] if code else ["-m", "clearinghouse"]
    return subprocess.run([sys.executable, *head, "-q", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def stream(path: Path, n: int, seed: int = 3) -> list[object]:
    events = list(generate(GeneratorConfig(accounts=50, markets=3, events=n, seed=seed)))
    path.write_bytes(b"".join(encode_json(e) + b"\n" for e in events))
    return events


def logged(log: Path) -> list[object]:
    if not (log / "events").is_dir():
        return []
    with EventLog(log / "events", readonly=True) as events:
        return [e for _, e in events.read()]


def test_a_line_the_decoder_fails_on_leaves_nothing_behind(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    events = stream(source, 5000)
    log = tmp_path / "log"
    result = cli("ingest", str(source), "--log", str(log), code=BROKEN_DECODER)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == (
        f"clearinghouse: error: {source}:3000: the decoder failed on this line (ArithmeticError: the decoder broke); "
        "nothing was ingested"
    )
    assert logged(log) == []
    fixed = cli("ingest", str(source), "--log", str(log), "--json")  # the same file, decoder fixed
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["ingested"] == 5000 and logged(log) == events


def test_the_same_file_twice_is_refused_unless_asked_for(tmp_path: Path) -> None:
    source, longer = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    events = stream(source, 1500)
    lines = source.read_bytes()
    more = b"".join(encode_json(e) + b"\n" for e in stream(tmp_path / "c.jsonl", 700, seed=8))
    longer.write_bytes(lines + b"not json\n" + more)
    log = tmp_path / "log"
    first = cli("ingest", str(source), "--log", str(log))
    assert first.returncode == 0 and "ingested 1500 events" in first.stdout and "as seqs 0..1499" in first.stdout
    again = cli("ingest", str(source), "--log", str(log))
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.strip() == (
        f"clearinghouse: error: {source}: its 1500 events were already ingested, as seqs 0..1499 (from {source}); "
        "nothing was ingested. To append them again, pass --allow-duplicate"
    )
    overlapping = cli("ingest", str(longer), "--log", str(log))  # the old file plus more: its start is in the log
    assert overlapping.returncode == 1
    assert f"{longer}: the first 1500 of its 2200 events were already ingested, as seqs 0..1499" in overlapping.stderr
    assert logged(log) == events
    allowed = cli("ingest", str(source), "--log", str(log), "--allow-duplicate", "--json")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout) | {"rejects_file": None} == {
        "ingested": 1500,
        "first_seq": 1500,
        "rejected_lines": 0,
        "rejects_file": None,
        "next_seq": 3000,
    }
    assert logged(log) == events + events


def test_a_killed_ingest_leaves_the_whole_file_or_nothing(tmp_path: Path) -> None:
    """SIGKILL at random moments of an ingest of 100,000 events: each time the log holds all of
    the file or none of it, and the ingest that completes lands it once."""
    source = tmp_path / "big.jsonl"
    events = stream(source, 100_000, seed=11)
    log = tmp_path / "log"
    rng = random.Random(7)
    command = [sys.executable, "-m", "clearinghouse", "-q", "ingest", str(source), "--log", str(log)]
    command += ["--block", "50"]
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        time.sleep(rng.uniform(1.0, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if (log / "events").is_dir():
            with EventLog(log / "events", readonly=True) as out:
                assert out.next_seq in (0, len(events))
        if proc.returncode == 0:
            break
    assert kills >= 1, "every ingest finished before it was killed: make the file longer"
    finished = cli("ingest", str(source), "--log", str(log))
    assert finished.returncode in (0, 1), finished.stderr
    assert finished.returncode == 0 or "already ingested" in finished.stderr
    assert logged(log) == events


def test_a_file_is_still_recognised_after_a_repair_cut_its_note(tmp_path: Path) -> None:
    """The ingest notes are damaged: ingest stops and names repair; repair cuts the notes and
    notes that they were lost; the same file is then found among the logged events."""
    source, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    stream(source, 800)
    stream(other, 300, seed=5)
    log = tmp_path / "log"
    assert cli("ingest", str(other), "--log", str(log)).returncode == 0
    assert cli("ingest", str(source), "--log", str(log)).returncode == 0
    notes = log / "events" / "ingested" / "00000000000000000000.seg"
    raw = bytearray(notes.read_bytes())
    raw[-3] ^= 0x04  # inside the second note, which was synced
    notes.write_bytes(bytes(raw))
    stopped = cli("ingest", str(source), "--log", str(log))
    assert stopped.returncode == 1 and f"clearinghouse repair --log {log}" in stopped.stderr
    repaired = cli("repair", "--log", str(log))
    said = "ingest notes were cut: a file ingested again is searched for among the 1100 events logged"
    assert said in repaired.stdout
    again = cli("ingest", str(source), "--log", str(log))
    assert again.returncode == 1
    assert f"{source}: its 800 events were already ingested, as seqs 300..1099" in again.stderr
    assert len(logged(log)) == 1100
