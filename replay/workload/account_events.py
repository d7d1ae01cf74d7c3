"""Account events between the trades: leverage settings, isolated margin, deposits, withdrawals
and transfers, each sized so that it is usually allowed."""

from __future__ import annotations

from events.schema import (
    Deposit,
    InputEvent,
    IsolatedMargin,
    SetLeverage,
    Transfer,
    Withdraw,
)
from replay.workload.accounts import Accounts
from replay.workload.draws import Clock, Draws
from replay.workload.estimate import LiquidationEstimate
from replay.workload.markets import Markets

_FUNDS_FLOOR_DIV = 5  # crash mode: a removal is kept below funds - gross / 5 (margin and floor)


class AccountEvents:
    """Draws the next account event: 30% leverage, 15% isolated margin, 20% deposits, 17%
    withdrawals, 18% transfers."""

    def __init__(
        self, draws: Draws, clock: Clock, markets: Markets, accounts: Accounts, estimate: LiquidationEstimate | None
    ) -> None:
        self.draws = draws
        self.clock = clock
        self.markets = markets
        self.accounts = accounts
        self.estimate = estimate

    def next(self) -> InputEvent:
        accounts, ts = self.accounts, self.clock.ts
        r = self.draws.between(0, 99)
        a = accounts.pick()
        if self.estimate is not None:
            self.estimate.watch(a)
            funds = accounts.funds[a]
            if r >= 65 and max(1, funds // 10) > funds - accounts.gross[a] // _FUNDS_FLOOR_DIV:
                return self.deposit(a)  # a removal it could not afford (margin, 10% floor)
        if r < 30:
            return self.set_leverage(a, self.markets.pick())
        if r < 45:
            return self.isolated_margin(a)
        if r < 65:
            return self.deposit(a)
        if r < 82:
            amount = self._small_part(a)
            accounts.funds[a] -= amount
            return Withdraw(ts=ts, account=accounts.names[a], amount=amount)
        to = accounts.other(a)
        amount = self._small_part(a)
        accounts.funds[a] -= amount
        accounts.funds[to] += amount
        return Transfer(ts=ts, from_=accounts.names[a], to=accounts.names[to], amount=amount)

    def _small_part(self, a: int) -> int:
        """1%-10% of what the account has brought in, so withdrawals are usually affordable."""
        return max(1, self.accounts.funds[a] * self.draws.between(1, 10) // 100)

    def deposit(self, a: int) -> Deposit:
        """5%-50% of the account's first deposit."""
        amount = max(1, self.accounts.first_deposit[a] * self.draws.between(5, 50) // 100)
        self.accounts.funds[a] += amount
        return Deposit(ts=self.clock.ts, account=self.accounts.names[a], amount=amount)

    def set_leverage(self, a: int, m: int) -> SetLeverage:
        """A leverage within the first tier and at least the account's gross leverage cap (so
        margin suffices; a levered account of the crash stream stays cross);
        an open position keeps its mode and is never levered down (that could be rejected)."""
        accounts = self.accounts
        b, key = self.markets.books[m], (a, m)
        current = accounts.leverage.get(key)
        is_open = accounts.pos[a][m] != 0
        low = min(accounts.cap[a], b.max_leverage)
        if b.only_isolated:
            cross = False
        elif is_open:
            cross = current[1] if current else True
        elif accounts.risky[a]:
            cross = True
        else:
            cross = self.draws.random() < 0.8
        if is_open and current:
            low = max(low, current[0])
        lev = self.draws.between(low, b.max_leverage)
        accounts.leverage[key] = (lev, cross)
        if not cross and key not in accounts.isolated_seen:
            accounts.isolated_seen.add(key)
            accounts.isolated.append(key)
        return SetLeverage(ts=self.clock.ts, account=accounts.names[a], coin=b.coin, leverage=lev, cross=cross)

    def isolated_margin(self, fallback: int) -> InputEvent:
        """Adds 1%-5% of the owner's funds to a random open isolated position; when the pick is
        closed (or none was ever set), `fallback` deposits instead."""
        accounts = self.accounts
        if accounts.isolated:
            a, m = accounts.isolated[self.draws.between(0, len(accounts.isolated) - 1)]
            if accounts.pos[a][m] and not accounts.leverage[(a, m)][1]:
                delta = max(1, accounts.funds[a] * self.draws.between(1, 5) // 100)
                coin = self.markets.books[m].coin
                return IsolatedMargin(ts=self.clock.ts, account=accounts.names[a], coin=coin, delta=delta)
        return self.deposit(fallback)
