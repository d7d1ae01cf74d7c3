"""The rulebook's portfolio-margin example (docs/portfolio-margin.md), as tests/core/test_pm.py works
it by hand: the rules of the era before 2026-08-19 (`OLD_ERA`), a lender supplying the USDC pool,
and an account that borrows 250 USDC against 10 HYPE (`two_borrow_lines`)."""

from __future__ import annotations

from events.units import HOUR_MS
from tests.support.pair import stamped
from tests.support.rulebook import class_transfer, deposit, lend, pm_rules, prices, set_mode, spot_trade, token

OLD_ERA = dict(ltv={"HYPE": "0.5"}, pm={"min_value": "0"})  # LTV 0.5 (before 2026-08-19), no value floor


def lender(amount: str = "1000000") -> list[str]:
    """`lender` deposits `amount` USDC and supplies it to the pool."""
    return [
        deposit("lender", amount),
        class_transfer("lender", amount, to_perp=False),
        lend("supply", "lender", amount),
    ]


def two_borrow_lines() -> list[str]:
    """The rulebook's example: 10 HYPE, LTV 0.5, 250 USDC borrowed (by buying 5 HYPE at 50 on top
    of 5), then HYPE at 40."""
    return [
        pm_rules(**OLD_ERA),
        token("HYPE"),
        prices(HYPE="50"),
        *lender(),
        deposit("seller", "5", token="HYPE"),
        deposit("pm", "5", token="HYPE"),
        set_mode("pm", "portfolio"),
        spot_trade("HYPE", "50", "5", "pm", "seller"),
        stamped(prices(HYPE="50"), HOUR_MS),  # the hour boundary: the 250 is borrowed (no interest before it)
        # at 40: collateral 400, partial threshold 400 * 0.75 = 300, full 400 * 0.833 = 333.2 > 250;
        # PM ratio (20 + 250) / (10 * 40 * 0.75) = 270 / 300 = 0.9 <= 0.95: nothing happens
        prices(HYPE="40"),
    ]
