"""Lending actions (docs/portfolio-margin.md): supply to and withdraw from a token's pool,
explicit borrows (models that allow them) and repayments. The pool arithmetic is `lending`'s."""

from __future__ import annotations

from clearinghouse import lending, margin, portfolio
from clearinghouse.context import Context, positive, room
from clearinghouse.errors import Reject
from clearinghouse.spot import USDC, add, price
from clearinghouse.state import Pool
from events import schema as ev
from events.units import HOUR_MS


def supply(ctx: Context, e: ev.Supply) -> None:
    lending_amount(ctx, e, "supply")
    state = ctx.state
    account = ctx.account(e.account)
    spot = state.spot.get(e.account)
    model = ctx.models.of(e.account)
    if e.token != USDC:
        held = spot.balances.get(e.token, 0) if spot else 0
    else:
        held = model.suppliable_usdc(state, account, spot, ctx.rules) if spot is not None else 0
    if e.amount > held:
        raise Reject(
            f"amount {lending.show(e.amount, e.token)} is above the available {lending.show(held, e.token)} {e.token}"
        )
    assert spot is not None  # with no spot side nothing is held, and the amount was refused
    pool = state.pools.get(e.token) or Pool(hour=state.time // HOUR_MS)
    lending.supply(pool, spot, state.pm_rules, e.token, e.amount)
    state.pools.setdefault(e.token, pool)
    ctx.pools_opened()
    if model.banded:  # its supply is valued at the token's price
        ctx.add_exposure(e.token, e.account)
    if e.token == USDC:
        model.pay_usdc(state, account, spot, e.amount)
    else:
        add(spot, e.token, -e.amount)


def withdraw_supply(ctx: Context, e: ev.WithdrawSupply) -> None:
    positive(e.amount, "amount")
    state = ctx.state
    account = ctx.account(e.account)
    spot = state.spot.get(e.account)
    pool = state.pools.get(e.token)
    if spot is None or pool is None or not spot.supplied.get(e.token):
        raise Reject(f"nothing supplied in {e.token}")
    model = ctx.models.of(e.account)
    if e.token != USDC:
        ctx.token_of(e.token, e.amount)
    else:
        home = "the ledger" if model.one_usdc_balance else "the spot USDC"
        room(model.spot_usdc(account, spot), e.amount, home, e.account)
    paid = lending.withdraw_supply(pool, spot, e.token, e.amount)
    if e.token == USDC:
        model.pay_usdc(state, account, spot, -paid)
    else:
        add(spot, e.token, paid)


def borrow(ctx: Context, e: ev.Borrow) -> None:
    """An explicit borrow: models that allow one (portfolio margin, risk), within what the
    model finances (PM: the LTV headroom; risk: IM with the loan charge); the proceeds stay in
    the account (a PM withdrawal never takes borrowed funds)."""
    lending_amount(ctx, e, "borrow")
    state = ctx.state
    account = ctx.account(e.account)
    spot = state.spot.get(e.account)
    if spot is None or not ctx.models.of(e.account).may_borrow:
        raise Reject("borrowing needs a portfolio margin account")
    pool = state.pools.get(e.token)
    if pool is None:
        raise Reject(f"nothing supplied in {e.token} to borrow")
    if e.token != USDC and not price(state, e.token):
        raise Reject(f"no price for {e.token} yet: a borrow of it has no value to check")
    if e.token == USDC:
        room(account.raw_usd, e.amount, "the ledger", e.account)
    ctx.models.of(e.account).check_borrow(state, account, spot, e.token, e.amount)
    lending.borrow(pool, spot, state.pm_rules, e.token, e.amount)
    if e.token == USDC:
        account.raw_usd += e.amount
    else:
        add(spot, e.token, e.amount)
        ctx.add_exposure(e.token, e.account)


def repay(ctx: Context, e: ev.Repay) -> None:
    """Repays from the account's own balance: USDC from its free ledger cash, other tokens
    from the spot balance; an amount above the debt repays the debt."""
    positive(e.amount, "amount")
    state = ctx.state
    account = ctx.account(e.account)
    spot = state.spot.get(e.account)
    pool = state.pools.get(e.token)
    if spot is None or pool is None or not spot.borrowed.get(e.token):
        raise Reject(f"no {e.token} borrowed")
    amount = min(e.amount, portfolio.debt(state, spot, e.token))
    if e.token == USDC:
        held = max(0, margin.cross_value(account, state.markets))
    else:
        held = spot.balances.get(e.token, 0)
    if amount > held:
        raise Reject(
            f"repaying {lending.show(amount, e.token)} needs that much free {e.token}, "
            f"the account has {lending.show(held, e.token)}"
        )
    paid = lending.repay(pool, spot, e.token, amount)
    if e.token == USDC:
        account.raw_usd -= paid
    else:
        add(spot, e.token, -paid)


def lending_amount(ctx: Context, e: ev.Supply | ev.Borrow, what: str) -> None:
    """A positive amount on the token's unit, of a token the rules let be `what` ("supply"
    or "borrow")."""
    positive(e.amount, "amount")
    if e.token != USDC:
        ctx.token_of(e.token, e.amount)
    caps = ctx.state.pm_rules.caps.get(e.token)
    if caps is None or not (caps.borrow if what == "borrow" else caps.supply):
        raise Reject(f"{e.token} cannot be {'borrowed' if what == 'borrow' else 'supplied'}")
