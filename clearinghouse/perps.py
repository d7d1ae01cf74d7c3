"""Perp trades, funding and prices (docs/rules.md 1-4): the handlers of `trade`, `funding` and
`prices` events, with the checks that keep every stored figure within its bound.

A trade is a fact: it is booked whatever it does to either side's margin (the liquidation checks
after the event act on that); it is refused only when it is malformed, would take a stored
figure past its bound, or a side's margin model will not finance it (the risk model: a fill
that raises its initial requirement above its equity, docs/risk-margin.md).
"""

from __future__ import annotations

from clearinghouse.context import Context, positive, shown
from clearinghouse.errors import Reject
from clearinghouse.fills import apply_fill, saturated, settle_funding
from clearinghouse.rules import cap_hourly, hourly_rate_from_premium
from clearinghouse.state import Account, MarketState, Position
from events import schema as ev
from events.bounds import (
    FIGURE_LIMIT,
    FUNDING_EXPOSURE_LIMIT,
    FUNDING_INDEX_LIMIT,
    MAX_NOTIONAL,
    OPEN_LIMIT,
    OPEN_NOTIONAL_LIMIT,
)
from events.units import FUNDING_QUANTUM, NTL_DIV, PX_DECIMALS, SZ_DECIMALS, format_decimal, round_half_even

LOW = -FIGURE_LIMIT


def trade(ctx: Context, e: ev.Trade) -> None:
    state = ctx.state
    market = state.markets.get(e.coin) or ctx.market_of(e.coin)
    sz, px = e.sz, e.px
    if sz <= 0 or px <= 0 or sz % market.lot or px % market.tick or e.buyer == e.seller:
        bad_trade(e, market)
    accounts = state.accounts
    buyer = accounts.get(e.buyer) or ctx.account(e.buyer)
    seller = accounts.get(e.seller) or ctx.account(e.seller)
    coin = e.coin
    bpos, spos = buyer.positions.get(coin), seller.positions.get(coin)
    ntl = sz * px // NTL_DIV
    open_size = market.long_size + sz
    if (
        ntl > MAX_NOTIONAL
        or open_size > FIGURE_LIMIT
        or open_size * market.mark > OPEN_LIMIT
        or not LOW <= buyer.raw_usd <= FIGURE_LIMIT
        or not LOW <= seller.raw_usd <= FIGURE_LIMIT
        or not LOW <= state.fees <= FIGURE_LIMIT
        or (bpos and bpos.iso_raw and not LOW <= bpos.iso_raw <= FIGURE_LIMIT)
        or (spos and spos.iso_raw and not LOW <= spos.iso_raw <= FIGURE_LIMIT)
    ):
        raise Reject(too_large(ctx, ntl, market, ((e.buyer, buyer, bpos), (e.seller, seller, spos))))
    banded = ctx.models.banded
    if banded and (e.buyer in banded or e.seller in banded):
        check_fills(ctx, e, buyer, seller)
    if e.liquidation is not None:
        liquidation_fill(ctx, e)
    index = market.funding_index
    if index and open_size * (index if index > 0 else -index) > FUNDING_EXPOSURE_LIMIT:
        rebase_funding(ctx, market)
    if bpos is None:
        bpos = buyer.positions[coin] = new_position(ctx, market)
        ctx.holders.opened(e.buyer, coin)
    if spos is None:
        spos = seller.positions[coin] = new_position(ctx, market)
        ctx.holders.opened(e.seller, coin)
    funding = apply_fill(buyer, bpos, market, sz, px, e.buyer_fee)
    funding += apply_fill(seller, spos, market, -sz, px, e.seller_fee)
    state.funding_pool -= funding
    state.fees += e.buyer_fee + e.seller_fee
    buyer.volume += ntl
    seller.volume += ntl
    if buyer.volume > FIGURE_LIMIT or seller.volume > FIGURE_LIMIT:  # volume only informs: it saturates
        buyer.volume, seller.volume = saturated(buyer.volume), saturated(seller.volume)
    if banded:
        if e.buyer in banded:
            ctx.traded(coin, e.buyer)
        if e.seller in banded:
            ctx.traded(coin, e.seller)


def check_fills(ctx: Context, e: ev.Trade, buyer: Account, seller: Account) -> None:
    """Each side's model may refuse to finance its fill (the risk model: a fill raising the
    initial requirement above equity; its band sizing, if the checks keep one, spares it most
    of the book)."""
    state, banded = ctx.state, ctx.models.banded
    for name, account, szi, fee in ((e.buyer, buyer, e.sz, e.buyer_fee), (e.seller, seller, -e.sz, e.seller_fee)):
        model = banded.get(name)
        if model is not None:
            try:
                model.check_fill(state, account, state.spot.get(name), e.coin, szi, e.px, fee, ctx.checks.sizing(name))
            except Reject as exc:
                raise Reject(f"{name!r}: {exc}") from None


def liquidation_fill(ctx: Context, e: ev.Trade) -> None:
    """A fill of an external liquidation order: what it fills is no longer on order."""
    name = e.liquidation.account  # type: ignore[union-attr]
    if name not in (e.buyer, e.seller):
        raise Reject(f"liquidated account {name!r} is neither buyer nor seller")
    orders = ctx.state.liq_orders.get(name)
    if orders is not None and e.coin in orders:
        orders[e.coin] -= e.sz
        if orders[e.coin] <= 0:
            del orders[e.coin]
        if not orders:
            del ctx.state.liq_orders[name]


