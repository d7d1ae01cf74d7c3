"""The risk model's parameters as the scan uses them: a `RiskParams` (a `rules` event's `risk`,
or a file) completed with the shipped defaults (`defaults.DEFAULTS`) field by field, checked
(`params_error`) and worked out once per parameter object (`resolved`)."""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse.risk.defaults import DEFAULTS
from events.bounds import MAX_MOVE, MAX_RISK_FACTOR, MAX_USD
from events.schema import RiskParams, RiskUnit
from events.units import RATE, USD, format_decimal


class Unit(NamedTuple):
    """One underlying's parameters, rates in 1e-12, `depth` in micro-USDC. `fall` and `rise`
    are what the scan needs of its scenarios, worked out once: the largest weighted loss per
    unit of a long's value (`max w_s * max(0, -move_s)`, 1e-24) and the first scenario giving
    it (0 when none loses), and the same for a short (`max w_s * max(0, move_s)`); `swing` is
    `max w_s * |move_s|`, the larger of the two (the bands' slope)."""

    moves: tuple[int, ...]
    weights: tuple[int, ...]
    min_charge: int
    perp_rate: tuple[int, int]  # (MM, IM)
    basis_rate: tuple[int, int]
    conc: int
    depth: int
    fall: tuple[int, int] = (0, 0)  # (largest loss per unit of a long, its scenario)
    rise: tuple[int, int] = (0, 0)  # the same for a short
    swing: int = 0


class Group(NamedTuple):
    units: tuple[str, ...]  # sorted
    rate: int


class RiskRules(NamedTuple):
    """Complete, checked parameters: `group_of` maps a member underlying to its group's index."""

    loss_factor: tuple[int, int]  # (MM, IM)
    units: dict[str, Unit]
    default_unit: Unit
    aliases: dict[str, str]
    groups: tuple[Group, ...]
    group_of: dict[str, int]
    loan_rate: tuple[int, int]

    def unit(self, underlying: str) -> Unit:
        return self.units.get(underlying, self.default_unit)

    def underlying(self, token: str) -> str:
        return self.aliases.get(token, token)


def completed(params: RiskParams | None) -> RiskParams:
    """`params` with every field it leaves out taken from the shipped defaults."""
    if params is None:
        return DEFAULTS
    return RiskParams(
        model=params.model,
        **{f: getattr(DEFAULTS, f) if getattr(params, f) is None else getattr(params, f) for f in _OPTIONAL},
    )


_OPTIONAL = (
    "mm_loss_factor",
    "im_loss_factor",
    "units",
    "default_unit",
    "aliases",
    "credits",
    "loan_rate_mm",
    "loan_rate_im",
)


def _rate(value: int, what: str, high: int = RATE) -> str | None:
    if not 0 <= value <= high:
        return f"{what} must be between 0 and {format_decimal(high, 12, 0)}"
    return None


def _unit_error(name: str, u: RiskUnit) -> str | None:
    for i, s in enumerate(u.scenarios):
        if not -RATE <= s.move <= MAX_MOVE:
            return f"{name} scenario {i}: move must be between -1 and {format_decimal(MAX_MOVE, 12, 0)}"
        if not 0 <= s.weight <= RATE:
            return f"{name} scenario {i}: weight must be between 0 and 1"
    checks = (
        (u.min_charge, "min_charge"),
        (u.perp_rate_mm, "perp_rate_mm"),
        (u.perp_rate_im, "perp_rate_im"),
        (u.basis_rate_mm, "basis_rate_mm"),
        (u.basis_rate_im, "basis_rate_im"),
        (u.conc, "conc"),
    )
    for value, field in checks:
        problem = _rate(value, f"{name} {field}")
        if problem:
            return problem
    if u.perp_rate_im < u.perp_rate_mm or u.basis_rate_im < u.basis_rate_mm:
        return f"{name}: an initial rate must not be below its maintenance rate"
    if not USD <= u.depth <= MAX_USD:
        return f"{name} depth must be between 1 and {format_decimal(MAX_USD, 6)} USDC"
    return None


