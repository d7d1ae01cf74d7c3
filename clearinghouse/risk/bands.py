"""How far each price a risk-model account is exposed to may move before its equity could reach
maintenance (docs/risk-margin.md, "Trigger bands"): the shares of its buffer `equity - MM` the
trigger bands (`pm_triggers.PmBands`) give each coin, with the bound `K` on how fast the buffer
falls per unit of the coin's price.

Within one underlying `u`, every term of the buffer is, in each price, either linear with a
bounded slope or (concentration) convex with a slope bounded on a bounded range, so the fall
per unit of price is at most `A_u * F_u + C_u`, `A_u` being the sum over the unit's cross
positions and tokens of their absolute sizes (held, supplied and owed):

- equity: slope 1 (each position at its mark, each token at its oracle);
- the scan: `mm_loss_factor * max(max_k w_k * |move_k| * max(1, credit rate), min_charge)`
  (a group's aligned loss is a sum of members' weighted losses less the credit times their
  gains: per member at most `w_k |move_k| max(1, rate)` per unit of its value);
- the perp contingency, basis and loan charges at their MM rates (each linear in an oracle);
- concentration `conc * net^2 / depth`: its slope is `2 conc |net| / depth`, and `|net|` stays
  below `N_u`, the unit's gross value with every price doubled, while each price stays below
  twice its reference: a coin's share is capped so its band cannot reach that far.

Shares are in proportion to value at risk (`K` times the price), after `ROUND` micro-USDC per
coin kept back for the rounding of the terms (each rounded once, up or down, at most a micro-USDC
each; a coin moves at most its unit's terms). Funding moves equity alone; the bands take 1/8 of
each share for it with `|szi|` per unit of the index.
"""

from __future__ import annotations

from clearinghouse import portfolio
from clearinghouse.risk.params import RiskRules, resolved
from clearinghouse.spot import USDC, price
from clearinghouse.state import Account, SpotAccount, State
from events.units import NTL_DIV, RATE, ceil_div

ROUND = 16  # micro-USDC of the buffer kept back per coin for rounding (beyond the bands' own)
SCALE = RATE**4  # the denominator of `slope`


def slope(rules: RiskRules, underlying: str) -> int:
    """`F_u` over `SCALE`: the buffer's fall per unit of the unit's value, concentration aside."""
    unit = rules.unit(underlying)
    group = rules.group_of.get(underlying)
    credit = max(RATE, rules.groups[group].rate) if group is not None else RATE
    scan = max(unit.swing * credit, unit.min_charge * RATE**2)  # over RATE^3
    charges = unit.perp_rate[0] + unit.basis_rate[0] + rules.loan_rate[0]
    return SCALE + rules.loss_factor[0] * scan + charges * RATE**3


def shares(
    state: State, account: Account, spot: SpotAccount, coins: list[str], buffer: int
) -> dict[str, tuple[int, int, int]]:
    """Per coin of `coins` (the perp markets the account's cross book and spot side use): its
    share of `buffer`, its `K` (micro-USDC of fall per 1e-8 of price, times `NTL_DIV`) and its
    cross `szi`. A share of 0 (a buffer too thin to split, or none) gives a band every move
    leaves."""
    rules = resolved(state.risk or None)  # the parameters in force, as the model reads them
    markets = state.markets
    size: dict[str, int] = {}  # underlying -> A_u
    gross: dict[str, int] = {}  # underlying -> N_u (1e-16 USDC)
    for coin, pos in account.positions.items():
        if pos.szi and pos.cross:
            u, market = rules.underlying(coin), markets[coin]
            size[u] = size.get(u, 0) + abs(pos.szi)
            gross[u] = gross.get(u, 0) + 2 * abs(pos.szi) * max(market.mark, market.oracle)
    for token in sorted(set(spot.balances) | set(spot.supplied) | set(spot.borrowed)):
        if token == USDC:
            continue
        amount = portfolio.holdings(state, spot, token) + portfolio.debt(state, spot, token)
        if amount:
            u = rules.underlying(token)
            size[u] = size.get(u, 0) + amount
            gross[u] = gross.get(u, 0) + 2 * amount * price(state, token)
    out: dict[str, tuple[int, int, int]] = {}
    weights: dict[str, int] = {}
    for coin in coins:
        u = rules.underlying(coin)
        unit = rules.unit(u)
        a = size.get(u, 0)
        k = ceil_div(a * slope(rules, u), SCALE) + ceil_div(
            2 * unit.conc * gross.get(u, 0) * a, RATE * NTL_DIV * unit.depth
        )
        pos = account.positions.get(coin)
        szi = pos.szi if pos is not None and pos.cross else 0
        market = markets[coin]
        out[coin] = (0, k, szi)
        weights[coin] = k * max(market.mark, market.oracle)
    free = buffer - ROUND * len(coins)
    total = sum(weights.values())
    if free <= 0 or not total:
        return out
    for coin, (_, k, szi) in out.items():
        market = markets[coin]
        # capped so that the band stays below twice the price (the concentration slope's range)
        cap = k * min(market.mark, market.oracle) // NTL_DIV
        out[coin] = (min(free * weights[coin] // total, cap), k, szi)
    return out
