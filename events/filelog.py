"""Embedded, segmented, append-only record log: the default log backend.

A log is a directory of segment files named by the offset of their first record
(``00000000000000000000.seg``). A record is ``<u32 length><u32 crc32(payload)><payload>``,
little-endian; offsets are record numbers, contiguous across segments. Each segment has an
``.idx`` file of ``<u64 offset relative to the segment><u64 byte position>`` entries, one per
record, so a reader finds any record with a binary search over segments and one index read.
The index is only a cache: an entry is used only if it names its own offset and points inside
its segment, and a missing or short index is rebuilt from the segment.

One writer per directory (held with flock on the directory) and any number of readonly readers,
which see a record once it is completely written. A torn final record (a crash mid-append) is
cut away when a writer opens the log; any other damaged record raises LogCorruption and is never
skipped. Empty payloads are refused so that a zero-filled tail, which a crash can leave, never
parses as records.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import re
import struct
import time
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import structlog

__all__ = ["FileLog", "LogCorruption", "LogLocked"]

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("<II")  # payload length, crc32 of the payload
_ENTRY = struct.Struct("<QQ")  # record offset relative to the segment base, byte position
_MAX_PAYLOAD = 0xFFFFFFFF
_FIRST_CHUNK = 1 << 16  # small first read: point reads (read(k, k + 1)) stay cheap
_CHUNK = 1 << 20
_FSYNC_POLICIES = ("always", "batch", "never")
_SEGMENT_NAME = re.compile(r"[0-9]{20}\.seg")


class LogCorruption(Exception):
    """A damaged record that cannot be a torn tail; the message names the segment and byte."""


class LogLocked(Exception):
    """Another writer holds the log: two writers would interleave and overwrite records."""


class _Damage(Exception):
    """A record that does not parse; the caller decides whether it is a torn tail or corruption."""

    def __init__(self, position: int, end: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.end = end  # where the damaged record claims to end
        self.reason = reason


def _corrupt(path: Path, position: int, reason: str) -> LogCorruption:
    return LogCorruption(f"corrupt record in {path.name} at byte {position}: {reason}")


def _records(f: BinaryIO, position: int, limit: int) -> Iterator[tuple[int, bytes]]:
    """Yield (byte position, payload) of the records from `position` up to `limit`.

    Reads in chunks growing to 1 MiB and parses them in memory (one syscall per chunk, not per
    record); raises _Damage at the first record that is truncated, empty or fails its CRC.
    """
    f.seek(position)
    data, i, chunk_size = b"", 0, _FIRST_CHUNK
    while position < limit:
        want = _HEADER.size
        if len(data) - i >= want:
            length, crc = _HEADER.unpack_from(data, i)
            want += length
            if length == 0:
                raise _Damage(position, position + want, "empty record")
            if position + want > limit:
                reason = f"length {length} runs past the segment end"
                raise _Damage(position, position + want, reason)
            if len(data) - i >= want:
                payload = data[i + _HEADER.size : i + want]
                if zlib.crc32(payload) != crc:
                    raise _Damage(position, position + want, "crc mismatch")
                yield position, payload
                i += want
                position += want
                continue
        rest = data[i:]
        chunk = f.read(min(max(chunk_size, want - len(rest)), limit - position - len(rest)))
        chunk_size = min(2 * chunk_size, _CHUNK)
        if not chunk:
            reason = "truncated header" if want == _HEADER.size else "truncated payload"
            raise _Damage(position, limit, reason)
        data, i = rest + chunk, 0


def _scan(path: Path, position: int) -> tuple[list[int], int, _Damage | None]:
    """Positions of the records from `position` to the end of the file, where the last one ends,
    and the damage that stopped the walk early, if any."""
    positions: list[int] = []
    end = position
    with open(path, "rb", buffering=0) as f:
        try:
            for pos, payload in _records(f, position, os.fstat(f.fileno()).st_size):
                positions.append(pos)
                end = pos + _HEADER.size + len(payload)
        except _Damage as damage:
            return positions, end, damage
    return positions, end, None


def _is_torn(path: Path, damage: _Damage) -> bool:
    """Whether a damaged record is an interrupted append: nothing but zeros follows where it
    claims to end (a crash can leave a zero-filled tail; a real record is never all zeros)."""
    with open(path, "rb") as f:
        f.seek(damage.end)
        while chunk := f.read(_CHUNK):
            if chunk.strip(b"\0"):
                return False
    return True


def _entries(positions: list[int], first: int = 0) -> bytes:
    return b"".join(map(_ENTRY.pack, range(first, first + len(positions)), positions))


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class FileLog:
    """A segmented append-only log of opaque byte records in one directory.

    fsync policy: "always" fsyncs the segment after every append call, "batch" fsyncs in flush(),
    close() and when a segment is rolled, "never" leaves it to the OS. A readonly log never
    creates, truncates or rewrites anything and catches up with its writer on every read.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        fsync: str = "batch",
        readonly: bool = False,
    ) -> None:
        if fsync not in _FSYNC_POLICIES:
            raise ValueError(f"unknown fsync policy {fsync!r}, expected one of {_FSYNC_POLICIES}")
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._readonly = readonly
        self._bases: list[int] = []  # first offset of each segment, ascending
        self._next = 0  # offset of the next record
        self._end = 0  # byte position after the last complete record of the last segment
        self._fd = self._idx_fd = self._dir_fd = -1
        self._closed = False
        self._failed: OSError | None = None
        if readonly:
            self._refresh()
        else:
            self._open_writer()

    # ---- public API -------------------------------------------------------------------------

    @property
    def next_offset(self) -> int:
        """The number of records; a readonly log first catches up with its writer."""
        if self._readonly and not self._closed:
            self._refresh()
        return self._next

    def segments(self) -> list[Path]:
        """Paths of the segment files, oldest first."""
        if self._readonly and not self._closed:
            self._refresh()
        return [self._segment_path(i) for i in range(len(self._bases))]

    def append(self, payload: bytes) -> int:
        """Append one record and return its offset."""
        return self.append_many((payload,))

    def append_many(self, payloads: Iterable[bytes]) -> int:
        """Append records with one write per segment touched and return next_offset - 1: the
        offset of the last appended record (or of the last record already there, -1 for an
        empty log, if `payloads` is empty). All payloads are validated before anything is written.
        """
        self._check_writable()
        batch = list(payloads)
        for payload in batch:
            if not 0 < len(payload) <= _MAX_PAYLOAD:
                raise ValueError(f"payload length must be 1..{_MAX_PAYLOAD}, got {len(payload)}")
        try:
            data, positions, size = bytearray(), [], self._end
            for payload in batch:
                record = _HEADER.size + len(payload)
                if size and size + record > self._segment_bytes:
                    self._write(data, positions)
                    self._roll()
                    data, positions, size = bytearray(), [], 0
                positions.append(size)
                data += _HEADER.pack(len(payload), zlib.crc32(payload))
                data += payload
                size += record
            self._write(data, positions)
            if self._fsync == "always":
                os.fsync(self._fd)
        except OSError as exc:
            self._failed = exc  # memory and disk may disagree now; reopening recovers
            raise
        return self._next - 1

    def flush(self) -> None:
        """Make appended records durable, unless the policy is "never"."""
        self._check_open()
        if not self._readonly and self._fsync != "never":
            os.fsync(self._fd)
            os.fsync(self._idx_fd)

    def close(self) -> None:
        """Flush (per the policy), close the files and release the writer lock."""
        if self._closed:
            return
        try:
            if not self._readonly and self._failed is None:
                self.flush()
        finally:
            self._closed = True
            for fd in (self._fd, self._idx_fd, self._dir_fd):
                if fd >= 0:
                    os.close(fd)

    def __enter__(self) -> FileLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield (offset, payload) for start <= offset < end, verifying every CRC.

        `end` defaults to (and is capped at) next_offset at the time of the call, so a reader
        never sees a half-written record.
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self._check_open()
        if self._readonly:
            self._refresh()
        stop = self._next if end is None else min(end, self._next)
        return self._read(start, stop)

    def tail(
        self,
        start: int,
        *,
        poll_interval: float = 0.05,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[int, bytes]]:
        """Yield the records from `start` on, then poll for records appended later (by this or
        another process) until `stop()` is True. Every record appended before `stop()` first
        returned True is yielded: stop is checked before the last catch-up, not after it."""
        offset = start
        while True:
            stopping = stop is not None and stop()
            for record in self.read(offset):
                yield record
                offset = record[0] + 1
            if stopping:
                return
            time.sleep(poll_interval)

    # ---- reading ------------------------------------------------------------------------------

    def _read(self, offset: int, stop: int) -> Iterator[tuple[int, bytes]]:
        while offset < stop:
            i = bisect.bisect_right(self._bases, offset) - 1
            last = i == len(self._bases) - 1
            seg_stop = self._next if last else self._bases[i + 1]
            until = min(stop, seg_stop)
            path = self._segment_path(i)
            with open(path, "rb", buffering=0) as f:
                limit = self._end if last else os.fstat(f.fileno()).st_size
                try:
                    start = self._position(f, i, offset - self._bases[i], limit)
                    for pos, payload in _records(f, start, limit):
                        yield offset, payload
                        offset += 1
                        if offset == until:
                            break
                    else:
                        raise _Damage(limit, limit, f"segment ends before offset {offset}")
                except _Damage as damage:
                    raise _corrupt(path, damage.position, damage.reason) from None
            if offset == seg_stop and not last:  # a sealed segment ends right after its last record
                after = pos + _HEADER.size + len(payload)
                if after != limit:
                    raise _corrupt(path, after, "data after the last record")

    def _position(self, f: BinaryIO, i: int, rel: int, limit: int) -> int:
        """Byte position of record `rel` of segment `i`: from the index if its entry is sane,
        else by walking the segment."""
        if rel == 0:
            return 0
        try:
            with open(self._segment_path(i).with_suffix(".idx"), "rb", buffering=0) as idx:
                idx.seek(rel * _ENTRY.size)
                entry = idx.read(_ENTRY.size)
        except FileNotFoundError:
            entry = b""
        if len(entry) == _ENTRY.size:
            entry_rel, position = _ENTRY.unpack(entry)
            if entry_rel == rel and position + _HEADER.size <= limit:
                return position
        for k, (position, _) in enumerate(_records(f, 0, limit)):
            if k == rel:
                return position
        raise _Damage(limit, limit, f"segment ends before record {rel}")

    def _refresh(self) -> None:
        """Catch up with the writer (readonly): adopt new segments and newly completed records."""
        bases = self._list_bases()
        if len(bases) > len(self._bases):
            self._bases = bases
            rel, self._end = self._last_indexed(len(bases) - 1)
            self._next = bases[-1] + rel
        if not self._bases:
            return
        path = self._segment_path(len(self._bases) - 1)
        positions, self._end, damage = _scan(path, self._end)
        self._next += len(positions)
        if damage is not None and not _is_torn(path, damage):
            raise _corrupt(path, damage.position, damage.reason)

    def _last_indexed(self, i: int) -> tuple[int, int]:
        """(relative offset, position) of the last index entry of segment `i` if it is sane,
        so a reader need not walk a whole segment to find its end; else (0, 0)."""
        path = self._segment_path(i)
        idx_path = path.with_suffix(".idx")
        count = _file_size(idx_path) // _ENTRY.size
        if count:
            with open(idx_path, "rb", buffering=0) as idx:
                idx.seek((count - 1) * _ENTRY.size)
                entry = idx.read(_ENTRY.size)
            if len(entry) == _ENTRY.size:
                rel, position = _ENTRY.unpack(entry)
                if rel == count - 1 and position + _HEADER.size <= _file_size(path):
                    return rel, position
        return 0, 0

    def _list_bases(self) -> list[int]:
        names = os.listdir(self._dir)
        bases = sorted(int(name[:20]) for name in names if _SEGMENT_NAME.fullmatch(name))
        if bases and bases[0] != 0:
            raise LogCorruption(f"{self._dir}: first segment starts at offset {bases[0]}, not 0")
        return bases

    def _segment_path(self, i: int) -> Path:
        return self._dir / f"{self._bases[i]:020d}.seg"

    # ---- writing ------------------------------------------------------------------------------

    def _open_writer(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            try:
                fcntl.flock(self._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LogLocked(f"{self._dir} is already open for writing") from None
            self._bases = self._list_bases() or [0]
            for i in range(len(self._bases) - 1):
                self._check_sealed_index(i)
            self._open_last()
            self._recover_last()
        except BaseException:
            self._closed = True
            for fd in (self._fd, self._idx_fd, self._dir_fd):
                if fd >= 0:
                    os.close(fd)
            raise

    def _check_sealed_index(self, i: int) -> None:
        """Rebuild the index of a sealed segment unless it has one entry per record."""
        path = self._segment_path(i)
        idx_path = path.with_suffix(".idx")
        count = self._bases[i + 1] - self._bases[i]
        if _file_size(idx_path) == count * _ENTRY.size:
            return
        positions, end, damage = _scan(path, 0)
        if damage is not None:
            raise _corrupt(path, damage.position, damage.reason)
        if len(positions) != count:
            raise _corrupt(path, end, f"segment holds {len(positions)} records, expected {count}")
        idx_path.write_bytes(_entries(positions))
        log.info("filelog.rebuilt_index", segment=path.name, records=count)

    def _recover_last(self) -> None:
        """Verify the whole last segment, cut a torn final record and make the index match."""
        path = self._segment_path(len(self._bases) - 1)
        size = os.fstat(self._fd).st_size
        positions, self._end, damage = _scan(path, 0)
        if damage is not None:
            if not _is_torn(path, damage):
                raise _corrupt(path, damage.position, damage.reason)
            log.warning(
                "filelog.truncated_torn_tail",
                segment=path.name,
                position=damage.position,
                dropped_bytes=size - damage.position,
            )
            os.ftruncate(self._fd, damage.position)
            if self._fsync != "never":
                os.fsync(self._fd)
        self._next = self._bases[-1] + len(positions)
        entries = _entries(positions)
        if path.with_suffix(".idx").read_bytes() != entries:
            os.ftruncate(self._idx_fd, 0)
            _write_all(self._idx_fd, entries)
            log.info("filelog.rebuilt_index", segment=path.name, records=len(positions))

    def _open_last(self) -> None:
        """Open (creating if needed) the last segment and its index for appending."""
        path = self._segment_path(len(self._bases) - 1)
        created = not path.exists()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._fd = os.open(path, flags, 0o644)
        self._idx_fd = os.open(path.with_suffix(".idx"), flags, 0o644)
        if created and self._fsync != "never":
            os.fsync(self._dir_fd)

    def _write(self, data: bytearray, positions: list[int]) -> None:
        """Write records to the last segment, then their index entries (so an index entry
        always follows its record), and advance the in-memory end."""
        if not positions:
            return
        _write_all(self._fd, data)
        _write_all(self._idx_fd, _entries(positions, self._next - self._bases[-1]))
        self._end += len(data)
        self._next += len(positions)

    def _roll(self) -> None:
        """Seal the last segment and start a new one at the next offset."""
        if self._fsync != "never":
            os.fsync(self._fd)
            os.fsync(self._idx_fd)
        os.close(self._fd)
        os.close(self._idx_fd)
        self._fd = self._idx_fd = -1
        self._bases.append(self._next)
        self._end = 0
        self._open_last()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("log is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._readonly:
            raise ValueError("log is open readonly")
        if self._failed is not None:
            raise OSError(f"an earlier write failed ({self._failed}); reopen the log to recover")
