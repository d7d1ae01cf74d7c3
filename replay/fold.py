"""Folding a log's input into state: from a snapshot (or the start), record by record, with the
rolling hash over the input and the checkpoints. The one step every reader of history and the
live service share, so they decide and hash alike.

A checkpoint (state digest and input chain) is taken of the state after the record that ends a
`checkpoint_every` interval, and lands in the derived stream half an interval later: after the
derived events of the first record that ends `checkpoint_every // 2` events or more past it (or
of the record that takes the next checkpoint, if that comes first). Both points depend on the
input alone, so every reader puts it in the same place; the delay lets the live service hash
the state in its shadow process (`clearinghouse.edges.shadow`) instead of stopping its loop for
it. A checkpoint taken and not yet landed is held in the snapshot, so a restart lands it in its
place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.codec import encode_block
from events.eventlog import EventLog
from replay.logdir import LogDir, settings
from replay.snapshot import SnapshotStore

OnEvent = Callable[[int, ev.InputEvent, list[ev.DerivedEvent]], None]  # (seq, event, its derived events)


class Digest(Protocol):
    """A state digest that may still be being computed (the service hashes in its shadow)."""

    def ready(self) -> bool: ...
    def result(self) -> str: ...


class ReadyDigest:
    """A digest already computed: what `run`, `verify` and a loaded snapshot hold."""

    def __init__(self, digest: str) -> None:
        self._digest = digest

    def ready(self) -> bool:
        return True

    def result(self) -> str:
        return self._digest


def digest_now(state: State) -> Digest:
    return ReadyDigest(state_digest(state))


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
class LogPosition:
    """Where a fold of a log stands: the state plus what a snapshot records beside it (the
    derived events made so far, the input chain, the source offset to resume from and the
    checkpoint held)."""

    state: State
    derived_count: int = 0
    chain: str = ""
    offset: int = 0
    pending: Pending | None = None


def load(
    log: LogDir,
    liquidation: LiquidationConfig | None = None,
    *,
    at_most: int | None = None,
    time: int | None = None,
    check_digest: bool = True,
    lazy: bool = False,
    derived_at_most: int | None = None,
) -> LogPosition:
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
        return LogPosition(State(liquidation=config))
    snap, state = found
    held = snap.pending
    pending = Pending(held.seq, held.chain, held.ts or 0, ReadyDigest(held.digest)) if held is not None else None
    return LogPosition(state, snap.derived_count, snap.chain, snap.offset, pending)


def chain_step(chain: str, seq: int, events: list[ev.InputEvent], payload: bytes | None) -> str:
    """The rolling hash over input blocks: blake2b(previous || the block's stored bytes)."""
    data = payload if payload is not None else encode_block(events, seq)
    return hashlib.blake2b(bytes.fromhex(chain) + data, digest_size=32).hexdigest()


def fold(
    log: LogDir,
    at: LogPosition,
    engine: Engine,
    *,
    end_seq: int | None = None,
    checkpoint_every: int = 0,
    on_block: Callable[[LogPosition, list[ev.DerivedEvent]], None] | None = None,
    on_event: OnEvent | None = None,
    until: Callable[[ev.InputEvent], bool] | None = None,
) -> LogPosition:
    """Applies the input events after `at` (up to `end_seq`, or until `until(event)` is true)
    with `engine`, hashing each block into the chain and adding a `checkpoint` every
    `checkpoint_every` events; `on_block` sees each block's derived events, `on_event` each
    event (seq, event, its derived events) after it is applied."""
    with EventLog(log.events, readonly=True) as inputs:
        for offset, _seq, events, payload in inputs.records(engine.state.next_seq, end_seq):
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
    at: LogPosition,
    offset: int,
    events: list[ev.InputEvent],
    payload: bytes | None,
    *,
    checkpoint_every: int = 0,
    digest: Callable[[State], Digest] = digest_now,
    on_event: OnEvent | None = None,
) -> list[ev.DerivedEvent]:
    """Applies one source record (a block of events at source `offset`) and returns its derived
    events. Moves `at` past the record (offset, chain, derived count, the checkpoint held);
    `digest` starts the hash of a checkpoint's state (in line unless the caller has a better
    way)."""
    state = engine.state
    apply = engine.apply
    first = state.next_seq
    out: list[ev.DerivedEvent] = []
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


def _checkpoints(
    at: LogPosition,
    state: State,
    first: int,
    every: int,
    digest: Callable[[State], Digest],
    out: list[ev.DerivedEvent],
) -> None:
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


def writes_held_checkpoint(at: LogPosition, first: int, count: int, every: int) -> bool:
    """Whether a record of `count` events from seq `first` writes the checkpoint `at` holds to
    the derived stream (so its digest must be in before the record is applied)."""
    if not (every and count and at.pending is not None):
        return False
    end = first + count
    return _ends_interval(first, end, every) or _half_past(at.pending, end, every)


def skip(at: LogPosition, offset: int) -> None:
    """A record that does not decode (a dead letter) moves the position past it, and nothing else."""
    at.offset = offset + 1
