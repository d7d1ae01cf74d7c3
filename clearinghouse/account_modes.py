"""Account modes (docs/portfolio-margin.md): the `set_mode` handler's rules. A mode names a
margin model (`models.registry.MODELS`); switching checks what the old model needs closed and
what the new one admits, then moves the account's USDC where the new model keeps it."""

from __future__ import annotations

from clearinghouse import portfolio
from clearinghouse.context import Context
from clearinghouse.errors import Reject
from clearinghouse.models.base import MarginModel
from clearinghouse.models.registry import MODELS
from clearinghouse.spot import USDC, spot_of
from clearinghouse.state import Account, State
from events import schema as ev

MODES = tuple(MODELS)


def model_named(mode: str) -> MarginModel:
    model = MODELS.get(mode)
    if model is None:
        raise Reject(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    return model


def check_switch(state: State, name: str, account: Account, old: MarginModel, new: MarginModel) -> None:
    """Switching needs another mode and no open position; the old model may need more closed
    (portfolio margin: every borrow repaid) and the new one may not admit the account."""
    if new is old:
        raise Reject(f"account is already {new.mode}")
    if any(p.szi for p in account.positions.values()):
        raise Reject("switching modes needs no open position")
    spot = state.spot.get(name)
    old.check_leave(spot)
    new.check_enter(state, account, spot)


def switch(state: State, name: str, account: Account, old: MarginModel, new: MarginModel) -> None:
    """Sets the mode; spot USDC joins the perp ledger when the new model keeps one USDC balance.
    A model that settles with the pool opens the USDC pool (if USDC may be supplied) for the
    account's idle balance."""
    spot = spot_of(state, name)
    if new.one_usdc_balance and not old.one_usdc_balance:
        account.raw_usd += spot.balances.pop(USDC, 0)
    spot.mode = new.mode
    if new.settles_with_pool:
        if state.pm_rules.caps.get(USDC):
            portfolio.pool_of(state, USDC)
        state.unswept[name] = 0


def set_mode(ctx: Context, e: ev.SetMode) -> None:
    """The `set_mode` handler: the account's model changes in the engine's cache too, and the
    trigger checks move it between the standard index and the bands."""
    new = model_named(e.mode)
    account = ctx.account(e.account)
    old = ctx.models.of(e.account)
    check_switch(ctx.state, e.account, account, old, new)
    enter(ctx, e.account, account, old, new)


def enter(ctx: Context, name: str, account: Account, old: MarginModel, new: MarginModel) -> None:
    """Puts the account under `new` (already checked, or imported in that mode): its USDC where
    the model keeps it, the engine's cache of models, and the trigger checks."""
    switch(ctx.state, name, account, old, new)
    ctx.models.set(name, new)
    if new.banded:
        ctx.expose(name)
    else:
        ctx.unexpose(name)
    ctx.checks.mode_changed(name)
    ctx.pools_opened()
