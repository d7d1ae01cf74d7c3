"""Margin tiers: maintenance margin with deductions, in exact integer arithmetic.

`MM = ntl / (2 * L_n) - deduction(n)` with `deduction(n) = deduction(n-1) + lb_n * (mmr_n - mmr_{n-1})`
(docs/rules.md 2). All rates share the denominator `den = 2 * lcm(L_0..L_k)`, so a tier is
kept as integer numerators: `MM = ceil((ntl * mult_n - ded_n) / den)`, rounded against the account.
"""

from __future__ import annotations

from itertools import pairwise
from math import lcm

import msgspec

from events.bounds import MAX_LEVERAGE, MAX_TIERS, MAX_USD, STORED_LIMIT
from events.units import USD_DECIMALS, ceil_div, format_decimal


class Tier(msgspec.Struct, frozen=True, array_like=True):
    lower_bound: int  # micro-USDC of notional where this tier starts
    max_leverage: int
    mult: int  # den / (2 * max_leverage)
    ded: int  # deduction numerator over den


class TierTable(msgspec.Struct, frozen=True, array_like=True):
    den: int
    tiers: tuple[Tier, ...]

    def tier_for(self, ntl: int) -> Tier:
        """The tier whose notional range holds `ntl` (a lower bound belongs to its own tier)."""
        tiers = self.tiers
        chosen = tiers[0]
        for tier in tiers[1:]:
            if ntl < tier.lower_bound:
                break
            chosen = tier
        return chosen

    def maintenance(self, ntl: int) -> int:
        tier = self.tier_for(ntl)
        return ceil_div(ntl * tier.mult - tier.ded, self.den)

    @property
    def max_leverage(self) -> int:
        return self.tiers[0].max_leverage


def build_table(bounds: list[tuple[int, int]]) -> TierTable:
    """[(lower_bound, max_leverage), ...] -> a table; the caller has validated the shape."""
    den = 2 * lcm(*(lev for _, lev in bounds))
    tiers: list[Tier] = []
    ded = 0
    prev_mult = 0
    for lower, lev in bounds:
        mult = den // (2 * lev)
        if tiers:
            ded += lower * (mult - prev_mult)
        tiers.append(Tier(lower, lev, mult, ded))
        prev_mult = mult
    return TierTable(den, tuple(tiers))


def tier_table_error(bounds: list[tuple[int, int]]) -> str | None:
    """Why a tier list is not usable, or None: 1 to `MAX_TIERS` tiers, first bound 0, bounds
    rising up to `MAX_USD`, leverage in 1..`MAX_LEVERAGE` and not rising, and a table whose
    numerators (over the leverages' common multiple) stay within `STORED_LIMIT`."""
    if not bounds:
        return "margin_tiers is empty"
    if len(bounds) > MAX_TIERS:
        return f"margin_tiers holds {len(bounds)} tiers, at most {MAX_TIERS} are allowed"
    if bounds[0][0] != 0:
        return "the first margin tier must start at lower_bound 0"
    for (lo_a, lev_a), (lo_b, lev_b) in pairwise(bounds):
        if lo_b <= lo_a:
            return "margin tier lower bounds must increase"
        if lev_b > lev_a:
            return "margin tier max_leverage must not increase with notional"
    if bounds[-1][0] > MAX_USD:
        return f"margin tier lower bounds must be at most {format_decimal(MAX_USD, USD_DECIMALS)} USDC"
    if any(not 1 <= lev <= MAX_LEVERAGE for _, lev in bounds):
        return f"max_leverage must be between 1 and {MAX_LEVERAGE}"
    table = build_table(bounds)
    if max(table.den, table.tiers[-1].ded) > STORED_LIMIT:
        return "margin tiers make a table too large to store (use fewer distinct leverages or lower bounds)"
    return None


_SINGLE: dict[int, TierTable] = {}


def single_tier(max_leverage: int) -> TierTable:
    """One tier at `max_leverage`: a position's own cap (vault positions) uses it."""
    table = _SINGLE.get(max_leverage)
    if table is None:
        table = _SINGLE[max_leverage] = build_table([(0, max_leverage)])
    return table