def params_error(params: RiskParams) -> str | None:
    """Why a parameter set cannot be used, or None (the ranges of docs/risk-margin.md): rates
    in [0, 1], loss factors in [0, 10] with IM at or above MM, moves in [-1, 10], weights in
    [0, 1], depth in [1, 10^10] USDC, credit groups of underlyings with lists of one length,
    each underlying in at most one group, aliases pointing at underlyings, not at aliases."""
    if params.model != "risk":
        return f"model must be 'risk', not {params.model!r}"
    p = completed(params)
    assert p.mm_loss_factor is not None and p.im_loss_factor is not None and p.units is not None
    assert p.default_unit is not None and p.aliases is not None and p.credits is not None
    assert p.loan_rate_mm is not None and p.loan_rate_im is not None
    for value, field in ((p.mm_loss_factor, "mm_loss_factor"), (p.im_loss_factor, "im_loss_factor")):
        problem = _rate(value, field, MAX_RISK_FACTOR)
        if problem:
            return problem
    if p.im_loss_factor < p.mm_loss_factor:
        return "im_loss_factor must not be below mm_loss_factor"
    for value, field in ((p.loan_rate_mm, "loan_rate_mm"), (p.loan_rate_im, "loan_rate_im")):
        problem = _rate(value, field)
        if problem:
            return problem
    if p.loan_rate_im < p.loan_rate_mm:
        return "loan_rate_im must not be below loan_rate_mm"
    for name in sorted(p.units):
        problem = _unit_error(name, p.units[name])
        if problem:
            return problem
    problem = _unit_error("default_unit", p.default_unit)
    if problem:
        return problem
    for alias in sorted(p.aliases):
        if p.aliases[alias] in p.aliases:
            return f"alias {alias!r} points at another alias {p.aliases[alias]!r}"
    seen: set[str] = set()
    for i, credit in enumerate(p.credits):
        problem = _rate(credit.rate, f"credit group {i} rate")
        if problem:
            return problem
        members = credit.units
        if len(set(members)) != len(members):
            return f"credit group {i} names an underlying twice"
        for member in members:
            if member in seen:
                return f"underlying {member!r} is in more than one credit group"
            if member in p.aliases:
                return f"credit group {i} names the alias {member!r}: name its underlying"
            seen.add(member)
        lengths = {len(p.units.get(m, p.default_unit).scenarios) for m in members}
        if len(lengths) != 1:
            return f"credit group {i}: its underlyings' scenario lists differ in length"
    return None


def _worst(losses: list[int]) -> tuple[int, int]:
    """The largest of `losses` and the first scenario giving it."""
    worst = max(losses)
    return worst, losses.index(worst)


def _unit(u: RiskUnit) -> Unit:
    moves = tuple(s.move for s in u.scenarios)
    weights = tuple(s.weight for s in u.scenarios)
    fall = _worst([w * max(0, -m) for w, m in zip(weights, moves, strict=True)])
    rise = _worst([w * max(0, m) for w, m in zip(weights, moves, strict=True)])
    return Unit(
        moves,
        weights,
        u.min_charge,
        (u.perp_rate_mm, u.perp_rate_im),
        (u.basis_rate_mm, u.basis_rate_im),
        u.conc,
        u.depth,
        fall,
        rise,
        max(fall[0], rise[0]),
    )


_cache: tuple[RiskParams | None, RiskRules | None] = (None, None)


def resolved(params: RiskParams | None) -> RiskRules:
    """The checked parameters (None: the shipped defaults) as the scan reads them, worked out
    once per parameter object (they are immutable; a `rules` event makes a new one)."""
    global _cache
    if _cache[0] is not params or _cache[1] is None:
        p = completed(params)
        groups = tuple(Group(tuple(sorted(c.units)), c.rate) for c in p.credits or ())
        rules = RiskRules(
            (p.mm_loss_factor or 0, p.im_loss_factor or 0),
            {name: _unit(u) for name, u in (p.units or {}).items()},
            _unit(p.default_unit or DEFAULTS.default_unit),  # type: ignore[arg-type]
            dict(p.aliases or {}),
            groups,
            {m: i for i, g in enumerate(groups) for m in g.units},
            (p.loan_rate_mm or 0, p.loan_rate_im or 0),
        )
        _cache = (params, rules)
    return _cache[1]
