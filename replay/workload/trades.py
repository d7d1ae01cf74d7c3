"""Perp trades: a Zipf-picked market between two Zipf-picked accounts near the mark, sized within
both accounts' room, with Hyperliquid's fee schedule (taker 0.045%, maker 0.015%, a rebate for
the market makers)."""

from __future__ import annotations

from events.schema import InputEvent, Trade
from events.units import NTL_DIV, ceil_div
from replay.workload.account_events import AccountEvents
from replay.workload.accounts import Accounts
from replay.workload.draws import Clock, Draws
from replay.workload.estimate import LiquidationEstimate
from replay.workload.markets import Markets, valid_price

TRADE_SPREAD_PPM = (-500, 500)  # trade price within +-0.05% of the mark
TAKER_FEE = 45  # per 100_000 of notional (0.045%)
_MAKER_FEE = 15  # 0.015%
_MAKER_REBATE = 2  # 0.002%, paid to the most active 1% of accounts (the market makers)
FEE_DIV = 100_000
_CLOSE_PERCENT = 25  # an account with a position closes it in this share of its trades...
_FLIP_PERCENT = 20  # ...and of those closes, this share flips to the other side
PAIR_ATTEMPTS = 100


class Trades:
    """Draws and books perp trades; `owed` counts trades displaced by a required SetLeverage."""

    def __init__(
        self,
        draws: Draws,
        clock: Clock,
        markets: Markets,
        accounts: Accounts,
        account_events: AccountEvents,
        estimate: LiquidationEstimate | None,
    ) -> None:
        self.draws = draws
        self.clock = clock
        self.markets = markets
        self.accounts = accounts
        self.account_events = account_events
        self.estimate = estimate
        self.tid = 0
        self.owed = 0  # repaid from the share of account events, so the mix stays as configured

    def perp(self, spread: tuple[int, int] = TRADE_SPREAD_PPM) -> InputEvent:
        """A trade at the mark plus a spread drawn from `spread` (ppm); a strict-isolated market's
        leverage is set first (a SetLeverage instead), and when every pair drawn is at its limit
        the market moves instead (a tick)."""
        draws, accounts, estimate = self.draws, self.accounts, self.estimate
        random, pos, room = draws.random, accounts.pos, accounts.room
        m = self.markets.pick()
        b = self.markets.books[m]
        for _ in range(PAIR_ATTEMPTS):
            x = accounts.pick()
            y = accounts.pick()
            if x == y:
                continue
            if estimate is not None:
                if b.only_isolated and (accounts.risky[x] or accounts.risky[y]):
                    continue  # levered accounts trade cross only: isolated margin would drain them
                estimate.watch(x)
                estimate.watch(y)
            if b.only_isolated:
                for z in (x, y):
                    if accounts.leverage.get((z, m), (0, True))[1]:  # strict-isolated: set it first
                        self.owed += 1
                        return self.account_events.set_leverage(z, m)
            px = valid_price(b.mark * (10**6 + draws.between(*spread)) // 10**6, b.sz_decimals)
            k = draws.between(1, 1000)  # a fresh size: up to a quarter of x's budget, mostly small
            levered = estimate is not None and accounts.risky[x]
            if levered:  # a levered account goes for half to all of its cap at once
                budget = accounts.funds[x] * accounts.cap[x] * (1000 + k) // 2_000
            else:
                budget = accounts.funds[x] * accounts.cap[x] * k * k // 4_000_000
            want = max(b.lot, budget * NTL_DIV // px)
            side = 1 if random() < 0.5 else -1  # +1: x buys
            p = pos[x][m]
            if p and random() * 100 < _CLOSE_PERCENT:
                side = -1 if p > 0 else 1
                want = abs(p) + (want if random() * 100 < _FLIP_PERCENT else 0)
            size = min(want, room(x, m, side, px), room(y, m, -side, px)) // b.lot * b.lot
            if levered and size < min(want, room(x, m, side, px)) // 2:
                continue  # the counterparty has too little room: a levered account looks further
            if size:
                break
        else:
            return self.markets.tick(self.clock.ts)
        return self.fill(m, x, y, side, size, px)

    def fill(self, m: int, x: int, y: int, side: int, size: int, px: int, taker_is_buyer: bool | None = None) -> Trade:
        """Books a trade of `size` in market `m` between `x` (buying if `side` > 0) and `y`; the
        taker is drawn unless given."""
        accounts = self.accounts
        accounts.trade(x, m, side * size, px)
        accounts.trade(y, m, -side * size, px)
        buyer, seller = (x, y) if side > 0 else (y, x)
        notional = size * px // NTL_DIV
        taker_fee = ceil_div(notional * TAKER_FEE, FEE_DIV)
        if taker_is_buyer is None:
            taker_is_buyer = self.draws.random() < 0.5
        maker = seller if taker_is_buyer else buyer
        maker_fee = (
            -(notional * _MAKER_REBATE // FEE_DIV) if maker in accounts.makers else notional * _MAKER_FEE // FEE_DIV
        )  # a rebate rounds toward zero
        self.tid += 1
        buyer_fee = taker_fee if taker_is_buyer else maker_fee
        seller_fee = maker_fee if taker_is_buyer else taker_fee
        if self.estimate is not None:
            pos = accounts.pos
            self.estimate.fill(buyer, m, pos[buyer][m] - size, size, px, buyer_fee)
            self.estimate.fill(seller, m, pos[seller][m] + size, -size, px, seller_fee)
        names = accounts.names
        return Trade(
            ts=self.clock.ts,
            coin=self.markets.books[m].coin,
            px=px,
            sz=size,
            buyer=names[buyer],
            seller=names[seller],
            buyer_fee=buyer_fee,
            seller_fee=seller_fee,
            tid=self.tid,
        )
