"""The crash (`GeneratorConfig.crash`): a sharp multi-market crash and rebound.

It starts 60% into the body: over two minutes of event time every market's fair price falls
26%-45% along its own path (correlated: many small ticks, each moving most markets, and two gaps
per market at its own moments), with a few trades between, a share of them panic orders of
accounts near maintenance that fill 3%-12% through the mark; then each market wins back 40%-60%
of its fall over four minutes, and normal activity resumes. Before it, a third of the accounts
(market makers excepted) trade cross-only up to 5x-15x gross instead of `gross_leverage`, going
for half to all of it at once, so the crash liquidates many accounts and bankrupts some. The
liquidation estimate (replay.workload.estimate) closes out, at checkpoints of the crash and
whenever the workload picks a levered account (any account during the crash), what the
clearinghouse will have liquidated, so liquidated accounts do not go on trading positions they no
longer hold. Fractions of a price or of a path are in parts per 1e9.
"""

from __future__ import annotations

from events.schema import InputEvent, Prices, Trade
from replay.workload.account_events import AccountEvents
from replay.workload.accounts import Accounts
from replay.workload.draws import Clock, Draws
from replay.workload.estimate import LiquidationEstimate
from replay.workload.markets import Markets, valid_price
from replay.workload.trades import PAIR_ATTEMPTS, Trades

_PPB = 10**9
_CRASH_AT = 0.6  # of the body's events
_DROP_MS = 120_000
_REBOUND_MS = 240_000
_FALL_PPB = (260_000_000, 450_000_000)  # each market's fall, of its pre-crash fair price
_GAPS = 2  # each market gaps down this many times, at its own moments in the drop...
_GAP_PPB = (100_000_000, 200_000_000)  # ...each gap this share of its fall
_REBOUND_PPB = (400_000_000, 600_000_000)  # share of the fall won back
_REBOUND_GAP_PPB = (150_000_000, 300_000_000)  # one gap up, this share of the rebound
_NOISE_PPB = 1_000_000  # each crash tick lands within +-0.1% of the path
_MOVE_SHARE = 0.8  # a crash tick moves each market with this probability
_DROP_TICKS = 0.85  # of the drop's events (the rest are trades)
_REBOUND_TICKS = 0.50  # of the rebound's events...
_REBOUND_TRADES = 0.45  # ...and trades (the rest are account events)
_DROP_SPREAD_PPM = (-10_000, 1_000)  # trades print up to 1% below the lagging mark...
_REBOUND_SPREAD_PPM = (-1_000, 10_000)  # ...and up to 1% above it in the rebound
_PANIC_SHARE = 0.3  # of the crash's trades: a distressed account's panic order
_PANIC_PART_PPM = (500_000, 950_000)  # the share of its position it cuts
_PANIC_SLIP_PPM = (30_000, 120_000)  # how far through the mark it fills
_DISTRESS = (5, 4)  # an account with equity below 5/4 of its maintenance margin is distressed
_SWEEPS = (8, 4)  # liquidation sweeps of the estimate in the drop and in the rebound
_RISKY_SHARE = 1 / 3  # of accounts (market makers excepted) levered at...
_RISKY_LEVERAGE = (5, 15)  # ...this gross leverage


def lever_up(accounts: Accounts, draws: Draws) -> None:
    """Levers a third of the accounts (market makers excepted) up for the crash."""
    for a in range(accounts.count):
        if a not in accounts.makers and draws.random() < _RISKY_SHARE:
            accounts.risky[a] = True
            accounts.cap[a] = draws.between(*_RISKY_LEVERAGE)


def start_at(events: int, markets: int, accounts: int) -> int:
    """How many body events come before the crash."""
    body = max(0, events - (markets + 1 + accounts))
    return int(body * _CRASH_AT)


def _path(progress: int, gaps: list[tuple[int, int]]) -> int:
    """The share (ppb) of a phase's move done at `progress` (ppb): the gaps' shares all at once
    when reached, the rest linear in time."""
    gap_total = sum(share for _, share in gaps)
    return (_PPB - gap_total) * min(progress, _PPB) // _PPB + sum(share for at, share in gaps if at <= progress)


