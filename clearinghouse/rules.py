"""Named rule sets: the formulas that changed over Hyperliquid's history, as data.

A `rules` event selects one by name, so a replay of 2023 uses 2023's formulas
(docs/rules.md 2 and 4). Rates are in the 1e-12 scale of `units.RATE`.
"""

from __future__ import annotations

import msgspec

from events.bounds import MAX_APY, MAX_CAP, MAX_USD, MIN_LIQ_RATIO, MIN_PARTIAL_STEP
from events.schema import Caps, PmParams
from events.units import RATE, RATE_DECIMALS, USD_DECIMALS, format_decimal


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


# ---- spot, lending and portfolio margin (docs/portfolio-margin.md) ------------------------------


class PmRules(msgspec.Struct, frozen=True):
    """Every parameter of spot collateral, the lending pool and portfolio margin, as data: the
    state holds the current values (so a snapshot replays with them) and a `rules` event
    changes any of them. Ratios are in the 1e-12 scale of `units.RATE`, USDC amounts in micro-USDC.

    Defaults are the current era (docs/portfolio-margin.md; since 2026-08-19): HYPE LTV 0.65, BTC
    0.5, stablecoins 0. A token listed in `ltv` is PM-eligible collateral; one with a borrow cap is
    borrowable; one with a supply cap has a pool."""

    ltv: dict[str, int] = msgspec.field(
        default_factory=lambda: {"BTC": RATE // 2, "HYPE": RATE * 65 // 100, "USDC": 0, "USDT": 0}
    )
    caps: dict[str, Caps] = msgspec.field(
        default_factory=lambda: {
            "BTC": Caps(supply=2_000, user_supply=200),
            "HYPE": Caps(supply=10_000_000, user_supply=1_000_000),
            "USDC": Caps(supply=1_000_000_000, borrow=500_000_000, user_supply=250_000_000, user_borrow=50_000_000),
            "USDT": Caps(supply=50_000_000, borrow=10_000_000, user_supply=5_000_000, user_borrow=1_000_000),
        }
    )
    base_apy: int = RATE * 5 // 100  # borrow APY up to the kink
    kink: int = RATE * 8 // 10  # utilisation where the slope starts
    slope: int = RATE * 475 // 100  # APY per unit of utilisation above the kink (100% at U = 1)
    supply_share: int = RATE * 9 // 10  # suppliers' share of the interest; the rest is the protocol's
    liq_ratio: int = RATE * 95 // 100  # PM ratio above which the account is liquidated
    min_requirement: int = 20_000_000  # 20 USDC in every PM requirement
    partial_step: int = RATE // 5  # a partial borrow liquidation takes 20% of the collateral per step
    threshold_quantum: int = RATE // 1000  # borrow thresholds' factors round down to 0.001
    min_volume: int = 5_000_000_000_000  # PM eligibility: weighted volume above 5M USDC...
    min_value: int = 10_000_000_000  # ...or account value above 10k USDC...
    max_value: int = 25_000_000_000_000  # ...and account value below 25M USDC


def patched(
    rules: PmRules, ltv: dict[str, int] | None, caps: dict[str, Caps] | None, patch: PmParams | None
) -> PmRules:
    """`rules` with the given LTVs and caps replaced token by token and the scalars of a `rules`
    event's `pm` (those not None) set: `PmParams` names `PmRules`' scalar fields."""
    changes: dict[str, object] = {}
    if ltv:
        changes["ltv"] = {**rules.ltv, **ltv}
    if caps:
        changes["caps"] = {**rules.caps, **caps}
    if patch is not None:
        changes.update({k: v for k, v in msgspec.structs.asdict(patch).items() if v is not None})
    return msgspec.structs.replace(rules, **changes) if changes else rules


def pm_rules_error(rules: PmRules) -> str | None:
    """Why a parameter set cannot be used, or None. The ranges (docs/wire-format.md, "Rule
    parameters and event time") keep every division's divisor positive, the borrow liquidation's
    steps at most 100, and every figure the rules multiply within the stored bounds."""
    for token in sorted(rules.ltv):
        if not 0 <= rules.ltv[token] < RATE:
            return f"LTV of {token} must be at least 0 and below 1"
    for token in sorted(rules.caps):
        c = rules.caps[token]
        if min(c.supply, c.borrow, c.user_supply, c.user_borrow) < 0:
            return f"caps of {token} must not be negative"
        if max(c.supply, c.borrow, c.user_supply, c.user_borrow) > MAX_CAP:
            return f"caps of {token} must be at most {MAX_CAP} tokens"
    if not 0 < rules.kink <= RATE or not 0 <= rules.supply_share <= RATE:
        return "kink must be in (0, 1] and supply_share in [0, 1]"
    if not (0 <= rules.base_apy <= MAX_APY and 0 <= rules.slope <= MAX_APY):
        return f"base_apy and slope must be between 0 and {MAX_APY // RATE}"
    if not MIN_LIQ_RATIO <= rules.liq_ratio <= RATE:
        return f"liq_ratio must be between {format_decimal(MIN_LIQ_RATIO, RATE_DECIMALS)} and 1"
    if not (MIN_PARTIAL_STEP <= rules.partial_step <= RATE and 0 < rules.threshold_quantum <= RATE):
        step = format_decimal(MIN_PARTIAL_STEP, RATE_DECIMALS)
        return f"partial_step must be in [{step}, 1] and threshold_quantum in (0, 1]"
    usd = {
        "min_requirement": rules.min_requirement,
        "min_volume": rules.min_volume,
        "min_value": rules.min_value,
        "max_value": rules.max_value,
    }
    for name, amount in usd.items():
        if not 0 <= amount <= MAX_USD:
            return f"{name} must be between 0 and {format_decimal(MAX_USD, USD_DECIMALS)} USDC"
    return None
