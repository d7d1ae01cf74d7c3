"""Info API `spotClearinghouseState` -> events that seed an account's spot side
(docs/hyperliquid-data.md, "Spot balances").

Each balance `{coin, token, hold, total, entryNtl}` becomes a deposit of `total` into the
account's spot balance: a token the log does not list is listed first with 8 decimals (the
finest step the engine keeps), and USDC, which a deposit puts in the perp ledger, is moved to spot
by a class transfer. `hold` (reserved by open orders) and `entryNtl` (cost basis, for display) are
not balances of their own.
"""

from __future__ import annotations

import re
from typing import Any

from events.bounds import NAME_PATTERN
from events.schema import ClassTransfer, Deposit, Token
from events.units import TOKEN_DECIMALS, USD_DECIMALS, DecimalError, parse_decimal

_NAME = re.compile(NAME_PATTERN)


class SpotError(ValueError):
    """A balance that cannot be booked; the message is the reason."""


def spot_events(body: dict[str, Any], user: str, tokens: set[str]) -> tuple[list[Any], list[tuple[int, str]]]:
    """The events that give `user` the spot balances of `body`, and (index, reason) of each
    balance left out. `tokens`: the tokens the log already lists (this call adds the ones it lists)."""
    if not _NAME.match(user):
        raise SpotError(f"user is not an account name: {user[:70]!r}")
    balances = body.get("balances")
    if not isinstance(balances, list):
        raise SpotError("balances is not a list")
    events: list[Any] = []
    rejects: list[tuple[int, str]] = []
    for index, balance in enumerate(balances):
        try:
            events += _balance(balance, user, tokens)
        except SpotError as exc:
            rejects.append((index, str(exc)))
    return events, rejects


def _balance(balance: Any, user: str, tokens: set[str]) -> list[Any]:
    coin = balance.get("coin") if isinstance(balance, dict) else None
    if not isinstance(coin, str) or not _NAME.match(coin):
        raise SpotError(f"coin is not a token name: {str(coin)[:70]!r}")
    total = balance.get("total")
    usdc = coin == "USDC"
    try:
        text = total if isinstance(total, (str, int)) else str(total)
        amount = parse_decimal(text, USD_DECIMALS if usdc else TOKEN_DECIMALS)
    except DecimalError as exc:
        raise SpotError(f"total of {coin}: {exc}") from None
    if amount < 0:
        raise SpotError(f"total of {coin} is negative")
    if not amount:
        return []
    ident = f"hl:spot:{user}:{coin}"
    if usdc:
        return [
            Deposit(account=user, amount=amount, id=ident),
            ClassTransfer(account=user, amount=amount, to_perp=False, id=f"{ident}:to-spot"),
        ]
    listed = [] if coin in tokens else [Token(token=coin, decimals=TOKEN_DECIMALS)]
    tokens.add(coin)
    return [*listed, Deposit(account=user, amount=amount, token=coin, id=ident)]
