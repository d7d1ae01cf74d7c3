"""Node `misc_events_by_block` -> events (docs/hyperliquid-data.md, "Misc events").

A block line holds `events: [{time, hash, inner}]`; `inner` is one variant, written either as
`{"Name": {...}}` or with a `type` field. Read here: funding (the hour's rate per coin; the
engine pays every position from it, so per-user deltas are checked by reconcile rather than
booked twice), and ledger updates: deposits, withdrawals, internal and sub-account transfers,
account-class transfers, liquidation records (a `liq_record` event: the venue's word,
which the engine keeps without acting on it; the fills carry the executions), `borrowLend`
(supply, withdraw, borrow, repay: the engine's lending events) and `send` (a token between
accounts or between an account's perp and spot balances).
Staking, validator rewards and the other ledger updates are not clearing facts and are skipped,
each with the reason in the rejects.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from events.bounds import NAME_PATTERN
from events.schema import (
    Borrow,
    ClassTransfer,
    Deposit,
    Funding,
    LiquidatedPosition,
    LiquidationRecord,
    Repay,
    Supply,
    Transfer,
    Withdraw,
    WithdrawSupply,
)
from events.units import (
    HOUR_MS,
    RATE_DECIMALS,
    SZ_DECIMALS,
    TOKEN_DECIMALS,
    USD_DECIMALS,
    DecimalError,
    parse_decimal,
)

_NAME = re.compile(NAME_PATTERN)
SKIPPED = {"cdeposit", "cwithdrawal", "delegation", "validatorrewards"}  # staking: not clearing facts
LENDING = {"supply": Supply, "withdraw": WithdrawSupply, "borrow": Borrow, "repay": Repay}  # borrowLend operations
PERP_DEX, SPOT_DEX = "", "spot"  # a `send`'s sourceDex / destinationDex: the main perp dex, or spot
USDC = "USDC"


class MiscError(ValueError):
    """A misc event that cannot be booked; the message is the reason."""


def _amount(obj: dict[str, Any], name: str, decimals: int) -> int:
    value = obj.get(name)
    if value is None:
        raise MiscError(f"missing {name}")
    try:
        return parse_decimal(value if isinstance(value, (str, int)) else str(value), decimals)
    except DecimalError as exc:
        raise MiscError(f"{name}: {exc}") from None


def _usd(obj: dict[str, Any], name: str) -> int:
    return _amount(obj, name, USD_DECIMALS)


def _rate(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    try:
        return parse_decimal(value if isinstance(value, (str, int)) else str(value), RATE_DECIMALS)
    except DecimalError as exc:
        raise MiscError(f"{name}: {exc}") from None


def iso_ms(text: Any) -> int:
    """'2025-11-25T08:33:18.111517886' (UTC, as the node writes it) -> ms since the epoch."""
    if not isinstance(text, str) or len(text) < 19:
        raise MiscError(f"time is not an ISO 8601 moment: {str(text)[:40]!r}")
    whole, _, fraction = text.rstrip("Z").partition(".")
    try:
        moment = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.UTC)
    except ValueError:
        raise MiscError(f"time is not an ISO 8601 moment: {text[:40]!r}") from None
    if fraction and not fraction.isdigit():
        raise MiscError(f"time is not an ISO 8601 moment: {text[:40]!r}")
    return int(moment.timestamp()) * 1000 + int((fraction + "000")[:3])


def _names(*values: Any) -> None:
    for value in values:
        if not isinstance(value, str) or not _NAME.match(value):
            raise MiscError(f"not an account or coin name: {str(value)[:70]!r}")


def _variant(inner: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(inner, dict) and isinstance(inner.get("type"), str):
        return inner["type"], inner
    if isinstance(inner, dict) and len(inner) == 1:
        ((name, body),) = inner.items()
        if isinstance(body, dict):
            return name, body
    raise MiscError("inner is neither {type, ...} nor {Variant: {...}}")


def misc_events(item: Any, ident: str, modes: dict[str, str] | None = None) -> tuple[list[Any], dict[str, Any] | None]:
    """The events of one misc event (`ident` its source id stem), and a liquidation note if it is a
    ledger liquidation record. `modes`: each account's mode where the log set one (standard
    otherwise), for a `send` between a standard account's perp and spot balances."""
    if not isinstance(item, dict):
        raise MiscError("not a misc event object")
    ts = iso_ms(item.get("time"))
    kind, body = _variant(item.get("inner"))
    key = kind.lower().replace("_", "")
    if key == "funding":
        return _funding(body, ts), None
    if key == "ledgerupdate":
        return _ledger(body, ts, ident, modes or {})
    if key in SKIPPED:
        raise MiscError(f"{kind}: staking, not a clearing fact")
    raise MiscError(f"{kind}: not booked by this version")


