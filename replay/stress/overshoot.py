"""The over-deleveraging of a stress run (issue 25 item 3), behind one function.

`overshoot_of` is the hook: until the measure (a two-pass replay of the run's price path with
and without its ADL fills) is available it returns None, which reports and JSON show as "not
measured" (`measured: false`, figures 0). It receives what that replay needs: the population
the run started from, the liquidation settings it ran under, and the run's trace, each input
event fed to the engine with the ADL fills it caused.
"""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse.state import LiquidationConfig
from events import schema as ev

Trace = list[tuple[ev.Prices, list[ev.Adl]]]


class Overshoot(NamedTuple):
    """Haircut taken from winners less the budget needed, in micro-USDC: the rounds that took
    too much (`over`, >= 0), too little (`under`, <= 0), and their sum (`net`)."""

    over: int
    under: int
    net: int


def overshoot_of(population: bytes, liquidation: LiquidationConfig, trace: Trace) -> Overshoot | None:
    """The run's overshoot, or None while the measure is not available."""
    return None
