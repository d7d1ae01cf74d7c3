"""The auto-deleveraging policies (docs/adl.md) through the engine: `pro-rata` on the issue's hand
example (a deficit of 40 against winners with capacities 30 and 50 takes 15 and 25),
`deficit-pro-rata` on a bankrupt account that still had equity at the previous mark (cross and
isolated), the capacity cap that keeps a winner above maintenance, a previous mark that takes
nothing from winners, and the setting itself (its range, and an encoding that does not change
for the default).

Every scenario runs through `Pair` (trigger index and full scan in lockstep, conservation and
zero net size after every event, equal digests). ETH: sz_decimals 4 (lot 0.0001, tick 0.01),
one tier at 10x: MM = 5% of notional. Expected values are worked out by hand next to each
assertion.
"""

from __future__ import annotations

import random
from fractions import Fraction

import msgspec

from clearinghouse import margin
from clearinghouse.adl_policies import Opposite, rank
from clearinghouse.digest import encode_state
from clearinghouse.liquidation import settings_error
from clearinghouse.state import Account, LiquidationConfig, MarketState, Position, State
from events import schema as ev
from tests.support.pair import LIQUIDATOR, TEN_X, Pair, px, sz, usd
from tests.support.rulebook import deposit, market, prices, set_leverage, trade, withdraw


def _winners(book: Pair, bob_cash: str) -> None:
    """amy short 30 and ben short 50 at 100 against carol; bob buys 40 of carol's long at 100."""
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("amy", "1000"),
        deposit("ben", "1000"),
        deposit("carol", "1000"),
        prices(ETH="100"),
        trade("ETH", "100", "30", "carol", "amy"),
        trade("ETH", "100", "50", "carol", "ben"),
    )
    book.ok(deposit("bob", bob_cash or "1"))
    if not bob_cash:
        book.ok(withdraw("bob", "1"))  # bob exists with no cash


def _adl(seq: int, who: str, size: str, price: str = "100") -> ev.Adl:
    return ev.Adl(account="bob", counterparty=who, coin="ETH", sz=sz(size), px=px(price), cause=seq, ts=0)


def _triggered(seq: int, equity: str, maintenance: str, mark: str) -> ev.LiquidationTriggered:
    return ev.LiquidationTriggered(
        account="bob",
        scope="cross",
        cause=seq,
        equity=usd(equity),
        maintenance=usd(maintenance),
        positions=[ev.PositionView("ETH", sz("40"), px(mark))],
        phase="backstop",
        ts=0,
    )


def test_pro_rata_takes_15_and_25_of_capacities_30_and_50_for_a_deficit_of_40():
    book = Pair(mode="mark", loss_limit=0, adl="pro-rata")
    _winners(book, "")
    book.ok(prices(ETH="99"))  # previous mark 100
    # bob (no cash) buys 40 of carol's 80 at 100 while the mark is 99 (a fact, not margin-checked):
    # raw -4,000, AV = -4,000 + 3,960 = -40: the deficit is 40, MM = 198 -> backstop; 40 > limit 0
    # -> ADL at the previous mark 100: closing all 40 there gives bob 40 * (100 - 99) = 40.
    # Capacities at 99 (positive PnL, at most the margin above maintenance, at most the whole
    # position's gap 1 per coin):
    #   amy short 30 @ 100: PnL 30; raw 4,000, AV 4,000 - 2,970 = 1,030, MM 148.5 -> 30 (30 ETH)
    #   ben short 50 @ 100: PnL 50; raw 6,000, AV 6,000 - 4,950 = 1,050, MM 247.5 -> 50 (50 ETH)
    # 40 ETH shared 30:50 -> amy 15, ben 25 (exact, no remainder lot)
    seq, derived = book.at(trade("ETH", "100", "40", "bob", "carol"))
    assert derived == [_triggered(seq, "-40", "198", "99"), _adl(seq, "amy", "-15"), _adl(seq, "ben", "-25")]
    # bob sold 40 at 100: raw -4,000 + 4,000 = 0, flat, no bad debt
    assert book.raw("bob") == 0 and book.szi("bob", "ETH") == 0 and book.state.bad_debt == 0
    # amy bought back 15 at 100: raw 4,000 - 1,500 = 2,500, short 15: AV = 2,500 - 1,485 = 1,015,
    # 15 less than the 1,030 she had (15 of her capacity 30); ben: 6,000 - 2,500 = 3,500, short 25,
    # AV 3,500 - 2,475 = 1,025, 25 less than 1,050 (25 of 50): both gave up half their capacity
    assert book.raw("amy") == usd("2500") and book.szi("amy", "ETH") == sz("-15")
    assert book.raw("ben") == usd("3500") and book.szi("ben", "ETH") == sz("-25")
    assert book.szi(LIQUIDATOR, "ETH") == 0


