"""Runs the engine over a log directory: the I/O edge around the pure core.

A log directory holds `events/` (the input log), `derived/` (the engine's decisions, with their
own sequence, and checkpoints) and `state/` (snapshots: the state reached, with the input seq,
the source offset, the count of derived events written and the rolling hash over the input;
and `settings.msgpack`, what the derived stream depends on besides the input: the liquidation
settings and the checkpoint interval, fixed by the first run that writes it). Derived events are
a pure function of the input, so after a crash between writing derived events and the
snapshot, the run regenerates them and skips the ones already on disk: none is lost or written
twice.

A checkpoint (state digest and input chain) is taken of the state after the record that ends a
`checkpoint_every` interval, and lands in the derived stream half an interval later: after the
derived events of the first record that ends `checkpoint_every // 2` events or more past it (or
of the record that takes the next checkpoint, if that comes first). Both points depend on the
input alone, so every reader puts it in the same place; the delay lets the live service hash
the state in its shadow process (`clearinghouse.shadow`) instead of stopping its loop for it. A
checkpoint taken and not yet landed is held in the snapshot, so a restart lands it in its place.

Storage faults are loud, never silent. A snapshot that counts more input events than the input
log holds (input lost) stops `run` (`LogBehind`); a derived log shorter than the newest snapshot
counts (derived events lost) makes `run` start from an older snapshot that counts no more than
it holds, or from the start, which regenerates exactly what is missing. `repair` cuts damaged
logs at their first bad record and sets aside what depended on what it cut, keeping a copy of
everything in `cut/`. Every write goes through `events.storage`.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import msgspec
import structlog

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events import storage
from events.codec import encode_block
from events.eventlog import INGESTED, EventLog
from events.filelog import FileLog
from replay.snapshot import Snapshot, SnapshotError, SnapshotStore, make_snapshot

Progress = Callable[[int, int], None]  # (events done, events total)
log_event = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LogDir:
    root: Path

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def derived(self) -> Path:
        return self.root / "derived"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def settings(self) -> Path:
        return self.state / "settings.msgpack"

    @property
    def dead_letter(self) -> Path:
        return self.root / "dead-letter"

    @property
    def cut(self) -> Path:
        """Where `repair` keeps a copy of everything it cuts."""
        return self.root / "cut"

    def exists(self) -> bool:
        return self.events.is_dir()


@dataclass
class RunResult:
    engine: Engine
    applied: int
    derived: int
    seconds: float

    @property
    def state(self) -> State:
        return self.engine.state


class ConfigMismatch(Exception):
    """A run asked for settings other than those the log's derived stream was built with."""


class SettingsConflict(ConfigMismatch):
    """Liquidation settings other than the log's fixed ones: both kept, so the CLI can name the
    conflicting flags in its own units."""

    def __init__(self, root: Path, fixed: LiquidationConfig, asked: LiquidationConfig) -> None:
        super().__init__(f"{root} was run with liquidation settings {fixed}; start a new log to use others")
        self.root, self.fixed, self.asked = root, fixed, asked


class LogBehind(SnapshotError):
    """A snapshot counts input events the input log no longer holds."""


DEFAULT_CHECKPOINT_EVERY = 100_000


class LogSettings(msgspec.Struct, frozen=True):
    """What a log's derived stream depends on besides its input: the liquidation settings (its
    decisions) and the checkpoint interval (where its checkpoints fall). A restart skips as
    many regenerated derived events as its output already holds, so both must stay as the
    run that wrote them had them."""

    liquidation: LiquidationConfig = LiquidationConfig()
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY


class Digest(Protocol):
    """A state digest that may still be being computed (the service hashes in a child)."""

    def ready(self) -> bool: ...
    def result(self) -> str: ...


class Known:
    """A digest already computed: what `run`, `verify` and a loaded snapshot hold."""

    def __init__(self, digest: str) -> None:
        self._digest = digest

    def ready(self) -> bool:
        return True

    def result(self) -> str:
        return self._digest


def digest_now(state: State) -> Digest:
    return Known(state_digest(state))


