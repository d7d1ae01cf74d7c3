"""The guided replay (the engine checking only the accounts a log's recorded decisions name, no
trigger index) against the indexed run that recorded them: the same decisions and the same state,
in every execution mode, on portfolio-margin streams and from a state decoded half way."""

from __future__ import annotations

import pytest

from clearinghouse.digest import decode_state, encode_state, state_digest
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.units import USD
from replay.decisions import guide_of
from tests.support.streams import crash_stream, pm_crash_stream

pytestmark = pytest.mark.slow  # generated crash streams, each run twice

CONFIGS = [
    LiquidationConfig(),
    LiquidationConfig(slippage_ppm=5_000, loss_limit=0),
    LiquidationConfig(mode="impact", impact_ppm=20_000, depth=200_000 * USD, loss_limit=1_000 * USD),
    LiquidationConfig(mode="external"),
]
IDS = ["mark", "mark-slippage-adl", "impact", "external"]


def _fold(engine: Engine, stream: list) -> list:
    derived: list = []
    for event in stream:
        derived.extend(engine.apply(event))
    return derived


def _guided_equals_indexed(stream: list, config: LiquidationConfig) -> list:
    indexed = Engine(State(liquidation=config))
    recorded = _fold(indexed, stream)
    guide = guide_of(recorded)
    guided = Engine(State(liquidation=config), guide=guide)
    assert _fold(guided, stream) == recorded
    assert not guided.triggers.accounts and not guided.triggers.books  # never built
    assert state_digest(guided.state) == state_digest(indexed.state)
    return recorded


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_guided_replay_decides_as_the_indexed_run_on_a_crash(config: LiquidationConfig) -> None:
    recorded = _guided_equals_indexed(crash_stream(accounts=500, events=6_000, seed=21), config)
    kinds = {ev.event_type(d) for d in recorded}
    assert "liquidation_triggered" in kinds and len(recorded) > 100


def test_guided_replay_decides_as_the_indexed_run_on_portfolio_margin() -> None:
    recorded = _guided_equals_indexed(pm_crash_stream(), LiquidationConfig())
    kinds = {ev.event_type(d) for d in recorded}
    assert {"borrow_liquidation", "liquidation_triggered"} <= kinds


def test_guided_replay_from_a_state_decoded_inside_the_crash() -> None:
    """The watch list and cooldowns of a state taken in the middle of the liquidations carry over."""
    stream = crash_stream(accounts=500, events=6_000, seed=21)
    config = LiquidationConfig(slippage_ppm=5_000, loss_limit=0)
    indexed = Engine(State(liquidation=config))
    cut = 0
    while not indexed.state.watch:  # the first moment an account is left below maintenance
        indexed.apply(stream[cut])
        cut += 1
    middle = encode_state(indexed.state)
    recorded = _fold(indexed, stream[cut:])
    assert any(isinstance(d, ev.LiquidationTriggered) for d in recorded)
    guided = Engine(decode_state(middle), guide=guide_of(recorded))
    assert _fold(guided, stream[cut:]) == recorded
    assert state_digest(guided.state) == state_digest(indexed.state)


def test_a_guide_that_leaves_decisions_out_makes_other_decisions() -> None:
    """The guide is only trusted as far as the decisions it yields equal the recorded ones:
    without the names, the same replay decides nothing (readers compare, `replay.history`)."""
    stream = crash_stream(accounts=500, events=6_000, seed=21)
    recorded = _fold(Engine(State()), stream)
    assert any(isinstance(d, ev.LiquidationTriggered) for d in recorded)
    rejected = [d for d in recorded if isinstance(d, ev.Rejected)]
    assert _fold(Engine(State(), guide={}), stream) == rejected
    first = next(d.cause for d in recorded if isinstance(d, ev.LiquidationTriggered))
    assert _fold(Engine(State(), guide={first: ("nobody", "@liquidator")}), stream) == rejected
