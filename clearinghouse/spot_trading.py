"""Spot tokens and spot trades (docs/rules.md 1, docs/portfolio-margin.md). Unlike a perp trade,
a spot fill is checked against balances: spot cannot go short, and a buyer must be able to pay
(its margin model says from what: spot USDC, the one ledger, or a portfolio's balance, supply and
borrow headroom)."""

from __future__ import annotations

from clearinghouse.context import Context, positive, room, shown
from clearinghouse.errors import Reject
from clearinghouse.fills import saturated
from clearinghouse.spot import USDC, add, spot_of
from clearinghouse.state import TokenState
from events import schema as ev
from events.bounds import MAX_NOTIONAL
from events.units import NTL_DIV, TOKEN_DECIMALS, format_decimal


def spot_trade(ctx: Context, e: ev.SpotTrade) -> None:
    """A spot fill. Unlike a perp trade it is checked against balances (spot cannot go
    short, and a buyer must be able to pay, a PM buyer by borrowing against what it buys)."""
    state = ctx.state
    token = state.tokens.get(e.base)
    sz, px = e.sz, e.px
    if (
        token is None
        or e.quote != USDC
        or sz <= 0
        or px <= 0
        or sz % token.unit
        or sz * px % NTL_DIV
        or e.buyer == e.seller
    ):
        bad_spot_trade(ctx, e)
    accounts = state.accounts
    buyer = accounts.get(e.buyer) or ctx.account(e.buyer)
    seller = accounts.get(e.seller) or ctx.account(e.seller)
    bspot, sspot = state.spot.get(e.buyer), state.spot.get(e.seller)
    cost = sz * px // NTL_DIV
    held = sspot.balances.get(e.base, 0) if sspot is not None else 0
    if sz > held:
        raise Reject(f"seller holds {format_decimal(held, TOKEN_DECIMALS)} {e.base}, less than sz")
    assert sspot is not None  # a seller with no spot side holds nothing: refused above
    if cost > MAX_NOTIONAL:
        raise Reject(f"trade notional {shown(cost)} is above {shown(MAX_NOTIONAL)} USDC")
    ctx.token_worth(e.base, 0, px)
    models, rules = ctx.models, ctx.rules
    bmodel, smodel = models.of(e.buyer), models.of(e.seller)
    room(smodel.spot_usdc(seller, sspot), cost + abs(e.seller_fee), "the USDC", e.seller)
    room(state.fees, abs(e.buyer_fee) + abs(e.seller_fee), "the fee account")
    pay, fee_due = cost + e.buyer_fee, e.seller_fee - cost
    now = bmodel.cash_now(state, buyer, bspot) if bspot is not None else None
    payable = bmodel.usdc_room(state, buyer, bspot, rules, (e.base, sz), pay, now)
    if pay > payable:
        raise Reject(f"buyer can pay {shown(payable)} USDC, the buy needs {shown(pay)}")
    if fee_due > 0 and fee_due > smodel.usdc_room(state, seller, sspot, rules):
        raise Reject("seller cannot pay its fee")
    if e.seller in models.banded:
        smodel.check_spot_sale(state, seller, sspot, e.base, sz, px, e.seller_fee)
    # what the payments take out of the USDC pool (the buyer's supply first), checked before anything moves
    buyer_take = bmodel.payment_take(state, buyer, bspot, pay, 0, now) if now is not None else 0
    seller_take = smodel.payment_take(state, seller, sspot, fee_due, buyer_take, None)
    bspot = spot_of(state, e.buyer)
    add(bspot, e.base, sz)
    add(sspot, e.base, -sz)
    bmodel.pay_usdc(state, buyer, bspot, pay, buyer_take)
    smodel.pay_usdc(state, seller, sspot, fee_due, seller_take)
    state.fees += e.buyer_fee + e.seller_fee
    buyer.volume = saturated(buyer.volume + 2 * cost)
    seller.volume = saturated(seller.volume + 2 * cost)
    token.last_px = px
    for name in (e.buyer, e.seller):
        if name in models.banded:
            ctx.traded(e.base, name)


def bad_spot_trade(ctx: Context, e: ev.SpotTrade) -> None:
    """Says why a spot trade failed the hot path's combined check."""
    if e.quote != USDC:
        raise Reject("spot trades are quoted in USDC")
    token = ctx.token_of(e.base)
    positive(e.sz, "sz")
    positive(e.px, "px")
    if e.sz % token.unit:
        raise Reject(f"sz {format_decimal(e.sz, TOKEN_DECIMALS)} is finer than {e.base}'s {token.decimals} decimals")
    if e.sz * e.px % NTL_DIV:
        raise Reject("sz * px must be a whole micro-USDC")
    raise Reject("buyer and seller are the same account")


def list_token(ctx: Context, e: ev.Token) -> None:
    if e.token == USDC:
        raise Reject("USDC is built in")
    if e.token in ctx.state.tokens:
        raise Reject(f"token {e.token!r} is already listed")
    if not 0 <= e.decimals <= TOKEN_DECIMALS:
        raise Reject(f"decimals must be between 0 and {TOKEN_DECIMALS}")
    ctx.state.tokens[e.token] = TokenState(e.decimals, 10 ** (TOKEN_DECIMALS - e.decimals))
