"""The perp markets: their listings and each one's hidden fair price, with the oracle and mark
prices that follow it (a random walk with rare jumps; the crash moves them along its own path)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from events.schema import MarginTier, Market, PricePoint, Prices
from events.units import PX, USD
from replay.workload.draws import Draws, cumulative_zipf

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

FINE = 10**8  # extra digits of the hidden fair price, so small steps do not stick to the tick
_STEP_PPB = 150_000  # per-update random-walk step, uniform within +-0.015%
_JUMP_ONE_IN = 20_000  # one market update in this many jumps by 1%-5% (a few a day)
_MARK_SPREAD_PPM = 300  # mark within +-0.03% of the oracle


@dataclass(slots=True)
class Book:
    """A market's listing and its hidden price process."""

    coin: str
    sz_decimals: int
    lot: int
    max_leverage: int  # of the first tier
    only_isolated: bool
    tiers: tuple[tuple[int, int], ...]
    fair: int  # in 1e-8 / FINE
    oracle: int = 0
    mark: int = 0

    def point(self) -> PricePoint:
        return PricePoint(mark=self.mark, oracle=self.oracle)


def valid_price(raw: int, sz_decimals: int) -> int:
    """`raw` (1e-8 scale) rounded to the nearest positive price Hyperliquid accepts: at most
    6 - sz_decimals decimals and 5 significant figures."""
    tick = max(10 ** (2 + sz_decimals), 10 ** max(0, len(str(raw)) - 5))
    return (raw + tick // 2) // tick * tick or tick


class Markets:
    """Every market's book, the Zipf pick of a market, and the ticks of the random walk."""

    def __init__(self, count: int, draws: Draws) -> None:
        self.draws = draws
        self.books = [self._list(i) for i in range(count)]
        self.cumulative = cumulative_zipf(count)

    def _list(self, i: int) -> Book:
        draws = self.draws
        if i < len(_LISTED):
            coin, szd, start = _LISTED[i]
        else:  # a lot worth $0.10-$2, as Hyperliquid picks sz_decimals
            coin, szd = f"M{i}", draws.between(0, 3)
            start = 10**szd * draws.between(10, 200) * PX // 100
        only_isolated = i % _ISOLATED_EVERY == 4
        tiers = ((0, draws.between(3, 10)),) if only_isolated else _TIERS.get(coin, _DEFAULT_TIERS)
        book = Book(coin, szd, 10 ** (8 - szd), tiers[0][1], only_isolated, tiers, start * FINE)
        book.oracle = book.mark = valid_price(start, szd)
        return book

    def listings(self, ts: int) -> Iterator[Market | Prices]:
        """Every listing, then one price of every market."""
        for b in self.books:
            tiers = [MarginTier(lower * USD, lev) for lower, lev in b.tiers]
            yield Market(
                ts=ts, coin=b.coin, sz_decimals=b.sz_decimals, margin_tiers=tiers, only_isolated=b.only_isolated
            )
        yield Prices(ts=ts, prices={b.coin: b.point() for b in self.books})

    def pick(self) -> int:
        """A Zipf-weighted market: BTC busiest, then ETH, ..."""
        return self.draws.rank(self.cumulative)

    def tick(self, ts: int) -> Prices:
        """A tick of one market (chosen as trades choose them), now and then with a couple of
        others: a quarter of all events are ticks, as in a per-coin oracle feed, rather than a
        few snapshots of every market."""
        first = self.books[self.pick()]
        share = 1 / len(self.books)
        random = self.draws.random
        moved = [first] + [b for b in self.books if b is not first and random() < share]
        for b in moved:
            self._step(b)
        return Prices(ts=ts, prices={b.coin: b.point() for b in moved})

    def _step(self, b: Book) -> None:
        """One random-walk step of the hidden fair price."""
        draws = self.draws
        step = draws.between(-_STEP_PPB, _STEP_PPB)
        if draws.random() < 1 / _JUMP_ONE_IN:
            step += (1 if draws.random() < 0.5 else -1) * draws.between(10_000_000, 50_000_000)
        self.quote(b, b.fair * (10**9 + step) // 10**9)

    def quote(self, b: Book, fair: int) -> None:
        """Moves the hidden fair price to `fair`; the oracle follows it and the mark lands within
        `_MARK_SPREAD_PPM` of it."""
        b.fair = fair
        b.oracle = valid_price(fair // FINE, b.sz_decimals)
        spread = self.draws.between(-_MARK_SPREAD_PPM, _MARK_SPREAD_PPM)
        b.mark = valid_price(fair * (10**6 + spread) // (10**6 * FINE), b.sz_decimals)
