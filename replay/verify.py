"""Proof that the recorded state is what the log implies: rebuild from scratch and compare every
derived event, every checkpoint (state digest and input chain) and every snapshot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.state import State
from events import schema as ev
from events.codec import encode_json
from events.eventlog import EventLog
from replay.fold import LogPosition, fold
from replay.logdir import LogDir, settings
from replay.snapshot import SnapshotError, SnapshotStore, read_snapshot


@dataclass
class Verdict:
    ok: bool = True
    first_bad_seq: int | None = None
    problem: str = ""
    events: int = 0
    decisions: int = 0
    checkpoints: int = 0
    snapshots: int = 0
    notes: list[str] = field(default_factory=list)

    def fail(self, seq: int, problem: str) -> None:
        if self.ok:
            self.ok, self.first_bad_seq, self.problem = False, seq, problem


def _seq_of(event: Any) -> int:
    return event.seq if isinstance(event, (ev.Rejected, ev.Checkpoint)) else event.cause


def verify(log: LogDir, progress: Callable[[int, int], None] | None = None) -> Verdict:
    verdict = Verdict()
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        recorded = [e for _, e in derived.read()] if log.derived.is_dir() else []
    decisions = [e for e in recorded if not isinstance(e, ev.Checkpoint)]
    checkpoints = {e.seq: e for e in recorded if isinstance(e, ev.Checkpoint)}
    snapshots: dict[int, str] = {}
    for path in SnapshotStore(log.state).paths():
        try:
            snap = read_snapshot(path)
        except SnapshotError as exc:
            verdict.notes.append(f"skipped {path.name}: {exc}")
            continue
        snapshots[snap.seq] = snap.digest
    engine = Engine(State(liquidation=settings(log).liquidation))
    state = engine.state
    with EventLog(log.events, readonly=True) as inputs:
        total = inputs.next_seq
    cursor = 0

    def on_block(at: LogPosition, out: list[Any]) -> None:
        nonlocal cursor
        for event in out:
            expected = decisions[cursor] if cursor < len(decisions) else None
            if expected != event:
                seq = _seq_of(expected) if expected is not None else _seq_of(event)
                shown = encode_json(expected).decode() if expected is not None else "nothing"
                verdict.fail(
                    min(seq, _seq_of(event)),
                    f"derived event differs: recorded {shown}, replay gives {encode_json(event).decode()}",
                )
            cursor += 1
        verdict.decisions = cursor
        last = state.next_seq - 1
        checkpoint = checkpoints.get(last)
        if checkpoint is not None:
            verdict.checkpoints += 1
            if checkpoint.digest != state_digest(state) or checkpoint.chain != at.chain:
                verdict.fail(
                    last,
                    f"checkpoint at seq {last} differs (recorded digest {checkpoint.digest[:16]}..., chain "
                    f"{checkpoint.chain[:16]}...)",
                )
        digest = snapshots.get(state.next_seq)
        if digest is not None:
            verdict.snapshots += 1
            if digest != state_digest(state):
                verdict.fail(last, f"snapshot at seq {state.next_seq} holds another state")
        if progress is not None:
            progress(state.next_seq, total)

    fold(log, LogPosition(state), engine, on_block=on_block)
    verdict.events = state.next_seq
    if cursor < len(decisions):
        extra = decisions[cursor]
        verdict.fail(
            _seq_of(extra), f"recorded derived event the replay does not produce: {encode_json(extra).decode()}"
        )
    if len(checkpoints) != verdict.checkpoints:
        missing = sorted(set(checkpoints) - set(range(state.next_seq)))
        if missing:
            verdict.fail(missing[0], f"checkpoint at seq {missing[0]} is beyond the log")
    return verdict
