"""Portfolio margin (`GeneratorConfig.pm_share` > 0; 0 draws no random number).

That share of the accounts runs portfolio margin: each also deposits spot collateral (the token
of HYPE's perp market, or BTC's when there are fewer than four markets) worth at least 10,001
USDC and twice its USDC, and switches to `portfolio` (its idle USDC then goes to the lending pool
automatically); a lender supplies the pool. A tenth of the trades become spot trades against a
spot market maker: half of them open a carry trade (buy the token spot, and short the same size
of its perp right after), the rest buy spot on borrowed USDC (a directional book) or sell some
back. Sizes stay well inside the LTV headroom, so rejections stay rare. With `crash` too, the
crash's liquidation estimate treats PM accounts as any other (it knows nothing of their
collateral, so it may take one for liquidated that the engine keeps).
"""

from __future__ import annotations

from collections.abc import Iterator

from events.schema import Deposit, InputEvent, SetMode, SpotTrade, Supply, Token, Trade
from events.units import NTL_DIV, PX, USD, ceil_div
from replay.workload.accounts import Accounts
from replay.workload.draws import Clock, Draws
from replay.workload.markets import Markets, valid_price
from replay.workload.trades import FEE_DIV, PAIR_ATTEMPTS, TAKER_FEE, Trades

SPOT_MAKER = "0xspotmaker"  # sells the collateral token to PM accounts and buys it back
LENDER = "0xlender"  # supplies USDC to the pool: half the PM accounts' collateral value...
_LENDER_CAP = 250_000_000 * USD  # ...up to the per-account supply cap
_PM_SPEND = (1, 2)  # a PM account's spot buys stay below this share of its collateral value (LTV 0.65)
_SPOT_SHARE = 0.10  # of trades, with PM accounts: spot trades
_PM_MIN_VALUE = 10_001 * USD  # PM collateral: at least this much (eligibility is above 10k)...
_PM_COLLATERAL_X = 2  # ...and at least this many times the account's USDC deposit
_PM_MAX_VALUE = 24_000_000 * USD  # PM accounts stay below the 25M ceiling
_PM_BUY_PPM = (5_000, 60_000)  # a spot buy: this share of the account's collateral value
MAKER_INVENTORY = 10**9  # whole tokens the spot maker starts with


def collateral_market(markets: Markets) -> int:
    """The market whose token is the spot collateral: HYPE's, or BTC's with fewer than four markets."""
    return 3 if len(markets.books) > 3 else 0


class Portfolio:
    """The PM accounts, each one's spot holding and spend, and the carry trades' pending legs."""

    def __init__(
        self, share: float, draws: Draws, clock: Clock, markets: Markets, accounts: Accounts, trades: Trades
    ) -> None:
        self.draws = draws
        self.clock = clock
        self.markets = markets
        self.accounts = accounts
        self.trades = trades
        n = accounts.count
        self.members = [a for a in range(n) if draws.random() < share]
        self.market = collateral_market(markets)
        self.spot = [0] * n  # collateral token held (1e-8)
        self.spent = [0] * n  # USDC paid for spot less USDC received (rough: what it borrowed)
        self.hedge: list[Trade] = []  # the perp leg of a carry trade, sent next

    def setup(self, ts: int) -> Iterator[InputEvent]:
        """The collateral token, the spot maker's inventory, each PM account's collateral and mode,
        and the lender's supply."""
        b, accounts = self.markets.books[self.market], self.accounts
        yield Token(ts=ts, token=b.coin, decimals=8)
        yield Deposit(ts=ts, account=SPOT_MAKER, amount=MAKER_INVENTORY * PX, token=b.coin)
        lent = 0
        # a whale whose value would reach the 25M ceiling stays standard
        first = accounts.first_deposit
        self.members = [a for a in self.members if (1 + _PM_COLLATERAL_X) * first[a] < _PM_MAX_VALUE]
        for a in self.members:
            value = max(_PM_MIN_VALUE, _PM_COLLATERAL_X * first[a])
            amount = ceil_div(value * NTL_DIV, b.oracle)
            self.spot[a] = amount
            lent += value // 2
            yield Deposit(ts=ts, account=accounts.names[a], amount=amount, token=b.coin)
            yield SetMode(ts=ts, account=accounts.names[a], mode="portfolio")
        lent = min(lent, _LENDER_CAP)
        yield Deposit(ts=ts, account=LENDER, amount=lent)
        yield SetMode(ts=ts, account=LENDER, mode="unified")  # one balance: it supplies from the ledger
        yield Supply(ts=ts, account=LENDER, amount=lent)

    def trade(self) -> InputEvent:
        """A carry trade's pending perp leg, a spot trade, or a perp trade."""
        if self.hedge:
            return self.hedge.pop()
        draws = self.draws
        if draws.random() >= _SPOT_SHARE:
            return self.trades.perp()
        a = self.members[draws.between(0, len(self.members) - 1)]
        m = self.market
        b = self.markets.books[m]
        name, ts = self.accounts.names[a], self.clock.ts
        px = valid_price(b.mark, b.sz_decimals)
        collateral = self.spot[a] * px // NTL_DIV
        r = draws.random()
        if r < 0.2 and self.spot[a] > b.lot:  # sells some back
            size = self.spot[a] * draws.between(*_PM_BUY_PPM) // 10**6 // b.lot * b.lot
            if size:
                self.spot[a] -= size
                self.spent[a] -= size * px // NTL_DIV
                fee = ceil_div(size * px // NTL_DIV * TAKER_FEE, FEE_DIV)
                return SpotTrade(
                    ts=ts, base=b.coin, quote="USDC", px=px, sz=size, buyer=SPOT_MAKER, seller=name, seller_fee=fee
                )
        spend = collateral * _PM_SPEND[0] // _PM_SPEND[1] - self.spent[a]
        budget = min(collateral * draws.between(*_PM_BUY_PPM) // 10**6, spend)
        size = max(0, budget) * NTL_DIV // px // b.lot * b.lot
        if not size:
            return self.trades.perp()
        self.spot[a] += size
        self.spent[a] += size * px // NTL_DIV
        if r < 0.6:  # a carry trade: short the same size of the perp against someone with room
            for _ in range(PAIR_ATTEMPTS):
                y = self.accounts.pick()
                if y != a and self.accounts.room(y, m, 1, px) >= size and not b.only_isolated:
                    self.hedge.append(self.trades.fill(m, a, y, -1, size, px))
                    break
        fee = ceil_div(size * px // NTL_DIV * TAKER_FEE, FEE_DIV)
        return SpotTrade(
            ts=ts, base=b.coin, quote="USDC", px=px, sz=size, buyer=name, seller=SPOT_MAKER, buyer_fee=fee
        )
