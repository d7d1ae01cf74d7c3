"""Liquidation (docs/rules.md 2 and 5, and the engine's documented choices): triggers,
the market phase (20% slices above 100k, the 30 s cooldown, stop when maintenance is restored),
the backstop, auto-deleveraging, bad debt, and the three execution modes (mark, impact, external).

Every expected value is worked out by hand next to its assertion, never copied from engine
output. Every scenario runs through `Pair`, which feeds `Engine()` and `Engine(full_scan=True)`
the same events and checks, after every event, conservation on both, identical derived events
and identical digests.

Markets use one margin tier at 10x unless said otherwise: MM = ntl / (2 * 10) = 5% of notional,
rounded up to the micro-USDC. ETH: sz_decimals 4 (lot 0.0001, tick 0.01); SOL: sz_decimals 2
(lot 0.01, tick 0.0001); BTC: sz_decimals 5 (lot 0.00001, tick 0.1).
Cash convention: a buy of s at p debits s*p, a sell credits it; AV = rawUsd + sum(szi * mark).
"""

from __future__ import annotations

import pytest

from events import schema as ev
from tests.support.pair import LIQUIDATOR, TEN_X, Pair, px, stamped, sz, usd
from tests.support.rulebook import deposit, funding, isolated_margin, market, prices, rules, set_leverage, trade


def triggered(account, equity, maintenance, positions, phase, cause, ts=0, scope="cross"):
    return ev.LiquidationTriggered(
        account=account,
        scope=scope,
        cause=cause,
        equity=usd(equity),
        maintenance=usd(maintenance),
        positions=[ev.PositionView(c, sz(s), px(m)) for c, s, m in positions],
        phase=phase,
        ts=ts,
    )


def fill(account, coin, size, price, fee, cause, ts=0):
    return ev.LiquidationFill(account=account, coin=coin, sz=sz(size), px=px(price), fee=usd(fee), cause=cause, ts=ts)


def liq(name):
    """A trade marker: this fill executes a liquidation order of `name` (external mode)."""
    return {"account": name}


# ---- triggers ------------------------------------------------------------------------------------


def _one_eth_long(book: Pair, cash: str) -> None:
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", cash),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "1", "alice", "mm"),
    )


def test_cross_trigger_at_mark_not_at_exactly_mm():
    book = Pair(mode="mark")
    _one_eth_long(book, "1050")
    # alice: raw = 1,050 - 2,000 = -950
    assert book.raw("alice") == usd("-950")
    # mark 1,000 (oracle 900, which must not count): AV = -950 + 1,000 = 50; MM = 1,000 / 20 = 50
    # -> AV == MM: not liquidatable
    book.ok(prices(ETH=("1000", "900")))
    assert book.state.watch == {}
    # mark 999.99 (oracle 1,100): AV = -950 + 999.99 = 49.99; MM = ceil(999,990,000 / 20) micro
    # = 49,999,500 micro = 49.9995 -> 49.99 < 49.9995: liquidatable.
    # phase: 3 * 49.99 = 149.97 >= 2 * 49.9995 = 99.999 -> market
    seq, derived = book.at(prices(ETH=("999.99", "1100")))
    assert seq == 6  # market, 2 deposits, prices, trade, prices -> seqs 0..5, this is the 7th event
    assert derived == [
        triggered("alice", "49.99", "49.9995", [("ETH", "1", "999.99")], "market", cause=6),
        # 1 ETH, ntl 999.99 <= 100k -> all of it; slippage 0 -> at the mark 999.99 (on the tick)
        # fee = ceil(999,990,000 * 450 / 1e6) = ceil(449,995.5) = 449,996 micro
        fill("alice", "ETH", "-1", "999.99", "0.449996", cause=6),
    ]
    # alice: -950 + 999.99 - 0.449996 = 49.540004, flat, nothing left to watch
    assert book.raw("alice") == usd("49.540004")
    assert book.szi("alice", "ETH") == 0
    assert book.state.watch == {}
    # the liquidator bought 1 ETH at 999.99: long 1, raw -999.99; the fee account got 0.449996
    assert book.szi(LIQUIDATOR, "ETH") == sz("1")
    assert book.raw(LIQUIDATOR) == usd("-999.99")
    assert book.state.fees == usd("0.449996")


def test_isolated_trigger_not_at_exactly_mm():
    book = Pair(mode="mark")
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "1000"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        set_leverage("alice", "ETH", 10, cross=False),
        trade("ETH", "2000", "1", "alice", "mm"),
    )
    # isolated open: margin 2,000 / 10 = 200 moves from cross: cross raw 800,
    # iso ledger 200 - 2,000 = -1,800
    assert book.raw("alice") == usd("800")
    assert book.pos("alice", "ETH").iso_raw == usd("-1800")
    book.ok(isolated_margin("alice", "ETH", "90"))  # cross 710, iso -1,710 (withdrawable 800 >= 90)
    # mark 1,800: marginUsed = -1,710 + 1,800 = 90; MM = 1,800 / 20 = 90 -> equal: not liquidatable
    book.ok(prices(ETH="1800"))
    # mark 1,799.99: marginUsed = 89.99; MM = ceil(1,799,990,000 / 20) = 89,999,500 micro = 89.9995
    # -> below; 3 * 89.99 = 269.97 >= 179.999 -> market phase
    seq, derived = book.at(prices(ETH="1799.99"))
    assert seq == 8
    assert derived == [
        triggered("alice", "89.99", "89.9995", [("ETH", "1", "1799.99")], "market", cause=8, scope="ETH"),
        # fee = ceil(1,799,990,000 * 450 / 1e6) = ceil(809,995.5) = 809,996 micro
        fill("alice", "ETH", "-1", "1799.99", "0.809996", cause=8),
    ]
    # iso ledger: -1,710 - 0.809996 + 1,799.99 = 89.180004, returned to cross on close:
    # cross 710 + 89.180004 = 799.180004
    assert book.pos("alice", "ETH").iso_raw == 0
    assert book.raw("alice") == usd("799.180004")
    assert book.state.watch == {}


def test_funding_can_trigger():
    book = Pair(mode="mark")
    _one_eth_long(book, "150")  # raw -1,850; at 2,000 AV 150 >= MM 100
    # one hour at 3%: the long pays 1 * 2,000 (oracle) * 0.03 = 60 -> AV 90 < MM 100;
    # 270 >= 200 -> market
    seq, derived = book.at(funding("ETH", rate="0.03"))
    assert seq == 5
    assert derived == [
        triggered("alice", "90", "100", [("ETH", "1", "2000")], "market", cause=5),
        fill("alice", "ETH", "-1", "2000", "0.9", cause=5),  # fee 2,000 * 0.00045
    ]
    # the fill settles the funding first: -1,850 - 60 + 2,000 - 0.9 = 89.1
    assert book.raw("alice") == usd("89.1")
    assert book.state.funding_pool == usd("60")  # paid in by alice, not yet paid out to mm


