"""`clearinghouse serve`: the live edge. Consume, apply, produce, snapshot, answer queries.

One asyncio loop runs everything, LMAX style: the engine applies each polled batch of source
records in the loop's thread, so an HTTP request always sees the state between two records,
never half of one. Per batch: apply every record (`replay.fold.step`, the same step replays use),
write the batch's derived events and dead letters to the output in one go (one Kafka
transaction; a long batch writes what it has made every `FLUSH_AFTER` of applying), and hand
the records to the shadow (`clearinghouse.edges.shadow`): a second engine in its own process that
applies them too, hashes each checkpoint's state and stages a snapshot every `snapshot_every`
events, so no state-sized work ever runs on the loop while it serves. A checkpoint lands in the
output half an interval after its state (`replay.fold`), with the digest the shadow sent back long
before. A staged snapshot is published (synced and renamed, in a thread) once the output it
counts is durable, and it is the position a restart starts from; the snapshot at shutdown is
saved in the loop.
The output is always ahead of or at the snapshot, never behind, so a restart from the snapshot
regenerates a known number of derived events and skips them (`runner.Resume`): nothing is lost
or written twice.

Any Kafka error, or the shadow's end, ends the session: the service drops its in-memory state,
waits, and starts again from the newest snapshot (a crash-only design; the restart path is the
one SIGKILL tests prove). A fenced producer (another instance took over the partition) is fatal.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiokafka.errors import KafkaError, ProducerFenced

from clearinghouse.edges.api import build_app, serve_http
from clearinghouse.edges.httpserver import DEFAULT_LIMITS, Limits
from clearinghouse.edges.metrics import Metrics
from clearinghouse.edges.runner import Resume, fix_settings, save_position
from clearinghouse.edges.shadow import DigestLost, Saved, Shadow
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events.codec import CodecError, decode_block_at
from events.deadletter import DeadLetter
from events.deadletter import decode as decode_dead
from events.deadletter import encode as encode_dead
from events.eventlog import EventLog
from events.filelog import FileLog
from events.kafkalog import KafkaConfig, KafkaSink, KafkaSource, Record, Topics
from events.schema import LiquidationTriggered
from replay.fold import LogPosition, load, skip, step, writes_held_checkpoint
from replay.logdir import LogDir
from replay.logdir import settings as log_settings
from replay.snapshot import SnapshotStore

log = structlog.get_logger("clearinghouse.edges.service")

RETRY_SECONDS = 2.0
# Seconds of applying after which a batch's output so far is written before the batch ends.
FLUSH_AFTER = 0.005


class Source(Protocol):
    description: str

    async def start(self, offset: int) -> None: ...
    async def poll(self) -> list[Record]: ...
    def lag(self, position: int) -> int: ...
    async def commit(self, offset: int) -> None: ...
    async def stop(self) -> None: ...


class Sink(Protocol):
    description: str

    async def start(self) -> tuple[int, int]: ...
    async def write(self, derived: list[Any], first_seq: int, dead: list[tuple[Record, str]]) -> None: ...
    async def flush(self) -> None: ...
    async def stop(self) -> None: ...


class FileSource:
    """Tails the input file log of a log directory (another process may be appending)."""

    def __init__(self, log_dir: LogDir, max_records: int = 500, poll_interval: float = 0.05) -> None:
        self.description = f"file:{log_dir.events}"
        self._dir = log_dir
        self._max = max_records
        self._interval = poll_interval
        self._log: FileLog | None = None
        self._next = 0

    async def start(self, offset: int) -> None:
        self._log = FileLog(self._dir.events, readonly=True)
        self._next = offset

    async def poll(self) -> list[Record]:
        assert self._log is not None
        records = [
            Record(offset, payload) for offset, payload in itertools.islice(self._log.read(self._next), self._max)
        ]
        if not records:
            await asyncio.sleep(self._interval)
            return []
        self._next = records[-1].offset + 1
        return records

    def lag(self, position: int) -> int:
        return self._log.next_offset - position if self._log is not None else 0

    async def commit(self, offset: int) -> None:
        """The file log has no consumer groups: the snapshot is the only position."""

    async def stop(self) -> None:
        if self._log is not None:
            self._log.close()


class FileSink:
    """Derived events into the log directory's derived log, dead letters into `dead-letter/`."""

    def __init__(self, log_dir: LogDir) -> None:
        self.description = f"file:{log_dir.derived}"
        self._dir = log_dir
        self._derived: EventLog | None = None
        self._dead: FileLog | None = None

    async def start(self) -> tuple[int, int]:
        self._derived = EventLog(self._dir.derived, derived=True)
        self._dead = FileLog(self._dir.root / "dead-letter")
        last = self._dead.next_offset - 1
        dead_until = decode_dead(next(self._dead.read(last))[1]).offset + 1 if last >= 0 else 0
        return self._derived.next_seq, dead_until

    async def write(self, derived: list[Any], first_seq: int, dead: list[tuple[Record, str]]) -> None:
        assert self._derived is not None and self._dead is not None
        if derived:
            if first_seq != self._derived.next_seq:
                raise RuntimeError(
                    f"{self._dir.derived} is at derived seq {self._derived.next_seq}, asked to write {first_seq}"
                )
            self._derived.append(derived)
        if dead:
            self._dead.append_many(
                encode_dead(DeadLetter(record.offset, reason, record.value)) for record, reason in dead
            )

    async def flush(self) -> None:
        for output in (self._derived, self._dead):
            if output is not None:
                output.flush()

    async def stop(self) -> None:
        for output in (self._derived, self._dead):
            if output is not None:
                output.close()


