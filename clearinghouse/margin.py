"""Perp margin figures of standard accounts (docs/rules.md 2), pure and exact.

Rounding, always against the account: notional and requirements round up, position value and
pending funding round down (toward -infinity), liquidation prices round toward the mark.
"""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse.rules import RuleSet
from clearinghouse.state import Account, MarketState, Position
from clearinghouse.tiers import TierTable, single_tier
from events.units import FUNDING_DIV, NTL_DIV, ceil_div


def notional(szi: int, mark: int) -> int:
    return -((-abs(szi) * mark) // NTL_DIV)


def value(szi: int, mark: int) -> int:
    """The signed position value `szi * mark` of the cash convention."""
    return (szi * mark) // NTL_DIV


def pending_funding(pos: Position, market: MarketState) -> int:
    """Funding accrued since the position's last settlement (negative = owed by the account)."""
    if not pos.szi:
        return 0
    return (-pos.szi * (market.funding_index - pos.funding_index)) // FUNDING_DIV


def table_of(pos: Position, market: MarketState) -> TierTable:
    return single_tier(pos.max_leverage) if pos.max_leverage else market.table


def max_leverage_of(pos: Position, market: MarketState) -> int:
    return pos.max_leverage or market.table.max_leverage


class Cross(NamedTuple):
    """Cross-margin figures of one account at current marks, pending funding included."""

    raw_usd: int
    account_value: int
    ntl: int
    margin_used: int  # initial margin, sum of ntl / leverage
    maintenance: int


def cross_figures(account: Account, markets: dict[str, MarketState]) -> Cross:
    """One pass over the account's cross positions. This runs after every fill and on every
    withdrawal, so `notional`, `value`, `pending_funding` and the tier lookup are inlined here
    (tests hold it to the same answers as the per-position functions)."""
    raw = account.raw_usd
    av = ntl_sum = im = mm = 0
    for coin, pos in account.positions.items():
        szi = pos.szi
        if not szi or not pos.cross:
            continue
        market = markets[coin]
        mark = market.mark
        accrued = market.funding_index - pos.funding_index
        if accrued:
            raw += (-szi * accrued) // FUNDING_DIV
        av += (szi * mark) // NTL_DIV
        ntl = -((-abs(szi) * mark) // NTL_DIV)
        ntl_sum += ntl
        im -= -ntl // pos.leverage
        table = single_tier(pos.max_leverage) if pos.max_leverage else market.table
        tiers = table.tiers
        tier = tiers[0] if len(tiers) == 1 or ntl < tiers[1].lower_bound else table.tier_for(ntl)
        mm -= (tier.ded - ntl * tier.mult) // table.den
    return Cross(raw, raw + av, ntl_sum, im, mm)


def cross_value(account: Account, markets: dict[str, MarketState]) -> int:
    """`AV_cross` alone (cash, cross position values, unsettled funding), about half the work of
    `cross_figures` for what portfolio settlement asks after every hour (tests hold the two equal)."""
    av = account.raw_usd
    for coin, pos in account.positions.items():
        szi = pos.szi
        if szi and pos.cross:
            market = markets[coin]
            # `-szi * (market index - position index)` is the funding still to settle
            av += (szi * market.mark) // NTL_DIV + (szi * (pos.funding_index - market.funding_index)) // FUNDING_DIV
    return av


def iso_raw(pos: Position, market: MarketState) -> int:
    return pos.iso_raw + pending_funding(pos, market)


def iso_margin_used(pos: Position, market: MarketState) -> int:
    """`rawUsd_iso + szi * mark`: the isolated position's margin plus unrealised pnl."""
    return iso_raw(pos, market) + value(pos.szi, market.mark)


def withdrawable(cross: Cross, rules: RuleSet) -> int:
    """What a non-trade removal (withdrawal, transfer, isolated margin add) may take."""
    floor = ceil_div(cross.ntl * rules.withdraw_floor_pct, 100)
    return max(0, cross.account_value - max(cross.margin_used, floor))


def iso_removable(pos: Position, market: MarketState, rules: RuleSet) -> int:
    """Margin removable from an isolated position: down to max(IM, floor% of notional)."""
    ntl = notional(pos.szi, market.mark)
    keep = max(ceil_div(ntl, pos.leverage), ceil_div(ntl * rules.withdraw_floor_pct, 100))
    return max(0, iso_margin_used(pos, market) - keep)


def liquidation_price(pos: Position, market: MarketState, available: int, rules: RuleSet) -> int | None:
    """The mark at which the position's equity meets maintenance, other prices fixed.

    `available` is the equity backing the position net of every other position's maintenance
    (cross: AV_cross - MM of the other cross positions; isolated: marginUsed_iso). Solves
    `available + szi*(P - mark) = MM_t(|szi|*P)` per tier t and keeps the solution that lands in
    its own tier (docs/rules.md 2); None when no positive price solves it.
    """
    szi, mark = pos.szi, market.mark
    if not szi or mark <= 0:
        return None
    side = 1 if szi > 0 else -1
    size = abs(szi)
    table = table_of(pos, market)
    den = table.den
    for tier in table.tiers:
        # (available - MM_t(ntl at mark)) scaled by den * NTL_DIV, exactly.
        avail = available * den * NTL_DIV - (size * mark * tier.mult - tier.ded * NTL_DIV)
        if rules.liq_px_leverage_factor:
            two_l = 2 * tier.max_leverage
            num = mark * den * size * (two_l - side) - side * avail * two_l
            dnm = den * size * (two_l - side)
        else:
            num = mark * den * size - side * avail
            dnm = den * size
        price = -((-num) // dnm) if side > 0 else num // dnm
        if price <= 0:
            continue
        if table.tier_for(notional(szi, price)) is tier:
            return price
    return None
