"""`python -m tests.sim`: deterministic simulation from the repository root (docs/simulation.md).

    python -m tests.sim --seed 27                 one case, exactly as any run made it
    python -m tests.sim --seeds 0..1999           many (2 worker processes)
    python -m tests.sim --minutes 10 --seeds 5000..   as many as fit, from seed 5000
    python -m tests.sim --replay sim-failures/seed-27.jsonl --mode mark    a reproducer file

A failing stream case is shrunk to a small reproducer, written as JSON lines, and the command
that replays it is printed. Exit status: 0 when every case passed, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from clearinghouse.adl_policies import POLICIES
from tests.sim.cases import Outcome, Settings, kinds, run_one
from tests.sim.shrink import shrink, write_reproducer
from tests.sim.stream import liquidation_mode, stream
from tests.sim.twins import CONFIGS, Totals, run_case

PROGRESS_EVERY = 5.0  # seconds between progress lines


def _seeds(text: str) -> tuple[int, int | None]:
    """`A..B` (both included) or `A..` (open: with --minutes)."""
    first, _, last = text.partition("..")
    try:
        return int(first), int(last) if last else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A..B or A.., got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--seed", type=int, help="run one case")
    which.add_argument("--seeds", type=_seeds, help="run the cases A..B (A.. with --minutes)")
    which.add_argument("--replay", type=Path, help="run a reproducer file (JSON lines) through the twins")
    p.add_argument("--minutes", type=float, help="stop starting cases after this long")
    p.add_argument("--kind", default="stream", help=f"case kind: {', '.join(kinds())} (default stream)")
    p.add_argument("--events", type=int, default=300, help="lines per stream case (default 300)")
    p.add_argument(
        "--rebuild-every", type=int, default=1, help="rebuild the rebuilt twin from the encoded state every N events"
    )
    p.add_argument("--hostile", action="store_true", help="add the values only the codec and engine bounds make safe")
    p.add_argument("--risk", action="store_true", help="add risk-model accounts and parameters (docs/risk-margin.md)")
    p.add_argument(
        "--case-seconds", type=int, default=120, help="a case running longer is a failure (a hang; default 120)"
    )
    p.add_argument("--mode", choices=sorted(CONFIGS), help="liquidation mode of --replay (default: mark)")
    p.add_argument("--adl", choices=list(POLICIES), help="run every case under this ADL policy (default hl-queue)")
    p.add_argument("--workers", type=int, default=2, help="worker processes for many cases (default 2)")
    p.add_argument("--no-shrink", action="store_true", help="report failures without shrinking them")
    p.add_argument(
        "--out", type=Path, default=Path("sim-failures"), help="where reproducers go (default sim-failures/)"
    )
    return p


def _report(totals: Totals, elapsed: float) -> None:
    print(
        f"cases {totals.cases}  lines {totals.lines}  events applied {totals.events}  "
        f"codec rejections {totals.codec_rejected}  "
        f"twin comparisons {totals.comparisons}  failures {totals.failures}  ({elapsed:.0f} s)"
    )
    if totals.events:
        d = totals.derived
        print(
            f"  liquidations {totals.liquidations} (orders {d['liquidation_order']}, fills {d['liquidation_fill']}, "
            f"backstops {d['backstop']}, adl {d['adl']}, bad debt {d['bad_debt']}, "
            f"borrow liquidations {d['borrow_liquidation']})"
        )
        print(f"  rejected {d['rejected']}, by reason:")
        for reason, count in totals.rejected.most_common():
            print(f"    {count:8d}  {reason}")


def _shrink_and_write(outcome: Outcome, settings: Settings, out: Path) -> None:
    """Cuts a failing stream case down to a reproducer and prints how to run it."""
    mode = liquidation_mode(outcome.seed)
    lines = stream(outcome.seed, settings.events, settings.hostile, settings.risk)
    signature = outcome.signature

    def fails(candidate: list[str]) -> bool:
        _, failure = run_case(candidate, mode, settings.rebuild_every, settings.adl)
        return failure is not None and failure.signature == signature

    small = shrink(lines, fails)
    path = write_reproducer(small, out / f"seed-{outcome.seed}.jsonl")
    _, failure = run_case(small, mode, settings.rebuild_every, settings.adl)
    print(f"  shrunk {len(lines)} lines to {len(small)}: {failure.describe() if failure else '?'}")
    adl = f" --adl {settings.adl}" if settings.adl else ""
    print(f"  reproduce: python -m tests.sim --replay {path} --mode {mode}{adl}")


def _jobs(first: int, last: int | None, settings: Settings, deadline: float | None) -> Iterator[tuple[int, Settings]]:
    seed = first
    while (last is None or seed <= last) and (deadline is None or time.monotonic() < deadline):
        yield seed, settings
        seed += 1


def _run_many(first: int, last: int | None, settings: Settings, args: argparse.Namespace) -> int:
    start = time.monotonic()
    deadline = start + args.minutes * 60 if args.minutes else None
    totals, failed = Totals(), []
    jobs = _jobs(first, last, settings, deadline)
    shown = start
    with multiprocessing.get_context("fork").Pool(args.workers) if args.workers > 1 else _Serial() as pool:
        for outcome in pool.imap_unordered(run_one, jobs, chunksize=4):
            totals.add(outcome.totals)
            if outcome.failure is not None:
                failed.append(outcome)
                print(f"seed {outcome.seed}: {outcome.failure}", flush=True)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break  # the pool feeds ahead of the deadline: cases not finished by now are dropped
            if now - shown >= PROGRESS_EVERY:
                shown = now
                print(
                    f"... {totals.cases} cases, {totals.events} events, {totals.failures} failures "
                    f"({now - start:.0f} s)",
                    flush=True,
                )
    _report(totals, time.monotonic() - start)
    for outcome in sorted(failed, key=lambda o: o.seed)[: 3 if not args.no_shrink else 0]:
        if outcome.signature is not None:
            print(f"seed {outcome.seed}:")
            _shrink_and_write(outcome, settings, args.out)
    if failed:
        print(f"failing seeds: {' '.join(str(o.seed) for o in sorted(failed, key=lambda o: o.seed))}")
    return 1 if failed else 0


class _Serial:
    """`Pool`'s `imap_unordered` in this process (one worker)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    @staticmethod
    def imap_unordered(func, jobs, chunksize=1):  # type: ignore[no-untyped-def]
        return map(func, jobs)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.kind not in kinds():
        print(f"unknown case kind {args.kind!r} (known: {', '.join(kinds())})", file=sys.stderr)
        return 2
    if min(args.events, args.rebuild_every, args.workers, args.case_seconds) < 1:
        print("--events, --rebuild-every, --workers and --case-seconds must be at least 1", file=sys.stderr)
        return 2
    settings = Settings(
        args.kind, args.events, args.rebuild_every, args.hostile, args.case_seconds, args.risk, args.adl
    )
    if args.replay is not None:
        lines = [line for line in args.replay.read_text(encoding="utf-8").splitlines() if line.strip()]
        totals, failure = run_case(lines, args.mode or "mark", args.rebuild_every, args.adl)
        totals.failures = int(failure is not None)
        _report(totals, 0)
        print(failure.describe() if failure else "passed")
        return 1 if failure else 0
    if args.seed is not None:
        outcome = run_one((args.seed, settings))
        _report(outcome.totals, 0)
        if outcome.failure is None:
            print("passed")
            return 0
        print(f"seed {args.seed}: {outcome.failure}")
        if outcome.signature is not None and not args.no_shrink:
            _shrink_and_write(outcome, settings, args.out)
        return 1
    first, last = args.seeds if args.seeds is not None else (0, None)
    if last is None and args.minutes is None:
        print("give --seed, --seeds A..B, or --minutes", file=sys.stderr)
        return 2
    return _run_many(first, last, settings, args)


if __name__ == "__main__":
    sys.exit(main())
