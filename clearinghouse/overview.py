"""A whole-book overview for people: markets, open interest, the most leveraged accounts.

Reads the state only (pure); the CLI prints the view as tables, `grouped` and `cents` format its
decimal strings for people.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from clearinghouse import lending, margin, portfolio
from clearinghouse.digest import state_digest
from clearinghouse.engine import SYSTEM_ACCOUNTS
from clearinghouse.liquidator import LIQUIDATOR
from clearinghouse.models.registry import MODELS, model_of
from clearinghouse.state import Account, State
from events.units import (
    PX_DECIMALS,
    RATE_DECIMALS,
    SZ_DECIMALS,
    USD_DECIMALS,
    format_decimal,
    parse_decimal,
    round_half_even,
)

RATIO_BP = 10_000  # margin ratios in basis points


class Leveraged(NamedTuple):
    """One account of the leverage ranking; ratios in basis points."""

    margin_ratio: int  # maintenance / account value
    leverage: int  # notional / account value
    account: str
    account_value: int  # cross account value; a risk-model account's equity
    maintenance: int  # cross maintenance; a risk-model account's maintenance


def _traders(state: State) -> Iterator[tuple[str, Account]]:
    """Accounts with an open position, system accounts left out."""
    for name, account in state.accounts.items():
        if name not in SYSTEM_ACCOUNTS and any(p.szi for p in account.positions.values()):
            yield name, account


def most_leveraged(state: State, top: int) -> list[Leveraged]:
    """The `top` accounts with cross positions nearest liquidation: highest margin ratio first,
    then highest leverage, then by name. Portfolio-margin accounts are ranked by PM ratio in the
    lending section instead; a risk-model account is ranked here on its own book's figures
    (equity and maintenance over spot and perps). Shared by `overview` and the service's query API."""
    ranked = []
    for name, account in _traders(state):
        model = model_of(state, name) if state.spot else None
        if model is not None and model.settles_with_pool:
            continue  # margined on the whole portfolio: ranked by PM ratio in the lending section
        cross = margin.cross_figures(account, state.markets)
        value, maintenance = cross.account_value, cross.maintenance
        if model is not None and model.ratio_liquidation:
            value, maintenance = model.book_figures(state, account, state.spot.get(name))
        if cross.ntl:
            ranked.append(Leveraged(_ratio(maintenance, value), _ratio(cross.ntl, value), name, value, maintenance))
    ranked.sort(key=lambda r: (-r.margin_ratio, -r.leverage, r.account))
    return ranked[:top]


def overview(state: State, top: int = 10) -> dict[str, Any]:
    markets = []
    for coin in sorted(state.markets):
        m = state.markets[coin]
        markets.append(
            {
                "coin": coin,
                "mark": format_decimal(m.mark, PX_DECIMALS),
                "open_interest": format_decimal(m.long_size, SZ_DECIMALS),
                "open_interest_usd": format_decimal(margin.notional(m.long_size, m.mark), USD_DECIMALS),
            }
        )
    return {
        "seq": state.next_seq - 1,
        "time": state.time,
        "rules": state.rules,
        "accounts": len(state.accounts),
        "accounts_with_positions": sum(1 for _ in _traders(state)),
        "fees": format_decimal(state.fees, USD_DECIMALS),
        "deposited": format_decimal(state.deposited, USD_DECIMALS),
        "withdrawn": format_decimal(state.withdrawn, USD_DECIMALS),
        "bad_debt": format_decimal(state.bad_debt, USD_DECIMALS),
        "liquidator": _liquidator(state),
        "below_maintenance": len(state.watch),
        "markets": markets,
        "most_leveraged": [
            {
                "account": r.account,
                "margin_ratio": format_decimal(r.margin_ratio, 4),
                "leverage": format_decimal(r.leverage, 4),
                "account_value": format_decimal(r.account_value, USD_DECIMALS),
                "maintenance": format_decimal(r.maintenance, USD_DECIMALS),
            }
            for r in most_leveraged(state, top)
        ],
        **({"lending": _lending(state, top)} if state.pools or state.spot else {}),
        "digest": state_digest(state),
    }


def _rate(value: int) -> str:
    """A 1e-12 ratio shown with 4 decimals (half to even)."""
    return format_decimal(round_half_even(value, 10 ** (RATE_DECIMALS - 4)), 4, 4)


def _lending(state: State, top: int) -> dict[str, Any]:
    """The pools (supplied, lent, utilisation, rates) and the portfolio-margin accounts: how
    many, what they borrowed, the highest PM ratios."""
    pools = []
    for token in sorted(state.pools):
        pool = state.pools[token]
        util, borrow, supply = lending.rates(pool, state.pm_rules)
        pools.append(
            {
                "token": token,
                "supplied": lending.show(lending.supplied(pool), token),
                "lent": lending.show(lending.lent(pool), token),
                "utilisation": _rate(util),
                "borrow_apy": _rate(borrow),
                "supply_apy": _rate(supply),
                "protocol": lending.show(pool.protocol, token),
            }
        )
    ranked, borrowed, count = [], 0, 0
    for name, spot in state.spot.items():
        if not MODELS[spot.mode].settles_with_pool:  # the PM ratio's accounts (not the risk model's)
            continue
        count += 1
        account = state.accounts[name]
        f = portfolio.figures(state, account, spot)
        borrowed += f.borrowed
        if portfolio.at_risk(account, spot):
            ranked.append((_ratio(f.requirement, f.liq_value), name, f))
    ranked.sort(key=lambda r: (-r[0], r[1]))
    return {
        "pools": pools,
        "pm_accounts": count,
        "pm_borrowed": format_decimal(borrowed, USD_DECIMALS),
        "highest_pm_ratio": [
            {
                "account": name,
                "pm_ratio": format_decimal(ratio, 4),
                "borrowed": format_decimal(f.borrowed, USD_DECIMALS),
                "liquidation_value": format_decimal(f.liq_value, USD_DECIMALS),
            }
            for ratio, name, f in ranked[:top]
        ],
    }


def _liquidator(state: State) -> dict[str, Any]:
    account = state.accounts.get(LIQUIDATOR)
    if account is None:
        return {"account_value": "0.0", "positions": 0}
    cross = margin.cross_figures(account, state.markets)
    return {
        "account_value": format_decimal(cross.account_value, USD_DECIMALS),
        "positions": sum(1 for p in account.positions.values() if p.szi),
    }


def _ratio(num: int, den: int) -> int:
    """num / den in basis points; an account with no equity left ranks above every other."""
    return round_half_even(num * RATIO_BP, den) if den > 0 else 10**12


def grouped(text: str) -> str:
    """A decimal string with thousands separators in its whole part: '1234567.5' -> '1,234,567.5'."""
    sign = "-" if text.startswith("-") else ""
    whole, dot, frac = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}{dot}{frac}"


def cents(text: str) -> str:
    """A USDC decimal string for people: to the cent (half to even), thousands separated."""
    return grouped(format_decimal(round_half_even(parse_decimal(text, USD_DECIMALS), 10 ** (USD_DECIMALS - 2)), 2, 2))