def test_new_margin_table_can_trigger():
    book = Pair(mode="mark")
    _one_eth_long(book, "150")  # raw -1,850; AV 150 >= MM 100 at 10x
    # re-listed at 5x: MM = 2,000 / 10 = 200 > AV 150; 450 >= 400 -> market
    seq, derived = book.at(market("ETH", 4, [("0", 5)]))
    assert derived == [
        triggered("alice", "150", "200", [("ETH", "1", "2000")], "market", cause=seq),
        fill("alice", "ETH", "-1", "2000", "0.9", cause=seq),
    ]
    assert book.raw("alice") == usd("149.1")  # -1,850 + 2,000 - 0.9


def test_cross_and_isolated_scopes_are_liquidated_separately_in_one_event():
    book = Pair(mode="mark")
    book.ok(
        market("ETH", 4, TEN_X),
        market("SOL", 2, TEN_X),
        deposit("alice", "1000"),
        deposit("mm", "1000000"),
        prices(ETH="2000", SOL="100"),
        set_leverage("alice", "SOL", 10, cross=False),
        trade("SOL", "100", "10", "alice", "mm"),  # margin 100 -> cross 900, iso 100 - 1,000 = -900
        trade("ETH", "2000", "1", "alice", "mm"),  # cross raw 900 - 2,000 = -1,100
    )
    # ETH 1,150: AV_cross = 50 < MM 57.5; 150 >= 115 -> market
    # SOL 94: marginUsed = -900 + 940 = 40 < MM 47; 120 >= 94 -> market
    seq, derived = book.at(prices(ETH="1150", SOL="94"))
    assert derived == [
        triggered("alice", "50", "57.5", [("ETH", "1", "1150")], "market", cause=seq),
        fill("alice", "ETH", "-1", "1150", "0.5175", cause=seq),  # 1,150 * 0.00045
        triggered("alice", "40", "47", [("SOL", "10", "94")], "market", cause=seq, scope="SOL"),
        fill("alice", "SOL", "-10", "94", "0.423", cause=seq),  # 940 * 0.00045
    ]
    # cross: -1,100 + 1,150 - 0.5175 = 49.4825; SOL ledger -900 - 0.423 + 940 = 39.577 returns
    # to cross on close: 89.0595
    assert book.raw("alice") == usd("89.0595")
    assert book.pos("alice", "SOL").iso_raw == 0
    assert book.state.watch == {}


@pytest.mark.parametrize("mark, phase", [("1500", "market"), ("1499.99", "backstop")])
def test_phase_boundary_at_two_thirds_of_maintenance(mark, phase):
    book = Pair(mode="mark")
    _one_eth_long(book, "550")  # raw 550 - 2,000 = -1,450
    seq, derived = book.at(prices(ETH=mark))
    assert seq == 5
    if phase == "market":
        # AV = -1,450 + 1,500 = 50, MM = 75: 3 * 50 = 150 == 2 * 75 -> not below 2/3: market
        # sell 1 at 1,500, fee = 1,500 * 0.00045 = 0.675 -> raw -1,450 + 1,500 - 0.675 = 49.325
        assert derived == [
            triggered("alice", "50", "75", [("ETH", "1", "1500")], "market", cause=5),
            fill("alice", "ETH", "-1", "1500", "0.675", cause=5),
        ]
        assert book.raw("alice") == usd("49.325")
    else:
        # AV = 49.99, MM = ceil(1,499,990,000 / 20) = 74,999,500 micro: 149.97 < 149.999 -> backstop
        # taken over at 1,499.99 (on tick, no fee): cash -1,450 + 1,499.99 = 49.99 moves with it
        assert derived == [
            triggered("alice", "49.99", "74.9995", [("ETH", "1", "1499.99")], "backstop", cause=5),
            ev.Backstop(
                account="alice",
                scope="cross",
                positions=[ev.PositionView("ETH", sz("1"), px("1499.99"))],
                margin=usd("49.99"),
                cause=5,
                ts=0,
            ),
        ]
        assert book.raw("alice") == 0
        assert book.raw(LIQUIDATOR) == usd("-1450")  # -1,499.99 + 49.99
    assert book.szi("alice", "ETH") == 0


# ---- market phase: 20% slices, cooldown, stop when restored --------------------------------------


def _hundred_eth(book: Pair) -> None:
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "17125"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "100", "alice", "mm"),
    )
    # alice: raw 17,125 - 200,000 = -182,875; AV 17,125 >= MM 10,000


@pytest.mark.parametrize("second_ts, whole", [(2_000, True), (30_999, True), (31_000, False)])
def test_partial_step_and_cooldown(second_ts, whole):
    book = Pair(mode="mark")
    _hundred_eth(book)
    # ts 1,000, mark 1,900: AV = -182,875 + 190,000 = 7,125; MM = 190,000 / 20 = 9,500 -> below;
    # 3 * 7,125 = 21,375 >= 19,000 -> market. ntl 190,000 > 100,000 and no cooldown ->
    # 20%: ceil(100 * 0.2 / 0.0001) lots = 200,000 lots = 20 ETH
    seq, derived = book.at(stamped(prices(ETH="1900"), 1_000))
    assert seq == 5
    assert derived == [
        triggered("alice", "7125", "9500", [("ETH", "100", "1900")], "market", cause=5, ts=1_000),
        # fee = 20 * 1,900 * 0.00045 = 38,000 * 0.00045 = 17.1
        fill("alice", "ETH", "-20", "1900", "17.1", cause=5, ts=1_000),
    ]
    # raw -182,875 + 38,000 - 17.1 = -144,892.1; AV = -144,892.1 + 80 * 1,900 = 7,107.9
    # MM = 152,000 / 20 = 7,600 -> still below, but liquidated at most once per event:
    # it stays on the watch list (found at seq 5) with a cooldown until 1,000 + 30,000 = 31,000
    assert book.raw("alice") == usd("-144892.1")
    assert book.szi("alice", "ETH") == sz("80")
    assert book.state.watch == {"alice": 5}
    assert book.account("alice").cooldown_until == 31_000

    # any later event re-checks a watched account: here a deposit to an unrelated account
    seq, derived = book.at(deposit("nobody", "1", ts=second_ts))
    assert seq == 6
    if whole:
        # inside the cooldown: the whole 80 ETH; fee = 152,000 * 0.00045 = 68.4
        assert derived == [
            triggered("alice", "7107.9", "7600", [("ETH", "80", "1900")], "market", cause=6, ts=second_ts),
            fill("alice", "ETH", "-80", "1900", "68.4", cause=6, ts=second_ts),
        ]
        # raw -144,892.1 + 152,000 - 68.4 = 7,039.5: flat, keeps the cash
        assert book.raw("alice") == usd("7039.5")
        assert book.szi("alice", "ETH") == 0
        assert book.account("alice").cooldown_until == 31_000  # a whole close starts no new cooldown
    else:
        # at 1,000 + 30,000 the cooldown is over: 20% again, ceil(80 * 0.2) = 16 ETH (exact in lots)
        # fee = 16 * 1,900 * 0.00045 = 30,400 * 0.00045 = 13.68
        assert derived == [
            triggered("alice", "7107.9", "7600", [("ETH", "80", "1900")], "market", cause=6, ts=second_ts),
            fill("alice", "ETH", "-16", "1900", "13.68", cause=6, ts=second_ts),
        ]
        # raw -144,892.1 + 30,400 - 13.68 = -114,505.78; AV = -114,505.78 + 64 * 1,900 = 7,094.22
        # MM = 121,600 / 20 = 6,080 -> restored: the trader keeps 64 ETH and the cash
        assert book.raw("alice") == usd("-114505.78")
        assert book.szi("alice", "ETH") == sz("64")
        assert book.account("alice").cooldown_until == 61_000  # 31,000 + 30,000
    assert book.state.watch == {}
    # a further event finds nothing to do
    book.ok(deposit("nobody", "1", ts=second_ts + 1))