def too_large(
    ctx: Context, ntl: int, market: MarketState, sides: tuple[tuple[str, Account, Position | None], ...]
) -> str:
    """Says which bound a trade would break (`trade`'s combined check)."""
    if ntl > MAX_NOTIONAL:
        return f"trade notional {shown(ntl)} is above {shown(MAX_NOTIONAL)} USDC"
    (buyer, account, pos), (seller, other, opos) = sides
    if abs(ctx.state.fees) > FIGURE_LIMIT:
        return "the fee account is at its stored bound"
    for name, ledger, side in ((buyer, account, pos), (seller, other, opos)):
        if abs(ledger.raw_usd) > FIGURE_LIMIT or (side is not None and abs(side.iso_raw) > FIGURE_LIMIT):
            return f"the ledger of {name!r} is at its stored bound"
    worth = shown(OPEN_NOTIONAL_LIMIT)
    return f"open interest of {market.coin} would pass {worth} USDC at the mark, or its size bound"


def bad_trade(e: ev.Trade, market: MarketState) -> None:
    """Says why a trade failed the hot path's combined check."""
    positive(e.sz, "sz")
    positive(e.px, "px")
    if e.sz % market.lot:
        raise Reject(f"sz {format_decimal(e.sz, SZ_DECIMALS)} is not a multiple of the lot of {e.coin}")
    if e.px % market.tick:
        raise Reject(
            f"px {format_decimal(e.px, PX_DECIMALS)} has more decimals than {e.coin} allows (6 - sz_decimals)"
        )
    raise Reject("buyer and seller are the same account")


def new_position(
    ctx: Context, market: MarketState, leverage: int | None = None, cross: bool | None = None
) -> Position:
    lev = leverage if leverage is not None else min(ctx.rules.default_leverage, market.table.max_leverage)
    return Position(leverage=lev, cross=(not market.only_isolated) if cross is None else cross)


def funding(ctx: Context, e: ev.Funding) -> None:
    market = ctx.market_of(e.coin)
    if (e.rate is None) == (e.premium is None):
        raise Reject("funding needs exactly one of rate or premium")
    if market.oracle <= 0:
        raise Reject(f"no oracle price for {e.coin} yet")
    if e.rate is not None:
        hourly = cap_hourly(ctx.rules, e.rate)
    else:
        hourly = hourly_rate_from_premium(ctx.rules, e.premium)  # type: ignore[arg-type]
    # One hour's funding per coin, quantised once per market (half to even) so that every
    # position pays exactly `szi * per_coin`, whenever it settles.
    # Past its bounds the index is rebased to 0 first; one step alone is within both (at most
    # MAX_PX * 4% = 4e18, and open interest * step <= 400 * OPEN_NOTIONAL_LIMIT * NTL_DIV).
    step = round_half_even(market.oracle * hourly, FUNDING_QUANTUM)
    index = market.funding_index + step
    if abs(index) > FUNDING_INDEX_LIMIT or market.long_size * abs(index) > FUNDING_EXPOSURE_LIMIT:
        rebase_funding(ctx, market)
        index = step
    market.funding_index = index


def rebase_funding(ctx: Context, market: MarketState) -> None:
    """Settles every position of the market at its funding index (as a fill would), then
    moves the index and every position's to 0: payments depend only on differences, so
    nothing owed changes, and the index and what any position can owe stay bounded."""
    state, coin = ctx.state, market.coin
    for account in state.accounts.values():
        pos = account.positions.get(coin)
        if pos is not None:
            if pos.szi:
                state.funding_pool -= settle_funding(account, pos, market)
            pos.funding_index = 0
    market.funding_index = 0
    if ctx.liquidating:
        ctx.recheck |= ctx.checks.holders(coin)


def prices(ctx: Context, e: ev.Prices) -> None:
    markets = ctx.state.markets
    prices = e.prices
    if not prices.keys() <= markets.keys():
        token_prices(ctx, e)
        return
    token_net = ctx.state.token_net
    for coin, point in prices.items():  # MAX_PX is the codec's: here what the state decides
        if (
            point.mark <= 0
            or (point.oracle is not None and point.oracle <= 0)
            or markets[coin].long_size * point.mark > OPEN_LIMIT
        ):
            raise Reject(price_error(ctx, coin, point) or "")
        if token_net and coin in token_net:  # a token of the same name is priced at this oracle
            ctx.token_worth(coin, 0, point.mark if point.oracle is None else point.oracle)
    for coin, point in prices.items():
        market = markets[coin]
        market.prev_mark = market.mark
        market.mark = mark = point.mark
        market.oracle = mark if point.oracle is None else point.oracle


def price_error(ctx: Context, coin: str, point: ev.PricePoint) -> str | None:
    """Why a price point is refused (`prices` checks the same inline), or None."""
    if point.mark <= 0 or (point.oracle is not None and point.oracle <= 0):
        return f"prices of {coin} must be positive"
    market = ctx.state.markets.get(coin)
    if market is not None and market.long_size * point.mark > OPEN_LIMIT:
        return f"open interest of {coin} would be worth more than {shown(OPEN_NOTIONAL_LIMIT)} USDC at this mark"
    return None


def token_prices(ctx: Context, e: ev.Prices) -> None:
    """Prices with entries for listed spot tokens that have no perp market of their name:
    those set the token's oracle (its `oracle`, else its `mark`); the rest go to `prices`."""
    state = ctx.state
    tokens = sorted(e.prices.keys() - state.markets.keys())
    unknown = [t for t in tokens if t not in state.tokens]
    if unknown:
        raise Reject(f"unknown market {unknown[0]!r}")
    for coin, point in e.prices.items():
        problem = price_error(ctx, coin, point)
        if problem:
            raise Reject(problem)
        ctx.token_worth(coin, 0, point.mark if point.oracle is None else point.oracle)
    prices(ctx, ev.Prices(prices={c: p for c, p in e.prices.items() if c in state.markets}))
    for token in tokens:
        point = e.prices[token]
        state.tokens[token].oracle = point.mark if point.oracle is None else point.oracle
