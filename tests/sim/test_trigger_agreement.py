"""The trigger index and the PM bands never skip an account the full scan would liquidate: the
causes the simulation found, each worked out by hand. Every line runs through both twins
(`Pair` asserts equal derived events and digests after each one).

Markets list with one tier of maximum leverage 10 (maintenance = notional / 20) and 2 size
decimals; no fees.
"""

from __future__ import annotations

from clearinghouse.pm_triggers import MARK
from events import schema as ev
from events.units import px, sz, usd
from tests.support.pair import TEN_X, Pair
from tests.support.rulebook import deposit, market, prices, set_leverage, set_mode, trade


def test_a_pm_band_of_a_position_follows_the_mark_whatever_the_spread() -> None:
    """A unified account short 10 X at mark 100 with the oracle at 120. Cash 100 + 1,000 from
    the sale; value -1,000: AV = 100, MM = 50, so its buffer is 50 less 1 micro-USDC (its
    trigger is inclusive), of which the bands get the larger half, 25; a new band is written
    for half of that, 12.5: 7/8 of it, 10.9375, less 8 micro-USDC, over K = 2 x 10 coins lets a
    price move 0.5468746, half of it either side. The band used to span at least the spread,
    100..120, so a mark of 115 stayed inside it (only the full scan saw the liquidation); then
    a spread wider than the share made it one every tick leaves. The position's value and
    maintenance are at the mark alone, so its band now follows the mark alone: 99.7265627 to
    100.2734373 whatever the oracle, and 115 leaves it."""
    pair = Pair()
    pair.ok(market("X", 2, TEN_X), prices(X=("100", "120")), deposit("u", "100"), deposit("c", "100000"))
    pair.ok(set_mode("u", "unified"), trade("X", "100", "10", "c", "u"))
    bands = pair.fast.pm_bands
    assert bands is not None
    assert bands.entries["u"][("X", 0)][2:4] == (px("99.7265627"), px("100.2734373"))
    assert bands.entries["u"][("X", 0)][6] == MARK
    _backstopped_at_115(pair)


def test_an_oracle_move_leaves_no_band_of_a_position() -> None:
    """The account above, then the oracle alone moves from 120 to 130 and back to 110 (the
    mark stays 100): the position's figures do not move, no band is left and nobody is
    checked, where a band around the mark and the oracle was left by both ticks."""
    pair = Pair()
    pair.ok(market("X", 2, TEN_X), prices(X=("100", "120")), deposit("u", "100"), deposit("c", "100000"))
    pair.ok(set_mode("u", "unified"), trade("X", "100", "10", "c", "u"))
    bands = pair.fast.pm_bands
    assert bands is not None
    market_x = pair.fast.state.markets["X"]
    for oracle in ("130", "110"):
        pair.ok(prices(X=("100", oracle)))
        assert market_x.oracle == px(oracle)
        assert bands.crossed("X", market_x) == set()


def test_a_unified_position_opened_before_the_first_price_is_banded() -> None:
    """A unified account sells 10 X at 100 on a market listed without a price yet (mark 0):
    the position is worth 0 and has no maintenance, so AV = 100 + 1,000 = 1,100 against MM 0,
    healthy. Its bands used to be skipped as if nothing could trigger (no maintenance), so the
    first price, 115, left it unchecked by the index: AV = 1,100 - 1,150 = -50 against
    MM = 1,150 / 20 = 57.5, below 2/3 of it, a backstop the full scan made. With no mark to
    weigh the coin by, its share of the buffer is 0: every tick leaves the band."""
    pair = Pair()
    pair.ok(market("X", 2, TEN_X), deposit("u", "100"), deposit("c", "100000"), set_mode("u", "unified"))
    pair.ok(trade("X", "100", "10", "c", "u"))
    bands = pair.fast.pm_bands
    assert bands is not None
    assert bands.entries["u"][("X", 0)][2:4] == (10**40, -(10**40))  # ALWAYS: every tick leaves it
    _backstopped_at_115(pair)


