"""The shortcuts of the PM hot paths against their simple twins: the band lists' extreme-key
look-ahead against a scan of every band, and the per-rules token terms of `spot_sums` against
a rules change (a new rules object must never be read through the old one's terms)."""

from __future__ import annotations

from itertools import product

import msgspec

from clearinghouse import portfolio
from clearinghouse.engine import Engine
from clearinghouse.pm_triggers import BOTH, MARK, ORACLE
from clearinghouse.state import LiquidationConfig, State
from events.units import usd
from replay.workload import GeneratorConfig, generate
from tests.support.rulebook import Book, deposit, pm_rules, prices, set_mode, token


def test_band_crossing_reads_the_same_accounts_as_a_scan_of_every_band():
    """`PmBands.crossed` looks at each list's extreme key before reading a range; it must name
    exactly the accounts one of whose bands of the coin the prices or funding index left (the
    mark or the oracle alone for a band that follows one of them, both for the others)."""
    config = GeneratorConfig(accounts=150, markets=4, events=6_000, seed=9, pm_share=0.4)
    engine = Engine(State(liquidation=LiquidationConfig()))
    for event in generate(config):
        engine.apply(event)
    bands = engine.pm_bands
    assert bands is not None and bands.entries
    sizes = []
    for coin, market in sorted(engine.state.markets.items()):
        for mark in (market.mark * 8 // 10, market.mark, market.mark * 12 // 10):
            for index, oracle in product(
                (market.funding_index - 10**15, market.funding_index, market.funding_index + 10**15),
                (market.oracle * 9 // 10, market.oracle, market.oracle * 11 // 10),
            ):
                moved = msgspec.structs.replace(market, mark=mark, oracle=oracle, funding_index=index)
                followed = {
                    BOTH: (min(moved.mark, moved.oracle), max(moved.mark, moved.oracle)),
                    MARK: (moved.mark, moved.mark),
                    ORACLE: (moved.oracle, moved.oracle),
                }
                scan = {
                    name
                    for name, entries in bands.entries.items()
                    for c, _, low, high, flo, fhi, follows in entries.values()
                    for lo, hi in [followed[follows]]
                    if c == coin and (low > lo or high < hi or flo > index or fhi < index)
                }
                assert bands.crossed(coin, moved) == scan
                sizes.append(len(scan))
    assert 0 in sizes and max(sizes) > 10


def test_spot_sums_follow_a_rules_change():
    book = Book()
    book.ok(token("HYPE"), prices(HYPE="10"), deposit("pm", "1001", token="HYPE"), set_mode("pm", "portfolio"))
    state, spot = book.state, book.state.spot["pm"]
    # 1,001 HYPE at 10 = 10,010; LTV 0.65: limit 6,506.50; partial 10,010 * 0.825 = 8,258.25;
    # full 10,010 * 0.883 = 8,838.83; liquidation value 10,010 * (1 + 0.65) / 2 = 8,258.25
    assert portfolio.spot_sums(state, spot) == (
        usd("6506.5"),
        usd("10010"),
        usd("8258.25"),
        usd("10010"),
        usd("8258.25"),
        usd("8838.83"),
    )
    book.ok(pm_rules(ltv={"HYPE": "0.5"}, caps={"HYPE": {"supply": 10_000_000, "user_supply": 500}}))
    # LTV 0.5: limit 5,005; partial 10,010 * 0.75 = 7,507.50; full 10,010 * 0.833 = 8,338.33;
    # liquidation value on the 500 HYPE the new user supply cap counts: 5,000 * 0.75 = 3,750
    assert portfolio.spot_sums(state, spot) == (
        usd("5005"),
        usd("10010"),
        usd("3750"),
        usd("10010"),
        usd("7507.5"),
        usd("8338.33"),
    )


def test_borrow_limit_is_the_spot_sums_borrow_limit():
    """`borrow_limit` (the automatic borrow's headroom) sums the rules' collateral tokens alone;
    it must equal the `spot_sums` figure for every account of a generated PM book, with and
    without a buy being checked, under both LTV eras."""
    book = Book(liquidation=False)
    for event in generate(GeneratorConfig(accounts=150, markets=4, events=6_000, seed=9, pm_share=0.4)):
        book.engine.apply(event)
    state = book.state
    held = [spot for spot in state.spot.values() if spot.balances or spot.supplied]
    assert len(held) > 20
    for era in ({}, {"ltv": {"HYPE": "0.5", "BTC": "0.5", "USDC": "0.3"}}):
        if era:  # a USDC LTV must still leave USDC out, as spot_sums does
            book.ok(pm_rules(**era))
        for spot in held:
            for extra in (None, ("HYPE", 123_456_789), ("USDC", 5_000_000)):
                assert (
                    portfolio.borrow_limit(state, spot, extra) == portfolio.spot_sums(state, spot, extra).borrow_limit
                )
