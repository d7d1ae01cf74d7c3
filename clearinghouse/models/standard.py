"""The standard model: cross and isolated perp margin (docs/rules.md 2). Spot balances, USDC
included, sit apart from the perp ledger and never count as margin."""

from __future__ import annotations

from typing import Any

from clearinghouse import margin
from clearinghouse.models.base import Part, Requirement, parts_shown
from clearinghouse.portfolio import Cash, Check
from clearinghouse.risk.bands import Sizing
from clearinghouse.rules import PmRules, RuleSet
from clearinghouse.scopes import Scope, below_maintenance, scopes
from clearinghouse.spot import USDC, add
from clearinghouse.state import Account, MarketState, SpotAccount, State
from events.units import RATE, ceil_div


def perp_requirement(account: Account, markets: dict[str, MarketState]) -> Requirement:
    """The cross book and each open isolated position: equity against IM (notional / leverage)
    and maintenance."""
    cross = margin.cross_figures(account, markets)
    parts = [Part("cross", cross.account_value, cross.margin_used, cross.maintenance)]
    for coin in sorted(c for c, p in account.positions.items() if p.szi and not p.cross):
        pos, market = account.positions[coin], markets[coin]
        ntl = margin.notional(pos.szi, market.mark)
        parts.append(
            Part(
                coin,
                margin.iso_margin_used(pos, market),
                ceil_div(ntl, pos.leverage),
                margin.table_of(pos, market).maintenance(ntl),
            )
        )
    return Requirement(
        sum(p.equity for p in parts), sum(p.initial for p in parts), sum(p.maintenance for p in parts), tuple(parts)
    )


def cross_withdrawable(account: Account, markets: dict[str, MarketState], rules: RuleSet) -> int:
    return margin.withdrawable(margin.cross_figures(account, markets), rules)


class StandardModel:
    mode = "standard"
    banded = False
    one_usdc_balance = False
    settles_with_pool = False
    may_borrow = False
    cross_leverage_margined = True
    spot_collateral = False
    ratio_liquidation = False
    sized = True
    counts_every_token = False

    def requirement(self, state: State, account: Account, spot: SpotAccount | None) -> Requirement:
        return perp_requirement(account, state.markets)

    def breakdown(self, state: State, account: Account, spot: SpotAccount | None) -> dict[str, Any]:
        """The cross book and each isolated position (spot tokens do not count)."""
        return {"parts": parts_shown(self.requirement(state, account, spot))}

    def withdrawable(self, state: State, account: Account, spot: SpotAccount | None, rules: RuleSet) -> int:
        return cross_withdrawable(account, state.markets, rules)

    def spot_usdc(self, account: Account, spot: SpotAccount) -> int:
        return spot.balances.get(USDC, 0)

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
        return spot.balances.get(USDC, 0) if spot is not None else 0

    def suppliable_usdc(self, state: State, account: Account, spot: SpotAccount | None, rules: RuleSet) -> int:
        return self.usdc_room(state, account, spot, rules)

    def cash_now(self, state: State, account: Account, spot: SpotAccount) -> Cash | None:
        return None

    def payment_take(
        self, state: State, account: Account, spot: SpotAccount, amount: int, taken: int, now: Cash | None
    ) -> int:
        return 0

    def pay_usdc(
        self, state: State, account: Account, spot: SpotAccount, amount: int, take: int | None = None
    ) -> None:
        add(spot, USDC, -amount)

    def debit_ledger(self, state: State, account: Account, spot: SpotAccount | None, amount: int) -> None:
        account.raw_usd -= amount

    def check_removal(self, state: State, account: Account, spot: SpotAccount, change: tuple[str, int]) -> None:
        return None

    def check_leave(self, spot: SpotAccount | None) -> None:
        return None

    def check_enter(self, state: State, account: Account, spot: SpotAccount | None) -> None:
        return None

    def check_borrow(self, state: State, account: Account, spot: SpotAccount, token: str, amount: int) -> None:
        return None  # `may_borrow` is False: never asked

    def check_margin_move(self, state: State, account: Account, spot: SpotAccount | None, amount: int) -> None:
        return None

    def check_spot_sale(
        self, state: State, account: Account, spot: SpotAccount, token: str, amount: int, px: int, fee: int
    ) -> None:
        return None  # its spot side is not its margin

    def check_fill(
        self,
        state: State,
        account: Account,
        spot: SpotAccount | None,
        coin: str,
        szi: int,
        px: int,
        fee: int,
        sizing: Sizing | None = None,
    ) -> None:
        return None  # a trade is a fact: the liquidation checks act on what it does

    def book_broken(self, state: State, account: Account, spot: SpotAccount | None) -> bool:
        return False

    def book_figures(self, state: State, account: Account, spot: SpotAccount | None) -> tuple[int, int]:
        return 0, 0

    def precheck(self, state: State, account: Account, spot: SpotAccount) -> Check | None:
        return None

    def liquidatable(self, state: State, account: Account, spot: SpotAccount | None, now: Check | None = None) -> bool:
        return below_maintenance(account, state.markets)

    def market_scopes(self, account: Account, markets: dict[str, MarketState]) -> list[Scope]:
        return scopes(account, markets)

    def band_ratio(self, rules: PmRules) -> int:
        return RATE

    def buffers(
        self, state: State, account: Account, spot: SpotAccount, now: Check | None
    ) -> tuple[int, int | None] | None:
        """The cross book's distance from maintenance (its trigger is strict); the engine keeps a
        standard account in the trigger index, which solves for it in closed form."""
        if not any(pos.szi and pos.cross for pos in account.positions.values()):
            return None
        cross = margin.cross_figures(account, state.markets)
        return cross.account_value - cross.maintenance, None


STANDARD = StandardModel()
