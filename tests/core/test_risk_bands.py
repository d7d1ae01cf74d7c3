"""The risk model's trigger bands (docs/risk-margin.md, "Trigger bands"): the bound on how fast
an account's buffer `equity - MM` can fall per unit of a price, and the band it gives, worked
out by hand under risk-model.md's parameters (tests/support/risk.py) and the shipped defaults."""

from __future__ import annotations

from clearinghouse.models.risk import RISK
from clearinghouse.pm_triggers import BOTH
from clearinghouse.risk.bands import SCALE, slope
from clearinghouse.risk.params import resolved
from tests.core.test_risk_mode import _book
from tests.support.risk import rules
from tests.support.rulebook import prices, trade


def test_slope_by_hand() -> None:
    # equity 1 + MM factor 0.5 * worst weighted move 0.15 + basis 0.005 + loans 0.01 (no perp charge)
    assert slope(rules(), "BTC") == SCALE * 109 // 100
    shipped = resolved(None)
    # BTC: 1 + 0.5 * 0.15 (the 70% credit does not raise it) + perp 0.002 + basis 0.005 + loans 0.01
    assert slope(shipped, "BTC") == SCALE * 1092 // 1000
    # an alt: the worst weighted move is 0.25 (the 0.5 tail counts 0.175), above the 1% floor;
    # 1 + 0.5 * 0.25 + perp 0.002 + basis 0.01 + loans 0.01
    assert slope(shipped, "SOL") == SCALE * 1147 // 1000


def test_a_long_btc_gets_a_band_inside_its_liquidation_price() -> None:
    book = _book()
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    # equity 20,000, MM 0.075 * 100,000 = 7,500: buffer 12,500 USDC, less 16 micro-USDC for
    # rounding: 12,499.999984; a new band takes half: 6,249.999992. K = 1.09 BTC (1e8 * 1.09).
    # Its price room: (6,249.999992 - 781.249999 (1/8 for funding) - 0.000008) / 1.09 = 5,017.20182110
    # USDC, split either side of the price: 2,508.60091055; the funding band 781.249999 / 1 BTC.
    entry = book.engine.pm_bands.entries["a"]["BTC", 0]
    low, high, funding = 9_749_139_908_945, 10_250_860_091_055, 781_249_999 * 10**6
    assert entry == ("BTC", 0, low, high, -funding, funding, BOTH)  # around the mark and the oracle
    book.ok(prices(BTC="97491.39908945"))  # the band's low key: still inside, the band is kept
    assert book.engine.pm_bands.entries["a"]["BTC", 0] == entry
    book.ok(prices(BTC="97491.39908944"))  # below it: checked exactly and banded afresh
    assert book.engine.pm_bands.entries["a"]["BTC", 0][2] < 9_749_139_908_945


def test_the_whole_buffer_used_up_is_still_above_maintenance() -> None:
    book = _book()
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    # the bound: 12,500 / 1.09 = 11,467.89 of fall uses up the buffer; at 88,532.11 equity is
    # 8,532.11 and MM 0.075 * 88,532.11 = 6,639.91: healthy (the liquidation price is
    # 80,000 / 0.925 = 86,486.49, further down)
    book.ok(prices(BTC="88532.11"))
    state = book.state
    assert not RISK.liquidatable(state, state.accounts["a"], state.spot["a"])
    req = RISK.requirement(state, state.accounts["a"], state.spot["a"])
    assert (req.equity, req.maintenance) == (8_532_110_000, 6_639_908_250)
