"""The risk-based portfolio margin (docs/risk-margin.md): scenario losses per underlying with
spread credits and charges (`clearinghouse.risk`), against one equity: the USDC ledger with the
cross positions' pnl plus every spot token at its oracle. Trades, removals and spot buys need
equity at or above the initial requirement after them (a fill that lowers the initial
requirement is always booked, so an account can reduce); the account is liquidated when its
equity is below maintenance: its cross positions through the market phase, then, still below
with none left, the backstop takes everything over. Isolated positions keep their own margin.
One USDC balance, as a unified account; explicit borrows only (no settlement with the pool),
each financed against IM with the loan charge."""

from __future__ import annotations

from typing import Any

from clearinghouse import margin, portfolio
from clearinghouse.errors import Reject
from clearinghouse.models.base import Part, Requirement, parts_shown
from clearinghouse.models.standard import perp_requirement
from clearinghouse.models.unified import UnifiedModel
from clearinghouse.portfolio import Cash
from clearinghouse.risk.bands import Sizing
from clearinghouse.risk.exposure import LOAN_TOKENS, Book, book_of, with_fill, with_tokens
from clearinghouse.risk.params import RiskRules, resolved
from clearinghouse.risk.requirement import RiskFigures, figures, totals
from clearinghouse.rules import PmRules, RuleSet
from clearinghouse.scopes import Scope, isolated_scopes
from clearinghouse.spot import price
from clearinghouse.state import Account, MarketState, SpotAccount, State
from events.units import NTL_DIV, RATE, RATE_DECIMALS, USD_DECIMALS, format_decimal


def rules_of(state: State) -> RiskRules:
    """The risk parameters in force (the shipped defaults until a `rules` event sets some)."""
    return resolved(state.risk or None)