def _funding(body: dict[str, Any], ts: int) -> list[Any]:
    """One `funding` event per coin and hour (its id makes a repeat a duplicate)."""
    deltas = body.get("deltas") if isinstance(body.get("deltas"), list) else [body]
    rates: dict[str, int] = {}
    for delta in deltas:
        if not isinstance(delta, dict) or not isinstance(delta.get("coin"), str):
            raise MiscError("a funding delta without coin")
        name = next((n for n in ("fundingRate", "funding_rate") if delta.get(n) is not None), None)
        if name is None:
            raise MiscError("a funding delta without fundingRate: the engine pays funding from the hour's rate")
        _names(delta["coin"])
        rate = _rate(delta, name)
        if rates.setdefault(delta["coin"], rate) != rate:
            raise MiscError(f"two funding rates for {delta['coin']} in one event")
    hour = ts // HOUR_MS
    return [Funding(coin=coin, rate=r, ts=ts, id=f"hl:funding:{coin}:{hour}") for coin, r in sorted(rates.items())]


def _ledger(
    body: dict[str, Any], ts: int, ident: str, modes: dict[str, str]
) -> tuple[list[Any], dict[str, Any] | None]:
    users = body.get("users")
    delta = body.get("delta")
    if not isinstance(users, list) or not users or not all(isinstance(u, str) for u in users):
        raise MiscError("a ledger update without users")
    kind, fields = _variant(delta)
    key = kind.lower().replace("_", "")
    user = users[0]
    _names(user)
    if key == "deposit":
        return [Deposit(account=user, amount=_usd(fields, "usdc"), ts=ts, id=ident)], None
    if key == "withdraw":
        amount = _usd(fields, "usdc") + _usd({"fee": fields.get("fee", 0)}, "fee")
        return [Withdraw(account=user, amount=amount, ts=ts, id=ident)], None
    if key in ("internaltransfer", "subaccounttransfer"):
        sender, receiver = fields.get("user", user), fields.get("destination")
        _names(sender, receiver)
        return [Transfer(from_=sender, to=receiver, amount=_usd(fields, "usdc"), ts=ts, id=ident)], None
    if key == "accountclasstransfer":
        to_perp = fields.get("toPerp")
        if not isinstance(to_perp, bool):
            raise MiscError("accountClassTransfer without toPerp")
        return [ClassTransfer(account=user, amount=_usd(fields, "usdc"), to_perp=to_perp, ts=ts, id=ident)], None
    if key == "liquidation":
        return _liquidation(user, fields, ts, ident)
    if key == "borrowlend":
        return [_lending(user, fields, ts, ident)], None
    if key == "send":
        return _send(user, fields, ts, ident, modes), None
    raise MiscError(f"ledger update {kind}: not booked by this version")


def _token_amount(fields: dict[str, Any], token: str) -> int:
    """`amount` of `token` in the engine's units: 1e-8 of a token; micro-USDC for USDC, which
    the ledger writes to 8 decimals like every spot token (the last two rounded down)."""
    amount = _amount(fields, "amount", TOKEN_DECIMALS)
    if amount <= 0:
        raise MiscError("amount must be positive")
    return amount // 10 ** (TOKEN_DECIMALS - USD_DECIMALS) if token == USDC else amount


