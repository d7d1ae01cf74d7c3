"""USDC in and out (docs/rules.md 1): deposits, withdrawals, transfers between accounts and a
standard account's class transfers between spot and perp. A removal is checked against what the
account's margin model lets it take."""

from __future__ import annotations

from clearinghouse.context import Context, positive, room, shown
from clearinghouse.errors import Reject
from clearinghouse.spot import USDC, add, spot_of
from clearinghouse.state import Account
from events import schema as ev
from events.bounds import FIGURE_LIMIT
from events.units import TOKEN_DECIMALS, format_decimal


def deposit(ctx: Context, e: ev.Deposit) -> None:
    positive(e.amount, "amount")
    state = ctx.state
    if e.token != USDC:
        ctx.token_of(e.token, e.amount)
        room(state.token_net.get(e.token, 0), e.amount, "the deposits", e.token)
        ctx.token_worth(e.token, e.amount)
        if e.account not in state.accounts:
            state.accounts[e.account] = Account()
        add(spot_of(state, e.account), e.token, e.amount)
        state.token_net[e.token] = state.token_net.get(e.token, 0) + e.amount
        if e.account in ctx.models.banded:
            ctx.add_exposure(e.token, e.account)
        return
    account = state.accounts.get(e.account)
    if abs(state.deposited) + e.amount > FIGURE_LIMIT or (
        account is not None and abs(account.raw_usd) + e.amount > FIGURE_LIMIT
    ):
        raise Reject(f"the deposited total or the ledger of {e.account!r} would pass its stored bound")
    if account is None:
        account = state.accounts[e.account] = Account()
    account.raw_usd += e.amount
    state.deposited += e.amount
    if e.account in ctx.models.settling:
        ctx.settle_at_next_hour(e.account)


def withdraw(ctx: Context, e: ev.Withdraw) -> None:
    state = ctx.state
    if e.token == USDC:
        room(state.withdrawn, max(0, e.amount), "the withdrawn total")
        take(ctx, e.account, e.amount)
        state.withdrawn += e.amount
        return
    ctx.token_of(e.token, e.amount)
    positive(e.amount, "amount")
    account = ctx.account(e.account)
    spot = state.spot.get(e.account)
    held = spot.balances.get(e.token, 0) if spot is not None else 0
    if e.amount > held:
        raise Reject(
            f"amount {format_decimal(e.amount, TOKEN_DECIMALS)} is above the {e.token} balance "
            f"{format_decimal(held, TOKEN_DECIMALS)}"
        )
    if spot is not None:
        ctx.models.of(e.account).check_removal(state, account, spot, (e.token, -e.amount))
    add(spot, e.token, -e.amount)  # type: ignore[arg-type]
    state.token_net[e.token] -= e.amount


def transfer(ctx: Context, e: ev.Transfer) -> None:
    if e.from_ == e.to:
        raise Reject("transfer to the same account")
    target = ctx.state.accounts.get(e.to)
    room(target.raw_usd if target is not None else 0, max(0, e.amount), "the ledger", e.to)
    take(ctx, e.from_, e.amount)
    if target is None:
        target = ctx.state.accounts[e.to] = Account()
    target.raw_usd += e.amount
    if e.to in ctx.models.settling:
        ctx.settle_at_next_hour(e.to)


def take(ctx: Context, name: str, amount: int) -> Account:
    """Checks a non-trade removal of `amount` USDC from `name` (withdrawable in its mode) and
    takes it out of the ledger (a PM account's supply first)."""
    positive(amount, "amount")
    account = ctx.account(name)
    state = ctx.state
    spot = state.spot.get(name)
    model = ctx.models.of(name)
    available = model.withdrawable(state, account, spot, ctx.rules)
    if amount > available:
        raise Reject(f"amount {shown(amount)} is above withdrawable {shown(available)}")
    model.debit_ledger(state, account, spot, amount)
    return account


def class_transfer(ctx: Context, e: ev.ClassTransfer) -> None:
    """A standard account's USDC between spot and perp; leaving perp is a removal of margin
    (checked against withdrawable)."""
    positive(e.amount, "amount")
    account = ctx.account(e.account)
    spot = ctx.state.spot.get(e.account)
    model = ctx.models.of(e.account)
    if model.one_usdc_balance:
        raise Reject(f"a {model.mode} account has one USDC balance: nothing to transfer")
    if e.to_perp:
        held = spot.balances.get(USDC, 0) if spot is not None else 0
        if e.amount > held:
            raise Reject(f"amount {shown(e.amount)} is above the spot USDC {shown(held)}")
        room(account.raw_usd, e.amount, "the ledger", e.account)
        add(spot, USDC, -e.amount)  # type: ignore[arg-type]
        account.raw_usd += e.amount
        return
    available = ctx.withdrawable(account)
    if e.amount > available:
        raise Reject(f"amount {shown(e.amount)} is above withdrawable {shown(available)}")
    room(spot.balances.get(USDC, 0) if spot is not None else 0, e.amount, "the spot USDC", e.account)
    account.raw_usd -= e.amount
    add(spot_of(ctx.state, e.account), USDC, e.amount)
