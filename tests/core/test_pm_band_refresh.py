"""The PM bands' two cheap paths after an exact check, as a fill's (`PmBands.filled`): a tick
that left one coin's band re-references that band alone (`refresh`), and the hour's interest or
settlement re-references the cash and the USDC debt (`cash_moved`), both keeping the account's
sizing; when the slack falls short the account is checked and banded in full. `Pair` runs the
full scan beside the index after every event (same derived events, same digest).

Hand working (the borrower of tests/support/borrower.py, with a HYPE perp market so that HYPE is
banded): 1,000 HYPE at 10 (LTV 0.65, liquidation value 10,000 * 1.65 / 2 = 8,250, partial
threshold 10,000 * 0.825 = 8,250) and 6,400 USDC borrowed into the ledger. Ratio buffer
0.95 * (6,400 + 8,250) - 20 - 6,400 = 7,497.5; borrow buffer 8,250 - 6,400 = 1,850. Kept back for
interest 1,850 / 16 = 115.625; of the 1,734.375 left half goes to the HYPE band (867.1875), so
the slack is 7,497.5 - 115.625 - 867.1875 = 6,514.6875 against the ratio and
1,850 - 115.625 - 867.1875 = 867.1875 against the borrow threshold.
"""

from __future__ import annotations

from fractions import Fraction

from clearinghouse import lending
from clearinghouse.pm_triggers import ORACLE
from events.units import usd
from tests.support.borrower import at_hour, borrower, hours_until_above
from tests.support.pair import TEN_X, Pair, px
from tests.support.rulebook import class_transfer, deposit, lend, market, pm_rules, prices, set_mode, spot_trade, token


def _debt(pair: Pair) -> int:
    state = pair.state
    return lending.owed(state.pools["USDC"], state.spot["pm"].borrowed["USDC"])


def test_the_borrower_is_banded_as_worked_by_hand():
    bands = borrower(market("HYPE", 2, TEN_X), supply="20000").fast.pm_bands
    assert bands is not None
    sizing = bands.sizing["pm"]
    assert (sizing.slack, sizing.slack2, sizing.parts["HYPE"][3]) == (
        usd("6514.6875"),
        usd("867.1875"),
        usd("867.1875"),
    )
    assert (sizing.debt, sizing.kept) == (usd("6400"), usd("115.625"))


def test_a_move_of_the_mark_alone_leaves_a_collateral_band_where_it_is():
    """The borrower holds HYPE and no HYPE position: its HYPE terms count the token at the
    oracle, so its band follows the oracle alone. Written for half of 867.1875, 433.59375: 7/8
    of it, 379.394532 (an eighth is 54.199218), less 8 micro-USDC, over 1,000 HYPE, halved, is
    0.18969726 either side of 10. An impact fill's price takes the mark to 9 with the oracle at
    10: the band holds and nobody is checked, where a band around both prices was left and the
    account checked and re-banded."""
    pair = borrower(market("HYPE", 2, TEN_X), supply="20000")
    bands = pair.fast.pm_bands
    assert bands is not None
    band = bands.entries["pm"]["HYPE", 0]
    assert band[2:4] == (px("9.81030274"), px("10.18969726")) and band[6] == ORACLE
    pair.ok(prices(HYPE=("9", "10")))
    assert bands.entries["pm"]["HYPE", 0] is band
    assert bands.crossed("HYPE", pair.fast.state.markets["HYPE"]) == set()


def test_a_tick_that_leaves_the_band_re_references_it_and_keeps_the_sizing():
    """HYPE 10 -> 9.5: its terms fall by 412.5 in both buffers (the liquidation value 8,250 ->
    7,837.5, counted at 0.95: 391.875; the partial threshold by 412.5), the account is healthy
    (7,837.5 >= 6,400; 0.95 * 14,237.5 = 13,525.6 >= 6,420). Against the ratio 6,514.6875 +
    867.1875 - 391.875 = 6,990 is available, against the borrow threshold 867.1875 * 2 - 412.5 =
    1,321.875. Of the lesser, half is banded (HYPE, the only coin, takes all of that half:
    660.9375), the slacks keep the rest (6,329.0625 and 660.9375). The low key (9.81, written for
    half of 867.1875) was crossed and the high one (10.19) lies beyond what the new share allows
    (9.5 + 0.28916015), so both are written for half the share (330.46875): 7/8 of it, 289.160150
    (rounded down: 41.308593 is an eighth), less 8 micro-USDC over 1,000 HYPE, halved, is
    0.14458007 either side of 9.5."""
    pair = borrower(market("HYPE", 2, TEN_X), supply="20000")
    bands = pair.fast.pm_bands
    assert bands is not None
    sizing = bands.sizing["pm"]
    pair.ok(prices(HYPE="9.5"))
    assert bands.sizing["pm"] is sizing
    assert (sizing.slack, sizing.slack2, sizing.parts["HYPE"][3]) == (
        usd("6329.0625"),
        usd("660.9375"),
        usd("660.9375"),
    )
    _, _, low, high, _, _, _ = bands.entries["pm"]["HYPE", 0]
    assert (low, high) == (px("9.35541993"), px("9.64458007"))


