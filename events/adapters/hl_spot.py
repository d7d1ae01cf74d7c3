"""Info API `spotClearinghouseState` -> events that seed an account's spot side, its mode, and
what it borrowed and supplied (docs/hyperliquid-data.md, "Spot balances").

The mode is read as the API signals it: an `abstraction` beside the body (a `userAbstraction`
answer, as `subAccounts2` entries carry one), else `portfolioMarginEnabled: true` (sent for
portfolio margin only), else `tokenToAvailableAfterMaintenance` (unified and portfolio accounts
only), else standard. A balance `{coin, total, hold, entryNtl[, borrowed, supplied]}` holds `total` of the token,
what it supplied and what it borrowed included, so the account's own deposit is `total - borrowed`.

Standard: each `total` is deposited into the spot balance (USDC, which a deposit puts in the perp
ledger, moved to spot by a class transfer). Unified and portfolio: the deposits (USDC stays in the
ledger, their one USDC balance), then `set_mode`, then each borrow, lent by the outside world's
lender `LENDER` (which supplies the amount first: the engine lends only suppliers' money), then each
supply. `hold` (reserved by orders and margin) and `entryNtl` (cost basis) are not balances of their
own: they are reported, not booked.

A unified or portfolio account with open positions cannot switch modes: its `clearinghouseState`
import is made whole with its spot state instead (`pooled_import`), created in its mode.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from events.bounds import NAME_PATTERN
from events.schema import Borrow, ClassTransfer, Deposit, ImportAccount, ImportedBalance, SetMode, Supply, Token
from events.units import NTL_DIV, TOKEN_DECIMALS, USD_DECIMALS, DecimalError, parse_decimal

_NAME = re.compile(NAME_PATTERN)
LENDER = "@lender"  # the outside world's supplier of what imported accounts borrowed
USDC = "USDC"


class SpotError(ValueError):
    """A balance that cannot be booked; the message is the reason."""


# `userAbstraction` answers (also beside a `spotState` in `subAccounts2`) -> the engine's modes
ABSTRACTIONS = {
    "portfolioMargin": "portfolio",
    "unifiedAccount": "unified",
    "default": "standard",
    "disabled": "standard",
    "dexAbstraction": "standard",
}


def body_mode(body: dict[str, Any]) -> str:
    """The account mode a spotClearinghouseState body signals: its `abstraction` when it carries
    one, else "portfolio" (`portfolioMarginEnabled: true`), "unified"
    (`tokenToAvailableAfterMaintenance`) or "standard"."""
    if "abstraction" in body:
        mode = ABSTRACTIONS.get(body["abstraction"]) if isinstance(body["abstraction"], str) else None
        if mode is None:
            known = ", ".join(ABSTRACTIONS)
            raise SpotError(f"abstraction {str(body['abstraction'])[:40]!r} is none of {known}")
        return mode
    if body.get("portfolioMarginEnabled") is True:
        return "portfolio"
    if "tokenToAvailableAfterMaintenance" in body:
        return "unified"
    return "standard"


def resolve_mode(body: dict[str, Any] | None, word: str | None) -> str | None:
    """The account's mode from a `userAbstraction` answer (`word`, read on its own) and its spot
    state, if given: the answer wins over what the body signals, but not over an `abstraction`
    the body carries that says otherwise. None: neither says."""
    if word is None:
        return body_mode(body) if body is not None else None
    mode = body_mode({"abstraction": word})
    if body is not None and "abstraction" in body and body_mode(body) != mode:
        raise SpotError(f"the userAbstraction answer {word!r} and the spot state's {body['abstraction']!r} disagree")
    return mode


def read_balances(
    body: dict[str, Any], mode: str
) -> tuple[list[tuple[str, int, int, int]], list[tuple[int, str]], dict[str, Any]]:
    """(coin, total, borrowed, supplied) of each balance that can be booked, (index, reason) of
    each left out, and the note of what was read."""
    balances = body.get("balances")
    if not isinstance(balances, list):
        raise SpotError("balances is not a list")
    read: list[tuple[str, int, int, int]] = []
    rejects: list[tuple[int, str]] = []
    seen: list[dict[str, str]] = []
    for index, balance in enumerate(balances):
        try:
            read.append(_amounts(balance, mode))
        except SpotError as exc:
            rejects.append((index, str(exc)))
            continue
        seen.append({k: str(balance.get(k, "0")) for k in ("coin", "total", "hold", "borrowed", "supplied")})
    return read, rejects, {"mode": mode, "balances": seen}


def spot_events(
    body: dict[str, Any], user: str, tokens: set[str], mode_now: str | None = None, mode: str | None = None
) -> tuple[list[Any], list[tuple[int, str]], dict[str, Any]]:
    """The events that give `user` the spot side of `body`, (index, reason) of each balance left
    out, and a note of what was read. `tokens`: the tokens the log lists (this call adds the ones
    it lists); `mode_now`: the account's mode in the log, if a `set_mode` set one; `mode`: the
    mode to give it (default: the one the body signals)."""
    check_user(user)
    mode = mode or body_mode(body)  # before the balances: an unknown abstraction refuses the whole body
    read, rejects, note = read_balances(body, mode)
    deposits: list[Any] = []
    lending: list[Any] = []
    for coin, total, borrowed, _ in read:
        if total:
            deposits += _listed(coin, tokens) + _deposit(user, coin, total - borrowed, mode)
            lending += _lend(user, coin, borrowed)
    switch = [] if mode == (mode_now or "standard") else [SetMode(account=user, mode=mode, id=f"hl:mode:{user}")]
    return deposits + switch + lending + _supplies(user, read), rejects, {"account": user, **note}


def pooled_import(
    seed: ImportAccount, body: dict[str, Any], mode: str, tokens: set[str]
) -> tuple[list[Any], list[tuple[int, str]], dict[str, Any]]:
    """A unified or portfolio account's `clearinghouseState` import (`seed`) made whole with its
    spot state: created in `mode` with its own spot tokens, its ledger the USDC it holds less
    what its positions cost at entry (and its isolated ledgers), then its borrows and supplies.

    The relation (docs/hyperliquid-data.md, "Unified and portfolio accounts with positions"):
    such an account's USDC is its spot USDC `total`, its settled cash, borrowed and supplied USDC
    included, isolated margin too; its value is `total + unrealizedPnl`. Its perp state's
    `totalRawUsd` and `accountValue` are not its collateral and are not read."""
    user = seed.account
    check_user(user)
    read, rejects, note = read_balances(body, mode)
    own = {coin: total - borrowed for coin, total, borrowed, _ in read}
    cost = sum(p.szi * p.entry_px // NTL_DIV + (0 if p.cross else p.raw_usd) for p in seed.positions)
    listed = [event for coin, total, _, _ in read if total for event in _listed(coin, tokens)]
    balances = [ImportedBalance(token=coin, amount=amount) for coin, amount in own.items() if coin != USDC and amount]
    made = msgspec.structs.replace(seed, raw_usd=own.get(USDC, 0) - cost, mode=mode, balances=balances)
    lending = [event for coin, _, borrowed, _ in read for event in _lend(user, coin, borrowed)]
    return [*listed, made, *lending, *_supplies(user, read)], rejects, {"account": user, **note}


def check_user(user: str) -> None:
    """Refuses an account name the log could not hold."""
    if not _NAME.match(user):
        raise SpotError(f"user is not an account name: {user[:70]!r}")


def _listed(coin: str, tokens: set[str]) -> list[Any]:
    """A `token` event for a token the log does not list yet (this run lists it once)."""
    if coin == USDC or coin in tokens:
        return []
    tokens.add(coin)
    return [Token(token=coin, decimals=TOKEN_DECIMALS)]


def _supplies(user: str, read: list[tuple[str, int, int, int]]) -> list[Any]:
    return [
        Supply(account=user, amount=supplied, token=coin, id=f"hl:supply:{user}:{coin}")
        for coin, total, _, supplied in read
        if total and supplied
    ]


def _amount(balance: dict[str, Any], name: str, coin: str) -> int:
    """An amount in the engine's units. Spot USDC is written to 8 decimals; the engine keeps
    micro-USDC, so the last two are dropped (rounded down: never more than the account holds)."""
    value = balance.get(name, None if name == "total" else "0")
    if value is None:
        raise SpotError(f"{name} of {coin} is missing")
    try:
        text = value if isinstance(value, (str, int)) else str(value)
        amount = parse_decimal(text, TOKEN_DECIMALS)
    except DecimalError as exc:
        raise SpotError(f"{name} of {coin}: {exc}") from None
    if amount < 0:
        raise SpotError(f"{name} of {coin} is negative")
    return amount // 10 ** (TOKEN_DECIMALS - USD_DECIMALS) if coin == USDC else amount


def _amounts(balance: Any, mode: str) -> tuple[str, int, int, int]:
    """(coin, total, borrowed, supplied) of one balance, checked against each other and the mode."""
    coin = balance.get("coin") if isinstance(balance, dict) else None
    if not isinstance(coin, str) or not _NAME.match(coin):
        raise SpotError(f"coin is not a token name: {str(coin)[:70]!r}")
    total, borrowed, supplied = (_amount(balance, name, coin) for name in ("total", "borrowed", "supplied"))
    if borrowed and mode != "portfolio":
        raise SpotError(f"{coin} borrowed by a {mode} account: only portfolio margin borrows")
    if borrowed > total:
        raise SpotError(f"borrowed {coin} above total: the account's own balance would be negative")
    if supplied > total:
        raise SpotError(f"supplied {coin} above total: total holds what is supplied")
    return coin, total, borrowed, supplied


def _deposit(user: str, coin: str, amount: int, mode: str) -> list[Any]:
    """The account's own `amount` of `coin`: USDC into the ledger (moved to spot when standard)."""
    if not amount:
        return []
    ident = f"hl:spot:{user}:{coin}"
    if coin != USDC:
        return [Deposit(account=user, amount=amount, token=coin, id=ident)]
    moved = [ClassTransfer(account=user, amount=amount, to_perp=False, id=f"{ident}:to-spot")]
    return [Deposit(account=user, amount=amount, id=ident), *(moved if mode == "standard" else [])]


def _lend(user: str, coin: str, amount: int) -> list[Any]:
    """The lender supplies `amount` of `coin` (USDC through its spot balance), then `user` borrows it."""
    if not amount:
        return []
    ident = f"hl:lend:{user}:{coin}"
    token = {} if coin == USDC else {"token": coin}
    moved = (
        [ClassTransfer(account=LENDER, amount=amount, to_perp=False, id=f"{ident}:to-spot")] if coin == USDC else []
    )
    return [
        Deposit(account=LENDER, amount=amount, id=ident, **token),
        *moved,
        Supply(account=LENDER, amount=amount, id=f"{ident}:supply", **token),
        Borrow(account=user, amount=amount, id=f"hl:borrow:{user}:{coin}", **token),
    ]
