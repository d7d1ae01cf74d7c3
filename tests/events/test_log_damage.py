"""Damage in a log is never taken for a torn tail unless it is one: loud errors naming segment
and byte, `repair` that cuts and keeps a copy, and a snapshot ahead of its input refused."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from events.codec import encode_json
from events.filelog import FileLog, LogCorruption
from replay.workload import GeneratorConfig, generate

SEG0 = "00000000000000000000.seg"
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "clearinghouse", "-q", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def records(n: int) -> list[bytes]:
    return [bytes([65 + i % 26]) * (20 + i % 7) for i in range(n)]


def start_of(data: list[bytes], k: int) -> int:
    """Byte position of record k, from the format (8-byte header, then the payload)."""
    return sum(8 + len(p) for p in data[:k])


def test_a_corrupt_length_mid_segment_is_loud_not_a_torn_tail(tmp_path: Path) -> None:
    """Record 1,000 of 3,000 gets a length that runs past the end of the segment: nothing but
    valid records follows it, so it is corruption, and the 2,000 records after it stay."""
    data = records(3000)
    with FileLog(tmp_path) as log:
        log.append_many(data)
    position = start_of(data, 1000)
    raw = bytearray((tmp_path / SEG0).read_bytes())
    struct.pack_into("<I", raw, position, 0xFFFFFF00)
    (tmp_path / SEG0).write_bytes(bytes(raw))
    before = files(tmp_path)
    with pytest.raises(LogCorruption) as err:
        FileLog(tmp_path)
    said = f"corrupt record in {SEG0} at byte {position}: length {0xFFFFFF00} runs past the segment end"
    assert said in str(err.value)
    assert files(tmp_path) == before  # nothing cut
    with FileLog(tmp_path, readonly=True) as reader:
        assert list(reader.read(0, 1000)) == list(enumerate(data[:1000]))
        with pytest.raises(LogCorruption, match=f"{SEG0} at byte {position}"):
            list(reader.read(990))


def test_a_zero_filled_last_segment_that_was_synced_is_loud(tmp_path: Path) -> None:
    """The log was closed (synced) with 2,000 records; then the file reads as zeros (a disk that
    lost its blocks). An append cut short can only damage what was not synced: this is loss."""
    data = records(2000)
    with FileLog(tmp_path) as log:
        log.append_many(data)
    seg = tmp_path / SEG0
    seg.write_bytes(bytes(seg.stat().st_size))
    with pytest.raises(LogCorruption) as err:
        FileLog(tmp_path)
    assert f"corrupt record in {SEG0} at byte 0: empty record" in str(err.value)
    assert "synced past it" in str(err.value)
    assert seg.stat().st_size == start_of(data, 2000)


def test_a_damaged_synced_last_record_is_loud_and_an_unsynced_one_is_cut(tmp_path: Path) -> None:
    data = records(10)
    with FileLog(tmp_path) as log:
        log.append_many(data)
    seg = tmp_path / SEG0
    raw = bytearray(seg.read_bytes())
    raw[-1] ^= 0x01
    seg.write_bytes(bytes(raw))
    loud = rf"{SEG0} at byte {start_of(data, 9)}: crc mismatch; the log was synced past it"
    with pytest.raises(LogCorruption, match=loud):
        FileLog(tmp_path)
    raw[-1] ^= 0x01
    seg.write_bytes(bytes(raw))
    with FileLog(tmp_path, fsync="never") as log:  # written, never synced: a crash may tear it
        log.append(b"unsynced record")
    with open(seg, "r+b") as f:
        f.truncate(start_of(data, 10) + 5)
    with capture_logs() as logs:
        log = FileLog(tmp_path)
    with log:
        assert log.next_offset == 10
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["filelog.truncated_torn_tail"]


def test_a_batch_lands_whole_or_is_cut_back_on_open(tmp_path: Path) -> None:
    """A writer killed mid-batch leaves the batch file: readers stop at the batch's start, and
    the next writer cuts the batch away; a committed batch is there whole."""
    data = records(30)
    with FileLog(tmp_path, segment_bytes=200) as log:
        log.append_many(data[:5])
        log.begin_batch()
        log.append_many(data[5:20])
        log.flush()
        with FileLog(tmp_path, readonly=True) as reader:
            assert reader.next_offset == 5
        # the process dies here: the batch file stays (closing is not committing)
    assert (tmp_path / "batch").exists()
    with FileLog(tmp_path, readonly=True) as reader:
        assert list(reader.read()) == list(enumerate(data[:5]))
    with FileLog(tmp_path, segment_bytes=200) as log:
        assert log.next_offset == 5 and not (tmp_path / "batch").exists()
        log.begin_batch()
        log.append_many(data[5:30])
        log.commit_batch()
    with FileLog(tmp_path, readonly=True) as reader:
        assert list(reader.read()) == list(enumerate(data))


def _stream_file(path: Path, n: int, seed: int) -> list[object]:
    events = list(generate(GeneratorConfig(accounts=40, markets=3, events=n, seed=seed)))
    path.write_bytes(b"".join(encode_json(e) + b"\n" for e in events))
    return events


@pytest.mark.slow
def test_run_and_ingest_refuse_a_corrupt_log_and_repair_cuts_it_keeping_a_copy(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    _stream_file(source, 3000, seed=4)
    log = tmp_path / "log"
    assert cli("ingest", str(source), "--log", str(log)).returncode == 0
    seg = log / "events" / SEG0
    original = seg.read_bytes()
    with FileLog(log / "events", readonly=True) as reader:
        payloads = [p for _, p in reader.read()]
    position = start_of(payloads, 1)  # record 1 of 3: events 1000..1999
    raw = bytearray(original)
    raw[position + 8 + 40] ^= 0x10
    seg.write_bytes(bytes(raw))
    for command in (("run", "--log", str(log)), ("ingest", str(source), "--log", str(log))):
        result = cli(*command)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        (line,) = result.stderr.splitlines()
        assert f"corrupt record in {SEG0} at byte {position}: crc mismatch" in line
        assert f"clearinghouse repair --log {log}" in line
    assert seg.read_bytes() == bytes(raw)
    repaired = cli("repair", "--log", str(log), "--json")
    assert repaired.returncode == 0, repaired.stderr
    (said,) = json.loads(repaired.stdout)["repaired"]
    copy = log / "cut" / "events-from-1"
    assert f"at byte {position}: crc mismatch" in said and f"cut {len(original) - position} bytes, record 1 on" in said
    assert (copy / SEG0).read_bytes() == bytes(raw)  # the whole original segment, as it was
    assert seg.read_bytes() == original[:position]
    summary = json.loads(cli("run", "--log", str(log), "--json").stdout)
    assert summary["applied"] == 1000


@pytest.mark.slow
def test_a_snapshot_ahead_of_the_input_log_is_refused_until_repaired(tmp_path: Path) -> None:
    """The input lost its last 1,000 events after a run counted them: events ingested now
    would get seqs the snapshot already counts and never be applied, so run and ingest refuse;
    repair sets the snapshot and the derived events past the log aside, and the log then ends
    where one run over its input ends."""
    whole, first, rest = tmp_path / "whole.jsonl", tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    events = _stream_file(whole, 3000, seed=6)
    lines = whole.read_bytes().splitlines(keepends=True)
    first.write_bytes(b"".join(lines[:2000]))
    rest.write_bytes(b"".join(lines[2000:]))
    log = tmp_path / "log"
    assert cli("ingest", str(whole), "--log", str(log)).returncode == 0
    assert cli("run", "--log", str(log), "--snapshot-every", "1000", "--checkpoint-every", "1000").returncode == 0
    with FileLog(log / "events", readonly=True) as reader:  # the log loses its last two records
        kept = [p for _, p in reader.read(0, 2)]
    for path in (log / "events").iterdir():
        if path.is_file():
            path.unlink()
    with FileLog(log / "events") as writer:
        writer.append_many(kept)
    for command in (("run", "--log", str(log)), ("ingest", str(rest), "--log", str(log))):
        result = cli(*command)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert f"snap-{3000:020d}.snap counts 3000 input events but {log / 'events'} holds 2000" in result.stderr
    assert cli("repair", "--log", str(log)).returncode == 0
    assert sorted(p.name for p in (log / "cut" / "snapshots").iterdir()) == [f"snap-{3000:020d}.snap"]
    assert cli("ingest", str(rest), "--log", str(log)).returncode == 0
    after = json.loads(cli("run", "--log", str(log), "--json").stdout)
    reference = tmp_path / "reference"
    cli("ingest", str(first), "--log", str(reference))
    cli("ingest", str(rest), "--log", str(reference))
    expected = json.loads(cli("run", "--log", str(reference), "--checkpoint-every", "1000", "--json").stdout)
    assert after["digest"] == expected["digest"] and after["seq"] == len(events) - 1
    derived = cli("events", "--log", str(log), "--derived").stdout
    assert derived == cli("events", "--log", str(reference), "--derived").stdout
