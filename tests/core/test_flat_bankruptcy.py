"""An account left with no position and a negative ledger is bankrupt: the liquidator covers it
up to its loss limit, beyond that it is bad debt (never left hidden in the ledger)."""

from __future__ import annotations

import pytest

from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.liquidator import LIQUIDATOR
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.codec import decode_json
from events.units import usd

SETUP = [
    '{"type":"market","coin":"BTC","sz_decimals":3,"margin_tiers":[{"lower_bound":"0","max_leverage":40}]}',
    '{"type":"prices","prices":{"BTC":{"mark":"100"}}}',
    '{"type":"deposit","account":"mm","amount":"100000"}',
    '{"type":"deposit","account":"a","amount":"100"}',
    # a buys 10 at 100: AV 100 >= MM 1000 / 80 = 12.5
    '{"type":"trade","coin":"BTC","px":"100","sz":"10","buyer":"a","seller":"mm"}',
]
# a sells the 10 at 80 (a fact from the matching engine): cash 100 - 1000 + 800 = -100, flat.
BAD_FILL = '{"type":"trade","coin":"BTC","px":"80","sz":"10","buyer":"mm","seller":"a"}'


@pytest.mark.parametrize("full_scan", [False, True])
@pytest.mark.parametrize(("limit", "absorbed", "debt"), [(None, "100", "0"), ("150", "100", "0"), ("50", "0", "100")])
def test_a_flat_negative_ledger_is_settled(full_scan: bool, limit: str | None, absorbed: str, debt: str) -> None:
    config = LiquidationConfig(loss_limit=None if limit is None else usd(limit))
    engine = Engine(State(liquidation=config), full_scan=full_scan)
    for line in SETUP:
        assert engine.apply(decode_json(line)) == []
    derived = engine.apply(decode_json(BAD_FILL))
    assert conservation_errors(engine.state) == []
    assert derived[0] == ev.LiquidationTriggered(
        account="a", scope="cross", cause=5, equity=usd("-100"), maintenance=0, positions=[], phase="backstop", ts=0
    )
    state = engine.state
    assert state.accounts["a"].raw_usd == 0
    assert state.bad_debt == usd(debt)
    liquidator = state.accounts.get(LIQUIDATOR)
    assert (liquidator.raw_usd if liquidator is not None else 0) == -usd(absorbed)
    if debt != "0":
        assert derived[1:] == [ev.BadDebt(account="a", scope="cross", amount=usd(debt), cause=5, ts=0)]
    else:
        assert derived[1:] == [
            ev.Backstop(account="a", scope="cross", positions=[], margin=usd("-100"), cause=5, ts=0)
        ]
    assert "a" not in state.watch
