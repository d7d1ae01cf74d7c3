"""`clearinghouse serve` on the embedded file log (no Kafka): tailing a log another process
appends to, graceful and hard stops, and the command's clear errors."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import clearinghouse.edges.service as service_module
from clearinghouse.digest import state_digest
from clearinghouse.edges.runner import Resume, fix_settings, run, save_position
from clearinghouse.edges.service import Service, Settings, file_service
from clearinghouse.edges.shadow import Saved, Shadow
from clearinghouse.engine import Engine
from clearinghouse.state import State
from events import schema as ev
from events.codec import decode_block_at, encode_block
from events.eventlog import EventLog
from events.filelog import FileLog
from events.kafkalog import KafkaConfig, KafkaConfigError, Record
from replay.fold import LogPosition, step
from replay.logdir import ConfigMismatch, LogDir, LogSettings, settings
from replay.snapshot import SnapshotStore
from replay.workload import GeneratorConfig, generate, write_jsonl
from tests.support.served import Served


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "clearinghouse", "-q", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result


def _halves(tmp_path: Path) -> tuple[Path, Path]:
    events = [e for e in generate(GeneratorConfig(accounts=200, markets=3, events=12_000, seed=9, crash=True))]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_jsonl(iter(events[:6_000]), first)
    write_jsonl(iter(events[6_000:]), second)
    return first, second


@pytest.mark.slow
def test_serve_tails_a_file_log_and_matches_a_plain_run(tmp_path: Path) -> None:
    first, second = _halves(tmp_path)
    served_log = tmp_path / "served"
    cli("ingest", str(first), "--log", str(served_log))
    served = Served(["--log", str(served_log), "--snapshot-every", "2500"], tmp_path / "serve.log")
    served.wait(lambda h: h["seq"] == 5_999)
    cli("ingest", str(second), "--log", str(served_log))  # appended while the service runs
    health = served.wait(lambda h: h["seq"] == 11_999)
    assert health["status"] == "ok" and health["lag"] == 0 and health["source"] == f"file:{served_log / 'events'}"
    served.kill()  # hard stop: the restart resumes from the newest snapshot
    again = Served(["--log", str(served_log)], tmp_path / "serve.log")
    again.wait(lambda h: h["seq"] == 11_999)
    assert again.stop() == 0
    _matches_a_plain_run(tmp_path, served_log)


@pytest.mark.slow
def test_serve_recovers_when_the_derived_log_is_shorter_than_its_snapshot_counts(tmp_path: Path) -> None:
    """The derived log lost its records after the first: `serve` starts again from a snapshot
    that counts no more derived events than remain (here the start), writes exactly the missing
    ones, and ends where a plain run does."""
    first, second = _halves(tmp_path)
    served_log = tmp_path / "served"
    cli("ingest", str(first), "--log", str(served_log))
    cli("ingest", str(second), "--log", str(served_log))
    cli("run", "--log", str(served_log), "--snapshot-every", "2500")
    with EventLog(served_log / "derived", derived=True, readonly=True) as derived:
        assert derived.next_seq > 1
    with FileLog(served_log / "derived", readonly=True) as derived_log:
        records = [payload for _, payload in derived_log.read()]
    for path in (served_log / "derived").iterdir():
        path.unlink()
    with FileLog(served_log / "derived") as out:
        out.append_many(records[:1])
    served = Served(["--log", str(served_log)], tmp_path / "serve.log")
    served.wait(lambda h: h["seq"] == 11_999 and h["status"] == "ok")
    assert served.stop() == 0
    assert "derived_behind_snapshot" in (tmp_path / "serve.log").read_text()
    _matches_a_plain_run(tmp_path, served_log)


@pytest.mark.slow
def test_a_killed_shadow_ends_the_session_and_the_service_recovers(tmp_path: Path) -> None:
    """The shadow is SIGKILLed: the session ends at once (`session_failed`), the next one starts
    from the newest snapshot with a new shadow, and the result is a plain run's."""
    first, second = _halves(tmp_path)
    served_log = tmp_path / "served"
    cli("ingest", str(first), "--log", str(served_log))
    served = Served(["--log", str(served_log), "--snapshot-every", "2500"], tmp_path / "serve.log")
    served.wait(lambda h: h["seq"] == 5_999)
    shadow = _shadow_of(served.proc.pid)
    os.kill(shadow, signal.SIGKILL)
    # a new shadow, not just none: between the old one's reaping and the new one's start there is none
    served.wait(lambda h: h["status"] == "ok" and _shadow_of(served.proc.pid) not in (None, shadow))
    assert '"session_failed"' in (tmp_path / "serve.log").read_text()
    cli("ingest", str(second), "--log", str(served_log))
    served.wait(lambda h: h["seq"] == 11_999)
    assert served.stop() == 0
    _matches_a_plain_run(tmp_path, served_log)