def _lending(user: str, fields: dict[str, Any], ts: int, ident: str) -> Any:
    """`borrowLend {token, operation, amount, interestAmount}` -> supply / withdraw_supply /
    borrow / repay. `interestAmount` (the venue's interest on the position) is not booked: the
    engine accrues its own from the pool."""
    token, operation = fields.get("token"), fields.get("operation")
    _names(token)
    event = LENDING.get(operation) if isinstance(operation, str) else None
    if event is None:
        raise MiscError(f"borrowLend operation must be one of {', '.join(LENDING)}, got {str(operation)[:20]!r}")
    return event(account=user, amount=_token_amount(fields, token), token=token, ts=ts, id=ident)


def _send(user: str, fields: dict[str, Any], ts: int, ident: str, modes: dict[str, str]) -> list[Any]:
    """`send {user, destination, sourceDex, destinationDex, token, amount, fee, ...}`: USDC between
    two accounts is a `transfer` of their ledgers, a standard account's spot side moved to or
    from its ledger by a `class_transfer`; USDC between one account's perp and spot balances is
    a `class_transfer`; another token between accounts leaves the sender (`withdraw`) and reaches
    the receiver (`deposit`). The fee is not booked (no account receives it here)."""
    sender, receiver, token = fields.get("user", user), fields.get("destination"), fields.get("token")
    _names(sender, receiver, token)
    source, target = fields.get("sourceDex", PERP_DEX), fields.get("destinationDex", PERP_DEX)
    for dex in (source, target):
        if dex not in (PERP_DEX, SPOT_DEX):
            raise MiscError(f"send through dex {str(dex)[:20]!r}: only the main perp dex and spot are kept")
    amount = _token_amount(fields, token)
    if token != USDC:
        if sender == receiver:
            raise MiscError(f"send of {token} to its own account: spot tokens have one balance")
        return [
            Withdraw(account=sender, amount=amount, token=token, ts=ts, id=f"{ident}:out"),
            Deposit(account=receiver, amount=amount, token=token, ts=ts, id=f"{ident}:in"),
        ]

    def moved(name: str, dex: str, to_perp: bool, part: str) -> list[Any]:
        standard = modes.get(name, "standard") == "standard"
        if dex != SPOT_DEX or not standard:
            return []
        return [ClassTransfer(account=name, amount=amount, to_perp=to_perp, ts=ts, id=f"{ident}:{part}")]

    if sender == receiver:
        events = moved(sender, source if source == SPOT_DEX else target, source == SPOT_DEX, "class")
        if source == target or not events:
            raise MiscError("send between one account's own balances that are one balance: nothing moves")
        return events
    return [
        *moved(sender, source, True, "from-spot"),
        Transfer(from_=sender, to=receiver, amount=amount, ts=ts, id=ident),
        *moved(receiver, target, False, "to-spot"),
    ]


def _liquidation(user: str, fields: dict[str, Any], ts: int, ident: str) -> tuple[list[Any], dict[str, Any]]:
    """The venue's liquidation record as a `liq_record` event, and its note for the output."""
    leverage = fields.get("leverageType")
    if not isinstance(leverage, str) or leverage.lower() not in ("cross", "isolated"):
        raise MiscError(f"liquidation leverageType must be Cross or Isolated, got {str(leverage)[:20]!r}")
    positions = fields.get("liquidatedPositions") or []
    if not isinstance(positions, list) or not all(isinstance(p, dict) for p in positions):
        raise MiscError("liquidatedPositions is not a list of {coin, szi}")
    held = []
    for p in positions:
        _names(p.get("coin"))
        held.append(LiquidatedPosition(coin=p["coin"], szi=_amount(p, "szi", SZ_DECIMALS)))
    optional = {
        name: _usd(fields, key)
        for name, key in (("account_value", "accountValue"), ("notional", "liquidatedNtlPos"))
        if fields.get(key) is not None
    }
    record = LiquidationRecord(
        account=user, cross=leverage.lower() == "cross", positions=held, ts=ts, id=ident, **optional
    )
    note = {
        "account": user,
        "ts": ts,
        "leverage_type": leverage,
        "account_value": str(fields.get("accountValue")),
        "positions": [{"coin": p.get("coin"), "szi": str(p.get("szi"))} for p in positions],
    }
    return [record], note
