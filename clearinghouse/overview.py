"""A whole-book overview for people: markets, open interest, the most leveraged accounts.

Reads the state only (pure); `render` turns it into the text table the CLI prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from clearinghouse import margin
from clearinghouse.digest import state_digest
from clearinghouse.engine import SYSTEM_ACCOUNTS
from clearinghouse.liquidation import LIQUIDATOR
from clearinghouse.state import Account, State
from clearinghouse.units import PX_DECIMALS, SZ_DECIMALS, USD_DECIMALS, format_decimal, round_half_even

RATIO_BP = 10_000  # margin ratios in basis points


class Leveraged(NamedTuple):
    """One account of the leverage ranking; ratios in basis points."""

    margin_ratio: int  # cross maintenance / cross account value
    leverage: int  # cross notional / cross account value
    account: str
    cross: margin.Cross


def _traders(state: State) -> Iterator[tuple[str, Account]]:
    """Accounts with an open position, system accounts left out."""
    for name, account in state.accounts.items():
        if name not in SYSTEM_ACCOUNTS and any(p.szi for p in account.positions.values()):
            yield name, account


def most_leveraged(state: State, top: int) -> list[Leveraged]:
    """The `top` accounts with cross positions nearest liquidation: highest margin ratio first,
    then highest leverage, then by name. Shared by `overview` and the service's query API."""
    ranked = []
    for name, account in _traders(state):
        cross = margin.cross_figures(account, state.markets)
        if cross.ntl:
            ranked.append(Leveraged(_ratio(cross.maintenance, cross.account_value), _ratio(cross.ntl, cross.account_value), name, cross))
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
                "account": name,
                "margin_ratio": format_decimal(mr, 4),
                "leverage": format_decimal(lev, 4),
                "account_value": format_decimal(cross.account_value, USD_DECIMALS),
                "maintenance": format_decimal(cross.maintenance, USD_DECIMALS),
            }
            for mr, lev, name, cross in most_leveraged(state, top)
        ],
        "digest": state_digest(state),
    }


def _liquidator(state: State) -> dict[str, Any]:
    account = state.accounts.get(LIQUIDATOR)
    if account is None:
        return {"account_value": "0.0", "positions": 0}
    cross = margin.cross_figures(account, state.markets)
    return {"account_value": format_decimal(cross.account_value, USD_DECIMALS), "positions": sum(1 for p in account.positions.values() if p.szi)}


def _ratio(num: int, den: int) -> int:
    """num / den in basis points; an account with no equity left ranks above every other."""
    return round_half_even(num * RATIO_BP, den) if den > 0 else 10**12


def render(view: dict[str, Any]) -> str:
    lines = [
        f"seq {view['seq']}  rules {view['rules']}  accounts {view['accounts']} ({view['accounts_with_positions']} with positions)",
        f"deposited {view['deposited']}  withdrawn {view['withdrawn']}  fees {view['fees']}",
        f"liquidator value {view['liquidator']['account_value']} ({view['liquidator']['positions']} positions)  bad debt {view['bad_debt']}  accounts below maintenance {view['below_maintenance']}",
        "",
        f"{'market':<8}{'mark':>16}{'open interest':>20}{'OI (USDC)':>20}",
    ]
    for m in view["markets"]:
        lines.append(f"{m['coin']:<8}{m['mark']:>16}{m['open_interest']:>20}{m['open_interest_usd']:>20}")
    width = max([len(a["account"]) for a in view["most_leveraged"]] + [8]) + 2
    lines += ["", "most leveraged (margin ratio = maintenance / account value):", f"{'account':<{width}}{'margin ratio':>14}{'leverage':>12}{'account value':>18}{'maintenance':>16}"]
    for a in view["most_leveraged"]:
        lines.append(f"{a['account']:<{width}}{a['margin_ratio']:>14}{a['leverage']:>12}{a['account_value']:>18}{a['maintenance']:>16}")
    lines += ["", f"state digest {view['digest']}"]
    return "\n".join(lines)
