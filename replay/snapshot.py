"""Engine snapshots: the state, its digest and where in the log it stands, written atomically.

A snapshot file is `MAGIC | blake2b-256(body) | body`, the body a msgpack `Snapshot`. It is
written to a temp file, fsynced and renamed, so a crash leaves the old file or the new one,
never half of one; loading checks the checksum and recomputes the state digest. The two halves
can be done apart (`stage_snapshot`, then `publish_snapshot`): the service's shadow process
writes the temp file, and the service syncs and renames it once the output the snapshot counts
is durable. Every write goes through `events.storage`; a write that fails removes its temp file,
and `SnapshotStore.clean_staged` removes those a crash left.

`SnapshotStore` keeps a folder of them, one per seq, prunes old ones and, when the newest is
corrupt, falls back to an older one with a warning.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import structlog

from clearinghouse.digest import decode_state, digest_of, encode_state, state_digest
from clearinghouse.state import State
from events import schema as ev
from events import storage
from events.storage import Storage, fsync_path, write_all

log = structlog.get_logger(__name__)

MAGIC = b"CHSNAP01"
VERSION = 5  # 4: spot tokens, lending pools and portfolio-margin rules in the state; 5: the checkpoint held
READABLE = (4, VERSION)  # a 4 was written when checkpoints landed at once: it holds none, rightly


class SnapshotError(Exception):
    """A snapshot file that is missing, torn, corrupt or of an unknown version."""


class Snapshot(msgspec.Struct, frozen=True):
    version: int
    seq: int  # the next input seq to apply (= events applied)
    digest: str
    derived_count: int  # derived events written when this state was reached
    chain: str  # the rolling hash over every input block applied
    offset: int  # the next input record to read (the source offset)
    time: int  # event time of the state (ms), to find the snapshot before a moment
    state: bytes
    pending: ev.Checkpoint | None = None  # taken, not landed in the derived stream yet (`replay.fold`)

    def load_state(self, check_digest: bool = True, lazy: bool = False) -> State:
        """The state; `check_digest` re-encodes it to prove it is the one that was digested
        (the file checksum already proves the bytes are those written); `lazy` leaves the
        accounts to be decoded on first use (`clearinghouse.lazy`)."""
        state = decode_state(self.state, lazy=lazy)
        if check_digest and state_digest(state) != self.digest:
            raise SnapshotError("state digest does not match the snapshot's")
        return state


class SnapshotHead(msgspec.Struct, frozen=True):
    """The fields a search needs, decoded without reading the state (its bytes are skipped)."""

    seq: int
    time: int


def read_head(path: Path) -> SnapshotHead | None:
    """Where a snapshot stands, from the first pages of the file (mapped, not read whole);
    None when it cannot tell (the full read then decides, and reports why)."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            with memoryview(data) as view:
                return _head_decoder.decode(view[len(MAGIC) + 32 :])
    except (OSError, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        return None


_head_decoder = msgspec.msgpack.Decoder(SnapshotHead)


def make_snapshot(
    state: State,
    derived_count: int,
    chain: str = "",
    offset: int = 0,
    pending: ev.Checkpoint | None = None,
    *,
    encoded: bytes | None = None,
    digest: str | None = None,
) -> Snapshot:
    """`encoded`: the state's encoding, if the caller has it (it hashes the same bytes);
    `digest`: the digest of `encoded`, if the caller has hashed it already."""
    data = encoded if encoded is not None else encode_state(state)
    assert digest is None or encoded is not None, "a digest is only known of given bytes"
    return Snapshot(
        VERSION,
        state.next_seq,
        digest if digest is not None else digest_of(data),
        derived_count,
        chain,
        offset,
        state.time,
        data,
        pending,
    )


def write_snapshot(path: Path, snapshot: Snapshot, io: Storage | None = None) -> None:
    stage_snapshot(path, snapshot, io)
    publish_snapshot(path, io)


def stage_snapshot(path: Path, snapshot: Snapshot, io: Storage | None = None) -> None:
    """Writes the file of `snapshot` under `path`'s temp name, not synced: no reader sees it
    until `publish_snapshot`."""
    io = io or storage.current()
    body = msgspec.msgpack.encode(snapshot)
    io.mkdir(path.parent)
    with _removed_on_error(io, _temp(path)):
        fd = io.open(_temp(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            write_all(io, fd, MAGIC + hashlib.blake2b(body, digest_size=32).digest() + body)
        finally:
            io.close(fd)


def publish_snapshot(path: Path, io: Storage | None = None) -> None:
    """Makes the staged file durable, then renames it to `path` and syncs the folder: the
    name only ever points at a whole, synced file."""
    io = io or storage.current()
    tmp = _temp(path)
    with _removed_on_error(io, tmp):
        fsync_path(io, tmp)
        io.replace(tmp, path)
    fsync_path(io, path.parent)


def _temp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


@contextmanager
def _removed_on_error(io: Storage, tmp: Path) -> Iterator[None]:
    """Removes the temp file if the write fails (a full disk must not keep a half snapshot)."""
    try:
        yield
    except Exception:
        try:
            io.unlink(tmp)
        except OSError:
            pass
        raise


def read_snapshot(path: Path) -> Snapshot:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: {exc.strerror}") from None
    head = len(MAGIC) + 32
    if len(data) < head or not data.startswith(MAGIC):
        raise SnapshotError(f"{path}: not a snapshot (bad magic or truncated)")
    body = data[head:]
    if hashlib.blake2b(body, digest_size=32).digest() != data[len(MAGIC) : head]:
        raise SnapshotError(f"{path}: checksum mismatch (torn or corrupt)")
    try:
        snapshot = msgspec.msgpack.decode(body, type=Snapshot)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"{path}: {exc}") from None
    if snapshot.version not in READABLE:
        raise SnapshotError(f"{path}: snapshot version {snapshot.version}, expected one of {READABLE}")
    return snapshot


class SnapshotStore:
    """A folder of snapshots named by seq; `keep` newest are kept (0 keeps all)."""

    def __init__(self, directory: Path, keep: int = 10, io: Storage | None = None) -> None:
        self.directory = directory
        self.keep = keep
        self._io = io or storage.current()

    def paths(self) -> list[Path]:
        """Snapshot files, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("snap-*.snap"))

    @staticmethod
    def seq_of(path: Path) -> int:
        """The seq a snapshot file is named for (the events applied when it was taken)."""
        return int(path.stem.split("-")[1])

    def path(self, seq: int) -> Path:
        """Where the snapshot at `seq` (its next input seq) is kept."""
        return self.directory / f"snap-{seq:020d}.snap"

    def write(self, snapshot: Snapshot) -> Path:
        self.stage(snapshot)
        return self.publish(snapshot.seq)

    def stage(self, snapshot: Snapshot) -> None:
        """The first half of `write` (`stage_snapshot`): what the service's shadow does."""
        stage_snapshot(self.path(snapshot.seq), snapshot, self._io)

    def publish(self, seq: int) -> Path:
        """The second half of `write`: the staged snapshot at `seq` synced and in place, and
        the oldest beyond `keep` removed."""
        path = self.path(seq)
        publish_snapshot(path, self._io)
        if self.keep:
            for old in self.paths()[: -self.keep]:
                self._io.unlink(old)
        return path

    def clean_staged(self) -> list[Path]:
        """Removes the temp files of snapshots never published (a write that a crash or a full
        disk stopped); only for a caller that knows no one is staging now. Returns them."""
        staged = sorted(self.directory.glob("snap-*.snap.tmp")) if self.directory.is_dir() else []
        for path in staged:
            self._io.unlink(path)
        return staged

    def latest(
        self,
        *,
        at_most: int | None = None,
        time: int | None = None,
        check_digest: bool = True,
        lazy: bool = False,
        derived_at_most: int | None = None,
    ) -> tuple[Snapshot, State] | None:
        """The newest readable snapshot (and its state) with seq <= at_most, state time <=
        time and a derived count <= derived_at_most (each if given); corrupt or torn files on
        the way are skipped with a warning."""
        for path in reversed(self.paths()):
            if at_most is not None and self.seq_of(path) > at_most:
                continue
            if time is not None and (head := read_head(path)) is not None and head.time > time:
                continue
            try:
                snapshot = read_snapshot(path)
                if time is not None and snapshot.time > time:
                    continue
                if derived_at_most is not None and snapshot.derived_count > derived_at_most:
                    continue
                state = snapshot.load_state(check_digest, lazy)
            except SnapshotError as exc:
                log.warning("snapshot.skipped", path=str(path), reason=str(exc))
                continue
            return snapshot, state
        return None
