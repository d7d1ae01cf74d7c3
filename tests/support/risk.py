"""Helpers for the risk model's tests: the parameter shape of risk-model.md (moves -15%, 0,
+15% at weight 1, MM factor 0.5, IM factor 1, basis 0.5% / 1%, loans 1% / 2%) and exposures
built from whole coins and whole-USDC prices."""

from __future__ import annotations

from typing import Any

import msgspec

from clearinghouse.risk.exposure import Book, Exposure
from clearinghouse.risk.params import RiskRules, resolved
from events.codec import decode_document
from events.schema import RiskParams
from events.units import PX, SZ_DECIMALS, parse_decimal

SPEC_PARAMS: dict[str, Any] = {
    "model": "risk",
    "mm_loss_factor": "0.5",
    "im_loss_factor": "1",
    "units": {
        "BTC": {
            "scenarios": [
                {"move": "-0.15", "weight": "1"},
                {"move": "0", "weight": "1"},
                {"move": "0.15", "weight": "1"},
            ],
            "min_charge": "0",
            "perp_rate_mm": "0",
            "perp_rate_im": "0",
            "basis_rate_mm": "0.005",
            "basis_rate_im": "0.01",
            "conc": "0",
            "depth": "100000000",
        }
    },
    "aliases": {"UBTC": "BTC"},
    "credits": [],
    "loan_rate_mm": "0.01",
    "loan_rate_im": "0.02",
}


def params(data: dict[str, Any]) -> RiskParams:
    """A parameter set from its wire form (decimal strings)."""
    return decode_document(msgspec.json.encode(data), RiskParams, "parameters")


def rules(data: dict[str, Any] | None = None) -> RiskRules:
    return resolved(params(data or SPEC_PARAMS))


def exposure(spot: str = "0", perp: str = "0", px: str = "100000", mark: str | None = None) -> Exposure:
    """`spot` tokens and a cross `perp` (decimal strings) at oracle `px` (and `mark`)."""
    s, p = parse_decimal(spot, SZ_DECIMALS), parse_decimal(perp, SZ_DECIMALS)
    o = int(px) * PX
    m = int(mark) * PX if mark is not None else o
    return Exposure(s, s * o, p, p * m, p * o, o)


def book(equity: int = 0, loans: int = 0, **units: Exposure) -> Book:
    return Book(equity, dict(sorted(units.items())), loans)
