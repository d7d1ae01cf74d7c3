"""The shadow: a second engine, in its own process, that applies the records the service
applied and does the work of whole-state size for it: hashing each checkpoint's state and
staging the snapshots (as a replica of LMAX's business logic processor takes the snapshots
its primary would otherwise stop for).

The engine is a pure function of its input, so the shadow, started from the snapshot the
service loaded and fed the same records (dead letters included), holds the very state the
service held after each of them. Each record comes with the accounts the service's decisions
for it named, and the shadow's engine is guided by them (`Engine(guide=...)`, as the history
readers of `replay.decisions` are): it checks only those, so it never builds or re-keys the
trigger index, the costly part of applying with liquidation on, and takes a fraction of the
service's CPU. It checks that its decisions name the same accounts and number the same; if
they ever differed it exits (`shadow_diverged`), and the service's next session runs its
shadow unguided, which decides from the input alone. It is niced: the service's loop, with the
ticks waiting on it, wins the CPU whenever both want it.

Before, the service forked a child at every checkpoint (`fork()` and its copy-on-write): the
fork's page-table copy and the faults of the first records after it were 20-40 ms on the loop,
the slowest ticks of the latency bench. With the shadow the loop never stops for state-sized
work: a checkpoint's digest comes back over a pipe, long before the derived stream lands it
half an interval later (`replay.fold`); a snapshot is staged by the shadow (`SnapshotStore.stage`)
and published (synced, renamed, pruned) by the service in a thread once the output it counts
is durable. The service only waits if the shadow has fallen half an interval behind.

Frames both ways: a 4-byte big-endian length, then msgpack. To the shadow: a list of records
`[offset, value, named, count]` (the accounts named by its decisions, input seq -> names, and
the number of derived events it made). From it: `["digest", seq, hex]` for each checkpoint taken, and
`["staged", seq, offset]` for each snapshot staged (the last input seq it holds, the source
offset it resumes from). The shadow exits at the end of its input, and dies with the service
(`PR_SET_PDEATHSIG`). Linux only.

    python -m clearinghouse.edges.shadow HOME --next-seq N --snapshot-every S [--unguided] [--full-scan]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import signal
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import structlog

from clearinghouse.digest import digest_of, encode_state
from clearinghouse.edges.jsonlog import configure_logging
from clearinghouse.edges.runner import position_snapshot
from clearinghouse.engine import Engine
from clearinghouse.state import State
from events import schema as ev
from events.codec import CodecError, decode_block_at
from events.kafkalog import Record
from replay.decisions import guide_of
from replay.fold import ReadyDigest, load, skip, step
from replay.logdir import LogDir, settings
from replay.snapshot import SnapshotStore

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1
DIVERGED = 3  # the shadow's exit code when its decisions differ from the service's
NICE = 10
HEADER = struct.Struct(">I")
# Bytes of records written to the shadow and not yet taken by it beyond which the service waits
# for the pipe to drain (the shadow is that far behind).
BACKLOG_LIMIT = 64 << 20


@dataclass(frozen=True)
class Saved:
    seq: int  # the last input seq the snapshot holds
    offset: int  # the source offset it resumes from


class DigestLost(Exception):
    """The shadow ended without the digest of a checkpoint the derived stream needs: the session
    starts again from the newest snapshot."""


def frame(message: Any) -> bytes:
    body = msgspec.msgpack.encode(message)
    return HEADER.pack(len(body)) + body


def named(derived: list[Any]) -> dict[int, tuple[str, ...]]:
    """The guide of one record's derived events: input seq -> the accounts its decisions name."""
    return guide_of([event for event in derived if not isinstance(event, ev.Checkpoint)])


# ---- the service's side ------------------------------------------------------------------------


class ShadowDigest:
    """A checkpoint's digest as the shadow will send it: a `replay.fold.Digest`."""

    def __init__(self, seq: int, future: asyncio.Future[str]) -> None:
        self.seq = seq
        self._future = future

    def ready(self) -> bool:
        return self._future.done()

    def result(self) -> str:
        """The digest; only asked for once `ready` (the service waits with `Shadow.digest_in`)."""
        return self._future.result()

    async def wait(self) -> None:
        await asyncio.shield(self._future)