def test_watched_account_is_checked_even_after_an_event_that_names_no_one():
    book = Pair(mode="mark")
    _hundred_eth(book)
    book.send(stamped(prices(ETH="1900"), 1_000))  # first 20% step, as above; alice watched
    assert book.state.watch == {"alice": 5}
    # a rules event (no ts: the time stays 1,000, inside the cooldown) changes no margin figure,
    # yet the watched account is checked: AV 7,107.9 < MM 7,600 -> the whole 80 ETH, fee 68.4
    seq, derived = book.at(rules("hl-current"))
    assert derived == [
        triggered("alice", "7107.9", "7600", [("ETH", "80", "1900")], "market", cause=6, ts=1_000),
        fill("alice", "ETH", "-80", "1900", "68.4", cause=6, ts=1_000),
    ]
    assert seq == 6
    assert book.raw("alice") == usd("7039.5")  # -144,892.1 + 152,000 - 68.4
    assert book.state.watch == {}


def test_partial_slice_rounds_up_to_the_lot_and_stops_when_restored():
    book = Pair(mode="mark")
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "128456.7"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "123.4567", "alice", "mm"),
    )
    # raw = 128,456.7 - 246,913.4 = -118,456.7; at 2,000 AV = 128,456.7 >= MM 12,345.67
    # mark 1,000: AV = -118,456.7 + 123,456.7 = 5,000; MM = 123,456.7 / 20 = 6,172.835 -> below;
    # 3 * 5,000 = 15,000 >= 12,345.67 -> market; ntl 123,456.7 > 100,000 -> 20% of 123.4567 =
    # 24.69134, rounded up to the lot 0.0001 -> 24.6914
    seq, derived = book.at(prices(ETH="1000"))
    assert derived == [
        triggered("alice", "5000", "6172.835", [("ETH", "123.4567", "1000")], "market", cause=seq),
        # fee = 24,691.4 * 0.00045 = 11.11113
        fill("alice", "ETH", "-24.6914", "1000", "11.11113", cause=seq),
    ]
    # raw = -118,456.7 + 24,691.4 - 11.11113 = -93,776.41113; left 123.4567 - 24.6914 = 98.7653
    # AV = -93,776.41113 + 98,765.3 = 4,988.88887 >= MM 98,765.3 / 20 = 4,938.265: restored, stop
    assert book.raw("alice") == usd("-93776.41113")
    assert book.szi("alice", "ETH") == sz("98.7653")
    assert book.state.watch == {}
    assert book.account("alice").cooldown_until == 30_000  # event time 0 + 30 s


def test_largest_notional_first_and_stop_when_maintenance_is_restored():
    book = Pair(mode="mark")
    book.ok(
        market("BTC", 5, TEN_X),
        market("ETH", 4, TEN_X),
        market("SOL", 2, TEN_X),
        deposit("alice", "6000"),
        deposit("mm", "1000000"),
        prices(BTC="60000", ETH="2000", SOL="100"),
        trade("SOL", "100", "100", "alice", "mm"),
        trade("ETH", "2000", "10", "alice", "mm"),
        trade("BTC", "60000", "0.5", "alice", "mm"),
    )
    # raw = 6,000 - 10,000 - 20,000 - 30,000 = -54,000; AV 6,000, MM 3,000
    # marks BTC 56,000, ETH 1,900, SOL 95: values 28,000 + 19,000 + 9,500 = 56,500
    # AV = 2,500; MM = 1,400 + 950 + 475 = 2,825 -> below; 7,500 >= 5,650 -> market
    seq, derived = book.at(prices(BTC="56000", ETH="1900", SOL="95"))
    assert derived == [
        triggered(
            "alice",
            "2500",
            "2825",
            [("BTC", "0.5", "56000"), ("ETH", "10", "1900"), ("SOL", "100", "95")],
            "market",
            cause=seq,
        ),
        # BTC first (ntl 28,000, <= 100k: all of it); fee = 28,000 * 0.00045 = 12.6
        fill("alice", "BTC", "-0.5", "56000", "12.6", cause=seq),
    ]
    # raw = -54,000 + 28,000 - 12.6 = -26,012.6; AV = -26,012.6 + 19,000 + 9,500 = 2,487.4
    # MM = 950 + 475 = 1,425 -> restored: ETH and SOL and the cash stay with the trader
    assert book.raw("alice") == usd("-26012.6")
    assert (book.szi("alice", "BTC"), book.szi("alice", "ETH"), book.szi("alice", "SOL")) == (0, sz("10"), sz("100"))
    assert book.state.watch == {}
    assert book.account("alice").cooldown_until == 0  # no partial slice, no cooldown


def test_equal_notionals_are_visited_by_coin():
    book = Pair(mode="mark")
    book.ok(
        market("SOL", 2, TEN_X),
        market("ETH", 4, TEN_X),
        deposit("alice", "3500"),
        deposit("mm", "1000000"),
        prices(ETH="2000", SOL="100"),
        trade("SOL", "100", "200", "alice", "mm"),
        trade("ETH", "2000", "10", "alice", "mm"),
    )
    # raw = 3,500 - 40,000 = -36,500. ETH 1,900 and SOL 95: both ntl 19,000 (a tie)
    # AV = -36,500 + 38,000 = 1,500; MM = 950 + 950 = 1,900 -> below; 4,500 >= 3,800 -> market
    seq, derived = book.at(prices(SOL="95", ETH="1900"))
    assert derived == [
        triggered("alice", "1500", "1900", [("ETH", "10", "1900"), ("SOL", "200", "95")], "market", cause=seq),
        # tie -> "ETH" before "SOL"; fee 19,000 * 0.00045 = 8.55
        fill("alice", "ETH", "-10", "1900", "8.55", cause=seq),
    ]
    # raw = -36,500 + 19,000 - 8.55 = -17,508.55; AV = 1,491.45 >= MM 950: stop, SOL kept
    assert book.raw("alice") == usd("-17508.55")
    assert book.szi("alice", "SOL") == sz("200")


