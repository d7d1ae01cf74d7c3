"""The charges beside the scan (docs/risk-margin.md), each at its (maintenance, initial) rate
and rounded up to the micro-USDC."""

from __future__ import annotations

from clearinghouse.risk.exposure import Exposure
from clearinghouse.risk.params import Unit
from events.units import NTL_DIV, RATE, ceil_div

Pair = tuple[int, int]  # (maintenance, initial) in micro-USDC


def _at(rates: Pair, base: int, den: int) -> Pair:
    """`rate * base / den` at each rate, rounded up."""
    return ceil_div(rates[0] * base, den), ceil_div(rates[1] * base, den)


def perp(e: Exposure, unit: Unit) -> Pair:
    """Perp contingency: `perp_rate * |perp| * oracle`."""
    return _at(unit.perp_rate, abs(e.perp_oracle), RATE * NTL_DIV)


def basis(e: Exposure, unit: Unit) -> Pair:
    """On a matched carry (spot and perp of opposite signs): `basis_rate * min(|spot|, |perp|)
    * oracle`."""
    if e.spot * e.perp >= 0:
        return 0, 0
    return _at(unit.basis_rate, min(abs(e.spot), abs(e.perp)) * e.oracle, RATE * NTL_DIV)


def concentration(e: Exposure, unit: Unit) -> int:
    """`conc * (net notional)^2 / depth`, the net notional `|spot value + perp * oracle|` (the
    same at either rate: it is a liquidation cost)."""
    net = abs(e.spot_value + e.perp_oracle)
    return ceil_div(unit.conc * net * net, RATE * NTL_DIV * NTL_DIV * unit.depth)


def loan(loans: int, rates: Pair) -> Pair:
    """`loan_rate * borrowed USDC and USDT`."""
    return _at(rates, loans, RATE)