@dataclass(frozen=True)
class Settings:
    snapshot_every: int = 100_000
    checkpoint_every: int | None = None  # None: the log's own (`replay.logdir.settings`)
    keep: int = 10
    liquidation: LiquidationConfig | None = None
    full_scan: bool = False


class ServiceError(Exception):
    """The service cannot run on: said to the user without a traceback."""


class Fenced(ServiceError):
    """Another service instance took over this partition's output."""


class DerivedBehind(Exception):
    """The output holds fewer derived events than the loaded snapshot counts (they were lost):
    the next session starts from a snapshot that counts no more (or from the start), and its
    replay writes exactly the missing ones, as `run` does."""


class ListenError(ServiceError):
    """The HTTP API cannot bind its address."""


class Service:
    """The consume-apply-produce loop with its health; sources and sinks are made per session."""

    def __init__(
        self,
        home: LogDir,
        source: Callable[[], Source],
        sink: Callable[[], Sink],
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self.home = home
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._make_source = source
        self._make_sink = sink
        self._store = SnapshotStore(home.state, settings.keep)
        self.status = "starting"
        self.fixed = log_settings(
            home, settings.liquidation, settings.checkpoint_every
        )  # refused here if the log has others
        self.engine = Engine(State(liquidation=self.fixed.liquidation))
        self.at = LogPosition(self.engine.state)
        self.lag = 0
        self.snapshot_seq: int | None = None
        self.source_description = ""
        self._guided = True  # the shadow follows the service's decisions (`clearinghouse.edges.shadow`)
        self._written = float("-inf")  # perf_counter at the end of the last write
        self._derived_at_most: int | None = None  # after lost derived events: the most a snapshot to load may count
        self._gc = GcWatch(self.metrics)
        self.metrics.set_position(self.engine.state.next_seq - 1, None)  # as /health says while starting

    @property
    def state(self) -> State:
        return self.engine.state

    def health(self) -> dict[str, Any]:
        state = self.engine.state
        return {
            "status": self.status,
            "seq": state.next_seq - 1,
            "time": state.time,
            "offset": self.at.offset,
            "lag": self.lag,
            "derived": self.at.derived_count,
            "snapshot_seq": self.snapshot_seq,
            "source": self.source_description,
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Sessions until `stop` is set; a Kafka error restarts from the newest snapshot."""
        gc.callbacks.append(self._gc)
        try:
            await self._sessions(stop)
        finally:
            gc.callbacks.remove(self._gc)

    async def _sessions(self, stop: asyncio.Event) -> None:
        while True:
            try:
                await self._session(stop)
                return
            except DerivedBehind as exc:
                log.warning("derived_behind_snapshot", error=str(exc), restarting_from_derived=self._derived_at_most)
                continue
            except ProducerFenced as exc:
                self.status = "fenced"
                raise Fenced(f"another instance owns this partition's output: {exc}") from None
            except (KafkaError, DigestLost) as exc:
                self.status = "recovering"
                log.warning("session_failed", error=repr(exc), retry_in_s=RETRY_SECONDS)
                try:
                    await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
                    return
                except TimeoutError:
                    continue

    async def _session(self, stop: asyncio.Event) -> None:
        fix_settings(self.home, self.fixed)  # before any derived event is written
        self._gc.starting = True  # loading the snapshot and settling the heap are no tick's pause
        try:
            at = load(self.home, self.fixed.liquidation, derived_at_most=self._derived_at_most)
            self.engine = Engine(at.state, full_scan=self.settings.full_scan)
            _settle_heap()
        finally:
            self._gc.starting = False
        self.at = at
        state = at.state
        # /health and the metrics show the position loaded (seqs: the last applied input event, -1 for none)
        self.snapshot_seq = state.next_seq - 1 if state.next_seq else None
        self.metrics.set_position(state.next_seq - 1, self.snapshot_seq)
        shadow = Shadow(self._store)
        source, sink = self._make_source(), self._make_sink()
        commits = Commits(source)
        self.source_description = source.description
        stopped = False
        try:
            await shadow.start(
                self.home,
                state.next_seq,
                self.settings.snapshot_every,
                guided=self._guided,
                full_scan=self.settings.full_scan,
            )
            written, dead_until = await sink.start()
            if written < at.derived_count:
                self._derived_at_most = written
                raise DerivedBehind(
                    f"{sink.description} holds {written} derived events, the snapshot counts {at.derived_count}"
                )
            self._derived_at_most = None
            resume = Resume(written, at.derived_count, sink.description)
            await source.start(at.offset)
            self.status = "ok"
            log.info(
                "session_started",
                seq=state.next_seq - 1,
                offset=at.offset,
                derived=at.derived_count,
                skip=resume.skip,
                source=source.description,
                output=sink.description,
            )
            while not stop.is_set():
                records = await source.poll()
                if records:
                    await self._apply(records, at, sink, resume, dead_until, shadow)
                shadow.check()
                if shadow.staged:  # every record it holds has its output written
                    await sink.flush()
                    shadow.publish()
                self._landed(shadow.landed(), commits)
                self.lag = source.lag(at.offset)
                self.metrics.set_lag(self.lag)
            await sink.flush()
            self._landed(await shadow.close(), commits)
            stopped = True
            save_position(self._store, at, None)
            self._landed(Saved(state.next_seq - 1, at.offset), commits)
            await commits.wait()
            self.status = "stopped"
            log.info("stopped", seq=state.next_seq - 1, offset=at.offset, derived=at.derived_count)
        finally:
            if not stopped:
                await shadow.kill()  # no shadow outlives its session
                commits.cancel()
            if shadow.diverged:  # a bug to report; the next sessions' shadows decide from the input alone
                log.error("shadow_diverged", seq=state.next_seq - 1)
                self._guided = False
            await source.stop()
            await sink.stop()

    def _landed(self, saved: Saved | None, commits: Commits) -> None:
        """A snapshot is in place: it is the position a restart starts from, shown in /health
        and the metrics, and committed to the consumer group for lag tools. The heap is frozen
        again (see `_settle_heap`)."""
        if saved is None:
            return
        self.snapshot_seq = saved.seq
        self.metrics.set_snapshot(saved.seq)
        gc.freeze()
        commits.commit(saved.offset)

    async def _apply(
        self, records: list[Record], at: LogPosition, sink: Sink, resume: Resume, dead_until: int, shadow: Shadow
    ) -> None:
        """Applies a batch and writes its output: at the end, or before it as soon as the
        records applied since the last write have taken `FLUSH_AFTER` and made output, or right
        after a record that liquidates, unless the last write ended less than `FLUSH_AFTER` ago.
        A tick's liquidation then waits neither for the rest of its batch nor for a long batch
        (the backlog after a stall), at the cost of at most one more write per `FLUSH_AFTER`
        (a crash liquidating on every record still writes at most that often). Each record goes
        to the shadow once applied; one that lands a checkpoint waits for its digest if the
        shadow has not sent it yet."""
        started = time.perf_counter()
        first_seq = self.engine.state.next_seq
        out: list[Any] = []
        dead: list[tuple[Record, str]] = []
        every = self.fixed.checkpoint_every
        for record in records:
            made: list[Any] = []
            try:
                block = decode_block_at(record.value)
            except CodecError as exc:
                skip(at, record.offset)
                if record.offset >= dead_until:
                    dead.append((record, str(exc)))
                    self.metrics.dead_letter()
                    log.warning("dead_letter", offset=record.offset, reason=str(exc))
            else:
                held = at.pending
                if (
                    held is not None
                    and not held.digest.ready()
                    and writes_held_checkpoint(at, self.engine.state.next_seq, len(block.events), every)
                ):
                    self.metrics.shadow_waited()
                    await shadow.digest_in(held.digest)  # type: ignore[arg-type]
                made = step(
                    self.engine,
                    at,
                    record.offset,
                    block.events,
                    record.value,
                    checkpoint_every=every,
                    digest=shadow.digest,
                )
                out.extend(made)
            shadow.forward(record, made)
            now = time.perf_counter()
            if (out or dead) and (
                now - started >= FLUSH_AFTER or (_liquidates(made) and now - self._written >= FLUSH_AFTER)
            ):
                await self._write(sink, at, resume, first_seq, started, out, dead)
                started, first_seq, out, dead = time.perf_counter(), self.engine.state.next_seq, [], []
        await self._write(sink, at, resume, first_seq, started, out, dead)
        await shadow.send()
        self.metrics.set_shadow_backlog(shadow.backlog)

    async def _write(
        self,
        sink: Sink,
        at: LogPosition,
        resume: Resume,
        first_seq: int,
        started: float,
        out: list[Any],
        dead: list[tuple[Record, str]],
    ) -> None:
        """Writes the output of the events applied from `first_seq` on (since `started`)."""
        self.metrics.observe_block(
            self.engine.state.next_seq - first_seq,
            out,
            time.perf_counter() - started,
            seq=self.engine.state.next_seq - 1,
        )
        fresh = resume.fresh(out)
        written = time.perf_counter()
        await sink.write(fresh, at.derived_count - len(fresh), dead)
        self._written = time.perf_counter()
        self.metrics.observe_output(self._written - written)


class Commits:
    """Commits the snapshots' offsets to the consumer group beside the loop, not in its way:
    the group's offset is for lag tools (the snapshot is the position), and a commit is a round
    trip to the broker (the first, finding the group's coordinator, some 40 ms): a tick must not
    wait behind it. One in flight at a time, then the newest offset landed meanwhile; a failed
    commit ends the session at the next one (as any Kafka error does)."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._task: asyncio.Task[None] | None = None
        self._next: int | None = None

    def commit(self, offset: int) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # raises what ended the last one
            self._task = None
        self._next = offset
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self._next is not None:
            offset, self._next = self._next, None
            await self._source.commit(offset)

    async def wait(self) -> None:
        """Until every offset landed is committed (at the end of a session)."""
        if self._task is not None:
            await self._task

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


class GcWatch:
    """Times the cyclic collector's pauses (a `gc.callbacks` hook): the loop stops for them, so
    they are a tick's latency. Each goes into the histogram; one long enough to show in the
    ticks is logged (`gc_pause`), except while a session starts (`starting`: loading a
    snapshot and settling the heap, before any tick is applied)."""

    LOG_ABOVE = 0.02  # seconds

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._started = 0.0
        self.starting = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self._metrics.observe_gc(info["generation"], took)
        if took >= self.LOG_ABOVE and not self.starting:
            log.warning(
                "gc_pause", generation=info["generation"], ms=round(took * 1000, 1), collected=info["collected"]
            )


def _liquidates(derived: list[Any]) -> bool:
    return any(type(event) is LiquidationTriggered for event in derived)


def _settle_heap() -> None:
    """Moves the long-lived objects (the state, the trigger index) out of the cyclic garbage
    collector's reach. A full collection over a large book stalls the loop for a few hundred ms
    (a tick's latency); the state holds no reference cycles, and objects that die later are
    still freed by reference counting. Done once the state is loaded, and (without the
    collection) after each snapshot."""
    gc.collect()
    gc.freeze()


def file_service(log_dir: LogDir, settings: Settings, metrics: Metrics | None = None) -> Service:
    return Service(log_dir, lambda: FileSource(log_dir), lambda: FileSink(log_dir), settings, metrics)


def kafka_service(
    state_dir: LogDir,
    config: KafkaConfig,
    topics: Topics,
    partition: int,
    settings: Settings,
    metrics: Metrics | None = None,
) -> Service:
    group = f"clearinghouse.{topics.input}.{partition}"
    return Service(
        state_dir,
        lambda: KafkaSource(config, topics.input, partition, group),
        lambda: KafkaSink(config, topics, partition),
        settings,
        metrics,
    )


async def serve(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Runs the service and its HTTP API until SIGTERM or SIGINT, then stops gracefully: the
    batch in hand is finished, a snapshot saved and the position committed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        runner, bound = await serve_http(build_app(service, token=token, metrics=service.metrics), host, port, limits)
    except OSError as exc:
        raise ListenError(f"cannot serve HTTP on {host}:{port}: {exc.strerror or exc}") from None
    log.info("http_listening", host=host, port=bound, auth=token is not None)
    try:
        await service.run(stop)
    finally:
        await runner.cleanup()