@dataclass
class Pending:
    """A checkpoint taken and not landed yet in the derived stream."""

    seq: int
    chain: str
    ts: int
    digest: Digest

    def event(self) -> ev.Checkpoint:
        return ev.Checkpoint(seq=self.seq, digest=self.digest.result(), chain=self.chain, ts=self.ts)


@dataclass
class Position:
    """Where a fold stands: the state plus what the snapshot records beside it."""

    state: State
    derived_count: int = 0
    chain: str = ""
    offset: int = 0
    pending: Pending | None = None


def _stored(log: LogDir) -> tuple[LiquidationConfig, int | None] | None:
    """The settings file's liquidation settings and checkpoint interval (None in a file of
    before the interval was kept: a bare `LiquidationConfig`); None without a file."""
    if not log.settings.exists():
        return None
    try:
        raw = msgspec.msgpack.decode(log.settings.read_bytes())
        if isinstance(raw, dict) and "liquidation" in raw:
            fixed = msgspec.convert(raw, LogSettings)
            if "check" in raw and raw["check"] != _check(fixed):
                raise ConfigMismatch(f"{log.settings} is damaged (its checksum does not match){_RESTORE}")
            return fixed.liquidation, fixed.checkpoint_every
        return msgspec.convert(raw, LiquidationConfig), None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigMismatch(f"{log.settings} does not hold a log's settings ({exc}){_RESTORE}") from None


_RESTORE = (
    ": restore it, or remove it and run again with the liquidation flags and --checkpoint-every"
    " the log was first run with"
)


def _check(fixed: LogSettings) -> int:
    """The checksum kept beside the settings (a damaged file must not read as other settings)."""
    return zlib.crc32(msgspec.msgpack.encode(fixed))


def settings(log: LogDir, liquidation: LiquidationConfig | None = None, checkpoint_every: int | None = None) -> LogSettings:
    """The log's settings: fixed by the first run that wrote its derived stream (a replay must
    decide and checkpoint as that run did), so asking for others later is an error; None asks
    for the log's own (a new log's defaults)."""
    stored = _stored(log)
    fixed_liquidation, fixed_every = stored if stored is not None else (None, None)
    if fixed_liquidation is not None and liquidation is not None and liquidation != fixed_liquidation:
        raise SettingsConflict(log.root, fixed_liquidation, liquidation)
    if fixed_every is not None and checkpoint_every is not None and checkpoint_every != fixed_every:
        raise ConfigMismatch(f"{log.root} was run with a checkpoint every {fixed_every} events; start a new log to use another interval")
    every = fixed_every if fixed_every is not None else checkpoint_every
    return LogSettings(fixed_liquidation or liquidation or LiquidationConfig(), DEFAULT_CHECKPOINT_EVERY if every is None else every)


def fix_settings(log: LogDir, fixed: LogSettings) -> None:
    """Records the settings before a run writes derived events (and completes a file of before
    the checkpoint interval was kept); `settings` has checked them against any recorded."""
    if _stored(log) != (fixed.liquidation, fixed.checkpoint_every):  # whole and on disk before it is the log's
        data = msgspec.msgpack.encode({**msgspec.structs.asdict(fixed), "check": _check(fixed)})
        storage.write_file(storage.current(), log.settings, data, temp=log.settings.with_suffix(".part"))


def load(
    log: LogDir,
    liquidation: LiquidationConfig | None = None,
    *,
    at_most: int | None = None,
    time: int | None = None,
    check_digest: bool = True,
    lazy: bool = False,
    derived_at_most: int | None = None,
) -> Position:
    """The newest good snapshot (at or before `at_most` / `time` if given, counting at most
    `derived_at_most` derived events), or a fresh state. Readers that only look (state at a
    point) may skip re-checking the digest, which `run` and `verify` never do, and decode the
    accounts as they touch them (`lazy`)."""
    config = settings(log, liquidation).liquidation
    store = SnapshotStore(log.state)
    found = store.latest(
        at_most=at_most, time=time, check_digest=check_digest, lazy=lazy, derived_at_most=derived_at_most
    )
    if found is None:
        return Position(State(liquidation=config))
    snap, state = found
    held = snap.pending
    pending = Pending(held.seq, held.chain, held.ts or 0, Known(held.digest)) if held is not None else None
    return Position(state, snap.derived_count, snap.chain, snap.offset, pending)


