"""Runs the engine over a log directory and persists what it makes: the edge that writes.

`run` applies the input not yet applied (the fold of `replay.fold`, from the newest good
snapshot) and writes the derived events, the checkpoints among them, and snapshots; the first
run fixes the log's settings (`replay.logdir`). Derived events are a pure function of the
input, so after a crash between writing derived events and the snapshot, the run regenerates
them and skips the ones already on disk (`Resume`): none is lost or written twice.

Storage faults are loud, never silent. A snapshot that counts more input events than the input
log holds (input lost) stops `run` (`LogBehind`); a derived log shorter than the newest snapshot
counts (derived events lost) makes `run` start from an older snapshot that counts no more than
it holds, or from the start, which regenerates exactly what is missing. `repair` cuts damaged
logs at their first bad record and sets aside what depended on what it cut, keeping a copy of
everything in `cut/`. Every write goes through `events.storage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events import storage
from events.eventlog import INGESTED, EventLog
from events.filelog import FileLog
from replay.fold import LogPosition, fold, load
from replay.logdir import LogDir, LogSettings, recorded_settings, settings, settings_file
from replay.snapshot import Snapshot, SnapshotError, SnapshotStore, make_snapshot

Progress = Callable[[int, int], None]  # (events done, events total)
log_event = structlog.get_logger(__name__)


@dataclass
class RunResult:
    engine: Engine
    applied: int
    derived: int
    seconds: float

    @property
    def state(self) -> State:
        return self.engine.state


class LogBehind(SnapshotError):
    """A snapshot counts input events the input log no longer holds."""


def fix_settings(log: LogDir, fixed: LogSettings) -> None:
    """Records the settings before a run writes derived events (and completes a file of before
    the checkpoint interval was kept); `settings` has checked them against any recorded."""
    if recorded_settings(log) != (fixed.liquidation, fixed.checkpoint_every):
        data = settings_file(fixed)  # whole and on disk before it is the log's
        storage.write_file(storage.current(), log.settings, data, temp=log.settings.with_suffix(".part"))


class Resume:
    """Drops the derived events a restart regenerates that its output already holds.

    Derived events are a pure function of the input, so after a crash between writing derived
    events and the snapshot that counts them, the replay from that snapshot produces the same
    events again: the first `written - counted` of them are already out and are skipped."""

    def __init__(self, written: int, counted: int, where: str) -> None:
        if written < counted:
            raise RuntimeError(f"{where} holds {written} derived events, the snapshot counts {counted}")
        self.skip = written - counted

    def fresh(self, out: list[ev.DerivedEvent]) -> list[ev.DerivedEvent]:
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

    def on_block(position: LogPosition, out: list[ev.DerivedEvent]) -> None:
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
    seconds = time.perf_counter() - started
    return RunResult(engine, state.next_seq - start_seq, at.derived_count - start_derived, seconds)


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


def _start(log: LogDir, liquidation: LiquidationConfig, derived: EventLog | None) -> LogPosition:
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


def save_position(store: SnapshotStore, at: LogPosition, derived: EventLog | None) -> None:
    """Derived events first, then the snapshot that counts them (the settings were fixed before
    the first derived event, by `run` or the service)."""
    if derived is not None:
        derived.flush()
    store.write(position_snapshot(at))


def position_snapshot(at: LogPosition, *, encoded: bytes | None = None, digest: str | None = None) -> Snapshot:
    """The snapshot of `at`; `encoded` is the state's encoding and `digest` its digest, if the
    caller has made them already."""
    pending = at.pending.event() if at.pending is not None else None
    return make_snapshot(at.state, at.derived_count, at.chain, at.offset, pending, encoded=encoded, digest=digest)
