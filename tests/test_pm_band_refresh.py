"""The PM bands' two cheap paths after an exact check, as a fill's (`PmBands.filled`): a tick
that left one coin's band re-references that band alone (`refresh`), and the hour's interest or
settlement re-references the cash and the USDC debt (`cash_moved`), both keeping the account's
sizing; when the slack falls short the account is checked and banded in full. `Pair` runs the
full scan beside the index after every event (same derived events, same digest).

Hand working (the borrower of tests/pm_helpers.py, with a HYPE perp market so that HYPE is
banded): 1,000 HYPE at 10 (LTV 0.65, liquidation value 10,000 * 1.65 / 2 = 8,250, partial
threshold 10,000 * 0.825 = 8,250) and 6,400 USDC borrowed into the ledger. Ratio buffer
0.95 * (6,400 + 8,250) - 20 - 6,400 = 7,497.5; borrow buffer 8,250 - 6,400 = 1,850. Kept back for
interest 1,850 / 16 = 115.625; of the 1,734.375 left half goes to the HYPE band (867.1875), so
the slack is 7,497.5 - 115.625 - 867.1875 = 6,514.6875 against the ratio and
1,850 - 115.625 - 867.1875 = 867.1875 against the borrow threshold.
"""

from __future__ import annotations

from fractions import Fraction

from liquidation_helpers import TEN_X, Pair, px
from pm_helpers import at_hour, borrower, hours_until_above
from rulebook import deposit, market, prices, spot_trade

from clearinghouse import lending
from clearinghouse.units import usd


def _debt(pair: Pair) -> int:
    state = pair.state
    return lending.owed(state.pools["USDC"], state.spot["pm"].borrowed["USDC"])


def test_the_borrower_is_banded_as_worked_by_hand():
    bands = borrower(market("HYPE", 2, TEN_X), supply="20000").fast.pm_bands
    assert bands is not None
    sizing = bands.sizing["pm"]
    assert (sizing.slack, sizing.slack2, sizing.parts["HYPE"][3]) == (usd("6514.6875"), usd("867.1875"), usd("867.1875"))
    assert (sizing.debt, sizing.kept) == (usd("6400"), usd("115.625"))


def test_a_tick_that_leaves_the_band_re_references_it_and_keeps_the_sizing():
    """HYPE 10 -> 9.5: its terms fall by 412.5 in both buffers (the liquidation value 8,250 ->
    7,837.5, counted at 0.95: 391.875; the partial threshold by 412.5), the account is healthy
    (7,837.5 >= 6,400; 0.95 * 14,237.5 = 13,525.6 >= 6,420). Against the ratio 6,514.6875 +
    867.1875 - 391.875 = 6,990 is available, against the borrow threshold 867.1875 * 2 - 412.5 =
    1,321.875: the band takes the lesser, the slacks keep the rest (5,668.125 and 0). The low
    key (9.81, written for half of 867.1875) was crossed and the high one (10.19) lies beyond
    what the new share allows (10.08), so both are written for half the share (660.9375): 7/8
    of it less 8 micro-USDC over 1,000 HYPE, halved, is 0.28916015 either side of 9.5."""
    pair = borrower(market("HYPE", 2, TEN_X), supply="20000")
    bands = pair.fast.pm_bands
    assert bands is not None
    sizing = bands.sizing["pm"]
    pair.ok(prices(HYPE="9.5"))
    assert bands.sizing["pm"] is sizing
    assert (sizing.slack, sizing.slack2, sizing.parts["HYPE"][3]) == (usd("5668.125"), 0, usd("1321.875"))
    _, _, low, high, _, _ = bands.entries["pm"]["HYPE", 0]
    assert (low, high) == (px("9.21083985"), px("9.78916015"))


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


def test_a_settlement_borrow_the_slack_cannot_absorb_is_checked_and_banded_afresh():
    """A spot buy of 1,000 HYPE at 10 leaves the ledger at 6,400 - 10,000 = -3,600 (within the
    borrow limit 2,000 * 10 * 0.65 - 6,400 = 6,600); at the hour the settlement borrows 3,600,
    which counts at 0.95 - 1 = -0.05 against the ratio (-180, more than is left). The exact check
    finds it healthy (liquidation value 0 + 16,500, 0.95 * 16,500 = 15,675 against 20 + debt;
    partial threshold 16,500) and the full re-band keeps back (15,655 - debt) / 16."""
    pair = borrower(market("HYPE", 2, TEN_X), supply="20000")
    pair.ok(deposit("seller", "1000", token="HYPE"), spot_trade("HYPE", "10", "1000", "pm", "seller"))
    bands = pair.fast.pm_bands
    assert bands is not None
    sizing = bands.sizing["pm"]
    assert pair.raw("pm") == usd("-3600")
    pair.ok(at_hour(2))
    assert pair.raw("pm") == 0
    debt = _debt(pair)
    assert usd("10000.64") <= debt <= usd("10000.65")  # 6,400 * 1.0001 + 3,600
    assert bands.sizing["pm"] is not sizing
    assert bands.debts["pm"][1] == debt + (usd("15655") - debt) // 16
