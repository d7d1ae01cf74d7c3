"""A fill of a portfolio account re-references one coin's band in O(1) (`PmBands.filled`), as
the trigger index does for standard accounts; the full scan checks the account exactly after
every fill. `Pair` runs both and requires the same decisions and digests after every event.

Hand working (fees zero; HYPE and ETH one tier of 10x, so MM is 5% of notional; HYPE LTV 0.65):
the PM account holds 100 HYPE at 40 and no USDC. Its liquidation value is 100 * 40 * (1 + 0.65)
/ 2 = 3,300 and its requirement the minimum 20, so the PM ratio's buffer is 0.95 * 3,300 - 20 =
3,115. Half of it is banded (HYPE's share 1,557.50), half kept as slack for fills (1,557.50).
"""

from __future__ import annotations

from clearinghouse import portfolio
from events import schema as ev
from events.units import RATE, usd
from tests.support.pair import Pair
from tests.support.rulebook import deposit, market, pm_rules, prices, set_leverage, set_mode, spot_trade, token, trade

TEN_X = [("0", 10)]


def _pm() -> Pair:
    pair = Pair()
    pair.ok(
        pm_rules(pm={"min_value": "0"}),
        token("HYPE"),
        market("HYPE", 2, TEN_X),
        market("ETH", 2, TEN_X),
        prices(HYPE="40", ETH="2000"),
        deposit("mm", "10000000"),
        deposit("maker", "1000", token="HYPE"),
        deposit("pm", "100", token="HYPE"),
        set_mode("pm", "portfolio"),
    )
    return pair


def _buffer(pair: Pair) -> int:
    """The exact PM ratio buffer `0.95 * liqValue - req`."""
    state = pair.state
    f = portfolio.figures(state, state.accounts["pm"], state.spot["pm"])
    return state.pm_rules.liq_ratio * f.liq_value // RATE - f.requirement


def _shares(pair: Pair) -> dict[str, int]:
    sizing = pair.fast.pm_bands.sizing["pm"]  # type: ignore[union-attr]
    return {coin: part[3] for coin, part in sizing.parts.items()}


def test_an_idle_pm_account_is_sized_so_its_first_fill_needs_no_exact_check():
    pair = _pm()
    sizing = pair.fast.pm_bands.sizing["pm"]  # type: ignore[union-attr]
    assert _buffer(pair) == usd("3115")
    assert _shares(pair) == {"HYPE": usd("1557.5")} and sizing.slack == usd("1557.5")


def test_perp_fills_draw_on_the_slack_and_the_coins_share():
    pair = _pm()
    sizing = pair.fast.pm_bands.sizing["pm"]  # type: ignore[union-attr]
    # short 1 ETH at 2,000: the ledger gains 2,000, the position is worth -2,000 (nothing moves
    # the liquidation value) and adds MM 100: 1,557.50 - 100 = 1,457.50 is left. What is free
    # is HYPE's share plus that, 3,015; half of it is banded, 1,507.50, and ETH's weight
    # (2 * 1 ETH * 2,000) equals HYPE's (100 HYPE * 40): ETH gets 753.75, the slack keeps 703.75
    pair.ok(trade("ETH", "2000", "1", "mm", "pm"))
    assert _shares(pair) == {"HYPE": usd("1557.5"), "ETH": usd("753.75")} and sizing.slack == usd("703.75")
    assert _buffer(pair) == usd("3015") == sum(_shares(pair).values()) + sizing.slack  # 3,135 - 120
    # another ETH short: MM 200, 703.75 + 753.75 - 100 = 1,357.50 left; free 1,557.50 + 1,357.50
    # = 2,915, banded half 1,457.50, ETH's weight now 8,000 against HYPE's 4,000: 2/3 of it,
    # 971.666666 (rounded down), and the slack 1,357.50 - 971.666666 = 385.833334
    pair.ok(trade("ETH", "2000", "1", "mm", "pm"))
    assert _shares(pair) == {"HYPE": usd("1557.5"), "ETH": usd("971.666666")} and sizing.slack == usd("385.833334")
    assert _buffer(pair) == usd("2915") == sum(_shares(pair).values()) + sizing.slack


