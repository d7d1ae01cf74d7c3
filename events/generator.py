"""A seeded, deterministic, realistic synthetic event stream for benchmarks, demos and tests.

The stream opens with the market listings, one price for every market and a deposit per account,
then mixes trades, price updates and account events (funding lands on every hour boundary of
event time). A rough book of each account's positions keeps trades sized within a few times the
account's net deposits, so most accounts stay solvent and rejections are rare but possible.

Determinism: all randomness comes from one `random.Random(seed)`, through `random()` (an exact
multiple of 2**-53, so scaling it to an int is the same on every platform; `randrange` would be
slower, and `gauss`/`paretovariate` call libm, which may not be) and `getrandbits`/`shuffle`.
Every amount is integer arithmetic, so a config gives the same bytes on any machine.
"""

from __future__ import annotations

import os
import random
from bisect import bisect_right
from dataclasses import dataclass
from itertools import islice
from typing import Iterable, Iterator

from clearinghouse.units import NTL_DIV, PX, USD, ceil_div
from events.codec import encode_json
from events.schema import (
    Deposit,
    Funding,
    InputEvent,
    IsolatedMargin,
    Market,
    MarginTier,
    PricePoint,
    Prices,
    SetLeverage,
    Trade,
    Transfer,
    Withdraw,
)

HOUR_MS = 3_600_000

