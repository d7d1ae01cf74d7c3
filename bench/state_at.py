"""State at a point of history: nearest snapshot plus replay, against a replay from the start.

    python bench/state_at.py                  # 10,000,000 events, 100,000 accounts, 50 markets
    python bench/state_at.py --events 2000000 # a smaller log
    python bench/state_at.py --quick          # 500,000 events, 20,000 accounts
    python bench/state_at.py --log DIR        # keep the generated, run log in DIR; a later call reuses it

Writes a generated log, runs it once with a snapshot every `--snapshot-every` events (all kept),
then asks for the state at `--points` seeded random seqs with `replay.history.state_at` and
times each; three of the points (the quartiles; `--plain 1`: the median one) are also rebuilt
by a plain replay from the first event (a replay from the start of a long log takes minutes) and
must give the same digest. Last, the snapshot write and load time and size for a
state of 1,000,000 accounts with a position each (load: decoded whole and digest-checked, as
`run` does; lazy load: checksum only, accounts left to decode on use, as `state_at` does).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clearinghouse.digest import state_digest  # noqa: E402
from clearinghouse.edges.runner import run  # noqa: E402
from clearinghouse.engine import Engine  # noqa: E402
from clearinghouse.state import LiquidationConfig, State  # noqa: E402
from events import schema as ev  # noqa: E402
from events.eventlog import EventLog  # noqa: E402
from events.units import PX, SZ, USD  # noqa: E402
from replay.fold import LogPosition, fold  # noqa: E402
from replay.history import state_at  # noqa: E402
from replay.logdir import LogDir  # noqa: E402
from replay.snapshot import make_snapshot, read_snapshot, write_snapshot  # noqa: E402
from replay.workload import GeneratorConfig, generate  # noqa: E402


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def plain_replay(log: LogDir, seq: int, config: LiquidationConfig) -> str:
    engine = Engine(State(liquidation=config))
    fold(log, LogPosition(engine.state), engine, end_seq=seq + 1)
    return state_digest(engine.state)


def snapshot_million(tmp: Path) -> dict[str, float]:
    """A state of 1,000,000 accounts, each long BTC against one market maker."""
    engine = Engine(State(liquidation=LiquidationConfig(mode="off")))
    engine.apply(ev.Market(coin="BTC", sz_decimals=3, margin_tiers=[ev.MarginTier(0, 40)]))
    engine.apply(ev.Prices(prices={"BTC": ev.PricePoint(mark=100 * PX)}))
    engine.apply(ev.Deposit(account="mm", amount=10**12 * USD))
    for i in range(1_000_000):
        name = f"0x{i:040x}"
        engine.apply(ev.Deposit(account=name, amount=1_000 * USD))
        engine.apply(ev.Trade(coin="BTC", px=100 * PX, sz=(1 + i % 20) * SZ, buyer=name, seller="mm"))
    path = tmp / "million.snap"
    started = time.perf_counter()
    write_snapshot(path, make_snapshot(engine.state, 0))
    written = time.perf_counter() - started
    started = time.perf_counter()
    read_snapshot(path).load_state()
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    read_snapshot(path).load_state(check_digest=False, lazy=True)
    lazy = time.perf_counter() - started
    return {
        "write_s": round(written, 2),
        "load_s": round(loaded, 2),
        "lazy_load_s": round(lazy, 2),
        "bytes": path.stat().st_size,
    }


def prepare(log: LogDir, args: argparse.Namespace, config: LiquidationConfig) -> None:
    """Generates the log unless it is there."""
    if log.exists():
        return
    started = time.perf_counter()
    with EventLog(log.events) as out:
        block: list = []
        for event in generate(
            GeneratorConfig(accounts=args.accounts, markets=args.markets, events=args.events, seed=3)
        ):
            block.append(event)
            if len(block) == 1000:
                out.append(block)
                block = []
                if out.next_seq % 1_000_000 == 0:
                    say(f"  generated {out.next_seq:,}")
        out.append(block)
    say(f"generated {args.events:,} events in {time.perf_counter() - started:.0f}s")


def run_log(log: LogDir, args: argparse.Namespace, config: LiquidationConfig) -> None:
    """Runs the log with a snapshot every `--snapshot-every` events; on a log run before, only
    what is left (a run stopped half way resumes from its last snapshot)."""
    started = time.perf_counter()
    run(log, snapshot_every=args.snapshot_every, keep=0, liquidation=config)
    full_run = time.perf_counter() - started
    say(f"ran the log with snapshots every {args.snapshot_every:,} events in {full_run:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--snapshot-every", type=int, default=50_000)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--liquidation", choices=["mark", "off"], default="mark")
    parser.add_argument("--skip-million", action="store_true", help="leave out the 1,000,000-account snapshot figures")
    parser.add_argument(
        "--log",
        type=Path,
        help="where the generated log is kept (reused when it is already there, generated and run once)",
    )
    parser.add_argument(
        "--plain",
        type=int,
        choices=[1, 3],
        default=3,
        help="points also replayed from the start: the median one, or the three quartiles",
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.accounts = 500_000, 20_000
    config = LiquidationConfig(mode=args.liquidation)
    with tempfile.TemporaryDirectory(prefix="bench-state-at-") as tmp:
        log = LogDir(args.log or Path(tmp) / "log")
        prepare(log, args, config)
        run_log(log, args, config)
        rng = random.Random(11)
        points = sorted(rng.randrange(args.events) for _ in range(args.points))
        at_times, digests = [], {}
        for seq in points:
            started = time.perf_counter()
            state = state_at(log, seq=seq)
            at_times.append(time.perf_counter() - started)
            digests[seq] = state_digest(state)
            say(f"  state at {seq:,}: {at_times[-1]:.3f}s")
        quartiles = [points[len(points) // 4], points[len(points) // 2], points[3 * len(points) // 4]]
        checked = quartiles if args.plain == 3 else quartiles[1:2]
        plain_times = []
        for seq in checked:
            started = time.perf_counter()
            assert plain_replay(log, seq, config) == digests[seq], f"state at {seq} differs from a plain replay"
            plain_times.append(time.perf_counter() - started)
            say(f"  plain replay to {seq:,}: {plain_times[-1]:.1f}s")
        at_median = statistics.median(at_times)
        plain_median = statistics.median(plain_times)
        at_checked = statistics.median(at_times[points.index(s)] for s in checked)
        print(
            f"command: python bench/state_at.py --events {args.events} --accounts {args.accounts} --snapshot-every "
            f"{args.snapshot_every} --liquidation {args.liquidation}"
        )
        print(f"machine: {platform.machine()} python {platform.python_version()}, 2 shared cores")
        print(f"state_at over {len(points)} points: median {at_median:.3f}s, max {max(at_times):.3f}s")
        print(
            f"plain replay from the start over {len(checked)} of them: median {plain_median:.1f}s; state_at on the "
            f"same points: median {at_checked:.3f}s"
        )
        print(f"speed-up (same points): {plain_median / at_checked:.0f}x")
        if not args.skip_million:
            print(f"snapshot of 1,000,000 accounts: {snapshot_million(Path(tmp))}")


if __name__ == "__main__":
    main()
