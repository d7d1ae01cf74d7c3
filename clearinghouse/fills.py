"""One side of a fill: position size, entry price, cash legs, isolated margin and funding.

Cash convention (docs/rules.md 2-3): the ledger takes `-signed_size * px - fee`, which
already holds the realised pnl. An isolated position's ledger receives the margin of what it
opens (`opened * px / leverage`, rounded up) from the cross ledger and returns everything to it
when the position closes; a strict-isolated position also releases margin as it shrinks.
"""

from __future__ import annotations

from clearinghouse.margin import pending_funding
from clearinghouse.state import Account, MarketState, Position
from events.bounds import FIGURE_LIMIT
from events.units import NTL_DIV, ceil_div, round_half_even


def _book(account: Account, pos: Position, cash: int) -> None:
    if pos.cross:
        account.raw_usd += cash
    else:
        pos.iso_raw += cash


def saturated(total: int) -> int:
    """A counter that only informs (volume, a position's funding totals), held within
    +-`FIGURE_LIMIT` so it always fits the encoding (docs/wire-format.md)."""
    return total if -FIGURE_LIMIT <= total <= FIGURE_LIMIT else FIGURE_LIMIT if total > 0 else -FIGURE_LIMIT


def settle_funding(account: Account, pos: Position, market: MarketState) -> int:
    """Books accrued funding into the position's ledger; returns the amount booked (signed),
    which the caller takes from the funding pool."""
    amount = pending_funding(pos, market)
    pos.funding_index = market.funding_index
    if amount:
        _book(account, pos, amount)
        pos.funding_all = saturated(pos.funding_all - amount)
        pos.funding_open = saturated(pos.funding_open - amount)
        pos.funding_change = saturated(pos.funding_change - amount)
    return amount


def _open(account: Account, pos: Position, size: int, px: int) -> None:
    """Grows |szi| of an isolated position by `size` (signed) at `px`."""
    old = abs(pos.szi)
    _grow_entry(pos, old, abs(size), px)
    margin = ceil_div(abs(size) * px // NTL_DIV, pos.leverage)
    account.raw_usd -= margin
    pos.iso_raw += margin - size * px // NTL_DIV
    pos.szi += size


def _close(account: Account, pos: Position, size: int, px: int, strict: bool) -> None:
    """Shrinks |szi| of an isolated position by |size| at `px`; entry unchanged."""
    old = abs(pos.szi)
    equity = pos.iso_raw + pos.szi * px // NTL_DIV
    pos.szi += size
    pos.iso_raw -= size * px // NTL_DIV
    if not pos.szi:
        account.raw_usd += pos.iso_raw
        pos.iso_raw = 0
        pos.entry_px = 0
    elif strict and equity > 0:
        release = equity * abs(size) // old
        pos.iso_raw -= release
        account.raw_usd += release


def _grow_entry(pos: Position, old: int, added: int, px: int) -> None:
    """Entry moves to the size-weighted average; a position opening from zero starts its
    since-open funding."""
    if old:
        pos.entry_px = round_half_even(old * pos.entry_px + added * px, old + added)
    else:
        pos.entry_px = px
        pos.funding_open = 0


def apply_fill(account: Account, pos: Position, market: MarketState, size: int, px: int, fee: int) -> int:
    """Applies a fill of signed `size` at `px` paying `fee` (negative = rebate) to one side;
    returns the funding it settled first (the size is about to change). Cross positions, the
    hot path, are handled inline."""
    szi = pos.szi
    index = market.funding_index
    funding = settle_funding(account, pos, market) if szi and pos.funding_index != index else 0
    pos.funding_index = index
    after = szi + size
    if pos.cross:
        account.raw_usd -= size * px // NTL_DIV + fee
        if not szi or (szi > 0) == (size > 0):
            _grow_entry(pos, abs(szi), abs(size), px)
        elif not after:
            pos.entry_px = 0
        elif (after > 0) != (szi > 0):
            _grow_entry(pos, 0, abs(after), px)
        pos.szi = after
    else:
        pos.iso_raw -= fee
        if not szi or (szi > 0) == (size > 0):
            _open(account, pos, size, px)
        elif abs(size) <= abs(szi):
            _close(account, pos, size, px, market.only_isolated)
        else:  # a flip: close everything, open the remainder at the fill price
            _close(account, pos, -szi, px, market.only_isolated)
            _open(account, pos, after, px)
    pos.funding_change = 0
    if szi > 0:
        market.long_size -= szi
    elif szi < 0:
        market.short_size += szi
    if after > 0:
        market.long_size += after
    elif after < 0:
        market.short_size -= after
    return funding