def _usd(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


def _rate(value: int) -> str:
    return format_decimal(value, RATE_DECIMALS, 0)


def _binding(rules: RiskRules, name: str, k: int | None) -> str:
    """Which scenario binds a scan: "floor", or "scenario k: move m (weight w)" per member."""
    if k is None or k < 0:
        return "floor"
    moves = []
    for u in name.split("+"):
        unit = rules.unit(u)
        label = f"{u} " if "+" in name else ""
        moves.append(f"{label}move {_rate(unit.moves[k])} (weight {_rate(unit.weights[k])})")
    return f"scenario {k}: " + ", ".join(moves)


class RiskModel(UnifiedModel):
    mode = "risk"
    banded = True
    one_usdc_balance = True
    settles_with_pool = False
    may_borrow = True
    cross_leverage_margined = False  # the cross book answers to the scenario scan, which leverage does not enter
    spot_collateral = True
    ratio_liquidation = True
    sized = False  # a maximum over scenarios: no sum of per-coin terms for the bands to split
    counts_every_token = True

    def book(self, state: State, account: Account, spot: SpotAccount | None) -> Book:
        return book_of(state, account, spot, rules_of(state))

    def figures(self, state: State, account: Account, spot: SpotAccount | None) -> RiskFigures:
        """Equity, IM and MM of the cross book and spot side, with every term."""
        return figures(self.book(state, account, spot), rules_of(state))

    def totals(self, state: State, account: Account, spot: SpotAccount | None) -> RiskFigures:
        """Equity, IM and MM of the cross book and spot side, without the terms."""
        return totals(self.book(state, account, spot), rules_of(state))

    def requirement(self, state: State, account: Account, spot: SpotAccount | None) -> Requirement:
        f = self.totals(state, account, spot)
        parts = (Part("risk", f.equity, f.initial, f.maintenance), *perp_requirement(account, state.markets).parts[1:])
        return Requirement(
            sum(p.equity for p in parts), sum(p.initial for p in parts), sum(p.maintenance for p in parts), parts
        )

    def breakdown(self, state: State, account: Account, spot: SpotAccount | None) -> dict[str, Any]:
        """The parts and every term, keyed "<kind> <underlying or group>": a scan with the
        scenario that binds (or the floor), each charge at its MM and IM rates."""
        r = rules_of(state)
        f = self.figures(state, account, spot)
        terms: dict[str, dict[str, str]] = {}
        for t in f.terms:
            entry = {"maintenance": _usd(t.maintenance), "initial": _usd(t.initial)}
            if t.kind == "scan":
                entry = {"scan": _usd(t.base), "binding": _binding(r, t.name, t.binding), **entry}
            terms[f"{t.kind} {t.name}"] = entry
        return {
            "parts": parts_shown(self.requirement(state, account, spot)),
            "terms": terms,
            "loss_factors": {"maintenance": _rate(r.loss_factor[0]), "initial": _rate(r.loss_factor[1])},
        }

    def withdrawable(self, state: State, account: Account, spot: SpotAccount | None, rules: RuleSet) -> int:
        return self.free(state, account, spot)

    def free(self, state: State, account: Account, spot: SpotAccount | None) -> int:
        """Equity above IM, and never more USDC than the ledger holds (no implicit borrow)."""
        f = self.totals(state, account, spot)
        return max(0, min(margin.cross_value(account, state.markets), f.equity - f.initial))

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
        """What a spot buy of `extra` may pay: at most the ledger, and leaving equity at or above
        the initial requirement with the tokens bought."""
        if extra is None:
            return self.free(state, account, spot)
        r = rules_of(state)
        token, amount = extra
        after = totals(with_tokens(self.book(state, account, spot), r, token, amount, price(state, token), 0), r)
        return max(0, min(margin.cross_value(account, state.markets), after.equity - after.initial))

    def check_removal(self, state: State, account: Account, spot: SpotAccount, change: tuple[str, int]) -> None:
        """A token withdrawal must leave equity at or above the initial requirement."""
        r = rules_of(state)
        token, amount = change
        after = totals(with_tokens(self.book(state, account, spot), r, token, amount, price(state, token), 0), r)
        if after.equity < after.initial:
            raise Reject(f"equity {_usd(after.equity)} would be below the initial requirement {_usd(after.initial)}")

    def check_margin_move(self, state: State, account: Account, spot: SpotAccount | None, amount: int) -> None:
        """Margin moved into an isolated position leaves the book: within its withdrawable."""
        free = self.free(state, account, spot)
        if amount > free:
            raise Reject(f"delta {_usd(amount)} is above the risk model's withdrawable {_usd(free)}")

    def check_spot_sale(
        self, state: State, account: Account, spot: SpotAccount, token: str, amount: int, px: int, fee: int
    ) -> None:
        """A sale that raises the initial requirement (it unhedges a carry) must leave equity at
        or above it."""
        r = rules_of(state)
        book = self.book(state, account, spot)
        after = totals(with_tokens(book, r, token, -amount, price(state, token), fee - amount * px // NTL_DIV), r)
        if after.equity < after.initial and after.initial > totals(book, r).initial:
            raise Reject(f"equity {_usd(after.equity)} would be below the initial requirement {_usd(after.initial)}")

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
        """A cross fill that raises the initial requirement must leave equity at or above it (the
        requirement before the fill is worked out only when equity after it falls short). With
        the account's band sizing, the fill's part alone is worked out first: when it and the
        least the bands allow of the others cover IM, the whole book is not needed."""
        pos = account.positions.get(coin)
        market = state.markets[coin]
        if (pos is not None and not pos.cross) or (pos is None and market.only_isolated):
            return
        held = pos.szi if pos is not None else 0
        cash = margin.value(held + szi, market.mark) - margin.value(held, market.mark) - szi * px // NTL_DIV - fee
        if sizing is not None and spot is not None and sizing.covers_im(state, account, spot, coin, szi, cash):
            return
        r = rules_of(state)
        book = self.book(state, account, spot)
        after = totals(with_fill(book, r, coin, szi, market.mark, market.oracle, cash), r)
        if after.equity < after.initial and after.initial > totals(book, r).initial:
            raise Reject(f"equity {_usd(after.equity)} would be below the initial requirement {_usd(after.initial)}")

    def check_borrow(self, state: State, account: Account, spot: SpotAccount, token: str, amount: int) -> None:
        """Borrowing leaves equity as it was (the proceeds against the debt) and adds the loan
        charge of a USDC or USDT borrow: equity must stay at or above IM with it."""
        r = rules_of(state)
        book = self.book(state, account, spot)
        if token in LOAN_TOKENS:
            book = book._replace(loans=book.loans + portfolio.owed_value(state, token, amount))
        after = totals(book, r)
        if after.equity < after.initial:
            raise Reject(f"equity {_usd(after.equity)} would be below the initial requirement {_usd(after.initial)}")

    def check_leave(self, spot: SpotAccount | None) -> None:
        if spot is not None and spot.borrowed:
            raise Reject("leaving the risk model needs every borrow repaid")

    def precheck(self, state: State, account: Account, spot: SpotAccount) -> RiskFigures | None:
        """The book's figures, worked out once for the liquidation check and the bands after it
        (None: nothing to liquidate in the book, which `book_broken` sees without them)."""
        book = self.book(state, account, spot)
        return totals(book, rules_of(state)) if book.units else None

    def book_broken(self, state: State, account: Account, spot: SpotAccount | None) -> bool:
        """Equity below maintenance with something to liquidate (a cross position or a token)."""
        book = self.book(state, account, spot)
        if not book.units:
            return False
        f = totals(book, rules_of(state))
        return f.equity < f.maintenance

    def book_figures(self, state: State, account: Account, spot: SpotAccount | None) -> tuple[int, int]:
        f = self.totals(state, account, spot)
        return f.equity, f.maintenance

    def liquidatable(
        self, state: State, account: Account, spot: SpotAccount | None, now: RiskFigures | None = None
    ) -> bool:
        if any(s.below for s in isolated_scopes(account, state.markets)):
            return True
        if now is not None:  # `precheck`'s: the book has something to liquidate
            return now.equity < now.maintenance
        return self.book_broken(state, account, spot)

    def market_scopes(self, account: Account, markets: dict[str, MarketState]) -> list[Scope]:
        return isolated_scopes(account, markets)

    def band_ratio(self, rules: PmRules) -> int:
        return RATE

    def buffers(
        self, state: State, account: Account, spot: SpotAccount, now: RiskFigures | None
    ) -> tuple[int, int | None] | None:
        """Distance from maintenance (`now`: `precheck`'s figures, if at hand), which
        `risk.bands` splits among the coins."""
        f = self.totals(state, account, spot) if now is None else now
        return f.equity - f.maintenance, None


RISK = RiskModel()
