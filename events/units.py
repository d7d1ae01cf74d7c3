"""Fixed-point units: every amount in the core is a Python int in one of these scales.

Scales are global (not per market) so that the codec can turn wire decimals into ints once,
without knowing the market. With sizes and prices at 8 decimals, `size * price` is a multiple
of NTL_DIV (and so exact in micro-USDC) whenever the market's `sz_decimals + price decimals <= 6`,
which Hyperliquid guarantees for every trade price (docs/rules.md 1).

Rounding helpers are named for their direction; the core never uses float or Decimal.
"""

from __future__ import annotations

import re

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


MAX_DECIMAL_CHARS = 40  # characters in one decimal string: any in-bound value needs far fewer

# The wire grammar: one optional sign, ASCII digits with at most one point, digits on at least one
# side of it (checked after the match). `[0-9]`, not `\d`, which matches every script's digits.
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")
_NOT_FINITE = frozenset({"nan", "snan", "inf", "infinity"})
_WHY_NOT = (  # the first that applies says why a string is not a decimal
    (re.compile(r"[^\x00-\x7f]"), "only the ASCII digits 0-9 are allowed"),
    (re.compile(r"\s"), "whitespace is not allowed"),
    (re.compile(r"_"), "underscores are not allowed"),
    (re.compile(r"[0-9.][eE][+-]?[0-9]"), "exponents are not allowed"),
)


def quoted(text: str, limit: int = 32) -> str:
    """`text` quoted for a message in ASCII, cut to `limit` characters: an error never echoes a
    huge or hostile input whole, and control characters and look-alikes show escaped."""
    if len(text) <= limit:
        return ascii(text)
    return f"{ascii(text[:limit])}... ({len(text)} characters)"


def _malformed(text: str) -> str:
    if text.lstrip("+-").lower() in _NOT_FINITE:
        return f"not a finite decimal: {quoted(text)}"
    why = next((reason for pattern, reason in _WHY_NOT if pattern.search(text)), None)
    return f"not a decimal: {quoted(text)} ({why or 'expected an optional sign, then digits with at most one point'})"


def parse_decimal(text: str | int, decimals: int) -> int:
    """Parse a wire decimal (a string in the grammar above, or an int) into an int of
    10**-decimals units, exactly, without Decimal (whose parser takes exponents, whitespace,
    underscores and non-ASCII digits).

    Refuses floats, and digits beyond the scale even when they are zeros: silently rounding an
    input would change the facts. Range checks are the caller's (the codec reads each field's).
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise DecimalError(f"expected a decimal string, got {type(text).__name__}")
    if isinstance(text, int):
        return text * 10**decimals
    if len(text) > MAX_DECIMAL_CHARS:
        raise DecimalError(f"not a decimal: {quoted(text)} is longer than {MAX_DECIMAL_CHARS} characters")
    match = _DECIMAL.fullmatch(text)
    if match is None or not (match[2] or match[3]):
        raise DecimalError(_malformed(text))
    sign, whole, frac = match[1], match[2], match[3] or ""
    if len(frac) > decimals:
        raise DecimalError(f"{text!r} has more than {decimals} decimals")
    value = int(whole + frac.ljust(decimals, "0"))
    return -value if sign == "-" else value


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
