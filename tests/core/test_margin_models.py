"""Margin models as parts (clearinghouse/models): every registered model implements the whole
protocol, and each answers equity, initial and maintenance requirement, withdrawable and
liquidatability as docs/rules.md 2 and docs/portfolio-margin.md give them. Expected values are
worked out by hand next to each assertion."""

from __future__ import annotations

import inspect

from clearinghouse.account_modes import MODES
from clearinghouse.models.base import MarginModel, Part
from clearinghouse.models.registry import MODELS, AccountModels, model_of
from events.units import usd
from tests.support.rulebook import (
    BTC_TIERS,
    ETH_TIERS,
    Book,
    deposit,
    market,
    pm_rules,
    prices,
    set_leverage,
    set_mode,
    token,
    trade,
)

PROTOCOL_ATTRIBUTES = {name for name in MarginModel.__annotations__}
PROTOCOL_METHODS = {
    name for name, member in vars(MarginModel).items() if inspect.isfunction(member) and not name.startswith("_")
}


def test_every_registered_model_implements_the_protocol() -> None:
    assert tuple(MODELS) == MODES == ("standard", "unified", "portfolio", "risk")  # the order `set_mode` lists them in
    assert PROTOCOL_ATTRIBUTES >= {"mode", "banded", "one_usdc_balance", "settles_with_pool", "may_borrow"}
    assert PROTOCOL_METHODS >= {"requirement", "withdrawable", "usdc_room", "liquidatable", "market_scopes", "buffers"}
    for mode, model in MODELS.items():
        assert model.mode == mode
        for name in PROTOCOL_ATTRIBUTES - {"mode"}:
            assert isinstance(getattr(model, name), bool), (mode, name)
        for name in PROTOCOL_METHODS:
            wanted = list(inspect.signature(getattr(MarginModel, name)).parameters)[1:]
            assert list(inspect.signature(getattr(model, name)).parameters) == wanted, (mode, name)


def test_each_account_has_the_model_of_its_mode() -> None:
    book = Book()
    book.ok(
        pm_rules(pm={"min_value": "0"}),
        deposit("s", "1"),
        deposit("u", "1"),
        deposit("p", "1"),
        set_mode("u", "unified"),
        set_mode("p", "portfolio"),
    )
    state = book.state
    models = AccountModels(state)  # rebuilt from the state alone, as after a snapshot load
    assert [models.of(n).mode for n in ("s", "u", "p", "nobody")] == ["standard", "unified", "portfolio", "standard"]
    assert [model_of(state, n) for n in ("s", "u", "p")] == [models.of(n) for n in ("s", "u", "p")]
    assert set(models.banded) == {"u", "p"} and models.settling == {"p"}
    assert book.engine.models.chosen == models.chosen


def _standard() -> Book:
    """alice: 10,000 USDC; 10 ETH isolated at 20x bought at 4,000 (fee 18) and 0.5 BTC cross at
    the default 20x bought at 100,000."""
    book = Book()
    book.ok(
        market("ETH", 4, ETH_TIERS),
        market("BTC", 5, BTC_TIERS),
        deposit("alice", "10000"),
        deposit("bob", "1000000"),
        prices(ETH="4000", BTC="100000"),
        set_leverage("alice", "ETH", 20, cross=False),
        trade("ETH", "4000", "10", "alice", "bob", buyer_fee="18"),
        trade("BTC", "100000", "0.5", "alice", "bob"),
    )
    return book


