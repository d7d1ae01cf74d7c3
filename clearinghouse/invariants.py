"""Conservation checks, on demand on any state (hyperliquid-rules.md 3; ARCHITECTURE rule 5).

USDC: every account ledger (cross and isolated, the liquidator's included), the fee account and
the funding pool, less the recorded bad debt, sum to what was deposited minus what was withdrawn
(writing a bankrupt ledger off to bad debt raises the ledgers' sum by exactly that amount). Positions: per market, long and short sizes net to zero
and match the open interest the engine keeps.
"""

from __future__ import annotations

from clearinghouse.state import State


def conservation_errors(state: State) -> list[str]:
    """Every broken invariant, described; empty when the state balances."""
    errors: list[str] = []
    cash = state.fees + state.funding_pool - state.bad_debt
    net_size: dict[str, int] = {coin: 0 for coin in state.markets}
    longs: dict[str, int] = {coin: 0 for coin in state.markets}
    for account in state.accounts.values():
        cash += account.raw_usd
        for coin, pos in account.positions.items():
            cash += pos.iso_raw
            net_size[coin] += pos.szi
            longs[coin] += max(pos.szi, 0)
    expected = state.deposited - state.withdrawn
    if cash != expected:
        errors.append(f"USDC: ledgers, fees and funding less bad debt hold {cash}, deposits less withdrawals are {expected}")
    for coin in sorted(state.markets):
        market = state.markets[coin]
        if net_size[coin]:
            errors.append(f"{coin}: long and short sizes net to {net_size[coin]}, not 0")
        if longs[coin] != market.long_size or market.long_size != market.short_size:
            errors.append(f"{coin}: open interest {market.long_size}/{market.short_size}, positions hold {longs[coin]}")
    return errors
