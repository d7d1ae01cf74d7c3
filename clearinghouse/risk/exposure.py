"""An account's exposures per underlying, read from the state: what the scan and the charges
revalue. A token counts at its own oracle (`spot.price`), so an alias (UBTC of BTC) moves
with its own price; for the underlying's own token that price is the underlying's oracle."""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse import margin, portfolio
from clearinghouse.risk.params import RiskRules
from clearinghouse.spot import USDC, price, value
from clearinghouse.state import Account, SpotAccount, State

LOAN_TOKENS = ("USDC", "USDT")  # borrows that pay the loan charge


class Exposure(NamedTuple):
    """One underlying: `spot` net tokens (balance + supplied - borrowed, 1e-8), `spot_value`
    those at their oracles and `perp_value` the cross `szi * mark`, `perp_oracle` `szi * oracle`
    (both 1e-16 USDC: size times price, exact), `perp` the cross `szi`, `oracle` the
    underlying's oracle (1e-8)."""

    spot: int = 0
    spot_value: int = 0
    perp: int = 0
    perp_value: int = 0
    perp_oracle: int = 0
    oracle: int = 0


class Book(NamedTuple):
    """What the model margins: `equity` (micro-USDC), the exposures by underlying (sorted),
    and `loans`, the borrowed USDC and USDT (micro-USDC, rounded up)."""

    equity: int
    units: dict[str, Exposure]
    loans: int


def book_of(state: State, account: Account, spot: SpotAccount | None, rules: RiskRules) -> Book:
    """The account's cross book and spot side: equity = the cross account value (its USDC
    ledger with the cross positions' pnl and unsettled funding) + spot USDC and USDC supplied
    + every other token held or supplied at its oracle (rounded down) - every borrow's value
    (rounded up). Isolated positions stay outside (they keep their own margin)."""
    markets = state.markets
    equity = margin.cross_figures(account, markets).account_value
    units: dict[str, Exposure] = {}
    loans = 0

    def put(u: str, spot_tokens: int, spot_value: int, szi: int, at_mark: int, at_oracle: int) -> None:
        e = units.get(u) or Exposure(oracle=price(state, u))
        units[u] = Exposure(
            e.spot + spot_tokens,
            e.spot_value + spot_value,
            e.perp + szi,
            e.perp_value + at_mark,
            e.perp_oracle + at_oracle,
            e.oracle,
        )

    for coin, pos in account.positions.items():
        if pos.szi and pos.cross:
            market = markets[coin]
            put(rules.underlying(coin), 0, 0, pos.szi, pos.szi * market.mark, pos.szi * market.oracle)
    if spot is not None:
        for token in sorted(set(spot.balances) | set(spot.supplied) | set(spot.borrowed)):
            held = portfolio.holdings(state, spot, token)
            owed = portfolio.debt(state, spot, token)
            if token == USDC:
                equity += held - owed
                loans += owed
                continue
            px = price(state, token)
            equity += value(held, px) - portfolio.owed_value(state, token, owed)
            if token in LOAN_TOKENS:
                loans += portfolio.owed_value(state, token, owed)
            if held != owed:
                put(rules.underlying(token), held - owed, (held - owed) * px, 0, 0, 0)
    return Book(equity, {u: units[u] for u in sorted(units)}, loans)


def with_fill(book: Book, rules: RiskRules, coin: str, szi: int, mark: int, oracle: int, cash: int) -> Book:
    """The book after a cross fill of `szi` (signed) of `coin` at `mark` / `oracle`, `cash`
    (micro-USDC) being what the fill changed equity by (pnl against the mark less the fee)."""
    u = rules.underlying(coin)
    e = book.units.get(u) or Exposure(oracle=oracle)
    units = dict(book.units)
    units[u] = e._replace(
        perp=e.perp + szi, perp_value=e.perp_value + szi * mark, perp_oracle=e.perp_oracle + szi * oracle
    )
    return Book(book.equity + cash, {k: units[k] for k in sorted(units)}, book.loans)


def with_tokens(book: Book, rules: RiskRules, token: str, amount: int, px: int, cash: int) -> Book:
    """The book after `amount` (signed, 1e-8) of `token` at `px` came in and `cash` USDC
    (micro-USDC, signed) went out; the equity moves by the tokens' value less the cash."""
    u = rules.underlying(token)
    e = book.units.get(u) or Exposure(oracle=px)
    units = dict(book.units)
    units[u] = e._replace(spot=e.spot + amount, spot_value=e.spot_value + amount * px)
    return Book(book.equity + value(amount, px) - cash, {k: units[k] for k in sorted(units)}, book.loans)
