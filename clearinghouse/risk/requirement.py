"""The risk model's requirement of a book, with every term (docs/risk-margin.md).

`MM = sum over units and groups of ceil(mm_loss_factor * scan) + every charge at its MM rate`,
`IM` the same at the IM factor and rates. Each term is rounded up to the micro-USDC once, from
its exact value, so the requirement is never below the exact one (and at most a micro-USDC per
term above it)."""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse.risk import charges
from clearinghouse.risk.exposure import Book, Exposure
from clearinghouse.risk.params import RiskRules, Unit
from clearinghouse.risk.scan import Scan, group_scan, unit_scan
from events.units import RATE, ceil_div


class Term(NamedTuple):
    """One line of the breakdown: `kind` "scan" (a unit or a group: `name` is the underlying,
    or the members joined by "+"), "perp", "basis", "concentration" or "loan"; `base` the
    scan (rounded up) or 0; its maintenance and initial amounts; `binding` the scenario index
    (-1: the floor) of a scan, else None."""

    kind: str
    name: str
    base: int
    maintenance: int
    initial: int
    binding: int | None = None


class RiskFigures(NamedTuple):
    """Equity, IM and MM with every term (`figures`), or without them (`totals`: terms empty)."""

    equity: int
    initial: int
    maintenance: int
    terms: tuple[Term, ...] = ()


def _scan_term(name: str, scan: Scan, rules: RiskRules) -> Term:
    mm, im = rules.loss_factor
    den = scan.den * RATE
    return Term(
        "scan",
        name,
        ceil_div(scan.exact, scan.den),
        ceil_div(mm * scan.exact, den),
        ceil_div(im * scan.exact, den),
        scan.binding,
    )


def scans(book: Book, rules: RiskRules) -> list[Term]:
    """A term per underlying outside any credit group (or alone of its group in the book) and
    per group with two or more members in the book, in name order."""
    grouped: dict[int, dict[str, tuple[Exposure, Unit]]] = {}
    terms: list[Term] = []
    for u, e in book.units.items():
        g = rules.group_of.get(u)
        if g is not None:
            grouped.setdefault(g, {})[u] = (e, rules.unit(u))
    for u, e in book.units.items():
        g = rules.group_of.get(u)
        if g is None or len(grouped[g]) < 2:
            terms.append(_scan_term(u, unit_scan(e, rules.unit(u)), rules))
    for g in sorted(grouped):
        members = grouped[g]
        if len(members) >= 2:
            terms.append(_scan_term("+".join(members), group_scan(members, rules.groups[g]), rules))
    terms.sort(key=lambda t: t.name)
    return terms


def charge_terms(book: Book, rules: RiskRules) -> list[Term]:
    """The non-zero charges, by underlying then kind; the loan charge last."""
    terms: list[Term] = []
    for u, e in book.units.items():
        unit = rules.unit(u)
        for kind, (mm, im) in (("perp", charges.perp(e, unit)), ("basis", charges.basis(e, unit))):
            if mm or im:
                terms.append(Term(kind, u, 0, mm, im))
        conc = charges.concentration(e, unit)
        if conc:
            terms.append(Term("concentration", u, 0, conc, conc))
    mm, im = charges.loan(book.loans, rules.loan_rate)
    if mm or im:
        terms.append(Term("loan", "USDC", 0, mm, im))
    return terms


def figures(book: Book, rules: RiskRules) -> RiskFigures:
    terms = (*scans(book, rules), *charge_terms(book, rules))
    return RiskFigures(book.equity, sum(t.initial for t in terms), sum(t.maintenance for t in terms), terms)


Pair = tuple[int, int]  # (maintenance, initial) in micro-USDC
Members = dict[str, tuple[Exposure, Unit]]


def part_of(rules: RiskRules, underlying: str) -> str | int:
    """The part of the requirement an underlying's terms fall in: its credit group's index, or
    the underlying itself outside any group. A part's terms read only its own underlyings."""
    g = rules.group_of.get(underlying)
    return underlying if g is None else g


def part_requirement(part: str | int, members: Members, rules: RiskRules) -> Pair:
    """MM and IM of one part (`part_of`) of a book, `members` its underlyings in the book: the
    scan (a group's when two or more of its members are in the book, else the unit's), and
    each member's perp contingency, basis and concentration charges, each rounded up once as in
    `figures`."""
    mm_factor, im_factor = rules.loss_factor
    if type(part) is int and len(members) >= 2:
        scan = group_scan(members, rules.groups[part])
        mm, im = _scaled(scan, mm_factor, im_factor)
    else:
        mm = im = 0
        for e, unit in members.values():
            mm_scan, im_scan = _scaled(unit_scan(e, unit), mm_factor, im_factor)
            mm += mm_scan
            im += im_scan
    for e, unit in members.values():
        if e.perp:
            perp_mm, perp_im = charges.perp(e, unit)
            basis_mm, basis_im = charges.basis(e, unit)
            mm += perp_mm + basis_mm
            im += perp_im + basis_im
        if unit.conc:
            conc = charges.concentration(e, unit)
            mm += conc
            im += conc
    return mm, im


def _scaled(scan: Scan, mm_factor: int, im_factor: int) -> Pair:
    """A scan at the MM and IM loss factors, each rounded up (`_scan_term`'s amounts)."""
    den = scan.den * RATE
    return -(-mm_factor * scan.exact // den), -(-im_factor * scan.exact // den)


def parts(book: Book, rules: RiskRules) -> dict[str | int, Members]:
    """The book's underlyings by part (`part_of`)."""
    out: dict[str | int, Members] = {}
    units, default = rules.units, rules.default_unit
    for u, e in book.units.items():
        out.setdefault(part_of(rules, u), {})[u] = (e, units.get(u, default))
    return out


def totals(book: Book, rules: RiskRules) -> RiskFigures:
    """`figures`' equity, IM and MM without the breakdown, for the engine's checks: the sum of
    every part's requirement and the loan charge (tests hold it to `figures`' sums)."""
    mm, im = charges.loan(book.loans, rules.loan_rate)
    for part, members in parts(book, rules).items():
        part_mm, part_im = part_requirement(part, members, rules)
        mm += part_mm
        im += part_im
    return RiskFigures(book.equity, im, mm)
