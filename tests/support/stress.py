"""Stress runs for the tests: a population built from JSON lines, and every run made twice, on
the trigger index and on the full-scan twin, with conservation and bounds checked after every
round (`check`); both must give the same figures and the same digest."""

from __future__ import annotations

from clearinghouse.digest import encode_state
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig
from events.codec import decode_json
from events.schema import Rejected
from replay.stress.cascade import StressRun, run
from replay.stress.configs import StressConfig
from replay.stress.scenario import Scenario


def population(*lines: str) -> bytes:
    """The encoded state after the lines (none may be rejected)."""
    engine = Engine()
    for text in lines:
        derived = engine.apply(decode_json(text))
        assert not any(type(d) is Rejected for d in derived), (text, derived)
    return encode_state(engine.state)


def stressed(
    pop: bytes, scenario: Scenario, liquidation: LiquidationConfig | StressConfig, name: str = "test"
) -> StressRun:
    """The run on the trigger index (under a configuration, or the liquidation settings alone),
    checked against its full-scan twin."""
    config = liquidation if isinstance(liquidation, StressConfig) else StressConfig(name, liquidation)
    fast = run(pop, scenario, config, "hl-queue", check=True)
    full = run(pop, scenario, config, "hl-queue", check=True, full_scan=True)
    assert fast.steps == full.steps
    assert fast.digest == full.digest
    return fast
