"""Hyperliquid fills (API `userFills`, node `node_fills_by_block`) -> trades (docs/hyperliquid-data.md).

A fill is one side of a trade. Node files hold both sides; they are paired by `tid` into one
trade between the two users. A one-user file (API fills, or a node file read for one `--user`)
trades against the outside world, the system account `EXTERNAL` (`@import`, which also holds
the other side of imported positions and is never liquidated), so sizes still net to zero.

A file starts in the middle of history: each account the log does not know yet is created by an
`import_account` that seeds, coin by coin, the position its first fill starts from
(`startPosition`). The entry price of a seeded position is backed out of the first `closedPnl` of
the coin: `entry = px - closedPnl / (side * closed)` at the first fill that reduces it, less the
fills that grew it before that one. When no fill of the window reduces it, no `closedPnl` ever
depends on it, and the first fill's price stands in.

Every fill is checked against Hyperliquid's precision rules (sizes on the `szDecimals` lot;
prices of at most 5 significant figures, integers aside, and at most `6 - szDecimals` decimals);
a fill that breaks one, or that the clearinghouse cannot book (a spot fill, a fee in another token
than USDC), is left out with the reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from events.bounds import MAX_LEVERAGE, NAME_PATTERN
from events.schema import (
    ImportAccount,
    ImportedPosition,
    LiquidationMark,
    MarginTier,
    Market,
    SetMode,
    Token,
    Trade,
)
from events.units import NTL_DIV, PX_DECIMALS, SZ_DECIMALS, USD_DECIMALS, DecimalError, format_decimal, parse_decimal

EXTERNAL = "@import"  # the engine's import account (clearinghouse.engine.IMPORT_ACCOUNT)
OUTSIDE = "@outside"  # an empty account whose import brings EXTERNAL into being when no seed does
ADL_DIR = "Auto-Deleveraging"
DEFAULT_MAX_LEVERAGE = 40  # one margin tier at this leverage for a coin the meta does not list
PERP_PX_DECIMALS = 6  # a perp price has at most 6 - szDecimals decimals
MAX_SIG_FIGS = 5
_NAME = re.compile(NAME_PATTERN)


class FillError(ValueError):
    """A fill left out; the message is the reason written to the rejects."""


@dataclass(slots=True)
class Leg:
    """One side of a trade, as the fill gives it, in the engine's units."""

    user: str
    coin: str
    buy: bool
    px: int
    sz: int
    time: int
    start: int  # startPosition, signed
    closed_pnl: int
    fee: int  # everything this side paid, builder and deployer fees included
    builder_fee: int
    tid: int | None
    key: str  # tid, or a digest of the fill for old fills without one
    dir: str
    adl: bool
    liquidation: tuple[str, int | None, str] | None  # (liquidatedUser, markPx, method)


def _decimal(fill: dict[str, Any], name: str, decimals: int, default: str | None = None) -> int:
    value = fill.get(name, default)
    if value is None:
        raise FillError(f"missing {name}")
    try:
        return parse_decimal(value if isinstance(value, str) else str(value), decimals)
    except DecimalError as exc:
        raise FillError(f"{name}: {exc}") from None


def _integer(fill: dict[str, Any], name: str) -> int | None:
    """An integer field, as the API writes it (a number) or as some copies do (a digit string)."""
    value = fill.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise FillError(f"{name} is not a whole number: {str(value)[:40]!r}")
    return int(value)


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        rule = "1 to 64 ASCII letters, digits or _ . : / @ + -"
        raise FillError(f"{what} is not a name ({rule}): {str(value)[:70]!r}")
    return value


