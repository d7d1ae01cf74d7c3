"""`clearinghouse produce`: publish a stream of event blocks into a Kafka topic at a target rate.

For load tests and for moving a file log into Kafka. Blocks from a file log are published as
stored (same bytes, same seq stamps), so a service reading the topic hashes the same chain as a
replay of the file. Pacing reads the wall clock: this is an edge, not the core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from events.codec import encode_block
from events.eventlog import EventLog, blocks_of
from events.kafkalog import KafkaConfig, Publisher, ensure_topics

Progress = Callable[[int, int], None]
IN_FLIGHT = 1_000  # records awaited together: bounds memory without a round trip per record


@dataclass(frozen=True)
class Produced:
    records: int
    events: int
    seconds: float


def log_blocks(path: Any) -> Iterator[tuple[bytes, int]]:
    """(stored bytes, event count) of every block of a file log."""
    with EventLog(path, readonly=True) as log:
        for _, seq, events, payload in log.records():
            yield payload if payload is not None else encode_block(events, seq), len(events)


def event_blocks(events: Iterable[Any], size: int) -> Iterator[tuple[bytes, int]]:
    """Blocks of `size` events stamped with their first seq, as `ingest` would store them."""
    seq = 0
    for block in blocks_of(events, size):
        yield encode_block(block, seq), len(block)
        seq += len(block)


async def produce(
    config: KafkaConfig,
    topic: str,
    blocks: Iterable[tuple[bytes, int]],
    *,
    rate: int = 0,
    partition: int | None = None,
    partitions: int = 1,
    total: int = 0,
    progress: Progress | None = None,
) -> Produced:
    """Publishes `blocks` in order; `rate` > 0 paces them at that many events per second."""
    await ensure_topics(config, [topic], partitions)
    publisher = Publisher(config, topic, partition)
    await publisher.start()
    started = time.perf_counter()
    records = events = 0
    pending: list[asyncio.Future[Any]] = []
    try:
        for payload, count in blocks:
            if rate > 0:
                due = started + events / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            pending.append(await publisher.send(payload))
            records += 1
            events += count
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
            if progress is not None:
                progress(events, total)
        await asyncio.gather(*pending)
    finally:
        await publisher.stop()
    return Produced(records, events, time.perf_counter() - started)
