"""Canonical books (docs/risk-margin.md, "Canonical books"): the holdings the margin models are
compared on, at one set of prices, and each book under every model: IM, MM, the capital freed
against standard cross margin, the cheapest model."""

from __future__ import annotations

from typing import NamedTuple

from clearinghouse.calculator import Answer, CannotHold, answer
from clearinghouse.models.registry import MODELS
from events.book import BookPosition, BookPrice, MarginBook
from events.schema import RiskParams
from events.units import PX_DECIMALS, SZ_DECIMALS, TOKEN_DECIMALS, parse_decimal

PRICES = {
    "BTC": "100000",
    "ETH": "4000",
    "SOL": "200",
    "HYPE": "40",
    "AVAX": "25",
    "LINK": "20",
    "DOGE": "0.2",
    "ARB": "0.5",
}
MAX_LEVERAGE = {"BTC": 40, "ETH": 25, "SOL": 20}  # the calculator's default tables; other coins 20x


def _book(balances: dict[str, str], perps: dict[str, str], borrowed: dict[str, str] | None = None) -> MarginBook:
    """Holdings at `PRICES`: perps at their market's highest leverage, entered at the price."""
    coins = sorted(set(perps) | set(balances) - {"USDC"})
    return MarginBook(
        prices={c: BookPrice(mark=parse_decimal(PRICES[c], PX_DECIMALS)) for c in coins},
        balances={t: parse_decimal(a, TOKEN_DECIMALS) for t, a in balances.items()},
        borrowed={t: parse_decimal(a, TOKEN_DECIMALS) for t, a in (borrowed or {}).items()},
        positions=[
            BookPosition(
                coin=c,
                szi=parse_decimal(s, SZ_DECIMALS),
                entry_px=parse_decimal(PRICES[c], PX_DECIMALS),
                leverage=MAX_LEVERAGE.get(c, 20),
            )
            for c, s in sorted(perps.items())
        ],
    )


CANONICAL: dict[str, tuple[str, MarginBook]] = {
    "carry": ("10 BTC spot against a 10 BTC perp short", _book({"USDC": "50000", "BTC": "10"}, {"BTC": "-10"})),
    "pair": (
        "long 1 BTC perp, short 25 ETH perp (100,000 each)",
        _book({"USDC": "30000"}, {"BTC": "1", "ETH": "-25"}),
    ),
    "directional": ("long 1 BTC perp", _book({"USDC": "30000"}, {"BTC": "1"})),
    "market maker": (
        "5,000 of inventory long or short in each of 8 markets",
        _book(
            {"USDC": "20000"},
            {
                "BTC": "0.05",
                "ETH": "-1.25",
                "SOL": "25",
                "HYPE": "-125",
                "AVAX": "200",
                "LINK": "-250",
                "DOGE": "25000",
                "ARB": "-10000",
            },
        ),
    ),
    "HYPE borrower": (
        "10,000 HYPE held, 50,000 USDC borrowed against it, long 1 BTC perp",
        _book({"USDC": "50000", "HYPE": "10000"}, {"BTC": "1"}, {"USDC": "50000"}),
    ),
}


class Row(NamedTuple):
    """One book under one model: its answer (or why it cannot hold the book), the capital freed
    against standard cross in 1e-6 of standard's IM (None: standard cannot hold the book, or
    needs nothing), and whether it is the cheapest model (lowest IM, the first of equals)."""

    book: str
    model: str
    answer: Answer | CannotHold
    freed: int | None
    cheapest: bool


def compare(risk: RiskParams | None = None) -> list[Row]:
    rows: list[Row] = []
    for name, (_, book) in CANONICAL.items():
        answers = {mode: answer(book, mode, risk) for mode in MODELS}
        base = answers["standard"]
        held = {m: a.initial for m, a in answers.items() if isinstance(a, Answer)}
        cheapest = min(held, key=lambda m: held[m]) if held else None
        for mode, a in answers.items():
            freed = None
            if isinstance(a, Answer) and isinstance(base, Answer) and base.initial > 0:
                freed = (base.initial - a.initial) * 10**6 // base.initial
            rows.append(Row(name, mode, a, freed, mode == cheapest))
    return rows