def parse_leg(fill: dict[str, Any], user: str) -> Leg:
    """One fill; FillError says why it cannot be booked."""
    _name(user, "user")
    coin = _name(fill.get("coin"), "coin")
    if "/" in coin or coin.startswith("@"):
        raise FillError(f"spot fill ({coin}): only perp fills are ingested")
    token = fill.get("feeToken", "USDC")
    if token != "USDC":
        raise FillError(f"fee in {str(token)[:20]!r}: perps settle in USDC here")
    side = fill.get("side")
    if side not in ("B", "A"):
        raise FillError(f"side must be B or A, got {str(side)[:10]!r}")
    time = _integer(fill, "time")
    if time is None:
        raise FillError("missing time")
    tid = _integer(fill, "tid")
    if tid is not None and tid >= 2**62:
        raise FillError(f"tid {tid} is above 2^62")
    fee = _decimal(fill, "fee", USD_DECIMALS) + _decimal(fill, "deployerFee", USD_DECIMALS, "0")
    liquidation = None
    marker = fill.get("liquidation")
    if isinstance(marker, dict):
        mark = _decimal(marker, "markPx", PX_DECIMALS) if marker.get("markPx") is not None else None
        method = marker.get("method", "market")
        if method not in ("market", "backstop"):
            raise FillError(f"liquidation method must be market or backstop, got {str(method)[:20]!r}")
        liquidation = (_name(marker.get("liquidatedUser"), "liquidatedUser"), mark, method)
    if tid is not None:
        key = str(tid)
    else:  # fills from before trade ids: the fill itself identifies it
        parts = (user, coin, str(time), *(str(fill.get(k)) for k in ("hash", "oid", "startPosition", "sz", "px")))
        key = "h" + hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()
    return Leg(
        user=user,
        coin=coin,
        buy=side == "B",
        px=_decimal(fill, "px", PX_DECIMALS),
        sz=_decimal(fill, "sz", SZ_DECIMALS),
        time=time,
        start=_decimal(fill, "startPosition", SZ_DECIMALS),
        closed_pnl=_decimal(fill, "closedPnl", USD_DECIMALS, "0"),
        fee=fee,
        builder_fee=_decimal(fill, "builderFee", USD_DECIMALS, "0"),
        tid=tid,
        key=key,
        dir=str(fill.get("dir", "")),
        adl=fill.get("dir") == ADL_DIR,
        liquidation=liquidation,
    )


def precision_error(leg: Leg, sz_decimals: int) -> str | None:
    """Why a fill breaks Hyperliquid's precision rules for a coin of `sz_decimals`, or None."""
    lot = 10 ** (SZ_DECIMALS - sz_decimals)
    if leg.sz <= 0 or leg.sz % lot:
        size = format_decimal(leg.sz, SZ_DECIMALS)
        return f"sz {size} is not a positive multiple of {leg.coin}'s lot (szDecimals {sz_decimals})"
    if leg.start % lot:
        start = format_decimal(leg.start, SZ_DECIMALS)
        return f"startPosition {start} is not on {leg.coin}'s lot (szDecimals {sz_decimals})"
    if leg.px <= 0:
        return f"px {format_decimal(leg.px, PX_DECIMALS)} is not positive"
    if leg.px % 10**PX_DECIMALS:  # integer prices are always allowed
        figures = len(str(leg.px).rstrip("0"))
        if figures > MAX_SIG_FIGS:
            price = format_decimal(leg.px, PX_DECIMALS)
            return f"px {price} has {figures} significant figures; at most {MAX_SIG_FIGS}"
        places = PERP_PX_DECIMALS - sz_decimals
        if leg.px % 10 ** (PX_DECIMALS - places):
            return (
                f"px {format_decimal(leg.px, PX_DECIMALS)} has more than {places} decimals "
                f"(6 - szDecimals {sz_decimals})"
            )
    return None


@dataclass
class LogContents:
    """What a log already holds: source ids, accounts (as sides or owners), listed markets and
    tokens, and the mode each `set_mode` left an account in."""

    ids: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    markets: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    modes: dict[str, str] = field(default_factory=dict)


def contents_of(events: Iterable[Any]) -> LogContents:
    known = LogContents()
    for event in events:
        if event.id is not None:
            known.ids.add(event.id)
        if isinstance(event, Market):
            known.markets.add(event.coin)
        elif isinstance(event, Token):
            known.tokens.add(event.token)
        elif isinstance(event, SetMode):
            known.modes[event.account] = event.mode
        elif isinstance(event, ImportAccount):
            known.accounts.add(EXTERNAL)  # an import brings the outside world into being
        for name in ("account", "buyer", "seller", "to", "from_"):
            value = getattr(event, name, None)
            if isinstance(value, str):
                known.accounts.add(value)
    return known


