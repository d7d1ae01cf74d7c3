"""Spot tokens, balances and account modes (docs/rules.md 1, docs/portfolio-margin.md).

Every token but USDC is held in 1e-8 token (`units.TOKEN_DECIMALS`) whatever its decimals; the
token's `unit` (10^-decimals) is the step every balance change must keep. USDC stays in
micro-USDC. A standard account keeps spot USDC in `SpotAccount.balances["USDC"]`, apart from the
perp ledger; a unified or portfolio account keeps its one USDC balance in the perp ledger
(`Account.raw_usd`), so its perp margin and its spot buying power are the same money.

The oracle price of a spot token (our choice, the rulebook is silent): the oracle of the perp
market of the same coin when one is listed and priced; else the token's own entry in `prices`
events; else the last spot trade price; else none (a token without a price is worth 0 as
collateral, which errs against the borrower). USDC is worth exactly 1.
"""

from __future__ import annotations

from clearinghouse.state import SpotAccount, State
from events.units import NTL_DIV, PX

USDC = "USDC"


def spot_of(state: State, name: str) -> SpotAccount:
    """The account's spot side, created empty (standard) on first use."""
    spot = state.spot.get(name)
    if spot is None:
        spot = state.spot[name] = SpotAccount()
    return spot


def price(state: State, token: str) -> int:
    """The token's oracle in 1e-8 USDC per token (0: none yet)."""
    if token == USDC:
        return PX
    market = state.markets.get(token)
    if market is not None and market.oracle:
        return market.oracle
    listed = state.tokens.get(token)
    if listed is None:
        return 0
    return listed.oracle or listed.last_px


def value(amount: int, px: int) -> int:
    """micro-USDC worth of `amount` (1e-8 token) at `px`, rounded down."""
    return amount * px // NTL_DIV


def add(spot: SpotAccount, token: str, amount: int) -> None:
    """Changes a balance by `amount`; a balance that reaches zero is dropped."""
    left = spot.balances.get(token, 0) + amount
    if left:
        spot.balances[token] = left
    else:
        spot.balances.pop(token, None)
