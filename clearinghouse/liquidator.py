"""The liquidator's book: the backstop vault that takes the other side of liquidation fills and
the positions it takes over, and the prices those fills happen at (on the market's tick, so
both sides of each fill book the same cash and conservation holds to the micro-USDC)."""

from __future__ import annotations

from clearinghouse.fills import apply_fill
from clearinghouse.state import Account, MarketState, Position, State
from events.bounds import MAX_PX, OPEN_LIMIT
from events.units import ceil_div

LIQUIDATOR = "@liquidator"  # the backstop vault: takes fills and positions over


def to_tick(px: int, market: MarketState, up: bool) -> int:
    """A price on the market's tick (so fills are exact), rounded up or down, at least one tick."""
    tick = market.tick
    return max(tick, ceil_div(px, tick) * tick if up else px // tick * tick)


def highest_mark(market: MarketState) -> int:
    """The highest mark a `prices` event may give the market (the price bound, and its open
    interest worth at most `OPEN_NOTIONAL_LIMIT`), down to its tick: an impact fill moves the
    mark no further, so that repeated liquidations cannot take it, and every figure valued at
    it, past what the encoding holds."""
    longs = market.long_size
    limit = min(MAX_PX, OPEN_LIMIT // longs) if longs else MAX_PX
    return limit // market.tick * market.tick


def liquidator(state: State) -> Account:
    """The liquidator's account, opened the first time it acts."""
    accounts = state.accounts
    account = accounts.get(LIQUIDATOR)
    if account is None:
        account = accounts[LIQUIDATOR] = Account()
    return account


def fill_between(
    state: State,
    account: Account,
    pos: Position,
    other: Account,
    opos: Position,
    market: MarketState,
    signed: int,
    px: int,
    fee: int,
) -> None:
    """`account` fills `signed` at `px` (paying `fee`), `other` the opposite side."""
    state.funding_pool -= apply_fill(account, pos, market, signed, px, fee)
    state.funding_pool -= apply_fill(other, opos, market, -signed, px, 0)
    state.fees += fee


def fill_with_liquidator(
    state: State, account: Account, pos: Position, market: MarketState, signed: int, px: int, fee: int
) -> None:
    """A fill of `signed` for the account against the liquidator (who takes the other side)."""
    book = liquidator(state)
    lpos = book.positions.get(market.coin)
    if lpos is None:
        lpos = book.positions[market.coin] = Position(leverage=1, cross=True)
    fill_between(state, account, pos, book, lpos, market, signed, px, fee)
