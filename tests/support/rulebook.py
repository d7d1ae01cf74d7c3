"""Shared helpers for the rulebook tests (tests/core/test_rules_*.py).

The tests drive the engine through the public wire format: every event is a JSON line with
decimal strings, parsed by `events.codec.decode_json`, folded by `Engine.apply`. After every
event the USDC and open-interest conservation invariants are checked. `Book.reject` also checks
that a rejected event produced exactly one `Rejected` with the right seq and left the state
unchanged apart from `next_seq` and `time`.

Expected values in the tests are worked out by hand from docs/rules.md
(sections 1-4), never copied from engine output.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from clearinghouse.digest import encode_state
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.state import LiquidationConfig, State
from clearinghouse.summary import clearinghouse_state
from events.codec import decode_json
from events.schema import Rejected

# ---- margin tables (lower bounds in USDC, as on the wire) ------------------------------------

BTC_TIERS = [("0", 40), ("150000000", 20)]  # BTC: 40x up to 150M, then 20x
ETH_TIERS = [("0", 25), ("100000000", 15)]  # ETH: 25x up to 100M, then 15x
XYZ_TIERS = [("0", 20), ("1000000", 10), ("5000000", 5)]  # a made-up 3-tier table
HYPE_TIERS = [("0", 10)]  # one tier, 10x (used as an isolated-only market)


# ---- JSON-line builders (the public wire format) ---------------------------------------------


def line(**fields: Any) -> str:
    """A JSON line from keyword fields; `None` values are left out."""
    return json.dumps({k: v for k, v in fields.items() if v is not None})


def market(coin: str, sz_decimals: int, tiers: list[tuple[str, int]], only_isolated: bool = False) -> str:
    obj: dict[str, Any] = {
        "type": "market",
        "coin": coin,
        "sz_decimals": sz_decimals,
        "margin_tiers": [{"lower_bound": lb, "max_leverage": lev} for lb, lev in tiers],
    }
    if only_isolated:
        obj["only_isolated"] = True
    return json.dumps(obj)


def deposit(account: str, amount: str, **extra: Any) -> str:
    return line(type="deposit", account=account, amount=amount, **extra)


def withdraw(account: str, amount: str, **extra: Any) -> str:
    return line(type="withdraw", account=account, amount=amount, **extra)


def transfer(source: str, target: str, amount: str, **extra: Any) -> str:
    return json.dumps({"type": "transfer", "from": source, "to": target, "amount": amount, **extra})


def prices(**points: str | tuple[str, str]) -> str:
    """prices(BTC="100000") (oracle follows the mark) or prices(BTC=("100000", "99000")) (mark, oracle)."""
    out: dict[str, dict[str, str]] = {}
    for coin, p in points.items():
        out[coin] = {"mark": p} if isinstance(p, str) else {"mark": p[0], "oracle": p[1]}
    return json.dumps({"type": "prices", "prices": out})


def trade(
    coin: str,
    px: str,
    sz: str,
    buyer: str,
    seller: str,
    buyer_fee: str | None = None,
    seller_fee: str | None = None,
    **extra: Any,
) -> str:
    return line(
        type="trade",
        coin=coin,
        px=px,
        sz=sz,
        buyer=buyer,
        seller=seller,
        buyer_fee=buyer_fee,
        seller_fee=seller_fee,
        **extra,
    )


def set_leverage(account: str, coin: str, leverage: int, cross: bool = True, **extra: Any) -> str:
    return line(type="set_leverage", account=account, coin=coin, leverage=leverage, cross=cross, **extra)


def isolated_margin(account: str, coin: str, delta: str, **extra: Any) -> str:
    return line(type="isolated_margin", account=account, coin=coin, delta=delta, **extra)


def funding(coin: str, rate: str | None = None, premium: str | None = None, **extra: Any) -> str:
    return line(type="funding", coin=coin, rate=rate, premium=premium, **extra)


def rules(name: str, **extra: Any) -> str:
    return line(type="rules", name=name, **extra)


def token(name: str, decimals: int = 8, **extra: Any) -> str:
    return line(type="token", token=name, decimals=decimals, **extra)


def spot_trade(
    base: str,
    px: str,
    sz: str,
    buyer: str,
    seller: str,
    buyer_fee: str | None = None,
    seller_fee: str | None = None,
    quote: str = "USDC",
    **extra: Any,
) -> str:
    return line(
        type="spot_trade",
        base=base,
        quote=quote,
        px=px,
        sz=sz,
        buyer=buyer,
        seller=seller,
        buyer_fee=buyer_fee,
        seller_fee=seller_fee,
        **extra,
    )


def class_transfer(account: str, amount: str, to_perp: bool, **extra: Any) -> str:
    return line(type="class_transfer", account=account, amount=amount, to_perp=to_perp, **extra)


def set_mode(account: str, mode: str, **extra: Any) -> str:
    return line(type="set_mode", account=account, mode=mode, **extra)


def lend(kind: str, account: str, amount: str, token_name: str = "USDC", **extra: Any) -> str:
    """`supply`, `withdraw_supply`, `borrow` or `repay` of `amount` of a token (default USDC)."""
    return line(type=kind, account=account, amount=amount, token=token_name, **extra)


def pm_rules(**fields: Any) -> str:
    """A `rules` event changing spot and PM parameters: ltv={...}, caps={...}, pm={...}."""
    return line(type="rules", **fields)


# ---- the driver ------------------------------------------------------------------------------


class Book:
    """An engine driven by JSON lines, with conservation checked after every event."""

    def __init__(self, rule_set: str | None = None, liquidation: bool = True) -> None:
        """`liquidation=False` runs with liquidation off, for scenarios that follow margin
        arithmetic through states a live engine would liquidate."""
        state = State(liquidation=LiquidationConfig(mode="off")) if not liquidation else None
        self.engine = Engine(state)
        if rule_set is not None:
            self.ok(rules(rule_set))

    @property
    def state(self):  # noqa: ANN201
        return self.engine.state

    def send(self, text: str) -> list[Any]:
        derived = self.engine.apply(decode_json(text))
        errors = conservation_errors(self.state)
        assert errors == [], f"conservation broken after {text}: {errors}"
        return derived

    def ok(self, *texts: str) -> None:
        for text in texts:
            derived = self.send(text)
            assert derived == [], f"{text} was not accepted: {derived}"

    def reject(self, text: str) -> Rejected:
        """Applies `text`, which must be rejected: exactly one Rejected, with the event's seq and
        type, and the state unchanged apart from next_seq and time."""
        state = self.state
        seq, time = state.next_seq, state.time
        before = encode_state(state)
        derived = self.send(text)
        assert len(derived) == 1, f"{text}: expected exactly one derived event, got {derived}"
        rejected = derived[0]
        assert isinstance(rejected, Rejected), f"{text}: expected a Rejected, got {rejected}"
        assert rejected.seq == seq
        assert rejected.event == json.loads(text)["type"]
        assert rejected.reason
        assert self.state.next_seq == seq + 1
        restored = msgspec.structs.replace(self.state, next_seq=seq, time=time)
        assert encode_state(restored) == before, f"{text}: rejected but the state changed"
        return rejected

    def summary(self, account: str) -> dict[str, Any]:
        return clearinghouse_state(self.state, account)

    def position(self, account: str, coin: str) -> dict[str, Any] | None:
        for entry in self.summary(account)["assetPositions"]:
            if entry["position"]["coin"] == coin:
                return entry["position"]
        return None