def chain_step(chain: str, seq: int, events: list[Any], payload: bytes | None) -> str:
    """The rolling hash over input blocks: blake2b(previous || the block's stored bytes)."""
    data = payload if payload is not None else encode_block(events, seq)
    return hashlib.blake2b(bytes.fromhex(chain) + data, digest_size=32).hexdigest()


def fold(
    log: LogDir,
    at: Position,
    engine: Engine,
    *,
    end_seq: int | None = None,
    checkpoint_every: int = 0,
    on_block: Callable[[Position, list[Any]], None] | None = None,
    on_event: Callable[[int, Any, list[Any]], None] | None = None,
    until: Callable[[Any], bool] | None = None,
) -> Position:
    """Applies the input events after `at` (up to `end_seq`, or until `until(event)` is true)
    with `engine`, hashing each block into the chain and adding a `checkpoint` every
    `checkpoint_every` events; `on_block` sees each block's derived events, `on_event` each
    event (seq, event, its derived events) after it is applied."""
    with EventLog(log.events, readonly=True) as inputs:
        for offset, seq, events, payload in inputs.records(engine.state.next_seq, end_seq):
            if until is not None:
                cut = next((i for i, event in enumerate(events) if until(event)), None)
                if cut is not None:
                    step(engine, at, offset, events[:cut], None, checkpoint_every=0, on_event=on_event)
                    return at
            out = step(engine, at, offset, events, payload, checkpoint_every=checkpoint_every, on_event=on_event)
            if on_block is not None:
                on_block(at, out)
    return at


def step(
    engine: Engine,
    at: Position,
    offset: int,
    events: list[Any],
    payload: bytes | None,
    *,
    checkpoint_every: int = 0,
    digest: Callable[[State], Digest] = digest_now,
    on_event: Callable[[int, Any, list[Any]], None] | None = None,
) -> list[Any]:
    """Applies one source record (a block of events at source `offset`) and returns its derived
    events: the one step every reader of history and the live service share, so they decide
    and hash alike. Moves `at` past the record (offset, chain, derived count, the checkpoint
    held); `digest` starts the hash of a checkpoint's state (in line unless the caller has a
    better way)."""
    state = engine.state
    apply = engine.apply
    first = state.next_seq
    out: list[Any] = []
    for event in events:
        result = apply(event)
        if result:
            out.extend(result)
        if on_event is not None:
            on_event(state.next_seq - 1, event, result)
    at.offset = offset + 1
    if not events:
        return out
    at.chain = chain_step(at.chain, first, events, payload)
    if checkpoint_every:
        _checkpoints(at, state, first, checkpoint_every, digest, out)
    at.derived_count += len(out)
    return out


def _checkpoints(at: Position, state: State, first: int, every: int, digest: Callable[[State], Digest], out: list[Any]) -> None:
    """Takes a checkpoint if the record just applied (from seq `first`) ended an interval, and
    lands the one held once the input is half an interval past it (see the module's doc)."""
    end = state.next_seq
    if _ends_interval(first, end, every):
        if at.pending is not None:
            out.append(at.pending.event())
        at.pending = Pending(end - 1, at.chain, state.time, digest(state))
    if at.pending is not None and _half_past(at.pending, end, every):
        out.append(at.pending.event())
        at.pending = None


def _ends_interval(first: int, end: int, every: int) -> bool:
    """The record of seqs `first` to `end - 1` takes a checkpoint."""
    return end // every > first // every


def _half_past(pending: Pending, end: int, every: int) -> bool:
    """The input up to `end - 1` is half an interval past the checkpoint held."""
    return end - 1 >= pending.seq + every // 2