def _shadow_of(pid: int) -> int | None:
    """The service's shadow process (its one child), if running."""
    children = [
        int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()
    ]
    return children[0] if len(children) == 1 else None


def _matches_a_plain_run(tmp_path: Path, served_log: Path) -> None:
    """The served log's newest snapshot, derived events and verdict are those of `run` over a
    copy of its input."""
    plain = LogDir(tmp_path / "plain")
    shutil.copytree(served_log / "events", plain.events)
    result = run(plain)
    snap, _ = SnapshotStore(served_log / "state").latest()
    assert snap.seq == result.state.next_seq == 12_000
    reference, _ = SnapshotStore(plain.state).latest()
    assert (snap.digest, snap.chain, snap.derived_count) == (
        reference.digest,
        reference.chain,
        reference.derived_count,
    )
    assert (
        cli("events", "--log", str(served_log), "--derived").stdout
        == cli("events", "--log", str(plain.root), "--derived").stdout
    )
    verdict = json.loads(cli("replay", "verify", "--log", str(served_log), "--json").stdout)
    assert verdict["ok"] is True


@pytest.mark.slow
def test_serve_and_produce_say_what_is_missing(tmp_path: Path) -> None:
    result = cli("serve", check=False)
    assert result.returncode == 1 and "serve needs --log DIR" in result.stderr
    result = cli("serve", "--kafka", "127.0.0.1:1", check=False)
    assert result.returncode == 1 and "needs --topic and --state DIR" in result.stderr
    result = cli("produce", "--generate", "--topic", "t", check=False)
    assert result.returncode == 1 and "produce needs --kafka BOOTSTRAP and --topic TOPIC" in result.stderr
    result = cli("serve", "--log", str(tmp_path / "nothing"), check=False)
    assert result.returncode == 1 and "is not a log directory" in result.stderr


