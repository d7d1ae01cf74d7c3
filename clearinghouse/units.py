"""Fixed-point units: every amount in the core is a Python int in one of these scales.

Scales are global (not per market) so that the codec can turn wire decimals into ints once,
without knowing the market. With sizes and prices at 8 decimals, `size * price` is a multiple
of NTL_DIV (and so exact in micro-USDC) whenever the market's `sz_decimals + price decimals <= 6`,
which Hyperliquid guarantees for every trade price (hyperliquid-rules.md 1).

Rounding helpers are named for their direction; the core never uses float or Decimal.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

USD_DECIMALS = 6  # micro-USDC
SZ_DECIMALS = 8  # sizes, in 1e-8 coin
PX_DECIMALS = 8  # prices, in 1e-8 USDC per coin
RATE_DECIMALS = 12  # funding rates and premiums, in 1e-12 per hour
FUNDING_DECIMALS = 12  # funding per coin (the cumulative index), in 1e-12 USDC
TOKEN_DECIMALS = 8  # spot token balances (every token but USDC), in 1e-8 token
INDEX_DECIMALS = 18  # lending pool indices: 1.0 = 10**18

USD = 10**USD_DECIMALS
SZ = 10**SZ_DECIMALS
PX = 10**PX_DECIMALS
RATE = 10**RATE_DECIMALS

NTL_DIV = 10 ** (SZ_DECIMALS + PX_DECIMALS - USD_DECIMALS)  # size * price -> micro-USDC
FUNDING_QUANTUM = 10 ** (PX_DECIMALS + RATE_DECIMALS - FUNDING_DECIMALS)  # price * rate -> funding per coin
FUNDING_DIV = 10 ** (SZ_DECIMALS + FUNDING_DECIMALS - USD_DECIMALS)  # size * funding per coin -> micro-USDC
TOKEN = 10**TOKEN_DECIMALS
INDEX_ONE = 10**INDEX_DECIMALS
HOUR_MS = 3_600_000
HOURS_PER_YEAR = 8_760  # an APY accrues as APY / 8760 per hour (365 days, no leap day)


def ceil_div(a: int, b: int) -> int:
    """a / b rounded toward +infinity (b > 0)."""
    return -((-a) // b)


def floor_div(a: int, b: int) -> int:
    """a / b rounded toward -infinity (b > 0)."""
    return a // b


def round_half_even(a: int, b: int) -> int:
    """a / b rounded to nearest, ties to even (b > 0): for figures no side gains from (display,
    entry price, the per-coin funding quantum that both sides share)."""
    q, r = divmod(a, b)
    twice = 2 * r
    if twice > b or (twice == b and q % 2 == 1):
        q += 1
    return q


class DecimalError(ValueError):
    """A wire decimal that is malformed or finer than its field's scale."""


def parse_decimal(text: str | int, decimals: int) -> int:
    """Parse a decimal string (or int) into an int of 10**-decimals units, exactly.

    Rejects floats, exponents that do not resolve exactly, NaN/inf, and digits beyond the scale:
    silently rounding an input would change the facts.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise DecimalError(f"expected a decimal string, got {type(text).__name__}")
    if isinstance(text, int):
        return text * 10**decimals
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DecimalError(f"not a decimal: {text!r}") from None
    if not value.is_finite():
        raise DecimalError(f"not a finite decimal: {text!r}")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise DecimalError(f"{text!r} has more than {decimals} decimals")
    return int(scaled)


def format_decimal(value: int, decimals: int, min_decimals: int = 1) -> str:
    """Render an int of 10**-decimals units as a plain decimal string (trailing zeros trimmed)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    digits = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    if len(digits) < min_decimals:
        digits = digits.ljust(min_decimals, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def usd(text: str) -> int:
    """Convenience for tests and adapters: '12.5' -> micro-USDC."""
    return parse_decimal(text, USD_DECIMALS)


def sz(text: str) -> int:
    return parse_decimal(text, SZ_DECIMALS)


def px(text: str) -> int:
    return parse_decimal(text, PX_DECIMALS)


def rate(text: str) -> int:
    return parse_decimal(text, RATE_DECIMALS)
