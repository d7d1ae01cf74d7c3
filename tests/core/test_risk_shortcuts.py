"""The risk model's hot-path shortcuts against their simple twins, on random parameters and
books (hypothesis): the scan of one unit in one product (`scan.unit_scan`, from the unit's
`fall` and `rise`) against the scan over every scenario as risk-model.md defines it, and the
engine's sums without the breakdown (`requirement.totals`) against the breakdown's terms
(`requirement.figures`)."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from clearinghouse.risk.defaults import DEFAULTS
from clearinghouse.risk.exposure import Book, Exposure
from clearinghouse.risk.params import resolved
from clearinghouse.risk.requirement import figures, totals
from clearinghouse.risk.scan import UNIT_DEN, Scan, unit_scan
from events.schema import RiskCredit, RiskParams, RiskScenario, RiskUnit
from events.units import PX, RATE

PERCENT = RATE // 100
moves = st.integers(min_value=-100, max_value=200).map(lambda p: p * PERCENT)
weights = st.integers(min_value=0, max_value=100).map(lambda p: p * PERCENT)
rates = st.integers(min_value=0, max_value=50).map(lambda p: p * PERCENT // 10)


@st.composite
def risk_units(draw: st.DrawFn, count: int | None = None) -> RiskUnit:
    """A unit of `count` (or 1 to 9) scenarios, zero weights and zero moves included."""
    n = count if count is not None else draw(st.integers(min_value=1, max_value=9))
    scenarios = [RiskScenario(move=draw(moves), weight=draw(weights)) for _ in range(n)]
    mm, im = sorted((draw(rates), draw(rates)))
    bmm, bim = sorted((draw(rates), draw(rates)))
    return RiskUnit(
        scenarios=scenarios,
        min_charge=draw(rates),
        perp_rate_mm=mm,
        perp_rate_im=im,
        basis_rate_mm=bmm,
        basis_rate_im=bim,
        conc=draw(rates),
        depth=draw(st.integers(min_value=1, max_value=10**4)) * 10**6 * 10**6,
    )


@st.composite
def exposures(draw: st.DrawFn) -> Exposure:
    """Spot and perp sizes of either sign (zero included) at an oracle and a mark near it."""
    oracle = draw(st.integers(min_value=1, max_value=10**7)) * PX // 100
    mark = oracle + oracle * draw(st.integers(min_value=-300, max_value=300)) // 10_000
    spot = draw(st.integers(min_value=-(10**12), max_value=10**12))
    perp = draw(st.integers(min_value=-(10**12), max_value=10**12))
    return Exposure(spot, spot * oracle, perp, perp * mark, perp * oracle, oracle)


def scan_of_every_scenario(e: Exposure, moves: tuple[int, ...], weights: tuple[int, ...], floor: int) -> Scan:
    """risk-model.md's scan as written: `max over s of w_s * max(0, -pnl(s))`, the binding
    scenario the first of equals, raised to the floor `min_charge * gross`."""
    total = e.spot_value + e.perp_value
    losses = [w * max(0, -total * m) for w, m in zip(weights, moves, strict=True)]
    worst = max(losses)
    gross = floor * (abs(e.spot_value) + abs(e.perp_value)) * RATE
    if gross > worst:
        return Scan(gross, UNIT_DEN, -1)
    return Scan(worst, UNIT_DEN, losses.index(worst))


@settings(max_examples=500, deadline=None)
@given(risk_units(), exposures())
def test_the_one_product_scan_is_the_scan_over_every_scenario(unit, e) -> None:  # noqa: ANN001
    rules = resolved(RiskParams(model="risk", units={"X": unit}))
    u = rules.unit("X")
    assert unit_scan(e, u) == scan_of_every_scenario(e, u.moves, u.weights, u.min_charge)


@st.composite
def params_and_books(draw: st.DrawFn) -> tuple[RiskParams, Book]:
    """Random units for A, B, C and D (A and B in a credit group, of one scenario count, half
    the time), and a book of some of them, with loans."""
    count = draw(st.integers(min_value=1, max_value=9))
    units = {u: draw(risk_units(count)) for u in "ABCD"}
    credits = [RiskCredit(units=["A", "B"], rate=draw(weights))] if draw(st.booleans()) else []
    lf_mm, lf_im = sorted((draw(weights), draw(st.integers(min_value=0, max_value=300).map(lambda p: p * PERCENT))))
    params = msgspec.structs.replace(
        DEFAULTS, units=units, credits=credits, mm_loss_factor=lf_mm, im_loss_factor=lf_im, aliases={}
    )
    held = draw(st.lists(st.sampled_from("ABCDE"), min_size=0, max_size=5, unique=True))
    book = Book(
        draw(st.integers(min_value=-(10**15), max_value=10**15)),
        {u: draw(exposures()) for u in sorted(held)},
        draw(st.integers(min_value=0, max_value=10**15)),
    )
    return params, book


@settings(max_examples=500, deadline=None)
@given(params_and_books())
def test_the_sums_without_the_breakdown_are_the_breakdowns_sums(drawn) -> None:  # noqa: ANN001
    params, book = drawn
    rules = resolved(params)
    full = figures(book, rules)
    assert full.initial == sum(t.initial for t in full.terms)
    assert totals(book, rules) == (full.equity, full.initial, full.maintenance, ())