# ---- mark mode with slippage, market-phase losses and bad debt -----------------------------------


def test_mark_mode_short_buys_back_at_mark_plus_slippage_rounded_up():
    book = Pair(mode="mark", slippage_ppm=1_000)  # 0.1%
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("bob", "150"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "1", "mm", "bob"),
    )
    # bob short 1: raw 150 + 2,000 = 2,150. Mark 2,060.01: AV = 2,150 - 2,060.01 = 89.99;
    # MM = ceil(2,060,010,000 / 20) = 103,000,500 micro; 269.97 >= 206.001 -> market
    seq, derived = book.at(prices(ETH="2060.01"))
    assert derived == [
        triggered("bob", "89.99", "103.0005", [("ETH", "-1", "2060.01")], "market", cause=seq),
        # buy at 2,060.01 * 1.001 = 2,062.07001 -> up to the 0.01 tick: 2,062.08
        # fee = ceil(2,062,080,000 * 450 / 1e6) = 927,936 micro (exact)
        fill("bob", "ETH", "1", "2062.08", "0.927936", cause=seq),
    ]
    # raw = 2,150 - 2,062.08 - 0.927936 = 86.992064
    assert book.raw("bob") == usd("86.992064")
    assert book.szi(LIQUIDATOR, "ETH") == sz("-1")
    assert book.raw(LIQUIDATOR) == usd("2062.08")


@pytest.mark.parametrize("loss_limit, covered, debt", [(None, "104.7857", None), (usd("100"), "100", "4.7857")])
def test_market_phase_loss_covered_up_to_the_limit_rest_is_bad_debt(loss_limit, covered, debt):
    book = Pair(mode="mark", slippage_ppm=100_000, loss_limit=loss_limit)  # 10% slippage
    _one_eth_long(book, "150")  # raw -1,850
    # mark 1,940.01: AV = 90.01; MM = ceil(1,940,010,000 / 20) = 97,000,500 micro;
    # 270.03 >= 194.001 -> market
    seq, derived = book.at(prices(ETH="1940.01"))
    expected = [
        triggered("alice", "90.01", "97.0005", [("ETH", "1", "1940.01")], "market", cause=seq),
        # sell at 1,940.01 * 0.9 = 1,746.009 -> down to the tick: 1,746.00
        # fee = 1,746 * 0.00045 = 0.7857
        fill("alice", "ETH", "-1", "1746", "0.7857", cause=seq),
    ]
    # flat with raw -1,850 + 1,746 - 0.7857 = -104.7857: the liquidator covers up to its limit
    if debt is not None:
        expected.append(ev.BadDebt(account="alice", scope="cross", amount=usd(debt), cause=seq, ts=0))
    assert derived == expected
    assert book.raw("alice") == 0
    # liquidator: bought 1 at 1,746 -> -1,746, minus what it covered
    assert book.raw(LIQUIDATOR) == usd("-1746") - usd(covered)
    assert book.state.bad_debt == (usd(debt) if debt else 0)


@pytest.mark.parametrize("loss_limit, covered, debt", [(None, "99.76545", None), (usd("50"), "50", "49.76545")])
def test_isolated_market_phase_loss_stays_with_the_position(loss_limit, covered, debt):
    book = Pair(mode="mark", slippage_ppm=100_000, loss_limit=loss_limit)
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "1000"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        set_leverage("alice", "ETH", 10, cross=False),
        trade("ETH", "2000", "1", "alice", "mm"),
    )
    # cross 800, iso -1,800. Mark 1,890: marginUsed 90 < MM 94.5; 270 >= 189 -> market
    seq, derived = book.at(prices(ETH="1890"))
    expected = [
        triggered("alice", "90", "94.5", [("ETH", "1", "1890")], "market", cause=seq, scope="ETH"),
        # 1,890 * 0.9 = 1,701.00 (on tick); fee 1,701 * 0.00045 = 0.76545
        fill("alice", "ETH", "-1", "1701", "0.76545", cause=seq),
    ]
    # iso ledger -1,800 - 0.76545 + 1,701 = -99.76545: the isolated scope is flat with negative
    # cash; the liquidator covers it up to its limit, the rest is bad debt; cross is not touched
    if debt is not None:
        expected.append(ev.BadDebt(account="alice", scope="ETH", amount=usd(debt), cause=seq, ts=0))
    assert derived == expected
    assert book.raw("alice") == usd("800")
    assert book.pos("alice", "ETH").iso_raw == 0
    assert book.raw(LIQUIDATOR) == usd("-1701") - usd(covered)
    assert book.state.bad_debt == (usd(debt) if debt else 0)


# ---- backstop --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["mark", "impact", "external"])
def test_backstop_of_a_cross_account(mode):
    book = Pair(mode=mode)
    book.ok(
        market("ETH", 4, TEN_X),
        market("SOL", 2, TEN_X),
        deposit("alice", "200"),
        deposit("mm", "1000000"),
        prices(ETH="2000", SOL="100"),
        trade("ETH", "2000", "1", "alice", "mm"),
        trade("SOL", "100", "10", "mm", "alice"),
    )
    # alice long 1 ETH, short 10 SOL: raw = 200 - 2,000 + 1,000 = -800; AV 200 >= MM 150
    # marks off the tick: ETH 1,900.005, SOL 105.00005.
    # AV = -800 + 1,900.005 - 1,050.0005 = 50.0045
    # MM = 1,900.005 / 20 + 1,050.0005 / 20 = 95.00025 + 52.500025 = 147.500275
    # 3 * 50.0045 = 150.0135 < 2 * 147.500275 = 295.00055 -> backstop
    seq, derived = book.at(prices(ETH="1900.005", SOL="105.00005"))
    assert derived == [
        triggered(
            "alice",
            "50.0045",
            "147.500275",
            [("ETH", "1", "1900.005"), ("SOL", "-10", "105.00005")],
            "backstop",
            cause=seq,
        ),
        # taken over at the marks rounded against alice: ETH down to 1,900.00, SOL up to 105.0001;
        # cash -800 + 1,900 - 1,050.001 = 49.999 moves with them
        ev.Backstop(
            account="alice",
            scope="cross",
            positions=[ev.PositionView("ETH", sz("1"), px("1900")), ev.PositionView("SOL", sz("-10"), px("105.0001"))],
            margin=usd("49.999"),
            cause=seq,
            ts=0,
        ),
    ]
    assert book.raw("alice") == 0
    assert (book.szi("alice", "ETH"), book.szi("alice", "SOL")) == (0, 0)
    assert (book.szi(LIQUIDATOR, "ETH"), book.szi(LIQUIDATOR, "SOL")) == (sz("1"), sz("-10"))
    # liquidator: -1,900 + 1,050.001 + 49.999 = -800
    assert book.raw(LIQUIDATOR) == usd("-800")
    assert book.state.fees == 0  # no fee on a takeover
    assert book.state.watch == {}
    assert book.state.liq_orders == {}