def lands(at: Position, first: int, count: int, every: int) -> bool:
    """Whether a record of `count` events from seq `first` lands the checkpoint `at` holds (its
    digest must be in before the record is applied)."""
    end = first + count
    return bool(every and count and at.pending is not None and (_ends_interval(first, end, every) or _half_past(at.pending, end, every)))


def skip(at: Position, offset: int) -> None:
    """A record that does not decode (a dead letter) moves the position past it, and nothing else."""
    at.offset = offset + 1


class Resume:
    """Drops the derived events a restart regenerates that its output already holds.

    Derived events are a pure function of the input, so after a crash between writing derived
    events and the snapshot that counts them, the replay from that snapshot produces the same
    events again: the first `written - counted` of them are already out and are skipped."""

    def __init__(self, written: int, counted: int, where: str) -> None:
        if written < counted:
            raise RuntimeError(f"{where} holds {written} derived events, the snapshot counts {counted}")
        self.skip = written - counted

    def fresh(self, out: list[Any]) -> list[Any]:
        if self.skip >= len(out):
            self.skip -= len(out)
            return []
        out, self.skip = out[self.skip :], 0
        return out


def run(
    log: LogDir,
    *,
    persist: bool = True,
    progress: Progress | None = None,
    snapshot_every: int = 100_000,
    checkpoint_every: int | None = None,
    keep: int = 10,
    liquidation: LiquidationConfig | None = None,
    full_scan: bool = False,
    snapshot_now: bool = False,
) -> RunResult:
    """Applies every input event not yet applied, from the newest good snapshot. With
    `persist`, writes derived events (checkpoints among them), a snapshot every
    `snapshot_every` events and at the end (keeping `keep`; `snapshot_now` writes one even if
    nothing was applied), and fixes the settings first (None: the log's own; `settings`).
    `full_scan` picks the reference trigger mode (same decisions, slower)."""
    fixed = settings(log, liquidation, checkpoint_every)
    with EventLog(log.events, readonly=True) as inputs:
        input_end = inputs.next_seq
    check_snapshots(log, input_end)
    if persist:
        fix_settings(log, fixed)
    derived = EventLog(log.derived, derived=True) if persist else None
    try:
        at = _start(log, fixed.liquidation, derived)
    except BaseException:
        if derived is not None:
            derived.close()
        raise
    state = at.state
    engine = Engine(state, full_scan=full_scan)
    start_seq, start_derived = state.next_seq, at.derived_count
    total = input_end - start_seq
    store = SnapshotStore(log.state, keep)
    resume = Resume(derived.next_seq, at.derived_count, str(log.derived)) if derived is not None else None
    last_snapshot = start_seq

    def on_block(position: Position, out: list[Any]) -> None:
        nonlocal last_snapshot
        if derived is not None and resume is not None:
            if out and (fresh := resume.fresh(out)):
                derived.append(fresh)
            if state.next_seq - last_snapshot >= snapshot_every:
                save_position(store, position, derived)
                last_snapshot = state.next_seq
        if progress is not None:
            progress(state.next_seq - start_seq, total)

    started = time.perf_counter()
    try:
        fold(log, at, engine, checkpoint_every=fixed.checkpoint_every, on_block=on_block)
        if derived is not None and (snapshot_now or state.next_seq != last_snapshot or not store.paths()):
            save_position(store, at, derived)
    finally:
        if derived is not None:
            derived.close()
    return RunResult(engine, state.next_seq - start_seq, at.derived_count - start_derived, time.perf_counter() - started)


def check_snapshots(log: LogDir, input_end: int) -> None:
    """Refuses a log whose newest snapshot counts more input events than its input log holds:
    events appended now would get seqs that snapshot already counts, and never be applied."""
    paths = SnapshotStore(log.state).paths()
    if paths and SnapshotStore.seq_of(paths[-1]) > input_end:
        raise LogBehind(
            f"{paths[-1]} counts {SnapshotStore.seq_of(paths[-1])} input events but {log.events} holds {input_end}: "
            f"input events were lost; restore them, or run `clearinghouse repair --log {log.root}` to set the "
            f"snapshots and derived events past seq {input_end} aside"
        )


