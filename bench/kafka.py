"""Kafka: sustained throughput through the service, and tick-to-liquidation latency.

    python bench/kafka.py            # 400,000 events / 20,000 accounts; latency for 60 s at 10,000 ev/s
    python bench/kafka.py --quick    # 100,000 events; latency for 15 s

Starts its own broker (deploy/kafka/broker.py, data in bench/out/kafka-broker) and runs the
service as users do (`clearinghouse serve` in a subprocess, liquidation on in mark mode).

1. Throughput: a generated stream is written to a file log; `clearinghouse run` replays it (the
   file-log rate); `clearinghouse produce --log` copies it into a topic; `clearinghouse serve`
   consumes it, applies it and writes the derived events to the derived topic in transactions.
   The service rate is taken between 10% and 100% of the stream from its /health, so process
   start-up is left out. Reported: both rates and their ratio (target: at least 0.5).
2. Latency: a fresh service on a fresh topic; a market VICT where 1,000 accounts hold one long
   each, their liquidation prices 0.0505 apart; then a generated background stream is published
   at 10,000 events/s in records of 100 events, and every 20th record is a price tick of VICT that
   crosses exactly one more account's liquidation price. Latency: from just before the tick is
   sent to the moment this process reads the `liquidation_triggered` it caused from the derived
   topic (read_committed, so after the service's transaction commit). Reported: p50, p99, max,
   the machine's load average (1 min) before and after the timed phase, and the ticks over 50 ms
   besides the first (which pays the service's first transaction with a partition in it), with
   how many of them fall in the 5,000 events after a checkpoint (where the service used to fork;
   its shadow process takes the checkpoints now); the JSON lists each (`slow_ticks`: seq, ms,
   ms since the timed phase began).

    python bench/kafka.py --quick --latency-only --half-speed

`--half-speed` emulates a host at half speed: the service (and its shadow process, which
inherits the affinity) is pinned to CPU 0 with `taskset`, beside a busy loop pinned there too, so
the scheduler gives it at most half of one core; this process and the broker run on CPU 1.

    python bench/kafka.py --offline  # no broker: the latency phase's stream through replay.fold.step

`--offline` replays the latency phase's records (setup, background and ticks) through the step
the service runs, in this process, and prints the slowest records with what they derived: what
a tick can wait behind on the service's loop (a checkpoint's digest there is hashed in line, as
`clearinghouse run` does; the service's shadow process hashes it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from clearinghouse.engine import Engine  # noqa: E402
from clearinghouse.state import LiquidationConfig, State  # noqa: E402
from events import schema as ev  # noqa: E402
from events.codec import decode_block_at, decode_derived_block_at, encode_block  # noqa: E402
from events.eventlog import EventLog, blocks_of  # noqa: E402
from replay.fold import LogPosition, step  # noqa: E402
from replay.workload import GeneratorConfig, generate  # noqa: E402

OUT = ROOT / "bench" / "out"
BLOCK = 1000
VICTIMS = 1000
PX = 10**8  # price and size scales of the schema (1e-8)
USD = 10**6
CHECKPOINT_EVERY = 100_000  # the service's default


def _broker() -> Any:
    spec = importlib.util.spec_from_file_location("kafka_broker", ROOT / "deploy" / "kafka" / "broker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "clearinghouse", "-q", *args], capture_output=True, text=True, cwd=ROOT
    )
    if result.returncode != 0:
        raise SystemExit(f"clearinghouse {args[0]} failed: {result.stderr}")
    return result.stdout


PINNED = ["taskset", "-c", "0"]  # `--half-speed`: the service's CPU, shared with `hog`


def hog() -> subprocess.Popen[bytes]:
    """A busy loop on the service's CPU: the service gets about half of it."""
    return subprocess.Popen([*PINNED, sys.executable, "-c", "while True: pass"])


