"""How a backtest configuration becomes input events (replay/backtest/stream.py): what is injected
where, what is rewritten, and that the as-logged configuration changes nothing."""

from __future__ import annotations

from clearinghouse.state import LiquidationConfig
from events import schema as ev
from replay.backtest.config import Plan, as_logged
from replay.backtest.stream import Rewriter

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
