"""Auto-deleveraging policies (docs/adl.md): when the liquidator declines a bankrupt position,
which opposite positions close against it, how much of each, and at what price the liquidator
takes what they do not.

A policy is chosen once per engine from the liquidation settings (`policy_of`); the engine asks
it for a `Plan` per bankrupt position. Every policy is exact in integers and deterministic (ties
and remainders by account id), and only plans fills: `Deleveraging` books them, so sizes net to
zero and cash is conserved whatever the plan.

Capacity (pro-rata policies): what a winner may give up, in micro-USDC, is its positive
unrealised PnL in the coin at the mark, at most its margin above maintenance (cross: account
value less maintenance; isolated: the position's margin used less its maintenance), and at most
what closing its whole position at the ADL price would take from it. Closing part of a position
only lowers its maintenance, so a winner is never taken below it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from clearinghouse import margin
from clearinghouse.liquidator import to_tick
from clearinghouse.state import DEFAULT_ADL, Account, LiquidationConfig, MarketState, Position, State
from events.units import NTL_DIV, ceil_div


class Opposite(NamedTuple):
    """An open position on the other side of the bankrupt one."""

    name: str
    account: Account
    pos: Position


class Plan(NamedTuple):
    """Fills in the order they book: (counterparty, size it closes, positive); the liquidator
    takes what is left of the bankrupt position: `at_adl_px` of it at the ADL price, the rest at
    `rest_px`."""

    fills: list[tuple[Opposite, int]]
    rest_px: int
    at_adl_px: int = 0


class Policy(Protocol):
    def plan(
        self,
        state: State,
        opposites: list[Opposite],
        pos: Position,
        market: MarketState,
        px: int,
        equity: Callable[[], int],
    ) -> Plan:
        """The plan for bankrupt position `pos`: `px` is the ADL price (the previous mark on the
        tick, against the bankrupt account), `equity()` the bankrupt scope's equity at the mark
        now (before this plan's fills)."""
        ...


class HlQueue:
    """Hyperliquid's queue: opposite positions ranked by profit ratio x notional / account value
    at the mark, whole positions first-ranked first, at the ADL price."""

    def plan(
        self,
        state: State,
        opposites: list[Opposite],
        pos: Position,
        market: MarketState,
        px: int,
        equity: Callable[[], int],
    ) -> Plan:
        left = abs(pos.szi)
        fills = []
        for opp in rank(state, opposites, market):
            if not left:
                break
            size = min(left, abs(opp.pos.szi))
            fills.append((opp, size))
            left -= size
        return Plan(fills, px)


def rank(state: State, opposites: list[Opposite], market: MarketState) -> list[Opposite]:
    """Highest (profit ratio) x (notional / account value) first, ties by account id; accounts
    with no equity come last, by id.

    A score is the exact ratio `num / den` of integers (a long's mark x notional over entry x
    value, a short's entry x notional over mark x value). It is sorted by `num * 2**k // den`
    with `2**k` at least the square of every denominator: two scores that differ differ by at
    least `1 / (den_a * den_b)`, so these integers differ too, and equal scores give equal
    integers: the same order as the ratios themselves, with integer comparisons only."""
    scored = []  # (group, num, den, opp): group 1 has no equity to rank by
    markets = state.markets
    widest = 1
    for opp in opposites:
        opos = opp.pos
        value = (
            margin.cross_figures(opp.account, markets).account_value
            if opos.cross
            else margin.iso_margin_used(opos, market)
        )
        if value > 0 and opos.entry_px > 0:
            ntl = margin.notional(opos.szi, market.mark)  # 0 without a mark: no profit ratio to rank by
            if opos.szi > 0:
                num, den = market.mark * ntl, opos.entry_px * value
            elif ntl:
                num, den = opos.entry_px * ntl, market.mark * value
            else:
                num, den = 0, 1
            widest = max(widest, den.bit_length())
            scored.append((0, num, den, opp))
        else:
            scored.append((1, 0, 1, opp))
    shift = 2 * widest
    ranked = [(group, -((num << shift) // den), opp.name, opp) for group, num, den, opp in scored]
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    return [r[3] for r in ranked]


def capacity(state: State, opp: Opposite, market: MarketState) -> int:
    """What the winner may give up, in micro-USDC (the module's docstring): positive PnL in the
    coin, at most its margin above maintenance."""
    opos = opp.pos
    pnl = (opos.szi * (market.mark - opos.entry_px)) // NTL_DIV
    if pnl <= 0:
        return 0
    if opos.cross:
        figures = margin.cross_figures(opp.account, state.markets)
        room = figures.account_value - figures.maintenance
    else:
        mm = margin.table_of(opos, market).maintenance(margin.notional(opos.szi, market.mark))
        room = margin.iso_margin_used(opos, market) - mm
    return max(0, min(pnl, room))


def capacity_lots(
    state: State, opposites: list[Opposite], market: MarketState, gap: int
) -> list[tuple[Opposite, int]]:
    """Each winner's capacity as whole lots closed at a price `gap` (> 0, 1e-8 USDC per coin)
    worse than the mark for it, in account-id order; winners with none left out."""
    lot = market.lot
    caps = []
    for opp in sorted(opposites, key=lambda o: o.name):
        size = min(abs(opp.pos.szi), capacity(state, opp, market) * NTL_DIV // gap)
        if size >= lot:
            caps.append((opp, size // lot))
    return caps


def allocate(wanted: int, caps: list[tuple[Opposite, int]]) -> list[tuple[Opposite, int]]:
    """`wanted` lots shared in proportion to the capacities (every winner gives up the same share
    of its capacity, rounded down), the remainder one lot at a time in account-id order; all of
    every capacity when they do not reach `wanted`. Returns lots per winner, zeros left out."""
    total = sum(k for _, k in caps)
    if total <= wanted:
        return [(opp, k) for opp, k in caps]
    shares = [wanted * k // total for _, k in caps]
    rest = wanted - sum(shares)
    for i, (_, k) in enumerate(caps):
        if not rest:
            break
        if shares[i] < k:
            shares[i] += 1
            rest -= 1
    return [(opp, q) for (opp, _), q in zip(caps, shares, strict=True) if q]


def winner_gap(pos: Position, market: MarketState, px: int) -> int:
    """What a counterparty loses per coin by closing at `px` instead of the mark (a winner buys
    back a short above it, or sells a long below it)."""
    return px - market.mark if pos.szi > 0 else market.mark - px


class ProRata:
    """Every winner gives up the same share of its capacity: the whole bankrupt position closes
    at the ADL price against winners in proportion to their capacity in lots (remainder lots by
    account id); what their capacities do not reach goes to the liquidator at the ADL price.
    A price that takes nothing from a winner (the mark moved back) deleverages no one."""

    def plan(
        self,
        state: State,
        opposites: list[Opposite],
        pos: Position,
        market: MarketState,
        px: int,
        equity: Callable[[], int],
    ) -> Plan:
        gap = winner_gap(pos, market, px)
        if gap <= 0:
            return Plan([], px)
        lot = market.lot
        shares = allocate(abs(pos.szi) // lot, capacity_lots(state, opposites, market, gap))
        return Plan([(opp, q * lot) for opp, q in shares], px)


class DeficitProRata:
    """`deficit-pro-rata`: severity from the deficit, allocation pro-rata. Only as many lots
    close at the ADL price as cover the bankrupt scope's deficit (closing the rest at the mark,
    on the tick against the account); winners share them as in `pro-rata`; the liquidator takes
    the rest at the mark, which costs it nothing beyond the tick. So the winners give up the
    deficit, rounded up to a lot, instead of the whole gap between the previous mark and the
    mark on the whole position. Lots the winners' capacities do not reach go to the liquidator
    at the ADL price, as under `pro-rata`, so no bankruptcy leaves more bad debt than there."""

    def plan(
        self,
        state: State,
        opposites: list[Opposite],
        pos: Position,
        market: MarketState,
        px: int,
        equity: Callable[[], int],
    ) -> Plan:
        szi = pos.szi
        rest_px = to_tick(market.mark, market, up=szi < 0)
        gap = winner_gap(pos, market, px)
        gain = px - rest_px if szi > 0 else rest_px - px  # per coin, for the bankrupt account
        if gap <= 0 or gain <= 0:
            return Plan([], rest_px)
        # the deficit left if the whole position closed at rest_px (a fill books -size * px // NTL_DIV)
        deficit = -(equity() - (szi * market.mark) // NTL_DIV - (-szi * rest_px) // NTL_DIV)
        if deficit <= 0:
            return Plan([], rest_px)
        lot = market.lot
        wanted = min(abs(szi) // lot, ceil_div(deficit * NTL_DIV, gain * lot))
        shares = allocate(wanted, capacity_lots(state, opposites, market, gap))
        short = wanted - sum(q for _, q in shares)
        return Plan([(opp, q * lot) for opp, q in shares], rest_px, short * lot)


POLICIES: dict[str, Policy] = {DEFAULT_ADL: HlQueue(), "pro-rata": ProRata(), "deficit-pro-rata": DeficitProRata()}


def policy_of(config: LiquidationConfig) -> Policy:
    """The settings' policy (checked by `liquidation.settings_error` before an engine starts)."""
    return POLICIES[config.adl_policy]
