"""What every event handler works on: the state, the perp rule set in force, each account's
margin model, the accounts filed under the coins that move their margin (for the trigger checks)
and the lookups that reject. One `Context` per engine; the handler modules (`perps`, `cash`,
`spot_trading`, `lending_actions`, `account_modes`, `rule_changes`) take it as their first
argument, so a handler reads top to bottom in the module of its rule.

Every handler validates completely before it mutates, so a rejected event (a `Reject` raised)
leaves the state as it was.
"""

from __future__ import annotations

from typing import Protocol

from clearinghouse import margin
from clearinghouse.errors import Reject
from clearinghouse.holders import Holders, ScanHolders
from clearinghouse.models.registry import AccountModels
from clearinghouse.risk.bands import Sizing
from clearinghouse.rules import RULE_SETS, RuleSet
from clearinghouse.spot import price
from clearinghouse.state import Account, MarketState, State, TokenState
from events.bounds import FIGURE_LIMIT, MAX_JUMP_HOURS, MAX_TS, OPEN_LIMIT, OPEN_NOTIONAL_LIMIT
from events.units import HOUR_MS, TOKEN_DECIMALS, USD_DECIMALS, format_decimal


def shown(amount: int) -> str:
    """micro-USDC as people read it, for rejection reasons."""
    return format_decimal(amount, USD_DECIMALS)


def positive(amount: int, what: str) -> None:
    if amount <= 0:
        raise Reject(f"{what} must be positive")


def room(figure: int, amount: int, what: str, name: str = "") -> None:
    """Refuses an event that would move a stored figure (`what`, of account `name` if given)
    by up to `amount` (>= 0) when that could take it past `FIGURE_LIMIT` (docs/wire-format.md)."""
    if abs(figure) + amount > FIGURE_LIMIT:
        raise Reject(f"{what}{f' of {name!r}' if name else ''} would pass its stored bound")


class Watching(Protocol):
    """What a handler tells the trigger checks (`checks.AccountChecks`) beyond the event itself."""

    def mode_changed(self, name: str) -> None:
        """`name`'s margin model changed (`ctx.models` already holds the new one)."""
        ...

    def holders(self, coin: str) -> set[str]:
        """The accounts whose keys a change of `coin`'s funding index or margin table moves."""
        ...

    def sizing(self, name: str) -> Sizing | None:
        """A risk-model account's band sizing (`risk.bands.Sizing`), if its bands hold one."""
        ...


class Context:
    """`liquidating`: liquidation is on (accounts are filed under coins for the checks);
    `indexed`: the trigger index and bands are kept (neither the reference full scan nor a replay
    guided by recorded decisions); `checks`: which accounts to check, told what handlers change
    beyond the event (set by the engine once it chose them). `exposed`: coin -> the banded
    (unified, portfolio) accounts a move of it may make liquidatable. `recheck`: accounts a
    funding rebase moved, checked and re-indexed after the event; `accrued`,
    `settled_since_check`: what the hour's interest and settlement moved, for the same checks.
    `accrue_at` is the event time of the next hour boundary (the pools accrue); `latest` the
    latest event time the next event may carry."""

    def __init__(self, state: State, liquidating: bool, indexed: bool) -> None:
        self.state = state
        self.rules: RuleSet = RULE_SETS[state.rules]
        self.models = AccountModels(state)
        self.liquidating, self.indexed = liquidating, indexed
        self.checks: Watching
        self.holders: Holders | ScanHolders  # each coin's holders, told of every new position (`opened`)
        self.exposed: dict[str, set[str]] = {}
        for name in sorted(self.models.banded):
            self.expose(name)
        self.recheck: set[str] = set()
        self.accrued = False  # interest accrued during this event: accounts with borrows are checked
        self.settled_since_check: set[str] = set()  # portfolio accounts settled with the pool since the last check
        self.accrue_at = 0
        self.latest = self.time_limit()

    # ---- event time ---------------------------------------------------------------------------

    def time_limit(self) -> int:
        """The latest event time the next event may carry: once the state has a time past the
        first hour (or a pool accrues from hour 0), one that passes at most `MAX_JUMP_HOURS` hour
        boundaries, which bounds the hours of interest one event makes the pools accrue; else
        `MAX_TS`. A function of the state alone, kept up to date at each hour boundary."""
        state = self.state
        if state.time < HOUR_MS and not state.pools:
            return MAX_TS
        return (state.time // HOUR_MS + 1 + MAX_JUMP_HOURS) * HOUR_MS - 1

    def pools_opened(self) -> None:
        """A handler may have opened a pool: the next hour boundary accrues it, and event time
        is bounded from now on (a pool opened at time 0 accrues from hour 0)."""
        if self.state.pools:
            self.accrue_at = min(self.accrue_at, (self.state.time // HOUR_MS + 1) * HOUR_MS)
            self.latest = self.time_limit()

    # ---- what the trigger checks need to know ---------------------------------------------------

    def expose(self, name: str) -> None:
        """Files a banded account under every coin whose price moves its figures."""
        spot, account = self.state.spot[name], self.state.accounts[name]
        for coin in (*account.positions, *spot.balances, *spot.supplied, *spot.borrowed):
            self.add_exposure(coin, name)

    def unexpose(self, name: str) -> None:
        for names in self.exposed.values():
            names.discard(name)

    def add_exposure(self, coin: str, name: str) -> None:
        """Files `name` under `coin` for the trigger checks (nothing to keep with liquidation off)."""
        if not self.liquidating:
            return
        names = self.exposed.get(coin)
        if names is None:
            names = self.exposed[coin] = set()
        names.add(name)

    def traded(self, coin: str, name: str) -> None:
        """A banded account traded `coin`: filed under it, and settled if its model settles."""
        self.add_exposure(coin, name)
        self.settle_at_next_hour(name)

    def settle_at_next_hour(self, name: str) -> None:
        """A portfolio account's USDC moved: it is settled with the pool (borrow, repay, supply)
        at the next hour boundary."""
        if name in self.models.settling:
            self.state.unswept[name] = 0

    # ---- lookups that reject ------------------------------------------------------------------

    def account(self, name: str) -> Account:
        account = self.state.accounts.get(name)
        if account is None:
            raise Reject(f"unknown account {name!r}")
        return account

    def market_of(self, coin: str) -> MarketState:
        market = self.state.markets.get(coin)
        if market is None:
            raise Reject(f"unknown market {coin!r}")
        return market

    def token_of(self, name: str, amount: int | None = None) -> TokenState:
        """A listed token; `amount` (if given) must be on its unit."""
        token = self.state.tokens.get(name)
        if token is None:
            raise Reject(f"unknown token {name!r}")
        if amount is not None and amount % token.unit:
            raise Reject(
                f"amount {format_decimal(amount, TOKEN_DECIMALS)} is finer than {name}'s {token.decimals} decimals"
            )
        return token

    def token_worth(self, token: str, more: int, px: int | None = None) -> None:
        """Refuses an event after which a spot token's deposits (plus `more`) would be worth more
        than `OPEN_NOTIONAL_LIMIT` at `px` (default: its price), which bounds every value of it."""
        if token in self.state.token_net:
            held = self.state.token_net[token] + more
            if held * (price(self.state, token) if px is None else px) > OPEN_LIMIT:
                raise Reject(f"{token} deposits would be worth more than {shown(OPEN_NOTIONAL_LIMIT)} USDC")

    def withdrawable(self, account: Account) -> int:
        """The cross withdrawable (an isolated margin add, a standard class transfer out)."""
        return margin.withdrawable(margin.cross_figures(account, self.state.markets), self.rules)
