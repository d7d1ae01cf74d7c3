"""The stream: its head (listings, prices, first deposits, the portfolio-margin setup) and its
body, a mix of trades, price ticks and account events with funding on every hour boundary of
event time, and the crash when there is one."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import islice

from events.codec import encode_json
from events.schema import Funding, InputEvent
from replay.workload.account_events import AccountEvents
from replay.workload.accounts import Accounts
from replay.workload.books import Books
from replay.workload.config import GeneratorConfig
from replay.workload.crash import Crash, lever_up, start_at
from replay.workload.draws import Clock, Draws
from replay.workload.estimate import LiquidationEstimate
from replay.workload.markets import Markets
from replay.workload.portfolio import Portfolio
from replay.workload.trades import Trades

HOUR_MS = 3_600_000
_FUNDING_MAX = 50_000_000  # |hourly rate| <= 0.00005, in the 1e-12 scale


class Workload:
    """The parts of one stream, built in the order they draw their setup from the one seed."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.draws = draws = Draws(config.seed)
        self.clock = clock = Clock(config.start_ts)
        self.hour = config.start_ts // HOUR_MS
        self.markets = markets = Markets(config.markets, draws)
        self.accounts = accounts = Accounts(config.accounts, config.markets, config.gross_leverage, draws)
        estimate = None
        if config.crash:
            lever_up(accounts, draws)
            estimate = LiquidationEstimate(markets.books, accounts)
        self.account_events = AccountEvents(draws, clock, markets, accounts, estimate)
        self.trades = Trades(draws, clock, markets, accounts, self.account_events, estimate)
        self.crash = None
        if estimate is not None:
            start = start_at(config.events, config.markets, config.accounts)
            self.crash = Crash(start, draws, clock, markets, accounts, self.trades, self.account_events, estimate)
        self.portfolio = None
        if config.pm_share > 0:
            self.portfolio = Portfolio(config.pm_share, draws, clock, markets, accounts, self.trades)
        self.books = Books(config.books, draws, markets) if config.books else None

    def head(self) -> Iterator[InputEvent]:
        """Listings, then every market's price, then one deposit per account, then the PM setup,
        then the books."""
        ts = self.clock.ts
        yield from self.markets.listings(ts)
        yield from self.accounts.first_deposits(ts)
        pm = self.portfolio is not None and bool(self.portfolio.members)
        if pm:
            yield from self.portfolio.setup(ts)  # type: ignore[union-attr]
        if self.books is not None:
            yield from self.books.head(ts, token_listed=pm)

    def body(self) -> Iterator[InputEvent]:
        """Endless events in time order."""
        cfg, crash, draws, clock = self.config, self.crash, self.draws, self.clock
        count = 0  # body events so far, funding included
        while True:
            clock.ts += draws.between(cfg.min_step_ms, cfg.max_step_ms)
            for funding in self._funding_due():
                count += 1
                yield funding
            yield crash.event() if crash is not None and crash.due(count) else self._mixed()
            count += 1

    def _mixed(self) -> InputEvent:
        """A trade, a tick or an account event, in the shares the config asks."""
        cfg, portfolio = self.config, self.portfolio
        r = self.draws.random()
        if r < cfg.trade_share:
            return portfolio.trade() if portfolio is not None and portfolio.members else self.trades.perp()
        if r < cfg.trade_share + cfg.prices_share:
            return self.markets.tick(self.clock.ts)
        if self.trades.owed:  # keeps the type mix as configured
            self.trades.owed -= 1
            return self.trades.perp()
        return self.account_events.next()

    def _funding_due(self) -> Iterator[Funding]:
        """One funding event per market for each hour boundary the clock has passed."""
        while self.hour < self.clock.ts // HOUR_MS:
            self.hour += 1
            for b in self.markets.books:
                rate = self.draws.between(-_FUNDING_MAX, _FUNDING_MAX)
                yield Funding(ts=self.hour * HOUR_MS, coin=b.coin, rate=rate)


def generate(config: GeneratorConfig) -> Iterator[InputEvent]:
    """Exactly `config.events` events: listings, prices and deposits first, then the body."""
    config.check()
    workload = Workload(config)

    def stream() -> Iterator[InputEvent]:
        yield from workload.head()
        yield from workload.body()

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
