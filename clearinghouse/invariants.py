"""Conservation checks, on demand on any state (docs/rules.md 3; docs/architecture.md rule 5).

USDC: every account ledger (cross and isolated, the liquidator's included), every spot USDC
balance, the USDC pool's idle cash, the fee account and the funding pool, less the recorded bad
debt, sum to what was deposited minus what was withdrawn (writing a bankrupt ledger off to bad
debt raises the ledgers' sum by exactly that amount). Every other token: spot balances and its
pool's idle amount sum to its deposits less withdrawals. Positions: per market, long and short
sizes net to zero and match the open interest the engine keeps.

Lending pools: `idle + lent = supplied + protocol + dust` and `interest paid = interest earned +
protocol share`, with protocol share and rounding dust never negative; the pool never owes
suppliers more than the sum of their claims, nor is owed less than the sum of the debts
(rounding always in the pool's favour).

Bounds (`bound_errors`): every mark within the price bound, and every market's open interest
worth at most `OPEN_NOTIONAL_LIMIT` at it, whatever moved the mark (a `prices` event or an
impact fill): what keeps the figures valued at the marks within the encoding.
"""

from __future__ import annotations

from clearinghouse import lending
from clearinghouse.state import State
from events.bounds import MAX_PX, OPEN_LIMIT


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
    if state.spot or state.pools:
        errors += _spot_errors(state)
        cash += sum(spot.balances.get("USDC", 0) for spot in state.spot.values())
        cash += state.pools["USDC"].idle if "USDC" in state.pools else 0
    expected = state.deposited - state.withdrawn
    if cash != expected:
        errors.append(
            f"USDC: ledgers, fees and funding less bad debt hold {cash}, deposits less withdrawals are {expected}"
        )
    for coin in sorted(state.markets):
        market = state.markets[coin]
        if net_size[coin]:
            errors.append(f"{coin}: long and short sizes net to {net_size[coin]}, not 0")
        if longs[coin] != market.long_size or market.long_size != market.short_size:
            errors.append(
                f"{coin}: open interest {market.long_size}/{market.short_size}, positions hold {longs[coin]}"
            )
    return errors


def bound_errors(state: State) -> list[str]:
    """Every mark outside its bounds, described; empty when all hold."""
    errors: list[str] = []
    for coin in sorted(state.markets):
        market = state.markets[coin]
        if not 0 <= market.mark <= MAX_PX or market.long_size * market.mark > OPEN_LIMIT:
            errors.append(f"{coin}: mark {market.mark} with open interest {market.long_size} is past its bounds")
    return errors


def _spot_errors(state: State) -> list[str]:
    errors: list[str] = []
    held: dict[str, int] = {}
    claims: dict[str, int] = {}
    debts: dict[str, int] = {}
    for name in sorted(state.spot):
        spot = state.spot[name]
        for token, amount in spot.balances.items():
            if amount < 0:
                errors.append(f"{name}: negative {token} balance {amount}")
            held[token] = held.get(token, 0) + amount
        for token, shares in spot.supplied.items():
            claims[token] = claims.get(token, 0) + lending.claim(state.pools[token], shares)
        for token, shares in spot.borrowed.items():
            debts[token] = debts.get(token, 0) + lending.owed(state.pools[token], shares)
    for token in sorted(state.pools):
        pool = state.pools[token]
        lent, supplied = lending.lent(pool), lending.supplied(pool)
        if pool.idle + lent != supplied + pool.protocol + pool.dust:
            errors.append(
                f"{token} pool: idle {pool.idle} + lent {lent} != supplied {supplied} + protocol {pool.protocol} + "
                f"dust {pool.dust}"
            )
        if pool.interest_paid != pool.interest_earned + pool.protocol:
            errors.append(
                f"{token} pool: interest paid {pool.interest_paid} != earned {pool.interest_earned} + protocol "
                f"{pool.protocol}"
            )
        if pool.protocol < 0 or pool.dust < 0 or pool.idle < 0:
            errors.append(
                f"{token} pool: protocol {pool.protocol}, dust {pool.dust}, idle {pool.idle} must not be negative"
            )
        if claims.get(token, 0) > supplied or debts.get(token, 0) < lent:
            errors.append(
                f"{token} pool: claims {claims.get(token, 0)} above supplied {supplied} or debts "
                f"{debts.get(token, 0)} below lent {lent}"
            )
        if token != "USDC":
            held[token] = held.get(token, 0) + pool.idle
    for token in sorted(set(held) | set(state.token_net)):
        if token != "USDC" and held.get(token, 0) != state.token_net.get(token, 0):
            errors.append(
                f"{token}: balances and pool hold {held.get(token, 0)}, deposits less withdrawals are "
                f"{state.token_net.get(token, 0)}"
            )
    return errors
