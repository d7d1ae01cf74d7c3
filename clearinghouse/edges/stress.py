"""Stress runs in worker processes (docs/stress.md): each configuration under each ADL policy is
one job, run by `replay.stress.cascade.run` on its own copy of the population.

The population is encoded once; worker processes are forked with it (so it is not pickled per
job), and results come back in job order whatever order they finish in. A run depends on its
inputs alone, so its digest is the same with any number of workers, in-process included.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from replay.stress.cascade import StressRun, run
from replay.stress.configs import StressConfig
from replay.stress.scenario import Scenario

Progress = Callable[[int, int], None]
_population: bytes = b""  # a worker's copy, set when it starts


def _hold(population: bytes) -> None:
    global _population
    _population = population


def _job(scenario: Scenario, config: StressConfig, policy: str, full_scan: bool) -> StressRun:
    return run(_population, scenario, config, policy, full_scan=full_scan)


def run_all(
    population: bytes,
    scenario: Scenario,
    configs: list[StressConfig],
    policies: list[str],
    *,
    workers: int = 1,
    full_scan: bool = False,
    progress: Progress | None = None,
) -> list[StressRun]:
    """Every configuration under every policy, in that order. `progress(done, total)` counts
    steps (whole runs as they finish, with workers)."""
    jobs = [(config, policy) for config in configs for policy in policies]
    total = len(jobs) * scenario.steps
    if workers <= 1 or len(jobs) == 1:
        runs = []
        for i, (config, policy) in enumerate(jobs):
            done = i * scenario.steps
            tick = None if progress is None else lambda k, _, done=done: progress(done + k, total)
            runs.append(run(population, scenario, config, policy, full_scan=full_scan, progress=tick))
        return runs
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(min(workers, len(jobs)), context, initializer=_hold, initargs=(population,)) as pool:
        futures = [pool.submit(_job, scenario, config, policy, full_scan) for config, policy in jobs]
        runs = []
        for future in futures:
            runs.append(future.result())
            if progress is not None:
                progress(len(runs) * scenario.steps, total)
    return runs
