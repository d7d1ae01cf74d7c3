"""The Kafka backend against a real broker: round trip, SIGKILL restarts, broker restarts,
dead letters and the HTTP API, all through the `clearinghouse` command as a user runs it.

The reference is always the embedded file log: `run` over the same events gives the digest,
the chain and the derived events the service must reproduce exactly (no derived event
duplicated or missing)."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ConcurrentTransactions
from aiokafka.producer.sender import AddPartitionsToTxnHandler

from clearinghouse.edges.runner import run
from clearinghouse.summary import clearinghouse_state
from events.eventlog import EventLog
from events.kafkalog import RETRY_BACKOFF_MS, KafkaConfig, read_derived, read_records
from events.schema import Block, Checkpoint, LiquidationTriggered
from replay.logdir import LogDir
from replay.snapshot import SnapshotStore
from replay.workload import GeneratorConfig, generate, write_jsonl
from tests.support.served import Served

CHECKPOINT_EVERY = 5_000  # checkpoints (digest and chain) in the derived stream every 5 blocks


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "clearinghouse", "-q", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result


@dataclass(frozen=True)
class Reference:
    """A file log and what a plain file replay of it gives."""

    log: LogDir
    digest: str
    chain: str
    derived: list[Any]
    events: int
    account: str  # a trader, and its clearinghouseState after the whole stream
    account_state: dict[str, Any]
    held: Checkpoint | None  # the checkpoint the last snapshot holds (taken at 29,999, not landed)


def _reference(root: Path, config: GeneratorConfig) -> Reference:
    write_jsonl(generate(config), root / "stream.jsonl")
    cli("ingest", str(root / "stream.jsonl"), "--log", str(root / "log"))
    log = LogDir(root / "log")
    result = run(log, checkpoint_every=CHECKPOINT_EVERY)
    snap, _ = SnapshotStore(log.state).latest()
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        events = [e for _, e in derived.read()]
    state = result.state
    trader = min(name for name, account in state.accounts.items() if account.positions and not name.startswith("@"))
    return Reference(
        log, snap.digest, snap.chain, events, state.next_seq, trader, clearinghouse_state(state, trader), snap.pending
    )


@pytest.fixture(scope="module")
def crash(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """30 blocks of a market crash: liquidations, ADL and checkpoints among the derived events."""
    ref = _reference(
        tmp_path_factory.mktemp("crash"), GeneratorConfig(accounts=300, markets=4, events=30_000, seed=5, crash=True)
    )
    assert sum(isinstance(e, LiquidationTriggered) for e in ref.derived) > 10
    assert ref.held is not None and ref.held.seq == 29_999  # lands at 32,499: beyond the stream
    return ref


def _snapshot(state_dir: Path) -> tuple[str, str, int, Checkpoint | None]:
    found = SnapshotStore(state_dir / "state").latest()
    assert found is not None
    snap, _ = found
    return snap.digest, snap.chain, snap.derived_count, snap.pending


def _serve(kafka: str, topic: str, state: Path, *extra: str) -> Served:
    args = [
        "--kafka",
        kafka,
        "--topic",
        topic,
        "--state",
        str(state),
        "--checkpoint-every",
        str(CHECKPOINT_EVERY),
        *extra,
    ]
    return Served(args, state.parent / f"{state.name}.log")


def _caught_up(ref: Reference) -> Any:
    return lambda health: health["seq"] == ref.events - 1


def _check_output(kafka: str, topic: str, state: Path, ref: Reference) -> None:
    assert _snapshot(state) == (ref.digest, ref.chain, len(ref.derived), ref.held)
    assert asyncio.run(read_derived(KafkaConfig(kafka), f"{topic}.derived")) == ref.derived


async def _committed(kafka: str, topic: str) -> int | None:
    """The offset the service's consumer group holds for partition 0 (what lag tools read)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=f"clearinghouse.{topic}.0", enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


def test_round_trip_file_log_to_topic_to_service(kafka: str, crash: Reference, tmp_path: Path) -> None:
    out = cli("produce", "--kafka", kafka, "--topic", "round-trip", "--log", str(crash.log.root), "--json").stdout
    assert '"events": 30000' in out and '"records": 30' in out
    served = _serve(kafka, "round-trip", tmp_path / "state")
    health = served.wait(_caught_up(crash))
    assert health["status"] == "ok" and health["source"] == "kafka:round-trip[0]"
    assert served.stop() == 0
    _check_output(kafka, "round-trip", tmp_path / "state", crash)
    assert asyncio.run(_committed(kafka, "round-trip")) == 30  # the stop's snapshot: past all 30 records


def test_sigkill_at_random_points_loses_and_repeats_nothing(kafka: str, crash: Reference, tmp_path: Path) -> None:
    """The stream arrives at 6,000 events/s while the service is killed four times at seeded
    random moments; each restart resumes from its newest snapshot (one every 2,000 events)."""
    producer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clearinghouse",
            "-q",
            "produce",
            "--kafka",
            kafka,
            "--topic",
            "kills",
            "--log",
            str(crash.log.root),
            "--rate",
            "6000",
        ],
        stdout=subprocess.DEVNULL,
    )
    rng = random.Random(20261125)
    state = tmp_path / "state"
    kills = 0
    try:
        for _ in range(4):
            served = _serve(kafka, "kills", state, "--snapshot-every", "2000")
            assert served.port  # started and listening
            time.sleep(rng.uniform(0.3, 1.5))
            served.kill()
            kills += 1
    finally:
        assert producer.wait(timeout=120) == 0
    served = _serve(kafka, "kills", state, "--snapshot-every", "2000")
    served.wait(_caught_up(crash))
    assert served.stop() == 0
    assert kills == 4
    _check_output(kafka, "kills", state, crash)


