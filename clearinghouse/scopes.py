"""Liquidation scopes: what is liquidated on its own (the cross book, each isolated position),
with its equity and maintenance. The margin models (`clearinghouse.models`) say which scopes an
account has; liquidation acts on them."""

from __future__ import annotations

from clearinghouse import margin
from clearinghouse.state import Account, MarketState, Position


class Scope:
    """Equity and maintenance of what is being liquidated: the cross book or one isolated
    position. `inclusive`: a unified account's cross book, liquidatable at equity = maintenance
    (its ratio `MM / AV` at 1 or above, docs/portfolio-margin.md)."""

    __slots__ = ("name", "equity", "maintenance", "inclusive")

    def __init__(self, name: str, equity: int, maintenance: int, inclusive: bool = False) -> None:
        self.name, self.equity, self.maintenance, self.inclusive = name, equity, maintenance, inclusive

    @property
    def below(self) -> bool:
        """Below maintenance; or, with nothing left to maintain, below zero (a bankrupt ledger
        that only the liquidator or bad debt can settle)."""
        if self.maintenance <= 0:
            return self.equity < 0
        return self.equity <= self.maintenance if self.inclusive else self.equity < self.maintenance

    @property
    def backstop(self) -> bool:
        return 3 * self.equity < 2 * self.maintenance


def scopes(account: Account, markets: dict[str, MarketState], unified: bool = False) -> list[Scope]:
    """The account's cross book and each open isolated position, with their figures."""
    cross = margin.cross_figures(account, markets)
    return [Scope("cross", cross.account_value, cross.maintenance, unified), *isolated_scopes(account, markets)]


def isolated_scopes(account: Account, markets: dict[str, MarketState]) -> list[Scope]:
    """Each open isolated position, with its figures (a PM account's only scopes of their own:
    its cross book answers to the PM ratio)."""
    positions = account.positions
    return [
        isolated_scope(coin, positions[coin], markets[coin])
        for coin in sorted(c for c, p in positions.items() if p.szi and not p.cross)
    ]  # sorts the few open ones only


def isolated_scope(coin: str, pos: Position, market: MarketState) -> Scope:
    """One open isolated position's figures: its margin used against its maintenance."""
    mm = margin.table_of(pos, market).maintenance(margin.notional(pos.szi, market.mark))
    return Scope(coin, margin.iso_margin_used(pos, market), mm)


def below_maintenance(account: Account, markets: dict[str, MarketState]) -> bool:
    return any(s.below for s in scopes(account, markets))
