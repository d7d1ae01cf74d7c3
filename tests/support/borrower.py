"""The hourly-interest borrower that tests/core/test_pm_interest.py and test_pm_band_refresh.py
work by hand: rules with a flat 87.6% borrow APY (kink at 100% utilisation), so every hour
multiplies the borrow index by exactly 1 + 0.876 / 8760 = 1.0001; a lender supplying the USDC
pool; a PM account holding 1,000 HYPE at 10 that borrows 6,400 USDC."""

from __future__ import annotations

from fractions import Fraction
from itertools import count

from events.units import HOUR_MS
from tests.support.pair import Pair, stamped
from tests.support.rulebook import class_transfer, deposit, lend, pm_rules, prices, set_mode, token

HOURLY = Fraction(10001, 10000)


def at_hour(hour: int) -> str:
    """An event at the start of `hour` that touches no PM account (a HYPE price would: HYPE
    without a perp market checks every account holding it on each of its prices)."""
    return stamped(deposit("other", "1"), hour * HOUR_MS)


def hours_until_above(limit: Fraction) -> int:
    """Boundaries after the borrow until 6,400 compounded hourly is above `limit`."""
    return next(n for n in count() if 6400 * HOURLY**n > limit)


def borrower(*markets: str, supply: str = "10000") -> Pair:
    """The borrower, with the given `market` lines listed after HYPE and `supply` in the pool."""
    pair = Pair()
    pair.ok(
        pm_rules(pm={"base_apy": "0.876", "kink": "1", "min_value": "0"}), token("HYPE"), *markets, prices(HYPE="10")
    )
    pair.ok(
        deposit("lender", supply), class_transfer("lender", supply, to_perp=False), lend("supply", "lender", supply)
    )
    pair.ok(deposit("pm", "1000", token="HYPE"), set_mode("pm", "portfolio"))
    pair.ok(at_hour(1))  # the switch's settlement: nothing to settle
    pair.ok(lend("borrow", "pm", "6400"))
    return pair
