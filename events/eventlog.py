"""Events over a record log: each record is one msgpack block stamped with its first seq.

Sequence numbers are the engine's, contiguous from 0 across blocks; the record offsets of the
underlying log are an implementation detail (they would have gaps under Kafka transactions).

`append_whole` appends a whole input (a file) as one batch of the file log, so it lands whole
or not at all, and notes it in the log's `ingested/` folder (a file log of `Ingested` records:
first seq, count and a digest of the events) before the batch ends, so that the same events
can be recognised when they come again (`already_in`). A note is only a hint: it is believed
only once the events it names are read back from the log and hash to its digest, so the note
of a batch that was rolled back never counts. When a repair had to cut damaged notes, it leaves
a note without a digest over the seqs whose notes may be lost (`notes_lost`), and an input is
then also searched for among those events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from events.codec import decode_block_at, decode_derived_block_at, encode_block, encode_derived_block
from events.filelog import Cut, FileLog

INGESTED = "ingested"  # the folder, inside the event log's, of the notes of whole appends
_event_encoder = msgspec.msgpack.Encoder()


class Ingested(msgspec.Struct, frozen=True):
    """A note of one whole append: `count` events from seq `first`, hashing to `digest`."""

    first: int
    count: int
    digest: str  # "" in a note that notes for these seqs may be lost: they are searched
    source: str = ""  # where they came from (a file name), for messages


class Fingerprint:
    """A running digest over events (their msgpack encodings, in order): equal events in equal
    order give equal digests, whatever blocks they were stored in."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=32)
        self.count = 0

    def add(self, event: Any) -> None:
        data = _event_encoder.encode(event)
        self._hash.update(len(data).to_bytes(4, "little") + data)
        self.count += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def blocks_of(events: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive blocks of `size` events (the last one shorter): how streams become records."""
    block: list[Any] = []
    for event in events:
        block.append(event)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


_DECODERS: dict[bool, Callable[[bytes], Any]] = {False: decode_block_at, True: decode_derived_block_at}
_ENCODERS: dict[bool, Callable[[list[Any], int], bytes]] = {False: encode_block, True: encode_derived_block}


class EventLog:
    """A file log of event blocks; `derived=True` holds the engine's derived events."""

    def __init__(
        self, directory: str | Path, *, derived: bool = False, readonly: bool = False, fsync: str = "batch"
    ) -> None:
        self.path = Path(directory)
        self._decode = _DECODERS[derived]
        self._encode = _ENCODERS[derived]
        self.file = FileLog(self.path, fsync=fsync, readonly=readonly)
        self.next_seq = self._end_seq()

    def _end_seq(self) -> int:
        last = self.file.next_offset - 1
        if last < 0:
            return 0
        for _, payload in self.file.read(last, last + 1):
            block = self._decode(payload)
            return block.seq + len(block.events)
        return 0

    def append(self, events: list[Any]) -> int:
        """Appends one block; returns the seq of its first event."""
        seq = self.next_seq
        if events:
            self.file.append(self._encode(events, seq))
            self.next_seq = seq + len(events)
        return seq

    def append_blocks(self, blocks: Iterable[list[Any]]) -> None:
        payloads = []
        for events in blocks:
            if events:
                payloads.append(self._encode(events, self.next_seq))
                self.next_seq += len(events)
        self.file.append_many(payloads)

    def append_whole(self, blocks: Iterable[list[Any]], note: Ingested, *, chunk: int = 64) -> None:
        """Appends `blocks` as one batch (`FileLog.begin_batch`) with `note` (its `first` is
        set here) written beside it before the batch ends: all of it lands, or none. On an
        error the batch is cut back at once (or, if that fails too, by the next writer)."""
        first = self.next_seq
        self.file.begin_batch()
        try:
            pending: list[list[Any]] = []
            for block in blocks:
                pending.append(block)
                if len(pending) == chunk:
                    self.append_blocks(pending)
                    pending = []
            self.append_blocks(pending)
            with FileLog(self.path / INGESTED) as notes:
                notes.append(msgspec.msgpack.encode(msgspec.structs.replace(note, first=first)))
            self.file.commit_batch()
        except Exception:
            self.next_seq = first
            try:
                self.file.abort_batch()
            except OSError:
                pass  # the batch file stays: the next writer cuts the batch
            raise

    def notes(self) -> list[Ingested]:
        """The notes of whole appends, oldest first (unverified: see `already_in`)."""
        if not (self.path / INGESTED).is_dir():
            return []
        with FileLog(self.path / INGESTED, readonly=True) as notes:
            return [msgspec.msgpack.decode(payload, type=Ingested) for _, payload in notes.read()]

    def notes_lost(self) -> None:
        """Records that the notes of the events so far may be incomplete (a repair cut damaged
        ones): every later `already_in` searches those events for the input."""
        with FileLog(self.path / INGESTED) as notes:
            notes.append(msgspec.msgpack.encode(Ingested(0, self.next_seq, "", "an ingest whose note was lost")))

    def counts(self) -> set[int]:
        """The counts of events after which `already_in` needs an input's digest (besides the
        whole input's): each note's, the part of a note's events still in the log where a repair
        cut the rest, and one event where notes were lost (where a search starts)."""
        notes = self.notes()
        counts = {min(note.count, self.next_seq - note.first) for note in notes if note.first < self.next_seq}
        return counts | ({1} if any(not note.digest for note in notes) else set())

    def already_in(self, prefixes: dict[int, str]) -> Ingested | None:
        """The longest run of events an earlier whole append put in the log (all of its events,
        or those a repair left) that are the first ones of an input, given the input's digest
        after each of `counts()` events and after all of them (`prefixes`), verified against
        the events in the log; None if there is none."""
        found = None
        for note in self.notes():
            if not note.digest:
                note = self._search(note, prefixes) or msgspec.structs.replace(note, count=0)
            count = min(note.count, self.next_seq - note.first)
            if count <= 0 or count not in prefixes or (found is not None and found.count >= count):
                continue
            if count == note.count and note.digest and prefixes[count] != note.digest:
                continue
            check = Fingerprint()
            for _, event in self.read(note.first, note.first + count):
                check.add(event)
            if check.hexdigest() == prefixes[count]:
                found = msgspec.structs.replace(note, count=count)
        return found

    def _search(self, lost: Ingested, prefixes: dict[int, str]) -> Ingested | None:
        """Where in the seqs of `lost` the whole input (the largest count of `prefixes`) is,
        if it is: each event there whose digest is the input's first one's starts a check."""
        total = max(prefixes)
        events = [event for _, event in self.read(lost.first, min(lost.first + lost.count, self.next_seq))]
        for i in range(len(events) - total + 1):
            first = Fingerprint()
            first.add(events[i])
            if first.hexdigest() != prefixes.get(1):
                continue
            check = Fingerprint()
            for event in events[i : i + total]:
                check.add(event)
            if check.hexdigest() == prefixes[total]:
                return Ingested(lost.first + i, total, prefixes[total], lost.source)
        return None

    def cut(self, seq: int, keep: Path, reason: str) -> Cut | None:
        """Cuts the log before event `seq` (keeping a copy of the files cut in `keep`); a block
        that holds `seq` is cut whole and its events before `seq` appended again."""
        if seq >= self.next_seq:
            return None
        offset = self._first_record(seq)
        block = self._decode(next(self.file.read(offset, offset + 1))[1])
        cut = self.file.cut_at(offset, keep, reason)
        self.next_seq = block.seq
        if block.seq < seq:
            self.append(block.events[: seq - block.seq])
            self.flush()
        return cut

    def _first_record(self, seq: int) -> int:
        """The record holding `seq` (bisection on the blocks' first seq)."""
        lo, hi = 0, self.file.next_offset - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            first = next(self.file.read(mid, mid + 1))[1]
            if self._decode(first).seq <= seq:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def records(
        self, start_seq: int = 0, end_seq: int | None = None
    ) -> Iterator[tuple[int, int, list[Any], bytes | None]]:
        """(record offset, first seq, events, payload) of each block, trimmed to
        [start_seq, end_seq); payload is the stored bytes, None for a trimmed block."""
        if start_seq >= self.next_seq:
            return
        for offset, payload in self.file.read(self._first_record(start_seq)):
            block = self._decode(payload)
            seq, events, raw = block.seq, block.events, payload
            if end_seq is not None and seq >= end_seq:
                return
            if seq < start_seq:
                events, seq, raw = events[start_seq - seq :], start_seq, None
            if end_seq is not None and seq + len(events) > end_seq:
                events, raw = events[: end_seq - seq], None
            yield offset, seq, events, raw

    def blocks(self, start_seq: int = 0, end_seq: int | None = None) -> Iterator[tuple[int, list[Any]]]:
        """(first seq, events) of each block, trimmed to [start_seq, end_seq)."""
        for _, seq, events, _ in self.records(start_seq, end_seq):
            yield seq, events

    def read(self, start_seq: int = 0, end_seq: int | None = None) -> Iterator[tuple[int, Any]]:
        for seq, events in self.blocks(start_seq, end_seq):
            yield from enumerate(events, seq)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