def test_backstop_absorbs_a_negative_cross_equity():
    book = Pair(mode="mark")  # loss_limit None: the liquidator absorbs any loss
    _one_eth_long(book, "150")  # raw -1,850
    # mark 1,800: AV = -50; MM = 90 -> backstop; the cash -50 is the margin moved (a loss absorbed)
    seq, derived = book.at(prices(ETH="1800"))
    assert derived == [
        triggered("alice", "-50", "90", [("ETH", "1", "1800")], "backstop", cause=seq),
        ev.Backstop(
            account="alice",
            scope="cross",
            positions=[ev.PositionView("ETH", sz("1"), px("1800"))],
            margin=usd("-50"),
            cause=seq,
            ts=0,
        ),
    ]
    assert book.raw("alice") == 0
    assert book.raw(LIQUIDATOR) == usd("-1850")  # -1,800 - 50
    assert book.state.bad_debt == 0


@pytest.mark.parametrize("mode", ["mark", "impact", "external"])
def test_backstop_of_an_isolated_position(mode):
    book = Pair(mode=mode)
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "1000"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        set_leverage("alice", "ETH", 10, cross=False),
        trade("ETH", "2000", "1", "alice", "mm"),
    )
    # cross raw 800, iso ledger -1,800. Mark 1,850.009 (off the tick):
    # marginUsed = -1,800 + 1,850.009 = 50.009; MM = ceil(1,850,009,000 / 20) = 92,500,450 micro
    # 150.027 < 185.0009 -> backstop of the ETH position only
    seq, derived = book.at(prices(ETH="1850.009"))
    assert derived == [
        triggered("alice", "50.009", "92.50045", [("ETH", "1", "1850.009")], "backstop", cause=seq, scope="ETH"),
        # taken at 1,850.009 rounded down to 1,850.00; its ledger -1,800 + 1,850 = 50 moves with it
        ev.Backstop(
            account="alice",
            scope="ETH",
            positions=[ev.PositionView("ETH", sz("1"), px("1850"))],
            margin=usd("50"),
            cause=seq,
            ts=0,
        ),
    ]
    assert book.raw("alice") == usd("800")  # the cross ledger is untouched
    assert book.pos("alice", "ETH").iso_raw == 0
    assert book.szi("alice", "ETH") == 0
    assert book.szi(LIQUIDATOR, "ETH") == sz("1")
    assert book.raw(LIQUIDATOR) == usd("-1800")  # -1,850 + 50


# ---- auto-deleveraging -----------------------------------------------------------------------------


def test_adl_ranking_and_previous_mark():
    book = Pair(mode="mark", loss_limit=usd("500"))
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "2800"),
        deposit("sam", "11000"),
        deposit("carol", "900"),
        deposit("zoe", "1000"),
        deposit("amy", "1000"),
        deposit("lucy", "10000"),
        deposit("nick", "1000"),
        deposit("olga", "1000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "3", "alice", "sam"),
        trade("ETH", "2000", "2", "lucy", "sam"),  # sam short 5 @ 2,000; lucy long 2 (same side as alice)
        prices(ETH="1800"),
        trade("ETH", "1800", "3", "alice", "carol"),  # carol short 3 @ 1,800
        prices(ETH="1600"),
        trade("ETH", "1600", "2", "alice", "zoe"),  # zoe short 2 @ 1,600
        trade("ETH", "1600", "2", "alice", "amy"),  # amy short 2 @ 1,600 (same as zoe)
        trade("ETH", "1600", "1", "olga", "nick"),  # olga and nick open and close: no position
        trade("ETH", "1600", "1", "nick", "olga"),
    )
    # alice long 10: raw = 2,800 - 6,000 - 5,400 - 6,400 = -15,000; at 1,600 AV = 1,000 >= MM 800
    # gap to 1,400 (previous mark 1,600): AV = -15,000 + 14,000 = -1,000; MM = 700 -> backstop,
    # and -equity 1,000 > loss_limit 500 -> ADL at the previous mark 1,600.
    # Scores at mark 1,400 = (entry / mark) * ntl / AV for shorts:
    #   carol: raw 900 + 5,400 = 6,300, AV = 6,300 - 4,200 = 2,100: (18/14) * 4,200 / 2,100 = 18/7 ~ 2.571
    #   amy, zoe: raw 4,200, AV = 4,200 - 2,800 = 1,400: (16/14) * 2,800 / 1,400 = 16/7 ~ 2.286 (tie: amy < zoe)
    #   sam: raw 21,000, AV = 21,000 - 7,000 = 14,000: (20/14) * 7,000 / 14,000 = 5/7 ~ 0.714
    # (by profit ratio alone sam would be first; by leverage alone carol/amy/zoe would tie)
    seq, derived = book.at(prices(ETH="1400"))

    def adl(who: str, size: str) -> ev.Adl:
        return ev.Adl(account="alice", counterparty=who, coin="ETH", sz=sz(size), px=px("1600"), cause=seq, ts=0)

    assert derived == [
        triggered("alice", "-1000", "700", [("ETH", "10", "1400")], "backstop", cause=seq),
        adl("carol", "-3"),  # 10 -> 7
        adl("amy", "-2"),  # 7 -> 5
        adl("zoe", "-2"),  # 5 -> 3
        adl("sam", "-3"),  # 3 -> 0 (sam keeps 2 of 5)
    ]
    # alice sold 10 at 1,600: raw = -15,000 + 16,000 = 1,000 (>= 0: no bad debt, no fee)
    assert book.raw("alice") == usd("1000")
    assert book.szi("alice", "ETH") == 0
    # carol bought back 3 at 1,600: 6,300 - 4,800 = 1,500; amy, zoe: 4,200 - 3,200 = 1,000
    assert book.raw("carol") == usd("1500")
    assert book.raw("amy") == book.raw("zoe") == usd("1000")
    # sam bought 3 at 1,600: 21,000 - 4,800 = 16,200, still short 2
    assert book.raw("sam") == usd("16200")
    assert book.szi("sam", "ETH") == sz("-2")
    # no position, never pays; longs are not counterparties
    assert book.raw("nick") == book.raw("olga") == usd("1000")
    assert book.szi("lucy", "ETH") == sz("2") and book.raw("lucy") == usd("6000")  # 10,000 - 4,000
    assert book.szi(LIQUIDATOR, "ETH") == 0
    assert book.state.bad_debt == 0
    assert book.state.watch == {}


