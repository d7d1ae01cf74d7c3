"""The over-deleveraging of a stress run (docs/adl.md), measured by `replay.overdeleverage` on
the run's own price path: every event fed to the engine (the configuration's, then the
`prices` events), each under the liquidation settings in force at it (the scenario thins the
depth step by step), replayed with and without the ADL fills (the liquidator absorbing), round
by round. The run itself is the first pass that finds the rounds: it records each event's time
and whether the liquidator declined a scope in it, so only the scoring replays it."""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse.digest import decode_state
from clearinghouse.state import LiquidationConfig
from events import schema as ev
from replay.overdeleverage import DEFAULT_GAP_MS, rounds_of, score


class Fed(NamedTuple):
    """An event fed to the engine: the liquidation settings in force at it, the event time after
    it, and whether the liquidator declined a scope in it (an ADL event)."""

    event: ev.InputEvent
    settings: LiquidationConfig
    time: int
    declined: bool


Trace = list[Fed]  # every event fed to the engine, in order


class Overshoot(NamedTuple):
    """Haircut taken from winners less the budget needed, in micro-USDC (docs/adl.md): the
    rounds that took too much (`over`, >= 0), too little (`under`, as a positive amount), and
    `net` = over - under."""

    over: int
    under: int
    net: int


def overshoot_of(population: bytes, liquidation: LiquidationConfig, trace: Trace) -> Overshoot:
    """The run's overshoot: its ADL events grouped into rounds as `replay.overdeleverage.measure`
    groups them (`rounds_of`, the default gap, no horizon), each round scored by replaying the
    run from `population` (without ADL rounds there is nothing to replay: zero)."""
    deleveraging = [i for i, fed in enumerate(trace) if fed.declined]
    if not deleveraging:
        return Overshoot(0, 0, 0)
    spans = rounds_of([fed.time for fed in trace], deleveraging, DEFAULT_GAP_MS, 0)
    events, settings = [fed.event for fed in trace], [fed.settings for fed in trace]
    found = score(decode_state(population), events, liquidation, spans, settings).as_dict()
    return Overshoot(found["over"], found["under"], found["net"])