def _start(log: LogDir, liquidation: LiquidationConfig, derived: EventLog | None) -> Position:
    """Where a run starts: the newest good snapshot, or, when the derived log holds fewer
    events than it counts (they were lost), the newest that counts no more than the log holds
    (or the start): the replay from there writes exactly the missing ones. Temp files of
    snapshots never published are removed (the run holds the derived log, so no one stages)."""
    at = load(log, liquidation)
    if derived is None:
        return at
    for path in SnapshotStore(log.state).clean_staged():
        log_event.warning("runner.removed_unpublished_snapshot", path=str(path))
    written = derived.next_seq
    if at.derived_count <= written:
        return at
    older = load(log, liquidation, derived_at_most=written)
    log_event.warning(
        "runner.derived_log_behind_snapshot",
        derived=str(log.derived),
        holds=written,
        snapshot_counts=at.derived_count,
        restarting_from_seq=older.state.next_seq,
    )
    return older


def repair(log: LogDir) -> list[str]:
    """Makes a damaged log directory consistent again, keeping a copy of all it cuts in `cut/`:
    each file log (input, ingest notes, derived, dead letters) is cut at its first damaged
    record (an unfinished batch is rolled back); snapshots that count input events no longer
    there are moved to `cut/snapshots/`; and if input was cut or set aside, the derived log is
    cut back to what the newest remaining snapshot counts (what came after may stem from the
    input cut; `run` writes it again). Returns what was done, one line each."""
    done: list[str] = []
    input_cut = False
    notes_cut = False
    for path in (log.events, log.events / INGESTED, log.derived, log.dead_letter):
        if path.is_dir():
            with FileLog(path, repair=log.cut) as cut_log:
                if cut_log.cut is not None:
                    cut = cut_log.cut
                    input_cut |= path == log.events
                    notes_cut |= path == log.events / INGESTED
                    what = f"cut {cut.dropped_bytes} bytes, record {cut.offset} on"
                    done.append(f"{cut.reason}: {what}; copy in {cut.copy}")
    with EventLog(log.events, readonly=True) as inputs:
        input_end = inputs.next_seq
    if notes_cut:
        with EventLog(log.events) as inputs:
            inputs.notes_lost()
        searched = f"a file ingested again is searched for among the {input_end} events logged"
        done.append(f"ingest notes were cut: {searched}")
    store = SnapshotStore(log.state)
    ahead = [path for path in store.paths() if SnapshotStore.seq_of(path) > input_end]
    if ahead:
        aside = log.cut / "snapshots"
        storage.current().mkdir(aside)
        for path in ahead:
            storage.current().replace(path, aside / path.name)
        storage.fsync_path(storage.current(), log.state)
        done.append(f"{len(ahead)} snapshot(s) counting more than the {input_end} input events moved to {aside}")
    if (input_cut or ahead) and log.derived.is_dir():
        found = store.latest()
        counted = found[0].derived_count if found is not None else 0
        with EventLog(log.derived, derived=True) as derived:
            why = f"derived events past the {counted} the newest remaining snapshot counts"
            cut = derived.cut(counted, log.cut, why)
        if cut is not None:
            done.append(f"{log.derived}: {cut.reason}: cut from record {cut.offset} on; copy in {cut.copy}")
    return done


def save_position(store: SnapshotStore, at: Position, derived: EventLog | None) -> None:
    """Derived events first, then the snapshot that counts them (the settings were fixed before
    the first derived event, by `run` or the service)."""
    if derived is not None:
        derived.flush()
    store.write(position_snapshot(at))


def position_snapshot(at: Position, *, encoded: bytes | None = None, digest: str | None = None) -> Snapshot:
    """The snapshot of `at`; `encoded` is the state's encoding and `digest` its digest, if the
    caller has made them already."""
    pending = at.pending.event() if at.pending is not None else None
    return make_snapshot(at.state, at.derived_count, at.chain, at.offset, pending, encoded=encoded, digest=digest)
