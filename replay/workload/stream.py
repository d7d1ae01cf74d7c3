"""A seeded, deterministic, realistic synthetic event stream for benchmarks, demos and tests.

The stream opens with the market listings, one price for every market and a deposit per account,
then mixes trades, price updates and account events (funding lands on every hour boundary of
event time). A rough book of each account's positions keeps trades sized within a few times the
account's net deposits, so most accounts stay solvent and rejections are rare but possible.

With `crash`, a sharp multi-market crash and rebound starts 60% into the body: over two minutes
of event time every market's fair price falls 26%-45% along its own path (correlated: many small
ticks, each moving most markets, and two gaps per market at its own moments), with a few trades
between, a share of them panic orders of accounts near maintenance that fill 3%-12% through the
mark; then each market wins back 40%-60% of its fall over four minutes, and normal activity
resumes. Before it, a third of the accounts (market makers excepted) trade cross-only up to
5x-15x gross instead of `gross_leverage`, going for half to all of it at once, so the crash
liquidates many accounts and bankrupts some. In this mode the rough book also follows each
account's cash (cross flow and isolated ledgers) and estimates, at checkpoints of the crash and
whenever it picks a levered account (any account during the crash), what the clearinghouse will
have liquidated in its default mark mode, and closes that out, so liquidated accounts do not go
on trading positions they no longer hold. Without `crash` none of this draws a random number:
the stream is byte for byte what it was.

With `pm_share` > 0 (default 0, which draws no random number either), that share of the accounts
runs portfolio margin: each also deposits spot collateral (the token of HYPE's perp market, or
BTC's when there are fewer than four markets) worth at least 10,001 USDC and twice its USDC, and
switches to `portfolio` (its idle USDC then goes to the lending pool automatically). A tenth of
the trades become spot trades against a spot market maker: half of them open a carry trade (buy
the token spot, and short the same size of its perp right after), the rest buy spot on borrowed
USDC (a directional book) or sell some back. Sizes stay well inside the LTV headroom, so
rejections stay rare. With `crash` too, the crash's rough book treats PM accounts as any other
(it knows nothing of their collateral, so it may take one for liquidated that the engine keeps).

Determinism: all randomness comes from one `random.Random(seed)`, through `random()` (an exact
multiple of 2**-53, so scaling it to an int is the same on every platform; `randrange` would be
slower, and `gauss`/`paretovariate` call libm, which may not be) and `getrandbits`/`shuffle`.
Every amount is integer arithmetic, so a config gives the same bytes on any machine.
"""

from __future__ import annotations

import os
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import islice
from typing import Iterable, Iterator

