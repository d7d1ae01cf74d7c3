"""The Kafka log backend: input blocks in, derived blocks and dead letters out (aiokafka).

A record's value is one msgpack block, exactly as the file log stores it (`events/codec.py`).
Per service partition N:
- the input topic's partition N is read with `read_committed` from an offset the caller keeps
  beside its state (the snapshot), so Kafka's committed group offsets are informational only;
  offsets have gaps under transactions (commit markers), so the engine numbers events itself;
- derived blocks go to partition N of the derived topic, stamped with their first derived seq;
- records that do not decode go to partition N of the dead-letter topic, unchanged, with the
  reason and their source topic/partition/offset in headers.

Both outputs are written by one transactional producer whose id is fixed per (derived topic,
partition). Starting it fences any earlier instance (a zombie's open transaction is aborted), so
the committed tail read right after is final: it says how many derived events and up to which
source offset dead letters are already out, and a restart skips exactly those (see
`clearinghouse.edges.runner.Resume`). The transaction also makes a batch's derived events and dead
letters visible together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.producer import sender as _sender

from events.codec import decode_derived_block_at, encode_derived_block

# Settings passed through to every aiokafka client (TLS, SASL, client id, timeouts).
PASSTHROUGH = frozenset(
    {
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_service_name",
        "sasl_kerberos_domain_name",
        "client_id",
        "request_timeout_ms",
        "metadata_max_age_ms",
        "connections_max_idle_ms",
    }
)
SSL_FILES = {"ssl_cafile": "cafile", "ssl_certfile": "certfile", "ssl_keyfile": "keyfile", "ssl_password": "password"}
RECORD_EVENTS = 2_000  # derived events per record: keeps a cascade's output under the broker's size limit
MAX_RECORD_BYTES = 4 * 1024 * 1024
RETRY_BACKOFF_MS = 5

# The first AddPartitionsToTxn of a transaction begun right after a commit is refused
# (CONCURRENT_TRANSACTIONS) until the broker has written the commit markers. aiokafka retries it
# after a fixed 20 ms, not retry_backoff_ms (the Java client takes the smaller of the two): in
# the latency bench 2-6 of ~550 transactions met it, each adding 20-30 ms to a tick's latency
# instead of 6-10 ms. Only transactional producers read this.
_sender.BACKOFF_OVERRIDE = min(_sender.BACKOFF_OVERRIDE, RETRY_BACKOFF_MS / 1000)


class KafkaConfigError(ValueError):
    """A Kafka client settings file that cannot be used."""


@dataclass(frozen=True)
class KafkaConfig:
    """Where the cluster is and how to talk to it; `options` are aiokafka settings."""

    bootstrap: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, bootstrap: str, path: str | None) -> KafkaConfig:
        """Settings from a JSON object file (kept off the command line: it may hold secrets)."""
        if path is None:
            return cls(bootstrap)
        try:
            options = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise KafkaConfigError(f"cannot read Kafka settings {path}: {exc}") from None
        if not isinstance(options, dict):
            raise KafkaConfigError(f"{path}: expected a JSON object of aiokafka settings")
        unknown = sorted(set(options) - PASSTHROUGH - set(SSL_FILES))
        if unknown:
            raise KafkaConfigError(
                f"{path}: unknown settings {unknown}; known: {sorted(PASSTHROUGH | set(SSL_FILES))}"
            )
        return cls(bootstrap, options)

    def client(self) -> dict[str, Any]:
        kwargs = {key: value for key, value in self.options.items() if key in PASSTHROUGH}
        ssl = {SSL_FILES[key]: value for key, value in self.options.items() if key in SSL_FILES}
        if ssl:
            kwargs["ssl_context"] = create_ssl_context(**ssl)
        return {"bootstrap_servers": self.bootstrap, **kwargs}


@dataclass(frozen=True)
class Topics:
    input: str
    derived: str
    dead_letter: str

    @classmethod
    def named(cls, input: str, derived: str | None = None, dead_letter: str | None = None) -> Topics:
        return cls(input, derived or f"{input}.derived", dead_letter or f"{input}.dead-letter")


class Record(NamedTuple):
    offset: int
    value: bytes
    key: bytes | None = None


async def ensure_topics(config: KafkaConfig, names: Iterable[str], partitions: int = 1) -> None:
    """Creates the topics that do not exist yet (one replica each is the broker's default)."""
    admin = AIOKafkaAdminClient(**config.client())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(names) - existing)
        if missing:
            try:
                await admin.create_topics([NewTopic(name, partitions, 1) for name in missing])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


def _consumer(config: KafkaConfig, **kwargs: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **config.client(),
        **kwargs,
    )


class KafkaSource:
    """Reads one input partition from a given offset, committed records only."""

    def __init__(
        self, config: KafkaConfig, topic: str, partition: int = 0, group_id: str | None = None, max_records: int = 500
    ) -> None:
        self.tp = TopicPartition(topic, partition)
        self.description = f"kafka:{topic}[{partition}]"
        self.max_records = max_records
        self._consumer = _consumer(config, group_id=group_id, fetch_max_wait_ms=50)
        self._group = group_id

    async def start(self, offset: int) -> None:
        await self._consumer.start()
        self._consumer.assign([self.tp])
        self._consumer.seek(self.tp, offset)

    async def poll(self, timeout_ms: int = 200) -> list[Record]:
        batch = await self._consumer.getmany(self.tp, timeout_ms=timeout_ms, max_records=self.max_records)
        return [Record(r.offset, r.value, r.key) for r in batch.get(self.tp, [])]

    def lag(self, position: int) -> int:
        """Records (commit markers included) between `position` and the last stable offset."""
        end = self._consumer.last_stable_offset(self.tp)
        return max(0, end - position) if end is not None and end >= 0 else 0

    async def commit(self, offset: int) -> None:
        """Records the position in the consumer group, for lag tools (the snapshot is the truth)."""
        if self._group is not None:
            await self._consumer.commit({self.tp: offset})

    async def stop(self) -> None:
        await self._consumer.stop()


