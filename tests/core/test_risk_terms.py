"""The risk model's terms (docs/risk-margin.md, ../shared spec risk-model.md), each worked by
hand: the scan and its binding scenario, the floor, the spread credit (the spec's A/B example),
each charge, the IM and MM factors, rounding up, and the spec's worked example. Amounts in the
assertions are micro-USDC (`usd`)."""

from __future__ import annotations

from typing import Any

from clearinghouse.risk.params import params_error
from clearinghouse.risk.requirement import Term, figures
from events.units import usd
from tests.support.risk import SPEC_PARAMS, book, exposure, params, rules


def _unit(moves: list[str], **fields: str) -> dict[str, Any]:
    return {"scenarios": [{"move": m} for m in moves], **fields}


def _params(**fields: Any) -> dict[str, Any]:
    """Loss factors 1 and no loans unless given; a default unit with no charges."""
    base: dict[str, Any] = {
        "mm_loss_factor": "1",
        "im_loss_factor": "1",
        "units": {},
        "default_unit": _unit(["-0.1", "0.1"]),
        "aliases": {},
        "credits": [],
        "loan_rate_mm": "0",
        "loan_rate_im": "0",
    }
    return {**base, **fields}


# ---- the worked example of risk-model.md (one unit BTC, o = m = 100,000) -----------------------


def test_worked_example_carry() -> None:
    # spot 10 BTC, perp -10 BTC: pnl(s) = (1,000,000 - 1,000,000) * f_s = 0 in every scenario,
    # scan 0 (binding: the first scenario); basis MM 0.005 * min(10, 10) * 100,000 = 5,000,
    # IM 0.01 * 1,000,000 = 10,000
    f = figures(book(BTC=exposure(spot="10", perp="-10")), rules())
    assert f.terms == (
        Term("scan", "BTC", 0, 0, 0, 0),
        Term("basis", "BTC", 0, usd("5000"), usd("10000")),
    )
    assert (f.maintenance, f.initial) == (usd("5000"), usd("10000"))


def test_worked_example_directional() -> None:
    # perp +10 BTC: pnl(-15%) = 1,000,000 * -0.15 = -150,000, the worst (binding: scenario 0);
    # MM 0.5 * 150,000 = 75,000, IM 1 * 150,000 = 150,000; no spot, so no basis charge
    f = figures(book(BTC=exposure(perp="10")), rules())
    assert f.terms == (Term("scan", "BTC", usd("150000"), usd("75000"), usd("150000"), 0),)
    assert (f.maintenance, f.initial) == (usd("75000"), usd("150000"))


# ---- the scan ----------------------------------------------------------------------------------


def test_scan_takes_the_worst_weighted_loss_and_names_it() -> None:
    # short 2 BTC at 50,000 (value -100,000): +10% loses 10,000 at weight 1; +30% loses 30,000
    # at weight 0.35 = 10,500, the worst; -30% gains
    unit = {"scenarios": [{"move": "-0.3", "weight": "0.35"}, {"move": "0.1"}, {"move": "0.3", "weight": "0.35"}]}
    f = figures(book(BTC=exposure(perp="-2", px="50000")), rules(_params(units={"BTC": unit})))
    assert f.terms == (Term("scan", "BTC", usd("10500"), usd("10500"), usd("10500"), 2),)


def test_scan_ties_bind_at_the_first_scenario() -> None:
    # long 1 at 100: -10% loses 10 at weight 1 and -20% loses 20 at weight 0.5 = 10: a tie, the first binds
    unit = {"scenarios": [{"move": "0.1"}, {"move": "-0.1"}, {"move": "-0.2", "weight": "0.5"}]}
    f = figures(book(XYZ=exposure(spot="1", px="100")), rules(_params(units={"XYZ": unit})))
    assert f.terms[0].binding == 1 and f.terms[0].base == usd("10")


def test_scan_revalues_the_perp_at_its_mark() -> None:
    # perp -1 at mark 110 (oracle 100): value -110, +10% loses 11
    f = figures(book(XYZ=exposure(perp="-1", px="100", mark="110")), rules(_params()))
    assert f.terms == (Term("scan", "XYZ", usd("11"), usd("11"), usd("11"), 1),)


# ---- the floor ---------------------------------------------------------------------------------


