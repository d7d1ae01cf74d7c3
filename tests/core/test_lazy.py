"""A state decoded on first use (`clearinghouse.lazy`): a lazily decoded state is the same
state, digest and all, and decodes only the accounts and positions that are read."""

from __future__ import annotations

from clearinghouse.digest import decode_state, encode_state, state_digest
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.lazy import same
from clearinghouse.state import LiquidationConfig, State
from clearinghouse.summary import clearinghouse_state
from replay.decisions import guide_of
from replay.workload import GeneratorConfig, generate


def _states(events: int = 3_000) -> tuple[list, bytes]:
    stream = list(generate(GeneratorConfig(accounts=300, markets=6, events=events, seed=5, crash=True)))
    engine = Engine(State(liquidation=LiquidationConfig()))
    for event in stream[: events // 2]:
        engine.apply(event)
    return stream[events // 2 :], encode_state(engine.state)


def test_a_lazy_state_digests_and_encodes_alike_without_decoding_an_account() -> None:
    _, data = _states()
    full, lazy = decode_state(data), decode_state(data, lazy=True)
    assert lazy.accounts.pending() == len(lazy.accounts) == len(full.accounts) > 200
    assert state_digest(lazy) == state_digest(full) and encode_state(lazy) == data
    assert lazy.accounts.pending() == len(lazy.accounts)
    assert set(lazy.accounts) == set(full.accounts) and all(name in lazy.accounts for name in full.accounts)


def test_reading_an_account_decodes_that_one() -> None:
    _, data = _states()
    full, lazy = decode_state(data), decode_state(data, lazy=True)
    name = max(sorted(full.accounts), key=lambda n: len(full.accounts[n].positions))
    positions = lazy.accounts[name].positions
    assert lazy.accounts.pending() == len(full.accounts) - 1
    assert positions.pending() == len(positions) == len(full.accounts[name].positions) > 2
    coin = sorted(positions)[1]
    assert positions[coin] == full.accounts[name].positions[coin] and positions.pending() == len(positions) - 1
    assert lazy.accounts[name] == full.accounts[name] and positions.pending() == 0
    assert lazy.accounts.pending() == len(full.accounts) - 1
    assert lazy.accounts.get(name) is lazy.accounts[name]  # decoded once, then kept
    assert lazy.accounts.get("nobody") is None and lazy.accounts.get("nobody", 0) == 0
    assert clearinghouse_state(lazy, name) == clearinghouse_state(full, name)
    assert dict(lazy.accounts.items()) == full.accounts and lazy.accounts.pending() == 0
    assert list(lazy.accounts.values()) == list(full.accounts.values())


def test_the_engine_goes_on_from_a_lazy_state_as_from_a_decoded_one() -> None:
    """Guided by the decisions, as `state_at` replays: only the accounts and positions the
    events touch are decoded (the trigger index, which reads every account, is not built)."""
    rest, data = _states()
    full = Engine(decode_state(data))
    recorded = [d for event in rest for d in full.apply(event)]
    lazy = Engine(decode_state(data, lazy=True), guide=guide_of(recorded))
    assert [d for event in rest for d in lazy.apply(event)] == recorded
    assert 0 < lazy.state.accounts.pending() < len(lazy.state.accounts)
    assert state_digest(lazy.state) == state_digest(full.state)
    assert lazy.state == full.state and lazy.state.accounts == full.state.accounts
    assert conservation_errors(lazy.state) == []


def test_same_compares_raw_values_without_decoding_them() -> None:
    _, data = _states()
    before, after = decode_state(data, lazy=True), decode_state(data, lazy=True)
    names = sorted(before.accounts)
    assert all(same(before.accounts, after.accounts, n) for n in names) and after.accounts.pending() == len(names)
    full = decode_state(data)
    full.accounts[names[0]].raw_usd += 1
    assert not same(before.accounts, full.accounts, names[0]) and same(before.accounts, full.accounts, names[1])
    assert not same(before.accounts, {}, names[0]) and same({}, {}, "nobody")
