"""Which accounts to check for liquidation after an event, without scanning everyone.

`TriggerIndex` keeps, per market, sorted lists of trigger keys: a price tick or a funding
payment visits only the entries it crossed. Each account's margin buffer `B = AV - MM` (exact,
at index time) is split among its positions as reservations `b_i`; position i gets a price key
and a funding key such that, while neither is crossed, it cannot have lost more than `b_i`
(value, maintenance growth at the table's steepest rate and rounding included). So an account
none of whose keys is crossed still has `AV >= MM`: the index never misses a liquidation, it
only sends some healthy accounts for an exact check, after which they are re-indexed.

A trade moves one position of each side: its reservation absorbs the change in O(1) (log n for
the sorted lists) while the account's slack stays non-negative; otherwise the account is
checked exactly and re-indexed in full. `FullScan` is the simple twin: it checks every account
with a position on every tick and funding payment. Both feed the same exact check, so both give
the same decisions (tests compare their derived events and digests).

Every reservation is at least `ROUNDING` micro-USDC, so each key also covers the rounding of
one step; an account whose buffer is too thin for that is kept in `tight` and sent for a check
on every tick and funding payment.
"""

from __future__ import annotations

from sortedcontainers import SortedList

from clearinghouse import margin
from clearinghouse.state import Account, Market, Position, State
from clearinghouse.units import FUNDING_DIV, NTL_DIV

FUNDING_SHARE = 8  # 1/8 of a reservation covers funding, the rest price moves
ROUNDING = 3  # micro-USDC per position: value, funding and maintenance each round once


class _Book:
    """One market's trigger keys; entries are (key, account), so ties break by account id."""

    __slots__ = ("long_px", "short_px", "long_fund", "short_fund")

    def __init__(self) -> None:
        self.long_px: SortedList = SortedList()  # crossed when mark < key
        self.short_px: SortedList = SortedList()  # crossed when mark > key
        self.long_fund: SortedList = SortedList()  # crossed when funding index > key
        self.short_fund: SortedList = SortedList()  # crossed when funding index < key

    def crossed(self, market: Market) -> set[str]:
        mark, index = market.mark, market.funding_index
        hit = {a for _, a in self.long_px.irange(minimum=(mark + 1, ""))}
        hit.update(a for _, a in self.short_px[: self.short_px.bisect_left((mark, ""))])
        hit.update(a for _, a in self.long_fund[: self.long_fund.bisect_left((index, ""))])
        hit.update(a for _, a in self.short_fund.irange(minimum=(index + 1, "")))
        return hit

    def everyone(self) -> set[str]:
        return {a for _, a in self.long_px} | {a for _, a in self.short_px}

    def __len__(self) -> int:
        return len(self.long_px) + len(self.short_px)


class _Reservation:
    __slots__ = ("book", "long", "px_key", "fund_key", "b", "c_ref")

    def __init__(self, book: _Book, long: bool, px_key: int, fund_key: int, b: int, c_ref: int) -> None:
        self.book, self.long, self.px_key, self.fund_key, self.b, self.c_ref = book, long, px_key, fund_key, b, c_ref


class _Indexed:
    """An account's reservations: cross ones share the slack, each isolated one stands alone."""

    __slots__ = ("cross", "iso", "slack", "raw_ref")

    def __init__(self, raw_ref: int) -> None:
        self.cross: dict[str, _Reservation] = {}
        self.iso: dict[str, _Reservation] = {}
        self.slack = 0
        self.raw_ref = raw_ref


def contribution(pos: Position, market: Market) -> int:
    """What the position adds to `AV - MM`: value plus unsettled funding minus maintenance."""
    ntl = margin.notional(pos.szi, market.mark)
    return margin.value(pos.szi, market.mark) + margin.pending_funding(pos, market) - margin.table_of(pos, market).maintenance(ntl)


