"""The over-deleveraging of a stress run (docs/adl.md), measured by `replay.overdeleverage` on
the run's own price path: every event fed to the engine (the configuration's, then the
`prices` events), each under the liquidation settings in force at it (the scenario thins the
depth step by step), replayed with and without the ADL fills (the liquidator absorbing), round
by round."""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse.digest import decode_state
from clearinghouse.state import LiquidationConfig
from events import schema as ev
from replay.overdeleverage import measure

Trace = list[tuple[ev.InputEvent, LiquidationConfig]]  # each event fed to the engine, its settings


class Overshoot(NamedTuple):
    """Haircut taken from winners less the budget needed, in micro-USDC (docs/adl.md): the
    rounds that took too much (`over`, >= 0), too little (`under`, as a positive amount), and
    `net` = over - under."""

    over: int
    under: int
    net: int


def overshoot_of(population: bytes, liquidation: LiquidationConfig, trace: Trace, declined: bool) -> Overshoot:
    """The run's overshoot (`declined`: the liquidator declined some scope, so there are ADL
    rounds to measure; without, there is nothing to replay and the overshoot is zero)."""
    if not declined:
        return Overshoot(0, 0, 0)
    events = [event for event, _ in trace]
    settings = [setting for _, setting in trace]
    found = measure(decode_state(population), events, liquidation, settings=settings).as_dict()
    return Overshoot(found["over"], found["under"], found["net"])