class Service:
    """`clearinghouse serve` in a subprocess, watched through /health."""

    def __init__(self, bootstrap: str, topic: str, state: Path, pinned: bool = False) -> None:
        self.logs = state.parent / f"{state.name}.log"
        self.proc = subprocess.Popen(
            [
                *(PINNED if pinned else []),
                sys.executable,
                "-m",
                "clearinghouse",
                "-q",
                "serve",
                "--kafka",
                bootstrap,
                "--topic",
                topic,
                "--state",
                str(state),
                "--port",
                "0",
            ],
            stderr=open(self.logs, "wb"),
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        self.port = 0
        while not self.port:
            for line in self.logs.read_text().splitlines():
                if '"http_listening"' in line:
                    self.port = json.loads(line)["port"]
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited: {self.logs.read_text()}")
            time.sleep(0.05)

    def seq(self) -> int:
        """The last applied seq (-1 while starting: /health answers 503 until the session runs)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=30) as response:
                return json.loads(response.read())["seq"]
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())["seq"]

    def histograms(self) -> dict[str, dict[str, int]]:
        """Cumulative bucket counts of the service's latency histograms, from /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as response:
            text = response.read().decode()
        found: dict[str, dict[str, int]] = {}
        for line in text.splitlines():
            if "_seconds_bucket{" in line:
                name = line.split("_bucket{")[0].removeprefix("clearinghouse_")
                le = line.split('le="')[1].split('"')[0]
                found.setdefault(name, {})[le] = int(float(line.rsplit(" ", 1)[1]))
        return found

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)


def throughput(bootstrap: str, events: int, accounts: int, work: Path) -> dict[str, Any]:
    log = work / "log"
    with EventLog(log / "events") as out:
        out.append_blocks(
            blocks_of(generate(GeneratorConfig(accounts=accounts, markets=20, events=events, seed=3)), BLOCK)
        )
    print(f"  file log written: {events:,} events", flush=True)
    file_rate = json.loads(cli("run", "--log", str(log), "--json"))["events_per_second"]
    print(f"  file-log replay (clearinghouse run): {file_rate:,} ev/s", flush=True)
    cli("produce", "--kafka", bootstrap, "--topic", "bench-throughput", "--log", str(log))
    service = Service(bootstrap, "bench-throughput", work / "state-throughput")
    try:
        first = events // 10
        while service.seq() < first:
            time.sleep(0.01)
        started, at = time.perf_counter(), service.seq()
        while (seq := service.seq()) < events - 1:
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    finally:
        service.stop()
    kafka_rate = round((seq - at) / seconds)
    print(f"  topic -> service -> derived topic: {kafka_rate:,} ev/s", flush=True)
    return {
        "events": events,
        "accounts": accounts,
        "file_log_events_per_s": file_rate,
        "kafka_events_per_s": kafka_rate,
        "ratio": round(kafka_rate / file_rate, 3),
    }


