"""Which unified and portfolio accounts a price tick or a funding payment may have made
liquidatable, without checking every account exposed to the coin.

The same idea as `triggers.TriggerIndex`, for the other margin models: an account's buffer `B`
(PM: `liq_ratio * liqValue - req`, and `partial threshold - borrowed` when it borrows; unified:
`AV_cross - crossMM - 1`, its trigger being inclusive; an isolated position: `marginUsed - MM`)
is split among the coins it is exposed to in proportion to the value at risk `K * price`, `K`
bounding how fast the buffer can fall per unit of that coin's price: per cross or isolated
position `2 |szi|` (its value plus maintenance growth, `mmr <= 1`), per collateral holding or
non-USDC borrow its amount (every factor applied to it is at most 1). Of a book's buffer, half
goes to the bands and half stays as slack for fills. A coin gets a price band around its mark
and oracle and a funding band around its funding index, sized so that while both prices stay
inside the price band and the index inside the funding band the coin cannot use more than its
share (7/8 for prices, 1/8 for funding). A tick visits only the entries whose band it left;
those accounts are checked exactly and, if healthy, only the book bands they left are re-
referenced (`refresh`). A buffer too thin to split gets bands any change leaves (checked on
every tick of the coin). A borrower of USDC keeps `1 / INTEREST_SHARE` of its buffer back from
the bands for the interest on its debt: the hourly accrual sends it for an exact check only once
its debt has grown past what it kept back (`interest_due`), and even then only if its slack
cannot absorb what the debt and the cash moved (`cash_moved`, which also serves those the hour's
settlement with the pool moved); other borrowers are checked at every hour (the engine does
that). Rule changes send every affected account for an exact check, and so do the account's own
events, except its fills: each buffer is a sum of per-coin terms (`parts`) plus terms no price
moves (`_cash`), so a perp fill or a spot fill of a banded coin moves only that coin's terms and
the cash, and `filled` re-references that coin's band from its share and the slack in O(1), as
`TriggerIndex.filled` does for standard accounts. An account with nothing to liquidate yet is
banded too (while its ratio holds), so its first fill finds its sizing.

Prices of a spot token with no perp market of its name are not banded: the engine checks every
account exposed to it on such a tick. A model whose buffer is not such a sum (`sized` False: the
risk model's maximum over scenarios) gets the bands `risk.bands` sizes from its own bound on
how fast its buffer can fall per unit of each price, and that module's sizing by part of the
book (a credit group or an underlying): a fill re-references its part's bands (`_risk_filled`).
"""

from __future__ import annotations

from sortedcontainers import SortedList

from clearinghouse import lending, margin, portfolio
from clearinghouse.models.base import MarginModel
from clearinghouse.risk import bands as risk_bands
from clearinghouse.scopes import isolated_scope, isolated_scopes
from clearinghouse.spot import USDC
from clearinghouse.state import Account, MarketState, SpotAccount, State
from clearinghouse.triggers import ID_BITS, ID_MASK, AccountIds
from events.units import FUNDING_DIV, NTL_DIV, RATE

# coin, kind (0 book, 1 isolated), low, high, funding low, funding high, the prices it follows (BOTH, MARK, ORACLE)
Entry = tuple[str, int, int, int, int, int, int]
Part = tuple[int, int, int, int, int]  # a coin's terms at its band's reference (see `parts`), its share and weight
ROUNDING = 8  # micro-USDC of each share kept back for the rounding of the figures
ALWAYS = 10**40  # a key every price crosses
BOTH, MARK, ORACLE = 0, 1, 2  # the prices a band follows: the mark and the oracle, or one alone (`_follows`)
INTEREST_SHARE = 16  # a USDC borrower's buffer kept back for interest: 1/16
FILL_SLACK = 2  # of the rest, 1/2 is kept out of the book bands, for fills to draw on (`filled`)