@dataclass(slots=True)
class _Seed:
    """The position a coin's first fill starts from, and what is known of its entry price."""

    start: int
    first_px: int
    growth: int = 0  # sum of |size| * px (1e-16 USDC) of the fills that grew it before the first reduction
    entry: int | None = None
    done: bool = False

    def follow(self, leg: Leg, size: int) -> None:
        """Reads the entry from the first fill that reduces the seeded position."""
        pos = leg.start
        if self.done or not pos:
            self.done = True
            return
        if (size > 0) == (pos > 0):
            self.growth += abs(size) * leg.px
            return
        side = 1 if pos > 0 else -1
        closed = min(abs(size), abs(pos))
        scale = 10 ** (PX_DECIMALS + SZ_DECIMALS - USD_DECIMALS)  # pnl (1e-6) / size (1e-8) -> price (1e-8)
        now = Fraction(leg.px) - Fraction(leg.closed_pnl * scale, side * closed)
        entry = (now * abs(pos) - self.growth) / abs(self.start)
        self.entry = round(entry) if entry > 0 else None  # round() of a Fraction: half to even
        self.done = True


@dataclass
class Outcome:
    """What one file gave."""

    fills: int = 0
    trades: int = 0
    dropped: int = 0  # already in the log (or earlier in this ingest)
    rejected: int = 0


