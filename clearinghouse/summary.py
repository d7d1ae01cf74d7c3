"""An account in the shape of Hyperliquid's info `clearinghouseState`.

Every figure comes from the engine's exact integers; decimals are rendered as strings as the API
does. Signs follow the API: `cumFunding` is funding paid (positive = the account paid).
"""

from __future__ import annotations

from typing import Any

from clearinghouse import lending, margin, portfolio
from clearinghouse.models.portfolio import PORTFOLIO
from clearinghouse.models.registry import MODELS
from clearinghouse.models.unified import UNIFIED
from clearinghouse.rules import RULE_SETS, RuleSet
from clearinghouse.spot import USDC
from clearinghouse.state import Account, MarketState, Position, SpotAccount, State
from events.units import (
    NTL_DIV,
    PX_DECIMALS,
    SZ_DECIMALS,
    USD_DECIMALS,
    ceil_div,
    format_decimal,
    round_half_even,
)

RATIO_DECIMALS = 10  # returnOnEquity and margin ratios, as displayed


def _usd(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


def _ratio(num: int, den: int) -> str:
    return format_decimal(round_half_even(num * 10**RATIO_DECIMALS, den), RATIO_DECIMALS) if den else "0.0"


def _position(pos: Position, market: MarketState, cross: margin.Cross, rules: RuleSet) -> dict[str, Any]:
    szi, mark = pos.szi, market.mark
    ntl = margin.notional(szi, mark)
    upnl = margin.value(szi, mark) - (szi * pos.entry_px) // NTL_DIV
    if pos.cross:
        used = ceil_div(ntl, pos.leverage)
        own_mm = margin.table_of(pos, market).maintenance(ntl)
        available = cross.account_value - (cross.maintenance - own_mm)
        leverage: dict[str, Any] = {"type": "cross", "value": pos.leverage}
    else:
        used = margin.iso_margin_used(pos, market)
        available = used
        leverage = {"type": "isolated", "value": pos.leverage, "rawUsd": _usd(margin.iso_raw(pos, market))}
    if rules.roe_on_entry_margin:
        roe = _ratio(upnl * pos.leverage * NTL_DIV, abs(szi) * pos.entry_px)
    else:
        roe = _ratio(upnl, used)
    liq = margin.liquidation_price(pos, market, available, rules)
    pending = margin.pending_funding(pos, market)
    return {
        "type": "oneWay",
        "position": {
            "coin": market.coin,
            "szi": format_decimal(szi, SZ_DECIMALS),
            "entryPx": format_decimal(pos.entry_px, PX_DECIMALS),
            "positionValue": _usd(ntl),
            "unrealizedPnl": _usd(upnl),
            "returnOnEquity": roe,
            "liquidationPx": None if liq is None else format_decimal(liq, PX_DECIMALS),
            "marginUsed": _usd(used),
            "maxLeverage": margin.max_leverage_of(pos, market),
            "leverage": leverage,
            "cumFunding": {
                "allTime": _usd(pos.funding_all - pending),
                "sinceOpen": _usd(pos.funding_open - pending),
                "sinceChange": _usd(pos.funding_change - pending),
            },
        },
    }


def _margin_summary(av: int, ntl: int, raw: int, used: int) -> dict[str, str]:
    return {
        "accountValue": _usd(av),
        "totalNtlPos": _usd(ntl),
        "totalRawUsd": _usd(raw),
        "totalMarginUsed": _usd(used),
    }


def clearinghouse_state(state: State, name: str) -> dict[str, Any]:
    """The account `name` (which must exist) as the info API would return it."""
    account: Account = state.accounts[name]
    rules = RULE_SETS[state.rules]
    markets = state.markets
    cross = margin.cross_figures(account, markets)
    av, ntl, raw, used = cross.account_value, cross.ntl, cross.raw_usd, cross.margin_used
    positions = []
    for coin in sorted(account.positions):
        pos = account.positions[coin]
        if not pos.szi:
            continue
        market = markets[coin]
        positions.append(_position(pos, market, cross, rules))
        if not pos.cross:
            iso_used = margin.iso_margin_used(pos, market)
            av += iso_used
            used += iso_used
            raw += margin.iso_raw(pos, market)
            ntl += margin.notional(pos.szi, market.mark)
    out = {
        "marginSummary": _margin_summary(av, ntl, raw, used),
        "crossMarginSummary": _margin_summary(cross.account_value, cross.ntl, cross.raw_usd, cross.margin_used),
        "crossMaintenanceMarginUsed": _usd(cross.maintenance),
        "withdrawable": _usd(margin.withdrawable(cross, rules)),
        "assetPositions": positions,
        "time": state.time,
    }
    spot = state.spot.get(name)
    if spot is not None:
        out["spot"] = _spot(state, account, spot)
    return out


def _amount(amount: int, token: str) -> str:
    return format_decimal(amount, USD_DECIMALS if token == USDC else 8)


def _spot(state: State, account: Account, spot: SpotAccount) -> dict[str, Any]:
    """The spot side: mode, balances, supplied and borrowed amounts, and the PM figures
    (health factor = sum(balance * px * LTV) / borrowed, net balance = equity - borrowed, PM ratio)."""
    f = portfolio.figures(state, account, spot)
    out: dict[str, Any] = {
        "mode": spot.mode,
        "balances": {t: _amount(a, t) for t, a in sorted(spot.balances.items())},
        "supplied": {t: _amount(lending.claim(state.pools[t], s), t) for t, s in sorted(spot.supplied.items())},
        "borrowed": {t: _amount(lending.owed(state.pools[t], s), t) for t, s in sorted(spot.borrowed.items())},
        "borrowedValue": _usd(f.borrowed),
        "healthFactor": _ratio(f.borrow_limit, f.borrowed) if f.borrowed else None,
        "netBalance": _usd(f.net),
    }
    model = MODELS[spot.mode]  # the fields Hyperliquid shows for its account modes
    if model is UNIFIED:  # crossMM / AV_cross: every perp here is USDC-margined
        cross = margin.cross_figures(account, state.markets)
        out["unifiedRatio"] = _ratio(cross.maintenance, cross.account_value) if cross.account_value > 0 else None
    if model is PORTFOLIO:
        out["pmRatio"] = _ratio(f.requirement, f.liq_value) if f.liq_value > 0 else None
        out["pmRequirement"] = _usd(f.requirement)
        out["pmLiquidationValue"] = _usd(f.liq_value)
    return out