def test_floor_binds_on_a_hedged_unit() -> None:
    # spot 100 at 10 and perp -100 at 10: pnl 0; the floor 0.01 * (1,000 + 1,000) = 20 binds (-1);
    # MM 0.5 * 20 = 10, IM 20
    unit = _unit(["-0.25", "0.25"], min_charge="0.01")
    p = _params(mm_loss_factor="0.5", units={"XYZ": unit})
    f = figures(book(XYZ=exposure(spot="100", perp="-100", px="10")), rules(p))
    assert f.terms == (Term("scan", "XYZ", usd("20"), usd("10"), usd("20"), -1),)


def test_floor_below_the_scan_does_not_bind() -> None:
    # long 100 at 10: -25% loses 250 > floor 0.01 * 1,000 = 10
    unit = _unit(["-0.25", "0.25"], min_charge="0.01")
    f = figures(book(XYZ=exposure(spot="100", px="10")), rules(_params(units={"XYZ": unit})))
    assert f.terms == (Term("scan", "XYZ", usd("250"), usd("250"), usd("250"), 0),)


# ---- spread credits ----------------------------------------------------------------------------


def _ab(rate: str) -> dict[str, Any]:
    return _params(units={"A": _unit(["0.1"]), "B": _unit(["-0.1"])}, credits=[{"units": ["A", "B"], "rate": rate}])


def test_credit_example_of_the_spec() -> None:
    # A: perp 10 at 100 (1,000) gains 100 at +10%; B: spot 8 at 100 (800) loses 80 at -10%;
    # L_G = 80 - 0.5 * 100 = 30 replaces the members' scans (0 and 80)
    f = figures(book(A=exposure(perp="10", px="100"), B=exposure(spot="8", px="100")), rules(_ab("0.5")))
    assert f.terms == (Term("scan", "A+B", usd("30"), usd("30"), usd("30"), 0),)


def test_credit_never_goes_below_zero() -> None:
    # rate 1: L_G = 80 - 100 = -20, the scan is max(0, -20) = 0
    f = figures(book(A=exposure(perp="10", px="100"), B=exposure(spot="8", px="100")), rules(_ab("1")))
    assert f.terms == (Term("scan", "A+B", 0, 0, 0, 0),)


def test_a_group_member_alone_keeps_its_own_scan() -> None:
    # only B in the book: its own scan, 80
    f = figures(book(B=exposure(spot="8", px="100")), rules(_ab("0.5")))
    assert f.terms == (Term("scan", "B", usd("80"), usd("80"), usd("80"), 0),)


def test_credit_on_aligned_scenarios_with_weights() -> None:
    # A and B both at moves (-0.1 weight 1, +0.2 weight 0.5), rate 0.5; A long 1,000, B short 600
    # k=0: A loses 100 (w 1), B gains 60: L = 100 - 0.5 * 60 = 70
    # k=1: A gains 200 * 0.5 = 100, B loses 120 * 0.5 = 60: L = 60 - 0.5 * 100 = 10; scan 70 at k=0
    unit = {"scenarios": [{"move": "-0.1"}, {"move": "0.2", "weight": "0.5"}]}
    p = _params(units={"A": unit, "B": unit}, credits=[{"units": ["A", "B"], "rate": "0.5"}])
    f = figures(book(A=exposure(spot="10", px="100"), B=exposure(perp="-6", px="100")), rules(p))
    assert f.terms == (Term("scan", "A+B", usd("70"), usd("70"), usd("70"), 0),)


# ---- the charges -------------------------------------------------------------------------------


def test_perp_contingency_at_the_oracle() -> None:
    # perp -2 at oracle 50,000 (mark 51,000): 0.005 * 100,000 = 500 MM, 0.01 * 100,000 = 1,000 IM;
    # scan: value -102,000 at +10% loses 10,200
    unit = _unit(["-0.1", "0.1"], perp_rate_mm="0.005", perp_rate_im="0.01")
    f = figures(book(BTC=exposure(perp="-2", px="50000", mark="51000")), rules(_params(units={"BTC": unit})))
    assert f.terms == (
        Term("scan", "BTC", usd("10200"), usd("10200"), usd("10200"), 1),
        Term("perp", "BTC", 0, usd("500"), usd("1000")),
    )


def test_basis_on_the_matched_part_only() -> None:
    # spot 10, perp -4 at 1,000: matched min(10, 4) = 4, basis 0.01 * 4,000 = 40 MM, 0.02 * 4,000 = 80 IM;
    # net 6,000 long: -10% loses 600
    unit = _unit(["-0.1", "0.1"], basis_rate_mm="0.01", basis_rate_im="0.02")
    f = figures(book(XYZ=exposure(spot="10", perp="-4", px="1000")), rules(_params(units={"XYZ": unit})))
    assert f.terms == (
        Term("scan", "XYZ", usd("600"), usd("600"), usd("600"), 0),
        Term("basis", "XYZ", 0, usd("40"), usd("80")),
    )


