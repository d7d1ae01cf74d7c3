"""Snapshots saved, and checkpoint digests computed, by forked children while the service's
loop goes on (as Redis BGSAVE does).

Encoding the whole state takes tens of milliseconds per 10,000 accounts; on the loop thread
that is a price tick's latency. `fork()` costs a copy of the page tables instead, and the child
sees the state exactly as it was at the fork (copy-on-write), with the source offset, the input
chain and the derived count of that moment, and writes the same snapshot file as the file-log
`run`'s `save_position` (byte for byte) under its temp name, unsynced. The parent learns of the
child's exit through a pidfd on the loop and reaps it there (no zombie); then a thread syncs the
file, renames it into place and prunes (the second half of the atomic write,
`SnapshotStore.publish`), and only then is the snapshot counted. So the child's life ends
with its write, not with the disk's flush: while it lives, every page the loop writes is copied.
A failed child is logged and the next due snapshot tries again. The child dies with its parent
(a SIGKILLed service leaves no writer behind: at worst a `.tmp` file the next write replaces).
Linux only (pidfd, PR_SET_PDEATHSIG).

A checkpoint's digest (`ForkedDigest`) is hashed the same way: the child writes it to a pipe and
the derived stream only needs it half a checkpoint interval later (`runner`), by which time the
child is long done; the loop pays the fork, not the encoding. When a snapshot is due at the
checkpoint's state, one child does both (`BackgroundSave.start` with the digest): it encodes the
state once, sends the digest of those bytes, then saves them. The loop pays copy-on-write faults
on every page it touches for as long as a child lives; two children back to back (the digest's,
then the snapshot's once the digest was in) doubled that, the fork and the encoding.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import select
import signal
from dataclasses import dataclass
from typing import Callable

import structlog

from clearinghouse.digest import digest_of, encode_state, state_digest
from clearinghouse.runner import Position, position_snapshot
from clearinghouse.state import State
from replay.snapshot import SnapshotStore

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Saved:
    seq: int  # the last input seq the snapshot holds
    offset: int  # the source offset it resumes from


class SaveFailed(Exception):
    """The child that was writing a snapshot did not exit cleanly."""


class BackgroundSave:
    """One forked snapshot writer at a time for a state folder."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store
        self._running: asyncio.Future[Saved] | None = None

    @property
    def busy(self) -> bool:
        return self._running is not None and not self._running.done()

    def start(self, at: Position, digest: ForkedDigest | None = None) -> None:
        """Forks a child that saves `at` as it is now. Given `digest`, not started, of the
        checkpoint `at` has just taken (so of the same state), the child hashes it too, from the
        bytes the snapshot holds, and sends it before it writes the file. The caller has made
        the output that `at` counts durable first (the snapshot must never be ahead of it)."""
        assert not self.busy, "one snapshot child at a time"
        assert digest is None or (at.pending is not None and at.pending.digest is digest)
        loop = asyncio.get_running_loop()
        saved = Saved(at.state.next_seq - 1, at.offset)

        def save() -> None:
            encoded = encode_state(at.state)
            hashed = None
            if digest is not None:
                digest.send(encoded)  # the child's copy of `at.pending` then knows its digest
                hashed = digest.result()
            self._store.stage(position_snapshot(at, encoded=encoded, digest=hashed))

        try:
            pid = digest.fork(save, "snapshot_child_failed") if digest is not None else _fork(save, "snapshot_child_failed", saved.seq)
        except OSError as exc:
            self._running = loop.create_future()
            self._running.set_exception(SaveFailed(f"cannot fork a snapshot child for seq {saved.seq}: {exc}"))
            if digest is not None:
                digest.start()
            return
        pidfd = os.pidfd_open(pid)
        exited: asyncio.Future[int] = loop.create_future()

        def reap() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            exited.set_result(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

        loop.add_reader(pidfd, reap)
        self._running = loop.create_task(self._publish(pid, exited, saved))

    async def _publish(self, pid: int, exited: asyncio.Future[int], saved: Saved) -> Saved:
        """Once the child has staged the file and exited: synced and renamed in a thread (the
        loop goes on); the snapshot counts from here."""
        code = await exited
        if code != 0:
            raise SaveFailed(f"snapshot child {pid} for seq {saved.seq} exited with {code}")

        try:
            await asyncio.to_thread(self._store.publish, saved.seq + 1)
        except OSError as exc:
            raise SaveFailed(f"cannot publish the snapshot for seq {saved.seq}: {exc}") from None
        return saved

    def landed(self) -> Saved | None:
        """The snapshot written since the last call, if its child has finished; a failure is
        logged and forgotten (the next due snapshot retries)."""
        if self._running is None or not self._running.done():
            return None
        future, self._running = self._running, None
        if future.exception() is not None:
            log.error("snapshot_failed", error=str(future.exception()))
            return None
        return future.result()

    async def wait(self) -> Saved | None:
        """Waits for the running child, if any (never leaves one behind), then as `landed`."""
        if self._running is not None:
            await asyncio.wait([self._running])
        return self.landed()


class DigestLost(Exception):
    """The child hashing a checkpoint's state did not deliver the digest: the state it saw is
    gone, so the session starts again from the newest snapshot."""


class ForkedDigest:
    """The digest of `state`, hashed by a forked child that writes it to a pipe; a
    `runner.Digest` the service hands to `runner.step`. Made unstarted: the service then either
    `start`s a child that only hashes, or hands it to the snapshot child (`BackgroundSave.start`),
    before the state moves on."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._seq = state.next_seq - 1
        self._digest: str | None = None
        self._read: int | None = None  # the pipe, until the digest is in
        self._write = -1  # the pipe's other end: the child's
        self._pid: int | None = None  # the child to reap with the digest (a snapshot child is its saver's)

    def start(self) -> None:
        """Forks a child that only hashes the state; hashed in line if no child can be had."""
        try:
            self._pid = self.fork(lambda: self.send(encode_state(self._state)), "digest_child_failed")
        except OSError:
            self._digest = state_digest(self._state)

    def fork(self, work: Callable[[], None], failed: str) -> int:
        """Forks a child that does `work`, which `send`s the digest first; returns its pid.
        Raises OSError when no child can be had."""
        read, self._write = os.pipe()
        try:
            pid = _fork(work, failed, self._seq)
        except OSError:
            os.close(read)
            raise
        finally:
            os.close(self._write)
        self._read = read
        return pid

    def send(self, encoded: bytes) -> None:
        """In the child: the digest of the state's encoding into the pipe, closed at once, so
        the parent has it while the child's work goes on."""
        self._digest = digest_of(encoded)
        _write_all(self._write, self._digest.encode())
        os.close(self._write)

    def ready(self) -> bool:
        """True once the digest is in (the pipe is closed); never blocks."""
        if self._digest is None and self._read is not None and select.select([self._read], [], [], 0)[0]:
            self._collect()
        return self._digest is not None

    def result(self) -> str:
        """The digest, waiting for the child if it is not done yet."""
        if self._digest is None:
            self._collect()
        assert self._digest is not None
        return self._digest

    def _collect(self) -> None:
        """Reads the pipe to its end (the child closed it or exited) and reaps a hashing-only
        child."""
        if self._read is None:
            raise DigestLost(f"the digest for seq {self._seq} was lost")
        got = b""
        try:
            while chunk := os.read(self._read, 128):
                got += chunk
        finally:
            os.close(self._read)
            self._read = None
        if self._pid is not None:
            code = os.waitstatus_to_exitcode(os.waitpid(self._pid, 0)[1])
            if code != 0:
                raise DigestLost(f"digest child {self._pid} for seq {self._seq} exited with {code}")
        if len(got) != 64:
            raise DigestLost(f"the child hashing seq {self._seq} sent no digest")
        self._digest = got.decode()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _fork(work: Callable[[], None], failed: str, seq: int) -> int:
    """Forks a child that does `work` and exits (`_child`); returns its pid. Raises OSError
    when no child can be had."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _child(work, parent, failed, seq)
    return pid


def _child(work: Callable[[], None], parent: int, failed: str, seq: int) -> None:
    """The forked side: do `work` and leave at once, running none of the parent's cleanup (its
    atexit hooks, buffered files and sockets are the parent's). A failure is logged as a JSON
    line like the service's own (event `failed`)."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)  # the loop's signal pipe is the parent's
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        gc.disable()  # a collection would touch (and copy) every page of the state
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            return
        work()
        code = 0
    except Exception as exc:
        log.error(failed, pid=os.getpid(), seq=seq, error=repr(exc))
    finally:
        os._exit(code)