def test_an_account_deleveraged_after_its_own_liquidation_is_watched() -> None:
    """`a` holds long 10 X (from `b`) and short 10 W (to `m`) in cross, and long 10 Y isolated
    (margin 1,000 / 10 = 100, so its cross cash is 200 - 100 = 100). One tick: X 150, W 140,
    Y 92. `a` is checked first (by id): its isolated Y (equity 100 - 80 = 20 against MM 46, below
    2/3 of it) goes to the backstop with its margin, its cross book is healthy
    (100 + 1,500 - 1,400 = 200 against MM 75 + 70 = 145). Then `b`, short X, is bankrupt
    (100 + 1,000 - 1,500 = -400) and the liquidator takes no loss: ADL closes `a`'s X long at the
    previous mark, 100, which takes its profit away: cash 1,100,
    short W worth -1,400, AV = -300 against MM 70. An account is liquidated once per event,
    so `a` used to be left there unwatched and unindexed for what it holds now: the next event
    that did not name it checked nobody. It is watched now, and the next event liquidates it:
    a backstop with -300 of equity, then ADL of its W short against `m`'s long at W's
    previous mark, 100."""
    pair = Pair(loss_limit=0)
    pair.ok(market("X", 2, TEN_X), market("Y", 2, TEN_X), market("W", 2, TEN_X), prices(X="100", Y="100", W="100"))
    pair.ok(deposit("a", "200"), deposit("b", "100"), deposit("m", "100000"))
    pair.ok(trade("X", "100", "10", "a", "b"), trade("W", "100", "10", "m", "a"))
    pair.ok(set_leverage("a", "Y", 10, cross=False), trade("Y", "100", "10", "a", "m"))
    assert pair.raw("a") == usd("100") and pair.pos("a", "Y").iso_raw == usd("100") - usd("1000")
    tick, derived = pair.at(prices(X="150", Y="92", W="140"))
    assert [(type(d).__name__, d.account) for d in derived if not isinstance(d, ev.LiquidationFill)][:3] == [
        ("LiquidationTriggered", "a"),
        ("Backstop", "a"),
        ("LiquidationTriggered", "b"),
    ]
    assert pair.szi("a", "X") == 0 and pair.raw("a") == usd("1100")
    assert pair.state.watch == {"a": tick}
    later = pair.send(deposit("m", "1"))
    assert [type(d) for d in later] == [ev.LiquidationTriggered, ev.Adl]
    triggered, adl = later
    assert (triggered.account, triggered.scope, triggered.equity, triggered.maintenance, triggered.phase) == (
        "a",
        "cross",
        usd("-300"),
        usd("70"),
        "backstop",
    )
    assert (adl.account, adl.counterparty, adl.coin, adl.sz, adl.px) == ("a", "m", "W", sz("10"), px("100"))
    assert pair.szi("a", "W") == 0 and pair.raw("a") == usd("100") and not pair.state.watch