def _keys(pos: Position, market: Market, b: int) -> tuple[int, int]:
    """(price key, funding key) for a reservation of `b` micro-USDC on `pos`."""
    size = abs(pos.szi)
    fund_b = max(0, b // FUNDING_SHARE - 1)
    px_b = max(0, b - b // FUNDING_SHARE - ROUNDING + 1)
    fund_step = fund_b * FUNDING_DIV // size
    if pos.szi > 0:  # loses as the mark falls (maintenance falls with it) and as funding rises
        return market.mark - px_b * NTL_DIV // size, market.funding_index + fund_step
    # A short loses as the mark rises, and maintenance grows with it at most at the steepest
    # tier's rate 1 / (2 * L_min): the loss per price unit is |szi| * (1 + 1 / (2 * L_min)).
    two_l = 2 * margin.table_of(pos, market).tiers[-1].max_leverage
    return market.mark + px_b * NTL_DIV * two_l // (size * (two_l + 1)), market.funding_index - fund_step


class TriggerIndex:
    full_scan = False

    def __init__(self) -> None:
        self.books: dict[str, _Book] = {}
        self.accounts: dict[str, _Indexed] = {}
        self.tight: set[str] = set()

    # ---- entries ------------------------------------------------------------------------------

    def _add(self, name: str, coin: str, pos: Position, market: Market, b: int, c_ref: int) -> _Reservation:
        book = self.books.get(coin)
        if book is None:
            book = self.books[coin] = _Book()
        px_key, fund_key = _keys(pos, market, b)
        long = pos.szi > 0
        (book.long_px if long else book.short_px).add((px_key, name))
        (book.long_fund if long else book.short_fund).add((fund_key, name))
        return _Reservation(book, long, px_key, fund_key, b, c_ref)

    @staticmethod
    def _remove(name: str, res: _Reservation) -> None:
        book = res.book
        (book.long_px if res.long else book.short_px).remove((res.px_key, name))
        (book.long_fund if res.long else book.short_fund).remove((res.fund_key, name))

    def forget(self, name: str) -> None:
        self.tight.discard(name)
        entry = self.accounts.pop(name, None)
        if entry is not None:
            for res in (*entry.cross.values(), *entry.iso.values()):
                self._remove(name, res)

    # ---- (re)indexing -------------------------------------------------------------------------

    def reindex(self, name: str, account: Account, markets: dict[str, Market]) -> None:
        """Indexes every position of an account from scratch. A scope below maintenance is left
        out (the engine's watch list checks it after every event); one too thin to reserve
        `ROUNDING` per position goes to `tight`."""
        self.forget(name)
        entry = _Indexed(account.raw_usd)
        cross = []
        for coin, pos in account.positions.items():
            if not pos.szi:
                continue
            market = markets[coin]
            ntl = margin.notional(pos.szi, market.mark)
            if pos.cross:
                cross.append((coin, pos, market, ntl, contribution(pos, market)))
                continue
            buffer = margin.iso_margin_used(pos, market) - margin.table_of(pos, market).maintenance(ntl)
            if buffer >= ROUNDING:
                entry.iso[coin] = self._add(name, coin, pos, market, buffer, 0)
            elif buffer >= 0:
                self.tight.add(name)
        if cross:
            buffer = account.raw_usd + sum(c for *_, c in cross)
            spare = buffer - ROUNDING * len(cross)
            if spare >= 0:
                total = sum(ntl for _, _, _, ntl, _ in cross) or 1
                given = 0
                for coin, pos, market, ntl, c in cross:
                    b = ROUNDING + spare * ntl // total
                    given += b
                    entry.cross[coin] = self._add(name, coin, pos, market, b, c)
                entry.slack = buffer - given
            elif buffer >= 0:
                self.tight.add(name)
        if entry.cross or entry.iso:
            self.accounts[name] = entry

    def filled(self, name: str, account: Account, coin: str, markets: dict[str, Market]) -> bool:
        """After a fill of `coin`: moves the reservation in O(log n). False when the account
        must be checked exactly (its slack ran out); the caller then checks and re-indexes it."""
        entry = self.accounts.get(name)
        pos = account.positions[coin]
        if entry is None or not pos.cross or coin in entry.iso:
            return False
        market = markets[coin]
        old = entry.cross.pop(coin, None)
        c_new = contribution(pos, market) if pos.szi else 0
        available = entry.slack + account.raw_usd - entry.raw_ref + c_new
        if old is not None:
            self._remove(name, old)
            available += old.b - old.c_ref
        entry.raw_ref = account.raw_usd
        if available < ROUNDING:
            return False
        if pos.szi:
            entry.cross[coin] = self._add(name, coin, pos, market, available, c_new)
            entry.slack = 0
        else:
            entry.slack = available
        return True

    def rebuild(self, state: State, skip: frozenset[str]) -> None:
        self.books.clear()
        self.accounts.clear()
        self.tight.clear()
        for name in sorted(state.accounts):
            if name not in skip:
                self.reindex(name, state.accounts[name], state.markets)

    # ---- queries ------------------------------------------------------------------------------

    def crossed(self, coin: str, state: State) -> set[str]:
        """Accounts to check after `coin`'s mark or funding index moved."""
        book = self.books.get(coin)
        hit = book.crossed(state.markets[coin]) if book is not None else set()
        return hit | self.tight

    def holders(self, coin: str, state: State) -> set[str]:
        """Accounts to check after `coin`'s margin table changed."""
        book = self.books.get(coin)
        return (book.everyone() if book is not None else set()) | self.tight


class FullScan:
    """The reference: every tick and funding payment checks every account holding a position."""

    full_scan = True

    def reindex(self, name: str, account: Account, markets: dict[str, Market]) -> None:
        pass

    def forget(self, name: str) -> None:
        pass

    def filled(self, name: str, account: Account, coin: str, markets: dict[str, Market]) -> bool:
        return False

    def rebuild(self, state: State, skip: frozenset[str]) -> None:
        pass

    def crossed(self, coin: str, state: State) -> set[str]:
        return self.holders(coin, state)

    def holders(self, coin: str, state: State) -> set[str]:
        return {name for name, account in state.accounts.items() if any(p.szi for p in account.positions.values())}
