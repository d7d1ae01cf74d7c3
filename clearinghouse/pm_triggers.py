"""Which unified and portfolio accounts a price tick or a funding payment may have made
liquidatable, without checking every account exposed to the coin.

The same idea as `triggers.TriggerIndex`, for the other margin models: an account's buffer `B`
(PM: `liq_ratio * liqValue - req`, and `partial threshold - borrowed` when it borrows; unified:
`AV_cross - crossMM - 1`, its trigger being inclusive; an isolated position: `marginUsed - MM`)
is split among the coins it is exposed to in proportion to the value at risk `K * price`, `K`
bounding how fast the buffer can fall per unit of that coin's price: per cross or isolated position `2 |szi|` (its value
plus maintenance growth, `mmr <= 1`), per collateral holding or non-USDC borrow its amount (every
factor applied to it is at most 1). A coin gets a price band around its mark and oracle and a
funding band around its funding index, sized so that while both prices stay inside the price band
and the index inside the funding band the coin cannot use more than its share (7/8 for prices,
1/8 for funding). A tick visits only the entries whose band it left; those accounts are checked
exactly and re-banded. A buffer too thin to split gets bands any change leaves (checked on every
tick of the coin). A borrower of USDC keeps `1 / INTEREST_SHARE` of its buffer back from the
bands for the interest on its debt: the hourly accrual sends it for an exact check only once its
debt has grown past what it kept back (`interest_due`); other borrowers, and those the hour's
settlement with the pool moved, are checked at every hour (the engine does that). Rule changes
send every affected account for an exact check, and so do the account's own events.

Prices of a spot token with no perp market of its name are not banded: the engine checks every
account exposed to it on such a tick.
"""

from __future__ import annotations

from sortedcontainers import SortedList

from clearinghouse import lending, margin, portfolio
from clearinghouse.liquidation import isolated_scopes
from clearinghouse.spot import PORTFOLIO, USDC
from clearinghouse.state import Account, Market, SpotAccount, State
from clearinghouse.units import FUNDING_DIV, NTL_DIV, RATE

Entry = tuple[str, int, int, int, int, int]  # coin, kind (0 book, 1 isolated), low, high, funding low, funding high
ROUNDING = 8  # micro-USDC of each share kept back for the rounding of the figures
ALWAYS = 10**40  # a key every price crosses
INTEREST_SHARE = 16  # a USDC borrower's buffer kept back for interest: 1/16


