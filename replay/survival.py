"""At what marks a liquidated scope would have stayed at maintenance: the audit's "would have
survived at" figure, exact and in integers.

One position: the liquidation price of the engine's own margin rules (`margin.liquidation_price`,
docs/rules.md section 2) with the scope's equity as what backs it, i.e. the mark at which that
position's equity meets its maintenance, every other price fixed.

Several positions (a cross book): the smallest uniform move of every mark, in parts per million
(each mark times `1 + move / 1e6`), at which equity reaches maintenance again. Equity and
maintenance at the moved marks are the engine's: position values and tiered maintenance of
`margin`, the cash and unsettled funding unchanged. The search doubles the move on each side
(up to +1000% and down to a mark of zero) until equity covers maintenance, then bisects; the
side with the smaller move wins. None when no such move exists (e.g. a hedged book whose
maintenance grows faster than its equity on both sides).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from clearinghouse import margin
from clearinghouse.models.registry import MODELS
from clearinghouse.rules import RULE_SETS
from clearinghouse.state import State
from clearinghouse.tiers import TierTable
from events import schema as ev
from events.units import PX_DECIMALS, format_decimal, round_half_even

PPM = 1_000_000
UP_LIMIT = 10 * PPM  # the largest upward move tried: +1000%
PCT_SCALE = 100 * 100  # percentages with two decimals


def percent(num: int, den: int) -> str | None:
    """num / den as a percentage with two decimals (half to even); None when den is 0."""
    return format_decimal(round_half_even(num * PCT_SCALE, den), 2, 2) if den > 0 else None


def survival(decision: ev.LiquidationTriggered, state: State) -> dict[str, Any] | None:
    """The survival figures of a triggered scope (JSON-ready), None for a scope the margin
    rules above do not describe: a whole book judged on its model's own figures (the
    portfolio-margin ratio, the risk model's scenarios), or a ledger with no position."""
    model = MODELS.get(decision.scope)
    if (model is not None and model.ratio_liquidation) or not decision.positions:
        return None
    if len(decision.positions) == 1:
        return _one(decision, state)
    account = state.accounts[decision.account]
    tables = [margin.table_of(account.positions[v.coin], state.markets[v.coin]) for v in decision.positions]
    move = uniform_move(decision, tables)
    return {
        "method": "uniform move",
        "move_pct": None if move is None else percent(move, PPM),
        "marks": None
        if move is None
        else {v.coin: format_decimal(_moved(v.mark, move), PX_DECIMALS) for v in decision.positions},
    }


def _one(decision: ev.LiquidationTriggered, state: State) -> dict[str, Any]:
    """The liquidation price of the scope's one position, as it was at the trigger."""
    (view,) = decision.positions
    pos = msgspec.structs.replace(state.accounts[decision.account].positions[view.coin], szi=view.szi)
    market = msgspec.structs.replace(state.markets[view.coin], mark=view.mark)
    price = margin.liquidation_price(pos, market, decision.equity, RULE_SETS[state.rules])
    return {
        "method": "liquidation price",
        "coin": view.coin,
        "mark": None if price is None else format_decimal(price, PX_DECIMALS),
        "move_pct": None if price is None else percent(price - view.mark, view.mark),
    }


def _moved(mark: int, move: int) -> int:
    return mark * (PPM + move) // PPM


def gap_at(decision: ev.LiquidationTriggered, tables: list[TierTable]) -> Callable[[int], int]:
    """Equity less maintenance of the scope with every mark moved by `move` ppm; at 0 it is
    the trigger's own `equity - maintenance`."""

    def gap(move: int) -> int:
        total = decision.equity - decision.maintenance
        for view, table in zip(decision.positions, tables, strict=True):
            mark = _moved(view.mark, move)
            total += margin.value(view.szi, mark) - margin.value(view.szi, view.mark)
            total -= table.maintenance(margin.notional(view.szi, mark))
            total += table.maintenance(margin.notional(view.szi, view.mark))
        return total

    return gap


def uniform_move(decision: ev.LiquidationTriggered, tables: list[TierTable]) -> int | None:
    """The smallest move in ppm (signed) at which equity covers maintenance, or None."""
    gap = gap_at(decision, tables)
    found = [m for m in (_search(gap, 1, UP_LIMIT), _search(gap, -1, PPM - 1)) if m is not None]
    return min(found, key=abs) if found else None


def _search(gap: Callable[[int], int], side: int, limit: int) -> int | None:
    """Doubles the move on one side until the gap closes, then bisects to its first ppm."""
    failing, step = 0, 1
    while gap(side * step) < 0:
        if step >= limit:
            return None
        failing, step = step, min(2 * step, limit)
    while step - failing > 1:
        middle = (failing + step) // 2
        if gap(side * middle) < 0:
            failing = middle
        else:
            step = middle
    return side * step