class Shadow:
    """The shadow process of one session, seen from the service's loop."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._digests: dict[int, asyncio.Future[str]] = {}
        self._outbox: list[list[Any]] = []
        self._staged: list[Saved] = []
        self._publishing: asyncio.Task[Saved] | None = None
        self._ended: BaseException | None = None
        self.diverged = False  # it exited saying its decisions differed from the service's

    async def start(
        self, home: LogDir, next_seq: int, snapshot_every: int, *, guided: bool = True, full_scan: bool = False
    ) -> None:
        """Starts the shadow on the snapshot the service loaded (the one ending before `next_seq`)."""
        args = [
            sys.executable,
            "-m",
            "clearinghouse.edges.shadow",
            str(home.root),
            "--next-seq",
            str(next_seq),
            "--snapshot-every",
            str(snapshot_every),
        ]
        args += [flag for flag, on in (("--unguided", not guided), ("--full-scan", full_scan)) if on]
        self._process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        self._reader = asyncio.create_task(self._read())

    def digest(self, state: State) -> ShadowDigest:
        """For `replay.fold.step`: the checkpoint just taken of `state`, whose digest the shadow sends."""
        seq = state.next_seq - 1
        future = self._digests[seq] = asyncio.get_running_loop().create_future()
        if self._ended is not None:
            future.set_exception(DigestLost(f"the shadow ended before the checkpoint at seq {seq}: {self._ended}"))
        return ShadowDigest(seq, future)

    def forward(self, record: Record, derived: list[Any]) -> None:
        """A record the service has applied (or dead-lettered), with the derived events it made:
        sent with the next `send`."""
        self._outbox.append([record.offset, record.value, named(derived), len(derived)])

    @property
    def backlog(self) -> int:
        """Bytes for the shadow still buffered here, beyond what its pipe holds (how far behind it is)."""
        pipe = self._process.stdin if self._process is not None else None
        return pipe.transport.get_write_buffer_size() if pipe is not None else 0

    async def send(self) -> None:
        """Sends what was forwarded; waits only if the shadow is `BACKLOG_LIMIT` behind."""
        if not self._outbox:
            return
        assert self._process is not None and self._process.stdin is not None
        pipe = self._process.stdin
        pipe.write(frame(self._outbox))
        self._outbox = []
        if self.backlog > BACKLOG_LIMIT:
            try:
                await pipe.drain()
            except ConnectionError:  # the shadow is gone; its reader says why
                pass

    async def digest_in(self, digest: ShadowDigest) -> None:
        """Waits for a digest the next record needs (the shadow is half an interval behind)."""
        await self.send()
        log.warning("waiting_for_shadow", seq=digest.seq)
        await digest.wait()

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        pipe = self._process.stdout
        try:
            while True:
                try:
                    head = await pipe.readexactly(HEADER.size)
                except asyncio.IncompleteReadError:
                    break
                kind, seq, value = msgspec.msgpack.decode(await pipe.readexactly(HEADER.unpack(head)[0]))
                if kind == "digest":
                    future = self._digests.pop(seq, None)
                    if future is not None and not future.done():
                        future.set_result(value)
                else:
                    self._staged.append(Saved(seq, value))
            code = await self._process.wait()
            self.diverged = code == DIVERGED
            self._end(
                DigestLost(
                    f"the shadow exited with {code}"
                    + (" (its decisions differed from the service's)" if self.diverged else "")
                )
            )
        except Exception as exc:  # noqa: BLE001 - whatever ended the pipe ends the session
            self._end(DigestLost(f"the shadow's pipe failed: {exc!r}"))

    def check(self) -> None:
        """Raises `DigestLost` once the shadow has ended: the session ends with it, rather than
        run on without snapshots until a checkpoint needs a digest."""
        if self._ended is not None:
            raise self._ended

    def _end(self, reason: DigestLost) -> None:
        self._ended = reason
        for future in self._digests.values():
            if not future.done():
                future.set_exception(reason)
        self._digests.clear()

    def publish(self) -> None:
        """Publishes (in a thread) the snapshots staged so far; the caller has made the output
        they count durable. One publish at a time: what is staged meanwhile waits for the next
        call after `landed` has taken the last one."""
        if self._staged and self._publishing is None:
            staged, self._staged = self._staged, []
            self._publishing = asyncio.create_task(self._publish(staged))

    @property
    def staged(self) -> bool:
        return bool(self._staged)

    async def _publish(self, staged: list[Saved]) -> Saved:
        for saved in staged:
            await asyncio.to_thread(self._store.publish, saved.seq + 1)
        return staged[-1]

    def landed(self) -> Saved | None:
        """The newest snapshot published since the last call; a failed publish is logged and
        forgotten (the next staged one tries again)."""
        done = self._publishing
        if done is None or not done.done():
            return None
        self._publishing = None
        if done.exception() is not None:
            log.error("snapshot_failed", error=str(done.exception()))
            return None
        return done.result()

    async def close(self) -> Saved | None:
        """The end of a stopping session: the shadow takes its last records and exits, and the
        snapshots it staged are published (the caller has flushed the output)."""
        await self.send()
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()
            await self._process.wait()
        if self._reader is not None:
            await self._reader
        landed = await self._published()
        self.publish()
        return await self._published() or landed

    async def _published(self) -> Saved | None:
        if self._publishing is not None:
            await asyncio.wait([self._publishing])
        return self.landed()

    async def kill(self) -> None:
        """The end of a failed session: no shadow outlives it."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        if self._reader is not None:
            await self._reader
        if self._publishing is not None:
            await asyncio.wait([self._publishing])


