"""A book: the margin calculator's input (docs/risk-margin.md, "Describing a book"), one
account's holdings at given prices, in the wire format's decimals.

Balances, supplied and borrowed amounts are in tokens (USDC included: at most 6 decimals,
which the calculator checks); sizes, prices and leverages carry the bounds of the events. An
unknown field is refused, so a misspelt key is named rather than ignored."""

from __future__ import annotations

from typing import Annotated

import msgspec

from events.bounds import MAX_POSITIONS, MAX_PRICES, MAX_TIERS
from events.schema import Leverage, MarginTier, Name, Places, Price, Size, Tokens, Usd


class BookPrice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A coin's mark and oracle; either alone stands for both (a spot token needs only one)."""

    mark: Price | None = None
    oracle: Price | None = None


class BookPosition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A perp position: signed size, entry price, leverage (default: the market's up to 20x),
    cross or isolated; an isolated one holds `margin` USDC (default: its initial margin at
    entry, `|szi| * entry_px / leverage`); `max_leverage`: its own cap, if it has one."""

    coin: Name
    szi: Size
    entry_px: Price
    leverage: Leverage | None = None
    cross: bool = True
    margin: Usd | None = None
    max_leverage: Leverage | None = None


class BookMarket(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A coin's market as the `market` event gives it."""

    sz_decimals: Places
    margin_tiers: Annotated[list[MarginTier], msgspec.Meta(min_length=1, max_length=MAX_TIERS)]
    only_isolated: bool = False


Amounts = Annotated[dict[Name, Tokens], msgspec.Meta(max_length=MAX_PRICES)]


class MarginBook(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prices: Annotated[dict[Name, BookPrice], msgspec.Meta(min_length=1, max_length=MAX_PRICES)]
    balances: Amounts = {}
    supplied: Amounts = {}
    borrowed: Amounts = {}
    positions: Annotated[list[BookPosition], msgspec.Meta(max_length=MAX_POSITIONS)] = []
    markets: Annotated[dict[Name, BookMarket], msgspec.Meta(max_length=MAX_PRICES)] | None = None
