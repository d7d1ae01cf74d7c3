"""The margin calculator (docs/risk-margin.md, "The margin calculator"): a book
(`events.book.MarginBook`) held as one account under a margin model, and that model's answer.

The state is built with the core's own code: the book's markets, tokens, prices and risk
parameters go through an `Engine` as `market`, `token`, `prices` and `rules` events (so they are
checked as any log's would be); the account is then booked directly, as fills, deposits and
lending would have left it: the USDC in the perp ledger (where every model can margin it), the
cash leg of each position (`rawUsd -= szi * entry_px`), tokens in the spot balance, supplied and
borrowed amounts as pool shares. Each model answers through the `MarginModel` protocol
(`requirement`, `breakdown`); a model that cannot hold the book says why instead."""

from __future__ import annotations

from typing import Any, NamedTuple

from clearinghouse import lending, margin
from clearinghouse.engine import Engine
from clearinghouse.models.registry import MODELS
from clearinghouse.portfolio import pool_of
from clearinghouse.spot import USDC, spot_of
from clearinghouse.state import Account, Position, SpotAccount, State
from events import schema as ev
from events.book import BookPosition, MarginBook
from events.schema import RiskParams
from events.units import NTL_DIV, TOKEN_DECIMALS, USD_DECIMALS, ceil_div

ACCOUNT = "book"
LENDER = "@lender"  # supplies what the book borrows
USDC_STEP = 10 ** (TOKEN_DECIMALS - USD_DECIMALS)  # a book's USDC amount (1e-8) per micro-USDC

# Markets a book does not list: the rulebook's mainnet tables (hyperliquid-rules.md 2), with
# the sz_decimals of those markets; any other coin one tier at a position's own max_leverage,
# else at 20x, with sz_decimals 2.
DEFAULT_MARKETS: dict[str, tuple[int, list[tuple[int, int]]]] = {
    "BTC": (5, [(0, 40), (150_000_000 * 10**USD_DECIMALS, 20)]),
    "ETH": (4, [(0, 25), (100_000_000 * 10**USD_DECIMALS, 15)]),
    "SOL": (2, [(0, 20), (70_000_000 * 10**USD_DECIMALS, 10)]),
}
DEFAULT_LEVERAGE = 20
RATIO_DECIMALS = 6
RATIO = 10**RATIO_DECIMALS


class BookError(ValueError):
    """A book that cannot be read as holdings (a price missing, USDC finer than 6 decimals, a
    market or parameter the engine refuses); the message says which."""


class Answer(NamedTuple):
    """A model's figures for the book (micro-USDC): `ratio` is maintenance / equity in 1e-6,
    rounded up (None with no equity), liquidatable above 1 (a unified book at 1); `breakdown`
    the model's own terms, as decimal strings."""

    equity: int
    initial: int
    maintenance: int
    ratio: int | None
    breakdown: dict[str, Any]


class CannotHold(NamedTuple):
    reason: str


def _markets(book: MarginBook) -> list[ev.Market]:
    coins = sorted({p.coin for p in book.positions} | set(book.markets or {}))
    out = []
    for coin in coins:
        given = (book.markets or {}).get(coin)
        if given is not None:
            out.append(ev.Market(coin=coin, sz_decimals=given.sz_decimals, margin_tiers=given.margin_tiers))
            continue
        caps = [p.max_leverage for p in book.positions if p.coin == coin and p.max_leverage]
        decimals, tiers = DEFAULT_MARKETS.get(coin, (2, [(0, caps[0] if caps else DEFAULT_LEVERAGE)]))
        out.append(ev.Market(coin=coin, sz_decimals=decimals, margin_tiers=[ev.MarginTier(b, m) for b, m in tiers]))
    return out


def _prices(book: MarginBook, listed: set[str]) -> ev.Prices:
    points = {}
    for coin in sorted(book.prices.keys() & listed):  # a price of a coin the book does not hold is not needed
        p = book.prices[coin]
        mark = p.mark if p.mark is not None else p.oracle
        if mark is None:
            raise BookError(f"prices of {coin} need a mark or an oracle")
        points[coin] = ev.PricePoint(mark, p.oracle)
    for coin in sorted(listed):
        if coin not in points:
            raise BookError(f"no price for {coin}: give it in prices")
    return ev.Prices(prices=points)