def test_hl_queue_on_the_same_book_takes_the_top_ranked_winner_first():
    """The default policy on the pro-rata example: ben ranks first (100/99 x 4,950 / 1,050 = 4.76
    against amy's 100/99 x 2,970 / 1,030 = 2.91), so he gives up all 40."""
    book = Pair(mode="mark", loss_limit=0)
    _winners(book, "")
    book.ok(prices(ETH="99"))
    seq, derived = book.at(trade("ETH", "100", "40", "bob", "carol"))
    assert derived == [_triggered(seq, "-40", "198", "99"), _adl(seq, "ben", "-40")]
    assert book.szi("amy", "ETH") == sz("-30") and book.szi("ben", "ETH") == sz("-10")


def test_deficit_pro_rata_covers_the_deficit_and_leaves_the_rest_to_the_liquidator_at_the_mark():
    book = Pair(mode="mark", loss_limit=0, adl="deficit-pro-rata")
    _winners(book, "240")
    book.ok(trade("ETH", "100", "40", "bob", "carol"))  # bob long 40 @ 100: AV 240 >= MM 200
    # mark 93: bob raw 240 - 4,000 = -3,760, AV = -3,760 + 3,720 = -40, MM 186 -> backstop, ADL.
    # hl-queue and pro-rata would close all 40 at the previous mark 100: 40 * 7 = 280 from the
    # winners for a deficit of 40. deficit-pro-rata closes at 100 only the lots whose gain over
    # the mark (7 per ETH) covers 40: ceil(40 / 7 / 0.0001) = ceil(57,142.86) = 57,143 lots.
    # Capacities at 93 (gap 7 per ETH): amy PnL 210, room 4,000 - 2,790 - 139.5 = 1,070.5, whole
    # position 30 * 7 = 210 -> 300,000 lots; ben PnL 350 -> 500,000 lots. Shares: amy
    # 57,143 * 3/8 = 21,428.6 -> 21,428, ben * 5/8 = 35,714.4 -> 35,714; one lot left -> amy
    # (first by id): amy 2.1429, ben 3.5714. The liquidator takes 40 - 5.7143 = 34.2857 at 93.
    seq, derived = book.at(prices(ETH="93"))
    assert derived == [
        _triggered(seq, "-40", "186", "93"),
        _adl(seq, "amy", "-2.1429"),
        _adl(seq, "ben", "-3.5714"),
        ev.Backstop(
            account="bob",
            scope="cross",
            positions=[ev.PositionView("ETH", sz("34.2857"), px("93"))],
            margin=0,
            cause=seq,
            ts=0,
        ),
    ]
    # bob: -3,760 + 5.7143 * 100 + 34.2857 * 93 = -3,760 + 571.43 + 3,188.5701 = 0.0001 (covered,
    # one micro-USDC over by the lot rounding): no bad debt
    assert book.raw("bob") == usd("0.0001") and book.state.bad_debt == 0
    # amy: 4,000 - 214.29 = 3,785.71, short 27.8571: AV 3,785.71 - 2,590.7103 = 1,194.9997, which
    # is 1,210 - 15.0003 (2.1429 * 7); ben: 6,000 - 357.14 = 5,642.86, AV 5,642.86 - 4,318.6598 =
    # 1,324.2002 = 1,349.2 - 24.9998: 40.0001 in all (the deficit and the lot rounding)
    assert book.raw("amy") == usd("3785.71") and book.szi("amy", "ETH") == sz("-27.8571")
    assert book.raw("ben") == usd("5642.86") and book.szi("ben", "ETH") == sz("-46.4286")
    assert book.szi(LIQUIDATOR, "ETH") == sz("34.2857") and book.raw(LIQUIDATOR) == usd("-3188.5701")


