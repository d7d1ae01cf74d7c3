"""`clearinghouse serve` on the embedded file log (no Kafka): tailing a log another process
appends to, graceful and hard stops, and the command's clear errors."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from clearinghouse.runner import LogDir, run
from events.generator import GeneratorConfig, generate, write_jsonl
from events.kafkalog import KafkaConfig, KafkaConfigError
from replay.snapshot import SnapshotStore
from served import Served

import pytest


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "clearinghouse.cli", "-q", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result


def _halves(tmp_path: Path) -> tuple[Path, Path]:
    events = [e for e in generate(GeneratorConfig(accounts=200, markets=3, events=12_000, seed=9, crash=True))]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_jsonl(iter(events[:6_000]), first)
    write_jsonl(iter(events[6_000:]), second)
    return first, second


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

    # The reference: the same events through `run` on a copy of the input log.
    plain = LogDir(tmp_path / "plain")
    shutil.copytree(served_log / "events", plain.events)
    result = run(plain)
    snap, _ = SnapshotStore(served_log / "state").latest()
    assert snap.seq == result.state.next_seq == 12_000
    reference, _ = SnapshotStore(plain.state).latest()
    assert (snap.digest, snap.chain, snap.derived_count) == (reference.digest, reference.chain, reference.derived_count)
    assert cli("events", "--log", str(served_log), "--derived").stdout == cli("events", "--log", str(plain.root), "--derived").stdout
    verdict = json.loads(cli("replay", "verify", "--log", str(served_log), "--json").stdout)
    assert verdict["ok"] is True


def test_serve_and_produce_say_what_is_missing(tmp_path: Path) -> None:
    result = cli("serve", check=False)
    assert result.returncode == 1 and "serve needs --log DIR" in result.stderr
    result = cli("serve", "--kafka", "127.0.0.1:1", check=False)
    assert result.returncode == 1 and "needs --topic and --state DIR" in result.stderr
    result = cli("produce", "--generate", "--topic", "t", check=False)
    assert result.returncode == 1 and "produce needs --kafka BOOTSTRAP and --topic TOPIC" in result.stderr
    result = cli("serve", "--log", str(tmp_path / "nothing"), check=False)
    assert result.returncode == 1 and "is not a log directory" in result.stderr


def test_kafka_settings_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "kafka.json"
    good.write_text(json.dumps({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u", "sasl_plain_password": "p"}))
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
    for example in sorted((Path(__file__).parent.parent / "deploy" / "service").glob("kafka-*.example.json")):
        assert KafkaConfig.load("broker:9093", str(example)).options["security_protocol"] in ("SSL", "SASL_SSL")
    result = cli("serve", "--kafka", "b:1", "--topic", "t", "--state", str(tmp_path / "s"), "--kafka-config", str(tmp_path / "missing.json"), check=False)
    assert result.returncode == 1 and "cannot read Kafka settings" in result.stderr


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