@pytest.mark.slow
def test_kafka_settings_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "kafka.json"
    good.write_text(
        json.dumps(
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": "u",
                "sasl_plain_password": "p",
            }
        )
    )
    config = KafkaConfig.load("broker:9093", str(good))
    assert config.client() == {
        "bootstrap_servers": "broker:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    bad = tmp_path / "bad.json"
    bad.write_text('{"sasl_password": "p"}')
    with pytest.raises(KafkaConfigError, match=r"unknown settings \['sasl_password'\]"):
        KafkaConfig.load("broker:9093", str(bad))
    bad.write_text("[1]")
    with pytest.raises(KafkaConfigError, match="expected a JSON object"):
        KafkaConfig.load("broker:9093", str(bad))
    for example in sorted((Path(__file__).parents[2] / "deploy" / "service").glob("kafka-*.example.json")):
        assert KafkaConfig.load("broker:9093", str(example)).options["security_protocol"] in ("SSL", "SASL_SSL")
    result = cli(
        "serve",
        "--kafka",
        "b:1",
        "--topic",
        "t",
        "--state",
        str(tmp_path / "s"),
        "--kafka-config",
        str(tmp_path / "missing.json"),
        check=False,
    )
    assert result.returncode == 1 and "cannot read Kafka settings" in result.stderr


@pytest.mark.slow
def test_serve_says_when_its_port_is_taken(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    cli("ingest", str(tmp_path / "empty.jsonl"), "--log", str(tmp_path / "log"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--log", str(tmp_path / "log"), "--port", str(port), check=False)
    assert result.returncode == 1
    assert f"clearinghouse: error: cannot serve HTTP on 127.0.0.1:{port}: " in result.stderr
    assert "address already in use" in result.stderr.lower() and "Traceback" not in result.stderr


# ---- a batch's output, written before the batch ends (in process) -------------------------------


class _Sink:
    """Records each write that carries anything (first derived seq, derived events, dead-letter
    offsets, and the engine's next seq when it was asked), as the real sinks skip empty ones."""

    description = "recording"

    def __init__(self, state: State) -> None:
        self.state = state
        self.writes: list[tuple[int, list[Any], list[int], int]] = []
        self.flushed: list[int] = []  # the engine's next seq at each flush

    async def write(self, derived: list[Any], first_seq: int, dead: list[tuple[Record, str]]) -> None:
        if derived or dead:
            self.writes.append((first_seq, derived, [record.offset for record, _ in dead], self.state.next_seq))

    async def flush(self) -> None:
        self.flushed.append(self.state.next_seq)


def _batch() -> list[Record]:
    """Seven records: a rejected withdrawal (seq 0), 50 deposits, a garbage record, a rejected
    withdrawal (seq 51), 50 deposits, a rejected withdrawal (seq 102), 50 deposits."""
    rejected = [ev.Withdraw(account="nobody", amount=1)]
    deposits = [ev.Deposit(account=f"a{i}", amount=10**6) for i in range(50)]
    blocks = [
        encode_block(rejected, 0),
        encode_block(deposits, 1),
        b"garbage",
        encode_block(rejected, 51),
        encode_block(deposits, 52),
        encode_block(rejected, 102),
        encode_block(deposits, 103),
    ]
    return [Record(offset, value) for offset, value in enumerate(blocks)]


DEFAULT_SETTINGS = Settings()  # frozen: safe as a shared default


def _applied(
    tmp_path: Path, records: list[Record], resume: Resume, settings: Settings = DEFAULT_SETTINGS
) -> tuple[Service, _Sink, Saved | None]:
    """`records` applied as one batch by a fresh file-log service with its shadow, then the
    shadow closed: the service, what its output got, and the snapshot the shadow's close
    published (if one was staged)."""
    home = LogDir(tmp_path / "home")
    service = file_service(home, settings)
    sink = _Sink(service.engine.state)

    async def apply() -> Saved | None:
        fix_settings(home, service.fixed)
        shadow = Shadow(SnapshotStore(home.state))
        await shadow.start(home, 0, settings.snapshot_every)
        await service._apply(records, service.at, sink, resume, 0, shadow)
        return await shadow.close()

    return service, sink, asyncio.run(apply())


def _apply(tmp_path: Path, resume: Resume) -> tuple[list[tuple[int, list[int], list[int], int]], int]:
    """Applies `_batch()` in a fresh file-log service: (writes with the seqs of the rejections,
    the derived count after it)."""
    service, sink, saved = _applied(tmp_path, _batch(), resume)
    assert saved is None
    assert service.engine.state.next_seq == 153
    writes = [
        (first, [event.seq for event in derived if isinstance(event, ev.Rejected)], dead, at)
        for first, derived, dead, at in sink.writes
    ]
    for _, derived, _, _ in sink.writes:
        assert all(isinstance(event, ev.Rejected) for event in derived)
    return writes, service.at.derived_count


def test_a_long_batch_writes_its_output_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "FLUSH_AFTER", 0.0)  # every record that made output
    writes, derived = _apply(tmp_path, Resume(0, 0, "test"))
    assert writes == [(0, [0], [], 1), (1, [], [2], 51), (1, [51], [], 52), (2, [102], [], 103)]
    assert derived == 3


def test_a_short_batch_writes_its_output_once_at_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "FLUSH_AFTER", 3600.0)
    writes, derived = _apply(tmp_path, Resume(0, 0, "test"))
    assert writes == [(0, [0, 51, 102], [2], 153)]
    assert derived == 3


def test_a_restart_skips_what_is_out_across_early_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "FLUSH_AFTER", 0.0)
    # The output holds two derived events the snapshot (at seq 0) does not count: both are skipped,
    # the third goes out with its own derived seq.
    writes, derived = _apply(tmp_path, Resume(2, 0, "test"))
    assert writes == [(1, [], [2], 51), (2, [102], [], 103)]
    assert derived == 3


def test_a_liquidation_is_written_at_once_unless_a_write_just_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the time rule out of the way (`FLUSH_AFTER` an hour): the record whose tick
    liquidates victim A (deposit 10, long 1 VICT at 100, maintenance 1%: liquidated below
    90/0.99 = 90.91) is written right after it; the next tick's liquidation of B (deposit 20:
    below 80/0.99 = 80.81) comes less than `FLUSH_AFTER` after that write, so it goes out with
    the rest of the batch (a rejected withdrawal) at its end."""
    monkeypatch.setattr(service_module, "FLUSH_AFTER", 3600.0)
    px, usd = 10**8, 10**6
    setup = [
        ev.Market(coin="VICT", sz_decimals=2, margin_tiers=[ev.MarginTier(lower_bound=0, max_leverage=50)]),
        ev.Prices(prices={"VICT": ev.PricePoint(mark=100 * px)}),
        ev.Deposit(account="mm", amount=10_000_000 * usd),
        ev.Deposit(account="a", amount=10 * usd),
        ev.Deposit(account="b", amount=20 * usd),
        ev.Trade(coin="VICT", px=100 * px, sz=px, buyer="a", seller="mm"),
        ev.Trade(coin="VICT", px=100 * px, sz=px, buyer="b", seller="mm"),
    ]
    blocks = [
        setup,
        [ev.Prices(prices={"VICT": ev.PricePoint(mark=90 * px)})],
        [ev.Prices(prices={"VICT": ev.PricePoint(mark=80 * px)})],
        [ev.Withdraw(account="nobody", amount=1)],
    ]
    records, seq = [], 0
    for block in blocks:
        records.append(Record(len(records), encode_block(block, seq)))
        seq += len(block)
    _, sink, _ = _applied(tmp_path, records, Resume(0, 0, "test"))
    liquidated = [
        [(e.account, e.cause) for e in derived if isinstance(e, ev.LiquidationTriggered)]
        for _, derived, _, _ in sink.writes
    ]
    assert [at for *_, at in sink.writes] == [8, 10]  # after seq 7 (the first tick), then at the end
    assert sink.writes[1][0] == len(sink.writes[0][1])
    assert liquidated == [[("a", 7)], [("b", 8)]]
    assert type(sink.writes[1][1][-1]) is ev.Rejected


def test_a_checkpoint_landing_in_the_same_batch_waits_for_the_shadows_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both every 100 events: the record of seqs 52-101 takes the checkpoint at 101, and the one
    ending at 152 (>= 101 + 50) lands it in the same batch, so the service sends the shadow the
    records so far and waits for the digest it hashes. The shadow staged the snapshot at 101 too
    (one encoding), published once the output is written; the file is the in-loop save of the
    position after record 4."""
    monkeypatch.setattr(service_module, "FLUSH_AFTER", 3600.0)
    _, sink, saved = _applied(
        tmp_path, _batch(), Resume(0, 0, "test"), Settings(snapshot_every=100, checkpoint_every=100)
    )
    assert saved == Saved(101, 5)
    assert [
        (first, [type(event).__name__ for event in derived], dead, at) for first, derived, dead, at in sink.writes
    ] == [
        (0, ["Rejected", "Rejected", "Rejected", "Checkpoint"], [2], 153),
    ]
    reference = Engine()
    at = LogPosition(reference.state)
    for record in _batch()[:5]:  # the garbage record (offset 2) leaves the state as it is
        if record.value != b"garbage":
            step(
                reference, at, record.offset, decode_block_at(record.value).events, record.value, checkpoint_every=100
            )
    checkpoint = sink.writes[0][1][3]
    assert (checkpoint.seq, checkpoint.digest) == (101, state_digest(reference.state))
    in_loop = LogDir(tmp_path / "in-loop")
    save_position(SnapshotStore(in_loop.state), at, None)
    assert [path.read_bytes() for path in SnapshotStore(tmp_path / "home" / "state").paths()] == [
        path.read_bytes() for path in SnapshotStore(in_loop.state).paths()
    ]


def test_the_service_keeps_the_logs_checkpoint_interval(tmp_path: Path) -> None:
    """A service over a log takes the interval its first run fixed (its restarts count the
    derived events that interval placed) and refuses another at once, before it serves."""
    home = LogDir(tmp_path / "home")
    with EventLog(home.events) as events:
        events.append([ev.Deposit(account="a", amount=10**6)])
    run(home, checkpoint_every=700)
    assert file_service(home, Settings()).fixed == settings(home) == LogSettings(checkpoint_every=700)
    with pytest.raises(ConfigMismatch, match="was run with a checkpoint every 700 events"):
        file_service(home, Settings(checkpoint_every=100_000))