def test_interest_past_the_reserve_is_taken_from_the_slack_without_a_full_re_band():
    """The debt passes 6,515.625 after 180 hours (6,400 * 1.0001^180 = 6,516.24): what it grew
    beyond the 115.625 kept back comes out of the borrow slack, 867.1875 + 115.625 - (debt -
    6,400) = 7,382.8125 - debt, of which a sixteenth is kept back again."""
    pair = borrower(market("HYPE", 2, TEN_X), supply="20000")
    bands = pair.fast.pm_bands
    assert bands is not None
    sizing = bands.sizing["pm"]
    first = hours_until_above(Fraction(6515625, 1000))
    assert first == 180
    for hour in range(2, 1 + first):
        pair.ok(at_hour(hour))
    assert bands.debts["pm"][1] == usd("6515.625")
    pair.ok(at_hour(1 + first))
    debt = _debt(pair)
    assert usd("6516.23") <= debt <= usd("6516.25")
    slack2 = usd("7382.8125") - debt
    assert bands.sizing["pm"] is sizing
    assert (sizing.debt, sizing.kept, sizing.slack2) == (debt, slack2 // 16, slack2 - slack2 // 16)
    assert bands.debts["pm"][1] == debt + slack2 // 16


def test_a_settlement_borrow_after_a_spot_buy_comes_out_of_the_slack():
    """A spot buy of 1,000 HYPE at 10 leaves the ledger at 6,400 - 10,000 = -3,600 (within the
    borrow limit 2,000 * 10 * 0.65 - 6,400 = 6,600). The buy re-references HYPE: against the
    ratio 6,514.6875 + 867.1875 + 0.95 * (8,250 - 10,000) = 5,719.375 is available, against the
    borrow threshold 867.1875 * 2 + 8,250 = 9,984.375; half the lesser is HYPE's share, 2,859.6875,
    leaving slacks of 2,859.6875 and 7,124.6875. At the hour the settlement borrows 3,600, which
    counts at 0.95 - 1 = -0.05 against the ratio and in full against the threshold: with what was
    kept back for interest (115.625) the slacks become 2,859.6875 + 115.625 + 3,420 - (debt -
    6,400) = 12,795.3125 - debt and 7,124.6875 + 115.625 - (debt - 6,400) = 13,640.3125 - debt,
    of which a sixteenth of the lesser is kept back again: no exact check, the same sizing."""
    pair = borrower(market("HYPE", 2, TEN_X), supply="20000")
    pair.ok(deposit("seller", "1000", token="HYPE"), spot_trade("HYPE", "10", "1000", "pm", "seller"))
    bands = pair.fast.pm_bands
    assert bands is not None
    sizing = bands.sizing["pm"]
    assert (sizing.slack, sizing.slack2, sizing.parts["HYPE"][3]) == (
        usd("2859.6875"),
        usd("7124.6875"),
        usd("2859.6875"),
    )
    assert pair.raw("pm") == usd("-3600")
    pair.ok(at_hour(2))
    assert pair.raw("pm") == 0
    debt = _debt(pair)
    assert usd("10000.64") <= debt <= usd("10000.65")  # 6,400 * 1.0001 + 3,600
    slack, slack2 = usd("12795.3125") - debt, usd("13640.3125") - debt
    assert bands.sizing["pm"] is sizing
    assert (sizing.debt, sizing.kept, sizing.slack, sizing.slack2) == (
        debt,
        slack // 16,
        slack - slack // 16,
        slack2 - slack // 16,
    )
    assert bands.debts["pm"][1] == debt + slack // 16


def test_a_first_settlement_borrow_is_checked_and_banded_afresh():
    """An account banded with no borrow has no borrow buffer to take a loan out of: the PM account
    of 1,000 HYPE at 10 and nothing borrowed buys 500 HYPE at 10 (ledger -5,000, within the
    borrow limit 15,000 * 0.65 = 9,750). At the hour the settlement borrows 5,000; the account is
    checked exactly (healthy: 5,000 below the partial threshold 15,000 * 0.825 = 12,375; 0.95 *
    12,375 = 11,756.25 against 20 + 5,000) and banded afresh, keeping back the lesser buffer
    (11,756.25 - 5,020 = 6,736.25 against 12,375 - 5,000) / 16 = 421.015625 for interest."""
    pair = Pair()
    pair.ok(
        pm_rules(pm={"base_apy": "0.876", "kink": "1", "min_value": "0"}),
        token("HYPE"),
        market("HYPE", 2, TEN_X),
        prices(HYPE="10"),
        deposit("lender", "20000"),
        class_transfer("lender", "20000", to_perp=False),
        lend("supply", "lender", "20000"),
        deposit("pm", "1000", token="HYPE"),
        set_mode("pm", "portfolio"),
        at_hour(1),
        deposit("seller", "500", token="HYPE"),
        spot_trade("HYPE", "10", "500", "pm", "seller"),
    )
    bands = pair.fast.pm_bands
    assert bands is not None
    sizing = bands.sizing["pm"]
    assert pair.raw("pm") == usd("-5000") and sizing.slack2 is None and "pm" not in bands.debts
    pair.ok(at_hour(2))
    assert pair.raw("pm") == 0 and _debt(pair) == usd("5000")
    assert bands.sizing["pm"] is not sizing
    assert bands.debts["pm"][1] == usd("5421.015625")
