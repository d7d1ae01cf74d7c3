"""The backstop (docs/rules.md 5): the liquidator takes over what the market phase could not
close, at the mark, with the scope's remaining margin; beyond its loss limit it declines and the
account goes through auto-deleveraging; a loss nobody covers is bad debt, recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clearinghouse.deleveraging import Deleveraging
from clearinghouse.liquidator import fill_with_liquidator, liquidator, to_tick
from clearinghouse.scopes import Scope
from clearinghouse.state import Account, State
from events import schema as ev


def keep_iso_loss(account: Account, scope: Scope, cross_before: int) -> None:
    """Closing an isolated position returns its ledger to cross; a negative one is the
    position's loss, not the cross account's: it goes back to the (flat) position, where the
    liquidator or bad debt takes it."""
    if scope.name == "cross":
        return
    returned = account.raw_usd - cross_before
    if returned < 0:
        account.raw_usd = cross_before
        account.positions[scope.name].iso_raw += returned


def take_over(
    state: State,
    emit: Callable[[Any], None],
    adl: Deleveraging,
    name: str,
    account: Account,
    scope: Scope,
    held: list,
    cause: int,
) -> None:
    """The liquidator takes the scope's positions at the mark and its margin; an account whose
    loss is past the liquidator's limit is deleveraged instead."""
    limit = state.liquidation.loss_limit
    orders = state.liq_orders.get(name)
    if orders is not None:
        for coin, _, _ in held:
            orders.pop(coin, None)
        if not orders:
            del state.liq_orders[name]
    if scope.equity < 0 and limit is not None and -scope.equity > limit:
        cross_before = account.raw_usd
        adl.close(name, account, held, cause)
        keep_iso_loss(account, scope, cross_before)
        settle_if_flat(state, emit, name, account, scope, cause, absorb=False)
        return
    views = []
    cross_before = account.raw_usd
    for coin, pos, market in held:
        px = to_tick(market.mark, market, up=pos.szi < 0)
        views.append(ev.PositionView(coin, pos.szi, px))
        fill_with_liquidator(state, account, pos, market, -pos.szi, px, 0)
    if scope.name != "cross":  # closing returned the isolated ledger to cross: it is the margin
        returned = account.raw_usd - cross_before
        account.raw_usd = cross_before
        account.positions[scope.name].iso_raw = returned
    margin_moved = _take_margin(state, account, scope)
    emit(ev.Backstop(account=name, scope=scope.name, positions=views, margin=margin_moved, cause=cause, ts=state.time))


def _take_margin(state: State, account: Account, scope: Scope) -> int:
    """Moves the scope's remaining cash to the liquidator (it is not returned)."""
    book = liquidator(state)
    if scope.name == "cross":
        amount, account.raw_usd = account.raw_usd, 0
    else:
        pos = account.positions[scope.name]
        amount, pos.iso_raw = pos.iso_raw, 0
    book.raw_usd += amount
    return amount


def settle_if_flat(
    state: State,
    emit: Callable[[Any], None],
    name: str,
    account: Account,
    scope: Scope,
    cause: int,
    absorb: bool = True,
) -> None:
    """A scope with no position left and negative cash: the liquidator covers the loss up
    to its limit (unless it already declined the account, which then went through ADL);
    the rest is bad debt."""
    if scope.name == "cross":
        if any(p.szi and p.cross for p in account.positions.values()) or account.raw_usd >= 0:
            return
        loss = -account.raw_usd
    else:
        pos = account.positions[scope.name]
        if pos.szi or pos.iso_raw >= 0:
            return
        loss = -pos.iso_raw
    limit = state.liquidation.loss_limit
    covered = 0 if not absorb else loss if limit is None else min(loss, limit)
    if covered:
        liquidator(state).raw_usd -= covered
    debt = loss - covered
    if scope.name == "cross":
        account.raw_usd = 0
    else:
        account.positions[scope.name].iso_raw = 0
    if debt:
        state.bad_debt += debt
        emit(ev.BadDebt(account=name, scope=scope.name, amount=debt, cause=cause, ts=state.time))