class Crash:
    """The crash's plan and progress; its prices follow a path drawn when it starts."""

    def __init__(
        self,
        start: int,
        draws: Draws,
        clock: Clock,
        markets: Markets,
        accounts: Accounts,
        trades: Trades,
        account_events: AccountEvents,
        estimate: LiquidationEstimate,
    ) -> None:
        self.start = start  # body events before it
        self.draws = draws
        self.clock = clock
        self.markets = markets
        self.accounts = accounts
        self.trades = trades
        self.account_events = account_events
        self.estimate = estimate
        self.phase = "before"  # "before", "drop", "rebound", "after"
        self.t0 = 0  # when the current phase began (ms)
        self.pre: list[int] = []  # each market's fair price when the crash began
        self.bottom: list[int] = []  # ... and at the bottom
        self.falls: list[int] = []  # ppb of `pre`
        self.gaps: list[list[tuple[int, int]]] = []  # per market: (progress, share of the path), ppb
        self.rebounds: list[int] = []  # ppb of the fall
        self.rebound_gaps: list[list[tuple[int, int]]] = []
        self.next_sweep = 0  # ppb of the phase's progress
        self.distressed: list[int] = []  # accounts near maintenance at the last sweep

    def due(self, count: int) -> bool:
        """Whether the body's event number `count` belongs to the crash."""
        return self.phase != "after" and count >= self.start

    def event(self) -> InputEvent:
        """The next event of the crash: mostly ticks along the path, with trades between."""
        if self.phase == "before":
            self._start_drop()
        ts = self.clock.ts
        if self.phase == "drop":
            progress = (ts - self.t0) * _PPB // _DROP_MS
            if progress >= _PPB:  # the bottom: every market at the end of its path
                tick = self._tick(_PPB, every=True)
                self.bottom = [b.fair for b in self.markets.books]
                self.distressed = self.estimate.sweep()
                self.phase, self.t0, self.next_sweep = "rebound", ts, _PPB // _SWEEPS[1]
                return tick
            if progress >= self.next_sweep:
                self.distressed = self.estimate.sweep()
                self.next_sweep += _PPB // _SWEEPS[0]
            if self.draws.random() < _DROP_TICKS:
                return self._tick(progress)
            return self._trade(_DROP_SPREAD_PPM)
        progress = (ts - self.t0) * _PPB // _REBOUND_MS
        if progress >= _PPB:  # the rebound's end; the funds become the estimated equity
            tick = self._tick(_PPB, every=True)
            self.distressed = self.estimate.sweep(settle=True)
            self.phase = "after"
            self.estimate.crashing = False
            return tick
        if progress >= self.next_sweep:
            self.distressed = self.estimate.sweep()
            self.next_sweep += _PPB // _SWEEPS[1]
        r = self.draws.random()
        if r < _REBOUND_TICKS:
            return self._tick(progress)
        if r < _REBOUND_TICKS + _REBOUND_TRADES or self.trades.owed:
            if r >= _REBOUND_TICKS + _REBOUND_TRADES:
                self.trades.owed -= 1
            return self._trade(_REBOUND_SPREAD_PPM)
        return self.account_events.next()

    def _start_drop(self) -> None:
        """Draws each market's fall, its gaps (at their own moments) and its rebound."""
        between = self.draws.between
        self.phase, self.t0, self.next_sweep = "drop", self.clock.ts, _PPB // _SWEEPS[0]
        self.estimate.crashing = True
        self.pre = [b.fair for b in self.markets.books]
        for _ in self.markets.books:
            self.falls.append(between(*_FALL_PPB))
            self.gaps.append([(between(_PPB // 20, _PPB * 17 // 20), between(*_GAP_PPB)) for _ in range(_GAPS)])
            self.rebounds.append(between(*_REBOUND_PPB))
            self.rebound_gaps.append([(between(_PPB // 10, _PPB * 7 // 10), between(*_REBOUND_GAP_PPB))])

    def _tick(self, progress: int, every: bool = False) -> Prices:
        """Moves most markets (every one with `every`) to their path at `progress` of the
        phase, within +-0.1%."""
        books, draws = self.markets.books, self.draws
        if every:
            moved = list(range(len(books)))
        else:
            moved = [m for m in range(len(books)) if draws.random() < _MOVE_SHARE] or [self.markets.pick()]
        for m in moved:
            pre = self.pre[m]
            if self.phase == "drop":
                fair = pre - pre * self.falls[m] // _PPB * _path(progress, self.gaps[m]) // _PPB
            else:
                bottom = self.bottom[m]
                back = (pre - bottom) * self.rebounds[m] // _PPB
                fair = bottom + back * _path(progress, self.rebound_gaps[m]) // _PPB
            noise = draws.between(-_NOISE_PPB, _NOISE_PPB)
            self.markets.quote(books[m], fair * (_PPB + noise) // _PPB)
        return Prices(ts=self.clock.ts, prices={books[m].coin: books[m].point() for m in moved})

    def _trade(self, spread: tuple[int, int]) -> InputEvent:
        """A trade of the crash: now and then a distressed account's panic order, else an
        ordinary trade with the wider spread of a thin book."""
        if self.distressed and self.draws.random() < _PANIC_SHARE:
            panic = self._panic()
            if panic is not None:
                return panic
        return self.trades.perp(spread)

    def _panic(self) -> Trade | None:
        """An account near maintenance cuts 50%-95% of its largest position that is losing in
        this phase (a long in the drop, a short in the rebound) with a market order that fills
        3%-12% through the mark, as stop-losses do in a thin book. A fill past its bankruptcy
        price leaves it below zero even at the previous marks, at which auto-deleveraging
        closes: a loss a gap alone does not leave (the account was solvent at the mark before
        the gap), and bad debt when the backstop may not absorb it. The account is the
        first, from a random start, of those the last sweep found within `DISTRESS_WIDE` times
        maintenance, that is now (roughly) within `_DISTRESS` and still above maintenance."""
        down = self.phase == "drop"
        draws, estimate, accounts = self.draws, self.estimate, self.accounts
        found = self.distressed
        start = draws.between(0, len(found) - 1)
        for i in range(len(found)):
            a = found[(start + i) % len(found)]
            equity, maintenance, worst = estimate.cross_book(a, down)
            if worst is not None and maintenance <= equity and equity * _DISTRESS[1] < _DISTRESS[0] * maintenance:
                break
        else:
            return None
        b = self.markets.books[worst]
        size = abs(accounts.pos[a][worst]) * draws.between(*_PANIC_PART_PPM) // 10**6 // b.lot * b.lot
        slip = draws.between(*_PANIC_SLIP_PPM)
        px = valid_price(b.mark * (10**6 + (-slip if down else slip)) // 10**6, b.sz_decimals)
        side = -1 if down else 1  # +1: the account buys
        best = (0, a)
        for _ in range(PAIR_ATTEMPTS):  # the counterparty: a Zipf account with room for it all
            y = accounts.pick()
            if y == a:
                continue
            estimate.watch(y)
            fill = min(size, accounts.room(y, worst, -side, px)) // b.lot * b.lot
            best = max(best, (fill, y))
            if fill == size:
                break
        if not best[0]:
            return None
        trade = self.trades.fill(worst, a, best[1], side, best[0], px, taker_is_buyer=not down)
        estimate.check(a)  # the clearinghouse sees at once what the fill did to it
        return trade