def test_pro_rata_never_takes_a_winner_below_maintenance():
    """A winner whose margin above maintenance is smaller than its PnL gives up at most that
    margin; what the capacities do not reach goes to the liquidator at the ADL price."""
    book = Pair(mode="mark", loss_limit=0, adl="pro-rata")
    book.ok(
        market("ETH", 4, TEN_X),
        market("SOL", 2, TEN_X),
        deposit("dan", "60"),
        deposit("carol", "1000"),
        deposit("bob", "1"),
        withdraw("bob", "1"),
        prices(ETH="100", SOL="10"),
        trade("ETH", "100", "10", "carol", "dan"),  # dan short 10 ETH @ 100
        trade("SOL", "10", "10", "dan", "carol"),  # and long 10 SOL @ 10: AV 60, MM 50 + 5 = 55
        # ETH 99, SOL 8.5: dan AV = 60 + 10 - 15 = 55, MM = 49.5 + 4.25 = 53.75: above, by 1.25
        prices(ETH="99", SOL="8.5"),
    )
    # bob (no cash) buys 5 of carol's ETH at 100: raw -500, AV -500 + 495 = -5, MM 24.75 -> ADL at
    # 100. dan's PnL is 10, but his margin above maintenance is 1.25: he closes 1.25 / (100 - 99)
    # = 1.25 ETH; the liquidator takes the other 3.75 at the ADL price 100
    seq, derived = book.at(trade("ETH", "100", "5", "bob", "carol"))
    assert derived == [
        ev.LiquidationTriggered(
            account="bob",
            scope="cross",
            cause=seq,
            equity=usd("-5"),
            maintenance=usd("24.75"),
            positions=[ev.PositionView("ETH", sz("5"), px("99"))],
            phase="backstop",
            ts=0,
        ),
        ev.Adl(account="bob", counterparty="dan", coin="ETH", sz=sz("-1.25"), px=px("100"), cause=seq, ts=0),
        ev.Backstop(
            account="bob",
            scope="cross",
            positions=[ev.PositionView("ETH", sz("3.75"), px("100"))],
            margin=0,
            cause=seq,
            ts=0,
        ),
    ]
    # dan: 60 + 1,000 - 100 - 125 = 835, short 8.75 ETH: AV = 835 - 866.25 + 85 = 53.75, his old
    # maintenance; his new one is 43.3125 + 4.25 = 47.5625, so he stays above it (no liquidation)
    assert book.raw("dan") == usd("835") and book.szi("dan", "ETH") == sz("-8.75")
    assert book.raw("bob") == 0 and book.state.bad_debt == 0
    assert book.szi(LIQUIDATOR, "ETH") == sz("3.75") and book.raw(LIQUIDATOR) == usd("-375")


def test_adl_setting_range_and_encoding():
    assert settings_error(LiquidationConfig(adl="pro-rata")) is None
    assert settings_error(LiquidationConfig(adl="deficit-pro-rata")) is None
    assert settings_error(LiquidationConfig(adl="fifo")) == (
        "ADL policy 'fifo' is not one of hl-queue, pro-rata, deficit-pro-rata"
    )
    # the default, named or not, is one config with one encoding: no `adl` key at all
    assert LiquidationConfig(adl="hl-queue") == LiquidationConfig()
    assert LiquidationConfig().adl is msgspec.UNSET
    assert b"adl" not in encode_state(State())
    assert encode_state(State(liquidation=LiquidationConfig(adl="hl-queue"))) == encode_state(State())
    assert b"adl" in encode_state(State(liquidation=LiquidationConfig(adl="pro-rata")))
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(LiquidationConfig(adl="pro-rata")), type=LiquidationConfig)
    assert decoded.adl_policy == "pro-rata"


def test_deficit_pro_rata_on_an_isolated_position():
    """alice's isolated 10x long 10 at 100 (margin 100 from her cross 1,000; ledger 100 - 1,000 =
    -900); the mark jumps from 100 to 89: margin used -900 + 890 = -10 < 2/3 of MM 44.5 -> backstop,
    and 10 > the limit 0 -> ADL. The rest price is 89, the gain 100 - 89 = 11 per ETH: ceil(10 / 11
    / 0.0001) = 9,091 lots. amy (short 10 at 100: PnL 110, room 2,000 - 890 - 44.5 = 1,065.5, whole
    position 10 x 11 = 110) is the only winner: she closes 0.9091 at 100 (haircut 10.0001), the
    liquidator takes 9.0909 at 89."""
    book = Pair(mode="mark", loss_limit=0, adl="deficit-pro-rata")
    book.ok(
        market("ETH", 4, TEN_X),
        deposit("alice", "1000"),
        deposit("amy", "1000"),
        prices(ETH="100"),
        set_leverage("alice", "ETH", 10, cross=False),
        trade("ETH", "100", "10", "alice", "amy"),
    )
    seq, derived = book.at(prices(ETH="89"))
    assert derived == [
        ev.LiquidationTriggered(
            account="alice",
            scope="ETH",
            cause=seq,
            equity=usd("-10"),
            maintenance=usd("44.5"),
            positions=[ev.PositionView("ETH", sz("10"), px("89"))],
            phase="backstop",
            ts=0,
        ),
        ev.Adl(account="alice", counterparty="amy", coin="ETH", sz=sz("-0.9091"), px=px("100"), cause=seq, ts=0),
        ev.Backstop(
            account="alice",
            scope="ETH",
            positions=[ev.PositionView("ETH", sz("9.0909"), px("89"))],
            margin=0,
            cause=seq,
            ts=0,
        ),
    ]
    # the ledger: -900 + 90.91 + 809.0901 = 0.0001, returned to cross: 900.0001; no bad debt
    assert book.raw("alice") == usd("900.0001") and book.pos("alice", "ETH").iso_raw == 0
    assert book.state.bad_debt == 0
    assert book.raw("amy") == usd("1909.09") and book.szi("amy", "ETH") == sz("-9.0909")
    assert book.szi(LIQUIDATOR, "ETH") == sz("9.0909") and book.raw(LIQUIDATOR) == usd("-809.0901")