def test_no_basis_when_spot_and_perp_have_one_sign() -> None:
    unit = _unit(["-0.1", "0.1"], basis_rate_mm="0.01", basis_rate_im="0.02")
    f = figures(book(XYZ=exposure(spot="10", perp="4", px="1000")), rules(_params(units={"XYZ": unit})))
    assert [t.kind for t in f.terms] == ["scan"]


def test_concentration_grows_with_the_square_of_net_notional() -> None:
    # net 1,000 at 100 = 100,000 USDC: 0.1 * 100,000^2 / 1,000,000 = 1,000 (both rates); the scan
    # 10% of 100,000 = 10,000
    unit = _unit(["-0.1", "0.1"], conc="0.1", depth="1000000")
    f = figures(book(XYZ=exposure(spot="1000", px="100")), rules(_params(units={"XYZ": unit})))
    assert f.terms[1] == Term("concentration", "XYZ", 0, usd("1000"), usd("1000"))
    # twice the size: 0.1 * 200,000^2 / 1,000,000 = 4,000
    f = figures(book(XYZ=exposure(spot="2000", px="100")), rules(_params(units={"XYZ": unit})))
    assert f.terms[1] == Term("concentration", "XYZ", 0, usd("4000"), usd("4000"))


def test_loan_charge_on_borrowed_usdc() -> None:
    # 10,000 USDC borrowed: 0.01 * 10,000 = 100 MM, 0.02 * 10,000 = 200 IM
    f = figures(book(loans=usd("10000")), rules(_params(loan_rate_mm="0.01", loan_rate_im="0.02")))
    assert f.terms == (Term("loan", "USDC", 0, usd("100"), usd("200")),)
    assert (f.maintenance, f.initial) == (usd("100"), usd("200"))


# ---- factors, sums and rounding ------------------------------------------------------------------


def test_requirement_sums_factored_scans_and_charges() -> None:
    # spec params: BTC perp 1 (scan 15,000: MM 7,500, IM 15,000) and XYZ (the default unit of
    # _params: +-10%, no charges) spot 100 at 10 (scan 100: MM 50, IM 100); 5,000 USDC borrowed
    # (MM 50, IM 100): MM 7,600, IM 15,200
    p = {**SPEC_PARAMS, "default_unit": _unit(["-0.1", "0.1"])}
    f = figures(book(loans=usd("5000"), BTC=exposure(perp="1"), XYZ=exposure(spot="100", px="10")), rules(p))
    assert (f.maintenance, f.initial) == (usd("7600"), usd("15200"))


def test_each_term_rounds_up_to_the_micro_usdc() -> None:
    # perp 0.00000001 BTC at 1 USDC: value 0.00000001 USDC, -15% loses 0.0000000015 USDC:
    # the scan rounds up to 0.000001, MM 0.5 * 0.0000000015 up to 0.000001 too
    f = figures(book(BTC=exposure(perp="0.00000001", px="1")), rules())
    assert f.terms == (Term("scan", "BTC", 1, 1, 1, 0),)


def test_parameters_out_of_range_are_named() -> None:
    assert params_error(params(SPEC_PARAMS)) is None
    assert params_error(params({**SPEC_PARAMS, "im_loss_factor": "0.4"})) == (
        "im_loss_factor must not be below mm_loss_factor"
    )
    bad_group = {**SPEC_PARAMS, "credits": [{"units": ["BTC", "ETH"], "rate": "0.5"}], "default_unit": _unit(["0"])}
    assert params_error(params(bad_group)) == "credit group 0: its underlyings' scenario lists differ in length"
    assert params_error(params({**SPEC_PARAMS, "credits": [{"units": ["UBTC", "ETH"], "rate": "0.5"}]})) == (
        "credit group 0 names the alias 'UBTC': name its underlying"
    )
    weight = {**SPEC_PARAMS, "units": {"BTC": _unit(["-2"])}}
    assert params_error(params(weight)) == "BTC scenario 0: move must be between -1 and 10"
    assert params_error(params({**SPEC_PARAMS, "model": "span"})) == "model must be 'risk', not 'span'"
