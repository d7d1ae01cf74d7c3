"""The kinds of case the harness runs, by name, each a function of its seed.

`stream` (the default): the seeded event stream through the twins (`twins.run_case`). `faults`:
storage fault injection (`tests/sim/faults.py`, `run_fault_case(seed) -> str | None`, the
failure described or None), present when that module is. A kind returns `Outcome`s, so the
command counts, reports and (for streams) shrinks every kind the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.sim.stream import liquidation_mode, stream
from tests.sim.twins import Totals, run_case


@dataclass
class Settings:
    """What every case of a run shares (picklable: sent to the worker processes)."""

    kind: str = "stream"
    events: int = 300
    rebuild_every: int = 1
    hostile: bool = False
    seconds: int = 120  # a case running longer is reported as a hang
    risk: bool = False  # risk-model accounts and parameters in the streams
    adl: str | None = None  # an ADL policy for every case instead of the default (same streams)


@dataclass
class Outcome:
    seed: int
    totals: Totals
    failure: str | None  # described
    signature: tuple[str, ...] | None = None  # a stream failure's, for the shrinker


class Hang(BaseException):
    """A case past its time limit (a BaseException: the twins' `except Exception` lets it by)."""


def _hang(*_: Any) -> None:
    raise Hang


def stream_case(seed: int, settings: Settings) -> Outcome:
    lines = stream(seed, settings.events, settings.hostile, settings.risk)
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(settings.seconds)
    try:
        totals, failure = run_case(lines, liquidation_mode(seed), settings.rebuild_every, settings.adl)
    except Hang:
        return Outcome(seed, Totals(cases=1, lines=len(lines), failures=1), f"hang: more than {settings.seconds} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if failure is None:
        return Outcome(seed, totals, None)
    totals.failures = 1
    return Outcome(seed, totals, failure.describe(), failure.signature)


def faults_case(seed: int, settings: Settings) -> Outcome:
    run_fault_case = importlib.import_module("tests.sim.faults").run_fault_case
    failure = run_fault_case(seed)
    return Outcome(seed, Totals(cases=1, failures=int(failure is not None)), failure)


def kinds() -> dict[str, Callable[[int, Settings], Outcome]]:
    """The kinds available: `faults` only where its module exists."""
    found: dict[str, Callable[[int, Settings], Outcome]] = {"stream": stream_case}
    if importlib.util.find_spec("tests.sim.faults") is not None:
        found["faults"] = faults_case
    return found


def run_one(job: tuple[int, Settings]) -> Outcome:
    """One case (the unit a worker process runs)."""
    seed, settings = job
    return kinds()[settings.kind](seed, settings)
