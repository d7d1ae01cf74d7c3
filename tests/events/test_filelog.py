"""FileLog on real files: round trips, segments, index rebuild, crash recovery, corruption, tail."""

from __future__ import annotations

import struct
import tempfile
import threading
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from events.filelog import FileLog, LogCorruption, LogLocked

SEG0 = "00000000000000000000.seg"


def payloads(n: int, size: int = 20) -> list[bytes]:
    return [(b"%06d" % i) * (size // 6 + 1) for i in range(n)]


def record_start(sizes: list[int], k: int) -> int:
    """Byte position of record k in a segment, computed from the format, not the index."""
    return sum(8 + s for s in sizes[:k])


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    data = payloads(50)
    with FileLog(tmp_path / "log") as log:
        assert log.next_offset == 0
        assert log.append_many([]) == -1
        assert log.append(data[0]) == 0
        assert log.append_many(data[1:]) == 49
        assert log.append_many([]) == 49
        assert log.next_offset == 50
        assert list(log.read()) == list(enumerate(data))
    with FileLog(tmp_path / "log") as log:
        assert log.next_offset == 50
        assert list(log.read()) == list(enumerate(data))
        assert log.append(b"more") == 50


def test_record_format_on_disk(tmp_path: Path) -> None:
    with FileLog(tmp_path) as log:
        log.append_many([b"abc", b"hello"])
    raw = (tmp_path / SEG0).read_bytes()
    assert raw == (
        struct.pack("<II", 3, zlib.crc32(b"abc")) + b"abc" + struct.pack("<II", 5, zlib.crc32(b"hello")) + b"hello"
    )
    assert (tmp_path / "00000000000000000000.idx").read_bytes() == struct.pack("<QQQQ", 0, 0, 1, 11)


def test_read_from_middle_and_ranges(tmp_path: Path) -> None:
    data = payloads(100)
    with FileLog(tmp_path) as log:
        log.append_many(data)
        assert list(log.read(37)) == [(i, data[i]) for i in range(37, 100)]
        assert list(log.read(10, 20)) == [(i, data[i]) for i in range(10, 20)]
        assert list(log.read(99, 1000)) == [(99, data[99])]
        assert list(log.read(100)) == []
        assert list(log.read(150)) == []
        assert list(log.read(5, 5)) == []
        with pytest.raises(ValueError):
            log.read(-1)


def test_empty_and_oversized_payloads_rejected_atomically(tmp_path: Path) -> None:
    with FileLog(tmp_path) as log:
        with pytest.raises(ValueError):
            log.append_many([b"ok", b""])
        assert log.next_offset == 0
        assert (tmp_path / SEG0).stat().st_size == 0


def test_segment_rollover(tmp_path: Path) -> None:
    data = payloads(200, size=30)  # 36-byte payloads, 44-byte records
    with FileLog(tmp_path, segment_bytes=500) as log:
        log.append_many(data[:120])
        for p in data[120:]:
            log.append(p)
        segs = log.segments()
        assert len(segs) > 10
        assert all(p.stat().st_size <= 500 for p in segs)
        assert segs[0].name == SEG0
        bases = [int(p.stem) for p in segs]
        assert bases == sorted(bases) and bases[1] == 500 // 44
        assert list(log.read()) == list(enumerate(data))
        assert list(log.read(5, 190)) == [(i, data[i]) for i in range(5, 190)]
        for start in (0, 10, 11, 12, 199):
            assert next(iter(log.read(start))) == (start, data[start])
    with FileLog(tmp_path, segment_bytes=500) as log:
        assert log.next_offset == 200
        assert list(log.read(33)) == [(i, data[i]) for i in range(33, 200)]
        assert log.append(b"x") == 200
        assert list(log.read(199)) == [(199, data[199]), (200, b"x")]


def test_record_larger_than_segment_goes_in_alone(tmp_path: Path) -> None:
    big = b"B" * 1000
    with FileLog(tmp_path, segment_bytes=100) as log:
        log.append_many([b"a", big, b"c"])
        assert [p.stat().st_size for p in log.segments()] == [9, 1008, 9]
        assert list(log.read()) == [(0, b"a"), (1, big), (2, b"c")]


@pytest.mark.parametrize("which", ["first", "last"])
def test_missing_index_is_rebuilt(tmp_path: Path, which: str) -> None:
    data = payloads(100)
    with FileLog(tmp_path, segment_bytes=1000) as log:
        log.append_many(data)
        segs = log.segments()
    idx = segs[0 if which == "first" else -1].with_suffix(".idx")
    expected = idx.read_bytes()
    idx.unlink()
    with FileLog(tmp_path, segment_bytes=1000) as log:
        assert idx.read_bytes() == expected
        assert list(log.read(3)) == [(i, data[i]) for i in range(3, 100)]


def test_short_index_rebuilt_and_bad_entries_never_trusted(tmp_path: Path) -> None:
    data = payloads(30)
    with FileLog(tmp_path) as log:
        log.append_many(data)
    idx = tmp_path / "00000000000000000000.idx"
    good = idx.read_bytes()
    idx.write_bytes(good[: 16 * 7])
    with FileLog(tmp_path) as log:
        assert idx.read_bytes() == good
    # An index pointing past the segment end (or at the wrong record) is ignored by readers.
    bad = bytearray(good)
    struct.pack_into("<QQ", bad, 16 * 20, 20, 10**9)
    struct.pack_into("<QQ", bad, 16 * 21, 999, 0)
    idx.write_bytes(bytes(bad))
    with FileLog(tmp_path, readonly=True) as log:
        assert list(log.read(20, 22)) == [(20, data[20]), (21, data[21])]


def _torn_log(directory: Path, data: list[bytes], damage: str) -> None:
    """A crash mid-append: every record but the last synced, the last written and not synced
    (the damage then lies past the synced point, as a torn write's does)."""
    with FileLog(directory) as log:
        log.append_many(data[:-1])
    with FileLog(directory, fsync="never") as log:
        log.append(data[-1])
    seg = directory / SEG0
    raw = bytearray(seg.read_bytes())
    if damage == "short_payload":
        del raw[-3:]
    elif damage == "short_header":
        raw += struct.pack("<II", 50, 0)[:5]
    elif damage == "header_only":
        raw += struct.pack("<II", 50, 12345)
    elif damage == "bad_crc":
        raw[-1] ^= 0xFF
    elif damage == "zero_tail":
        raw += bytes(100)
    seg.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["short_payload", "short_header", "header_only", "bad_crc", "zero_tail"])
def test_torn_tail_truncated_on_open(tmp_path: Path, damage: str) -> None:
    data = payloads(10)
    _torn_log(tmp_path, data, damage)
    kept = 9 if damage in ("short_payload", "bad_crc") else 10
    good_size = record_start([len(p) for p in data], kept)
    size_before = (tmp_path / SEG0).stat().st_size
    with capture_logs() as logs:
        log = FileLog(tmp_path)
    assert [e for e in logs if e["log_level"] == "warning"] == [
        {
            "event": "filelog.truncated_torn_tail",
            "log_level": "warning",
            "segment": SEG0,
            "position": good_size,
            "dropped_bytes": size_before - good_size,
        }
    ]
    with log:
        assert (tmp_path / SEG0).stat().st_size == good_size
        assert (tmp_path / "00000000000000000000.idx").stat().st_size == 16 * kept
        assert log.next_offset == kept
        assert list(log.read()) == list(enumerate(data[:kept]))
        assert log.append(b"after") == kept
    with FileLog(tmp_path) as log:
        assert list(log.read()) == list(enumerate(data[:kept] + [b"after"]))


def test_torn_tail_in_last_of_several_segments(tmp_path: Path) -> None:
    data = payloads(40)
    with FileLog(tmp_path, segment_bytes=300) as log:
        log.append_many(data[:-1])
    with FileLog(tmp_path, segment_bytes=300, fsync="never") as log:  # written, never synced
        log.append(data[-1])
        last = log.segments()[-1]
    last.write_bytes(last.read_bytes()[:-2])
    with FileLog(tmp_path, segment_bytes=300) as log:
        assert log.next_offset == 39
        assert list(log.read()) == list(enumerate(data[:39]))
        assert log.append(b"z") == 39


@pytest.mark.parametrize("where", ["payload", "length"])
def test_corrupt_middle_record_is_loud(tmp_path: Path, where: str) -> None:
    data = [bytes([65 + i]) * (10 + i) for i in range(10)]
    with FileLog(tmp_path) as log:
        log.append_many(data)
    position = sum(8 + len(p) for p in data[:3])  # record 3 of 10
    seg = tmp_path / SEG0
    raw = bytearray(seg.read_bytes())
    if where == "payload":
        raw[position + 8 + 4] ^= 0x01
    else:
        struct.pack_into("<I", raw, position, 0)
    seg.write_bytes(bytes(raw))
    before = snapshot(tmp_path)
    with pytest.raises(LogCorruption) as err:
        FileLog(tmp_path)
    assert f"corrupt record in {SEG0} at byte {position}" in str(err.value)
    assert snapshot(tmp_path) == before
    with FileLog(tmp_path, readonly=True) as reader:
        assert list(reader.read(0, 3)) == list(enumerate(data[:3]))
        with pytest.raises(LogCorruption) as err:
            list(reader.read())
        assert f"{SEG0} at byte {position}" in str(err.value)


def test_corrupt_record_in_sealed_segment_raises_on_read(tmp_path: Path) -> None:
    data = payloads(30)
    with FileLog(tmp_path, segment_bytes=300) as log:
        log.append_many(data)
        segs = log.segments()
    assert len(segs) > 2
    original = segs[0].read_bytes()
    raw = bytearray(original)
    position = record_start([len(p) for p in data], 2)
    raw[position + 9] ^= 0x40
    segs[0].write_bytes(bytes(raw))
    with FileLog(tmp_path, segment_bytes=300) as log:  # opening verifies the last segment only
        expected = rf"corrupt record in {SEG0} at byte {position}: crc mismatch"
        with pytest.raises(LogCorruption, match=expected):
            list(log.read())
    segs[0].write_bytes(original)
    # The damaged final record of a sealed segment is corruption, not a torn tail.
    raw = bytearray(segs[1].read_bytes())
    raw[-1] ^= 0x01
    segs[1].write_bytes(bytes(raw))
    with FileLog(tmp_path, segment_bytes=300) as log:
        with pytest.raises(LogCorruption, match=segs[1].name):
            list(log.read(int(segs[1].stem)))
    # Bytes after the last record of a sealed segment are corruption too.
    segs[1].write_bytes(bytes(raw[:-1]) + bytes([raw[-1] ^ 0x01]))
    segs[0].write_bytes(original + b"junk")
    with FileLog(tmp_path, segment_bytes=300) as log:
        expected = rf"{SEG0} at byte {len(original)}: data after the last record"
        with pytest.raises(LogCorruption, match=expected):
            list(log.read())


def test_readonly_never_modifies_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileLog(tmp_path / "absent", readonly=True)
    assert not (tmp_path / "absent").exists()
    data = payloads(20)
    _torn_log(tmp_path, data, "short_payload")
    (tmp_path / "00000000000000000000.idx").unlink()
    before = snapshot(tmp_path)
    with FileLog(tmp_path, readonly=True) as log:
        assert log.next_offset == 19
        assert list(log.read(4)) == [(i, data[i]) for i in range(4, 19)]
        with pytest.raises(ValueError):
            log.append(b"x")
        log.flush()
    assert snapshot(tmp_path) == before


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with FileLog(tmp_path):
        with pytest.raises(LogLocked):
            FileLog(tmp_path)
        FileLog(tmp_path, readonly=True).close()
    FileLog(tmp_path).close()


def test_tail_sees_records_from_another_instance(tmp_path: Path) -> None:
    data = payloads(300, size=40)
    writer = FileLog(tmp_path, segment_bytes=2000, fsync="never")
    writer.append_many(data[:5])
    reader = FileLog(tmp_path, readonly=True)
    done = threading.Event()

    def produce() -> None:
        for i in range(5, 300, 7):
            writer.append_many(data[i : i + 7])
            time.sleep(0.001)
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    seen = list(reader.tail(2, poll_interval=0.005, stop=done.is_set))
    thread.join()
    writer.close()
    assert seen == [(i, data[i]) for i in range(2, 300)]
    assert len(reader.segments()) > 5


def test_tail_on_own_instance_stops(tmp_path: Path) -> None:
    with FileLog(tmp_path) as log:
        log.append_many([b"a", b"b"])
        assert list(log.tail(0, stop=lambda: True)) == [(0, b"a"), (1, b"b")]
        assert list(log.tail(5, stop=lambda: True)) == []

        def stop_after_appending() -> bool:
            log.append(b"c")  # appended before stop() says True, so it must still be yielded
            return True

        assert list(log.tail(1, stop=stop_after_appending)) == [(1, b"b"), (2, b"c")]


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_fsync_policies(tmp_path: Path, policy: str) -> None:
    with FileLog(tmp_path, fsync=policy, segment_bytes=64) as log:
        log.append_many(payloads(10))
        log.append(b"x")
        log.flush()
    with FileLog(tmp_path) as log:
        assert log.next_offset == 11


def test_bad_arguments_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        FileLog(tmp_path, fsync="sometimes")
    with pytest.raises(ValueError):
        FileLog(tmp_path, segment_bytes=0)
    log = FileLog(tmp_path)
    log.close()
    log.close()
    with pytest.raises(ValueError):
        log.append(b"x")


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.lists(st.binary(min_size=1, max_size=300), max_size=20), max_size=8),
    segment_bytes=st.integers(min_value=1, max_value=2000),
    start=st.integers(min_value=0, max_value=200),
)
def test_random_payloads_round_trip(batches: list[list[bytes]], segment_bytes: int, start: int) -> None:
    flat = [p for batch in batches for p in batch]
    with tempfile.TemporaryDirectory() as d:
        with FileLog(d, segment_bytes=segment_bytes, fsync="never") as log:
            for batch in batches:
                log.append_many(batch)
            assert list(log.read()) == list(enumerate(flat))
        with FileLog(d, segment_bytes=segment_bytes, fsync="never") as log:
            assert log.next_offset == len(flat)
            assert list(log.read(start)) == list(enumerate(flat))[start:]
        with FileLog(d, readonly=True) as log:
            assert list(log.read(start, start + 5)) == list(enumerate(flat))[start : start + 5]