class KafkaSink:
    """The transactional producer of derived blocks and dead letters for one partition."""

    def __init__(self, config: KafkaConfig, topics: Topics, partition: int = 0) -> None:
        self.config = config
        self.topics = topics
        self.partition = partition
        self.description = f"kafka:{topics.derived}[{partition}]"
        self._producer = AIOKafkaProducer(
            **config.client(),
            transactional_id=f"clearinghouse:{topics.derived}:{partition}",
            enable_idempotence=True,
            max_request_size=MAX_RECORD_BYTES,
            # Retries (after a refused first AddPartitionsToTxn too, see BACKOFF_OVERRIDE above)
            # after 5 ms: the default 100 ms would land on a tick's latency.
            retry_backoff_ms=RETRY_BACKOFF_MS,
        )

    async def start(self) -> tuple[int, int]:
        """Fences earlier instances, then returns (derived events already out, the source offset
        after the last dead letter already out)."""
        await self._producer.start()
        await self._producer.begin_transaction()  # waits for the producer id: the fence
        await self._producer.commit_transaction()
        derived = await last_record(self.config, self.topics.derived, self.partition)
        written = 0
        if derived is not None:
            block = decode_derived_block_at(derived.value)
            written = block.seq + len(block.events)
        dead = await last_record(self.config, self.topics.dead_letter, self.partition)
        dead_until = int(dead.key or b"-1") + 1 if dead is not None else 0
        return written, dead_until

    async def write(self, derived: list[Any], first_seq: int, dead: list[tuple[Record, str]]) -> None:
        """One transaction: the derived events (from seq `first_seq`) and the dead letters
        (input record, reason)."""
        if not derived and not dead:
            return
        async with self._producer.transaction():
            for i in range(0, len(derived), RECORD_EVENTS):
                chunk = derived[i : i + RECORD_EVENTS]
                await self._producer.send(
                    self.topics.derived, encode_derived_block(chunk, first_seq + i), partition=self.partition
                )
            for record, reason in dead:
                headers = [
                    ("reason", reason.encode()),
                    ("source.topic", self.topics.input.encode()),
                    ("source.partition", str(self.partition).encode()),
                    ("source.offset", str(record.offset).encode()),
                ]
                # The key carries the source offset so a restart finds where dead letters stand.
                await self._producer.send(
                    self.topics.dead_letter,
                    record.value,
                    key=str(record.offset).encode(),
                    partition=self.partition,
                    headers=headers,
                )

    async def flush(self) -> None:
        """Every write is a committed transaction already."""

    async def stop(self) -> None:
        await self._producer.stop()


@contextlib.asynccontextmanager
async def _assigned(
    config: KafkaConfig, topic: str, partition: int
) -> AsyncIterator[tuple[AIOKafkaConsumer, TopicPartition]]:
    """A short-lived read_committed consumer assigned to one partition (no group)."""
    tp = TopicPartition(topic, partition)
    consumer = _consumer(config)
    await consumer.start()
    try:
        consumer.assign([tp])
        yield consumer, tp
    finally:
        await consumer.stop()


async def last_record(config: KafkaConfig, topic: str, partition: int = 0) -> Record | None:
    """The last committed record of a partition, or None: reads back from the end in growing
    windows, since the last offsets may be transaction markers."""
    async with _assigned(config, topic, partition) as (consumer, tp):
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        window = 8
        while end > begin:
            start = max(begin, end - window)
            consumer.seek(tp, start)
            last = None
            async for r in _drain(consumer, tp, end):
                last = Record(r.offset, r.value, r.key)
            if last is not None:
                return last
            if start == begin:
                return None
            window *= 4
        return None


async def _drain(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> AsyncIterator[Any]:
    """The records of `tp` from the consumer's position up to offset `end` (exclusive)."""
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=500)
        for r in batch.get(tp, []):
            if r.offset >= end:
                return
            yield r


async def read_records(config: KafkaConfig, topic: str, partition: int = 0, start: int = 0) -> list[Any]:
    """Every committed record of a partition from `start` to its current end (aiokafka
    ConsumerRecords, headers included): for tools and tests."""
    async with _assigned(config, topic, partition) as (consumer, tp):
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, start)
        return [r async for r in _drain(consumer, tp, end)]


async def read_derived(config: KafkaConfig, topic: str, partition: int = 0) -> list[Any]:
    """Every derived event in a partition of the derived topic, checking the seqs run on."""
    events: list[Any] = []
    for r in await read_records(config, topic, partition):
        block = decode_derived_block_at(r.value)
        if block.seq != len(events):
            raise ValueError(
                f"{topic}[{partition}] offset {r.offset}: block starts at derived seq {block.seq}, expected "
                f"{len(events)}"
            )
        events.extend(block.events)
    return events


class Publisher:
    """An idempotent producer for `clearinghouse produce`: retries never duplicate a record."""

    def __init__(self, config: KafkaConfig, topic: str, partition: int | None = None) -> None:
        self.topic = topic
        self.partition = partition
        self._producer = AIOKafkaProducer(
            **config.client(), enable_idempotence=True, max_request_size=MAX_RECORD_BYTES, linger_ms=5
        )

    async def start(self) -> None:
        await self._producer.start()

    async def send(self, value: bytes) -> asyncio.Future[Any]:
        return await self._producer.send(self.topic, value, partition=self.partition)

    async def stop(self) -> None:
        await self._producer.stop()
