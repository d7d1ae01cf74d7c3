"""The trigger index against its full-scan twin: identical decisions, on crash streams with
hundreds of liquidations in every execution mode; and a tick visits only the crossed entries."""

from __future__ import annotations

import pytest

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.scopes import below_maintenance
from clearinghouse.state import LiquidationConfig, State
from clearinghouse.triggers import ID_BITS, ID_MASK, TriggerIndex
from events import schema as ev
from events.units import PX, SZ, USD
from tests.support.streams import crash_stream


def _run(stream: list, config: LiquidationConfig, full_scan: bool) -> tuple[str, list]:
    engine = Engine(State(liquidation=config), full_scan=full_scan)
    derived = []
    for event in stream:
        derived.extend(engine.apply(event))
    assert conservation_errors(engine.state) == []
    return state_digest(engine.state), derived


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        LiquidationConfig(),
        LiquidationConfig(slippage_ppm=5_000, loss_limit=0),
        LiquidationConfig(mode="impact", impact_ppm=20_000, depth=200_000 * USD, loss_limit=1_000 * USD),
        LiquidationConfig(mode="external"),
    ],
    ids=["mark", "mark-slippage-adl", "impact", "external"],
)
def test_indexed_and_full_scan_decide_identically_on_a_crash(config: LiquidationConfig) -> None:
    stream = crash_stream(accounts=500, events=6_000, seed=21)
    indexed = _run(stream, config, full_scan=False)
    reference = _run(stream, config, full_scan=True)
    kinds = {type(d).__name__ for d in indexed[1]}
    assert "LiquidationTriggered" in kinds and len(indexed[1]) > 100
    assert indexed == reference


def test_a_tick_checks_only_the_accounts_whose_trigger_it_crossed() -> None:
    """1,000 longs at 2x to 20x: a 1% dip crosses no key (every account keeps at least 4.5% of
    buffer), a dip to just above the 20x accounts' liquidation price crosses only theirs."""
    market = ev.Market(coin="BTC", sz_decimals=3, margin_tiers=[ev.MarginTier(0, 40)])
    events: list = [
        market,
        ev.Prices(prices={"BTC": ev.PricePoint(mark=100 * PX)}),
        ev.Deposit(account="mm", amount=10**9 * USD),
    ]
    for i in range(1000):
        name = f"acct{i:04d}"
        leverage = 2 if i % 10 else 20  # every tenth account at 20x
        events.append(ev.Deposit(account=name, amount=1_000 * USD))
        events.append(ev.Trade(coin="BTC", px=100 * PX, sz=10 * leverage * SZ, buyer=name, seller="mm"))
    engine = Engine()
    for e in events:
        assert engine.apply(e) == []
    checked: list[str] = []
    visited: list[str] = []  # the accounts whose keys a tick crossed
    exact = below_maintenance
    index = engine.triggers
    crossed = index.crossed

    def counting(account, markets):  # noqa: ANN001, ANN202
        checked.append(account)
        return exact(account, markets)

    def crossing(coin, state):  # noqa: ANN001, ANN202
        found = crossed(coin, state)
        visited.extend(found)
        return found

    import clearinghouse.engine as engine_module

    engine_module.below_maintenance = counting
    index.crossed = crossing  # type: ignore[method-assign]
    try:
        assert engine.apply(ev.Prices(prices={"BTC": ev.PricePoint(mark=99 * PX)})) == []
        assert checked == [] and visited == []
        # A 20x long of 200 BTC at 100 with 1,000 USDC: AV = 1000 + 200 * (P - 100), MM = 200 * P / 80;
        # AV = MM at P = 19000 / 197.5 = 96.2025...; at 97 its buffer (AV - MM = 400 - 242.5 = 157.5)
        # is below half its reservation, so its (half-strict) key is crossed: the tick visits exactly
        # the 100 20x accounts, none liquidated; each one's ledger covers it again at new keys
        # (157.5 USDC left), so none needs an exact check.
        assert engine.apply(ev.Prices(prices={"BTC": ev.PricePoint(mark=97 * PX)})) == []
        assert sorted(visited) == [f"acct{i:04d}" for i in range(0, 1000, 10)]
        assert checked == []
        derived = engine.apply(ev.Prices(prices={"BTC": ev.PricePoint(mark=96 * PX)}))
        assert {d.account for d in derived if isinstance(d, ev.LiquidationTriggered)} == {
            f"acct{i:04d}" for i in range(0, 1000, 10)
        }
    finally:
        engine_module.below_maintenance = exact
        del index.crossed


def _two_coins() -> Engine:
    """Account `a`: 1,000 USDC, long 10 BTC and 10 ETH at 100 (maintenance 1/80 of notional)."""
    engine = Engine()
    events: list = [ev.Deposit(account="mm", amount=10**9 * USD), ev.Deposit(account="a", amount=1_000 * USD)]
    for coin in ("BTC", "ETH"):
        events += [
            ev.Market(coin=coin, sz_decimals=3, margin_tiers=[ev.MarginTier(0, 40)]),
            ev.Prices(prices={coin: ev.PricePoint(mark=100 * PX)}),
        ]
    events += [ev.Trade(coin=coin, px=100 * PX, sz=10 * SZ, buyer="a", seller="mm") for coin in ("BTC", "ETH")]
    for e in events:
        assert engine.apply(e) == []
    return engine


