"""Properties of the engine on long and adversarial streams: determinism, conservation after
every event, rejections that change nothing, and funding by index equal to hourly payment."""

from __future__ import annotations

from fractions import Fraction

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearinghouse.digest import encode_state, state_digest
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.margin import cross_figures
from events import schema as ev
from events.units import FUNDING_DIV, FUNDING_QUANTUM, NTL_DIV, PX, RATE, SZ, USD, round_half_even
from replay.workload import GeneratorConfig, generate


def _fold(events: list) -> Engine:
    engine = Engine()
    for event in events:
        engine.apply(event)
    return engine


@pytest.mark.slow
def test_two_replays_of_the_same_stream_give_the_same_digest() -> None:
    config = GeneratorConfig(accounts=300, markets=6, events=30_000, seed=11)
    first = _fold(list(generate(config)))
    second = _fold(list(generate(config)))
    assert state_digest(first.state) == state_digest(second.state)
    assert encode_state(first.state) == encode_state(second.state)
    other = _fold(list(generate(GeneratorConfig(accounts=300, markets=6, events=30_000, seed=12))))
    assert state_digest(other.state) != state_digest(first.state)


def test_digest_does_not_depend_on_dict_insertion_order() -> None:
    engine = _fold(list(generate(GeneratorConfig(accounts=50, markets=3, events=3_000, seed=3))))
    state = engine.state
    shuffled = msgspec.structs.replace(state, accounts=dict(reversed(list(state.accounts.items()))))
    assert state_digest(shuffled) == state_digest(state)


@pytest.mark.slow
def test_conservation_after_every_event_of_a_generated_stream() -> None:
    engine = Engine()
    for event in generate(GeneratorConfig(accounts=120, markets=5, events=6_000, seed=5)):
        engine.apply(event)
        assert conservation_errors(engine.state) == []
    assert engine.state.fees > 0


# ---- adversarial random streams ----------------------------------------------------------------

ACCOUNTS = ["a", "b", "c"]
LIQUIDATION_EVENTS = {
    ev.LiquidationTriggered,
    ev.LiquidationFill,
    ev.LiquidationOrder,
    ev.Backstop,
    ev.Adl,
    ev.BadDebt,
}
COINS = ["BTC", "ISO"]

_amount = st.integers(min_value=-5 * USD, max_value=50_000 * USD)
_account = st.sampled_from(ACCOUNTS + ["ghost"])
_coin = st.sampled_from(COINS + ["NOPE"])


