"""A risk-model account's fills absorbed in its trigger bands (docs/risk-margin.md, "Trigger
bands"): its buffer `equity - MM` as the sum of the terms no price moves and one buffer per
part of the book (`risk.bands.part_figures`), each part re-referenced alone after a fill
(`risk.bands.Sizing`), against the exact figures and against the full-scan twin, which checks
the account exactly on every fill; and one fill worked out by hand."""

from __future__ import annotations

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.models.risk import RISK, rules_of
from clearinghouse.pm_triggers import BOTH
from clearinghouse.risk.bands import cash_of, part_figures
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.units import sz, usd
from replay.backtest.config import Plan
from replay.backtest.stream import Rewriter
from replay.workload import GeneratorConfig, generate
from tests.core.test_risk_mode import _book
from tests.support.rulebook import prices, trade


def _risk_stream(seed: int, crash: bool = False) -> list[ev.InputEvent]:
    """The generator's PM population with its portfolio accounts in the risk model, as
    `bench/replay.py` replays it (the backtest configuration `{"model": "risk", "accounts":
    "portfolio"}`)."""
    config = GeneratorConfig(accounts=300, markets=6, events=3_000, seed=seed, pm_share=0.3, crash=crash)
    plan = Plan("risk", LiquidationConfig(), 0, model="risk", accounts="portfolio")
    return Rewriter(plan).block(list(generate(config)))


def test_the_parts_and_the_cash_sum_to_the_buffer() -> None:
    """After every 25th event, for every risk account whose terms `cash_of` takes: the cash
    plus every part's buffer is exactly `equity - MM` of the model's own figures (and the same
    of `equity - IM`), and a part read alone is the part read with the others."""
    engine = Engine(State(liquidation=LiquidationConfig()))
    compared = 0
    for i, event in enumerate(_risk_stream(11)):
        engine.apply(event)
        if i % 25:
            continue
        state = engine.state
        rules = rules_of(state)
        for name, spot in state.spot.items():
            if spot.mode != "risk":
                continue
            account = state.accounts[name]
            cashes = cash_of(state, account, spot, rules)
            if cashes is None:
                continue
            parts = part_figures(state, account, spot, rules)
            f = RISK.totals(state, account, spot)
            assert cashes[0] + sum(p.worth - p.mm for p in parts.values()) == f.equity - f.maintenance
            assert cashes[1] + sum(p.worth - p.im for p in parts.values()) == f.equity - f.initial
            for part, figures in parts.items():
                assert part_figures(state, account, spot, rules, part) == {part: figures}
            compared += 1
    assert compared > 1_000


def _twins(events: list[ev.InputEvent]) -> tuple[int, int]:
    """Feeds both engines; asserts the same derived events after every event and the same
    digest at the end. Returns how many risk fills the indexed engine's bands absorbed, of
    how many they were offered."""
    fast = Engine(State(liquidation=LiquidationConfig()))
    full = Engine(State(liquidation=LiquidationConfig()), full_scan=True)
    bands = fast.pm_bands
    assert bands is not None
    offered: list[bool] = []
    absorb = bands._risk_filled

    def counted(name: str, state: State, coin: str, perp: bool) -> bool:
        offered.append(absorb(name, state, coin, perp))
        return offered[-1]

    bands._risk_filled = counted  # type: ignore[method-assign]
    for event in events:
        assert fast.apply(event) == full.apply(event), event
    assert state_digest(fast.state) == state_digest(full.state)
    return sum(offered), len(offered)


def test_fills_absorbed_in_the_bands_decide_as_the_full_scan() -> None:
    absorbed, offered = _twins(_risk_stream(12))
    assert offered > 500 and absorbed > offered * 3 // 4


def test_fills_absorbed_in_a_crash_decide_as_the_full_scan() -> None:
    absorbed, offered = _twins(_risk_stream(13, crash=True))
    assert offered > 500 and absorbed > offered // 2