def test_pro_rata_deleverages_no_one_when_the_adl_price_takes_nothing_from_winners():
    """The mark rose from 100 to 101: closing a bankrupt long at the previous mark 100 would give a
    short winner a gain, not a haircut, so no one is deleveraged; the liquidator takes the
    position at 100, and the loss it leaves is bad debt."""
    book = Pair(mode="mark", loss_limit=0, adl="pro-rata")
    _winners(book, "")
    book.ok(prices(ETH="101"))
    # bob buys 1 at 200 (a fact): raw -200, AV -200 + 101 = -99, MM 5.05 -> backstop, ADL
    seq, derived = book.at(trade("ETH", "200", "1", "bob", "carol"))
    assert derived == [
        ev.LiquidationTriggered(
            account="bob",
            scope="cross",
            cause=seq,
            equity=usd("-99"),
            maintenance=usd("5.05"),
            positions=[ev.PositionView("ETH", sz("1"), px("101"))],
            phase="backstop",
            ts=0,
        ),
        ev.Backstop(
            account="bob",
            scope="cross",
            positions=[ev.PositionView("ETH", sz("1"), px("100"))],
            margin=0,
            cause=seq,
            ts=0,
        ),
        ev.BadDebt(account="bob", scope="cross", amount=usd("100"), cause=seq, ts=0),  # -200 + 100
    ]
    assert book.szi("amy", "ETH") == sz("-30") and book.szi("ben", "ETH") == sz("-50")


def _fraction_rank(state: State, opposites: list[Opposite], market: MarketState) -> list[str]:
    """The queue's order as docs/adl.md states it, with exact fractions: the twin of `rank`."""
    keyed = []
    for opp in opposites:
        opos = opp.pos
        value = (
            margin.cross_figures(opp.account, state.markets).account_value
            if opos.cross
            else margin.iso_margin_used(opos, market)
        )
        if value <= 0 or opos.entry_px <= 0:
            keyed.append((1, Fraction(0), opp.name))
            continue
        ntl = margin.notional(opos.szi, market.mark)
        if opos.szi > 0:
            score = Fraction(market.mark * ntl, opos.entry_px * value)
        else:
            score = Fraction(opos.entry_px * ntl, market.mark * value) if ntl else Fraction(0)
        keyed.append((0, -score, opp.name))
    return [name for *_, name in sorted(keyed)]


def test_the_queue_orders_as_the_exact_fractions_do():
    """`rank` sorts by integers instead of fractions: on seeded books with many equal scores
    (accounts alike but for their names), scores a unit apart at full-size figures, isolated
    positions and accounts with no equity, it gives the fractions' order."""
    draw = random.Random(27)
    for _ in range(40):
        book = Pair(mode="mark")
        state = book.fast.state
        book.ok(market("ETH", 4, TEN_X), prices(ETH=str(draw.choice([99, 100, 1234.5, 65000]))))
        eth = state.markets["ETH"]
        opposites = []
        for i in range(60):
            raw = draw.choice([-(10**6), 0, 10**9, 10**9 + 1, draw.randrange(1, 10**16)])
            entry = draw.choice([eth.mark, eth.mark + 1, draw.randrange(1, 10**16)])
            szi = draw.choice([1, -1]) * draw.choice([10**4, 10**12, draw.randrange(1, 10**18)])
            cross = draw.random() < 0.8
            pos = Position(10, cross, szi=szi, entry_px=entry, iso_raw=0 if cross else raw)
            account = Account(raw_usd=raw if cross else 0, positions={"ETH": pos})
            opposites.append(Opposite(f"a{i:02d}", account, pos))
        state.accounts.update({o.name: o.account for o in opposites})
        assert [o.name for o in rank(state, opposites, eth)] == _fraction_rank(state, opposites, eth)
