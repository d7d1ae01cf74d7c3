"""Replay throughput: decode-only against the full engine, over the same file log, in one run.

    python bench/replay.py            # 1,000,000 events, 100,000 accounts, 50 markets
    python bench/replay.py --quick    # 100,000 events, 10,000 accounts, 20 markets

Reports decode-only events/s (read the file log, decode every block); engine events/s (the
same plus `Engine.apply` on every event, liquidation off: the margin engine, every ledger,
position, entry, open interest and funding index current after each event), their ratio and
the apply-only rate the two imply; engine events/s with liquidation on (mark mode: the accounts
each event may have pushed below maintenance are found through the trigger index and checked);
and the memory per account (tracemalloc, in separate passes so it does not slow the timed
ones), of the state alone and of state plus trigger index. The machine is
shared and noisy: compare the ratio, which both passes share, more than the absolute rates.

The same run then replays a crash stream of the same size (`GeneratorConfig(crash=True)`: every
market falls 26%-45% in two minutes and wins back about half, with thousands of accounts
liquidated at 100,000 accounts) through the engine with liquidation in its default mark mode and
with liquidation off, and counts what it derived: `crash_liquidations` is the number of
`liquidation_triggered` events, `crash_liquidated_accounts` the accounts they name.

Every stream runs at the venue's tempo: event time advances by a uniform step of 1 to
`--max-step-ms` (default 59, a mean of 30 ms: about 33 events a second, so with a quarter of the
events ticking about two markets each, each of the 50 markets' oracles ticks about every 3 s, as
Hyperliquid's validators publish them). The tempo sets how many events
share each hour's work (funding, the pools' interest, the PM accounts' settlement with the pool):
`--max-step-ms 300` (the generator's default, a mean of 150 ms, 36 hours in 1,000,000 events)
gives the sparse stream of the earlier sessions' figures, about five times the hours per event.
`--quick`'s 100,000 events span under an hour at the venue's tempo: no hour boundary passes, so
its PM stream never settles with the pool (add `--max-step-ms 300` for a few hours).

Last, a stream of the same size with `--pm-share` (default 20%) of the accounts in portfolio
margin (`GeneratorConfig(pm_share=...)`: spot collateral, carry trades, spot buys on borrowed
USDC, a tenth of the trades spot) through the engine with liquidation off and on; `pm_over_plain`
and `pm_liquidation_over_plain` compare them with the plain stream's rates of the same run.

`--repeat N` runs each pass those ratios compare (decode, engine off and on, PM off and on) N
times and keeps the fastest of each (all N must reach the same state digest); the passes a ratio
compares run in turns (decode, off, PM off, decode, ...; then on, PM on, on, ...), so that the
machine's drift over minutes falls on both sides of it. Every pass runs in a fresh interpreter,
so none inherits the heap of the logs' generation or of an earlier pass.

With the PM stream, `--risk` (on by default; `--no-risk` skips it) replays the same PM stream with
the accounts it puts in portfolio margin switched to the risk model instead (the backtest
configuration `{"model": "risk", "accounts": "portfolio"}`: their `set_mode` rewritten by
`replay.backtest.stream.Rewriter`), liquidation on, in turns with the other liquidation-on
passes: `risk_over_plain` is the perp-only stream's time over the risk stream's (target: 0.7 or
more, as for portfolio margin), `risk_over_pm` the PM stream's over the risk stream's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import platform
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clearinghouse.digest import state_digest  # noqa: E402
from clearinghouse.engine import Engine  # noqa: E402
from clearinghouse.state import LiquidationConfig, State  # noqa: E402
from events.eventlog import EventLog  # noqa: E402
from events.schema import LiquidationTriggered, event_type  # noqa: E402
from replay.backtest.config import Plan  # noqa: E402
from replay.backtest.stream import Rewriter  # noqa: E402
from replay.workload import GeneratorConfig, generate  # noqa: E402

BLOCK = 1000
R = TypeVar("R")
OFF = LiquidationConfig(mode="off")
ON = LiquidationConfig()


def write_log(path: Path, config: GeneratorConfig) -> None:
    with EventLog(path) as log:
        block = []
        for event in generate(config):
            block.append(event)
            if len(block) == BLOCK:
                log.append(block)
                block = []
        log.append(block)


def write_risk_log(path: Path, source: Path) -> None:
    """The log at `source` with the accounts it puts in portfolio margin switched to the risk model
    (as the backtest configuration `{"model": "risk", "accounts": "portfolio"}` replays it)."""
    rewriter = Rewriter(Plan("risk", ON, 0, model="risk", accounts="portfolio"))
    with EventLog(source, readonly=True) as log, EventLog(path) as out:
        for _, events in log.blocks():
            out.append(rewriter.block(events))


@dataclasses.dataclass(frozen=True)
class Pass:
    """What one engine pass reports: its seconds, derived events by type, the accounts it
    liquidated, and facts about the final state (read in the pass's own process)."""

    seconds: float
    kinds: Counter[str]
    liquidated: int
    facts: dict[str, Any]


def engine_pass(path: Path, liquidation: LiquidationConfig) -> Pass:
    """Reads, decodes and applies every event with the given liquidation settings."""
    engine = Engine(State(liquidation=liquidation))
    apply = engine.apply
    kinds: Counter[str] = Counter()
    liquidated: set[str] = set()
    started = time.perf_counter()
    with EventLog(path, readonly=True) as log:
        for _, events in log.blocks():
            for event in events:
                derived = apply(event)
                if derived:
                    for d in derived:
                        kinds[event_type(d)] += 1
                        if type(d) is LiquidationTriggered:
                            liquidated.add(d.account)
    seconds = time.perf_counter() - started
    return Pass(seconds, kinds, len(liquidated), facts(engine.state))


def decode_pass(path: Path) -> Pass:
    """Reads and decodes every block, applying nothing."""
    started = time.perf_counter()
    count = 0
    with EventLog(path, readonly=True) as log:
        for _, events in log.blocks():
            count += len(events)
    return Pass(time.perf_counter() - started, Counter(), 0, {"events": count})


def facts(state: State) -> dict[str, Any]:
    """The final state's figures the report shows (the pool's only when there is one)."""
    from clearinghouse import lending

    pool = state.pools.get("USDC")
    util, borrow_apy, _ = lending.rates(pool, state.pm_rules) if pool else (0, 0, 0)
    return {
        "events": state.next_seq,
        "time": state.time,
        "accounts": len(state.accounts),
        "markets": len(state.markets),
        "pm_accounts": sum(1 for s in state.spot.values() if s.mode == "portfolio"),
        "risk_accounts": sum(1 for s in state.spot.values() if s.mode == "risk"),
        "usdc_utilisation": util,
        "usdc_borrow_apy": borrow_apy,
        "digest": state_digest(state),
    }


def fresh(run: Callable[..., R], *args: Any) -> R:
    """`run(*args)` in a new interpreter. Each timed pass starts from the same clean process:
    run in this one, a pass would inherit the heap the log's generation and the earlier passes
    left (gigabytes at full size), and the later passes (the PM stream's) would pay for it."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run, *args).result()


def rounds(repeat: int, passes: dict[str, tuple[Callable[..., Pass], tuple[Any, ...]]]) -> dict[str, Pass]:
    """Each named pass `repeat` times, in turns (a, b, a, b, ...), each in its own process, and
    the fastest run of each: on a shared machine the least disturbed run is the nearest to the
    code's own speed, and passes that a ratio compares run side by side in time (this machine's
    speed drifts by tens of percent over minutes, more than between neighbouring runs). Every
    run of a pass must reach the same state."""
    runs: dict[str, list[Pass]] = {label: [] for label in passes}
    for turn in range(1, repeat + 1):
        for label, (run, args) in passes.items():
            done = fresh(run, *args)
            runs[label].append(done)
            print(f"turn {turn}/{repeat} {label}: {done.seconds:.2f}s", file=sys.stderr)
    for label, done in runs.items():
        if len({p.facts.get("digest") for p in done}) != 1:
            raise SystemExit(f"the runs of {label} reached different states: {[p.facts['digest'] for p in done]}")
    return {label: min(done, key=lambda p: p.seconds) for label, done in runs.items()}


def memory_pass(path: Path, liquidation: LiquidationConfig) -> tuple[int, int]:
    """(bytes the final engine holds, peak bytes during the run), measured by tracemalloc."""
    tracemalloc.start()
    engine = Engine(State(liquidation=liquidation))
    with EventLog(path, readonly=True) as log:
        for _, events in log.blocks():
            for event in events:
                engine.apply(event)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held, peak


def pm_report(share: float, off: Pass, on: Pass, plain_off: Pass, plain_on: Pass) -> dict[str, object]:
    """The PM stream's figures, against the plain stream's rates."""
    count = off.facts["events"]
    return {
        "pm_share": share,
        "pm_accounts": off.facts["pm_accounts"],
        "pm_engine_events_per_s": round(count / off.seconds),
        "pm_over_plain": round(plain_off.seconds / off.seconds, 3),
        "pm_engine_liquidation_events_per_s": round(count / on.seconds),
        "pm_liquidation_over_plain": round(plain_on.seconds / on.seconds, 3),
        "pm_rejected": off.kinds["rejected"],
        "pm_usdc_utilisation": f"{off.facts['usdc_utilisation'] / 10**12:.4f}",
        "pm_usdc_borrow_apy": f"{off.facts['usdc_borrow_apy'] / 10**12:.4f}",
        "pm_borrow_liquidations": on.kinds["borrow_liquidation"],
        "pm_liquidations": on.kinds["liquidation_triggered"],
        "pm_digest": off.facts["digest"],
        "pm_liquidation_digest": on.facts["digest"],
    }


def risk_report(on: Pass, pm_on: Pass, plain_on: Pass) -> dict[str, object]:
    """The risk stream's figures (liquidation on), against the perp-only and PM streams'."""
    count = on.facts["events"]
    return {
        "risk_accounts": on.facts["risk_accounts"],
        "risk_engine_liquidation_events_per_s": round(count / on.seconds),
        "risk_over_plain": round(plain_on.seconds / on.seconds, 3),
        "risk_over_pm": round(pm_on.seconds / on.seconds, 3),
        "risk_rejected": on.kinds["rejected"],
        "risk_liquidations": on.kinds["liquidation_triggered"],
        "risk_liquidation_digest": on.facts["digest"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int)
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--markets", type=int)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each compared pass this many times and keep the fastest"
    )
    parser.add_argument(
        "--max-step-ms",
        type=int,
        default=59,
        help="event time advances by 1 to this many ms an event "
        "(59: the venue's tempo; 300: the earlier sparse stream)",
    )
    parser.add_argument(
        "--pm-share", type=float, default=0.2, help="share of PM accounts in the last stream (0: skip it)"
    )
    parser.add_argument(
        "--risk",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also replay the PM stream with its PM accounts in the risk model (liquidation on)",
    )
    args = parser.parse_args()
    events, accounts, markets = (100_000, 10_000, 20) if args.quick else (1_000_000, 100_000, 50)
    config = GeneratorConfig(
        accounts=args.accounts or accounts,
        markets=args.markets or markets,
        events=args.events or events,
        seed=args.seed,
        max_step_ms=args.max_step_ms,
    )
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        path, pm_path, risk_path = Path(tmp) / "events", Path(tmp) / "pm", Path(tmp) / "risk"
        streams = [("", path, config)]
        if args.pm_share:
            streams.append(("PM ", pm_path, dataclasses.replace(config, pm_share=args.pm_share)))
        for what, where, made in streams:
            t0 = time.perf_counter()
            write_log(where, made)
            print(
                f"generated and wrote {made.events:,} {what}events in {time.perf_counter() - t0:.1f}s", file=sys.stderr
            )
        risk = args.risk and bool(args.pm_share)
        if risk:
            write_risk_log(risk_path, pm_path)
        pm = {"pm off": (engine_pass, (pm_path, OFF))} if args.pm_share else {}
        timed = rounds(args.repeat, {"decode": (decode_pass, (path,)), "off": (engine_pass, (path, OFF)), **pm})
        pm = {"pm on": (engine_pass, (pm_path, ON))} if args.pm_share else {}
        if risk:
            pm["risk on"] = (engine_pass, (risk_path, ON))
        timed |= rounds(args.repeat, {"on": (engine_pass, (path, ON)), **pm})
        decode, off, on = timed["decode"], timed["off"], timed["on"]
        held, peak = fresh(memory_pass, path, OFF)
        held_on, _ = fresh(memory_pass, path, ON)
        count, n_accounts = off.facts["events"], off.facts["accounts"]
        result = {
            "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
            "events": count,
            "max_step_ms": args.max_step_ms,
            "hours": f"{(off.facts['time'] - config.start_ts) / 3_600_000:.1f}",
            "accounts": n_accounts,
            "markets": off.facts["markets"],
            "rejected": off.kinds["rejected"],
            "decode_events_per_s": round(count / decode.seconds),
            "engine_events_per_s": round(count / off.seconds),
            "engine_over_decode": round(decode.seconds / off.seconds, 3),
            "apply_only_events_per_s": round(count / (off.seconds - decode.seconds)),
            "engine_liquidation_events_per_s": round(count / on.seconds),
            "liquidations": on.kinds["liquidation_triggered"],
            "state_bytes_per_account": round(held / n_accounts),
            "peak_bytes_per_account": round(peak / n_accounts),
            "state_and_index_bytes_per_account": round(held_on / n_accounts),
            "digest": off.facts["digest"],
            "liquidation_digest": on.facts["digest"],
        }
        crash_path = Path(tmp) / "crash"
        t0 = time.perf_counter()
        write_log(crash_path, dataclasses.replace(config, crash=True))
        print(
            f"generated and wrote {config.events:,} crash events in {time.perf_counter() - t0:.1f}s", file=sys.stderr
        )
        crash = fresh(engine_pass, crash_path, ON)
        crash_off = fresh(engine_pass, crash_path, OFF)
        result.update(
            {
                "crash_engine_events_per_s": round(count / crash.seconds),
                "crash_liq_off_events_per_s": round(count / crash_off.seconds),
                "crash_liquidations": crash.kinds["liquidation_triggered"],
                "crash_liquidated_accounts": crash.liquidated,
                "crash_liquidation_fills": crash.kinds["liquidation_fill"],
                "crash_backstops": crash.kinds["backstop"],
                "crash_rejected": crash.kinds["rejected"],
                "crash_liq_off_rejected": crash_off.kinds["rejected"],
                "crash_digest": crash.facts["digest"],
                "crash_liq_off_digest": crash_off.facts["digest"],
            }
        )
        if args.pm_share:
            result.update(pm_report(args.pm_share, timed["pm off"], timed["pm on"], off, on))
        if risk:
            result.update(risk_report(timed["risk on"], timed["pm on"], on))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:>26}: {value:,}" if isinstance(value, (int, float)) else f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
