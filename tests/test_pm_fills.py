"""A fill of a portfolio account re-references one coin's band in O(1) (`PmBands.filled`), as
the trigger index does for standard accounts; the full scan checks the account exactly after
every fill. `Pair` runs both and requires the same decisions and digests after every event.

Hand working (fees zero; HYPE and ETH one tier of 10x, so MM is 5% of notional; HYPE LTV 0.65):
the PM account holds 100 HYPE at 40 and no USDC. Its liquidation value is 100 * 40 * (1 + 0.65)
/ 2 = 3,300 and its requirement the minimum 20, so the PM ratio's buffer is 0.95 * 3,300 - 20 =
3,115. Half of it is banded (HYPE's share 1,557.50), half kept as slack for fills (1,557.50).
"""

from __future__ import annotations

from liquidation_helpers import Pair
from rulebook import deposit, market, pm_rules, prices, set_mode, spot_trade, token, trade

from clearinghouse import portfolio
from clearinghouse.units import RATE, usd
from events import schema as ev

TEN_X = [("0", 10)]


def _pm() -> Pair:
    pair = Pair()
    pair.ok(pm_rules(pm={"min_value": "0"}), token("HYPE"), market("HYPE", 2, TEN_X), market("ETH", 2, TEN_X),
            prices(HYPE="40", ETH="2000"), deposit("mm", "10000000"), deposit("maker", "1000", token="HYPE"),
            deposit("pm", "100", token="HYPE"), set_mode("pm", "portfolio"))
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
    # the liquidation value) and adds MM 100: 1,557.50 - 100 = 1,457.50 is left. ETH's weight
    # (2 * 1 ETH * 2,000) equals HYPE's (100 HYPE * 40), so its fair part of all shares is
    # (1,557.50 + 1,457.50) / 2 = 1,507.50: it gets all 1,457.50 and the slack is 0.
    pair.ok(trade("ETH", "2000", "1", "mm", "pm"))
    assert _shares(pair) == {"HYPE": usd("1557.5"), "ETH": usd("1457.5")} and sizing.slack == 0
    assert _buffer(pair) == usd("3015") == sum(_shares(pair).values()) + sizing.slack  # 3,135 - 120
    # another ETH short: MM 200, ETH's share 1,457.50 - 100 = 1,357.50
    pair.ok(trade("ETH", "2000", "1", "mm", "pm"))
    assert _shares(pair) == {"HYPE": usd("1557.5"), "ETH": usd("1357.5")} and sizing.slack == 0
    assert _buffer(pair) == usd("2915") == usd("1557.5") + usd("1357.5")


def test_a_spot_buy_draws_on_its_token_share():
    pair = _pm()
    # 1,000 USDC in (checked exactly): buffer 0.95 * 4,300 - 20 = 4,065, HYPE's share 2,032.50;
    # two ETH shorts leave ETH 1,832.50 (as above: the first gets 2,032.50 - 100, the second
    # draws another 100) and no slack
    pair.ok(deposit("pm", "1000"), trade("ETH", "2000", "1", "mm", "pm"), trade("ETH", "2000", "1", "mm", "pm"))
    sizing = pair.fast.pm_bands.sizing["pm"]  # type: ignore[union-attr]
    assert _shares(pair) == {"HYPE": usd("2032.5"), "ETH": usd("1832.5")} and sizing.slack == 0
    # buys 10 HYPE at 40 for 400 USDC: the liquidation value gains 10 * 40 * 0.825 = 330, the
    # USDC balance loses 400: 0.95 * -70 = -66.50 off HYPE's share, 1,966 left. HYPE's weight
    # (110 * 40 = 4,400 against ETH's 8,000) asks for less: (1,832.50 + 1,966) * 4,400 / 12,400
    # = 1,347.854838 (rounded down), and the rest, 618.145162, is slack
    pair.ok(spot_trade("HYPE", "40", "10", "pm", "maker"))
    assert _shares(pair) == {"HYPE": usd("1347.854838"), "ETH": usd("1832.5")}
    assert sizing.slack == usd("618.145162")
    assert _buffer(pair) == usd("3798.5") == sum(_shares(pair).values()) + sizing.slack  # 0.95 * 4,230 - 220


def test_a_fill_past_what_is_left_is_checked_exactly_and_liquidated_in_the_same_event():
    pair = _pm()
    pair.ok(trade("ETH", "2000", "2", "mm", "pm"))
    # 30 more ETH short: MM 32 * 100 = 3,200, requirement 3,220 against 0.95 * 3,300 = 3,135
    seq, derived = pair.at(trade("ETH", "2000", "30", "mm", "pm"))
    assert isinstance(derived[0], ev.LiquidationTriggered)
    assert (derived[0].account, derived[0].scope, derived[0].cause) == ("pm", "portfolio", seq)
    assert derived[0].equity == usd("3300")