def test_adl_remainder_to_the_liquidator_and_bad_debt():
    book = Pair(mode="mark", loss_limit=usd("100"))
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("bob", "300"),
        deposit("lucy", "5000"),
        deposit("alice", "1000"),
        deposit("dora", "1000"),
        prices(ETH="1000"),
        trade("ETH", "1000", "2", "lucy", "bob"),
    )
    # bob short 2 @ 1,000: raw 2,300. Mark 1,200: AV = 2,300 - 2,400 = -100; MM = 120 -> backstop;
    # -equity 100 is not above loss_limit 100 -> the liquidator takes it over, absorbing -100
    seq, derived = book.at(prices(ETH="1200"))
    assert derived == [
        triggered("bob", "-100", "120", [("ETH", "-2", "1200")], "backstop", cause=seq),
        ev.Backstop(
            account="bob",
            scope="cross",
            positions=[ev.PositionView("ETH", sz("-2"), px("1200"))],
            margin=usd("-100"),
            cause=seq,
            ts=0,
        ),
    ]
    assert book.szi(LIQUIDATOR, "ETH") == sz("-2")
    assert book.raw(LIQUIDATOR) == usd("2300")  # sold 2 at 1,200 = 2,400, less the 100 absorbed
    book.ok(
        prices(ETH="1200.009"),  # lucy long 2 @ 1,000: fine
        trade("ETH", "1200", "2", "alice", "lucy"),  # lucy flat (raw 3,000 + 2,400 = 5,400); alice raw -1,400
        prices(ETH="900"),  # previous mark 1,200.009; alice AV = -1,400 + 1,800 = 400 >= MM 90
    )
    # a fill at 2,500 while the mark is 900 (a fact): alice long 3, raw = -1,400 - 2,500 = -3,900
    # AV = -3,900 + 2,700 = -1,200; MM = 135 -> backstop; 1,200 > 100 -> ADL at the previous mark
    # 1,200.009 rounded down (against the long) to 1,200.00.
    # Opposite positions: dora short 1 (from this trade); the liquidator's short 2 is not in the queue
    seq, derived = book.at(trade("ETH", "2500", "1", "alice", "dora"))
    assert derived == [
        triggered("alice", "-1200", "135", [("ETH", "3", "900")], "backstop", cause=seq),
        ev.Adl(account="alice", counterparty="dora", coin="ETH", sz=sz("-1"), px=px("1200"), cause=seq, ts=0),
        # the remaining 2 go to the liquidator at 1,200 (a backstop of what no one could take,
        # with no margin); alice raw = -3,900 + 3 * 1,200 = -300: ADL means the liquidator
        # declined, so all of it is bad debt
        ev.Backstop(
            account="alice",
            scope="cross",
            positions=[ev.PositionView("ETH", sz("2"), px("1200"))],
            margin=0,
            cause=seq,
            ts=0,
        ),
        ev.BadDebt(account="alice", scope="cross", amount=usd("300"), cause=seq, ts=0),
    ]
    assert book.raw("alice") == 0 and book.szi("alice", "ETH") == 0
    assert book.raw("dora") == usd("2300")  # 1,000 + 2,500 - 1,200
    assert book.szi("dora", "ETH") == 0
    assert book.szi(LIQUIDATOR, "ETH") == 0
    assert book.raw(LIQUIDATOR) == usd("-100")  # 2,300 - 2 * 1,200
    assert book.state.bad_debt == usd("300")
    # conservation by hand: deposits 300 + 5,000 + 1,000 + 1,000 = 7,300;
    # ledgers bob 0 + lucy 5,400 + alice 0 + dora 2,300 + liquidator -100 = 7,600; 7,600 - 300 = 7,300
    assert book.raw("lucy") == usd("5400") and book.raw("bob") == 0
    assert book.state.deposited == usd("7300")
    ledgers = sum(a.raw_usd + sum(p.iso_raw for p in a.positions.values()) for a in book.state.accounts.values())
    assert ledgers + book.state.fees + book.state.funding_pool - book.state.bad_debt == usd("7300")


def test_adl_counterparty_pushed_below_maintenance_is_liquidated_in_the_same_event():
    book = Pair(mode="mark", loss_limit=usd("500"))
    book.ok(
        market("ETH", 4, TEN_X),
        market("BTC", 5, TEN_X),
        deposit("alice", "1000"),
        deposit("carol", "4000"),
        deposit("mm", "1000000"),
        prices(ETH="1600", BTC="50000"),
        trade("BTC", "50000", "1", "carol", "mm"),  # carol raw -46,000; AV 4,000 >= MM 2,500
        trade("ETH", "1600", "10", "alice", "carol"),  # carol raw -30,000, MM 800 + 2,500 = 3,300
    )
    # alice raw 1,000 - 16,000 = -15,000. Crash ETH 1,400, BTC 47,600:
    #   alice AV = -15,000 + 14,000 = -1,000; MM 700 -> backstop; 1,000 > 500 -> ADL at 1,600
    #   carol AV = -30,000 - 14,000 + 47,600 = 3,600 >= MM 700 + 2,380 = 3,080: fine before the ADL
    # ADL: carol (the only short) buys 10 at 1,600: raw -46,000, AV = -46,000 + 47,600 = 1,600 <
    # MM 2,380; 4,800 >= 4,760 -> market, found in the next round of the same event
    seq, derived = book.at(prices(ETH="1400", BTC="47600"))
    assert derived == [
        triggered("alice", "-1000", "700", [("ETH", "10", "1400")], "backstop", cause=seq),
        ev.Adl(account="alice", counterparty="carol", coin="ETH", sz=sz("-10"), px=px("1600"), cause=seq, ts=0),
        triggered("carol", "1600", "2380", [("BTC", "1", "47600")], "market", cause=seq),
        fill("carol", "BTC", "-1", "47600", "21.42", cause=seq),  # 47,600 * 0.00045
    ]
    assert book.raw("alice") == usd("1000")  # -15,000 + 16,000: no bad debt
    assert book.raw("carol") == usd("1578.58")  # -46,000 + 47,600 - 21.42
    assert book.state.watch == {}


def test_adl_of_an_isolated_position_books_its_loss_as_bad_debt():
    book = Pair(mode="mark", loss_limit=usd("100"))
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "1000"),
        deposit("dora", "1000"),
        prices(ETH="1200"),
        prices(ETH="900"),  # previous mark 1,200
        set_leverage("alice", "ETH", 10, cross=False),
    )
    # a fill at 2,500 while the mark is 900: isolated 10x, margin 2,500 / 10 = 250 from cross
    # (cross 750), iso ledger 250 - 2,500 = -2,250; marginUsed = -2,250 + 900 = -1,350; MM 45
    # -> backstop; 1,350 > 100 -> ADL at the previous mark 1,200 against dora (short 1)
    seq, derived = book.at(trade("ETH", "2500", "1", "alice", "dora"))
    assert derived == [
        triggered("alice", "-1350", "45", [("ETH", "1", "900")], "backstop", cause=seq, scope="ETH"),
        ev.Adl(account="alice", counterparty="dora", coin="ETH", sz=sz("-1"), px=px("1200"), cause=seq, ts=0),
        # iso ledger -2,250 + 1,200 = -1,050: bad debt of the ETH scope, not taken from cross
        ev.BadDebt(account="alice", scope="ETH", amount=usd("1050"), cause=seq, ts=0),
    ]
    assert book.raw("alice") == usd("750")
    assert book.pos("alice", "ETH").iso_raw == 0
    assert book.raw("dora") == usd("2300")  # 1,000 + 2,500 - 1,200
    assert book.state.bad_debt == usd("1050")  # conservation: 750 + 2,300 - 1,050 = 2,000 deposited


