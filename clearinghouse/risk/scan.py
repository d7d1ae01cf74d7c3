"""The scenario scan of one underlying and of a spread-credit group (docs/risk-margin.md).

Exact integers: a pnl is an exposure value (1e-16 USDC) times a move (1e-12), a weighted loss
times a weight (1e-12) more, so a unit's scan is exact in 1e-40 USDC (`UNIT_DEN` of them to a
micro-USDC) and a group's, whose credit multiplies by its rate (1e-12), in 1e-52 USDC
(`GROUP_DEN`). Nothing is rounded here: `requirement` rounds each term up once."""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse.risk.exposure import Exposure
from clearinghouse.risk.params import Group, Unit
from events.units import RATE

UNIT_DEN = 10**34  # 1e-40 USDC in a micro-USDC
GROUP_DEN = UNIT_DEN * RATE  # 1e-52 USDC in a micro-USDC


class Scan(NamedTuple):
    """A scan `exact / den` micro-USDC; `binding`: the scenario's index in the list (the first
    of equals), or -1 when the floor binds."""

    exact: int
    den: int
    binding: int


def pnls(e: Exposure, unit: Unit) -> list[int]:
    """`pnl(s) = (spot value + perp value) * move_s` per scenario (1e-28 USDC)."""
    total = e.spot_value + e.perp_value
    return [total * move for move in unit.moves]


def unit_scan(e: Exposure, unit: Unit) -> Scan:
    """`max over s of w_s * max(0, -pnl(s))`, raised to the floor
    `min_charge * (|spot value| + |perp value|)`. With the unit's value `v` long, every loss is
    `v * w_s * max(0, -move_s)`, so the worst is `v` times the unit's `fall` (short: `-v` times
    its `rise`), at the scenario that gives it (the first of equals; the first scenario when
    none loses): one product, not one per scenario."""
    total = e.spot_value + e.perp_value
    if total > 0:
        per, at = unit.fall
        worst = total * per
    elif total < 0:
        per, at = unit.rise
        worst = -total * per
    else:
        worst = at = 0
    floor = unit.min_charge * (abs(e.spot_value) + abs(e.perp_value)) * RATE
    if floor > worst:
        return Scan(floor, UNIT_DEN, -1)
    return Scan(worst, UNIT_DEN, at if worst else 0)


def group_scan(members: dict[str, tuple[Exposure, Unit]], group: Group) -> Scan:
    """On aligned scenarios k (each member's own k-th move at once):
    `L(k) = sum of w_k * max(0, -pnl_k) - rate * sum of w_k * max(0, pnl_k)`; the scan is
    `max(0, max over k of L(k))`, binding at the first k attaining the maximum."""
    count = len(next(iter(members.values()))[1].moves)
    loss = [0] * count
    gain = [0] * count
    for e, unit in members.values():
        for k, (w, p) in enumerate(zip(unit.weights, pnls(e, unit), strict=True)):
            if p < 0:
                loss[k] -= w * p
            else:
                gain[k] += w * p
    net = [RATE * lo - group.rate * g for lo, g in zip(loss, gain, strict=True)]
    worst = max(net)
    return Scan(max(0, worst), GROUP_DEN, net.index(worst))