def test_standard_requirement_and_withdrawable() -> None:
    book = _standard()
    state, model = book.state, MODELS["standard"]
    account = state.accounts["alice"]
    # cross: ledger 10,000 - 2,000 moved to the isolated ledger = 8,000, the BTC long at its entry:
    # AV 8,000; IM 50,000 / 20 = 2,500; MM 50,000 / (2 * 40) = 625.
    # ETH isolated: ledger 2,000 - 18 - 40,000, plus 40,000 of position value: 1,982; IM 40,000 / 20
    # = 2,000; MM 40,000 / (2 * 25) = 800.
    figures = model.requirement(state, account, state.spot.get("alice"))
    assert figures.parts == (
        Part("cross", usd("8000"), usd("2500"), usd("625")),
        Part("ETH", usd("1982"), usd("2000"), usd("800")),
    )
    assert (figures.equity, figures.initial, figures.maintenance) == (usd("9982"), usd("4500"), usd("1425"))
    # AV 8,000 less max(IM 2,500, 10% of 50,000 = 5,000)
    assert model.withdrawable(state, account, None, book.engine.rules) == usd("3000")
    assert not model.liquidatable(state, account, None)


def _one_eth(mode: str) -> Book:
    """alice (in `mode`): 1,050 USDC and 1 ETH long at 2,000 at 10x (one tier: MM 1/20), liquidation
    off so the figures can be followed below maintenance."""
    book = Book(liquidation=False)
    book.ok(market("ETH", 4, [("0", 10)]), deposit("alice", "1050"), deposit("mm", "1000000"), prices(ETH="2000"))
    if mode != "standard":
        book.ok(set_mode("alice", mode))
    book.ok(trade("ETH", "2000", "1", "alice", "mm"))
    return book


def test_unified_is_liquidatable_at_equity_equal_to_maintenance() -> None:
    book = _one_eth("unified")
    book.ok(prices(ETH="1000"))
    state = book.state
    account, spot = state.accounts["alice"], state.spot["alice"]
    # ledger 1,050 - 2,000 = -950; at 1,000: AV 50; IM 1,000 / 10 = 100; MM 1,000 / 20 = 50
    figures = MODELS["unified"].requirement(state, account, spot)
    assert (figures.equity, figures.initial, figures.maintenance) == (usd("50"), usd("100"), usd("50"))
    assert MODELS["unified"].liquidatable(state, account, spot)  # MM / AV = 1: liquidatable
    assert not MODELS["standard"].liquidatable(state, account, spot)  # AV = MM is not below


def test_portfolio_requirement_withdrawable_and_ratio() -> None:
    book = Book(liquidation=False)
    book.ok(
        pm_rules(pm={"min_value": "0"}),
        token("HYPE"),
        market("ETH", 4, [("0", 10)]),
        prices(ETH="2000", HYPE="40"),
        deposit("mm", "1000000"),
        deposit("alice", "100", token="HYPE"),
        deposit("alice", "1000"),
        set_mode("alice", "portfolio"),
        trade("ETH", "2000", "1", "alice", "mm"),
    )
    state, model = book.state, MODELS["portfolio"]
    account, spot = state.accounts["alice"], state.spot["alice"]
    # USDC: ledger 1,000 - 2,000 plus the long's 2,000 = AV_cross 1,000 (no supply yet: no hour passed).
    # liqValue = 1,000 + 100 HYPE * 40 * (1/2 + 0.65/2) = 1,000 + 3,300 = 4,300.
    # req = 20 + MM 2,000 / 20 = 120; what a removal must leave: 120 / 0.95 = 126.315789..., up.
    figures = model.requirement(state, account, spot)
    assert figures.parts == (Part("portfolio", usd("4300"), usd("126.31579"), usd("126.31579")),)
    # its own USDC net of borrows (1,000), and no more than leaves 126.31579 of 4,300
    assert model.withdrawable(state, account, spot, book.engine.rules) == usd("1000")
    assert not model.liquidatable(state, account, spot)
    # ETH at 1,000: AV_cross 0, req 20 + 50 = 70; HYPE at 0.8: liqValue 100 * 0.8 * 0.825 = 66;
    # 70 / 66 is above 0.95
    book.ok(prices(ETH="1000", HYPE="0.8"))
    assert model.requirement(state, account, spot).parts[0] == Part(
        "portfolio", usd("66"), usd("73.684211"), usd("73.684211")
    )  # 70 / 0.95, up
    assert model.liquidatable(state, account, spot)
    assert model.withdrawable(state, account, spot, book.engine.rules) == 0
