"""Where a stress run's accounts come from: the state of a log at a seq or a moment, or a
levered population from the workload generator (docs/stress.md, "Populations").

A population is a `State`; a stress run copies it (encoded once, decoded per run) so that every
configuration starts from the same bytes.
"""

from __future__ import annotations

from itertools import islice

from clearinghouse.engine import Engine
from clearinghouse.state import State
from replay.history import state_at
from replay.logdir import LogDir
from replay.workload import GeneratorConfig, generate
from replay.workload.crash import start_at
from replay.workload.stream import Workload


def from_log(log: LogDir, *, seq: int | None = None, time: int | None = None) -> State:
    """The state right after input `seq`, or at `time` (ms), or at the log's end (neither)."""
    if seq is None and time is None:
        return state_at(log, time=2**62)
    return state_at(log, seq=seq, time=time)


def generated(config: GeneratorConfig) -> State:
    """The generator's crash stream up to the moment its own crash would begin: a third of the
    accounts levered 5x-15x, the portfolio-margin share with spot collateral and borrows, at
    calm prices. Folded through the engine with liquidation in mark mode (as `run` would)."""
    config = GeneratorConfig(**{**config.__dict__, "crash": True})
    config.check()
    head = sum(1 for _ in Workload(config).head())
    count = head + start_at(config.events, config.markets, config.accounts)
    engine = Engine()
    for event in islice(generate(config), count):
        engine.apply(event)
    return engine.state
