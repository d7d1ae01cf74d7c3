"""Embedded, segmented, append-only record log: the default log backend.

A log is a directory of segment files named by the offset of their first record
(``00000000000000000000.seg``). A record is ``<u32 length><u32 crc32(payload)><payload>``,
little-endian; offsets are record numbers, contiguous across segments. Each segment has an
``.idx`` file of ``<u64 offset relative to the segment><u64 byte position>`` entries, one per
record, so a reader finds any record with a binary search over segments and one index read.
The index is only a cache: an entry is used only if it names its own offset and points inside
its segment, and a missing or short index is rebuilt from the segment.

One writer per directory (held with flock on the directory) and any number of readonly readers,
which see a record once it is completely written. Every write goes through `events.storage`.

What was synced is recorded: after each fsync the writer notes the segment and byte up to
which the log is durable in ``synced`` (two checksummed copies, written one after the other
and synced, so a torn or damaged copy leaves the other). A damaged record is a torn tail, cut
away when a writer opens the log, only if it is consistent with an append cut
short: it lies past the synced point and no
valid record follows it. Any other damage (a record the log was synced past, a record with a
valid one after it, a sealed segment's record, a synced segment that got shorter) raises
LogCorruption naming the segment and byte; nothing is skipped or dropped. `FileLog(dir,
repair=keep)` cuts such a log at its first damaged record, copying the original files of
everything it cuts into `keep` first (the `clearinghouse repair` command). Empty payloads are
refused so that a zero-filled tail, which a crash can leave, never parses as records.

A batch (`begin_batch`, appends, `commit_batch`) lands whole or not at all: its start is
written to ``batch`` (atomically, twice over) before its first record, and the file is removed once the
batch is synced. Readers never read past the start of an open batch, and a writer that finds
one on open (a crash or kill mid-batch) cuts the log back to its start.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

from events import storage
from events.storage import Storage, fsync_path, pwrite_all, write_all, write_file

__all__ = ["Cut", "FileLog", "LogCorruption", "LogLocked"]

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("<II")  # payload length, crc32 of the payload
_ENTRY = struct.Struct("<QQ")  # record offset relative to the segment base, byte position
_MARK = struct.Struct("<4sQQQ")  # magic, counter / start offset, segment base, byte position
_CRC = struct.Struct("<I")
_SYNCED_MAGIC, _BATCH_MAGIC = b"SYNC", b"BTCH"
_SYNCED, _BATCH = "synced", "batch"
_MAX_PAYLOAD = 0xFFFFFFFF
_FIRST_CHUNK = 1 << 16  # small first read: point reads (read(k, k + 1)) stay cheap
_CHUNK = 1 << 20
_FSYNC_POLICIES = ("always", "batch", "never")
_SCAN_BYTES = 1 << 18  # how far past a damaged record a valid one is looked for byte by byte
_SEGMENT_NAME = re.compile(r"[0-9]{20}\.seg")


class LogCorruption(Exception):
    """A damaged record that cannot be a torn tail; the message names the segment and byte."""


class LogLocked(Exception):
    """Another writer holds the log: two writers would interleave and overwrite records."""


@dataclass(frozen=True)
class Cut:
    """What a repair cut: the log now ends before record `offset`."""

    offset: int
    reason: str  # the damage found, naming segment and byte
    dropped_bytes: int
    copy: Path  # the folder holding the original files of every segment cut


class _Damage(Exception):
    """A record that does not parse; the caller decides whether it is a torn tail or corruption."""

    def __init__(self, position: int, end: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.end = end  # where the damaged record claims to end
        self.reason = reason


def _corrupt(path: Path, position: int, reason: str) -> LogCorruption:
    return LogCorruption(f"corrupt record in {path.name} at byte {position}: {reason} (log {path.parent})")


def _mark(magic: bytes, a: int, base: int, position: int) -> bytes:
    body = _MARK.pack(magic, a, base, position)
    return body + _CRC.pack(zlib.crc32(body))


def _unmark(data: bytes, magic: bytes) -> tuple[int, int, int] | None:
    """(counter or start, base, position) of a mark, or None if it is not a whole, valid one."""
    if len(data) != _MARK.size + _CRC.size or _CRC.unpack_from(data, _MARK.size)[0] != zlib.crc32(data[: _MARK.size]):
        return None
    found, a, base, position = _MARK.unpack_from(data)
    return (a, base, position) if found == magic else None


_SLOT = _MARK.size + _CRC.size


def _read_synced(directory: Path) -> tuple[int, int, int] | None:
    """(counter, segment base, byte) of the newest valid copy in the synced file, if any."""
    try:
        data = (directory / _SYNCED).read_bytes()
    except FileNotFoundError:
        return None
    slots = [_unmark(data[i : i + _SLOT], _SYNCED_MAGIC) for i in (0, _SLOT)]
    valid = [slot for slot in slots if slot is not None]
    return max(valid) if valid else None


@dataclass(frozen=True)
class _Batch:
    start: int  # the first record of the batch
    base: int  # the segment it starts in
    position: int  # the byte it starts at


def _read_batch(directory: Path) -> _Batch | None:
    """The open batch, if any. Its file is written whole, by rename, and holds its mark twice:
    one damaged copy leaves the other; both damaged is corruption."""
    path = directory / _BATCH
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    for mark in (_unmark(data[i : i + _SLOT], _BATCH_MAGIC) for i in (0, _SLOT)):
        if mark is not None:
            return _Batch(*mark)
    raise LogCorruption(f"{path} is damaged: cannot tell where the unfinished batch starts")


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


def _scan(path: Path, position: int, limit: int | None = None) -> tuple[list[int], int, _Damage | None]:
    """Positions of the records from `position` to the end of the file (or `limit`), where the
    last one ends, and the damage that stopped the walk early, if any."""
    positions: list[int] = []
    end = position
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        try:
            for pos, payload in _records(f, position, size if limit is None else min(limit, size)):
                positions.append(pos)
                end = pos + _HEADER.size + len(payload)
        except _Damage as damage:
            return positions, end, damage
    return positions, end, None


def _valid_after(path: Path, position: int) -> int | None:
    """The byte of a whole, CRC-valid record starting after `position`, if there is one: then
    the damage at `position` is not the end of an append cut short. The index entries past it
    are tried first, then every byte of the next `_SCAN_BYTES` (a zero-filled rest, what a
    crash can leave, has none)."""
    try:
        index = path.with_suffix(".idx").read_bytes()
    except FileNotFoundError:
        index = b""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        for k in range(len(index) // _ENTRY.size):
            start = _ENTRY.unpack_from(index, k * _ENTRY.size)[1]
            if position < start < size and _record_end(f, start, size) is not None:  # a damaged entry points anywhere
                return start
        f.seek(position + 1)
        data = f.read(_SCAN_BYTES)
    if not data.strip(b"\0"):
        return None
    for i in range(len(data) - _HEADER.size):
        length, crc = _HEADER.unpack_from(data, i)
        end = i + _HEADER.size + length
        if 0 < length and end <= len(data) and zlib.crc32(data[i + _HEADER.size : end]) == crc:
            return position + 1 + i
    return None


def _record_end(f: BinaryIO, position: int, limit: int) -> int | None:
    """Where the record at `position` ends, if a whole, valid one starts there."""
    f.seek(position)
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    length, crc = _HEADER.unpack(header)
    end = position + _HEADER.size + length
    if not 0 < length or end > limit:
        return None
    return end if zlib.crc32(f.read(length)) == crc else None


def _entries(positions: list[int], first: int = 0) -> bytes:
    return b"".join(map(_ENTRY.pack, range(first, first + len(positions)), positions))


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class FileLog:
    """A segmented append-only log of opaque byte records in one directory.

    fsync policy: "always" fsyncs the segment after every append call, "batch" fsyncs in flush(),
    close(), commit_batch() and when a segment is rolled, "never" leaves it to the OS (and so
    promises nothing after a crash: no record is ever known synced). A readonly log never
    creates, truncates or rewrites anything and catches up with its writer on every read.
    `repair`: a folder to copy the files of any segment cut into, each cut in a folder of its
    own named for the log and the first record cut (see the module's doc).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        fsync: str = "batch",
        readonly: bool = False,
        repair: Path | None = None,
        io: Storage | None = None,
    ) -> None:
        if fsync not in _FSYNC_POLICIES:
            raise ValueError(f"unknown fsync policy {fsync!r}, expected one of {_FSYNC_POLICIES}")
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._readonly = readonly
        self._repair = repair
        self._io = io or storage.current()
        self._bases: list[int] = []  # first offset of each segment, ascending
        self._next = 0  # offset of the next record
        self._end = 0  # byte position after the last complete record of the last segment
        self._fd = self._idx_fd = self._dir_fd = self._synced_fd = -1
        self._counter = 0  # of the last note in the synced file
        self._batch: _Batch | None = None
        self._closed = False
        self._failed: OSError | None = None
        self.cut: Cut | None = None  # what a repair cut
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
                self._sync()
        except OSError as exc:
            self._failed = exc  # memory and disk may disagree now; reopening recovers
            raise
        return self._next - 1

    def begin_batch(self) -> None:
        """Starts a batch: the records appended until `commit_batch` land together or not at all."""
        self._check_writable()
        if self._batch is not None:
            raise ValueError("a batch is open already")
        batch = _Batch(self._next, self._bases[-1], self._end)
        try:
            write_file(self._io, self._dir / _BATCH, 2 * _mark(_BATCH_MAGIC, batch.start, batch.base, batch.position))
        except OSError as exc:
            self._failed = exc
            raise
        self._batch = batch

    def commit_batch(self) -> None:
        """Syncs the batch's records, then ends it: from here on readers see them."""
        self._check_writable()
        if self._batch is None:
            raise ValueError("no batch is open")
        try:
            if self._fsync != "never":
                self._sync()
            self._io.unlink(self._dir / _BATCH)
            fsync_path(self._io, self._dir)
        except OSError as exc:
            self._failed = exc
            raise
        self._batch = None

    def abort_batch(self) -> None:
        """Cuts the log back to where the open batch started (also after a failed write)."""
        self._check_open()
        batch = self._batch
        if batch is None:
            raise ValueError("no batch is open")
        self._failed = OSError("the batch is being cut")
        self._close_files()
        self._rollback(batch, found=False)
        self._batch = None
        self._open_last()
        self._recover_last()
        self._failed = None

    def cut_at(self, offset: int, keep: Path, reason: str) -> Cut | None:
        """Cuts the log before record `offset` (None if it ends there already), copying the files
        of every segment cut into a new folder in `keep` first."""
        self._check_writable()
        if self._batch is not None:
            raise ValueError("cannot cut the log while a batch is open")
        if offset >= self._next:
            return None
        i = bisect.bisect_right(self._bases, offset) - 1
        with open(self._segment_path(i), "rb", buffering=0) as f:
            try:
                position = self._position(f, i, offset - self._bases[i], os.fstat(f.fileno()).st_size)
            except _Damage as damage:
                raise _corrupt(self._segment_path(i), damage.position, damage.reason) from None
        self._close_files()
        self._repair = keep
        self.cut = self._cut(i, position, offset, reason)
        self._open_last()
        self._recover_last()
        return self.cut

    def flush(self) -> None:
        """Make appended records durable, unless the policy is "never"."""
        self._check_open()
        if not self._readonly and self._fsync != "never":
            self._sync()

    def close(self) -> None:
        """Flush (per the policy), close the files and release the writer lock. A batch still
        open is left to be cut by the next writer."""
        if self._closed:
            return
        try:
            if not self._readonly and self._failed is None:
                self.flush()
        finally:
            self._closed = True
            self._close_files()
            if self._dir_fd >= 0:
                self._io.close(self._dir_fd)
                self._dir_fd = -1

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
                    # `pos` is read after the loop (where the last record starts), not in it
                    for pos, payload in _records(f, start, limit):  # noqa: B007
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
        indexed = self._indexed(f, i, rel, limit)
        if indexed is not None:
            return indexed
        for k, (position, _) in enumerate(_records(f, 0, limit)):
            if k == rel:
                return position
        raise _Damage(limit, limit, f"segment ends before record {rel}")

    def _refresh(self) -> None:
        """Catch up with the writer (readonly): adopt new segments and newly completed records,
        up to the start of an open batch (whose records may be half written: not scanned)."""
        open_batch = _read_batch(self._dir)
        bases = self._list_bases()
        if open_batch is not None:
            bases = [base for base in bases if base <= open_batch.base]
        if len(bases) > len(self._bases):
            self._bases = bases
            rel, self._end = self._last_indexed(len(bases) - 1)
            self._next = bases[-1] + rel
        if not self._bases:
            return
        i = len(self._bases) - 1
        path = self._segment_path(i)
        limit = open_batch.position if open_batch is not None and open_batch.base == self._bases[i] else None
        while True:  # a record the writer was writing may be whole (and synced) by the next look
            positions, self._end, damage = _scan(path, self._end, limit)
            self._next += len(positions)
            problem = None if damage is None else self._not_torn(i, damage, self._synced_end(i))
            if problem is None:
                break
            if not positions:
                raise _corrupt(path, damage.position, problem)  # type: ignore[union-attr]
        batch = _read_batch(self._dir)  # one begun since the first look: no read past its start
        if batch is not None and batch.start < self._next:
            self._bases = [base for base in self._bases if base <= batch.base]
            self._next, self._end = batch.start, batch.position

    def _last_indexed(self, i: int) -> tuple[int, int]:
        """(relative offset, position) of the last index entry of segment `i` if it is sane,
        so a reader need not walk a whole segment to find its end; else (0, 0)."""
        path = self._segment_path(i)
        count = _file_size(path.with_suffix(".idx")) // _ENTRY.size
        if count > 1:
            with open(path, "rb", buffering=0) as f:
                position = self._indexed(f, i, count - 1, os.fstat(f.fileno()).st_size)
            if position is not None:
                return count - 1, position
        return 0, 0

    def _indexed(self, f: BinaryIO, i: int, rel: int, limit: int) -> int | None:
        """The position the index gives for record `rel` (>= 1) of segment `i`, if it holds up:
        entries `rel - 1` and `rel` name themselves, both records there are whole and valid,
        and the first ends where the second starts (a damaged entry never misplaces a read)."""
        try:
            with open(self._segment_path(i).with_suffix(".idx"), "rb", buffering=0) as idx:
                idx.seek((rel - 1) * _ENTRY.size)
                entries = idx.read(2 * _ENTRY.size)
        except FileNotFoundError:
            return None
        if len(entries) != 2 * _ENTRY.size:
            return None
        before_rel, before = _ENTRY.unpack_from(entries)
        entry_rel, position = _ENTRY.unpack_from(entries, _ENTRY.size)
        if (before_rel, entry_rel) != (rel - 1, rel) or not before < position < limit:
            return None
        if _record_end(f, before, limit) != position or _record_end(f, position, limit) is None:
            return None
        return position

    def _list_bases(self) -> list[int]:
        names = os.listdir(self._dir)
        bases = sorted(int(name[:20]) for name in names if _SEGMENT_NAME.fullmatch(name))
        if bases and bases[0] != 0:
            raise LogCorruption(f"{self._dir}: first segment starts at offset {bases[0]}, not 0")
        return bases

    def _segment_path(self, i: int) -> Path:
        return self._dir / f"{self._bases[i]:020d}.seg"

    # ---- torn or corrupt ----------------------------------------------------------------------

    def _synced_end(self, i: int) -> int:
        """The byte of segment `i` up to which the log is known synced (all of it if the log
        was synced into a later segment)."""
        mark = _read_synced(self._dir)
        if mark is None or mark[1] < self._bases[i]:
            return 0
        if mark[1] > self._bases[i]:
            return _file_size(self._segment_path(i))
        return mark[2]

    def _not_torn(self, i: int, damage: _Damage, synced: int) -> str | None:
        """Why the damage in the last segment `i` cannot be an append cut short; None if it can."""
        if damage.position < synced:
            return f"{damage.reason}; the log was synced past it (to byte {synced}), so it is not a torn write"
        after = _valid_after(self._segment_path(i), damage.position)
        if after is not None:
            return f"{damage.reason}; a valid record follows at byte {after}, so it is not a torn write"
        return None

    # ---- writing ------------------------------------------------------------------------------

    def _open_writer(self) -> None:
        self._io.mkdir(self._dir)
        self._dir_fd = self._io.open(self._dir, os.O_RDONLY)
        try:
            try:
                fcntl.flock(self._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LogLocked(
                    f"{self._dir} is open for writing in another process (an ingest, run or serve): "
                    "wait for it to end, or stop it"
                ) from None
            self._bases = self._list_bases() or [0]
            batch = _read_batch(self._dir)
            if batch is not None:
                self._rollback(batch)
            if (self._dir / (_BATCH + ".tmp")).exists():
                self._io.unlink(self._dir / (_BATCH + ".tmp"))  # a batch that never began
            if self._repair is not None:
                self._cut_damage()
            self._check_synced_segment()
            for i in range(len(self._bases) - 1):
                self._check_sealed_index(i)
            self._open_last()
            self._recover_last()
        except BaseException:
            self._closed = True
            self._close_files()
            if self._dir_fd >= 0:
                self._io.close(self._dir_fd)
            raise

    def _check_synced_segment(self) -> None:
        mark = _read_synced(self._dir)
        if mark is not None and mark[1] > self._bases[-1]:
            raise LogCorruption(f"{self._dir}: the log was synced into segment {mark[1]:020d}.seg, which is missing")

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
        write_file(self._io, idx_path, _entries(positions))
        log.info("filelog.rebuilt_index", segment=path.name, records=count)

    def _recover_last(self) -> None:
        """Verify the whole last segment, cut a torn final record, make the index match and
        note the segment synced."""
        i = len(self._bases) - 1
        path = self._segment_path(i)
        size = os.fstat(self._fd).st_size
        synced = self._synced_end(i)
        positions, self._end, damage = _scan(path, 0)
        if damage is not None:
            problem = self._not_torn(i, damage, synced)
            if problem is not None:
                raise _corrupt(path, damage.position, problem)
            log.warning(
                "filelog.truncated_torn_tail",
                segment=path.name,
                position=damage.position,
                dropped_bytes=size - damage.position,
            )
            self._io.truncate(self._fd, damage.position)
        elif self._end < synced:
            raise _corrupt(path, self._end, f"the segment ends here but was synced to byte {synced}: data was lost")
        self._next = self._bases[-1] + len(positions)
        entries = _entries(positions)
        if path.with_suffix(".idx").read_bytes() != entries:
            self._io.truncate(self._idx_fd, 0)
            write_all(self._io, self._idx_fd, entries)
            log.info("filelog.rebuilt_index", segment=path.name, records=len(positions))
        if self._fsync != "never":
            self._sync()

    def _open_last(self) -> None:
        """Open (creating if needed) the last segment and its index for appending."""
        path = self._segment_path(len(self._bases) - 1)
        created = not path.exists()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._fd = self._io.open(path, flags, 0o644)
        self._idx_fd = self._io.open(path.with_suffix(".idx"), flags, 0o644)
        if created and self._fsync != "never":
            self._io.fsync(self._dir_fd)

    def _write(self, data: bytearray, positions: list[int]) -> None:
        """Write records to the last segment, then their index entries (so an index entry
        always follows its record), and advance the in-memory end."""
        if not positions:
            return
        write_all(self._io, self._fd, data)
        write_all(self._io, self._idx_fd, _entries(positions, self._next - self._bases[-1]))
        self._end += len(data)
        self._next += len(positions)

    def _roll(self) -> None:
        """Seal the last segment and start a new one at the next offset."""
        if self._fsync != "never":
            self._sync()
        self._io.close(self._fd)
        self._io.close(self._idx_fd)
        self._fd = self._idx_fd = -1
        self._bases.append(self._next)
        self._end = 0
        self._open_last()

    def _sync(self) -> None:
        """fsync the last segment and its index, then note how far the log is synced."""
        self._io.fsync(self._fd)
        self._io.fsync(self._idx_fd)
        self._note_synced(self._bases[-1], self._end)

    def _note_synced(self, base: int, position: int) -> None:
        """Writes the note into both slots of the synced file and syncs it: a note lost or
        damaged would leave an older one, and a damaged record it no longer covers would pass
        for torn. A crash in the first write leaves the old note in the second."""
        if self._synced_fd < 0:
            self._synced_fd = self._io.open(self._dir / _SYNCED, os.O_RDWR | os.O_CREAT, 0o644)
            mark = _read_synced(self._dir)
            self._counter = mark[0] if mark is not None else 0
        self._counter += 1
        note = _mark(_SYNCED_MAGIC, self._counter, base, position)
        for slot in (0, _SLOT):  # two copies: one damaged, the other still says it
            pwrite_all(self._io, self._synced_fd, note, slot)
        self._io.fsync(self._synced_fd)

    # ---- cutting: a batch rolled back, a repair -----------------------------------------------

    def _rollback(self, batch: _Batch, *, found: bool = True) -> None:
        """Cuts the log back to the start of an unfinished batch (its records were never
        acknowledged), then ends the batch; one `found` on open (a writer died in it) is logged."""
        if batch.base not in self._bases:
            missing = f"{batch.base:020d}.seg"
            raise LogCorruption(f"{self._dir}: the unfinished batch starts in segment {missing}, which is missing")
        dropped = self._truncate_files(self._bases.index(batch.base), batch.position)
        if found:
            log.warning("filelog.rolled_back_batch", log=str(self._dir), start=batch.start, dropped_bytes=dropped)
        self._io.unlink(self._dir / _BATCH)
        fsync_path(self._io, self._dir)

    def _cut_damage(self) -> None:
        """Repair: cuts the log at its first damaged record that is not a torn tail (which the
        open cuts anyway), or notes a synced end that was lost."""
        last = len(self._bases) - 1
        mark = _read_synced(self._dir)
        for i in range(last + 1):
            path = self._segment_path(i)
            positions, end, damage = _scan(path, 0)
            offset = self._bases[i] + len(positions)
            if i < last:
                count = self._bases[i + 1] - self._bases[i]
                if damage is not None:
                    problem, position = damage.reason, damage.position
                elif len(positions) != count:
                    problem, position = f"segment holds {len(positions)} records, expected {count}", end
                    if len(positions) > count:
                        offset, position = self._bases[i + 1], positions[count]
                elif end != _file_size(path):
                    problem, position = "data after the last record", end
                else:
                    continue
            else:
                if mark is not None and mark[1] > self._bases[i]:
                    problem, position = f"synced into segment {mark[1]:020d}.seg, which is missing", end
                elif damage is not None:
                    problem = self._not_torn(i, damage, self._synced_end(i))
                    if problem is None:
                        return
                    position = damage.position
                elif end < self._synced_end(i):
                    problem, position = f"the segment ends here but was synced to byte {self._synced_end(i)}", end
                else:
                    return
            self.cut = self._cut(i, position, offset, str(_corrupt(path, position, problem)))
            return

    def _cut(self, i: int, position: int, offset: int, reason: str) -> Cut:
        """Copies the files of segments `i` on into the repair folder, then cuts the log at
        byte `position` of segment `i` (record `offset`)."""
        assert self._repair is not None
        copy = self._repair / f"{self._dir.name}-from-{offset}"
        for n in range(1, 1000):
            if not copy.exists():
                break
            copy = self._repair / f"{self._dir.name}-from-{offset}.{n}"
        self._io.mkdir(copy)
        for j in range(i, len(self._bases)):
            for source in (self._segment_path(j), self._segment_path(j).with_suffix(".idx")):
                if source.exists():
                    write_file(self._io, copy / source.name, source.read_bytes())
        dropped = self._truncate_files(i, position)
        log.warning("filelog.cut", log=str(self._dir), offset=offset, dropped_bytes=dropped, copy=str(copy))
        return Cut(offset, reason, dropped, copy)

    def _truncate_files(self, i: int, position: int) -> int:
        """Ends the log at byte `position` of segment `i`: later segments removed, this one
        truncated and synced, the cut noted synced (its index is rebuilt when it is opened as
        the last). The files must be closed. Returns the bytes removed."""
        dropped = 0
        for j in range(len(self._bases) - 1, i, -1):
            path = self._segment_path(j)
            dropped += _file_size(path)
            for name in (path, path.with_suffix(".idx")):
                if name.exists():
                    self._io.unlink(name)
        del self._bases[i + 1 :]
        path = self._segment_path(i)
        dropped += max(0, _file_size(path) - position)
        fd = self._io.open(path, os.O_WRONLY)
        try:
            self._io.truncate(fd, position)
            self._io.fsync(fd)
        finally:
            self._io.close(fd)
        fsync_path(self._io, self._dir)
        self._note_synced(self._bases[i], position)
        return dropped

    def _close_files(self) -> None:
        for name in ("_fd", "_idx_fd", "_synced_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                self._io.close(fd)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("log is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._readonly:
            raise ValueError("log is open readonly")
        if self._failed is not None:
            raise OSError(f"an earlier write failed ({self._failed}); reopen the log to recover")
