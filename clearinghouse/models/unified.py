"""The unified model: one USDC balance (the perp ledger) for perps and spot, every perp
USDC-margined, so the unified ratio is USDC's, `crossMM / AV_cross`, liquidatable at 1 or above
(docs/portfolio-margin.md). Spot tokens other than USDC do not count as margin."""

from __future__ import annotations

from clearinghouse import margin
from clearinghouse.models.standard import StandardModel
from clearinghouse.portfolio import Cash, Check
from clearinghouse.rules import RuleSet
from clearinghouse.scopes import Scope, scopes
from clearinghouse.state import Account, MarketState, SpotAccount, State


class UnifiedModel(StandardModel):
    mode = "unified"
    banded = True
    one_usdc_balance = True

    def spot_usdc(self, account: Account, spot: SpotAccount) -> int:
        return account.raw_usd

    def usdc_room(
        self,
        state: State,
        account: Account,
        spot: SpotAccount | None,
        rules: RuleSet,
        extra: tuple[str, int] | None = None,
        need: int = 0,
        now: Cash | None = None,
    ) -> int:
        """What a removal of margin may take: the ledger is also its spot USDC."""
        return self.withdrawable(state, account, spot, rules) if spot is not None else 0

    def pay_usdc(
        self, state: State, account: Account, spot: SpotAccount, amount: int, take: int | None = None
    ) -> None:
        account.raw_usd -= amount

    def liquidatable(self, state: State, account: Account, spot: SpotAccount | None, now: Check | None = None) -> bool:
        return any(s.below for s in scopes(account, state.markets, True))

    def market_scopes(self, account: Account, markets: dict[str, MarketState]) -> list[Scope]:
        return scopes(account, markets, True)

    def buffers(
        self, state: State, account: Account, spot: SpotAccount, now: Check | None
    ) -> tuple[int, int | None] | None:
        """An open cross position can trigger, even one with no maintenance yet (mark 0); the
        trigger is inclusive, so the buffer is one micro-USDC less than `AV_cross - crossMM`."""
        if not any(pos.szi and pos.cross for pos in account.positions.values()):
            return None
        cross = margin.cross_figures(account, state.markets)
        return cross.account_value - cross.maintenance - 1, None


UNIFIED = UnifiedModel()
