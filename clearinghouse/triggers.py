"""Which accounts to check for liquidation after an event, without scanning everyone.

`TriggerIndex` keeps, per market, sorted lists of trigger keys: a price tick or a funding
payment visits only the entries it crossed. Each account's margin buffer `B = AV - MM` (exact,
at index time) is split among its positions as reservations `b_i`; position i gets a price key
and a funding key such that, while neither is crossed, it cannot have lost more than `b_i`
(value, maintenance growth at the table's steepest rate and rounding included). So an account
none of whose keys is crossed still has `AV >= MM`: the index never misses a liquidation, it
only sends some healthy accounts for an exact check, after which they are re-indexed.

Keys are written for half a position's share, and each cross reservation is booked at its
floor, what the position adds to `AV - MM` at its keys (`floor_at`): the account's ledger
`slack = raw_usd + the sum of its floors` bounds `AV - MM` from below while no key is crossed,
and what the half-strict keys leave over stays in it. A trade moves one position of each side:
a fill that keeps the position's side or closes it is absorbed with no index work while the
slack at the same keys stays non-negative (`_absorbed`: growth is paid from the slack, a
reduction gives back), else that position alone is re-keyed from its share of the buffer, and
only when that falls short is the account checked exactly and re-indexed in full. `FullScan`
is the simple twin: it checks every account with a position on every tick and funding payment.
Both feed the same exact check, so both give the same decisions (tests compare their derived
events and digests).

Every reservation is at least `ROUNDING` micro-USDC, so each key also covers the rounding of
one step; an account whose buffer is too thin for that is kept in `tight` and sent for a check
on every tick and funding payment.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable

import msgspec

from clearinghouse import margin
from clearinghouse.state import Account, MarketState, Position, State
from clearinghouse.tiers import TierTable, single_tier
from events.units import FUNDING_DIV, NTL_DIV

FUNDING_SHARE = 8  # 1/8 of a reservation covers funding, the rest price moves
ROUNDING = 3  # micro-USDC per position: value, funding and maintenance each round once
# Keys are written for this many eighths of a position's share: half after a fill, so the next
# fills find slack; 7/8 after a tick crossed them, so a falling price crosses them fewer times.
FILL_KEYED = 4
TICK_KEYED = 7
ID_BITS = 32  # an entry is `key << ID_BITS | account id`: room for 4 billion accounts
ID_MASK = (1 << ID_BITS) - 1


class _Book:
    """One market's trigger keys. An entry is one int, `key << ID_BITS | id` with the account's
    id in an `AccountIds`: it sorts by key (ties by id, an order no result depends on) and
    compares several times faster than a (key, name) tuple. Each side is a plain sorted list,
    kept with `bisect` (C calls: an insertion moves a few thousand pointers at 100,000 accounts,
    cheaper than a sorted-list library's Python-level bookkeeping)."""

    __slots__ = ("long_px", "short_px", "long_fund", "short_fund")

    def __init__(self) -> None:
        self.long_px: list[int] = []  # crossed when mark < key
        self.short_px: list[int] = []  # crossed when mark > key
        self.long_fund: list[int] = []  # crossed when funding index > key
        self.short_fund: list[int] = []  # crossed when funding index < key

    def sort(self) -> None:
        """Sorts lists filled in bulk with `append` (one sort each, not one insertion each)."""
        for side in (self.long_px, self.short_px, self.long_fund, self.short_fund):
            side.sort()

    def crossed(self, market: MarketState, names: list[str]) -> set[str]:
        """The accounts with an entry the market's mark or funding index crossed; each list's
        end is compared first, as most ticks cross nothing."""
        mark, index = market.mark, market.funding_index
        long_px, short_px, long_fund, short_fund = self.long_px, self.short_px, self.long_fund, self.short_fund
        hit: set[str] = set()
        low, high = mark << ID_BITS, (mark + 1) << ID_BITS
        if long_px and long_px[-1] >= high:
            hit.update(names[e & ID_MASK] for e in long_px[bisect_left(long_px, high) :])
        if short_px and short_px[0] < low:
            hit.update(names[e & ID_MASK] for e in short_px[: bisect_left(short_px, low)])
        low, high = index << ID_BITS, (index + 1) << ID_BITS
        if long_fund and long_fund[0] < low:
            hit.update(names[e & ID_MASK] for e in long_fund[: bisect_left(long_fund, low)])
        if short_fund and short_fund[-1] >= high:
            hit.update(names[e & ID_MASK] for e in short_fund[bisect_left(short_fund, high) :])
        return hit

    def everyone(self, names: list[str]) -> set[str]:
        return {names[e & ID_MASK] for e in self.long_px} | {names[e & ID_MASK] for e in self.short_px}

    def __len__(self) -> int:
        return len(self.long_px) + len(self.short_px)


def _drop(side: list[int], entry: int) -> None:
    """Removes `entry` (it must be there) from a sorted list, or from one `rebuild` is still
    filling in bulk (not sorted yet: found by a linear search)."""
    at = bisect_left(side, entry)
    if at < len(side) and side[at] == entry:
        del side[at]
    else:
        side.remove(entry)  # ValueError if it is not there at all


class AccountIds:
    """Small ints for account names, for book entries (here and in `pm_triggers`). Ids are never
    reused, so an entry's id always names one account."""

    __slots__ = ("names", "_ids")

    def __init__(self) -> None:
        self.names: list[str] = []  # id -> name
        self._ids: dict[str, int] = {}

    def of(self, name: str) -> int:
        ident = self._ids.get(name)
        if ident is None:
            ident = self._ids[name] = len(self.names)
            self.names.append(name)
        return ident


class _Reservation(msgspec.Struct, gc=False):
    """gc=False, as `_Indexed`: nothing here refers back to it, so the cyclic collector need
    never look at the hundreds of thousands a book makes (every fill re-references one). It
    holds its two book entries (the same int objects as the books), not the keys apart, and
    not its book (the caller has its coin)."""

    long: bool
    px_entry: int  # `px_key << ID_BITS | account id`, as in the book
    fund_entry: int
    b: int  # a cross one's share, `c_ref - b` its floor (`_booked`); an isolated one's buffer
    c_ref: int
    ntl: int


class _Indexed(msgspec.Struct, gc=False):
    """An account's reservations: cross ones share the slack, each isolated one stands alone.
    Its dicts hold untracked values only, so they stay untracked too."""

    ident: int  # the account's id in the book entries
    raw_ref: int
    cross: dict[str, _Reservation] = {}
    iso: dict[str, _Reservation] | None = None  # made by the first isolated one: most accounts have none
    slack: int = 0
    b_total: int = 0  # over the cross reservations, to size a re-referenced one by its share
    ntl_total: int = 0


def _holds(res: _Reservation, market: MarketState) -> bool:
    """Neither of the reservation's keys crossed at the current mark and funding index (the
    `_Book` lists' rule, for one reservation)."""
    px_key, fund_key = res.px_entry >> ID_BITS, res.fund_entry >> ID_BITS
    if res.long:
        return px_key <= market.mark and fund_key >= market.funding_index
    return px_key >= market.mark and fund_key <= market.funding_index


def _less_mm(table: TierTable, ntl: int) -> int:
    """`-maintenance(ntl)` of the table (`TierTable.maintenance`, rounded up, negated), with
    no call for a table of one tier."""
    tiers = table.tiers
    tier = tiers[0] if len(tiers) == 1 else table.tier_for(ntl)
    return (tier.ded - ntl * tier.mult) // table.den


def contribution(pos: Position, market: MarketState, ntl: int) -> int:
    """What the position adds to `AV - MM`: value plus unsettled funding minus maintenance
    (`ntl` is its notional, which the caller has at hand)."""
    szi = pos.szi
    table = single_tier(pos.max_leverage) if pos.max_leverage else market.table
    funding = (-szi * (market.funding_index - pos.funding_index)) // FUNDING_DIV
    return (szi * market.mark) // NTL_DIV + funding + _less_mm(table, ntl)


def _keys(pos: Position, market: MarketState, b: int) -> tuple[int, int]:
    """(price key, funding key) for a reservation of `b` micro-USDC on `pos`."""
    size = abs(pos.szi)
    fund_b = max(0, b // FUNDING_SHARE - 1)
    px_b = max(0, b - b // FUNDING_SHARE - ROUNDING + 1)
    fund_step = fund_b * FUNDING_DIV // size
    if pos.szi > 0:  # loses as the mark falls (maintenance falls with it) and as funding rises
        return market.mark - px_b * NTL_DIV // size, market.funding_index + fund_step
    # A short loses as the mark rises, and maintenance grows with it at most at the steepest
    # tier's rate 1 / (2 * L_min): the loss per price unit is |szi| * (1 + 1 / (2 * L_min)).
    two_l = 2 * (pos.max_leverage or market.table.tiers[-1].max_leverage)
    return market.mark + px_b * NTL_DIV * two_l // (size * (two_l + 1)), market.funding_index - fund_step


def floor_at(pos: Position, market: MarketState, px_key: int, fund_key: int) -> int:
    """The least `pos` can add to `AV - MM` while neither key is crossed: its contribution with
    the mark at the price key and the funding index at the funding key, less `ROUNDING`.

    A long's contribution rises with the mark (value at rate 1, maintenance at most 1/2, as no
    leverage is below 1) and falls as the index rises; a short's the other way round: so over
    the marks and indices on the keys' uncrossed side it is least at the keys, short of what
    the rounding of value (down), notional and maintenance (up) takes at a step, at most 2."""
    szi = pos.szi
    table = single_tier(pos.max_leverage) if pos.max_leverage else market.table
    return (
        (szi * px_key) // NTL_DIV
        + (-szi * (fund_key - pos.funding_index)) // FUNDING_DIV
        + _less_mm(table, -((-abs(szi) * px_key) // NTL_DIV))
        - ROUNDING
    )


def _booked(res: _Reservation, pos: Position, market: MarketState) -> _Reservation:
    """A cross reservation booked at its floor (`floor_at` its keys): `b` becomes what the
    position can lose before a key is crossed, which is less than the share it was keyed for
    (keys are written for half of it), so the rest stays in the account's slack for fills."""
    res.b = res.c_ref - floor_at(pos, market, res.px_entry >> ID_BITS, res.fund_entry >> ID_BITS)
    return res


def _absorbed(entry: _Indexed, account: Account, pos: Position, market: MarketState, res: _Reservation) -> bool:
    """A fill of a cross position that keeps its side or closes it, absorbed with no index work:
    its keys stay, and the position's floor at them (`floor_at`; 0 once closed) replaces the old
    one in the account's ledger (`slack = raw_ref + the sum of the floors`), with what the fill
    did to the cash (fee, realised pnl). Every position stays above its floor while its keys
    hold, so `AV - MM >= slack`: the account stays indexed while that slack is not negative. A
    fill that grows the position lowers its floor, which the slack pays for; one that reduces it
    raises its floor or leaves it, so only its fee and a price past the key can cost slack.

    A closed position's keys stay in the book, its floor 0 and its share given back
    (`b = 0`): a reopening on the same side is absorbed the same way, and a tick that crosses
    them sends the account for a check, after which they go (`refresh`). False (nothing
    changed): the keys are crossed or the slack falls short; `filled` re-keys."""
    px_key, fund_key, mark, index = (
        res.px_entry >> ID_BITS,
        res.fund_entry >> ID_BITS,
        market.mark,
        market.funding_index,
    )
    if not ((px_key <= mark and fund_key >= index) if res.long else (px_key >= mark and fund_key <= index)):
        return False
    szi = pos.szi
    floor = floor_at(pos, market, px_key, fund_key) if szi else 0
    slack = entry.slack + account.raw_usd - entry.raw_ref + floor - (res.c_ref - res.b)
    if slack < 0:
        return False
    ntl = -((-abs(szi) * mark) // NTL_DIV)
    entry.ntl_total += ntl - res.ntl
    if not szi:
        entry.b_total -= res.b
        res.b = 0
    res.ntl, res.c_ref = ntl, floor + res.b  # `c_ref - b` is the floor the ledger counts
    entry.slack, entry.raw_ref = slack, account.raw_usd
    return True


_NONE: dict[str, _Reservation] = {}  # read only: an account's isolated reservations when it has none


class TriggerIndex:
    def __init__(self) -> None:
        self.books: dict[str, _Book] = {}
        self.accounts: dict[str, _Indexed] = {}
        self.tight: set[str] = set()
        self.ids = AccountIds()
        self._insert: Callable[[list[int], int], None] = insort  # `list.append` while `rebuild` fills in bulk

    # ---- entries ------------------------------------------------------------------------------

    def _add(
        self,
        ident: int,
        coin: str,
        pos: Position,
        market: MarketState,
        ntl: int,
        b: int,
        c_ref: int,
        old: _Reservation | None = None,
        keyed: int = FILL_KEYED,
    ) -> _Reservation:
        """A reservation of `b` on `pos` (of notional `ntl`), referenced at the current mark and
        funding index, for the account of id `ident`.

        Keys are written for `keyed` eighths of the reservation (half of it, or 7/8 after a tick:
        stricter than needed), and the keys of `old`
        are kept whenever they are at least as strict as those the full reservation needs and
        not crossed yet: most fills, and most positions of an account re-indexed after a tick
        crossed one of them, then move no sorted-list entry, at the cost of an exact check when
        a price has used up half a reservation."""
        book = self.books.get(coin)
        if book is None:
            book = self.books[coin] = _Book()
        long = pos.szi > 0
        px_list, fund_list = (book.long_px, book.long_fund) if long else (book.short_px, book.short_fund)
        same_side = keep_px = keep_fund = old is not None and old.long == long
        if same_side:
            px_need, fund_need = _keys(pos, market, b)
            old_px, old_fund = old.px_entry >> ID_BITS, old.fund_entry >> ID_BITS  # type: ignore[union-attr]
            mark, index = market.mark, market.funding_index
            if long:
                keep_px = px_need <= old_px <= mark
                keep_fund = index <= old_fund <= fund_need
            else:
                keep_px = mark <= old_px <= px_need
                keep_fund = fund_need <= old_fund <= index
        px_entry, fund_entry = (old.px_entry, old.fund_entry) if same_side else (0, 0)  # type: ignore[union-attr]
        if not (keep_px and keep_fund):
            px_strict, fund_strict = _keys(pos, market, max(ROUNDING, b * keyed // 8))
            if not keep_px:
                if same_side:
                    _drop(px_list, px_entry)
                px_entry = px_strict << ID_BITS | ident
                self._insert(px_list, px_entry)
            if not keep_fund:
                if same_side:
                    _drop(fund_list, fund_entry)
                fund_entry = fund_strict << ID_BITS | ident
                self._insert(fund_list, fund_entry)
        if old is not None and not same_side:
            self._remove(coin, old)
        return _Reservation(long, px_entry, fund_entry, b, c_ref, ntl)

    def _remove(self, coin: str, res: _Reservation) -> None:
        book = self.books[coin]
        _drop(book.long_px if res.long else book.short_px, res.px_entry)
        _drop(book.long_fund if res.long else book.short_fund, res.fund_entry)

    @staticmethod
    def _set_cross(entry: _Indexed, coin: str, res: _Reservation | None) -> None:
        old = entry.cross.pop(coin, None)
        if old is not None:
            entry.b_total -= old.b
            entry.ntl_total -= old.ntl
        if res is not None:
            entry.cross[coin] = res
            entry.b_total += res.b
            entry.ntl_total += res.ntl

    @staticmethod
    def _set_iso(entry: _Indexed, coin: str, res: _Reservation) -> None:
        if entry.iso is None:
            entry.iso = {}
        entry.iso[coin] = res

    def forget(self, name: str) -> None:
        self.tight.discard(name)
        entry = self.accounts.pop(name, None)
        if entry is not None:
            for coin, res in (*entry.cross.items(), *(entry.iso or _NONE).items()):
                self._remove(coin, res)

    # ---- (re)indexing -------------------------------------------------------------------------

    def reindex(self, name: str, account: Account, markets: dict[str, MarketState]) -> None:
        """Indexes every position of an account afresh, each new reservation keeping the keys of
        the position's old one where they still hold (`_add`). A scope below maintenance is
        left out (the engine's watch list checks it after every event); one too thin to reserve
        `ROUNDING` per position goes to `tight`; an account not indexed keeps no key."""
        old = self.accounts.pop(name, None)
        self.tight.discard(name)
        was_cross, was_iso = (old.cross, old.iso or {}) if old is not None else ({}, {})
        ident = self.ids.of(name)
        entry = _Indexed(ident, account.raw_usd)
        cross = []
        for coin, pos in account.positions.items():
            if not pos.szi:
                continue
            market = markets[coin]
            ntl = margin.notional(pos.szi, market.mark)
            if pos.cross:
                cross.append((coin, pos, market, ntl, contribution(pos, market, ntl)))
                continue
            buffer = margin.iso_margin_used(pos, market) - margin.table_of(pos, market).maintenance(ntl)
            if buffer >= ROUNDING:
                self._set_iso(
                    entry, coin, self._add(ident, coin, pos, market, ntl, buffer, 0, was_iso.pop(coin, None))
                )
            elif buffer >= 0:
                self.tight.add(name)
        if cross:
            buffer = account.raw_usd + sum(c for *_, c in cross)
            spare = buffer - ROUNDING * len(cross)
            if spare >= 0:
                total = sum(ntl for _, _, _, ntl, _ in cross) or 1
                for coin, pos, market, ntl, c in cross:
                    b = ROUNDING + spare * ntl // total
                    res = self._add(ident, coin, pos, market, ntl, b, c, was_cross.pop(coin, None))
                    self._set_cross(entry, coin, _booked(res, pos, market))
                entry.slack = buffer - entry.b_total
                if entry.slack < 0:
                    self.tight.add(name)
            elif buffer >= 0:
                self.tight.add(name)
        for coin, res in (*was_cross.items(), *was_iso.items()):  # positions closed or of the other kind
            self._remove(coin, res)
        if name not in self.tight and (not cross or entry.cross):
            if not cross:
                entry.slack = account.raw_usd
            self.accounts[name] = entry
        else:
            for coin, res in (*entry.cross.items(), *(entry.iso or _NONE).items()):
                self._remove(coin, res)

    def filled(
        self, name: str, account: Account, coin: str, markets: dict[str, MarketState], tick: bool = False
    ) -> bool:
        """After a fill of `coin` (`tick`: after a tick crossed its keys, see `covered`):
        absorbed in the slack when the position keeps its side or closes (`_absorbed`, no index
        work); else its reservation is re-referenced in O(log n), with its notional's share of
        the account's reservations (the rest waits in the slack for the next position), and
        when even the slack cannot cover it, half of what is left of the largest other
        reservation is moved over. False when that falls short too: the caller then checks the
        account exactly and re-indexes it."""
        entry = self.accounts.get(name)
        if entry is None:
            return False
        pos, market = account.positions[coin], markets[coin]
        keyed = TICK_KEYED if tick else FILL_KEYED
        if not pos.cross:
            return coin not in entry.cross and self._iso_filled(name, entry, account, pos, coin, market, keyed)
        if entry.iso and coin in entry.iso:
            return False
        old = entry.cross.get(coin)
        szi = pos.szi
        if old is not None and (not szi or (szi > 0) is old.long) and _absorbed(entry, account, pos, market, old):
            return True
        ntl = margin.notional(pos.szi, market.mark)
        c_new = contribution(pos, market, ntl) if pos.szi else 0
        available = entry.slack + account.raw_usd - entry.raw_ref + c_new
        if old is not None:
            available += old.b - old.c_ref
        self._set_cross(entry, coin, None)
        entry.raw_ref = account.raw_usd
        entry.slack = 0
        if not pos.szi:
            if old is not None:
                self._remove(coin, old)
            entry.slack = available
            return available >= 0
        if available < 2 * ROUNDING and entry.cross:
            available += self._lend(entry, account, markets)
        if available < ROUNDING:
            if old is not None:
                self._remove(coin, old)
            return False
        b = max(ROUNDING, min(available, (entry.b_total + available) * ntl // (entry.ntl_total + ntl or 1)))
        res = _booked(self._add(entry.ident, coin, pos, market, ntl, b, c_new, old, keyed), pos, market)
        self._set_cross(entry, coin, res)
        entry.slack = available - res.b
        return entry.slack >= 0

    def _iso_filled(
        self,
        name: str,
        entry: _Indexed,
        account: Account,
        pos: Position,
        coin: str,
        market: MarketState,
        keyed: int,
    ) -> bool:
        """An isolated fill moved margin between the cross ledger (slack) and the position,
        whose reservation is simply its own buffer again."""
        if not self.cash_moved(name, account):
            return False
        old = entry.iso.pop(coin, None) if entry.iso else None
        if not pos.szi:
            if old is not None:
                self._remove(coin, old)
            return True
        ntl = margin.notional(pos.szi, market.mark)
        buffer = margin.iso_margin_used(pos, market) - margin.table_of(pos, market).maintenance(ntl)
        if buffer < ROUNDING:
            if old is not None:
                self._remove(coin, old)
            return False
        self._set_iso(entry, coin, self._add(entry.ident, coin, pos, market, ntl, buffer, 0, old, keyed))
        return True

    def refresh(self, name: str, account: Account, markets: dict[str, MarketState]) -> None:
        """After a tick crossed some of an account's keys and an exact check found it healthy:
        re-references just the crossed reservations (`covered`), and re-indexes in full when
        that falls short or when a position has no reservation (a scope left out below
        maintenance that is back above it). A price jump in one coin then costs each account it
        crosses one position's keys, not all of them."""
        if not self.covered(name, account, markets):
            self.reindex(name, account, markets)

    def covered(self, name: str, account: Account, markets: dict[str, MarketState]) -> bool:
        """After a tick crossed some of an account's keys: re-references just the crossed
        reservations from the ledger, as a fill of their coins does (`filled`), with no exact
        check. True when every one of them is covered again and the slack is not negative:
        then `AV - MM >= slack >= 0` (every floor holds at the new keys), the account is healthy
        and indexed. False: the caller checks it exactly (and `refresh` or `reindex` then
        indexes it afresh)."""
        entry = self.accounts.get(name)
        if entry is None:
            return False
        cross, iso = entry.cross, entry.iso or _NONE
        for coin, pos in account.positions.items():
            if pos.szi and coin not in (cross if pos.cross else iso):
                return False
        crossed = [coin for coin, res in (*cross.items(), *iso.items()) if not _holds(res, markets[coin])]
        if not crossed:
            return False
        for coin in crossed:
            if not self.filled(name, account, coin, markets, True):
                return False
        return True

    def cash_moved(self, name: str, account: Account) -> bool:
        """After a deposit, withdrawal or transfer: the cross ledger's change goes to the slack.
        False when the slack would go negative (the caller checks and re-indexes)."""
        entry = self.accounts.get(name)
        if entry is None:
            return False
        entry.slack += account.raw_usd - entry.raw_ref
        entry.raw_ref = account.raw_usd
        return entry.slack >= 0

    def _lend(self, entry: _Indexed, account: Account, markets: dict[str, MarketState]) -> int:
        """Re-references the largest cross reservation at the current marks with half of what
        is left of it above its floor; returns what its floor rose by (0 if too little is left)."""
        donor_coin = max(entry.cross, key=lambda c: (entry.cross[c].b, c))
        donor = entry.cross[donor_coin]
        pos, market = account.positions[donor_coin], markets[donor_coin]
        ntl = margin.notional(pos.szi, market.mark)
        c_now = contribution(pos, market, ntl)
        floor = donor.c_ref - donor.b
        left = c_now - floor
        if left - left // 2 < ROUNDING:
            return 0
        kept = left - left // 2
        res = _booked(self._add(entry.ident, donor_coin, pos, market, ntl, kept, c_now, donor), pos, market)
        self._set_cross(entry, donor_coin, res)
        return res.c_ref - res.b - floor

    def rebuild(self, state: State, skip: frozenset[str]) -> None:
        """Indexes every account (after loading a snapshot), sorting each list once at the end."""
        self.books.clear()
        self.accounts.clear()
        self.tight.clear()
        self._insert = list.append
        try:
            for name, account in state.accounts.items():
                if name not in skip:
                    self.reindex(name, account, state.markets)
        finally:
            self._insert = insort
            for book in self.books.values():
                book.sort()

    # ---- queries ------------------------------------------------------------------------------

    def crossed(self, coin: str, state: State) -> set[str]:
        """Accounts to check after `coin`'s mark or funding index moved."""
        book = self.books.get(coin)
        hit = book.crossed(state.markets[coin], self.ids.names) if book is not None else set()
        if self.tight:
            hit |= self.tight
        return hit

    def holders(self, coin: str, state: State) -> set[str]:
        """Accounts to check after `coin`'s margin table changed."""
        book = self.books.get(coin)
        return (book.everyone(self.ids.names) if book is not None else set()) | self.tight


class FullScan:
    """The reference: every tick and funding payment checks every account holding a position."""

    def reindex(self, name: str, account: Account, markets: dict[str, MarketState]) -> None:
        pass

    def forget(self, name: str) -> None:
        pass

    def filled(self, name: str, account: Account, coin: str, markets: dict[str, MarketState]) -> bool:
        return False

    def refresh(self, name: str, account: Account, markets: dict[str, MarketState]) -> None:
        pass

    def covered(self, name: str, account: Account, markets: dict[str, MarketState]) -> bool:
        return False

    def cash_moved(self, name: str, account: Account) -> bool:
        return False

    def rebuild(self, state: State, skip: frozenset[str]) -> None:
        pass

    def crossed(self, coin: str, state: State) -> set[str]:
        return self.holders(coin, state)

    def holders(self, coin: str, state: State) -> set[str]:
        return {name for name, account in state.accounts.items() if any(p.szi for p in account.positions.values())}