class _Sizing:
    """What an account's book bands were sized from, so a fill can re-reference one coin's band
    in O(1) (as `triggers.TriggerIndex.filled` does for standard accounts): the cash at the
    reference (`_cash`), what is left of the buffer outside every share (`slack` against the ratio's
    buffer, `slack2` against the partial borrow threshold's, None without a borrow), the ratio
    the cash and `x` terms count at (`liq_ratio`, or `RATE` for a unified account's own buffer),
    per coin its `Part`, and the USDC debt at the reference with the part of the buffer kept
    back for its interest (`cash_moved` re-references both)."""

    __slots__ = ("model", "cash", "slack", "slack2", "ratio", "parts", "shares", "weights", "debt", "kept")

    def __init__(
        self,
        model: MarginModel,
        cash: int,
        slack: int,
        slack2: int | None,
        ratio: int,
        parts: dict[str, Part],
        shares: int,
        weights: int,
        debt: int,
        kept: int,
    ) -> None:
        self.model = model  # the account's margin model when it was banded
        self.cash, self.slack, self.slack2, self.ratio, self.parts = cash, slack, slack2, ratio, parts
        self.shares, self.weights, self.debt, self.kept = shares, weights, debt, kept


class PmBands:
    def __init__(self) -> None:
        # coin -> entries `key << ID_BITS | account id` (as `triggers._Book`'s): crossed when min(mark, oracle) < key
        self.low: dict[str, SortedList] = {}
        self.high: dict[str, SortedList] = {}  # crossed when max(mark, oracle) > key
        # the bands of terms one price alone moves (`_follows`): crossed when that price < key, > key
        self.mark_low: dict[str, SortedList] = {}
        self.mark_high: dict[str, SortedList] = {}
        self.oracle_low: dict[str, SortedList] = {}
        self.oracle_high: dict[str, SortedList] = {}
        self.fund_low: dict[str, SortedList] = {}  # crossed when the funding index < key
        self.fund_high: dict[str, SortedList] = {}  # crossed when the funding index > key
        self.entries: dict[str, dict[tuple[str, int], Entry]] = {}
        self.sizing: dict[str, _Sizing] = {}
        self.risk: dict[str, risk_bands.Sizing] = {}  # a risk-model account's (`risk.bands.Sizing`)
        self.debts: dict[
            str, tuple[int, int]
        ] = {}  # USDC borrower -> (its borrow shares, the debt its interest may reach)
        self.ids = AccountIds()

    def forget(self, name: str) -> None:
        self.debts.pop(name, None)
        self.sizing.pop(name, None)
        self.risk.pop(name, None)
        for entry in self.entries.pop(name, {}).values():
            self._drop(name, entry)

    def _books(self, coin: str, follows: int) -> tuple[SortedList, SortedList, SortedList, SortedList]:
        """The coin's four lists an entry's keys go in (created with the coin's first band)."""
        if coin not in self.low:
            for book in self._price_books() + (self.fund_low, self.fund_high):
                book[coin] = SortedList()
        lows, highs = self._price_books()[2 * follows : 2 * follows + 2]
        return lows[coin], highs[coin], self.fund_low[coin], self.fund_high[coin]

    def _price_books(self) -> tuple[dict[str, SortedList], ...]:
        """The price lists, low and high, in the order BOTH, MARK, ORACLE."""
        return self.low, self.high, self.mark_low, self.mark_high, self.oracle_low, self.oracle_high

    def _drop(self, name: str, entry: Entry) -> None:
        ident = self.ids.of(name)
        for book, key in zip(self._books(entry[0], entry[6]), entry[2:6], strict=True):
            book.remove(key << ID_BITS | ident)

    @staticmethod
    def _band(coin: str, kind: int, market: MarketState, share: int, k: int, szi: int, follows: int) -> Entry:
        if share <= ROUNDING or k <= 0:
            return coin, kind, ALWAYS, -ALWAYS, ALWAYS, -ALWAYS, follows
        lo, hi = _prices(market, follows)
        # a band spans the spread and twice its width
        room = (share - share // 8 - ROUNDING) * NTL_DIV // k - (hi - lo)
        if room < 0:  # even a price inside the spread may use up the share: every tick leaves it
            return coin, kind, ALWAYS, -ALWAYS, ALWAYS, -ALWAYS, follows
        width = room // 2
        fund = (share // 8) * FUNDING_DIV // abs(szi) if szi else ALWAYS
        return coin, kind, lo - width, hi + width, market.funding_index - fund, market.funding_index + fund, follows

    def _put(
        self,
        name: str,
        old: dict[tuple[str, int], Entry],
        coin: str,
        kind: int,
        market: MarketState,
        share: int,
        k: int,
        szi: int,
        follows: int = BOTH,
    ) -> Entry:
        """Keeps each key of the old band that lies inside the band `share` allows and on the
        far side of the current prices (no sorted-list work: most re-bands after a fill move
        nothing, or only the price keys); the others are written for half the share. A band
        whose every key lies inside the allowed one is as safe as that one. `follows`: the
        prices the band follows (`_follows`); an old band that followed others goes."""
        kept = old.pop((coin, kind), None)
        if kept is not None and kept[6] != follows:
            self._drop(name, kept)
            kept = None
        lo, hi = _prices(market, follows)
        index = market.funding_index
        books = self._books(coin, follows)
        ident = self.ids.of(name)
        if kept is not None:
            allowed = self._band(coin, kind, market, share, k, szi, follows)
            fits = (
                allowed[2] <= kept[2] <= lo,
                hi <= kept[3] <= allowed[3],
                allowed[4] <= kept[4] <= index,
                index <= kept[5] <= allowed[5],
            )
            if all(fits):
                return kept
            strict = self._band(coin, kind, market, share // 2, k, szi, follows)
            entry = (
                coin,
                kind,
                *(was if fit else key for was, key, fit in zip(kept[2:6], strict[2:6], fits, strict=True)),
                follows,
            )
            for book, key, fit, was in zip(books, entry[2:6], fits, kept[2:6], strict=True):
                if not fit:
                    book.remove(was << ID_BITS | ident)
                    book.add(key << ID_BITS | ident)
            return entry  # type: ignore[return-value]
        entry = self._band(coin, kind, market, share // 2, k, szi, follows)
        for book, key in zip(books, entry[2:6], strict=True):
            book.add(key << ID_BITS | ident)
        return entry

    def index(self, name: str, state: State, model: MarginModel, now: portfolio.Check | None = None) -> None:
        """(Re)writes the bands of a unified or PM account from its exact figures (`now`: a PM
        account's, if already at hand): one per isolated position (kind 1) and one per coin of
        its cross book and spot side (kind 0)."""
        old = self.entries.pop(name, {})
        self.sizing.pop(name, None)
        self.risk.pop(name, None)
        out: dict[tuple[str, int], Entry] = {}
        account, spot = state.accounts[name], state.spot[name]
        markets = state.markets
        for scope in isolated_scopes(account, markets):
            szi = account.positions[scope.name].szi
            out[scope.name, 1] = self._put(
                name,
                old,
                scope.name,
                1,
                markets[scope.name],
                scope.equity - scope.maintenance,
                2 * abs(szi),
                szi,
                MARK,
            )
        if not model.sized:  # the risk model: bands from its own bound, its sizing by part for fills
            buffers = model.buffers(state, account, spot, now)
            sizing, shares = risk_bands.Sizing.make(state, account, spot, buffers[0])
            if sizing is not None:
                self.risk[name] = sizing
            for coin, (share, k, szi) in shares.items():
                out[coin, 0] = self._put(name, old, coin, 0, markets[coin], share, k, szi)
            for entry in old.values():
                self._drop(name, entry)
            if out:
                self.entries[name] = out
            return
        exposure = {coin: parts(state, account, spot, coin, model) for coin in _exposed(state, account, spot, model)}
        buffers = model.buffers(state, account, spot, now) if exposure or spot.borrowed else None
        self.debts.pop(name, None)
        if buffers is not None:
            ratio_buffer, borrow_buffer = buffers
            buffer = ratio_buffer if borrow_buffer is None else min(ratio_buffer, borrow_buffer)
            kept = debt = 0
            if spot.borrowed.keys() == {USDC}:
                kept = max(0, buffer // INTEREST_SHARE)
                shares = spot.borrowed[USDC]
                debt = lending.owed(state.pools[USDC], shares)
                self.debts[name] = (shares, debt + kept)
                buffer -= kept
            if exposure:
                # shares in proportion to value at risk (K times the price), so every coin gets
                # the same relative price band
                weight = {coin: _weight(markets[coin], k) for coin, (*_, k, _) in exposure.items()}
                total = sum(weight.values()) or 1
                given = 0
                terms: dict[str, Part] = {}
                banded = buffer - buffer // FILL_SLACK
                for coin in sorted(exposure):
                    x, r, p, k, szi = exposure[coin]
                    share = banded * weight[coin] // total if buffer > 0 else 0
                    out[coin, 0] = self._put(
                        name, old, coin, 0, markets[coin], share, k, szi, _follows(k, szi, markets[coin])
                    )
                    terms[coin] = (x, r, p, share, weight[coin])
                    given += share
                self.sizing[name] = _Sizing(
                    model,
                    _cash(state, account, spot, model),
                    ratio_buffer - kept - given,
                    None if borrow_buffer is None else borrow_buffer - kept - given,
                    model.band_ratio(state.pm_rules),
                    terms,
                    given,
                    total,
                    debt,
                    kept,
                )
        for entry in old.values():
            self._drop(name, entry)
        if out:
            self.entries[name] = out

    def filled(self, name: str, state: State, coin: str, perp: bool) -> bool:
        """After a fill of `coin` (a perp fill of its cross position, or a spot fill of the
        token): re-references that coin's band in O(1). What the coin's terms and the cash moved
        since its reference (the fill, and the prices inside its band) comes out of the coin's
        share and the slack. Of what is then free (the other shares and what is left), the coin
        gets its weight's part of the banded half, as `index` splits a buffer, and the rest stays
        slack: a new coin does not take the whole slack and leave the next fill none. An isolated
        fill re-bands its position (`_iso_filled`). False when the account has no sizing, the
        token has no perp market, or too little is left (the sizing is then dropped): the caller
        checks it exactly and re-indexes, which keeps the keys that still hold."""
        if name in self.risk:
            return self._risk_filled(name, state, coin, perp)
        sizing = self.sizing.get(name)
        if sizing is None or not perp and coin not in state.markets:
            return False
        if perp and not state.accounts[name].positions[coin].cross:
            return self._iso_filled(name, state, sizing, coin)
        return self._rereference(name, state, sizing, coin)

    def _risk_filled(self, name: str, state: State, coin: str, perp: bool) -> bool:
        """A risk account's cross fill or spot fill of a banded token: its part's bands
        re-referenced (`risk.bands.Sizing.filled`). False (the caller checks it exactly and
        re-bands it) for an isolated fill, a token with no perp market, an account the watch
        list or liquidation orders hold (their exact check also clears those), or when its
        sizing cannot absorb the fill (the sizing is then dropped)."""
        account = state.accounts[name]
        if (
            (not perp and coin not in state.markets)
            or (perp and not account.positions[coin].cross)
            or name in state.watch
            or name in state.liq_orders
        ):
            return False
        return self._risk_rereference(name, state, coin)

    def _risk_rereference(self, name: str, state: State, coin: str) -> bool:
        """`_risk_filled`'s work once the coin is known to have (or be getting) a book band."""
        got = self.risk[name].filled(state, state.accounts[name], state.spot[name], coin)
        if got is None:
            del self.risk[name]
            return False
        shares, gone = got
        entries = self.entries[name]  # a sizing has book bands
        for was in gone:
            self._unband(name, entries, (was, 0))
        markets = state.markets
        for c, (share, k, szi) in shares.items():
            entries[c, 0] = self._put(name, entries, c, 0, markets[c], share, k, szi)
        return True

    def _iso_filled(self, name: str, state: State, sizing: _Sizing, coin: str) -> bool:
        """An isolated fill moved margin between the cross ledger (a term no price moves: out of
        the slack) and the position, whose band is simply its own buffer again (as `index`
        writes it). False when the slack cannot take it or the position is too close to its
        maintenance: the caller checks it exactly and re-indexes."""
        account = state.accounts[name]
        cash = _cash(state, account, state.spot[name], sizing.model)
        slack = sizing.slack + sizing.ratio * (cash - sizing.cash) // RATE
        if slack < 0:
            return False
        sizing.slack, sizing.cash = slack, cash
        entries = self.entries[name]  # a sizing has book bands
        pos, market = account.positions[coin], state.markets[coin]
        if not pos.szi:
            self._unband(name, entries, (coin, 1))
            return True
        scope = isolated_scope(coin, pos, market)
        buffer = scope.equity - scope.maintenance
        if buffer < 4 * ROUNDING:
            return False
        entries[coin, 1] = self._put(name, entries, coin, 1, market, buffer, 2 * abs(pos.szi), pos.szi, MARK)
        return True

    def _unband(self, name: str, entries: dict[tuple[str, int], Entry], key: tuple[str, int]) -> None:
        """Drops the account's band `key` (coin, kind), if it has one."""
        gone = entries.pop(key, None)
        if gone is not None:
            self._drop(name, gone)

    def refresh(self, name: str, state: State, model: MarginModel, now: portfolio.Check | None = None) -> None:
        """After a tick or a funding payment left some of the account's bands and an exact check
        (`now`) found it healthy: re-references just the book bands left, as a fill of their
        coins does (`filled`: the coin's terms moved, and that comes out of its share and the
        slack), and re-bands in full when that falls short or an isolated band was left. A
        funding payment then costs each account it crosses one coin's band, not all of them. A
        risk account's left bands re-reference their parts (`risk.bands.Sizing.filled`: the
        same accounting as after a fill)."""
        sizing, entries = self.sizing.get(name), self.entries.get(name)
        if entries is not None and (sizing is not None or name in self.risk):
            markets = state.markets
            left = [key for key, entry in entries.items() if not _holds(entry, markets[key[0]])]
            if (
                left
                and all(kind == 0 for _, kind in left)
                and all(
                    self._rereference(name, state, sizing, coin)
                    if sizing is not None
                    else self._risk_rereference(name, state, coin)
                    for coin, _ in left
                )
            ):
                return
        self.index(name, state, model, now)

    def _rereference(self, name: str, state: State, sizing: _Sizing, coin: str) -> bool:
        """`filled`'s work once the coin is known to have (or be getting) a book band."""
        account, spot = state.accounts[name], state.spot[name]
        x, r, p, k, szi = parts(state, account, spot, coin, sizing.model)
        ox, o_r, op, share, weight = sizing.parts.pop(coin, (0, 0, 0, 0, 0))
        sizing.shares -= share
        sizing.weights -= weight
        cash = _cash(state, account, spot, sizing.model)
        available = sizing.slack + share + sizing.ratio * (cash - sizing.cash + x - ox) // RATE - (r - o_r)
        available2 = None if sizing.slack2 is None else sizing.slack2 + share + p - op
        least = available if available2 is None else min(available, available2)
        sizing.cash = cash
        entries = self.entries[name]  # a sizing has book bands
        if not k:  # nothing of the coin left to band
            self._unband(name, entries, (coin, 0))
            share = 0
        elif least >= 4 * ROUNDING:
            weight = _weight(state.markets[coin], k)
            free = sizing.shares + least  # what the other bands hold plus what is left
            banded = (free - free // FILL_SLACK) * weight // (sizing.weights + weight or 1)
            share = max(2 * ROUNDING, min(least, banded))
            entries[coin, 0] = self._put(
                name, entries, coin, 0, state.markets[coin], share, k, szi, _follows(k, szi, state.markets[coin])
            )
            sizing.parts[coin] = (x, r, p, share, weight)
            sizing.shares += share
            sizing.weights += weight
        else:  # the sizing goes, the bands stay for the re-index the caller owes to keep what holds
            del self.sizing[name]
            return False
        sizing.slack = available - share
        if available2 is not None:
            sizing.slack2 = available2 - share
        return least >= share

    def cash_moved(self, name: str, state: State) -> bool:
        """After the hour's interest and the settlement with the pool moved a PM borrower's cash
        and USDC debt (terms no price moves: each counts in full against both buffers, the cash
        at the ratio in the first): the change comes out of the slack and what was kept back for
        interest, and a new interest share is kept back, as `TriggerIndex.cash_moved` does for a
        standard account's deposit. False, changing nothing, when the account has no sizing, did
        not borrow at its reference, owes more than USDC, or the slack would go negative: the
        caller checks it exactly and re-indexes."""
        sizing, spot = self.sizing.get(name), state.spot[name]
        if sizing is None or sizing.slack2 is None or not sizing.model.may_borrow or spot.borrowed.keys() != {USDC}:
            return False
        shares = spot.borrowed[USDC]
        debt = lending.owed(state.pools[USDC], shares)
        cash = _cash(state, state.accounts[name], spot, sizing.model)
        freed = sizing.kept - (debt - sizing.debt)
        slack = sizing.slack + freed + sizing.ratio * (cash - sizing.cash) // RATE
        slack2 = sizing.slack2 + freed
        if min(slack, slack2) < 0:
            return False
        kept = min(slack, slack2) // INTEREST_SHARE
        sizing.cash, sizing.debt, sizing.kept = cash, debt, kept
        sizing.slack, sizing.slack2 = slack - kept, slack2 - kept
        self.debts[name] = (shares, debt + kept)
        return True

    def interest_due(self, name: str, state: State) -> bool:
        """Whether the interest accrued since the account was banded may have used up what its
        buffer kept back (always, for a borrow other than USDC or one that changed since)."""
        ref = self.debts.get(name)
        if ref is None:
            return True
        shares, limit = ref
        borrowed = state.spot[name].borrowed
        return len(borrowed) != 1 or borrowed.get(USDC) != shares or lending.owed(state.pools[USDC], shares) > limit

    def crossed(self, coin: str, market: MarketState) -> set[str]:
        """The accounts whose band of `coin` the current prices or funding index left. Each
        list's extreme key is looked at first: most ticks leave no band, and then no range is
        read."""
        low = self.low.get(coin)
        if low is None:
            return set()
        names = self.ids.names
        hit: set[str] = set()
        for lows, highs, (lo, hi) in (
            (low, self.high[coin], _prices(market, BOTH)),
            (self.mark_low[coin], self.mark_high[coin], _prices(market, MARK)),
            (self.oracle_low[coin], self.oracle_high[coin], _prices(market, ORACLE)),
            (self.fund_low[coin], self.fund_high[coin], (market.funding_index, market.funding_index)),
        ):
            # the least entry of a key above lo (crossed in `lows`) and of a key at hi (not crossed in `highs`)
            above_lo, below_hi = (lo + 1) << ID_BITS, hi << ID_BITS
            if lows and lows[-1] >= above_lo:
                hit.update(names[e & ID_MASK] for e in lows.irange(minimum=above_lo))
            if highs and highs[0] < below_hi:
                hit.update(names[e & ID_MASK] for e in highs[: highs.bisect_left(below_hi)])
        return hit


def _holds(entry: Entry, market: MarketState) -> bool:
    """Whether the market's prices and funding index are inside the band (`crossed`'s test)."""
    _, _, lo, hi, flo, fhi, follows = entry
    least, most = _prices(market, follows)
    return lo <= least and most <= hi and flo <= market.funding_index <= fhi


def _prices(market: MarketState, follows: int) -> tuple[int, int]:
    """The least and the greatest of the prices a band follows."""
    if follows == MARK:
        return market.mark, market.mark
    if follows == ORACLE:
        return market.oracle, market.oracle
    return min(market.mark, market.oracle), max(market.mark, market.oracle)


def _follows(k: int, szi: int, market: MarketState) -> int:
    """The prices a coin's terms (`parts`) move with. A cross position's value, unsettled
    funding and maintenance are at the mark; a token held or owed counts at the oracle (its
    spot price while the market has one). So a position without a spot side (`K` is its
    `2 |szi|` and nothing more) follows the mark alone, a spot side without a position the
    oracle alone, and both together both. A band that follows one price ignores the other: an
    impact fill that takes the mark away from the oracle leaves a collateral band where it is,
    and a band around both would have to span the gap between them."""
    if k == 2 * abs(szi):
        return MARK
    if not szi and market.oracle:
        return ORACLE
    return BOTH


def _cash(state: State, account: Account, spot: SpotAccount, model: MarginModel) -> int:
    """The terms of the buffers no price moves and a fill may: the cross ledger, and (where the
    spot side counts, portfolio margin) the USDC balance and supply."""
    return account.raw_usd + portfolio.holdings(state, spot, USDC) if model.spot_collateral else account.raw_usd


def _weight(market: MarketState, k: int) -> int:
    return k * max(market.mark, market.oracle)


def _exposed(state: State, account: Account, spot: SpotAccount, model: MarginModel) -> list[str]:
    """The perp markets the account's cross book and spot side use."""
    coins = [coin for coin, pos in account.positions.items() if pos.szi and pos.cross]
    if model.spot_collateral:
        for token in (*spot.balances, *spot.supplied, *spot.borrowed):
            if token != USDC and token in state.markets and token not in coins:
                coins.append(token)
    return coins


def parts(
    state: State, account: Account, spot: SpotAccount, coin: str, model: MarginModel
) -> tuple[int, int, int, int, int]:
    """A coin's terms in the account's buffers, each buffer being a sum of them plus terms no
    price moves: `x` in the liquidation value (a PM account's) or the cross account value (a
    unified one's): the cross position's value and unsettled funding, and the spot side's
    liquidation value; `r` in the requirement: the position's maintenance and the value of a
    borrow of the coin; `p` in the partial borrow threshold less the borrowed value. Then `K`,
    bounding how fast the buffers fall per unit of the coin's price (per cross position
    `2 |szi|`, its value plus maintenance growth with `mmr <= 1`; per collateral holding or
    borrow its amount: every factor applied to it is at most 1), and the cross `szi`."""
    x = r = p = k = szi = 0
    pos = account.positions.get(coin)
    market = state.markets[coin]
    if pos is not None and pos.szi and pos.cross:
        szi = pos.szi
        x = margin.value(szi, market.mark) + margin.pending_funding(pos, market)
        r = margin.table_of(pos, market).maintenance(margin.notional(szi, market.mark))
        k = 2 * abs(szi)
    if model.spot_collateral and coin != USDC:
        amount = portfolio.holdings(state, spot, coin)
        owed = portfolio.debt(state, spot, coin)
        if not amount and not owed:  # most perp coins of a PM book: no spot side, all terms 0
            return x, r, p, k, szi
        held = portfolio.token_sums(state, coin, amount)
        lent = portfolio.owed_value(state, coin, owed)
        x += held.liquidation
        r += lent
        p += held.partial - lent
        k += amount + owed
    return x, r, p, k, szi