def test_broker_stop_and_restart_mid_stream(broker: ModuleType, crash: Reference, tmp_path: Path) -> None:
    """A broker of its own (stopping the shared one would disturb other tests)."""
    data = tmp_path / "broker"
    bootstrap = broker.start(data)
    try:
        half = tmp_path / "half"
        with EventLog(crash.log.events, readonly=True) as log:
            records = list(log.file.read())
        first, second = records[:15], records[15:]
        asyncio.run(_publish(bootstrap, "restarts", [payload for _, payload in first]))
        served = _serve(bootstrap, "restarts", half)
        served.wait(lambda h: h["seq"] == 14_999)
        broker.stop(data)
        time.sleep(1.0)
        assert broker.start(data) == bootstrap
        asyncio.run(_publish(bootstrap, "restarts", [payload for _, payload in second]))
        served.wait(_caught_up(crash), timeout=180)
        assert served.stop() == 0
        _check_output(bootstrap, "restarts", half, crash)
    finally:
        broker.stop(data)


async def _publish(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


def test_garbage_goes_to_the_dead_letter_topic_and_the_service_goes_on(
    kafka: str, crash: Reference, tmp_path: Path
) -> None:
    with EventLog(crash.log.events, readonly=True) as log:
        good = [payload for _, payload in log.file.read()]
    newer = msgspec.msgpack.encode(Block(99, 0, []))  # a schema version this reader does not know
    values = good[:10] + [b"\x00not msgpack", newer] + good[10:]
    asyncio.run(_publish(kafka, "garbage", values))
    state = tmp_path / "state"
    served = _serve(kafka, "garbage", state)
    served.wait(_caught_up(crash))
    status, metrics = served.get("/metrics")
    assert status == 200 and "clearinghouse_dead_letters_total 2.0" in metrics
    assert served.stop() == 0
    _check_output(kafka, "garbage", state, crash)
    dead = asyncio.run(read_records(KafkaConfig(kafka), "garbage.dead-letter"))
    assert [(r.value, r.key) for r in dead] == [(b"\x00not msgpack", b"10"), (newer, b"11")]
    headers = [dict(r.headers) for r in dead]
    assert [(h["source.topic"], h["source.partition"], h["source.offset"]) for h in headers] == [
        (b"garbage", b"0", b"10"),
        (b"garbage", b"0", b"11"),
    ]
    assert b"bad block" in headers[0]["reason"]
    assert headers[1]["reason"] == b"block schema version 99 is newer than this reader (1)"
    # A restart from no snapshot at all re-reads the garbage: no second dead letter, no derived duplicate.
    for path in (state / "state").glob("snapshot-*"):
        path.unlink()
    again = _serve(kafka, "garbage", state)
    again.wait(_caught_up(crash))
    assert again.stop() == 0
    assert len(asyncio.run(read_records(KafkaConfig(kafka), "garbage.dead-letter"))) == 2
    _check_output(kafka, "garbage", state, crash)


def test_http_api_with_and_without_a_token(kafka: str, crash: Reference, tmp_path: Path) -> None:
    cli("produce", "--kafka", kafka, "--topic", "api", "--log", str(crash.log.root))
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    secured = _serve(kafka, "api", tmp_path / "secured", "--token-file", str(token))
    secured.wait(_caught_up(crash), token="s3cret")
    assert secured.get("/health")[0] == 401
    assert secured.get("/health", token="wrong")[0] == 401
    status, body = secured.get("/metrics", token="s3cret")
    assert status == 200 and "clearinghouse_events_applied_total 30000.0" in body
    assert secured.stop() == 0

    open_ = _serve(kafka, "api", tmp_path / "open")
    open_.wait(_caught_up(crash))
    status, health = open_.get("/health")
    assert status == 200 and health["lag"] == 0
    query = json.dumps({"type": "clearinghouseState", "user": crash.account}).encode()
    assert open_.get("/info", data=query) == (200, crash.account_state)
    assert open_.get(f"/accounts/{crash.account}") == (200, crash.account_state)
    assert open_.stop() == 0


def test_serve_owns_one_partition(kafka: str, crash: Reference, tmp_path: Path) -> None:
    """`--partition 1` reads partition 1 of the input and writes partition 1 of the outputs."""
    cli(
        "produce",
        "--kafka",
        kafka,
        "--topic",
        "shards",
        "--partitions",
        "2",
        "--partition",
        "1",
        "--log",
        str(crash.log.root),
    )
    state = tmp_path / "shard1"
    served = _serve(kafka, "shards", state, "--partition", "1", "--partitions", "2")
    health = served.wait(_caught_up(crash))
    assert health["source"] == "kafka:shards[1]"
    assert served.stop() == 0
    assert _snapshot(state) == (crash.digest, crash.chain, len(crash.derived), crash.held)
    config = KafkaConfig(kafka)
    assert asyncio.run(read_derived(config, "shards.derived", 1)) == crash.derived
    assert asyncio.run(read_records(config, "shards.derived", 0)) == []
    assert asyncio.run(read_records(config, "shards", 0)) == []


def test_a_transaction_refused_right_after_a_commit_is_retried_after_5_ms() -> None:
    """The broker refuses the first AddPartitionsToTxn while the previous commit's markers are
    being written; the sink's producer retries after its own 5 ms, not aiokafka's fixed 20 ms."""
    sender = SimpleNamespace(
        _retry_backoff=RETRY_BACKOFF_MS / 1000, _txn_manager=SimpleNamespace(txn_partitions=set())
    )
    handler = AddPartitionsToTxnHandler(sender, [])
    refused = SimpleNamespace(errors=[("t.derived", [(0, ConcurrentTransactions.errno)])])
    assert handler.handle_response(refused) == 0.005
