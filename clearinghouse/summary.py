"""An account in the shape of Hyperliquid's info `clearinghouseState` (hyperliquid-rules.md 9).

Every figure comes from the engine's exact integers; decimals are rendered as strings as the API
does. Signs follow the API: `cumFunding` is funding paid (positive = the account paid).
"""

from __future__ import annotations

from typing import Any

from clearinghouse import margin
from clearinghouse.rules import RULE_SETS, RuleSet
from clearinghouse.state import Account, Market, Position, State
from clearinghouse.units import (
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


def _position(pos: Position, market: Market, cross: margin.Cross, rules: RuleSet) -> dict[str, Any]:
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
    return {"accountValue": _usd(av), "totalNtlPos": _usd(ntl), "totalRawUsd": _usd(raw), "totalMarginUsed": _usd(used)}


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
    return {
        "marginSummary": _margin_summary(av, ntl, raw, used),
        "crossMarginSummary": _margin_summary(cross.account_value, cross.ntl, cross.raw_usd, cross.margin_used),
        "crossMaintenanceMarginUsed": _usd(cross.maintenance),
        "withdrawable": _usd(margin.withdrawable(cross, rules)),
        "assetPositions": positions,
        "time": state.time,
    }