def test_a_second_fill_is_absorbed_by_hand() -> None:
    """risk-model.md's parameters (BTC moves -15%, 0, +15%, MM factor 0.5, no perp charge,
    no concentration). `a` deposits 20,000 and buys 1 BTC at 100,000: ledger -80,000, the BTC
    part's buffer 100,000 - 0.5 * 0.15 * 100,000 = 92,500, so `equity - MM` = 12,500. Its one
    coin books it all: a share of 12,500 less 16 micro-USDC and the 16 kept for rounding;
    slack 0.

    Then `a` buys 0.1 BTC more at 100,000 (no fee): the ledger falls by 10,000 and the part is
    worth 110,000 less MM 8,250, 101,750: what is available is 0 + 12,500 - 10,000 + 9,250 =
    11,750 (= 20,000 - 8,250, the buffer). With no other part the BTC part gets half of it,
    5,875, and books that plus 16 micro-USDC, which leaves a slack of 5,874.999984. No exact
    check: the bands absorbed the fill.

    The band is written for half the share, 2,937.5: 1/8 of it (367.1875) for funding with
    1.1 BTC per unit of the index, and (2,937.5 - 367.1875 - 0.000008) / K of price room, K =
    1.1 * (1 + 0.075 + 0.005 + 0.01) = 1.199: 2,143.71350458 (rounded down to the 1e-8
    price), half on either side: 1,071.85675229. A price at the low key stays healthy:
    equity 20,000 - 1.1 * 1,071.85675229 = 18,820.96 against MM 0.075 * 1.1 * 98,928.14324771
    = 8,161.57."""
    book = _book()
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    bands = book.engine.pm_bands
    sizing = bands.risk["a"]
    assert (sizing.cash, sizing.slack, sizing.booked) == (-usd("80000"), 0, usd("12500"))
    # the part's terms of equity - IM: 100,000 - 1 * 0.15 * 100,000
    assert sizing.parts == {"BTC": (usd("92500"), usd("12500"), sizing.weights, ("BTC",), usd("85000"))}
    # IM checks by the part alone: equity - IM after buying 0.1 more at the mark (no pnl, no
    # fee) is -80,000 + 100,000 - 0.15 * 110,000 = 3,500, covered; after 0.5 more it would be
    # 20,000 - 0.15 * 150,000 = -2,500: not covered, and the whole book refuses the fill
    state = book.state
    a, spot = state.accounts["a"], state.spot["a"]
    assert sizing.covers_im(state, a, spot, "BTC", sz("0.1"), 0)
    assert not sizing.covers_im(state, a, spot, "BTC", sz("0.5"), 0)
    rejected = book.reject(trade("BTC", "100000", "0.5", buyer="a", seller="b"))
    assert rejected.reason == "'a': equity 20000.0 would be below the initial requirement 22500.0"
    checked = []
    precheck = RISK.precheck
    RISK.precheck = lambda *args: checked.append(args) or precheck(*args)  # type: ignore[method-assign]
    try:
        book.ok(trade("BTC", "100000", "0.1", buyer="a", seller="b"))
    finally:
        del RISK.precheck
    assert [args[1] for args in checked] == []  # `a` was not checked exactly
    assert (sizing.cash, sizing.booked, sizing.slack) == (-usd("90000"), usd("5875.000016"), usd("5874.999984"))
    assert sizing.parts["BTC"][0] == usd("101750") and sizing.parts["BTC"][4] == usd("93500")
    entry = bands.entries["a"]["BTC", 0]
    assert entry == ("BTC", 0, 9_892_814_324_771, 10_107_185_675_229, -333_806_818_181_818, 333_806_818_181_818, BOTH)
    book.ok(prices(BTC="98928.14324771"))
    state = book.state
    f = RISK.totals(state, state.accounts["a"], state.spot["a"])
    assert (f.equity, f.maintenance) == (usd("18820.957572"), usd("8161.571818"))
    assert bands.entries["a"]["BTC", 0] == entry  # inside the band: nothing checked it


def test_a_tick_past_the_band_re_references_the_part_by_hand() -> None:
    """`a` long 1 BTC from 100,000 as above (ledger -80,000, a slack of 0, 12,500 booked by the
    BTC part). BTC falls to 97,491.39908944, just below the band's low key: `a` is checked
    exactly (healthy) and its part re-referenced as after a fill, the sizing kept. The
    position is worth 97,491.399089 (rounded down), MM 0.5 * 0.15 * 97,491.39908944 =
    7,311.854932 (rounded up): the part's buffer 90,179.544157; what is available, 0 + 12,500
    + 90,179.544157 - 92,500 = 10,179.544157 (its equity 17,491.399089 less MM). The part gets
    half, 10,179.544157 - 5,089.772078 = 5,089.772079, and books it plus 16 micro-USDC; the
    slack keeps 5,089.772062."""
    book = _book()
    book.ok(trade("BTC", "100000", "1", buyer="a", seller="b"))
    bands = book.engine.pm_bands
    sizing = bands.risk["a"]
    book.ok(prices(BTC="97491.39908944"))
    assert bands.risk["a"] is sizing
    assert sizing.parts["BTC"][0] == usd("90179.544157")
    assert (sizing.booked, sizing.slack) == (usd("5089.772095"), usd("5089.772062"))