def test_an_account_an_impact_fill_moved_after_its_own_liquidation_is_watched() -> None:
    """Impact mode, no fees: a fill of notional n moves the price by 10% x n / 9,500 USDC.
    `a` holds long 10 X in cross (cash 200 - 100 of isolated margin = 100) and long 10 Y
    isolated (margin 100); `b` holds long 10 X on 85. One tick: X 95, Y 92. `a` first: its Y
    (equity 100 - 80 = 20 against MM 46, below 2/3 of it) goes to the backstop; its cross book
    is healthy (100 - 50 = 50 against 47.5). Then `b` (85 - 50 = 35 against 47.5, above 2/3 of
    it: the market phase) sells its 10 X: notional 950 moves the price 1%, to 94.05. That leaves
    `a` at 100 - 59.5 = 40.5 against MM 47.025, below, after its turn: it used to stay so, out
    of the watch list and with its crossed keys left to the next tick of X. It is watched now,
    and the next event liquidates it: notional 940.5 moves the price 0.99%, to
    94.05 x 0.9901 = 93.118905, 93.1189 on the tick."""
    pair = Pair(mode="impact", impact_ppm=100_000, depth=usd("9500"), fee_ppm=0)
    pair.ok(market("X", 2, TEN_X), market("Y", 2, TEN_X), prices(X="100", Y="100"))
    pair.ok(deposit("a", "200"), deposit("b", "85"), deposit("m", "100000"), set_leverage("a", "Y", 10, cross=False))
    pair.ok(trade("Y", "100", "10", "a", "m"), trade("X", "100", "10", "a", "m"), trade("X", "100", "10", "b", "m"))
    tick, derived = pair.at(prices(X="95", Y="92"))
    assert [(type(d).__name__, d.account) for d in derived] == [
        ("LiquidationTriggered", "a"),
        ("Backstop", "a"),
        ("LiquidationTriggered", "b"),
        ("LiquidationFill", "b"),
    ]
    assert (derived[3].sz, derived[3].px) == (-sz("10"), px("94.05"))
    assert pair.state.watch == {"a": tick}
    later = pair.send(deposit("m", "1"))
    assert [type(d) for d in later] == [ev.LiquidationTriggered, ev.LiquidationFill]
    triggered, fill = later
    assert (triggered.account, triggered.scope, triggered.equity, triggered.maintenance, triggered.phase) == (
        "a",
        "cross",
        usd("40.5"),
        usd("47.025"),
        "market",
    )
    assert (fill.account, fill.coin, fill.sz, fill.px, fill.fee) == ("a", "X", -sz("10"), px("93.1189"), 0)
    assert pair.raw("a") == usd("100") - usd("68.811") and not pair.state.watch


def _backstopped_at_115(pair: Pair) -> None:
    """`u`, short 10 X with 1,100 of cash: X at 115 makes its AV 1,100 - 1,150 = -50 against
    MM 1,150 / 20 = 57.5, below 2/3 of it: a backstop."""
    derived = pair.send(prices(X="115"))
    triggered = derived[0]
    assert isinstance(triggered, ev.LiquidationTriggered)
    assert (triggered.account, triggered.scope, triggered.equity, triggered.maintenance, triggered.phase) == (
        "u",
        "cross",
        usd("-50"),
        usd("57.5"),
        "backstop",
    )


def test_an_account_liquidated_in_an_event_is_indexed_once_at_its_end() -> None:
    """Impact mode as above (10% x notional / 9,500 USDC), each account long 10 X from `m`.
    X 100 -> 95: `a` (85 deposited) has AV 85 - 50 = 35 against MM 47.5, above 2/3 of it: the
    market phase sells its 10 X, notional 950, 1% below the mark: at 94.05, the new mark. That
    crosses `c` (100 deposited: AV 50 against 47.5 at 95, healthy), now AV 100 - 59.5 = 40.5
    against MM 47.025: the second round sells its 10 X, notional 940.5, 0.99% below: 93.118905,
    93.1189 on the tick. `a`, flat since its own round, used to be checked and re-indexed after
    each round that moved the mark (three times in all), `c` twice; each is now re-indexed
    once, when the event ends, and neither is left below maintenance."""
    pair = Pair(mode="impact", impact_ppm=100_000, depth=usd("9500"), fee_ppm=0)
    pair.ok(market("X", 2, TEN_X), prices(X="100"))
    pair.ok(deposit("a", "85"), deposit("c", "100"), deposit("m", "100000"))
    pair.ok(trade("X", "100", "10", "a", "m"), trade("X", "100", "10", "c", "m"))
    indexed: list[str] = []
    acted = pair.fast.checks.acted

    def counting(name: str) -> None:
        indexed.append(name)
        acted(name)

    pair.fast.checks.acted = counting  # type: ignore[method-assign]
    _, derived = pair.at(prices(X="95"))
    fills = [(d.account, d.sz, d.px) for d in derived if isinstance(d, ev.LiquidationFill)]
    assert fills == [("a", -sz("10"), px("94.05")), ("c", -sz("10"), px("93.1189"))]
    assert pair.state.markets["X"].mark == px("93.1189")
    assert sorted(indexed) == ["a", "c"] and not pair.state.watch