from events.units import NTL_DIV, PX, USD, ceil_div
from events.codec import encode_json
from events.schema import (
    Deposit,
    Funding,
    InputEvent,
    IsolatedMargin,
    MarginTier,
    Market,
    PricePoint,
    Prices,
    SetLeverage,
    SetMode,
    SpotTrade,
    Supply,
    Token,
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
_FUNDS_FLOOR_DIV = 5  # crash mode: a removal is kept below funds - gross / 5 (margin and floor)

# The crash (`GeneratorConfig.crash`). Fractions of a price or of a path are in parts per 1e9.
_PPB = 10**9
_CRASH_AT = 0.6  # of the body's events
_CRASH_DROP_MS = 120_000
_CRASH_REBOUND_MS = 240_000
_CRASH_FALL_PPB = (260_000_000, 450_000_000)  # each market's fall, of its pre-crash fair price
_CRASH_GAPS = 2  # each market gaps down this many times, at its own moments in the drop...
_CRASH_GAP_PPB = (100_000_000, 200_000_000)  # ...each gap this share of its fall
_CRASH_REBOUND_PPB = (400_000_000, 600_000_000)  # share of the fall won back
_CRASH_REBOUND_GAP_PPB = (150_000_000, 300_000_000)  # one gap up, this share of the rebound
_CRASH_NOISE_PPB = 1_000_000  # each crash tick lands within +-0.1% of the path
_CRASH_MOVE_SHARE = 0.8  # a crash tick moves each market with this probability
_CRASH_DROP_TICKS = 0.85  # of the drop's events (the rest are trades)
_CRASH_REBOUND_TICKS = 0.50  # of the rebound's events...
_CRASH_REBOUND_TRADES = 0.45  # ...and trades (the rest are account events)
_CRASH_DROP_SPREAD_PPM = (-10_000, 1_000)  # trades print up to 1% below the lagging mark...
_CRASH_REBOUND_SPREAD_PPM = (-1_000, 10_000)  # ...and up to 1% above it in the rebound
_PANIC_SHARE = 0.3  # of the crash's trades: a distressed account's panic order
_PANIC_PART_PPM = (500_000, 950_000)  # the share of its position it cuts
_PANIC_SLIP_PPM = (30_000, 120_000)  # how far through the mark it fills
_DISTRESS = (5, 4)  # an account with equity below 5/4 of its maintenance margin is distressed
_DISTRESS_WIDE = 3  # a sweep lists the accounts within this many times maintenance
_CRASH_SWEEPS = (8, 4)  # liquidation sweeps of the rough book in the drop and in the rebound
_RISKY_SHARE = 1 / 3  # of accounts (market makers excepted) levered at...
_RISKY_LEVERAGE = (5, 15)  # ...this gross leverage
_DEFAULT_LEVERAGE = 20  # of a position whose leverage was never set (capped by the market)
_LIQ_FEE = 45  # per 100_000: the liquidation fill's fee, in the rough book's estimate
# Below this share of maintenance the rough book takes an account as backstopped (wiped) rather
# than partly closed: above the clearinghouse's 2/3, since the book checks later than it does
# (a gap may have taken the account through 2/3 in between), and wiping an account that kept
# something is the safer error (it does not go on trading money it no longer has).
_WIPED = (5, 6)

# Portfolio margin (`GeneratorConfig.pm_share`)
SPOT_MAKER = "0xspotmaker"  # sells the collateral token to PM accounts and buys it back
LENDER = "0xlender"  # supplies USDC to the pool: half the PM accounts' collateral value...
_LENDER_CAP = 250_000_000 * USD  # ...up to the per-account supply cap
_PM_SPEND = (1, 2)  # a PM account's spot buys stay below this share of its collateral value (LTV 0.65)
_SPOT_SHARE = 0.10  # of trades, with PM accounts: spot trades
_PM_MIN_VALUE = 10_001 * USD  # PM collateral: at least this much (eligibility is above 10k)...
_PM_COLLATERAL_X = 2  # ...and at least this many times the account's USDC deposit
_PM_MAX_VALUE = 24_000_000 * USD  # PM accounts stay below the 25M ceiling
_PM_BUY_PPM = (5_000, 60_000)  # a spot buy: this share of the account's collateral value
_MAKER_INVENTORY = 10**9  # whole tokens the spot maker starts with


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
    crash: bool = False  # a multi-market crash and rebound at 60% of the body (see the module doc)
    pm_share: float = 0.0  # share of accounts in portfolio margin (see the module doc); 0 keeps the stream as it was


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


@dataclass(slots=True)
class _Crash:
    """The crash's plan and progress; its prices follow a path set when it starts."""

    start: int  # body events before it
    phase: str = "before"  # "before", "drop", "rebound", "after"
    t0: int = 0  # when the current phase began (ms)
    pre: list[int] | None = None  # each market's fair price when the crash began
    bottom: list[int] | None = None  # ... and at the bottom
    falls: list[int] | None = None  # ppb of `pre`
    gaps: list[list[tuple[int, int]]] | None = None  # per market: (progress, share of the path), ppb
    rebounds: list[int] | None = None  # ppb of the fall
    rebound_gaps: list[list[tuple[int, int]]] | None = None
    next_sweep: int = 0  # ppb of the phase's progress
    distressed: list[int] = field(default_factory=list)  # accounts near maintenance at the last sweep


def _path(progress: int, gaps: list[tuple[int, int]]) -> int:
    """The share (ppb) of a phase's move done at `progress` (ppb): the gaps' shares all at once
    when reached, the rest linear in time."""
    gap_total = sum(share for _, share in gaps)
    return (_PPB - gap_total) * min(progress, _PPB) // _PPB + sum(share for at, share in gaps if at <= progress)


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
        self.cap = [config.gross_leverage] * n  # gross leverage each account trades up to
        self.crash: _Crash | None = None
        if config.crash:
            self._plan_crash()
        self.first_deposit = [0] * n
        self.funds = [0] * n  # net cash in: deposits and transfers in, less what left
        self.gross = [0] * n  # sum of `ntl` over markets
        self.pos = [[0] * config.markets for _ in range(n)]
        self.ntl = [[0] * config.markets for _ in range(n)]  # |pos| at the last trade price
        self.leverage: dict[tuple[int, int], tuple[int, bool]] = {}  # (account, market) -> (lev, cross)
        self.isolated: list[tuple[int, int]] = []  # (account, market) pairs ever set isolated
        self.isolated_seen: set[tuple[int, int]] = set()
        self.pm: list[int] = []  # portfolio-margin accounts (`pm_share`)
        if config.pm_share > 0:
            self._plan_pm()

    def _plan_pm(self) -> None:
        """Picks the PM accounts and the collateral token; keeps each one's rough spot holding."""
        n = self.config.accounts
        self.pm = [a for a in range(n) if self.random() < self.config.pm_share]
        self.pm_market = 3 if self.config.markets > 3 else 0  # HYPE, else BTC
        self.spot = [0] * n  # collateral token held (1e-8)
        self.spent = [0] * n  # USDC paid for spot less USDC received (rough: what it borrowed)
        self.hedge: list[Trade] = []  # the perp leg of a carry trade, sent next

    def _plan_crash(self) -> None:
        """Levers a third of the accounts up and keeps what the rough liquidation estimate
        needs: open markets and trading cash flow per account."""
        cfg, n = self.config, self.config.accounts
        body = max(0, cfg.events - (cfg.markets + 1 + n))
        self.crash = _Crash(start=int(body * _CRASH_AT))
        self.risky = [False] * n
        for a in range(n):
            if a not in self.makers and self.random() < _RISKY_SHARE:
                self.risky[a] = True
                self.cap[a] = self._int(*_RISKY_LEVERAGE)
        self.open: list[set[int]] = [set() for _ in range(n)]  # markets with a position
        self.flow = [0] * n  # cash from trades (fees included): the cross ledger is funds + flow
        self.iso: dict[tuple[int, int], int] = {}  # (account, market) -> isolated ledger

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
        if self.pm:
            yield from self._pm_header(ts)

    def _pm_header(self, ts: int) -> Iterator[InputEvent]:
        """The collateral token, the spot maker's inventory, each PM account's collateral and mode."""
        b = self.books[self.pm_market]
        yield Token(ts=ts, token=b.coin, decimals=8)
        yield Deposit(ts=ts, account=SPOT_MAKER, amount=_MAKER_INVENTORY * PX, token=b.coin)
        lent = 0
        # a whale whose value would reach the 25M ceiling stays standard
        self.pm = [a for a in self.pm if (1 + _PM_COLLATERAL_X) * self.first_deposit[a] < _PM_MAX_VALUE]
        for a in self.pm:
            value = max(_PM_MIN_VALUE, _PM_COLLATERAL_X * self.first_deposit[a])
            amount = ceil_div(value * NTL_DIV, b.oracle)
            self.spot[a] = amount
            lent += value // 2
            yield Deposit(ts=ts, account=self.names[a], amount=amount, token=b.coin)
            yield SetMode(ts=ts, account=self.names[a], mode="portfolio")
        lent = min(lent, _LENDER_CAP)
        yield Deposit(ts=ts, account=LENDER, amount=lent)
        yield SetMode(ts=ts, account=LENDER, mode="unified")  # one balance: it supplies from the ledger
        yield Supply(ts=ts, account=LENDER, amount=lent)

    # ---- body ----------------------------------------------------------------------------

    def body(self) -> Iterator[InputEvent]:
        """Endless events in time order; funding for every market on each hour boundary."""
        if self.crash is not None:
            yield from self._crash_body()
            return
        cfg = self.config
        trade_cut, prices_cut = cfg.trade_share, cfg.trade_share + cfg.prices_share
        while True:
            self.ts += self._int(cfg.min_step_ms, cfg.max_step_ms)
            yield from self._funding_due()
            r = self.random()
            if r < trade_cut:
                yield self._pm_trade() if self.pm else self._trade()
            elif r < prices_cut:
                yield self._prices()
            elif self.trades_owed:  # keeps the type mix as configured
                self.trades_owed -= 1
                yield self._trade()
            else:
                yield self._other()

    def _pm_trade(self) -> InputEvent:
        """With PM accounts: a carry trade's pending perp leg, a spot trade, or a perp trade."""
        if self.hedge:
            return self.hedge.pop()
        if self.random() >= _SPOT_SHARE:
            return self._trade()
        a = self.pm[self._int(0, len(self.pm) - 1)]
        m = self.pm_market
        b = self.books[m]
        px = valid_price(b.mark, b.sz_decimals)
        collateral = self.spot[a] * px // NTL_DIV
        r = self.random()
        if r < 0.2 and self.spot[a] > b.lot:  # sells some back
            size = self.spot[a] * self._int(*_PM_BUY_PPM) // 10**6 // b.lot * b.lot
            if size:
                self.spot[a] -= size
                self.spent[a] -= size * px // NTL_DIV
                return SpotTrade(ts=self.ts, base=b.coin, quote="USDC", px=px, sz=size, buyer=SPOT_MAKER, seller=self.names[a],
                                 seller_fee=ceil_div(size * px // NTL_DIV * _TAKER_FEE, _FEE_DIV))
        budget = min(collateral * self._int(*_PM_BUY_PPM) // 10**6, collateral * _PM_SPEND[0] // _PM_SPEND[1] - self.spent[a])
        size = max(0, budget) * NTL_DIV // px // b.lot * b.lot
        if not size:
            return self._trade()
        self.spot[a] += size
        self.spent[a] += size * px // NTL_DIV
        if r < 0.6:  # a carry trade: short the same size of the perp against someone with room
            for _ in range(_PAIR_ATTEMPTS):
                y = self._account()
                if y != a and self._room(y, m, 1, px) >= size and not b.only_isolated:
                    self.hedge.append(self._fill(m, a, y, -1, size, px))
                    break
        return SpotTrade(ts=self.ts, base=b.coin, quote="USDC", px=px, sz=size, buyer=self.names[a], seller=SPOT_MAKER,
                         buyer_fee=ceil_div(size * px // NTL_DIV * _TAKER_FEE, _FEE_DIV))

    def _funding_due(self) -> Iterator[Funding]:
        """One funding event per market for each hour boundary the clock has passed."""
        while self.hour < self.ts // HOUR_MS:
            self.hour += 1
            for b in self.books:
                rate = self._int(-_FUNDING_MAX, _FUNDING_MAX)
                yield Funding(ts=self.hour * HOUR_MS, coin=b.coin, rate=rate)

    def _crash_body(self) -> Iterator[InputEvent]:
        """`body` with the crash: the same mix until `crash.start` events, then the crash."""
        cfg, crash = self.config, self.crash
        assert crash is not None
        trade_cut, prices_cut = cfg.trade_share, cfg.trade_share + cfg.prices_share
        count = 0
        while True:
            self.ts += self._int(cfg.min_step_ms, cfg.max_step_ms)
            for funding in self._funding_due():
                count += 1
                yield funding
            if crash.phase != "after" and count >= crash.start:
                event = self._crash_event(crash)
            else:
                r = self.random()
                if r < trade_cut:
                    event = self._pm_trade() if self.pm else self._trade()
                elif r < prices_cut:
                    event = self._prices()
                elif self.trades_owed:
                    self.trades_owed -= 1
                    event = self._trade()
                else:
                    event = self._other()
            count += 1
            yield event

    def _crash_event(self, crash: _Crash) -> InputEvent:
        """The next event of the crash: mostly ticks along the path, with trades between."""
        if crash.phase == "before":
            self._start_drop(crash)
        if crash.phase == "drop":
            progress = (self.ts - crash.t0) * _PPB // _CRASH_DROP_MS
            if progress >= _PPB:  # the bottom: every market at the end of its path
                tick = self._crash_tick(crash, _PPB, every=True)
                crash.bottom = [b.fair for b in self.books]
                self._sweep()
                crash.phase, crash.t0, crash.next_sweep = "rebound", self.ts, _PPB // _CRASH_SWEEPS[1]
                return tick
            if progress >= crash.next_sweep:
                self._sweep()
                crash.next_sweep += _PPB // _CRASH_SWEEPS[0]
            if self.random() < _CRASH_DROP_TICKS:
                return self._crash_tick(crash, progress)
            return self._crash_trade(crash, _CRASH_DROP_SPREAD_PPM)
        progress = (self.ts - crash.t0) * _PPB // _CRASH_REBOUND_MS
        if progress >= _PPB:  # the rebound's end; the book's funds become the estimated equity
            tick = self._crash_tick(crash, _PPB, every=True)
            self._sweep(settle=True)
            crash.phase = "after"
            return tick
        if progress >= crash.next_sweep:
            self._sweep()
            crash.next_sweep += _PPB // _CRASH_SWEEPS[1]
        r = self.random()
        if r < _CRASH_REBOUND_TICKS:
            return self._crash_tick(crash, progress)
        if r < _CRASH_REBOUND_TICKS + _CRASH_REBOUND_TRADES or self.trades_owed:
            if r >= _CRASH_REBOUND_TICKS + _CRASH_REBOUND_TRADES:
                self.trades_owed -= 1
            return self._crash_trade(crash, _CRASH_REBOUND_SPREAD_PPM)
        return self._other()

    def _crash_trade(self, crash: _Crash, spread: tuple[int, int]) -> InputEvent:
        """A trade of the crash: now and then a distressed account's panic order, else an
        ordinary trade with the wider spread of a thin book."""
        if crash.distressed and self.random() < _PANIC_SHARE:
            panic = self._panic(crash)
            if panic is not None:
                return panic
        return self._trade(*spread)

    def _panic(self, crash: _Crash) -> Trade | None:
        """An account near maintenance cuts 50%-95% of its largest position that is losing in
        this phase (a long in the drop, a short in the rebound) with a market order that fills
        3%-12% through the mark, as stop-losses do in a thin book. A fill past its bankruptcy
        price leaves it below zero even at the previous marks, at which auto-deleveraging
        closes: a loss a gap alone does not leave (the account was solvent at the mark before
        the gap), and bad debt when the backstop may not absorb it. The account is the
        first, from a random start, of those the last sweep found within `_DISTRESS_WIDE` times
        maintenance, that is now (roughly) within `_DISTRESS` and still above maintenance."""
        down = crash.phase == "drop"
        books, found = self.books, crash.distressed
        start = self._int(0, len(found) - 1)
        for i in range(len(found)):
            a = found[(start + i) % len(found)]
            equity, maintenance, worst = self._cross_estimate(a, down)
            if worst is not None and maintenance <= equity and equity * _DISTRESS[1] < _DISTRESS[0] * maintenance:
                break
        else:
            return None
        b = books[worst]
        size = abs(self.pos[a][worst]) * self._int(*_PANIC_PART_PPM) // 10**6 // b.lot * b.lot
        slip = self._int(*_PANIC_SLIP_PPM)
        px = valid_price(b.mark * (10**6 + (-slip if down else slip)) // 10**6, b.sz_decimals)
        side = -1 if down else 1  # +1: the account buys
        best = (0, a)
        for _ in range(_PAIR_ATTEMPTS):  # the counterparty: a Zipf account with room for it all
            y = self._account()
            if y == a:
                continue
            self._watch(y)
            fill = min(size, self._room(y, worst, -side, px)) // b.lot * b.lot
            best = max(best, (fill, y))
            if fill == size:
                break
        if not best[0]:
            return None
        trade = self._fill(worst, a, best[1], side, best[0], px, taker_is_buyer=not down)
        self._check(a)  # the clearinghouse sees at once what the fill did to it
        return trade

    def _cross_estimate(self, a: int, longs: bool) -> tuple[int, int, int | None]:
        """(equity, maintenance) of the account's cross book at the marks, in the rough book,
        and its largest cross position on the long (or short) side."""
        pos, books = self.pos[a], self.books
        equity, maintenance, worst = self.funds[a] + self.flow[a], 0, (0, None)
        for m in sorted(self.open[a]):
            if self._isolated(a, m):
                continue
            b = books[m]
            ntl = abs(pos[m]) * b.mark // NTL_DIV
            equity += pos[m] * b.mark // NTL_DIV
            maintenance += ntl // (2 * b.max_leverage)
            if (pos[m] > 0) == longs and ntl > worst[0]:
                worst = (ntl, m)
        return equity, maintenance, worst[1]

    def _start_drop(self, crash: _Crash) -> None:
        """Draws each market's fall, its gaps (at their own moments) and its rebound."""
        crash.phase, crash.t0, crash.next_sweep = "drop", self.ts, _PPB // _CRASH_SWEEPS[0]
        crash.pre = [b.fair for b in self.books]
        crash.falls, crash.gaps, crash.rebounds, crash.rebound_gaps = [], [], [], []
        for _ in self.books:
            crash.falls.append(self._int(*_CRASH_FALL_PPB))
            gaps = [(self._int(_PPB // 20, _PPB * 17 // 20), self._int(*_CRASH_GAP_PPB)) for _ in range(_CRASH_GAPS)]
            crash.gaps.append(gaps)
            crash.rebounds.append(self._int(*_CRASH_REBOUND_PPB))
            crash.rebound_gaps.append([(self._int(_PPB // 10, _PPB * 7 // 10), self._int(*_CRASH_REBOUND_GAP_PPB))])

    def _crash_tick(self, crash: _Crash, progress: int, every: bool = False) -> Prices:
        """Moves most markets (every one with `every`) to their path at `progress` of the
        phase, within +-0.1%."""
        books = self.books
        if every:
            moved = list(range(len(books)))
        else:
            moved = [m for m in range(len(books)) if self.random() < _CRASH_MOVE_SHARE] or [self._market()]
        assert crash.pre is not None and crash.falls is not None and crash.gaps is not None
        for m in moved:
            b, pre = books[m], crash.pre[m]
            if crash.phase == "drop":
                fair = pre - pre * crash.falls[m] // _PPB * _path(progress, crash.gaps[m]) // _PPB
            else:
                assert crash.bottom is not None and crash.rebounds is not None and crash.rebound_gaps is not None
                bottom = crash.bottom[m]
                back = (pre - bottom) * crash.rebounds[m] // _PPB
                fair = bottom + back * _path(progress, crash.rebound_gaps[m]) // _PPB
            noise = self._int(-_CRASH_NOISE_PPB, _CRASH_NOISE_PPB)
            b.fair = fair * (_PPB + noise) // _PPB
            b.oracle = valid_price(b.fair // _FINE, b.sz_decimals)
            spread = self._int(-_MARK_SPREAD_PPM, _MARK_SPREAD_PPM)
            b.mark = valid_price(b.fair * (10**6 + spread) // (10**6 * _FINE), b.sz_decimals)
        return Prices(ts=self.ts, prices={books[m].coin: PricePoint(mark=books[m].mark, oracle=books[m].oracle) for m in moved})

    # ---- the rough liquidation estimate (crash mode) ---------------------------------------

    def _sweep(self, settle: bool = False) -> None:
        """Checks every account with a position; with `settle`, a survivor's funds become its
        estimated cross equity (its budget after the crash) and its notionals are taken at the
        marks."""
        distressed = []
        for a, held in enumerate(self.open):
            if held and self._check(a, settle):
                distressed.append(a)
        if self.crash is not None:
            self.crash.distressed = distressed

    def _isolated(self, a: int, m: int) -> bool:
        setting = self.leverage.get((a, m))
        return not setting[1] if setting else self.books[m].only_isolated

    def _book_fill(self, z: int, m: int, old: int, size: int, px: int, fee: int) -> None:
        """The cash side of a fill in the rough book, as the clearinghouse books it: cross fills
        in the account's flow; an isolated position keeps its own ledger, funded from the cross
        one with the margin of what it opens (at the leverage set) and paid back as it closes."""
        new = old + size
        if new:
            self.open[z].add(m)
        else:
            self.open[z].discard(m)
        if not self._isolated(z, m):
            self.flow[z] -= size * px // NTL_DIV + fee
            return
        key = (z, m)
        iso = self.iso.get(key, 0) - fee
        if old and (old > 0) != (size > 0):  # closes (and maybe flips)
            closed = max(size, -old) if old > 0 else min(size, -old)
            equity = iso + old * px // NTL_DIV
            iso -= closed * px // NTL_DIV
            rest = old + closed
            if not rest:
                self.flow[z] += iso
                iso = 0
            elif self.books[m].only_isolated and equity > 0:
                release = equity * abs(closed) // abs(old)
                iso -= release
                self.flow[z] += release
            size -= closed
        if size:  # opens
            setting = self.leverage.get(key)
            lev = setting[0] if setting else min(_DEFAULT_LEVERAGE, self.books[m].max_leverage)
            margin = ceil_div(abs(size) * px // NTL_DIV, lev)
            self.flow[z] -= margin
            iso += margin - size * px // NTL_DIV
        if iso or new:
            self.iso[key] = iso
        else:
            self.iso.pop(key, None)

    def _check(self, a: int, settle: bool = False) -> bool:
        """Closes out in the book what the clearinghouse will (roughly) have liquidated at the
        current marks: scope by scope (the cross book, each isolated position), the backstop
        (below `_WIPED` of maintenance) takes everything, the market phase closes the largest
        positions first until maintenance is met, paying the fee. Funding and the tiers above
        the first are left out. True if the cross book survives within `_DISTRESS_WIDE` times
        its maintenance."""
        held, pos, books, ntls = self.open[a], self.pos[a], self.books, self.ntl[a]
        cross = []
        equity = self.funds[a] + self.flow[a]
        maintenance = 0
        for m in sorted(held):
            b = books[m]
            ntl = abs(pos[m]) * b.mark // NTL_DIV
            mm = ntl // (2 * b.max_leverage)
            value = pos[m] * b.mark // NTL_DIV
            if not self._isolated(a, m):
                cross.append((ntl, m, value, mm))
                equity += value
                maintenance += mm
                continue
            iso_equity = self.iso.get((a, m), 0) + value
            if iso_equity >= mm:
                continue
            back = 0 if iso_equity * _WIPED[1] < _WIPED[0] * mm else max(0, iso_equity - ntl * _LIQ_FEE // _FEE_DIV)
            self.flow[a] += back
            self.iso.pop((a, m), None)
            pos[m] = ntls[m] = 0
            held.discard(m)
            equity += back
        if equity < maintenance:
            backstop = equity * _WIPED[1] < _WIPED[0] * maintenance
            cross.sort(key=lambda c: (-c[0], c[1]))
            for ntl, m, value, mm in cross:
                if not backstop:
                    equity -= ntl * _LIQ_FEE // _FEE_DIV
                    maintenance -= mm
                pos[m] = ntls[m] = 0
                held.discard(m)
                if not backstop and equity >= maintenance:
                    break
            equity = 0 if backstop else max(0, equity)  # the cross ledger and the budget
            self.funds[a] = equity
            self.flow[a] = -sum(value for _, m, value, _ in cross if pos[m])
        if settle:  # the budget becomes the cross equity (isolated margin is not available)
            cross_value = 0
            for m in held:
                b = books[m]
                ntls[m] = abs(pos[m]) * b.mark // NTL_DIV
                if not self._isolated(a, m):
                    cross_value += pos[m] * b.mark // NTL_DIV
            self.funds[a] = max(0, equity)
            self.flow[a] = equity - cross_value - self.funds[a]
        self.gross[a] = sum(ntls[m] for m in held)
        return 0 < maintenance and equity < _DISTRESS_WIDE * maintenance

    def _watch(self, a: int) -> None:
        """Before an account is used: a levered one (or any, during the crash) is checked."""
        crash = self.crash
        if crash is not None and self.open[a] and (self.risky[a] or crash.phase in ("drop", "rebound")):
            self._check(a)

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
        passing its cap (`gross_leverage`, or a levered account's own) times its funds; reducing
        a position is always allowed."""
        spare = self.funds[x] * self.cap[x] - self.gross[x] + self.ntl[x][m]
        cap = max(0, spare) * NTL_DIV // px
        p = self.pos[x][m]
        return max(cap, abs(p)) - side * p

    def _trade(self, spread_low: int = -_TRADE_SPREAD_PPM, spread_high: int = _TRADE_SPREAD_PPM) -> InputEvent:
        """A trade of a Zipf-picked market between two Zipf-picked accounts, at the mark plus a
        spread drawn from [spread_low, spread_high] (ppm)."""
        m = self._market()
        b = self.books[m]
        for _ in range(_PAIR_ATTEMPTS):
            x = self._account()
            y = self._account()
            if x == y:
                continue
            if self.crash is not None:
                if b.only_isolated and (self.risky[x] or self.risky[y]):
                    continue  # levered accounts trade cross only: isolated margin would drain them
                self._watch(x)
                self._watch(y)
            if b.only_isolated:
                for z in (x, y):
                    if self.leverage.get((z, m), (0, True))[1]:  # strict-isolated: set it first
                        self.trades_owed += 1
                        return self._set_leverage(z, m)
            spread = self._int(spread_low, spread_high)
            px = valid_price(b.mark * (10**6 + spread) // 10**6, b.sz_decimals)
            k = self._int(1, 1000)  # a fresh size: up to a quarter of x's budget, mostly small
            levered = self.crash is not None and self.risky[x]
            if levered:  # a levered account goes for half to all of its cap at once
                budget = self.funds[x] * self.cap[x] * (1000 + k) // 2_000
            else:
                budget = self.funds[x] * self.cap[x] * k * k // 4_000_000
            want = max(b.lot, budget * NTL_DIV // px)
            side = 1 if self.random() < 0.5 else -1  # +1: x buys
            p = self.pos[x][m]
            if p and self.random() * 100 < _CLOSE_PERCENT:
                side = -1 if p > 0 else 1
                want = abs(p) + (want if self.random() * 100 < _FLIP_PERCENT else 0)
            size = min(want, self._room(x, m, side, px), self._room(y, m, -side, px)) // b.lot * b.lot
            if levered and size < min(want, self._room(x, m, side, px)) // 2:
                continue  # the counterparty has too little room: a levered account looks further
            if size:
                break
        else:
            return self._prices()  # every pair drawn was at its limit: let the market move instead
        return self._fill(m, x, y, side, size, px)

    def _fill(self, m: int, x: int, y: int, side: int, size: int, px: int, taker_is_buyer: bool | None = None) -> Trade:
        """Books a trade of `size` in market `m` between `x` (buying if `side` > 0) and `y`; the
        taker is drawn unless given."""
        b = self.books[m]
        for z, signed in ((x, side * size), (y, -side * size)):
            new = self.pos[z][m] + signed
            self.pos[z][m] = new
            ntl = abs(new) * px // NTL_DIV
            self.gross[z] += ntl - self.ntl[z][m]
            self.ntl[z][m] = ntl
        buyer, seller = (x, y) if side > 0 else (y, x)
        notional = size * px // NTL_DIV
        taker_fee = ceil_div(notional * _TAKER_FEE, _FEE_DIV)
        if taker_is_buyer is None:
            taker_is_buyer = self.random() < 0.5
        maker = seller if taker_is_buyer else buyer
        maker_fee = (-(notional * _MAKER_REBATE // _FEE_DIV) if maker in self.makers
                     else notional * _MAKER_FEE // _FEE_DIV)  # a rebate rounds toward zero
        self.tid += 1
        buyer_fee = taker_fee if taker_is_buyer else maker_fee
        seller_fee = maker_fee if taker_is_buyer else taker_fee
        if self.crash is not None:
            self._book_fill(buyer, m, self.pos[buyer][m] - size, size, px, buyer_fee)
            self._book_fill(seller, m, self.pos[seller][m] + size, -size, px, seller_fee)
        return Trade(ts=self.ts, coin=b.coin, px=px, sz=size, buyer=self.names[buyer],
                     seller=self.names[seller], buyer_fee=buyer_fee, seller_fee=seller_fee, tid=self.tid)

    def _other(self) -> InputEvent:
        r = self._int(0, 99)
        a = self._account()
        if self.crash is not None:
            self._watch(a)
            if r >= 65 and max(1, self.funds[a] // 10) > self.funds[a] - self.gross[a] // _FUNDS_FLOOR_DIV:
                return self._deposit(a)  # a removal it could not afford (margin, 10% floor)
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
        """A leverage within the first tier and at least the account's gross leverage cap (so
        margin suffices; a levered account of the crash stream stays cross);
        an open position keeps its mode and is never levered down (that could be rejected)."""
        b, key = self.books[m], (a, m)
        current = self.leverage.get(key)
        is_open = self.pos[a][m] != 0
        low = min(self.cap[a], b.max_leverage)
        if b.only_isolated:
            cross = False
        elif is_open:
            cross = current[1] if current else True
        elif self.crash is not None and self.risky[a]:
            cross = True
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
    if not 0 <= config.pm_share <= 1:
        raise ValueError("pm_share must be a share of the accounts")
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
