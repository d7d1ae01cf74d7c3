"""Books (`GeneratorConfig.books` > 0; 0 draws no random number): a population of hedged and
directional books and market makers, so a backtest shows both sides of a margin model on one
stream (docs/workload.md, "Books").

That many extra accounts, beyond `accounts`, each hold one kind of book, in turn: a carry (long
the collateral token spot, short the same size of its perp), a pair (long one perp, short
another of the same notional), a directional book (long or short one perp at about 4x its
deposit) and a market maker (small positions across up to eight markets, alternating sides, so
they about cancel). Each book is built in the stream's head, after the first deposits (and the
portfolio-margin setup), against one deep-pocketed desk account, and then held: the body's
trades never pick a book account, so the books only move with the prices. Every book account
stays in the standard mode and deposits at least 10,000 USDC, so a backtest may switch it to
portfolio margin. A carry's USDC for the spot buy moves to its spot balance first
(`class_transfer`).
"""

from __future__ import annotations

from collections.abc import Iterator

from events.schema import ClassTransfer, Deposit, InputEvent, SpotTrade, Token, Trade
from events.units import NTL_DIV, PX, USD
from replay.workload.draws import Draws
from replay.workload.markets import Markets, valid_price
from replay.workload.portfolio import MAKER_INVENTORY, SPOT_MAKER, collateral_market

KINDS = ("carry", "pair", "directional", "maker")
BOOK_DESK = "0xbookdesk"  # the other side of every book
_DESK_DEPOSIT = 1_000_000_000 * USD
_NOTIONAL = (40_000, 400_000)  # a book's notional in whole USDC: every deposit stays above 10,000
_MAKER_MARKETS = 8


class Books:
    """The book accounts (names and kinds, in turn) and the events that build their books."""

    def __init__(self, count: int, draws: Draws, markets: Markets) -> None:
        self.draws = draws
        self.markets = markets
        self.names = [f"0x{draws.rng.getrandbits(160):040x}" for _ in range(count)]
        self.kinds = {name: KINDS[i % len(KINDS)] for i, name in enumerate(self.names)}

    def head(self, ts: int, token_listed: bool) -> Iterator[InputEvent]:
        """The desk's deposit, the collateral token and the spot maker's inventory (unless the
        portfolio-margin setup listed them), then each book."""
        yield Deposit(ts=ts, account=BOOK_DESK, amount=_DESK_DEPOSIT)
        book = self.markets.books[collateral_market(self.markets)]
        if not token_listed:
            yield Token(ts=ts, token=book.coin, decimals=8)
            yield Deposit(ts=ts, account=SPOT_MAKER, amount=MAKER_INVENTORY * PX, token=book.coin)
        build = {"carry": self._carry, "pair": self._pair, "directional": self._directional, "maker": self._maker}
        for name in self.names:
            notional = self.draws.between(*_NOTIONAL) * USD
            yield from build[self.kinds[name]](ts, name, notional)

    def _size(self, m: int, notional: int) -> tuple[int, int]:
        """(size, price) of about `notional` in market `m` at its mark: at least one lot."""
        b = self.markets.books[m]
        px = valid_price(b.mark, b.sz_decimals)
        return max(b.lot, notional * NTL_DIV // px // b.lot * b.lot), px

    def _perp(self, ts: int, name: str, m: int, signed: int, px: int) -> Trade:
        coin = self.markets.books[m].coin
        buyer, seller = (name, BOOK_DESK) if signed > 0 else (BOOK_DESK, name)
        return Trade(ts=ts, coin=coin, px=px, sz=abs(signed), buyer=buyer, seller=seller)

    def _carry(self, ts: int, name: str, notional: int) -> Iterator[InputEvent]:
        m = collateral_market(self.markets)
        size, px = self._size(m, notional)
        cost = size * px // NTL_DIV
        yield Deposit(ts=ts, account=name, amount=2 * cost)
        yield ClassTransfer(ts=ts, account=name, amount=cost, to_perp=False)
        coin = self.markets.books[m].coin
        yield SpotTrade(ts=ts, base=coin, quote="USDC", px=px, sz=size, buyer=name, seller=SPOT_MAKER)
        yield self._perp(ts, name, m, -size, px)

    def _pair(self, ts: int, name: str, notional: int) -> Iterator[InputEvent]:
        count = len(self.markets.books)
        long = self.draws.between(0, count - 1)
        short = (long + self.draws.between(1, count - 1)) % count
        yield Deposit(ts=ts, account=name, amount=notional // 2)
        size, px = self._size(long, notional)
        yield self._perp(ts, name, long, size, px)
        size, px = self._size(short, notional)
        yield self._perp(ts, name, short, -size, px)

    def _directional(self, ts: int, name: str, notional: int) -> Iterator[InputEvent]:
        m = self.draws.between(0, len(self.markets.books) - 1)
        side = 1 if self.draws.random() < 0.5 else -1
        yield Deposit(ts=ts, account=name, amount=notional // 4)
        size, px = self._size(m, notional)
        yield self._perp(ts, name, m, side * size, px)

    def _maker(self, ts: int, name: str, notional: int) -> Iterator[InputEvent]:
        count = len(self.markets.books)
        first = self.draws.between(0, count - 1)
        spread = min(count, _MAKER_MARKETS)
        side = 1 if self.draws.random() < 0.5 else -1
        yield Deposit(ts=ts, account=name, amount=notional // 2)
        for k in range(spread):
            m = (first + k) % count
            size, px = self._size(m, notional // spread // 4)
            yield self._perp(ts, name, m, side * size, px)
            side = -side
