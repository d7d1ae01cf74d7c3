"""Portfolio margin on generated streams: the generator's `pm_share` option, determinism, the
band index against the full scan on a crash with PM liquidations, conservation, and a restart
from an encoded state in the middle of a stream."""

from __future__ import annotations

from collections import Counter

import pytest

from clearinghouse.digest import decode_state, encode_state, state_digest
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.state import LiquidationConfig, State
from events.codec import encode_json
from events.schema import event_type
from replay.workload import GeneratorConfig, generate
from tests.support.streams import pm_crash_stream


def _bytes(config: GeneratorConfig) -> bytes:
    return b"\n".join(encode_json(e) for e in generate(config))


def test_pm_share_zero_is_the_plain_stream_and_pm_streams_are_deterministic():
    plain = GeneratorConfig(accounts=200, events=3_000, seed=3)
    assert _bytes(plain) == _bytes(GeneratorConfig(accounts=200, events=3_000, seed=3, pm_share=0.0))
    pm = GeneratorConfig(accounts=200, events=3_000, seed=3, pm_share=0.2)
    assert _bytes(pm) == _bytes(pm)
    kinds = Counter(event_type(e) for e in generate(pm))
    # about a fifth of 200 accounts switch to portfolio (and the lender to unified)
    assert 25 <= kinds["set_mode"] <= 60
    assert kinds["spot_trade"] > 50 and kinds["token"] == 1 and kinds["supply"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["mark", "impact"])
def test_band_index_and_full_scan_decide_alike_on_pm_liquidations(mode: str):
    """Impact mode too: its liquidation fills move marks, and the PM accounts whose bands those
    moves leave are checked in the same event, as the full scan checks every holder."""
    events = pm_crash_stream()
    fast = Engine(State(liquidation=LiquidationConfig(mode=mode)))
    full = Engine(State(liquidation=LiquidationConfig(mode=mode)), full_scan=True)
    bands = fast.pm_bands
    assert bands is not None
    absorbed = Counter[bool]()
    exact_filled = bands.filled

    def filled(name: str, state: State, coin: str, perp: bool) -> bool:  # counts the fills taken in O(1)
        absorbed[ok := exact_filled(name, state, coin, perp)] += 1
        return ok

    bands.filled = filled  # type: ignore[method-assign]
    kinds: Counter[str] = Counter()
    for event in events:
        derived = fast.apply(event)
        assert derived == full.apply(event)
        for d in derived:
            kinds[event_type(d) + (":portfolio" if getattr(d, "scope", "") == "portfolio" else "")] += 1
    assert state_digest(fast.state) == state_digest(full.state)
    assert conservation_errors(fast.state) == []
    assert kinds["borrow_liquidation"] > 0 and kinds["liquidation_triggered:portfolio"] > 0
    assert absorbed[True] > 1_000 and absorbed[True] > 4 * absorbed[False], absorbed


@pytest.mark.slow
def test_a_restart_from_an_encoded_state_ends_in_the_same_state():
    events = pm_crash_stream()
    whole = Engine(State(liquidation=LiquidationConfig()))
    for event in events:
        whole.apply(event)
    half = len(events) // 2
    first = Engine(State(liquidation=LiquidationConfig()))
    for event in events[:half]:
        first.apply(event)
    second = Engine(decode_state(encode_state(first.state)))  # pools, spot sides, unswept: all in the state
    for event in events[half:]:
        second.apply(event)
    assert state_digest(second.state) == state_digest(whole.state)


@pytest.mark.slow
def test_cross_value_is_the_cross_account_value():
    from clearinghouse import margin

    engine = Engine(State(liquidation=LiquidationConfig()))
    for event in pm_crash_stream():
        engine.apply(event)
    markets = engine.state.markets
    for account in engine.state.accounts.values():
        assert margin.cross_value(account, markets) == margin.cross_figures(account, markets).account_value