class PmBands:
    def __init__(self) -> None:
        self.low: dict[str, SortedList] = {}  # coin -> (key, name): crossed when min(mark, oracle) < key
        self.high: dict[str, SortedList] = {}  # crossed when max(mark, oracle) > key
        self.fund_low: dict[str, SortedList] = {}  # crossed when the funding index < key
        self.fund_high: dict[str, SortedList] = {}  # crossed when the funding index > key
        self.entries: dict[str, list[Entry]] = {}
        self.debts: dict[str, tuple[int, int]] = {}  # USDC borrower -> (its borrow shares, the debt its interest may reach)

    def forget(self, name: str) -> None:
        self.debts.pop(name, None)
        for entry in self.entries.pop(name, ()):
            self._drop(name, entry)

    def _drop(self, name: str, entry: Entry) -> None:
        coin, _, lo, hi, flo, fhi = entry
        self.low[coin].remove((lo, name))
        self.high[coin].remove((hi, name))
        self.fund_low[coin].remove((flo, name))
        self.fund_high[coin].remove((fhi, name))

    @staticmethod
    def _band(coin: str, kind: int, market: Market, share: int, k: int, szi: int) -> Entry:
        if share <= ROUNDING or k <= 0:
            return coin, kind, ALWAYS, -ALWAYS, ALWAYS, -ALWAYS
        spread = abs(market.mark - market.oracle)
        width = max(0, ((share - share // 8 - ROUNDING) * NTL_DIV // k - spread) // 2)
        fund = (share // 8) * FUNDING_DIV // abs(szi) if szi else ALWAYS
        return (coin, kind, min(market.mark, market.oracle) - width, max(market.mark, market.oracle) + width,
                market.funding_index - fund, market.funding_index + fund)

    def _put(self, name: str, old: dict[tuple[str, int], Entry], coin: str, kind: int, market: Market,
             share: int, k: int, szi: int) -> Entry:
        """Keeps the old band when it lies inside the one `share` allows and still holds the
        current prices (no sorted-list work: most re-bands after a fill move nothing); else
        writes a band for half the share."""
        _, _, lo, hi, flo, fhi = self._band(coin, kind, market, share, k, szi)
        kept = old.pop((coin, kind), None)
        if (kept is not None and lo <= kept[2] <= min(market.mark, market.oracle) and max(market.mark, market.oracle) <= kept[3] <= hi
                and flo <= kept[4] <= market.funding_index <= kept[5] <= fhi):
            return kept
        if kept is not None:
            self._drop(name, kept)
        entry = self._band(coin, kind, market, share // 2, k, szi)
        for book, key in zip((self.low, self.high, self.fund_low, self.fund_high), entry[2:]):
            lst = book.get(coin)
            if lst is None:
                lst = book[coin] = SortedList()
            lst.add((key, name))
        return entry

    def index(self, name: str, state: State, now: portfolio.Check | None = None) -> None:
        """(Re)writes the bands of a unified or PM account from its exact figures (`now`: a PM
        account's, if already at hand): one per isolated position (kind 1) and one per coin of
        its cross book and spot side (kind 0)."""
        old = {(entry[0], entry[1]): entry for entry in self.entries.pop(name, ())}
        out: list[Entry] = []
        account, spot = state.accounts[name], state.spot[name]
        markets = state.markets
        for scope in isolated_scopes(account, markets):
            szi = account.positions[scope.name].szi
            out.append(self._put(name, old, scope.name, 1, markets[scope.name], scope.equity - scope.maintenance, 2 * abs(szi), szi))
        exposure = _exposure(state, account, spot)
        buffer = _buffer(state, account, spot, now) if exposure or spot.borrowed else None
        self.debts.pop(name, None)
        if buffer is not None and spot.borrowed.keys() == {USDC}:
            kept = max(0, buffer // INTEREST_SHARE)
            shares = spot.borrowed[USDC]
            self.debts[name] = (shares, lending.owed(state.pools[USDC], shares) + kept)
            buffer -= kept
        if buffer is not None and exposure:
            # shares in proportion to value at risk (K times the price), so every coin gets the
            # same relative price band
            weight = {coin: k * max(markets[coin].mark, markets[coin].oracle) for coin, (k, _) in exposure.items()}
            total = sum(weight.values()) or 1
            for coin in sorted(exposure):
                k, szi = exposure[coin]
                share = buffer * weight[coin] // total if buffer > 0 else 0
                out.append(self._put(name, old, coin, 0, markets[coin], share, k, szi))
        for entry in old.values():
            self._drop(name, entry)
        if out:
            self.entries[name] = out

    def interest_due(self, name: str, state: State) -> bool:
        """Whether the interest accrued since the account was banded may have used up what its
        buffer kept back (always, for a borrow other than USDC or one that changed since)."""
        ref = self.debts.get(name)
        if ref is None:
            return True
        shares, limit = ref
        borrowed = state.spot[name].borrowed
        return len(borrowed) != 1 or borrowed.get(USDC) != shares or lending.owed(state.pools[USDC], shares) > limit

    def crossed(self, coin: str, market: Market) -> set[str]:
        """The accounts whose band of `coin` the current prices or funding index left. Each
        list's extreme key is looked at first: most ticks leave no band, and then no range is
        read."""
        low = self.low.get(coin)
        if low is None:
            return set()
        lo, hi, index = min(market.mark, market.oracle), max(market.mark, market.oracle), market.funding_index
        high, fund_low, fund_high = self.high[coin], self.fund_low[coin], self.fund_high[coin]
        hit: set[str] = set()
        if low and low[-1][0] > lo:
            hit.update(a for _, a in low.irange(minimum=(lo + 1, "")))
        if high and high[0][0] < hi:
            hit.update(a for _, a in high[: high.bisect_left((hi, ""))])
        if fund_low and fund_low[-1][0] > index:
            hit.update(a for _, a in fund_low.irange(minimum=(index + 1, "")))
        if fund_high and fund_high[0][0] < index:
            hit.update(a for _, a in fund_high[: fund_high.bisect_left((index, ""))])
        return hit


def _exposure(state: State, account: Account, spot: SpotAccount) -> dict[str, tuple[int, int]]:
    """coin -> (K, cross szi) over the perp markets the account's cross book and spot side use."""
    out: dict[str, tuple[int, int]] = {}
    for coin, pos in account.positions.items():
        if pos.szi and pos.cross:
            out[coin] = (2 * abs(pos.szi), pos.szi)
    if spot.mode == PORTFOLIO:
        for token in set(spot.balances) | set(spot.supplied) | set(spot.borrowed):
            if token == USDC or token not in state.markets:
                continue
            amount = portfolio.holdings(state, spot, token)
            shares = spot.borrowed.get(token)
            if shares:
                amount += lending.owed(state.pools[token], shares)
            k, szi = out.get(token, (0, 0))
            out[token] = (k + amount, szi)
    return out


def _buffer(state: State, account: Account, spot: SpotAccount, now: portfolio.Check | None) -> int | None:
    """How far the account's margin figure is from its trigger (None: nothing can trigger)."""
    if spot.mode != PORTFOLIO:
        cross = margin.cross_figures(account, state.markets)
        return cross.account_value - cross.maintenance - 1 if cross.maintenance > 0 else None
    f, partial, risky = now or portfolio.check(state, account, spot)
    if not risky:
        return None
    buffer = state.pm_rules.liq_ratio * f.liq_value // RATE - f.requirement
    return min(buffer, partial - f.borrowed) if spot.borrowed else buffer
