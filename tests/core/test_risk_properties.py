"""Properties of the risk model on random books (hypothesis), under the shipped defaults (BTC
and ETH in a 70% credit group, SOL and DOGE on the default alt unit) and variants of them.

Books hold, per underlying, a spot amount and a cross perp at one oracle and a mark within 2%
of it; sizes are whole multiples of 0.001 coin. `MM` and `IM` are the model's requirement."""

from __future__ import annotations

from fractions import Fraction

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from clearinghouse.risk.defaults import DEFAULTS
from clearinghouse.risk.exposure import Book, Exposure
from clearinghouse.risk.params import RiskRules, resolved
from clearinghouse.risk.requirement import figures
from clearinghouse.risk.scan import pnls
from events.units import NTL_DIV, PX, RATE

UNDERLYINGS = ("BTC", "DOGE", "ETH", "SOL")
PRICES = {"BTC": 100_000, "DOGE": 1, "ETH": 4_000, "SOL": 200}
MILLI = 10**5  # 0.001 coin in 1e-8

sizes = st.integers(min_value=-5_000, max_value=5_000)  # in 0.001 coin
marks = st.integers(min_value=-200, max_value=200)  # mark - oracle in 0.01%


def _exposure(u: str, spot: int, perp: int, mark_bp: int) -> Exposure:
    o = PRICES[u] * PX
    m = o + o * mark_bp // 10_000
    s, p = spot * MILLI, perp * MILLI
    return Exposure(s, s * o, p, p * m, p * o, o)


@st.composite
def books(draw: st.DrawFn) -> dict[str, tuple[int, int, int]]:
    chosen = draw(st.lists(st.sampled_from(UNDERLYINGS), min_size=1, max_size=4, unique=True))
    return {u: (draw(sizes), draw(sizes), draw(marks)) for u in sorted(chosen)}


def _book(spec: dict[str, tuple[int, int, int]], loans: int = 0) -> Book:
    return Book(0, {u: _exposure(u, *spec[u]) for u in sorted(spec)}, loans)


def _req(spec: dict[str, tuple[int, int, int]], rules: RiskRules) -> tuple[int, int]:
    f = figures(_book(spec), rules)
    return f.maintenance, f.initial


SHIPPED = resolved(DEFAULTS)
NO_CREDIT = resolved(msgspec.structs.replace(DEFAULTS, credits=[]))


@settings(max_examples=300, deadline=None)
@given(books(), st.sampled_from(UNDERLYINGS), st.booleans(), st.integers(min_value=1, max_value=3_000))
def test_monotone_in_each_exposure_away_from_zero(spec, u, spot_leg, more) -> None:  # noqa: ANN001
    """Growing the leg of an underlying that points the way of its net exposure (so the net
    moves away from zero and no leg shrinks) never lowers MM or IM, for an underlying outside
    any credit group, or inside one whose members in the book are all net long or all net
    short (their scenario grids are aligned move for move). Across a credit group of opposite
    legs it need not hold: growing one leg of a pair hedges the other, which is not adding
    risk; scaling the whole book is (`test_scaling_the_book_never_lowers_it`)."""
    spec = dict(spec)
    spot, perp, mark = spec.get(u, (0, 0, 0))
    net = _exposure(u, spot, perp, mark)
    direction = 1 if net.spot_value + net.perp_value >= 0 else -1
    if spot_leg and spot * direction >= 0:
        grown = (spot + direction * more, perp, mark)
    elif not spot_leg and perp * direction >= 0:
        grown = (spot, perp + direction * more, mark)
    else:
        return  # that leg points the other way: growing it is hedging
    in_group = u in SHIPPED.group_of
    if in_group:
        members = [v for v in spec if v in SHIPPED.group_of and v != u]
        signs = {1 if (e := _exposure(v, *spec[v])).spot_value + e.perp_value >= 0 else -1 for v in members}
        if signs - {direction}:
            return
    after = {**spec, u: grown}
    before_mm, before_im = _req(spec, SHIPPED)
    after_mm, after_im = _req(after, SHIPPED)
    assert after_mm >= before_mm and after_im >= before_im