def _apply(engine: Engine, event: Any) -> None:
    for d in engine.apply(event):
        if isinstance(d, ev.Rejected):
            raise BookError(d.reason)


def _usdc(amount: int, what: str) -> int:
    if amount % USDC_STEP:
        raise BookError(f"{what} of USDC has more than 6 decimals")
    return amount // USDC_STEP


def _position(p: BookPosition, state: State) -> Position:
    market = state.markets[p.coin]
    leverage = p.leverage or min(DEFAULT_LEVERAGE, market.table.max_leverage)
    if not 1 <= leverage <= (p.max_leverage or market.table.max_leverage):
        raise BookError(f"leverage {leverage} of {p.coin} is outside 1..its maximum")
    if p.cross and market.only_isolated:
        raise BookError(f'{p.coin} is isolated-only: its position needs "cross": false')
    pos = Position(leverage=leverage, cross=p.cross, szi=p.szi, entry_px=p.entry_px, max_leverage=p.max_leverage or 0)
    if not p.cross:
        ntl = abs(p.szi) * p.entry_px // NTL_DIV
        held = p.margin if p.margin is not None else ceil_div(ntl, leverage)
        pos.iso_raw = held - margin.value(p.szi, p.entry_px)
    return pos


def book_state(book: MarginBook, mode: str, risk: RiskParams | None = None) -> State:
    """The book as account `ACCOUNT` in `mode` (a registered model's name)."""
    engine = Engine()
    markets = _markets(book)
    tokens = sorted((set(book.balances) | set(book.supplied) | set(book.borrowed)) - {USDC})
    for event in markets:
        _apply(engine, event)
    for token in tokens:
        _apply(engine, ev.Token(token=token, decimals=TOKEN_DECIMALS))
    _apply(engine, _prices(book, {m.coin for m in markets} | set(tokens)))
    if risk is not None:
        _apply(engine, ev.Rules(risk=risk))
    state = engine.state
    if len({p.coin for p in book.positions}) != len(book.positions):
        raise BookError("a coin has more than one position: give one per coin")
    account = state.accounts[ACCOUNT] = Account()
    spot = spot_of(state, ACCOUNT)
    spot.mode = mode
    for token in sorted(book.balances):
        amount = book.balances[token]
        if token == USDC:
            account.raw_usd += _usdc(amount, "a balance")
        elif amount < 0:
            raise BookError(f"a balance of {token} is negative: give a debt in borrowed")
        elif amount:
            spot.balances[token] = amount
    for p in book.positions:
        pos = account.positions[p.coin] = _position(p, state)
        if p.cross:
            account.raw_usd -= margin.value(p.szi, p.entry_px)
        else:
            account.raw_usd -= pos.iso_raw + margin.value(p.szi, p.entry_px)  # the isolated margin came from it
    lender = state.spot.setdefault(LENDER, SpotAccount())
    for kind, amounts in (("supplied", book.supplied), ("borrowed", book.borrowed)):
        for token in sorted(amounts):
            amount = _usdc(amounts[token], f"an amount {kind}") if token == USDC else amounts[token]
            if amount < 0:
                raise BookError(f"{kind} {token} is negative")
            if not amount:
                continue
            pool = pool_of(state, token)
            if kind == "supplied":
                lending.mint_supply(pool, spot, token, amount)
            else:
                lending.mint_supply(pool, lender, token, amount)
                lending.mint_borrow(pool, spot, token, amount)
    return state


def answer(book: MarginBook, mode: str, risk: RiskParams | None = None) -> Answer | CannotHold:
    """The model's figures for the book, or why the model cannot hold it."""
    model = MODELS[mode]
    if any(book.borrowed.values()) and not model.may_borrow:
        return CannotHold(f"a {mode} account cannot borrow")
    state = book_state(book, mode, risk)
    account, spot = state.accounts[ACCOUNT], state.spot[ACCOUNT]
    req = model.requirement(state, account, spot)
    ratio = ceil_div(req.maintenance * RATIO, req.equity) if req.equity > 0 else None
    return Answer(req.equity, req.initial, req.maintenance, ratio, model.breakdown(state, account, spot))
