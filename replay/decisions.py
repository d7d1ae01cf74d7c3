"""Replays that read history, guided by the decisions the log records and checked against them.

A run records every decision (liquidations, fills, takeovers, ADL, bad debt, rejections) in the
derived log. A reader going over a stretch again gives the engine those decisions as its
`guide`: only the accounts they name are checked, so the trigger index (the costly part of a
replay with liquidation on: built from every account, re-keyed on every fill) is never built.
The decisions the guided replay makes must equal the recorded ones; a derived log that does
not belong to the input (edited, or from other settings) fails that, and the stretch is
replayed again with the trigger index, which answers from the input alone, as it does past
what a run has recorded (its newest snapshot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from clearinghouse.engine import Engine
from clearinghouse.state import State
from events import schema as ev
from events.eventlog import EventLog
from replay.fold import LogPosition, OnEvent, fold
from replay.logdir import LogDir
from replay.snapshot import SnapshotStore

_log = structlog.get_logger(__name__)


class Point:
    """Where a replay stops: right after input `seq`, after the last event at or before `time`
    (ms), or (neither) at the end of the log."""

    def __init__(self, seq: int | None = None, time: int | None = None) -> None:
        self.seq, self.time = seq, time

    def covered(self, at: LogPosition, ran: int, length: int) -> bool:
        """Whether the decisions from `at` to here are all recorded, a run having gone to seq
        `ran` of a log of `length` events."""
        if self.seq is not None:
            return self.seq + 1 <= ran
        if self.time is not None:
            return at.state.next_seq < ran  # a later snapshot exists, so the moment falls before it
        return length <= ran

    def fold(self, log: LogDir, at: LogPosition, engine: Engine, on_event: OnEvent | None) -> None:
        if self.seq is not None:
            fold(log, at, engine, end_seq=self.seq + 1, on_event=on_event)
        elif self.time is not None:
            moment = self.time
            fold(log, at, engine, until=lambda e: e.ts is not None and e.ts > moment, on_event=on_event)
        else:
            fold(log, at, engine, on_event=on_event)


def cause(event: Any) -> int:
    """The input seq a derived event belongs to."""
    return event.seq if isinstance(event, ev.Rejected) else event.cause


def recorded(log: LogDir, at: LogPosition, point: Point) -> list[Any]:
    """The derived events the log records after `at`, checkpoints left out, up to the decisions
    of the point (a decision's time is the state's, which only grows)."""
    found: list[Any] = []
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        for _, event in derived.read(at.derived_count):
            if isinstance(event, ev.Checkpoint):
                continue
            if point.seq is not None and cause(event) > point.seq:
                break
            if (
                point.time is not None
                and not isinstance(event, ev.Rejected)
                and event.ts is not None
                and event.ts > point.time
            ):
                break
            found.append(event)
    return found


def guide_of(decisions: list[Any]) -> dict[int, tuple[str, ...]]:
    """Input seq -> the accounts its recorded decisions name (the engine's `guide`)."""
    named: dict[int, dict[str, None]] = {}
    for event in decisions:
        if not isinstance(event, ev.Rejected):
            named.setdefault(event.cause, {})[event.account] = None
    return {seq: tuple(names) for seq, names in named.items()}


def _ran(log: LogDir) -> int:
    """How far the recorded decisions go: the newest snapshot's seq (a run writes its derived
    events before each snapshot)."""
    paths = SnapshotStore(log.state).paths()
    return SnapshotStore.seq_of(paths[-1]) if paths else 0


def replay(
    log: LogDir, start: Callable[[], LogPosition], point: Point, watch: Callable[[State], OnEvent] | None = None
) -> LogPosition:
    """Folds from the position `start()` gives to `point`, guided where the decisions are
    recorded and checked against them; `watch(state)` gives each attempt's per-event callback
    (a fallback starts again from a fresh `start()`)."""
    at = start()
    with EventLog(log.events, readonly=True) as events:
        length = events.next_seq
    if point.covered(at, _ran(log), length):
        decisions = recorded(log, at, point)
        made: list[Any] = []
        seen = watch(at.state) if watch is not None else None

        def on_event(seq: int, event: Any, derived: list[Any]) -> None:
            made.extend(derived)
            if seen is not None:
                seen(seq, event, derived)

        point.fold(log, at, Engine(at.state, guide=guide_of(decisions)), on_event)
        if made == [e for e in decisions if cause(e) < at.state.next_seq]:
            return at
        _log.warning(
            "history.unguided",
            reason="the replay's decisions differ from the recorded ones",
            seq=at.state.next_seq - 1,
        )
        at = start()
    point.fold(log, at, Engine(at.state), watch(at.state) if watch is not None else None)
    return at