# ---- the shadow's side -------------------------------------------------------------------------


def _read_frame(source: BinaryIO) -> Any | None:
    head = source.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = source.read(size)
    if len(body) < size:
        return None
    return msgspec.msgpack.decode(body)


def follow(
    home: LogDir,
    next_seq: int,
    snapshot_every: int,
    source: BinaryIO,
    sink: BinaryIO,
    *,
    guided: bool = True,
    full_scan: bool = False,
) -> int:
    """Applies the records from `source` as the service did, guided by the accounts its
    decisions named (unless not `guided`), hashing each checkpoint and staging a snapshot each
    time the input crosses a multiple of `snapshot_every` (the rule checkpoints follow, so with
    their interval one encoding does both); returns the exit code."""
    fixed = settings(home)
    at = load(home, fixed.liquidation)
    if at.state.next_seq != next_seq:
        log.error("shadow_mismatch", expected=next_seq, loaded=at.state.next_seq)
        return 2
    state = at.state
    guide: dict[int, tuple[str, ...]] = {}  # the record in hand's
    engine = Engine(state, guide=guide, full_scan=full_scan) if guided else Engine(state, full_scan=full_scan)
    store = SnapshotStore(home.state)
    every = max(snapshot_every, 1)
    last = next_seq
    gc.collect()
    gc.freeze()
    hashed: tuple[bytes, str] | None = (
        None  # the state's encoding and digest, once the record in hand took a checkpoint
    )

    def checkpoint(taken: State) -> ReadyDigest:
        """The checkpoint's digest, of the encoding a snapshot due at the same record reuses."""
        nonlocal hashed
        encoded = encode_state(taken)
        hashed = (encoded, digest_of(encoded))
        return ReadyDigest(hashed[1])

    def send(message: list[Any]) -> None:
        sink.write(frame(message))
        sink.flush()

    while (records := _read_frame(source)) is not None:
        for offset, value, names, count in records:
            try:
                block = decode_block_at(value)
            except CodecError:
                skip(at, offset)
                continue
            guide.clear()
            guide.update((seq, tuple(accounts)) for seq, accounts in names.items())
            hashed = None
            out = step(
                engine, at, offset, block.events, value, checkpoint_every=fixed.checkpoint_every, digest=checkpoint
            )
            if len(out) != count or named(out) != guide:
                log.error("shadow_diverged", seq=state.next_seq - 1, derived=len(out), service_derived=count)
                return DIVERGED
            if hashed is not None:
                send(["digest", state.next_seq - 1, hashed[1]])
            if state.next_seq // every > last // every:
                if hashed is None:
                    encoded = encode_state(state)
                    hashed = (encoded, digest_of(encoded))
                store.stage(position_snapshot(at, encoded=hashed[0], digest=hashed[1]))
                send(["staged", state.next_seq - 1, at.offset])
                last = state.next_seq
                gc.freeze()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clearinghouse.edges.shadow")
    parser.add_argument("home")
    parser.add_argument("--next-seq", type=int, required=True)
    parser.add_argument("--snapshot-every", type=int, required=True)
    parser.add_argument(
        "--unguided", action="store_true", help="find the accounts to check from the input alone (the trigger index)"
    )
    parser.add_argument("--full-scan", action="store_true")
    args = parser.parse_args(argv)
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the service died before the line above
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM):  # sent to the group, they stop the service, which closes the input
        signal.signal(sig, signal.SIG_IGN)
    os.nice(NICE)
    configure_logging()
    try:
        return follow(
            LogDir(Path(args.home)),
            args.next_seq,
            args.snapshot_every,
            sys.stdin.buffer,
            sys.stdout.buffer,
            guided=not args.unguided,
            full_scan=args.full_scan,
        )
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
