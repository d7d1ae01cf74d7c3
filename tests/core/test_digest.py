"""The canonical state encoding: the encoder's own key sorting gives exactly the bytes of the
definition (every dict rebuilt in key order, structs in declaration order), so digests and
snapshots written before and after the change agree."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from clearinghouse.digest import encode_state
from clearinghouse.engine import Engine
from clearinghouse.state import Account, LiquidationConfig, Position, SpotAccount, State
from replay.workload import GeneratorConfig, generate

pytestmark = pytest.mark.slow  # large and generated books


def _in_key_order(value: Any) -> Any:
    """The definition: a deep copy with every dict rebuilt in key order."""
    if isinstance(value, dict):
        return {key: _in_key_order(value[key]) for key in sorted(value)}
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.replace(value, **{f: _in_key_order(getattr(value, f)) for f in value.__struct_fields__})
    return value


def _reference(state: State) -> bytes:
    return msgspec.msgpack.encode(_in_key_order(state))


def _folded(config: GeneratorConfig) -> State:
    engine = Engine(State(liquidation=LiquidationConfig()))
    for event in generate(config):
        engine.apply(event)
    return engine.state


def test_generated_books_encode_as_the_definition_says() -> None:
    """A crash stream (liquidations, watch list, backstop) and one with portfolio-margin
    accounts (spot balances, pools, supplied and borrowed shares, unswept USDC)."""
    for config in (
        GeneratorConfig(accounts=300, markets=5, events=12_000, seed=5, crash=True),
        GeneratorConfig(accounts=300, markets=5, events=12_000, seed=2, crash=True, pm_share=0.3),
    ):
        state = _folded(config)
        assert any(len(a.positions) > 1 for a in state.accounts.values())
        assert encode_state(state) == _reference(state)


def test_a_large_book_in_any_insertion_order_encodes_as_the_definition_says() -> None:
    """150,000 accounts, each with positions and spot balances inserted out of key order,
    created in key order (a1, a2, ...) and shuffled."""
    names = [f"a{i:06d}" for i in range(150_000)]
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    states = []
    for order in (names, shuffled):
        states.append(
            State(
                accounts={
                    n: Account(raw_usd=len(n), positions={"ETH": Position(3, True, 1), "BTC": Position(2, False, -5)})
                    for n in order
                },
                spot={n: SpotAccount(balances={"USDC": 1, "HYPE": 2}) for n in order if n < "a001000"},
            )
        )
    first, second = (encode_state(state) for state in states)
    assert first == second == _reference(states[0])


def test_accounts_in_key_order_behind_a_later_key_encode_as_the_definition_says() -> None:
    """An import account, then 80,000 accounts in key order (as importing a sorted snapshot
    creates them): the encoder's own sort recursed once per key on this order and crashed the
    process (a segmentation fault from about 60,000 accounts), so the state's long maps reach it
    already sorted."""
    names = [f"0x{i:040x}" for i in range(80_000)]
    state = State(
        accounts={
            n: Account(raw_usd=i, positions={"BTC": Position(2, True, 1)}) for i, n in enumerate(["@import", *names])
        },
        watch={n: 5 for n in ["@import", *names[:1000]]},
    )
    assert encode_state(state) == _reference(state)