@st.composite
def _event(draw: st.DrawFn) -> object:
    kind = draw(
        st.sampled_from(
            ["deposit", "withdraw", "transfer", "trade", "trade", "trade", "prices", "funding", "lev", "iso", "rules"]
        )
    )
    if kind == "deposit":
        return ev.Deposit(account=draw(_account), amount=draw(_amount))
    if kind == "withdraw":
        return ev.Withdraw(account=draw(_account), amount=draw(_amount))
    if kind == "transfer":
        return ev.Transfer(from_=draw(_account), to=draw(_account), amount=draw(_amount))
    if kind == "trade":
        return ev.Trade(
            coin=draw(_coin),
            px=draw(st.integers(90, 110)) * 1000 * PX // 1000 + draw(st.sampled_from([0, 0, 0, 1])),
            sz=draw(st.integers(-1, 40)) * SZ // 100,
            buyer=draw(_account),
            seller=draw(_account),
            buyer_fee=draw(st.integers(-USD, 3 * USD)),
            seller_fee=draw(st.integers(-USD, 3 * USD)),
        )
    if kind == "prices":
        return ev.Prices(prices={draw(_coin): ev.PricePoint(mark=draw(st.integers(-1, 200)) * PX)})
    if kind == "funding":
        return ev.Funding(coin=draw(_coin), rate=draw(st.integers(-RATE // 100, RATE // 100)))
    if kind == "lev":
        return ev.SetLeverage(
            account=draw(_account), coin=draw(_coin), leverage=draw(st.integers(0, 60)), cross=draw(st.booleans())
        )
    if kind == "iso":
        return ev.IsolatedMargin(
            account=draw(_account), coin=draw(_coin), delta=draw(st.integers(-200 * USD, 200 * USD))
        )
    return ev.Rules(name=draw(st.sampled_from(["hl-current", "hl-2023", "hl-1999"])))


_SETUP = [
    ev.Market(coin="BTC", sz_decimals=2, margin_tiers=[ev.MarginTier(0, 40), ev.MarginTier(5_000 * USD, 20)]),
    ev.Market(coin="ISO", sz_decimals=2, margin_tiers=[ev.MarginTier(0, 10)], only_isolated=True),
    ev.Prices(prices={"BTC": ev.PricePoint(mark=100 * PX), "ISO": ev.PricePoint(mark=100 * PX)}),
]


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event(), min_size=1, max_size=60))
def test_random_streams_conserve_and_rejections_change_nothing(events: list) -> None:
    engine = _fold(_SETUP)
    for event in events:
        before = encode_state(engine.state)
        seq, time = engine.state.next_seq, engine.state.time
        derived = engine.apply(event)
        assert conservation_errors(engine.state) == []
        if derived and isinstance(derived[0], ev.Rejected):
            assert len(derived) == 1 and derived[0].seq == seq
            restored = msgspec.structs.replace(engine.state, next_seq=seq, time=time)
            assert encode_state(restored) == before
        else:  # an accepted event may only lead to liquidation decisions, caused by it
            assert all(type(d) in LIQUIDATION_EVENTS and d.cause == seq for d in derived)


# ---- funding: the index against paying every position every hour -------------------------------


@st.composite
def _funding_stream(draw: st.DrawFn) -> list:
    out: list = []
    for _ in range(draw(st.integers(1, 40))):
        if draw(st.booleans()):
            buyer, seller = draw(st.permutations(ACCOUNTS))[:2]
            out.append(
                ev.Trade(
                    coin="BTC",
                    px=draw(st.integers(95, 105)) * PX,
                    sz=draw(st.integers(1, 30)) * SZ // 100,
                    buyer=buyer,
                    seller=seller,
                )
            )
        else:
            oracle = draw(st.integers(9_000, 11_000)) * PX // 100
            out.append(
                ev.Prices(prices={"BTC": ev.PricePoint(mark=oracle, oracle=oracle + draw(st.integers(0, 999)))})
            )
            out.append(ev.Funding(coin="BTC", rate=draw(st.integers(-RATE // 1000, RATE // 1000))))
    return out


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(_funding_stream())
def test_funding_by_index_equals_paying_every_position_every_hour(stream: list) -> None:
    setup = [_SETUP[0], _SETUP[2]] + [ev.Deposit(account=a, amount=1_000_000 * USD) for a in ACCOUNTS]
    engine = _fold(setup + stream)
    # The reference pays each open position each hour, exactly (the per-coin amount is quantised
    # once per hour, half to even, as documented), and books what it owes into the ledger,
    # rounded down, whenever the position's size changes.
    ledger = {a: Fraction(1_000_000 * USD) for a in ACCOUNTS}
    szi = {a: 0 for a in ACCOUNTS}
    owed = {a: Fraction(0) for a in ACCOUNTS}
    oracle = 100 * PX
    for event in stream:
        if isinstance(event, ev.Prices):
            oracle = event.prices["BTC"].oracle
        elif isinstance(event, ev.Funding):
            per_coin = round_half_even(oracle * event.rate, FUNDING_QUANTUM)
            for a in ACCOUNTS:
                owed[a] += Fraction(-szi[a] * per_coin, FUNDING_DIV)
        else:
            for a, size in ((event.buyer, event.sz), (event.seller, -event.sz)):
                ledger[a] += owed[a].__floor__() - Fraction(size * event.px, NTL_DIV)
                owed[a] = Fraction(0)
                szi[a] += size
    for a in ACCOUNTS:
        account = engine.state.accounts[a]
        figures = cross_figures(account, engine.state.markets)
        pos = account.positions.get("BTC")
        assert (pos.szi if pos is not None else 0) == szi[a]
        assert figures.raw_usd == ledger[a] + owed[a].__floor__()


def test_digest_of_a_large_book_created_in_key_order() -> None:
    """150,000 accounts inserted in key order (a1, a2, ...): the canonical encoding stays linear
    (msgspec's own key sorting crashes on such input) and does not depend on insertion order."""
    from clearinghouse.state import Account, State

    names = [f"a{i:06d}" for i in range(150_000)]
    ordered = State(accounts={n: Account(raw_usd=i) for i, n in enumerate(names)})
    reversed_ = State(accounts={n: Account(raw_usd=i) for i, n in reversed(list(enumerate(names)))})
    assert state_digest(ordered) == state_digest(reversed_)