def test_a_spot_buy_draws_on_its_token_share():
    pair = _pm()
    # 1,000 USDC in (checked exactly): buffer 0.95 * 4,300 - 20 = 4,065, HYPE's share 2,032.50
    # and as much slack. As above, the first ETH short leaves 1,932.50, of which ETH gets half of
    # the banded half of 2,032.50 + 1,932.50: 991.25, slack 941.25; the second leaves 941.25 +
    # 991.25 - 100 = 1,832.50, of which ETH gets 2/3 of half of 2,032.50 + 1,832.50: 1,288.333333
    # (rounded down), slack 544.166667
    pair.ok(deposit("pm", "1000"), trade("ETH", "2000", "1", "mm", "pm"), trade("ETH", "2000", "1", "mm", "pm"))
    sizing = pair.fast.pm_bands.sizing["pm"]  # type: ignore[union-attr]
    assert _shares(pair) == {"HYPE": usd("2032.5"), "ETH": usd("1288.333333")} and sizing.slack == usd("544.166667")
    # buys 10 HYPE at 40 for 400 USDC: the liquidation value gains 10 * 40 * 0.825 = 330, the
    # USDC balance loses 400: 0.95 * -70 = -66.50, so 544.166667 + 2,032.50 - 66.50 = 2,510.166667
    # is left. Free: 1,288.333333 + 2,510.166667 = 3,798.50, banded half 1,899.25, HYPE's weight
    # 110 * 40 = 4,400 against ETH's 8,000: 1,899.25 * 4,400 / 12,400 = 673.927419 (rounded
    # down), and the rest, 2,510.166667 - 673.927419 = 1,836.239248, is slack
    pair.ok(spot_trade("HYPE", "40", "10", "pm", "maker"))
    assert _shares(pair) == {"HYPE": usd("673.927419"), "ETH": usd("1288.333333")}
    assert sizing.slack == usd("1836.239248")
    assert _buffer(pair) == usd("3798.5") == sum(_shares(pair).values()) + sizing.slack  # 0.95 * 4,230 - 220


def test_a_fill_past_what_is_left_is_checked_exactly_and_liquidated_in_the_same_event():
    pair = _pm()
    pair.ok(trade("ETH", "2000", "2", "mm", "pm"))
    # 30 more ETH short: MM 32 * 100 = 3,200, requirement 3,220 against 0.95 * 3,300 = 3,135
    seq, derived = pair.at(trade("ETH", "2000", "30", "mm", "pm"))
    assert isinstance(derived[0], ev.LiquidationTriggered)
    assert (derived[0].account, derived[0].scope, derived[0].cause) == ("pm", "portfolio", seq)
    assert derived[0].equity == usd("3300")


def test_an_isolated_fill_moves_the_cash_out_of_the_slack_and_bands_the_position_on_its_own():
    pair = _pm()
    sizing = pair.fast.pm_bands.sizing["pm"]  # type: ignore[union-attr]
    pair.ok(set_leverage("pm", "ETH", 10, cross=False))
    # long 1 ETH at 2,000 isolated at 10x: 200 of margin leaves the cross ledger, which counts
    # at 0.95 in the ratio's buffer: 1,557.50 - 190 = 1,367.50 of slack, HYPE's share untouched
    # (the exact buffer: 0.95 * (3,300 - 200) - 20 = 2,925 = 1,557.50 + 1,367.50). The position
    # is banded on its own buffer: margin 200 less MM 100. No re-index: the same sizing.
    pair.ok(trade("ETH", "2000", "1", "pm", "mm"))
    bands = pair.fast.pm_bands
    assert bands.sizing["pm"] is sizing  # type: ignore[union-attr]
    assert _shares(pair) == {"HYPE": usd("1557.5")} and sizing.slack == usd("1367.5")
    assert _buffer(pair) == usd("2925") == sum(_shares(pair).values()) + sizing.slack
    assert ("ETH", 1) in bands.entries["pm"]  # type: ignore[union-attr]
    # ETH at 1,890: the position's equity 200 - 110 = 90 is below its MM 94.50, liquidated as
    # its own scope (the PM ratio holds: 0.95 * 3,100 - 20 = 2,925)
    seq, derived = pair.at(prices(ETH="1890"))
    assert [(d.account, d.scope) for d in derived if isinstance(d, ev.LiquidationTriggered)] == [("pm", "ETH")]


def test_closing_an_isolated_position_returns_its_margin_to_the_slack():
    pair = _pm()
    sizing = pair.fast.pm_bands.sizing["pm"]  # type: ignore[union-attr]
    pair.ok(set_leverage("pm", "ETH", 10, cross=False), trade("ETH", "2000", "1", "pm", "mm"))
    # sold at 2,010: the position's ledger (200 of margin, plus 10 of profit) goes back to the
    # cross ledger: 0.95 * 210 = 199.50 on the slack, 1,367.50 + 199.50 = 1,567; its band goes
    pair.ok(trade("ETH", "2010", "1", "mm", "pm"))
    bands = pair.fast.pm_bands
    assert bands.sizing["pm"] is sizing and sizing.slack == usd("1567")  # type: ignore[union-attr]
    assert ("ETH", 1) not in bands.entries["pm"]  # type: ignore[union-attr]
    assert _buffer(pair) == usd("3124.5") == sum(_shares(pair).values()) + sizing.slack  # 0.95 * 3,310 - 20