# The first markets look like real ones: (coin, sz_decimals, starting price in 1e-8 USDC).
_LISTED: tuple[tuple[str, int, int], ...] = (
    ("BTC", 5, 65_000 * PX),
    ("ETH", 4, 3_200 * PX),
    ("SOL", 2, 150 * PX),
    ("HYPE", 2, 30 * PX),
    ("FARTCOIN", 1, 12 * PX // 10),
    ("DOGE", 0, 15 * PX // 100),
    ("XRP", 0, 60 * PX // 100),
    ("AVAX", 2, 30 * PX),
    ("LINK", 1, 15 * PX),
    ("SUI", 1, 15 * PX // 10),
)
# Margin tables as (lower bound in whole USDC, max leverage), from the rulebook's examples.
_TIERS: dict[str, tuple[tuple[int, int], ...]] = {
    "BTC": ((0, 40), (150_000_000, 20)),
    "ETH": ((0, 25), (100_000_000, 15)),
    "SOL": ((0, 20), (70_000_000, 10)),
}
_DEFAULT_TIERS = ((0, 10), (20_000_000, 5))
_ISOLATED_EVERY = 10  # market i is isolated-only when i % 10 == 4 (FARTCOIN, M14, M24, ...)

_MIN_DEPOSIT = 50 * USD
_MAX_DEPOSIT = 25_000_000 * USD
_FINE = 10**8  # extra digits of the hidden fair price, so small steps do not stick to the tick
_STEP_PPB = 150_000  # per-update random-walk step, uniform within +-0.015%
_JUMP_ONE_IN = 20_000  # one market update in this many jumps by 1%-5% (a few a day)
_MARK_SPREAD_PPM = 300  # mark within +-0.03% of the oracle
_TRADE_SPREAD_PPM = 500  # trade price within +-0.05% of the mark
_FUNDING_MAX = 50_000_000  # |hourly rate| <= 0.00005, in the 1e-12 scale
_TAKER_FEE = 45  # per 100_000 of notional (0.045%)
_MAKER_FEE = 15  # 0.015%
_MAKER_REBATE = 2  # 0.002%, paid to the most active 1% of accounts (the market makers)
_FEE_DIV = 100_000
_CLOSE_PERCENT = 25  # an account with a position closes it in this share of its trades...
_FLIP_PERCENT = 20  # ...and of those closes, this share flips to the other side
_PAIR_ATTEMPTS = 100


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; the same config always gives the same stream."""

    accounts: int = 1000
    markets: int = 5
    events: int = 100_000
    seed: int = 1
    start_ts: int = 1_700_000_000_000  # ms
    trade_share: float = 0.70  # of body events; prices get `prices_share`, the rest are other
    prices_share: float = 0.25
    min_step_ms: int = 1  # event time advances by a uniform step in [min, max] ms
    max_step_ms: int = 300
    gross_leverage: int = 3  # cap on an account's total notional / its net deposits


@dataclass(slots=True)
class _Book:
    """A market's listing and its hidden price process."""

    coin: str
    sz_decimals: int
    lot: int
    max_leverage: int  # of the first tier
    only_isolated: bool
    tiers: tuple[tuple[int, int], ...]
    fair: int  # in 1e-8 / _FINE
    oracle: int = 0
    mark: int = 0


def valid_price(raw: int, sz_decimals: int) -> int:
    """`raw` (1e-8 scale) rounded to the nearest positive price Hyperliquid accepts: at most
    6 - sz_decimals decimals and 5 significant figures."""
    tick = max(10 ** (2 + sz_decimals), 10 ** max(0, len(str(raw)) - 5))
    return (raw + tick // 2) // tick * tick or tick


def _cumulative_zipf(n: int) -> list[int]:
    """Cumulative integer weights 1/rank (Zipf, s = 1) for picking rank 0..n-1."""
    cum, total = [], 0
    for rank in range(1, n + 1):
        total += 10**12 // rank
        cum.append(total)
    return cum


class _Generator:
    """The simulation state behind `generate`: prices, clock and a rough per-account book."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.random = self.rng.random
        self.ts = config.start_ts
        self.hour = config.start_ts // HOUR_MS
        self.tid = 0
        self.trades_owed = 0  # trades displaced by a required SetLeverage, repaid from "other"
        self.books = [self._list_market(i) for i in range(config.markets)]
        self.market_cum = _cumulative_zipf(config.markets)
        n = config.accounts
        self.names = [f"0x{self.rng.getrandbits(160):040x}" for _ in range(n)]
        self.by_activity = list(range(n))  # rank -> account: the busiest accounts are random
        self.rng.shuffle(self.by_activity)
        self.account_cum = _cumulative_zipf(n)
        self.makers = set(self.by_activity[: max(1, n // 100)])
        self.first_deposit = [0] * n
        self.funds = [0] * n  # net cash in: deposits and transfers in, less what left
        self.gross = [0] * n  # sum of `ntl` over markets
        self.pos = [[0] * config.markets for _ in range(n)]
        self.ntl = [[0] * config.markets for _ in range(n)]  # |pos| at the last trade price
        self.leverage: dict[tuple[int, int], tuple[int, bool]] = {}  # (account, market) -> (lev, cross)
        self.isolated: list[tuple[int, int]] = []  # (account, market) pairs ever set isolated
        self.isolated_seen: set[tuple[int, int]] = set()

    # ---- setup ---------------------------------------------------------------------------

    def _list_market(self, i: int) -> _Book:
        if i < len(_LISTED):
            coin, szd, start = _LISTED[i]
        else:  # a lot worth $0.10-$2, as Hyperliquid picks sz_decimals
            coin, szd = f"M{i}", self._int(0, 3)
            start = 10**szd * self._int(10, 200) * PX // 100
        only_isolated = i % _ISOLATED_EVERY == 4
        tiers = ((0, self._int(3, 10)),) if only_isolated else _TIERS.get(coin, _DEFAULT_TIERS)
        book = _Book(coin, szd, 10 ** (8 - szd), tiers[0][1], only_isolated, tiers, start * _FINE)
        book.oracle = book.mark = valid_price(start, szd)
        return book

    def header(self) -> Iterator[InputEvent]:
        """Listings, then every market's price, then one skewed deposit per account."""
        ts = self.ts
        for b in self.books:
            tiers = [MarginTier(lower * USD, lev) for lower, lev in b.tiers]
            yield Market(ts=ts, coin=b.coin, sz_decimals=b.sz_decimals, margin_tiers=tiers,
                         only_isolated=b.only_isolated)
        yield Prices(ts=ts, prices={b.coin: PricePoint(mark=b.mark, oracle=b.oracle) for b in self.books})
        for a, name in enumerate(self.names):
            # Pareto with alpha 1/2 by inverse transform in integers: median ~$200, a few whales.
            k = self._int(1, 2**20)
            amount = min(_MAX_DEPOSIT, _MIN_DEPOSIT * 2**40 // (k * k))
            self.first_deposit[a] = self.funds[a] = amount
            yield Deposit(ts=ts, account=name, amount=amount)

    # ---- body ----------------------------------------------------------------------------

    def body(self) -> Iterator[InputEvent]:
        """Endless events in time order; funding for every market on each hour boundary."""
        cfg = self.config
        trade_cut, prices_cut = cfg.trade_share, cfg.trade_share + cfg.prices_share
        while True:
            self.ts += self._int(cfg.min_step_ms, cfg.max_step_ms)
            while self.hour < self.ts // HOUR_MS:
                self.hour += 1
                for b in self.books:
                    rate = self._int(-_FUNDING_MAX, _FUNDING_MAX)
                    yield Funding(ts=self.hour * HOUR_MS, coin=b.coin, rate=rate)
            r = self.random()
            if r < trade_cut:
                yield self._trade()
            elif r < prices_cut:
                yield self._prices()
            elif self.trades_owed:  # keeps the type mix as configured
                self.trades_owed -= 1
                yield self._trade()
            else:
                yield self._other()

    def _int(self, low: int, high: int) -> int:
        """A uniform int in [low, high] (spans below 2**53)."""
        return low + int(self.random() * (high - low + 1))

    def _account(self) -> int:
        """A Zipf-weighted account: a few trade (and move money) far more than the rest."""
        cum = self.account_cum
        return self.by_activity[bisect_right(cum, int(self.random() * cum[-1]))]

    def _market(self) -> int:
        """A Zipf-weighted market: BTC busiest, then ETH, ..."""
        cum = self.market_cum
        return bisect_right(cum, int(self.random() * cum[-1]))

    def _other_account(self, a: int) -> int:
        b = self._int(0, self.config.accounts - 2)
        return b + (b >= a)

    def _move(self, b: _Book) -> None:
        """One random-walk step of the hidden fair price; oracle and mark follow it."""
        step = self._int(-_STEP_PPB, _STEP_PPB)
        if self.random() < 1 / _JUMP_ONE_IN:
            step += (1 if self.random() < 0.5 else -1) * self._int(10_000_000, 50_000_000)
        b.fair = b.fair * (10**9 + step) // 10**9
        b.oracle = valid_price(b.fair // _FINE, b.sz_decimals)
        spread = self._int(-_MARK_SPREAD_PPM, _MARK_SPREAD_PPM)
        b.mark = valid_price(b.fair * (10**6 + spread) // (10**6 * _FINE), b.sz_decimals)

    def _prices(self) -> Prices:
        """A tick of one market (chosen as trades choose them), now and then with a couple of
        others: a quarter of all events are ticks, as in a per-coin oracle feed, rather than a
        few snapshots of every market."""
        first = self.books[self._market()]
        share = 1 / len(self.books)
        moved = [first] + [b for b in self.books if b is not first and self.random() < share]
        for b in moved:
            self._move(b)
        return Prices(ts=self.ts, prices={b.coin: PricePoint(mark=b.mark, oracle=b.oracle) for b in moved})

    def _room(self, x: int, m: int, side: int, px: int) -> int:
        """The largest size account `x` may trade on `side` (+1 buy) without its gross notional
        passing `gross_leverage` times its funds; reducing a position is always allowed."""
        spare = self.funds[x] * self.config.gross_leverage - self.gross[x] + self.ntl[x][m]
        cap = max(0, spare) * NTL_DIV // px
        p = self.pos[x][m]
        return max(cap, abs(p)) - side * p

    def _trade(self) -> InputEvent:
        m = self._market()
        b = self.books[m]
        for _ in range(_PAIR_ATTEMPTS):
            x = self._account()
            y = self._account()
            if x == y:
                continue
            if b.only_isolated:
                for z in (x, y):
                    if self.leverage.get((z, m), (0, True))[1]:  # strict-isolated: set it first
                        self.trades_owed += 1
                        return self._set_leverage(z, m)
            spread = self._int(-_TRADE_SPREAD_PPM, _TRADE_SPREAD_PPM)
            px = valid_price(b.mark * (10**6 + spread) // 10**6, b.sz_decimals)
            k = self._int(1, 1000)  # a fresh size: up to a quarter of x's budget, mostly small
            budget = self.funds[x] * self.config.gross_leverage * k * k // 4_000_000
            want = max(b.lot, budget * NTL_DIV // px)
            side = 1 if self.random() < 0.5 else -1  # +1: x buys
            p = self.pos[x][m]
            if p and self.random() * 100 < _CLOSE_PERCENT:
                side = -1 if p > 0 else 1
                want = abs(p) + (want if self.random() * 100 < _FLIP_PERCENT else 0)
            size = min(want, self._room(x, m, side, px), self._room(y, m, -side, px)) // b.lot * b.lot
            if size:
                break
        else:
            return self._prices()  # every pair drawn was at its limit: let the market move instead
        for z, signed in ((x, side * size), (y, -side * size)):
            new = self.pos[z][m] + signed
            self.pos[z][m] = new
            ntl = abs(new) * px // NTL_DIV
            self.gross[z] += ntl - self.ntl[z][m]
            self.ntl[z][m] = ntl
        buyer, seller = (x, y) if side > 0 else (y, x)
        notional = size * px // NTL_DIV
        taker_fee = ceil_div(notional * _TAKER_FEE, _FEE_DIV)
        taker_is_buyer = self.random() < 0.5
        maker = seller if taker_is_buyer else buyer
        maker_fee = (-(notional * _MAKER_REBATE // _FEE_DIV) if maker in self.makers
                     else notional * _MAKER_FEE // _FEE_DIV)  # a rebate rounds toward zero
        self.tid += 1
        return Trade(ts=self.ts, coin=b.coin, px=px, sz=size, buyer=self.names[buyer],
                     seller=self.names[seller],
                     buyer_fee=taker_fee if taker_is_buyer else maker_fee,
                     seller_fee=maker_fee if taker_is_buyer else taker_fee, tid=self.tid)

    def _other(self) -> InputEvent:
        r = self._int(0, 99)
        a = self._account()
        if r < 30:
            return self._set_leverage(a, self._market())
        if r < 45:
            return self._isolated_margin(a)
        if r < 65:
            return self._deposit(a)
        if r < 82:
            amount = self._small_part(a)
            self.funds[a] -= amount
            return Withdraw(ts=self.ts, account=self.names[a], amount=amount)
        to = self._other_account(a)
        amount = self._small_part(a)
        self.funds[a] -= amount
        self.funds[to] += amount
        return Transfer(ts=self.ts, from_=self.names[a], to=self.names[to], amount=amount)

    def _small_part(self, a: int) -> int:
        """1%-10% of what the account has brought in, so withdrawals are usually affordable."""
        return max(1, self.funds[a] * self._int(1, 10) // 100)

    def _deposit(self, a: int) -> Deposit:
        amount = max(1, self.first_deposit[a] * self._int(5, 50) // 100)
        self.funds[a] += amount
        return Deposit(ts=self.ts, account=self.names[a], amount=amount)

    def _set_leverage(self, a: int, m: int) -> SetLeverage:
        """A leverage within the first tier and at least `gross_leverage` (so margin suffices);
        an open position keeps its mode and is never levered down (that could be rejected)."""
        b, key = self.books[m], (a, m)
        current = self.leverage.get(key)
        is_open = self.pos[a][m] != 0
        low = min(self.config.gross_leverage, b.max_leverage)
        if b.only_isolated:
            cross = False
        elif is_open:
            cross = current[1] if current else True
        else:
            cross = self.random() < 0.8
        if is_open and current:
            low = max(low, current[0])
        lev = self._int(low, b.max_leverage)
        self.leverage[key] = (lev, cross)
        if not cross and key not in self.isolated_seen:
            self.isolated_seen.add(key)
            self.isolated.append(key)
        return SetLeverage(ts=self.ts, account=self.names[a], coin=b.coin, leverage=lev, cross=cross)

    def _isolated_margin(self, fallback: int) -> InputEvent:
        """Adds 1%-5% of the owner's funds to a random open isolated position; when the pick is
        closed (or none was ever set), `fallback` deposits instead."""
        if self.isolated:
            a, m = self.isolated[self._int(0, len(self.isolated) - 1)]
            if self.pos[a][m] and not self.leverage[(a, m)][1]:
                delta = max(1, self.funds[a] * self._int(1, 5) // 100)
                return IsolatedMargin(ts=self.ts, account=self.names[a], coin=self.books[m].coin, delta=delta)
        return self._deposit(fallback)


def generate(config: GeneratorConfig) -> Iterator[InputEvent]:
    """Exactly `config.events` events: listings, prices and deposits first, then the body."""
    if config.accounts < 2 or config.markets < 1 or config.events < 0:
        raise ValueError("need at least 2 accounts, 1 market and a non-negative event count")
    if not 1 <= config.min_step_ms <= config.max_step_ms:
        raise ValueError("need 1 <= min_step_ms <= max_step_ms")
    if config.trade_share < 0 or config.prices_share < 0 or config.trade_share + config.prices_share > 1:
        raise ValueError("trade_share and prices_share must be shares of the body that sum to at most 1")
    if config.gross_leverage < 1:
        raise ValueError("gross_leverage must be at least 1")
    gen = _Generator(config)

    def stream() -> Iterator[InputEvent]:
        yield from gen.header()
        yield from gen.body()

    return islice(stream(), config.events)


def write_jsonl(events: Iterable[InputEvent], path: str | os.PathLike[str]) -> int:
    """Writes `events` as JSON lines (the public wire format); returns how many were written."""
    count = 0
    with open(path, "wb") as out:
        for event in events:
            out.write(encode_json(event))
            out.write(b"\n")
            count += 1
    return count
