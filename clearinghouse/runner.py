"""Runs the engine over a log directory: the I/O edge around the pure core.

A log directory holds `events/` (the input log), `derived/` (the engine's decisions, with their
own sequence) and `state/engine.snap` (the state reached, with the input seq and the count of
derived events written). Derived events are a pure function of the input, so after a crash
between writing derived events and the snapshot, the run regenerates them and skips the ones
already on disk: none is lost or written twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events.eventlog import EventLog
from replay.snapshot import make_snapshot, read_snapshot, write_snapshot

Progress = Callable[[int, int], None]  # (events done, events total)


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
    def snapshot(self) -> Path:
        return self.root / "state" / "engine.snap"

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
    """A run asked for liquidation settings other than those the log's state was built with."""


def load_state(log: LogDir, liquidation: LiquidationConfig | None = None) -> tuple[State, int]:
    """The persisted state and its derived count, or a fresh state with `liquidation` settings
    (default ones if None). Settings are fixed when a state is created: a replay must decide as
    the original run did, so asking for others on an existing state is an error."""
    if not log.snapshot.exists():
        return State(liquidation=liquidation or LiquidationConfig()), 0
    snap = read_snapshot(log.snapshot)
    state = snap.load_state()
    if liquidation is not None and liquidation != state.liquidation:
        raise ConfigMismatch(f"{log.root} was run with liquidation settings {state.liquidation}; start a new log to use others")
    return state, snap.derived_count


def run(
    log: LogDir,
    *,
    persist: bool = True,
    progress: Progress | None = None,
    snapshot_every: int = 1_000_000,
    liquidation: LiquidationConfig | None = None,
    full_scan: bool = False,
) -> RunResult:
    """Applies every input event not yet applied; with `persist`, writes derived events and the
    state (every `snapshot_every` events and at the end). `full_scan` picks the reference
    trigger mode (same decisions, slower)."""
    state, derived_count = load_state(log, liquidation)
    engine = Engine(state, full_scan=full_scan)
    inputs = EventLog(log.events, readonly=True)
    derived = EventLog(log.derived, derived=True) if persist else None
    skip = derived.next_seq - derived_count if derived is not None else 0
    if skip < 0:
        raise RuntimeError(f"{log.derived} holds {derived.next_seq} derived events, the snapshot counts {derived_count}")
    start_seq, total = state.next_seq, inputs.next_seq - state.next_seq
    new_derived = 0
    last_snapshot = start_seq
    apply = engine.apply
    started = time.perf_counter()
    try:
        for _, events in inputs.blocks(start_seq):
            out: list = []
            for event in events:
                result = apply(event)
                if result:
                    out.extend(result)
            derived_count += len(out)
            new_derived += len(out)
            if derived is not None and out:
                if skip >= len(out):
                    skip -= len(out)
                else:
                    derived.append(out[skip:])
                    skip = 0
            if progress is not None:
                progress(state.next_seq - start_seq, total)
            if derived is not None and state.next_seq - last_snapshot >= snapshot_every:
                _persist(log, engine, derived, derived_count)
                last_snapshot = state.next_seq
        if derived is not None and state.next_seq != last_snapshot:
            _persist(log, engine, derived, derived_count)
    finally:
        inputs.close()
        if derived is not None:
            derived.close()
    return RunResult(engine, state.next_seq - start_seq, new_derived, time.perf_counter() - started)


def _persist(log: LogDir, engine: Engine, derived: EventLog, derived_count: int) -> None:
    derived.flush()
    write_snapshot(log.snapshot, make_snapshot(engine.state, derived_count))