def _keys_of(engine: Engine, name: str) -> dict[str, list[tuple[int, str]]]:
    """Every key `name` holds, per coin and list, from the books themselves (an entry is
    `key << ID_BITS | id`, decoded here to (key, name))."""
    index = engine.triggers
    assert isinstance(index, TriggerIndex)
    decoded = {
        f"{coin}.{side}": [(e >> ID_BITS, index.ids.names[e & ID_MASK]) for e in getattr(book, side)]
        for coin, book in index.books.items()
        for side in ("long_px", "short_px", "long_fund", "short_fund")
    }
    return {where: [k for k in keys if k[1] == name] for where, keys in decoded.items()}


def test_a_crossed_account_found_healthy_moves_only_the_keys_that_no_longer_hold() -> None:
    """A fall of BTC to 50 crosses a's BTC key (set for at most its 1,000 USDC of buffer, so
    above 50) but leaves it healthy: AV 1000 - 500 = 500 > MM (500 + 1000) / 80 = 18.75. The
    re-index moves the BTC key under the new mark and leaves the ETH keys where they were."""
    engine = _two_coins()
    before = _keys_of(engine, "a")
    assert before["BTC.long_px"][0][0] > 50 * PX
    assert engine.apply(ev.Prices(prices={"BTC": ev.PricePoint(mark=50 * PX)})) == []
    after = _keys_of(engine, "a")
    assert after["ETH.long_px"] == before["ETH.long_px"] and after["ETH.long_fund"] == before["ETH.long_fund"]
    assert len(after["BTC.long_px"]) == 1 and after["BTC.long_px"][0][0] <= 50 * PX
    assert sum(map(len, after.values())) == 4  # one price and one funding key per position


def _iso_btc_cross_eth() -> Engine:
    """a: 1,000 USDC, an isolated 10x BTC long and a cross ETH long, 10 each at 100."""
    engine = Engine()
    events: list = [ev.Deposit(account="mm", amount=10**9 * USD), ev.Deposit(account="a", amount=1_000 * USD)]
    for coin in ("BTC", "ETH"):
        events += [
            ev.Market(coin=coin, sz_decimals=3, margin_tiers=[ev.MarginTier(0, 40)]),
            ev.Prices(prices={coin: ev.PricePoint(mark=100 * PX)}),
        ]
    events += [
        ev.SetLeverage(account="a", coin="BTC", leverage=10, cross=False),
        ev.Trade(coin="BTC", px=100 * PX, sz=10 * SZ, buyer="a", seller="mm"),
        ev.Trade(coin="ETH", px=100 * PX, sz=10 * SZ, buyer="a", seller="mm"),
    ]
    for e in events:
        assert engine.apply(e) == []
    return engine


def test_an_account_left_out_of_the_index_keeps_no_key() -> None:
    """An isolated BTC long indexed, then a's cross side falls below maintenance (its ledger
    loses 2,000 USDC): the re-index leaves the whole account to the watch list, no key behind."""
    engine = _iso_btc_cross_eth()
    assert sum(map(len, _keys_of(engine, "a").values())) == 4
    account = engine.state.accounts["a"]
    account.raw_usd -= 2_000 * USD
    engine.triggers.reindex("a", account, engine.state.markets)
    assert sum(map(len, _keys_of(engine, "a").values())) == 0
    assert "a" not in engine.triggers.accounts  # type: ignore[union-attr]


def test_a_refresh_indexes_a_scope_that_was_left_out_below_maintenance() -> None:
    """a's isolated BTC scope falls below maintenance (left out of the index, as for the watch
    list) and recovers; a tick then crosses its ETH key. Re-referencing ETH alone would leave
    BTC unwatched: the refresh indexes the whole account."""
    engine = _iso_btc_cross_eth()
    index, state = engine.triggers, engine.state
    assert isinstance(index, TriggerIndex)
    account = state.accounts["a"]
    btc = account.positions["BTC"]
    kept, btc.iso_raw = btc.iso_raw, -1_000 * USD  # the isolated scope's ledger gone
    index.reindex("a", account, state.markets)
    assert [k for k in _keys_of(engine, "a")["BTC.long_px"]] == [] and len(_keys_of(engine, "a")["ETH.long_px"]) == 1
    btc.iso_raw = kept
    state.markets["ETH"].mark = 50 * PX  # crosses the ETH key (set for at most 1,000 USDC)
    index.refresh("a", account, state.markets)
    keys = _keys_of(engine, "a")
    assert len(keys["BTC.long_px"]) == 1 and len(keys["ETH.long_px"]) == 1 and keys["ETH.long_px"][0][0] <= 50 * PX
