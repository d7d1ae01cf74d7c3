"""How a backtest configuration becomes input events (replay/backtest/stream.py): what is injected
where, what is rewritten, that the as-logged configuration changes nothing, and the events that
apply a configuration to a state (a stress run's population)."""

from __future__ import annotations

import json
from pathlib import Path

from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from replay.backtest.config import Plan, as_logged, plan, read_config
from replay.backtest.stream import Rewriter, state_events

TIERS = [ev.MarginTier(0, 40), ev.MarginTier(100_000_000_000, 20)]
RULES = ev.Rules(pm=ev.PmParams(min_value=0))


def _plan(**fields: object) -> Plan:
    return Plan("test", LiquidationConfig(), 100_000, **fields)  # type: ignore[arg-type]


def _log() -> list[ev.InputEvent]:
    return [
        ev.Market(ts=1, coin="BTC", sz_decimals=3, margin_tiers=TIERS),
        ev.Deposit(ts=2, account="a", amount=1),
        ev.Trade(ts=3, coin="BTC", px=1, sz=1, buyer="b", seller="a"),
        ev.SetMode(ts=4, account="a", mode="portfolio"),
        ev.Rules(ts=5, name="hl-2023"),
        ev.SetMode(ts=6, account="c", mode="unified"),
    ]


def test_as_logged_returns_the_block_itself() -> None:
    events = _log()
    assert Rewriter(as_logged(LiquidationConfig(), 100_000)).block(events) is events


def test_a_model_for_all_accounts_switches_each_at_its_first_appearance() -> None:
    out = Rewriter(_plan(model="unified", rules=RULES)).block(_log())
    assert out == [
        ev.Rules(ts=1, pm=ev.PmParams(min_value=0)),  # before the first event
        ev.Market(ts=1, coin="BTC", sz_decimals=3, margin_tiers=TIERS),
        ev.Deposit(ts=2, account="a", amount=1),
        ev.SetMode(ts=2, account="a", mode="unified"),  # right after a's first event
        ev.SetMode(ts=3, account="b", mode="unified"),  # right before b's first: a trade
        ev.Trade(ts=3, coin="BTC", px=1, sz=1, buyer="b", seller="a"),
        # a's logged switch to portfolio margin becomes one to unified, which a already is: dropped
        ev.Rules(ts=5, name="hl-2023"),
        ev.Rules(ts=5, pm=ev.PmParams(min_value=0)),  # the configuration's rules kept over the log's
        ev.SetMode(ts=6, account="c", mode="unified"),  # c's first event is its own switch
    ]


def test_the_logs_portfolio_accounts_switch_where_the_log_switched_them() -> None:
    out = Rewriter(_plan(model="unified", accounts="portfolio")).block(_log())
    events = _log()
    assert out == [*events[:3], ev.SetMode(ts=4, account="a", mode="unified"), *events[4:]]


def test_the_standard_model_for_the_logs_portfolio_accounts_drops_their_switch() -> None:
    out = Rewriter(_plan(model="standard", accounts="portfolio")).block(_log())
    events = _log()
    assert out == [*events[:3], *events[4:]]


def test_a_listed_set_of_accounts() -> None:
    out = Rewriter(_plan(model="portfolio", accounts=frozenset({"b"}))).block(_log())
    events = _log()
    assert out == [*events[:2], ev.SetMode(ts=3, account="b", mode="portfolio"), *events[2:]]


def test_tiers_are_replaced_and_capped() -> None:
    log = [
        ev.Market(coin="BTC", sz_decimals=3, margin_tiers=TIERS),
        ev.Market(coin="ETH", sz_decimals=2, margin_tiers=TIERS),
    ]
    eth = [ev.MarginTier(0, 50)]
    out = Rewriter(_plan(tiers={"ETH": eth}, max_leverage=25)).block(log)
    assert out == [
        ev.Market(coin="BTC", sz_decimals=3, margin_tiers=[ev.MarginTier(0, 25), ev.MarginTier(100_000_000_000, 20)]),
        ev.Market(coin="ETH", sz_decimals=2, margin_tiers=[ev.MarginTier(0, 25)]),
    ]


def test_the_first_event_is_injected_before_once_across_blocks() -> None:
    rewriter = Rewriter(_plan(rules=RULES))
    first, second = (
        rewriter.block([ev.Deposit(ts=7, account="a", amount=1)]),
        rewriter.block([ev.Deposit(account="b", amount=1)]),
    )
    assert first == [ev.Rules(ts=7, pm=ev.PmParams(min_value=0)), ev.Deposit(ts=7, account="a", amount=1)]
    assert second == [ev.Deposit(account="b", amount=1)]


def _state() -> State:
    engine = Engine()
    for event in (
        ev.Market(ts=1, coin="BTC", sz_decimals=3, margin_tiers=TIERS),
        ev.Market(ts=1, coin="ETH", sz_decimals=3, margin_tiers=[ev.MarginTier(0, 10)]),
        ev.Deposit(ts=2, account="a", amount=1_000_000),
        ev.Deposit(ts=3, account="b", amount=1_000_000),
        ev.SetMode(ts=7, account="b", mode="unified"),
    ):
        assert not engine.apply(event), event
    return engine.state


def test_a_state_gets_the_rules_the_changed_listings_and_the_switches_at_its_time() -> None:
    out = state_events(_plan(model="unified", rules=RULES, max_leverage=25), _state())
    assert out == [
        ev.Rules(ts=7, pm=ev.PmParams(min_value=0)),
        # BTC's 40x tier capped at 25; ETH's 10x is under the cap: not re-listed
        ev.Market(ts=7, coin="BTC", sz_decimals=3, margin_tiers=[ev.MarginTier(0, 25), TIERS[1]]),
        ev.SetMode(ts=7, account="a", mode="unified"),  # b is unified already
    ]
    # nobody is in portfolio margin; a list is switched as named (the engine judges unknown names)
    assert state_events(_plan(model="standard", accounts="portfolio"), _state()) == []
    assert state_events(_plan(model="standard", accounts=frozenset({"zed", "b"})), _state()) == [
        ev.SetMode(ts=7, account="b", mode="standard"),
        ev.SetMode(ts=7, account="zed", mode="standard"),
    ]


def test_a_null_loss_limit_is_no_limit_and_an_absent_one_keeps_the_logs(tmp_path: Path) -> None:
    logged = LiquidationConfig(loss_limit=5_000_000)
    for body, limit in (
        ({"liquidator_loss_limit": None}, None),
        ({}, 5_000_000),
        ({"liquidator_loss_limit": "7"}, 7_000_000),
    ):
        path = tmp_path / "c.json"
        path.write_text(json.dumps({"name": "c", "liquidation": body}))
        assert plan(read_config(path), logged, 100_000, str(path)).liquidation.loss_limit == limit
