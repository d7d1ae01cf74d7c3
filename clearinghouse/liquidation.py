"""Liquidation: the market phase, the backstop, auto-deleveraging and bad debt
(docs/rules.md 5), as decisions on an account found below maintenance margin.

Everything here is exact and deterministic: positions are visited by notional (largest first,
then coin), ADL counterparties by score (then account id), and every fill happens at a price on
the market's tick, rounded against the liquidated account, so both sides of each fill book the
same cash and conservation holds to the micro-USDC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from clearinghouse import margin, portfolio
from clearinghouse.adl_policies import POLICIES
from clearinghouse.backstop import keep_iso_loss, settle_if_flat, take_over
from clearinghouse.deleveraging import Deleveraging
from clearinghouse.holders import Holders, ScanHolders
from clearinghouse.liquidator import LIQUIDATOR, fill_with_liquidator, highest_mark, liquidator, to_tick
from clearinghouse.models.base import MarginModel
from clearinghouse.models.registry import model_of
from clearinghouse.scopes import Scope, scopes
from clearinghouse.state import Account, LiquidationConfig, MarketState, Position, SpotAccount, State
from events import schema as ev
from events.bounds import MAX_COOLDOWN_MS, MAX_MARKET_DEPTHS, MAX_USD, NAME_PATTERN
from events.units import NTL_DIV, USD_DECIMALS, ceil_div, format_decimal

MODES = ("external", "mark", "impact", "off")


SETTING_RANGES: dict[str, tuple[int, int]] = {  # a setting's lowest and highest value, in its own unit
    "slippage_ppm": (0, 500_000),
    "impact_ppm": (0, 1_000_000),
    "depth": (1, MAX_USD),
    "fee_ppm": (0, 1_000_000),
    "partial_above": (0, MAX_USD),
    "partial_ppm": (1, 1_000_000),
    "cooldown_ms": (0, MAX_COOLDOWN_MS),
    "loss_limit": (0, MAX_USD),
}
_SETTING_NAMES = {
    "slippage_ppm": "slippage",
    "impact_ppm": "impact",
    "fee_ppm": "fee",
    "partial_ppm": "partial slice",
    "cooldown_ms": "cooldown",
    "loss_limit": "liquidator loss limit",
}


def _shown(field: str, value: int) -> str:
    """A setting in the unit people give it in (the CLI's flags)."""
    if field.endswith("_ppm"):
        return f"{format_decimal(value, 2, 0)} bps"
    if field.endswith("_ms"):
        return f"{value} ms"
    return f"{format_decimal(value, USD_DECIMALS, 0)} USDC"


def settings_error(config: LiquidationConfig) -> str | None:
    """What is wrong with liquidation settings, or None (the ranges of docs/wire-format.md,
    "Rule parameters and event time"): the CLI and the runner refuse such settings, and an
    `Engine` will not start with them."""
    if config.mode not in MODES:
        return f"liquidation mode {config.mode!r} is not one of {', '.join(MODES)}"
    if config.adl_policy not in POLICIES:
        return f"ADL policy {config.adl_policy!r} is not one of {', '.join(POLICIES)}"
    for field, (low, high) in SETTING_RANGES.items():
        value = getattr(config, field)
        if value is not None and not low <= value <= high:
            name = _SETTING_NAMES.get(field, field.replace("_", " "))
            return f"liquidation {name} must be between {_shown(field, low)} and {_shown(field, high)}"
    return _market_depth_error(config)


def _market_depth_error(config: LiquidationConfig) -> str | None:
    """What is wrong with the per-market depths: at most `MAX_MARKET_DEPTHS` coins, each a coin
    name, each depth in the range of `depth`."""
    depths = config.market_depth
    if depths is msgspec.UNSET:
        return None
    if len(depths) > MAX_MARKET_DEPTHS:
        return f"liquidation market depth names {len(depths)} markets, at most {MAX_MARKET_DEPTHS}"
    low, high = SETTING_RANGES["depth"]
    for coin, depth in depths.items():
        if not isinstance(coin, str) or not re.fullmatch(NAME_PATTERN, coin):
            return f"liquidation market depth: {coin!r} is not a coin name"
        if type(depth) is not int or not low <= depth <= high:
            return (
                f"liquidation market depth of {coin} must be between {_shown('depth', low)} "
                f"and {_shown('depth', high)}"
            )
    return None


def account_below(state: State, name: str, account: Account) -> bool:
    """Liquidatable in the account's model (for readers of a state: the engine asks the model it
    keeps for the account)."""
    return model_of(state, name).liquidatable(state, account, state.spot.get(name))


def healthy(state: State, name: str) -> None:
    """An account back above maintenance leaves the watch list; orders still out for it are
    withdrawn (a fill that arrives anyway is booked as an ordinary trade)."""
    state.watch.pop(name, None)
    state.liq_orders.pop(name, None)


class Liquidations:
    """Applies liquidation decisions to the state: the market phase here, the backstop
    (`backstop`) and auto-deleveraging (`deleveraging`) beside it; `emit` receives the derived
    events; `holders` names each coin's holders for ADL."""

    def __init__(self, state: State, emit: Callable[[Any], None], holders: Holders | ScanHolders) -> None:
        self.state = state
        self.emit = emit
        self.moved: set[str] = set()  # markets whose mark a fill moved (impact mode)
        self.adl = Deleveraging(state, emit, holders)
        self.counterparties = self.adl.counterparties  # accounts whose positions ADL changed

    def begin_event(self) -> None:
        self.adl.begin_event()

    @property
    def config(self) -> LiquidationConfig:
        return self.state.liquidation

    # ---- the entry point --------------------------------------------------------------------

    def check(self, name: str, model: MarginModel, cause: int) -> None:
        """Liquidates whatever of account `name` is liquidatable in its margin model: the scopes
        it liquidates on their own, then (portfolio margin, risk) its borrows and its book
        against the model's own figures; keeps the watch list."""
        state = self.state
        account = state.accounts[name]
        for scope in model.market_scopes(account, state.markets):
            if scope.below:
                self._liquidate(name, account, scope, cause)
        if model.ratio_liquidation:
            self._book(name, account, model, cause)
        if model.liquidatable(state, account, state.spot.get(name)):
            state.watch.setdefault(name, cause)
        else:
            healthy(state, name)

    def _positions(self, account: Account, scope: Scope) -> list[tuple[str, Position, MarketState]]:
        markets = self.state.markets
        if scope.name != "cross":
            return [(scope.name, account.positions[scope.name], markets[scope.name])]
        held = [(c, p, markets[c]) for c, p in account.positions.items() if p.szi and p.cross]
        held.sort(key=lambda t: (-margin.notional(t[1].szi, t[2].mark), t[0]))
        return held

    def _liquidate(self, name: str, account: Account, scope: Scope, cause: int) -> None:
        held = self._positions(account, scope)
        phase = "backstop" if scope.backstop else "market"
        if phase == "market" and self.config.mode == "external":
            orders = self._external_orders(name, account, held, cause)
            if not orders:
                return  # everything is already on order: wait for the fills
        self.emit(
            ev.LiquidationTriggered(
                account=name,
                scope=scope.name,
                cause=cause,
                equity=scope.equity,
                maintenance=scope.maintenance,
                positions=[ev.PositionView(c, p.szi, m.mark) for c, p, m in held],
                phase=phase,
                ts=self.state.time,
            )
        )
        if phase == "backstop":
            take_over(self.state, self.emit, self.adl, name, account, scope, held, cause)
        elif self.config.mode == "external":
            for order in orders:
                self.emit(order)
        else:
            self._market_phase(name, account, scope, held, cause)

    # ---- market phase -----------------------------------------------------------------------

    def _slice(self, account: Account, pos: Position, market: MarketState) -> int:
        """How much of |szi| this step closes: 20% (rounded up to the lot) of a large position
        outside a cooldown, else all of it."""
        size = abs(pos.szi)
        cfg = self.config
        if margin.notional(pos.szi, market.mark) > cfg.partial_above and self.state.time >= account.cooldown_until:
            lots = ceil_div(size * cfg.partial_ppm, 1_000_000 * market.lot)
            return min(size, lots * market.lot)
        return size

    def _market_phase(self, name: str, account: Account, scope: Scope, held: list, cause: int) -> None:
        cross_before = account.raw_usd
        self._close(name, account, held, lambda: self._scope_below(account, scope), cause)
        keep_iso_loss(account, scope, cross_before)
        settle_if_flat(self.state, self.emit, name, account, scope, cause)

    def _close(self, name: str, account: Account, held: list, below: Callable[[], bool], cause: int) -> None:
        """Closes positions in order (a slice of a large one) until `below()` turns false; a
        partial close starts the cooldown."""
        partial = False
        for coin, pos, market in held:
            size = self._slice(account, pos, market)
            partial = partial or size < abs(pos.szi)
            self._fill(name, account, coin, pos, market, size, cause)
            if not below():
                break
        if partial:
            account.cooldown_until = self.state.time + self.config.cooldown_ms

    def _scope_below(self, account: Account, scope: Scope) -> bool:
        return any(s.below for s in scopes(account, self.state.markets, scope.inclusive) if s.name == scope.name)

    # ---- portfolio margin -------------------------------------------------------------------

    def _book(self, name: str, account: Account, model: MarginModel, cause: int) -> None:
        """A book liquidated on its model's figures (`book_broken`: the PM ratio, the risk
        model's equity against maintenance): the borrow liquidation first (backstop, no order
        book) where the model borrows; then its cross positions through the market phase (in
        every execution mode, against the liquidator), then borrow liquidation steps again; if
        still broken, the backstop takes over the rest. A check that decides nothing changes
        nothing (a replay guided by the recorded decisions never makes it)."""
        state = self.state
        spot = state.spot[name]
        backstop = state.spot.get(LIQUIDATOR) or SpotAccount()  # the liquidator's spot side, stored once it acts
        acted = False

        def emit(event: Any) -> None:
            nonlocal acted
            acted = True
            self.emit(event)

        def broken() -> bool:
            return model.book_broken(state, account, spot)

        if model.settles_with_pool:  # the PM borrow thresholds
            portfolio.liquidate_borrows(state, name, account, spot, backstop, cause, emit, broken)
        held = self._positions(account, Scope("cross", 0, 0))
        if held and broken():
            equity, maintenance = model.book_figures(state, account, spot)
            emit(
                ev.LiquidationTriggered(
                    account=name,
                    scope=model.mode,
                    cause=cause,
                    equity=equity,
                    maintenance=maintenance,
                    positions=[ev.PositionView(c, p.szi, m.mark) for c, p, m in held],
                    phase="market",
                    ts=state.time,
                )
            )
            self._close(name, account, held, broken, cause)
            if model.settles_with_pool:
                portfolio.liquidate_borrows(state, name, account, spot, backstop, cause, emit, broken)
        if broken() and not any(p.szi and p.cross for p in account.positions.values()):
            every = model.counts_every_token
            portfolio.take_over(state, name, account, spot, (liquidator(state), backstop), cause, emit, every)
        if acted:
            liquidator(state)
            state.spot.setdefault(LIQUIDATOR, backstop)
            if model.settles_with_pool:
                state.unswept[name] = 0  # its USDC is settled with the pool at the next hour boundary

    def _fill(
        self, name: str, account: Account, coin: str, pos: Position, market: MarketState, size: int, cause: int
    ) -> None:
        """Closes `size` of the position against the liquidator at the mode's price."""
        cfg = self.config
        selling = pos.szi > 0
        mark = market.mark
        if cfg.mode == "impact":
            ntl = size * mark // NTL_DIV
            move = min(500_000, cfg.impact_ppm * ntl // cfg.depth_of(coin))  # never more than half the price
        else:
            move = cfg.slippage_ppm
        raw_px = mark * (1_000_000 - move) // 1_000_000 if selling else ceil_div(mark * (1_000_000 + move), 1_000_000)
        px = to_tick(raw_px, market, up=not selling)
        if cfg.mode == "impact" and not selling:
            px = min(px, max(mark, highest_mark(market)))
        signed = -size if selling else size
        fee = ceil_div(size * px // NTL_DIV * cfg.fee_ppm, 1_000_000)
        fill_with_liquidator(self.state, account, pos, market, signed, px, fee)
        self.emit(
            ev.LiquidationFill(account=name, coin=coin, sz=signed, px=px, fee=fee, cause=cause, ts=self.state.time)
        )
        if cfg.mode == "impact" and px != market.mark:
            market.prev_mark, market.mark = market.mark, px
            self.moved.add(coin)

    def _external_orders(self, name: str, account: Account, held: list, cause: int) -> list[ev.LiquidationOrder]:
        """Orders for the positions not already on order; a partial one starts the cooldown."""
        pending = self.state.liq_orders.setdefault(name, {})
        orders = []
        for coin, pos, market in held:
            if pending.get(coin):
                continue
            size = self._slice(account, pos, market)
            pending[coin] = size
            orders.append(
                ev.LiquidationOrder(
                    account=name,
                    coin=coin,
                    is_buy=pos.szi < 0,
                    sz=size,
                    mark=market.mark,
                    cause=cause,
                    ts=self.state.time,
                )
            )
        if not pending:
            del self.state.liq_orders[name]
        if any(o.sz < abs(account.positions[o.coin].szi) for o in orders):
            account.cooldown_until = self.state.time + self.config.cooldown_ms
        return orders
