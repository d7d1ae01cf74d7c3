"""Helpers for the liquidation rulebook tests (tests/core/test_liquidation_rules.py).

`Pair` drives two engines in lockstep with the same JSON lines: the default one (trigger index)
and `Engine(full_scan=True)` (the reference twin). After every event it checks USDC and
open-interest conservation on both states, that both returned identical derived events and
that both states have the same digest. Each engine gets its own
`State(liquidation=LiquidationConfig(...))`, so a test picks the liquidation mode, slippage,
impact, loss limit...

The JSON-line builders come from tests/support/rulebook.py.
"""

from __future__ import annotations

import json
from typing import Any

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.liquidator import LIQUIDATOR
from clearinghouse.state import Account, LiquidationConfig, Position, State
from events.codec import decode_json
from events.units import px, sz, usd

TEN_X = [("0", 10)]  # one tier, maxLeverage 10: MM = ntl / 20 (5%)

__all__ = ["LIQUIDATOR", "Pair", "TEN_X", "px", "stamped", "sz", "usd"]


def stamped(text: str, ts: int) -> str:
    """A JSON line with an event time added (rulebook's `prices` builder takes no `ts`)."""
    obj = json.loads(text)
    obj["ts"] = ts
    return json.dumps(obj)


class Pair:
    """Two engines (trigger index and full scan) fed the same events; every check on both."""

    def __init__(self, **config: Any) -> None:
        cfg = LiquidationConfig(**config)
        self.fast = Engine(State(liquidation=cfg))
        self.full = Engine(State(liquidation=cfg), full_scan=True)
        self.count = 0  # events sent so far: the next event's seq (counted here, by the test)

    @property
    def state(self) -> State:
        return self.fast.state

    def send(self, text: str) -> list[Any]:
        """Applies one JSON line to both engines; returns the derived events (identical)."""
        fast = self.fast.apply(decode_json(text))
        full = self.full.apply(decode_json(text))
        self.count += 1
        for name, engine in (("index", self.fast), ("full scan", self.full)):
            errors = conservation_errors(engine.state)
            assert errors == [], f"{name}: conservation broken after {text}: {errors}"
        assert fast == full, f"index and full scan disagree after {text}:\n{fast}\n{full}"
        assert state_digest(self.fast.state) == state_digest(self.full.state), f"digests differ after {text}"
        return fast

    def at(self, text: str) -> tuple[int, list[Any]]:
        """Sends one line; returns (its seq, the derived events)."""
        seq = self.count
        return seq, self.send(text)

    def ok(self, *texts: str) -> None:
        """Lines that must derive nothing (accepted, no liquidation)."""
        for text in texts:
            derived = self.send(text)
            assert derived == [], f"{text} derived {derived}"

    # ---- state lookups ----------------------------------------------------------------------

    def account(self, name: str) -> Account:
        return self.state.accounts[name]

    def raw(self, name: str) -> int:
        return self.state.accounts[name].raw_usd

    def pos(self, name: str, coin: str) -> Position:
        return self.state.accounts[name].positions[coin]

    def szi(self, name: str, coin: str) -> int:
        account = self.state.accounts.get(name)
        if account is None or coin not in account.positions:
            return 0
        return account.positions[coin].szi
