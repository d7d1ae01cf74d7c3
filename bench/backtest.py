"""Backtest overhead: three configurations of the PM stream with `--workers 2` against three
plain `run`s of the same log, in one run.

    python bench/backtest.py            # 1,000,000 events, 100,000 accounts, 50 markets
    python bench/backtest.py --quick    # 100,000 events, 10,000 accounts, 20 markets

The stream is `bench/replay.py`'s PM stream (seed 7, 20% of the accounts in portfolio margin,
the venue's tempo: `--max-step-ms 59`), written to a file log. Each timed command runs as a user
runs it, `python -m clearinghouse ...` in a subprocess, with liquidation on (mark mode, the
default):

- three plain runs: `clearinghouse copy` the log's input into three new logs (not timed), then
  `clearinghouse run --log COPY` on each, one after the other; the sum of their wall times;
- the backtest: `clearinghouse backtest --log LOG --config as-logged --config lev10.json
  --config pm-standard.json --workers 2`: the log's own settings; every market's leverage capped
  at 10x; the log's portfolio-margin accounts left in standard margin. Each configuration
  replays in its own worker process, writes its own log and measures hourly requirements.

`backtest_over_runs` = backtest wall time / the three runs' sum (target: at most 1.2). With two
workers on two cores the three replays take about two runs' time; the rest is the comparison
(the meter's hourly samples of every account's requirement, the report) and writing each
configuration's input. `backtest_cpu_over_runs` compares the CPU time (user and system, the
workers' included): the work the comparison adds whatever else the machine is doing, which a
shared machine's wall times do not show. The as-logged configuration must reach the plain run's
digest.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from events.eventlog import EventLog, blocks_of  # noqa: E402
from replay.workload import GeneratorConfig, generate  # noqa: E402

BLOCK = 1000
CONFIGS = {
    "lev10": {"name": "lev10", "max_leverage": 10},
    "pm-standard": {"name": "pm-standard", "model": "standard", "accounts": "portfolio"},
}


class Timed(NamedTuple):
    seconds: float  # wall
    cpu: float  # user + system of the command and every process it waited for (the workers)
    stdout: str


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def clearinghouse(*args: str) -> Timed:
    """Wall and CPU seconds and stdout of one command, as a user runs it."""
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "clearinghouse", "-q", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"clearinghouse {' '.join(args)} failed: {done.stderr}")
    return Timed(seconds, _cpu() - cpu, done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-step-ms", type=int, default=59)
    parser.add_argument("--pm-share", type=float, default=0.2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    events, accounts, markets = (100_000, 10_000, 20) if args.quick else (1_000_000, 100_000, 50)
    config = GeneratorConfig(
        accounts=accounts,
        markets=markets,
        events=events,
        seed=args.seed,
        max_step_ms=args.max_step_ms,
        pm_share=args.pm_share,
    )
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        root = Path(tmp)
        log = root / "log"
        started = time.perf_counter()
        with EventLog(log / "events") as out:
            out.append_blocks(blocks_of(generate(config), BLOCK))
        print(f"generated and wrote {events:,} PM events in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        runs, digests = [], []
        for k in range(3):
            copy = root / f"run{k}"
            clearinghouse("copy", "--log", str(log), "--to", str(copy))
            done = clearinghouse("run", "--log", str(copy), "--json")
            runs.append(done)
            digests.append(json.loads(done.stdout)["digest"])
            print(f"run {k + 1}/3: {done.seconds:.2f}s ({done.cpu:.2f}s CPU)", file=sys.stderr)
        files = []
        for name, body in CONFIGS.items():
            path = root / f"{name}.json"
            path.write_text(json.dumps(body))
            files += ["--config", str(path)]
        backtest = clearinghouse(
            "backtest", "--log", str(log), "--config", "as-logged", *files, "--workers", "2",
            "--out", str(root / "out"), "--json",
        )  # fmt: skip
        print(f"backtest: {backtest.seconds:.2f}s ({backtest.cpu:.2f}s CPU)", file=sys.stderr)
        compared = json.loads(backtest.stdout)
    if len(set(digests)) != 1 or compared[0]["digest"] != digests[0]:
        raise SystemExit(f"as-logged reached {compared[0]['digest']}, the plain runs {digests}")
    result = {
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "events": events,
        "accounts": accounts,
        "markets": markets,
        "run_seconds": [round(r.seconds, 2) for r in runs],
        "runs_sum_seconds": round(sum(r.seconds for r in runs), 2),
        "backtest_seconds": round(backtest.seconds, 2),
        "backtest_over_runs": round(backtest.seconds / sum(r.seconds for r in runs), 3),
        "runs_cpu_seconds": round(sum(r.cpu for r in runs), 2),
        "backtest_cpu_seconds": round(backtest.cpu, 2),
        "backtest_cpu_over_runs": round(backtest.cpu / sum(r.cpu for r in runs), 3),
        "digest": digests[0],
        "configurations": {
            c["name"]: {
                "digest": c["digest"],
                "initial_mean": c["requirement"]["initial_mean"],
                "maintenance_end": c["maintenance_end"],
                "freed_pct": c["capital_freed"] and c["capital_freed"]["initial_mean_pct"],
                "rejected": c["rejected"]["count"],
                "liquidations": c["liquidations"]["count"],
            }
            for c in compared
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
