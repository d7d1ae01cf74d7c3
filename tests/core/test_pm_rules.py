"""Spot, lending and PM parameters are data (docs/portfolio-margin.md; docs/architecture.md rule 6):
defaults of the current era, changed by `rules` events, kept in the state (and its digest)."""

from __future__ import annotations

from clearinghouse import lending, portfolio
from clearinghouse.digest import state_digest
from clearinghouse.rules import PmRules
from events.units import RATE, usd
from tests.support.rulebook import Book, deposit, lend, pm_rules, prices, rules, set_mode, token


def _pm(book: Book) -> None:
    book.ok(
        pm_rules(pm={"min_value": "0"}),
        token("HYPE"),
        prices(HYPE="40"),
        deposit("pm", "100", token="HYPE"),
        set_mode("pm", "portfolio"),
    )


def _limit(book: Book) -> int:
    state = book.state
    return portfolio.figures(state, state.accounts["pm"], state.spot["pm"]).borrow_limit


def test_defaults_are_the_current_era():
    r = PmRules()
    assert r.ltv == {"BTC": RATE // 2, "HYPE": RATE * 65 // 100, "USDC": 0, "USDT": 0}
    assert (r.caps["USDC"].supply, r.caps["USDC"].borrow, r.caps["USDC"].user_supply, r.caps["USDC"].user_borrow) == (
        1_000_000_000,
        500_000_000,
        250_000_000,
        50_000_000,
    )
    assert (r.caps["USDT"].supply, r.caps["USDT"].borrow, r.caps["USDT"].user_supply, r.caps["USDT"].user_borrow) == (
        50_000_000,
        10_000_000,
        5_000_000,
        1_000_000,
    )
    assert (r.caps["HYPE"].supply, r.caps["HYPE"].user_supply, r.caps["BTC"].supply, r.caps["BTC"].user_supply) == (
        10_000_000,
        1_000_000,
        2_000,
        200,
    )
    assert (r.liq_ratio, r.min_requirement, r.partial_step, r.threshold_quantum) == (
        RATE * 95 // 100,
        usd("20"),
        RATE // 5,
        RATE // 1000,
    )
    assert (r.min_volume, r.min_value, r.max_value) == (usd("5000000"), usd("10000"), usd("25000000"))


def test_ltv_changes_by_event_and_the_state_remembers():
    book = Book()
    _pm(book)
    assert _limit(book) == usd("2600")  # 100 * 40 * 0.65
    before = state_digest(book.state)
    book.ok(pm_rules(ltv={"HYPE": "0.5"}))  # the era before 2026-08-19
    assert _limit(book) == usd("2000")  # 100 * 40 * 0.5
    assert state_digest(book.state) != before
    assert book.state.pm_rules.ltv["BTC"] == RATE // 2  # other tokens untouched


def test_rate_curve_and_thresholds_are_parameters():
    book = Book()
    book.ok(pm_rules(pm={"base_apy": "0.1", "kink": "0.5", "slope": "2", "supply_share": "0.8"}))
    r = book.state.pm_rules
    # U = 0.75: 0.1 + 2 * (0.75 - 0.5) = 0.6; supply 0.6 * 0.75 * 0.8 = 0.36
    assert lending.borrow_apy(r, 750, 1000) == RATE * 6 // 10
    assert lending.supply_apy(r, RATE * 6 // 10, 750, 1000) == RATE * 36 // 100
    book.ok(rules("hl-2023"))  # a named perp rule set leaves the PM parameters alone
    assert book.state.rules == "hl-2023" and book.state.pm_rules.kink == RATE // 2


def test_bad_parameters_are_rejected():
    book = Book()
    assert "LTV of HYPE" in book.reject(pm_rules(ltv={"HYPE": "1"})).reason
    assert "kink" in book.reject(pm_rules(pm={"kink": "0"})).reason
    assert "partial_step" in book.reject(pm_rules(pm={"partial_step": "0"})).reason
    assert "name or parameters" in book.reject(pm_rules()).reason
    assert "unknown rule set" in book.reject(rules("hl-1999")).reason


def test_a_cap_change_applies_to_the_next_borrow():
    book = Book()
    _pm(book)
    book.ok(deposit("lender", "5000"), set_mode("lender", "unified"), lend("supply", "lender", "5000"))
    book.ok(
        pm_rules(caps={"USDC": {"supply": 1000000000, "borrow": 1000, "user_supply": 250000000, "user_borrow": 100}})
    )
    assert "what may be borrowed (100.0)" in book.reject(lend("borrow", "pm", "100.000001")).reason
    book.ok(lend("borrow", "pm", "100"))