# ---- impact mode ------------------------------------------------------------------------------------


def test_impact_moves_the_mark_and_cascades_in_the_same_event():
    # impact 1% per 10,000 USDC of notional: move (ppm) = 10,000 * ntl_micro // 10,000,000,000
    book = Pair(mode="impact", impact_ppm=10_000, depth=usd("10000"))
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "1500"),
        deposit("bob", "170"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "10", "alice", "mm"),
        trade("ETH", "2000", "1", "bob", "mm"),
    )
    # alice raw -18,500; bob raw -1,830. Mark 1,945:
    #   alice AV = 950, MM = 972.5 -> below; 2,850 >= 1,945 -> market
    #   bob AV = 115 >= MM 97.25 -> fine
    seq, derived = book.at(prices(ETH="1945"))
    assert derived == [
        triggered("alice", "950", "972.5", [("ETH", "10", "1945")], "market", cause=seq),
        # ntl 19,450 -> move 19,450 ppm; 1,945 * (1 - 0.01945) = 1,907.16975 -> down to 1,907.16
        # fee = 19,071.6 * 0.00045 = 8.58222
        fill("alice", "ETH", "-10", "1907.16", "8.58222", cause=seq),
        # the mark is now 1,907.16: bob AV = -1,830 + 1,907.16 = 77.16 < MM ceil(1,907,160,000 / 20)
        # = 95,358,000 micro; 231.48 >= 190.716 -> market, same cause
        triggered("bob", "77.16", "95.358", [("ETH", "1", "1907.16")], "market", cause=seq),
        # ntl 1,907.16 -> move floor(1,907.16) = 1,907 ppm;
        # 190,716,000,000 * 998,093 // 1e6 = 190,352,304,588 (1e-8) -> down to 1,903.52
        # fee = 1,903.52 * 0.00045 = 0.856584
        fill("bob", "ETH", "-1", "1903.52", "0.856584", cause=seq),
    ]
    market_eth = book.state.markets["ETH"]
    assert (market_eth.mark, market_eth.prev_mark) == (px("1903.52"), px("1907.16"))
    # alice: -18,500 + 19,071.6 - 8.58222 = 563.01778; bob: -1,830 + 1,903.52 - 0.856584 = 72.663416
    assert book.raw("alice") == usd("563.01778")
    assert book.raw("bob") == usd("72.663416")
    assert book.szi(LIQUIDATOR, "ETH") == sz("11")
    assert book.raw(LIQUIDATOR) == usd("-20975.12")  # -19,071.6 - 1,903.52
    assert book.state.fees == usd("8.582220") + usd("0.856584")
    assert book.state.watch == {}


def test_each_market_moves_by_its_own_depth():
    # The same sale in two markets: ETH takes the global depth (1% per 10,000 USDC), LTC its own
    # (1% per 5,000 USDC). Both tick 0.01 (sz_decimals 4); alice holds 10 ETH, carol 10 LTC.
    book = Pair(mode="impact", impact_ppm=10_000, depth=usd("10000"), market_depth={"LTC": usd("5000")})
    book.ok(
        market("ETH", 4, TEN_X),
        market("LTC", 4, TEN_X),
        deposit("alice", "1500"),
        deposit("carol", "1500"),
        deposit("mm", "1000000"),
        prices(ETH="2000", LTC="2000"),
        trade("ETH", "2000", "10", "alice", "mm"),
        trade("LTC", "2000", "10", "carol", "mm"),
    )
    # At 1,945 both are below (AV 950 < MM 972.5, above 2/3 of it: the market phase), and each
    # sells 10, notional 19,450.
    seq, derived = book.at(prices(ETH="1945", LTC="1945"))
    assert derived == [
        triggered("alice", "950", "972.5", [("ETH", "10", "1945")], "market", cause=seq),
        # ETH: move = 10,000 * 19,450 / 10,000 = 19,450 ppm; 1,945 * 0.98055 = 1,907.16975 -> 1,907.16
        # fee = 19,071.6 * 0.00045 = 8.58222
        fill("alice", "ETH", "-10", "1907.16", "8.58222", cause=seq),
        triggered("carol", "950", "972.5", [("LTC", "10", "1945")], "market", cause=seq),
        # LTC: move = 10,000 * 19,450 / 5,000 = 38,900 ppm; 1,945 * 0.9611 = 1,869.3395 -> 1,869.33
        # fee = 18,693.3 * 0.00045 = 8.411985
        fill("carol", "LTC", "-10", "1869.33", "8.411985", cause=seq),
    ]
    assert (book.state.markets["ETH"].mark, book.state.markets["LTC"].mark) == (px("1907.16"), px("1869.33"))
    # alice: -20,000 + 1,500 + 19,071.6 - 8.58222; carol: -18,500 + 18,693.3 - 8.411985
    assert (book.raw("alice"), book.raw("carol")) == (usd("563.01778"), usd("184.888015"))


def test_impact_is_capped_at_half_the_price():
    book = Pair(mode="impact", impact_ppm=10_000, depth=usd("100"))
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "1500"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "10", "alice", "mm"),
    )
    # mark 1,945: as above, market phase; move = 10,000 * 19,450 / 100 = 1,945,000 ppm -> capped
    # at 500,000: 1,945 * 0.5 = 972.50
    seq, derived = book.at(prices(ETH="1945"))
    assert derived == [
        triggered("alice", "950", "972.5", [("ETH", "10", "1945")], "market", cause=seq),
        fill("alice", "ETH", "-10", "972.5", "4.37625", cause=seq),  # 9,725 * 0.00045
    ]
    # raw = -18,500 + 9,725 - 4.37625 = -8,779.37625, flat: the liquidator (no limit) covers it all
    assert book.raw("alice") == 0
    assert book.raw(LIQUIDATOR) == usd("-18504.37625")  # -9,725 - 8,779.37625
    assert book.state.bad_debt == 0
    assert (book.state.markets["ETH"].mark, book.state.markets["ETH"].prev_mark) == (px("972.5"), px("1945"))


