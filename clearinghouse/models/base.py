"""The margin model protocol: everything the engine, liquidation and the trigger bands ask about
an account's margin, answered by the account's model (standard, unified, portfolio margin, risk).

An account's model is chosen once, from its mode (`registry.MODELS`), and kept in the engine's
`registry.AccountModels` cache, rebuilt from the state: nothing along the hot path compares mode
strings. A model is a stateless object; every method reads the state it is given.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from clearinghouse.portfolio import Cash, Check
from clearinghouse.risk.bands import Sizing
from clearinghouse.risk.requirement import RiskFigures
from clearinghouse.rules import PmRules, RuleSet
from clearinghouse.scopes import Scope
from clearinghouse.state import Account, MarketState, SpotAccount, State
from events.units import USD_DECIMALS, format_decimal


class Part(NamedTuple):
    """One part of an account's requirement: the cross book (or, in portfolio margin, the whole
    portfolio) or one isolated position."""

    name: str
    equity: int
    initial: int
    maintenance: int


class Requirement(NamedTuple):
    """Equity against the initial and maintenance requirement, in micro-USDC, with the parts
    they sum over (equity is below maintenance in some part when the account is liquidatable,
    except where a model's trigger is inclusive)."""

    equity: int
    initial: int
    maintenance: int
    parts: tuple[Part, ...]


def parts_shown(req: Requirement) -> dict[str, dict[str, str]]:
    """A requirement's parts as decimal strings, by part name."""
    return {
        p.name: {"equity": _usd(p.equity), "initial": _usd(p.initial), "maintenance": _usd(p.maintenance)}
        for p in req.parts
    }


def _usd(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


class MarginModel(Protocol):
    """How one account mode margins an account (docs/rules.md 2, docs/portfolio-margin.md)."""

    mode: str  # the `set_mode` name that selects it
    banded: bool  # watched by the trigger bands (`pm_triggers`) instead of the standard trigger index
    one_usdc_balance: bool  # its USDC is the perp ledger (no spot USDC of its own)
    settles_with_pool: bool  # its USDC is settled with the lending pool at hour boundaries; payments draw supply first
    may_borrow: bool  # explicit borrows are allowed
    cross_leverage_margined: bool  # a lower cross leverage must be covered by margin
    spot_collateral: bool  # its spot side (collateral, supply, borrows) counts in its margin
    ratio_liquidation: bool  # its whole book is liquidated on its own figures (`book_broken`) after its own scopes
    sized: bool  # its buffer is a sum of per-coin terms (`pm_triggers.parts`) the bands split
    counts_every_token: bool  # every spot token counts in its margin (else only those with an LTV)

    # ---- figures ---------------------------------------------------------------------------

    def breakdown(self, state: State, account: Account, spot: SpotAccount | None) -> dict[str, Any]:
        """Every term of its figures, amounts as decimal strings (the margin calculator's)."""
        ...

    def requirement(self, state: State, account: Account, spot: SpotAccount | None) -> Requirement:
        """Equity, initial and maintenance requirement, with their parts."""
        ...

    def withdrawable(self, state: State, account: Account, spot: SpotAccount | None, rules: RuleSet) -> int:
        """What a removal of margin (withdrawal, transfer out) may take."""
        ...

    # ---- spot and lending ------------------------------------------------------------------

    def spot_usdc(self, account: Account, spot: SpotAccount) -> int:
        """The USDC balance spot trades pay from and into."""
        ...

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
        """USDC the account can pay for a spot buy (`extra`: the tokens bought, `need`: the
        price) or a supply (`now`: its `portfolio.cash`, if read)."""
        ...

    def suppliable_usdc(self, state: State, account: Account, spot: SpotAccount | None, rules: RuleSet) -> int:
        """USDC the account may supply to the pool."""
        ...

    def cash_now(self, state: State, account: Account, spot: SpotAccount) -> Cash | None:
        """Its USDC as a payment sees it, read once for a spot buy's checks (None: not needed)."""
        ...

    def payment_take(
        self, state: State, account: Account, spot: SpotAccount, amount: int, taken: int, now: Cash | None
    ) -> int:
        """What paying `amount` takes out of its USDC supply (`taken`: already promised out of the
        pool); rejects when the pool cannot pay it. Changes nothing."""
        ...

    def pay_usdc(
        self, state: State, account: Account, spot: SpotAccount, amount: int, take: int | None = None
    ) -> None:
        """Moves `amount` USDC (negative: receives) out of its spot USDC (`take`: out of its supply,
        as `payment_take` worked it out)."""
        ...

    def debit_ledger(self, state: State, account: Account, spot: SpotAccount | None, amount: int) -> None:
        """Takes a checked removal of `amount` USDC out of the perp ledger."""
        ...

    def check_removal(self, state: State, account: Account, spot: SpotAccount, change: tuple[str, int]) -> None:
        """Rejects a withdrawal of spot tokens (`change`: token, -amount) the model forbids."""
        ...

    # ---- mode switches ---------------------------------------------------------------------

    def check_leave(self, spot: SpotAccount | None) -> None:
        """Rejects leaving this model while something only it allows is open."""
        ...

    def check_enter(self, state: State, account: Account, spot: SpotAccount | None) -> None:
        """Rejects entering this model when the account is not eligible."""
        ...

    # ---- liquidation -----------------------------------------------------------------------

    def check_borrow(self, state: State, account: Account, spot: SpotAccount, token: str, amount: int) -> None:
        """Rejects an explicit borrow of `amount` of `token` the model does not finance."""
        ...

    def check_margin_move(self, state: State, account: Account, spot: SpotAccount | None, amount: int) -> None:
        """Rejects moving `amount` USDC of cross margin into an isolated position (beyond the
        cross withdrawable the engine checks for every model) the model forbids."""
        ...

    def check_spot_sale(
        self, state: State, account: Account, spot: SpotAccount, token: str, amount: int, px: int, fee: int
    ) -> None:
        """Rejects a spot sale of `amount` of `token` at `px` paying `fee` the model forbids."""
        ...

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
        """Rejects a perp fill of `szi` (signed) at `px` paying `fee` the model does not finance
        (`sizing`: the account's risk-model band sizing, when its bands hold one)."""
        ...

    def precheck(self, state: State, account: Account, spot: SpotAccount) -> Check | RiskFigures | None:
        """Figures the liquidation check and the bands both use, computed once (None: none)."""
        ...

    def liquidatable(
        self, state: State, account: Account, spot: SpotAccount | None, now: Check | RiskFigures | None = None
    ) -> bool:
        """Whether anything of the account is liquidatable now (`now`: its `precheck`)."""
        ...

    def book_broken(self, state: State, account: Account, spot: SpotAccount | None) -> bool:
        """Whether its whole book is liquidatable on the model's own figures (`ratio_liquidation`)."""
        ...

    def book_figures(self, state: State, account: Account, spot: SpotAccount | None) -> tuple[int, int]:
        """The equity and maintenance its book liquidation reports (`ratio_liquidation`)."""
        ...

    def market_scopes(self, account: Account, markets: dict[str, MarketState]) -> list[Scope]:
        """The scopes the market phase and backstop liquidate on their own figures."""
        ...

    # ---- what the trigger bands need (`pm_triggers`) ------------------------------------------

    def band_ratio(self, rules: PmRules) -> int:
        """The ratio (1e-12) the cash and value terms of its buffer count at."""
        ...

    def buffers(
        self, state: State, account: Account, spot: SpotAccount, now: Check | RiskFigures | None
    ) -> tuple[int, int | None] | None:
        """How far its figures are from their triggers: (the ratio's or maintenance's, the
        partial borrow threshold's or None without a borrow); None: nothing can trigger."""
        ...
