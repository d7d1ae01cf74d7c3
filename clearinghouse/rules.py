"""Named rule sets: the formulas that changed over Hyperliquid's history, as data.

A `rules` event selects one by name, so a replay of 2023 uses 2023's formulas
(hyperliquid-rules.md 2 and 4). Rates are in the 1e-12 scale of `units.RATE`.
"""

from __future__ import annotations

import msgspec

from clearinghouse.units import RATE


class RuleSet(msgspec.Struct, frozen=True):
    name: str
    withdraw_floor_pct: int  # removals must leave max(IM, pct% of cross notional); 0 = no floor
    liq_px_leverage_factor: bool  # liquidation price divides by (1 - l * side)
    roe_on_entry_margin: bool  # ROE over |szi| * entry / leverage (else over marginUsed)
    funding_interest: int  # the 8h interest rate in the premium formula
    funding_clamp: int  # c in F = P + clamp(interest - P, -c, c)
    funding_cap_hourly: int  # |hourly rate| never exceeds this
    default_leverage: int = 20  # a new position's leverage when none was set (capped by the market)


RULE_SETS: dict[str, RuleSet] = {
    "hl-current": RuleSet(
        name="hl-current",
        withdraw_floor_pct=10,
        liq_px_leverage_factor=True,
        roe_on_entry_margin=True,
        funding_interest=RATE // 10_000,  # 0.0001
        funding_clamp=RATE * 5 // 10_000,  # 0.0005
        funding_cap_hourly=RATE * 4 // 100,  # 4% per hour
    ),
    "hl-2023": RuleSet(
        name="hl-2023",
        withdraw_floor_pct=0,
        liq_px_leverage_factor=False,
        roe_on_entry_margin=False,
        funding_interest=RATE // 10_000,
        funding_clamp=RATE * 3 // 10_000,  # 0.0003, the eight-hour era
        funding_cap_hourly=RATE * 4 // 100,
    ),
}

DEFAULT_RULES = "hl-current"


def hourly_rate_from_premium(rules: RuleSet, premium: int) -> int:
    """F_8h = P + clamp(interest - P, -c, c); hourly = F_8h / 8 (toward zero), capped."""
    c = rules.funding_clamp
    f8 = premium + max(-c, min(c, rules.funding_interest - premium))
    hourly = abs(f8) // 8 * (1 if f8 >= 0 else -1)
    return cap_hourly(rules, hourly)


def cap_hourly(rules: RuleSet, hourly: int) -> int:
    cap = rules.funding_cap_hourly
    return max(-cap, min(cap, hourly))