def test_impact_never_moves_the_mark_past_the_price_bound():
    # The price bound is 100,000,000 USDC (MAX_PX). alice sells 0.001 ETH at 90,000,000 with
    # 13,000 USDC; at a mark of 99,000,000: AV = 13,000 + 90,000 - 99,000 = 4,000 against
    # MM = 99,000 / 20 = 4,950, above 2/3 of it (3,300): market phase, the whole position
    # (notional 99,000 <= 100,000). move = 10,000 * 99,000 / 100 ppm -> capped at 500,000:
    # 99,000,000 * 1.5 = 148,500,000, which repeated liquidations would compound past the
    # 64-bit encoding; the fill and the new mark stop at the bound, 100,000,000.
    book = Pair(mode="impact", impact_ppm=10_000, depth=usd("100"))
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "13000"),
        deposit("mm", "1000000"),
        prices(ETH="90000000"),
        trade("ETH", "90000000", "0.001", "mm", "alice"),
    )
    seq, derived = book.at(prices(ETH="99000000"))
    assert derived == [
        triggered("alice", "4000", "4950", [("ETH", "-0.001", "99000000")], "market", cause=seq),
        fill("alice", "ETH", "0.001", "100000000", "45", cause=seq),  # 100,000 * 0.00045
    ]
    # raw = 13,000 + 90,000 - 100,000 - 45 = 2,955, flat
    assert book.raw("alice") == usd("2955")
    assert (book.state.markets["ETH"].mark, book.state.markets["ETH"].prev_mark) == (px("100000000"), px("99000000"))


# ---- external mode -----------------------------------------------------------------------------------


def test_external_orders_and_marked_fills():
    book = Pair(mode="external")
    _hundred_eth(book)
    # as in the partial test: at 1,900 AV 7,125 < MM 9,500, market; ntl 190,000 > 100k -> 20 ETH
    seq, derived = book.at(stamped(prices(ETH="1900"), 1_000))
    assert derived == [
        triggered("alice", "7125", "9500", [("ETH", "100", "1900")], "market", cause=seq, ts=1_000),
        ev.LiquidationOrder(
            account="alice", coin="ETH", is_buy=False, sz=sz("20"), mark=px("1900"), cause=seq, ts=1_000
        ),
    ]
    assert book.state.liq_orders == {"alice": {"ETH": sz("20")}}
    assert book.account("alice").cooldown_until == 31_000  # a partial order starts the cooldown
    assert book.szi("alice", "ETH") == sz("100")  # nothing filled yet
    # still below, but the position is on order: no new order (and no new trigger event)
    book.ok(stamped(prices(ETH="1900"), 2_000))
    assert book.state.watch == {"alice": 5}
    # half the order fills: 10 at 1,900, fee 19,000 * 0.00045 = 8.55 (the trade's own fee)
    # raw = -182,875 + 19,000 - 8.55 = -163,883.55; AV = 7,116.45 < MM 8,550, still on order (10 left)
    book.ok(trade("ETH", "1900", "10", "mm", "alice", seller_fee="8.55", liquidation=liq("alice"), ts=2_500))
    assert book.state.liq_orders == {"alice": {"ETH": sz("10")}}
    # the rest fills: raw -144,892.1; AV = 7,107.9 < MM 7,600; inside the cooldown -> all 80
    seq, derived = book.at(
        trade("ETH", "1900", "10", "mm", "alice", seller_fee="8.55", liquidation=liq("alice"), ts=3_000)
    )
    assert derived == [
        triggered("alice", "7107.9", "7600", [("ETH", "80", "1900")], "market", cause=seq, ts=3_000),
        ev.LiquidationOrder(
            account="alice", coin="ETH", is_buy=False, sz=sz("80"), mark=px("1900"), cause=seq, ts=3_000
        ),
    ]
    assert book.state.liq_orders == {"alice": {"ETH": sz("80")}}
    assert book.account("alice").cooldown_until == 31_000
    # fill of 80 at 1,900, fee 152,000 * 0.00045 = 68.4 -> raw -144,892.1 + 152,000 - 68.4 = 7,039.5
    book.ok(trade("ETH", "1900", "80", "mm", "alice", seller_fee="68.4", liquidation=liq("alice"), ts=4_000))
    assert book.raw("alice") == usd("7039.5")
    assert book.szi("alice", "ETH") == 0
    assert book.state.liq_orders == {}
    assert book.state.watch == {}
    assert LIQUIDATOR not in book.state.accounts  # external fills go to the market, not @liquidator
    assert book.state.fees == usd("85.5")  # 8.55 + 8.55 + 68.4


def test_external_short_order_is_a_buy():
    book = Pair(mode="external")
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("bob", "150"),
        deposit("mm", "1000000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "1", "mm", "bob"),
    )
    # bob short 1, raw 2,150; mark 2,060.01: AV 89.99 < MM 103.0005, market -> buy order for 1
    seq, derived = book.at(prices(ETH="2060.01"))
    assert derived == [
        triggered("bob", "89.99", "103.0005", [("ETH", "-1", "2060.01")], "market", cause=seq),
        ev.LiquidationOrder(account="bob", coin="ETH", is_buy=True, sz=sz("1"), mark=px("2060.01"), cause=seq, ts=0),
    ]
    assert book.account("bob").cooldown_until == 0  # whole position: no cooldown
    # filled at 2,061 with fee 2,061 * 0.00045 = 0.92745: raw = 2,150 - 2,061 - 0.92745 = 88.07255
    book.ok(trade("ETH", "2061", "1", "bob", "mm", buyer_fee="0.92745", liquidation=liq("bob")))
    assert book.raw("bob") == usd("88.07255")
    assert book.state.liq_orders == {} and book.state.watch == {}


def test_external_order_of_a_position_taken_over_does_not_block_a_new_one():
    book = Pair(mode="external")
    _hundred_eth(book)
    seq, derived = book.at(stamped(prices(ETH="1900"), 1_000))  # order for 20 ETH (see above)
    assert book.state.liq_orders == {"alice": {"ETH": sz("20")}}
    # gap to 1,870 before any fill: AV = -182,875 + 187,000 = 4,125; MM = 9,350;
    # 12,375 < 18,700 -> backstop (no order in that phase): 100 ETH at 1,870, margin 4,125
    seq, derived = book.at(stamped(prices(ETH="1870"), 2_000))
    assert derived == [
        triggered("alice", "4125", "9350", [("ETH", "100", "1870")], "backstop", cause=seq, ts=2_000),
        ev.Backstop(
            account="alice",
            scope="cross",
            positions=[ev.PositionView("ETH", sz("100"), px("1870"))],
            margin=usd("4125"),
            cause=seq,
            ts=2_000,
        ),
    ]
    assert book.raw(LIQUIDATOR) == usd("-182875")  # -187,000 + 4,125
    # alice opens a new position: raw 1,000 - 1,870 = -870
    book.ok(deposit("alice", "1000", ts=3_000), trade("ETH", "1870", "1", "alice", "mm", ts=3_000))
    # mark 910: AV = 40 < MM 45.5; 120 >= 91 -> market: this position is not on order -> an order
    seq, derived = book.at(stamped(prices(ETH="910"), 4_000))
    assert derived == [
        triggered("alice", "40", "45.5", [("ETH", "1", "910")], "market", cause=seq, ts=4_000),
        ev.LiquidationOrder(
            account="alice", coin="ETH", is_buy=False, sz=sz("1"), mark=px("910"), cause=seq, ts=4_000
        ),
    ]
    assert book.state.liq_orders == {"alice": {"ETH": sz("1")}}