class FillIngest:
    """Turns the fills of one or more files into events, checked against what the log holds."""

    def __init__(self, known: LogContents, markets: dict[str, Market]) -> None:
        self.known = known
        self.meta = markets
        self.trades: list[Trade] = []
        self.rejects: list[dict[str, Any]] = []
        self.seeds: dict[str, dict[str, _Seed]] = {}
        self.first_ts: int | None = None
        self._decimals: dict[str, int] = {}  # coins the meta does not list: decimals seen in sizes
        self.ids: set[str] = set()  # source ids given by this ingest

    def _reject(self, where: dict[str, Any], reason: str) -> None:
        self.rejects.append({**where, "reason": reason})

    def _check(self, leg: Leg) -> str | None:
        market = self.meta.get(leg.coin)
        if market is not None:
            return precision_error(leg, market.sz_decimals)
        seen = max(_places(leg.sz), _places(leg.start), self._decimals.get(leg.coin, 0))
        self._decimals[leg.coin] = seen
        return precision_error(leg, seen) if seen <= PERP_PX_DECIMALS else f"sz of {leg.coin} has {seen} decimals"

    def add(self, legs: list[Leg], where: dict[str, Any], out: Outcome) -> None:
        """One trade from its legs (one or two): checked, de-duplicated, seeded, booked."""
        out.fills += len(legs)
        ident = f"hl:{legs[0].key}" if len(legs) == 2 else f"hl:{legs[0].key}:{legs[0].user}"
        if ident in self.known.ids or ident in self.ids:
            out.dropped += 1
            return
        problem = next((p for p in map(self._check, legs) if p), None)
        buy = next((leg for leg in legs if leg.buy), None)
        sell = next((leg for leg in legs if not leg.buy), None)
        if problem is None and len(legs) == 2:
            problem = _pair_error(buy, sell)
        trade = None
        if problem is None:
            try:
                trade = _trade(buy, sell, ident)
            except FillError as exc:
                problem = str(exc)
        if trade is None:
            out.rejected += 1
            self._reject({**where, "tid": legs[0].tid}, problem or "")
            return
        self.ids.add(ident)
        for leg in legs:
            self._follow(leg)
        self.trades.append(trade)
        out.trades += 1

    def _follow(self, leg: Leg) -> None:
        if leg.user in self.known.accounts:
            return
        if self.first_ts is None or leg.time < self.first_ts:
            self.first_ts = leg.time
        coins = self.seeds.setdefault(leg.user, {})
        seed = coins.get(leg.coin)
        if seed is None:
            seed = coins[leg.coin] = _Seed(leg.start, leg.px)
        seed.follow(leg, leg.sz if leg.buy else -leg.sz)

    def _market(self, coin: str) -> Market:
        return self.meta.get(coin) or Market(
            coin=coin, sz_decimals=self._decimals.get(coin, 0), margin_tiers=[MarginTier(0, DEFAULT_MAX_LEVERAGE)]
        )

    def _leverage(self, coin: str) -> int:
        """The highest leverage this ingest knows to be valid: the listed maximum, else 1."""
        if coin in self.meta or coin not in self.known.markets:
            return min(self._market(coin).margin_tiers[0].max_leverage, MAX_LEVERAGE)
        return 1

    def events(self) -> list[Any]:
        """Markets the log lacks, then the seeds of new accounts, then the trades."""
        coins = sorted({t.coin for t in self.trades} - self.known.markets)
        out: list[Any] = [self._market(coin) for coin in coins]
        for user, seeds in self.seeds.items():
            positions = [
                ImportedPosition(coin=coin, szi=s.start, entry_px=s.entry or s.first_px, leverage=self._leverage(coin))
                for coin, s in seeds.items()
                if s.start
            ]
            # The ledger holds what the positions cost at entry (a buy of szi at entry_px, rounded as
            # the engine books one): the account's collateral is 0, its value their unrealised pnl.
            raw = sum(-(p.szi * p.entry_px // NTL_DIV) for p in positions)
            out.append(
                ImportAccount(account=user, raw_usd=raw, positions=positions, ts=self.first_ts, id=f"hl:seed:{user}")
            )
        if not self.seeds and self._needs_outside():
            out.append(ImportAccount(account=OUTSIDE, raw_usd=0, id=f"hl:seed:{OUTSIDE}"))
        return out + self.trades

    def _needs_outside(self) -> bool:
        """One-user trades on a log where the outside world does not exist yet (its users already
        known, say from their deposits): only an import creates `EXTERNAL`, and none seeds here."""
        return EXTERNAL not in self.known.accounts and any(EXTERNAL in (t.buyer, t.seller) for t in self.trades)

    def seed_notes(self) -> list[dict[str, Any]]:
        """Each seeded position and whether its entry came from a closedPnl."""
        return [
            {
                "account": user,
                "coin": coin,
                "szi": format_decimal(s.start, SZ_DECIMALS),
                "entry_px": format_decimal(s.entry or s.first_px, PX_DECIMALS),
                "entry_from": "closedPnl" if s.entry else "first fill price",
            }
            for user, seeds in self.seeds.items()
            for coin, s in seeds.items()
            if s.start
        ]


def _places(units: int) -> int:
    """Decimal places an amount in 1e-8 units needs."""
    text = str(abs(units)).rjust(SZ_DECIMALS + 1, "0")[-SZ_DECIMALS:].rstrip("0")
    return len(text)


def _pair_error(buy: Leg | None, sell: Leg | None) -> str | None:
    if buy is None or sell is None:
        return "both legs of the trade are on the same side"
    if buy.user == sell.user:
        return "both legs of the trade are the same user"
    if (buy.coin, buy.px, buy.sz) != (sell.coin, sell.px, sell.sz):
        return "the two legs disagree on coin, px or sz"
    return None


def _trade(buy: Leg | None, sell: Leg | None, ident: str) -> Trade:
    leg = buy or sell
    assert leg is not None
    buyer = buy.user if buy else EXTERNAL
    seller = sell.user if sell else EXTERNAL
    mark = None
    for side in (buy, sell):
        if side is not None and side.liquidation is not None:
            user, mark_px, method = side.liquidation
            if user in (buyer, seller):
                mark = LiquidationMark(account=user, method=method, mark=mark_px)
            elif EXTERNAL in (buyer, seller):
                mark = LiquidationMark(account=EXTERNAL, method=method, mark=mark_px, user=user)
            else:
                raise FillError(f"liquidated user {user} is neither side of the trade")
    return Trade(
        coin=leg.coin,
        px=leg.px,
        sz=leg.sz,
        buyer=buyer,
        seller=seller,
        buyer_fee=buy.fee if buy else 0,
        seller_fee=sell.fee if sell else 0,
        tid=leg.tid,
        liquidation=mark,
        buyer_builder_fee=buy.builder_fee if buy else 0,
        seller_builder_fee=sell.builder_fee if sell else 0,
        adl=any(side is not None and side.adl for side in (buy, sell)),
        ts=leg.time,
        id=ident,
    )