@settings(max_examples=200, deadline=None)
@given(books(), st.integers(min_value=2, max_value=5))
def test_scaling_the_book_never_lowers_it(spec, factor) -> None:  # noqa: ANN001
    """Every exposure times an integer factor >= 2: each scan is positively homogeneous (credit
    groups included), charges grow at least linearly, so MM and IM never fall."""
    scaled = {u: (s * factor, p * factor, m) for u, (s, p, m) in spec.items()}
    mm, im = _req(spec, SHIPPED)
    smm, sim = _req(scaled, SHIPPED)
    assert smm >= mm and sim >= im


@settings(max_examples=300, deadline=None)
@given(books())
def test_never_below_the_worst_net_loss_of_an_aligned_scenario(spec) -> None:  # noqa: ANN001
    """Every underlying of the shipped defaults has 9 scenarios, so scenario k of all of them
    together is one state of the world. For every k:
    `MM >= mm_loss_factor * sum over u of w_k(u) * (-pnl_u(k))` and the same for IM with its
    factor: a unit's scan is at least its weighted loss in k (at least 0 >= a gain), a group's
    `L_G(k) >= sum of w_k * (-pnl)` because its credit rate is at most 1, charges are >= 0 and
    rounding goes up. With weights 1 and the IM factor 1 (the BTC/ETH moves of at most 15%), IM
    is at least the book's net loss in that scenario."""
    book = _book(spec)
    f = figures(book, SHIPPED)
    count = len(SHIPPED.default_unit.moves)
    for k in range(count):
        loss = Fraction(0)
        for u, e in book.units.items():
            unit = SHIPPED.unit(u)
            loss -= Fraction(unit.weights[k] * pnls(e, unit)[k], RATE * RATE * NTL_DIV)
        mm_factor, im_factor = (Fraction(x, RATE) for x in SHIPPED.loss_factor)
        assert f.maintenance >= mm_factor * loss
        assert f.initial >= im_factor * loss


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(UNDERLYINGS),
    st.integers(min_value=1, max_value=5_000),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=1, max_value=100),
)
def test_a_carry_does_not_grow_with_the_move_range(u, size, r1, r2) -> None:  # noqa: ANN001
    """Spot `size` and perp `-size` at mark = oracle: every scenario's pnl is 0, so the scan is
    0 whatever the moves; the floor, basis and concentration do not read the moves. The
    requirement under every move of the shipped grid scaled by r1/100 equals it under r2/100."""
    spec = {u: (size, -size, 0)}
    reqs = []
    for r in (r1, r2):
        scaled = {
            "units": {n: _scaled_unit(v, r) for n, v in (DEFAULTS.units or {}).items()},
            "default_unit": _scaled_unit(DEFAULTS.default_unit, r),
        }
        reqs.append(_req(spec, resolved(msgspec.structs.replace(DEFAULTS, **scaled))))
    assert reqs[0] == reqs[1]


def _scaled_unit(unit, percent: int):  # noqa: ANN001, ANN202
    return msgspec.structs.replace(
        unit, scenarios=[msgspec.structs.replace(s, move=s.move * percent // 100) for s in unit.scenarios]
    )


@settings(max_examples=300, deadline=None)
@given(books(), st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
def test_a_credit_never_raises_a_requirement(spec, a, b) -> None:  # noqa: ANN001
    """The BTC/ETH group at any rate gives at most what no group gives, and a higher rate at
    most what a lower one gives: `L_G(k) <= sum of the members' weighted losses in k <= sum of
    their own scans`, and the credit only subtracts."""
    low, high = sorted((a, b))

    def at(percent: int) -> RiskRules:
        credits = [msgspec.structs.replace(c, rate=RATE * percent // 100) for c in DEFAULTS.credits or []]
        return resolved(msgspec.structs.replace(DEFAULTS, credits=credits))

    none = _req(spec, NO_CREDIT)
    at_low, at_high = _req(spec, at(low)), _req(spec, at(high))
    assert at_low[0] <= none[0] and at_low[1] <= none[1]
    assert at_high[0] <= at_low[0] and at_high[1] <= at_low[1]