def _victims() -> tuple[list[Any], list[int]]:
    """VICT listed at 100 with max leverage 50 (maintenance 1% of notional); account i deposits
    10 + 0.05 i USDC and buys 1 VICT at 100 from a market maker. Its account value
    d + mark - 100 falls below 0.01 mark when mark < (100 - d) / 0.99, so tick j (on the 1e-4
    price tick, 0.02 under account j's price) liquidates exactly account j."""
    setup: list[Any] = [
        ev.Market(coin="VICT", sz_decimals=2, margin_tiers=[ev.MarginTier(lower_bound=0, max_leverage=50)]),
        ev.Prices(prices={"VICT": ev.PricePoint(mark=100 * PX)}),
        ev.Deposit(account="mm", amount=10_000_000 * USD),
    ]
    ticks = []
    for i in range(VICTIMS):
        deposit = 10 * USD + i * 50_000  # 10 + 0.05 i USDC
        setup.append(ev.Deposit(account=f"victim{i:04d}", amount=deposit))
        setup.append(ev.Trade(coin="VICT", px=100 * PX, sz=PX, buyer=f"victim{i:04d}", seller="mm"))
        liq = (100 * USD - deposit) * PX * 100 // (99 * USD)  # (100 - d) / 0.99 in 1e-8, rounded down
        tick = (liq - 2 * PX // 100) // 10_000 * 10_000  # 0.02 below, down to the 1e-4 tick
        ticks.append(tick)
    return setup, ticks


def _schedule(seq: int, events: int, ticks: list[int]) -> list[tuple[bytes, int, int | None]]:
    """The timed phase, encoded beforehand: (record, events in it, seq of the tick or None).
    Background records of 100 generated events; after every 20th, one VICT tick."""
    body = generate(GeneratorConfig(accounts=10_000, markets=10, events=events, seed=4))
    schedule: list[tuple[bytes, int, int | None]] = []
    for n, block in enumerate(blocks_of(body, 100)):
        schedule.append((encode_block(block, seq), len(block), None))
        seq += len(block)
        if n % 20 == 19 and n // 20 < len(ticks):
            schedule.append(
                (encode_block([ev.Prices(prices={"VICT": ev.PricePoint(mark=ticks[n // 20])})], seq), 1, seq)
            )
            seq += 1
    return schedule


def offline(seconds: int, rate: int, slowest: int = 12) -> dict[str, Any]:
    """The latency phase's records applied one by one (checkpoints every 100,000 events, as the
    service's default): the time of each, the slowest listed."""
    setup, ticks = _victims()
    engine = Engine(State(liquidation=LiquidationConfig()))
    at = LogPosition(engine.state)
    for block in blocks_of(setup, BLOCK):
        step(engine, at, 0, block, None, checkpoint_every=CHECKPOINT_EVERY)
    timed = []
    gc.collect()
    gc.freeze()  # as the service does once its state is loaded
    cpu = time.process_time()
    for offset, (payload, _, _) in enumerate(_schedule(engine.state.next_seq, seconds * rate, ticks)):
        events = decode_block_at(payload).events
        first = engine.state.next_seq
        started = time.perf_counter()
        out = step(engine, at, offset, events, payload, checkpoint_every=CHECKPOINT_EVERY)
        took = (time.perf_counter() - started) * 1000
        kinds = sorted({type(e).__name__ for e in out})
        if at.pending is not None and at.pending.seq == engine.state.next_seq - 1:
            kinds.append("(checkpoint taken)")
        timed.append((took, f"seq {first}-{engine.state.next_seq - 1}", kinds))
    cpu = time.process_time() - cpu
    ms = sorted(t for t, _, _ in timed)
    result = {
        "records": len(timed),
        "cpu_s": round(cpu, 2),
        "p50_ms": round(ms[len(ms) // 2], 2),
        "p99_ms": round(ms[int(0.99 * len(ms))], 2),
        "slowest": [
            {"ms": round(t, 2), "record": what, "derived": kinds}
            for t, what, kinds in sorted(timed, reverse=True)[:slowest]
        ],
    }
    print(
        f"  {len(timed):,} records, {cpu:.1f} s of CPU; per record p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms; slowest:",
        flush=True,
    )
    for row in result["slowest"]:
        print(f"    {row['ms']:7.2f} ms  {row['record']}  {' '.join(row['derived']) or '-'}", flush=True)
    return result


async def latency(bootstrap: str, seconds: int, rate: int, work: Path, pinned: bool) -> dict[str, Any]:
    topic = "bench-latency"
    service = Service(bootstrap, topic, work / "state-latency", pinned)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, max_request_size=4 * 1024 * 1024)
    consumer = AIOKafkaConsumer(
        f"{topic}.derived",
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
    )
    await producer.start()
    await consumer.start()
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    try:
        setup, ticks = _victims()
        seq = 0
        for block in blocks_of(setup, BLOCK):
            await producer.send_and_wait(topic, encode_block(block, seq), partition=0)
            seq += len(block)
        schedule = _schedule(seq, seconds * rate, ticks)
        while service.seq() < seq - 1:
            await asyncio.sleep(0.05)
        print(f"  {VICTIMS} accounts set up; publishing {rate:,} ev/s for {seconds} s", flush=True)

        async def read() -> None:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        for event in decode_derived_block_at(record.value).events:
                            if isinstance(event, ev.LiquidationTriggered) and event.cause in sent:
                                seen.setdefault(event.cause, now)

        # Only bytes from here on: this process's own collector must not stall the clock.
        gc.collect()
        gc.freeze()
        reader = asyncio.create_task(read())
        load_before = os.getloadavg()
        started = time.perf_counter()
        published = 0
        for payload, count, tick_seq in schedule:
            if tick_seq is None:
                due = started + published / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                published += count
            else:
                sent[tick_seq] = time.perf_counter()
            await producer.send(topic, payload, partition=0)
        achieved = published / (time.perf_counter() - started)
        load_after = os.getloadavg()
        deadline = time.perf_counter() + 30
        while len(seen) < len(sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        reader.cancel()
        histograms = service.histograms()
    finally:
        await producer.stop()
        await consumer.stop()
        service.stop()
    latencies = {s: (seen[s] - sent[s]) * 1000 for s in seen}
    samples = sorted(latencies.values())
    if not samples:
        raise SystemExit("no liquidation seen: check the service log")
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    slow = [s for s, ms in latencies.items() if ms > 50 and s != min(sent)]
    near = [s for s in slow if s % CHECKPOINT_EVERY < 5_000]
    result = {
        "rate_target": rate,
        "rate_achieved": round(achieved),
        "ticks": len(sent),
        "liquidations_seen": len(samples),
        "p50_ms": round(p(0.50), 2),
        "p99_ms": round(p(0.99), 2),
        "max_ms": round(samples[-1], 2),
        "over_50_ms": len(slow),
        "over_50_ms_after_checkpoint": len(near),
        "slow_ticks": [[seq, round(latencies[seq], 1), round((sent[seq] - started) * 1000)] for seq in sorted(slow)],
        "load_before": load_before,
        "load_after": load_after,
        "service_histograms": histograms,
    }
    print(
        f"  tick -> liquidation_triggered: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max "
        f"{result['max_ms']} ms over {len(samples)} ticks; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after ({os.cpu_count()} cores)",
        flush=True,
    )
    print(
        f"  over 50 ms besides the first tick: {len(slow)}, of them {len(near)} "
        "within 5,000 events after a checkpoint",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput part")
    parser.add_argument(
        "--half-speed", action="store_true", help="the service on CPU 0 beside a busy loop (latency phase)"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="no broker: time each record of the latency stream through replay.fold.step",
    )
    args = parser.parse_args()
    events = args.events or (100_000 if args.quick else 400_000)
    seconds = args.seconds or (15 if args.quick else 60)
    if args.offline:
        print("offline replay of the latency stream", flush=True)
        print(json.dumps(offline(seconds, args.rate), indent=2))
        return
    if args.half_speed:
        os.sched_setaffinity(0, {1})  # this process and the broker it starts keep off the service's CPU
    work = OUT / "kafka-bench"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    broker = _broker()
    data = OUT / "kafka-broker"
    subprocess.run(["rm", "-rf", str(data)], check=True)
    print("starting a broker", flush=True)
    bootstrap = broker.start(data)
    try:
        through = None
        if not args.latency_only:
            print("throughput", flush=True)
            through = throughput(bootstrap, events, args.accounts, work)
        print("latency", flush=True)
        busy = hog() if args.half_speed else None
        try:
            lat = asyncio.run(latency(bootstrap, seconds, args.rate, work, args.half_speed))
        finally:
            if busy is not None:
                busy.kill()
    finally:
        broker.stop(data)
    result = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "throughput": through,
        "latency": lat,
        "half_speed": args.half_speed,
    }
    (OUT / "kafka.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
