"""Hyperliquid portfolio margin (docs/portfolio-margin.md): spot collateral and borrows count in
one ratio, `req / liqValue <= liq_ratio`; USDC is settled with the lending pool at hour
boundaries; borrows are liquidated on their LTV thresholds. Isolated positions keep their own
maintenance. The figures are `clearinghouse.portfolio`'s."""

from __future__ import annotations

from typing import Any

from clearinghouse import margin, portfolio
from clearinghouse.errors import Reject
from clearinghouse.models.base import Part, Requirement, parts_shown
from clearinghouse.models.standard import perp_requirement
from clearinghouse.portfolio import Cash, Check
from clearinghouse.risk.bands import Sizing
from clearinghouse.rules import PmRules, RuleSet
from clearinghouse.scopes import Scope, isolated_scopes
from clearinghouse.spot import USDC, price
from clearinghouse.state import Account, MarketState, SpotAccount, State
from events.units import NTL_DIV, RATE, USD_DECIMALS, ceil_div, format_decimal


def _usd(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


class PortfolioModel:
    mode = "portfolio"
    banded = True
    one_usdc_balance = True
    settles_with_pool = True
    may_borrow = True
    cross_leverage_margined = False  # the cross book answers to the PM ratio, which leverage does not enter
    spot_collateral = True
    ratio_liquidation = True
    sized = True
    counts_every_token = False

    def requirement(self, state: State, account: Account, spot: SpotAccount | None) -> Requirement:
        """The portfolio part: liquidation value against the requirement scaled to the ratio,
        `req / liq_ratio` (rounded up), which is both what a removal must leave and where the
        account is liquidated; then each isolated position on its own figures."""
        assert spot is not None  # a portfolio account has a spot side
        f = portfolio.figures(state, account, spot)
        keep = ceil_div(f.requirement * RATE, state.pm_rules.liq_ratio)
        parts = (Part("portfolio", f.liq_value, keep, keep), *perp_requirement(account, state.markets).parts[1:])
        return Requirement(
            sum(p.equity for p in parts), sum(p.initial for p in parts), sum(p.maintenance for p in parts), parts
        )

    def breakdown(self, state: State, account: Account, spot: SpotAccount | None) -> dict[str, Any]:
        """The parts and the PM figures: `req = min_requirement + crossMM + borrowed` against the
        liquidation value, liquidatable when `req / liqValue > liq_ratio`."""
        assert spot is not None
        f = portfolio.figures(state, account, spot)
        figures = {
            "usdc": f.usdc,
            "borrowed": f.borrowed,
            "borrow_limit": f.borrow_limit,
            "cross_maintenance": f.maintenance,
            "requirement": f.requirement,
            "liquidation_value": f.liq_value,
        }
        return {
            "parts": parts_shown(self.requirement(state, account, spot)),
            "portfolio": {k: _usd(v) for k, v in figures.items()},
            "liq_ratio": format_decimal(state.pm_rules.liq_ratio, 12),
        }

    def withdrawable(self, state: State, account: Account, spot: SpotAccount | None, rules: RuleSet) -> int:
        return portfolio.withdrawable(state, account, spot)  # type: ignore[arg-type]

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
        """Its balance, supply and borrow headroom."""
        return portfolio.spendable(state, account, spot, extra, need, now)  # type: ignore[arg-type]

    def suppliable_usdc(self, state: State, account: Account, spot: SpotAccount | None, rules: RuleSet) -> int:
        return max(0, margin.cross_value(account, state.markets))  # never borrowed money

    def cash_now(self, state: State, account: Account, spot: SpotAccount) -> Cash | None:
        return portfolio.cash(state, account, spot)

    def payment_take(
        self, state: State, account: Account, spot: SpotAccount, amount: int, taken: int, now: Cash | None
    ) -> int:
        return portfolio.supply_take(state, account, spot, amount, taken, now) if amount > 0 else 0

    def pay_usdc(
        self, state: State, account: Account, spot: SpotAccount, amount: int, take: int | None = None
    ) -> None:
        if amount > 0:
            portfolio.from_supply(state, account, spot, amount, take)
        account.raw_usd -= amount

    def debit_ledger(self, state: State, account: Account, spot: SpotAccount | None, amount: int) -> None:
        portfolio.from_supply(state, account, spot, amount)  # type: ignore[arg-type]
        account.raw_usd -= amount

    def check_removal(self, state: State, account: Account, spot: SpotAccount, change: tuple[str, int]) -> None:
        """Collateral may not leave below the borrows' LTV limit or the PM ratio."""
        f = portfolio.figures(state, account, spot, change)
        if f.borrowed > f.borrow_limit:
            raise Reject(f"borrowed {_usd(f.borrowed)} would be above the borrow limit {_usd(f.borrow_limit)}")
        if portfolio.at_risk(account, spot) and portfolio.ratio_broken(f, state.pm_rules):
            raise Reject("the portfolio margin ratio would be above its limit")

    def check_leave(self, spot: SpotAccount | None) -> None:
        if spot is not None and spot.borrowed:
            raise Reject("leaving portfolio margin needs every borrow repaid")

    def check_enter(self, state: State, account: Account, spot: SpotAccount | None) -> None:
        """Weighted volume above `min_volume` or account value above `min_value`, and value below
        `max_value`."""
        rules = state.pm_rules
        worth = portfolio.account_value(state, account, spot)
        if not (account.volume > rules.min_volume or worth > rules.min_value):
            raise Reject("portfolio margin needs weighted volume above the minimum or account value above the minimum")
        if worth >= rules.max_value:
            raise Reject("portfolio margin needs account value below the maximum")

    def check_borrow(self, state: State, account: Account, spot: SpotAccount, token: str, amount: int) -> None:
        """Within the LTV headroom."""
        f = portfolio.figures(state, account, spot)
        worth = amount if token == USDC else ceil_div(amount * price(state, token), NTL_DIV)
        if f.borrowed + worth > f.borrow_limit:
            left = max(0, f.borrow_limit - f.borrowed)
            raise Reject(f"borrowing {_usd(worth)} USDC of value is above the headroom {_usd(left)}")

    def check_margin_move(self, state: State, account: Account, spot: SpotAccount | None, amount: int) -> None:
        return None

    def check_spot_sale(
        self, state: State, account: Account, spot: SpotAccount, token: str, amount: int, px: int, fee: int
    ) -> None:
        return None

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
        return None

    def book_broken(self, state: State, account: Account, spot: SpotAccount | None) -> bool:
        """Something the ratio can liquidate, and the ratio above its limit."""
        assert spot is not None
        return portfolio.at_risk(account, spot) and portfolio.ratio_broken(
            portfolio.figures(state, account, spot), state.pm_rules
        )

    def book_figures(self, state: State, account: Account, spot: SpotAccount | None) -> tuple[int, int]:
        """The liquidation value against the requirement scaled to the ratio."""
        assert spot is not None
        f = portfolio.figures(state, account, spot)
        return f.liq_value, ceil_div(f.requirement * RATE, state.pm_rules.liq_ratio)

    def precheck(self, state: State, account: Account, spot: SpotAccount) -> Check | None:
        return portfolio.check(state, account, spot)

    def liquidatable(self, state: State, account: Account, spot: SpotAccount | None, now: Check | None = None) -> bool:
        """An isolated position below its own maintenance, or the PM ratio or the partial borrow
        threshold broken (`now`: the figures, if at hand)."""
        if any(s.below for s in isolated_scopes(account, state.markets)):
            return True
        return portfolio.pm_liquidatable(state, account, spot, now)  # type: ignore[arg-type]

    def market_scopes(self, account: Account, markets: dict[str, MarketState]) -> list[Scope]:
        return isolated_scopes(account, markets)

    def band_ratio(self, rules: PmRules) -> int:
        return rules.liq_ratio

    def buffers(
        self, state: State, account: Account, spot: SpotAccount, now: Check | None
    ) -> tuple[int, int | None] | None:
        """The ratio's buffer `liq_ratio * liqValue - req`, and the partial borrow threshold's.
        An account with nothing to liquidate yet is banded all the same while its ratio holds,
        so that its first fill finds a sizing to draw on."""
        f, partial, risky = now or portfolio.check(state, account, spot)
        buffer = state.pm_rules.liq_ratio * f.liq_value // RATE - f.requirement
        if not risky and buffer <= 0:
            return None
        return buffer, partial - f.borrowed if spot.borrowed else None


PORTFOLIO = PortfolioModel()
