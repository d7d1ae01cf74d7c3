"""Backtest workers: each configuration replays the log's input in its own process
(docs/backtest.md).

A worker reads the source log's input block by block, rewrites each block for its configuration
(`replay.backtest.stream.Rewriter`), applies it with a fresh engine through the fold's one step
(`replay.fold.step`, as `run` does), and writes a complete log directory under the output
folder: the input it replayed, its derived events with their checkpoints, its settings and a
snapshot at the end (so `state`, `replay verify` and `replay audit` read it like any log). What it
measured (`replay.backtest.meter.Outcome`) goes back to the parent. A configuration's result
depends on the log and the configuration alone, never on how many workers run beside it.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearinghouse.edges.runner import fix_settings, position_snapshot
from clearinghouse.engine import Engine
from clearinghouse.state import State
from events.eventlog import EventLog
from replay.backtest.config import AS_LOGGED, ConfigError, Plan, as_logged, plan, read_config
from replay.backtest.meter import Meter, Outcome
from replay.backtest.stream import Rewriter
from replay.fold import LogPosition, step
from replay.logdir import LogDir, LogSettings, settings
from replay.snapshot import SnapshotStore

Progress = Callable[[str, int, int], None]  # (configuration, events done, events total)
PROGRESS_EVERY = 20_000  # events between a worker's progress reports

_reports: Any = None  # the worker's progress queue, set by `_start_worker`


@dataclass(frozen=True)
class Job:
    source: str  # the log directory replayed
    out: str  # the configuration's own log directory (new)
    plan: Plan


def _start_worker(reports: Any) -> None:
    global _reports
    _reports = reports


def replay_config(job: Job) -> Outcome:
    """One configuration's replay (in a worker process): the log directory it writes, and what
    it measured."""
    plan = job.plan
    source, out = LogDir(Path(job.source)), LogDir(Path(job.out))
    engine = Engine(State(liquidation=plan.liquidation))
    at = LogPosition(engine.state)
    meter = Meter(engine)
    rewriter = Rewriter(plan)
    fix_settings(out, LogSettings(plan.liquidation, plan.checkpoint_every))
    reported = 0
    with (
        EventLog(source.events, readonly=True) as inputs,
        EventLog(out.events) as written,
        EventLog(out.derived, derived=True) as derived,
    ):
        total = inputs.next_seq
        for offset, seq, events, payload in inputs.records():
            block = rewriter.block(events)
            meter.begin(block)
            stored = payload if block is events else None
            decisions = step(
                engine, at, offset, block, stored, checkpoint_every=plan.checkpoint_every, on_event=meter.on_event
            )
            written.append(block)
            if decisions:
                derived.append(decisions)
            if _reports is not None and seq + len(events) - reported >= PROGRESS_EVERY:
                reported = seq + len(events)
                _reports.put((plan.name, reported, total))
        derived.flush()
        snapshot = position_snapshot(at)
        SnapshotStore(out.state).write(snapshot)
    digest = snapshot.digest
    if _reports is not None:
        _reports.put((plan.name, total, total))
    return meter.finish(digest)


def backtest(source: LogDir, plans: list[Plan], out: Path, workers: int, progress: Progress | None) -> list[Outcome]:
    """Replays every plan, each in a worker process (at most `workers` at once), writing
    `out/<name>/`; the outcomes in the plans' order."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited from the parent
    reports = context.Queue()
    jobs = [Job(str(source.root), str(out / plan.name), plan) for plan in plans]
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context, initializer=_start_worker, initargs=(reports,)
    ) as pool:
        futures: list[Future[Outcome]] = [pool.submit(replay_config, job) for job in jobs]
        while not all(f.done() for f in futures):
            try:
                name, done, total = reports.get(timeout=0.2)
            except queue.Empty:
                continue
            if progress is not None:
                progress(name, done, total)
        return [f.result() for f in futures]


def plans_for(log: LogDir, given: list[str]) -> list[Plan]:
    """The plans the `--config` arguments name (files, or the built-in `as-logged`), resolved
    against the log's settings; names must differ (each is a folder of the output)."""
    fixed = settings(log)
    plans = []
    for text in given:
        if text == AS_LOGGED:
            plans.append(as_logged(fixed.liquidation, fixed.checkpoint_every))
        else:
            plans.append(plan(read_config(Path(text)), fixed.liquidation, fixed.checkpoint_every, text))
    names = [p.name for p in plans]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"two configurations are named {twice[0]!r}: each needs a name of its own")
    return plans


def prepare_out(out: Path, plans: list[Plan]) -> None:
    """The output folder, made if missing; refuses one that already holds a configuration's log."""
    for p in plans:
        if (out / p.name).exists():
            raise ConfigError(f"{out / p.name} already exists: give a new --out (a backtest never overwrites a log)")
    out.mkdir(parents=True, exist_ok=True)
