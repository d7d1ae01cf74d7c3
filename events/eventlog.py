"""Events over a record log: each record is one msgpack block stamped with its first seq.

Sequence numbers are the engine's, contiguous from 0 across blocks; the record offsets of the
underlying log are an implementation detail (they would have gaps under Kafka transactions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from events.codec import decode_block_at, decode_derived_block_at, encode_block, encode_derived_block
from events.filelog import FileLog

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

    def __init__(self, directory: str | Path, *, derived: bool = False, readonly: bool = False, fsync: str = "batch") -> None:
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

    def records(self, start_seq: int = 0, end_seq: int | None = None) -> Iterator[tuple[int, int, list[Any], bytes | None]]:
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
