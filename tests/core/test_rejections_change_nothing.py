"""A rejected event changes nothing but the log position (docs/architecture.md rule 4), and an accepted
import conserves exactly: handlers validate fully before they mutate."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearinghouse.digest import encode_state
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.state import State
from events import schema as ev
from events.bounds import MAX_USD
from events.codec import encode_json
from events.schema import Caps
from events.units import HOUR_MS, RATE, usd
from tests.support.pair import stamped
from tests.support.rejecting import rejected
from tests.support.rulebook import (
    BTC_TIERS,
    Book,
    class_transfer,
    deposit,
    lend,
    market,
    prices,
    set_mode,
    token,
    trade,
)

T0 = 1_700_000_000_000


def _book() -> Book:
    """Two BTC traders (a long 1 at 100,000, b short), a PM account borrowing against HYPE, a
    lender's USDC pool; event time T0 + 1h."""
    book = Book()
    book.ok(
        stamped(market("BTC", 5, BTC_TIERS), T0),
        prices(BTC="100000"),
        token("HYPE"),
        prices(HYPE="40"),
        deposit("a", "20000"),
        deposit("b", "20000"),
        trade("BTC", "100000", "1", "a", "b"),
        deposit("lender", "10000"),
        class_transfer("lender", "10000", to_perp=False),
        lend("supply", "lender", "10000"),
        deposit("pm", "1000", token="HYPE"),
        set_mode("pm", "portfolio"),
        stamped(prices(HYPE="40"), T0 + HOUR_MS),
        lend("borrow", "pm", "1000"),
    )
    return book


def test_a_trade_with_a_bad_liquidation_marker_creates_no_position():
    book = _book()
    book.ok(deposit("c", "1000"))
    event = ev.Trade(
        coin="BTC", px=10**13, sz=10**3, buyer="c", seller="b", liquidation=ev.LiquidationMark(account="a")
    )
    assert "neither buyer nor seller" in rejected(book.engine, event).reason
    assert book.state.accounts["c"].positions == {}


def test_an_import_at_an_entry_off_the_tick_conserves():
    """0.00001 BTC long at 95,000.12345678 (BTC's tick is 0.1): a cash leg of -0.95000123 USDC,
    which the imported account books as any fill does, `-(szi * px // NTL_DIV)` = -0.950001; the
    import account books exactly the opposite, +0.950001 (it used to book its own side the same
    way, +0.950002, creating a micro-USDC). The whale's ledger is then set to the snapshot's 500,
    which counts as deposited together with what the fill took from it. Book checks conservation
    after each event."""
    book = _book()
    deposited = book.state.deposited
    book.ok(
        ev_line(
            ev.ImportAccount(
                account="whale",
                raw_usd=usd("500"),
                positions=[ev.ImportedPosition(coin="BTC", szi=1_000, entry_px=9_500_012_345_678, leverage=20)],
            )
        )
    )
    state = book.state
    assert state.accounts["@import"].raw_usd == usd("0.950001")
    assert state.accounts["whale"].raw_usd == usd("500")
    assert state.deposited - deposited == usd("500") + usd("0.950001")
    book.ok(
        ev_line(
            ev.ImportAccount(
                account="whale2",
                raw_usd=usd("100"),
                positions=[ev.ImportedPosition(coin="BTC", szi=-3_000, entry_px=9_500_012_345_678, leverage=20)],
            )
        )
    )
    # short 0.00003: a leg of +2.85000370, booked -(-2.85000370 // 1) = +2.850004; the import account's -2.850004
    assert state.accounts["@import"].raw_usd == usd("0.950001") - usd("2.850004")


def ev_line(event: ev.ImportAccount) -> bytes:
    """The wire line of an import (`hl import-state` writes these)."""
    return encode_json(event)


# ---- the property ------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "pm", "lender", "ghost", "@liquidator", "@import"])
COINS = st.sampled_from(["BTC", "HYPE", "USDC", "NOPE"])
AMOUNTS = st.sampled_from([-1, 0, 1, 10**6, 10**9, usd("1000"), MAX_USD, MAX_USD + 1, 2**61, 2**63]) | st.integers(
    -(10**17), 10**17
)
PRICES = st.sampled_from([-1, 0, 1, 10**5, 10**13, 10**16, 10**16 + 1, 2**63 - 1])
SIZES = st.sampled_from([-1000, 0, 1, 1000, 10**8, 10**18, 10**19])
RATES = st.sampled_from([-1, 0, 1, RATE // 100, RATE // 100 - 1, RATE, RATE + 1, 101 * RATE])
# never a time that moves forward: a rejected event then changes nothing at all (one more than a
# year ahead is itself rejected)
TIMES = st.sampled_from([None, 0, T0, T0 + HOUR_MS + 400 * 24 * HOUR_MS, 2**63 - 1])


def _events() -> st.SearchStrategy:
    base = {"ts": TIMES}
    return st.one_of(
        st.builds(ev.Deposit, account=NAMES, amount=AMOUNTS, token=COINS, **base),
        st.builds(ev.Withdraw, account=NAMES, amount=AMOUNTS, token=COINS, **base),
        st.builds(ev.Transfer, from_=NAMES, to=NAMES, amount=AMOUNTS, **base),
        st.builds(
            ev.SetLeverage,
            account=NAMES,
            coin=COINS,
            leverage=st.sampled_from([-1, 0, 1, 20, 41, 1000]),
            cross=st.booleans(),
            **base,
        ),
        st.builds(ev.IsolatedMargin, account=NAMES, coin=COINS, delta=AMOUNTS, **base),
        st.builds(
            ev.Prices,
            prices=st.dictionaries(
                COINS, st.builds(ev.PricePoint, mark=PRICES, oracle=st.none() | PRICES), max_size=2
            ),
            **base,
        ),
        st.builds(
            ev.Trade,
            coin=COINS,
            px=PRICES,
            sz=SIZES,
            buyer=NAMES,
            seller=NAMES,
            buyer_fee=AMOUNTS,
            liquidation=st.none() | st.builds(ev.LiquidationMark, account=NAMES),
            **base,
        ),
        st.builds(ev.Funding, coin=COINS, rate=st.none() | RATES, premium=st.none() | RATES, **base),
        st.builds(
            ev.Rules,
            name=st.sampled_from([None, "hl-2023", "nope"]),
            ltv=st.none() | st.dictionaries(COINS, RATES, max_size=1),
            caps=st.none() | st.dictionaries(COINS, st.builds(Caps, supply=AMOUNTS, borrow=AMOUNTS), max_size=1),
            pm=st.none()
            | st.builds(
                ev.PmParams,
                liq_ratio=st.none() | RATES,
                partial_step=st.none() | RATES,
                base_apy=st.none() | RATES,
                min_requirement=st.none() | AMOUNTS,
            ),
            **base,
        ),
        st.builds(
            ev.ImportAccount,
            account=NAMES,
            raw_usd=AMOUNTS,
            positions=st.lists(
                st.builds(
                    ev.ImportedPosition,
                    coin=COINS,
                    szi=SIZES,
                    entry_px=PRICES,
                    leverage=st.sampled_from([0, 1, 20, 300]),
                    cross=st.booleans(),
                    raw_usd=AMOUNTS,
                    max_leverage=st.none() | st.sampled_from([0, 5, 201]),
                ),
                max_size=2,
            ),
            mode=st.none() | st.sampled_from(["standard", "unified", "portfolio", "nope"]),
            balances=st.lists(st.builds(ev.ImportedBalance, token=COINS, amount=AMOUNTS), max_size=2),
            **base,
        ),
        st.builds(ev.Token, token=COINS, decimals=st.sampled_from([-1, 0, 8, 9]), **base),
        st.builds(
            ev.SpotTrade,
            base=COINS,
            quote=st.sampled_from(["USDC", "HYPE"]),
            px=PRICES,
            sz=SIZES,
            buyer=NAMES,
            seller=NAMES,
            buyer_fee=AMOUNTS,
            **base,
        ),
        st.builds(ev.ClassTransfer, account=NAMES, amount=AMOUNTS, to_perp=st.booleans(), **base),
        st.builds(
            ev.SetMode, account=NAMES, mode=st.sampled_from(["standard", "unified", "portfolio", "nope"]), **base
        ),
        st.builds(ev.Supply, account=NAMES, amount=AMOUNTS, token=COINS, **base),
        st.builds(ev.WithdrawSupply, account=NAMES, amount=AMOUNTS, token=COINS, **base),
        st.builds(ev.Borrow, account=NAMES, amount=AMOUNTS, token=COINS, **base),
        st.builds(ev.Repay, account=NAMES, amount=AMOUNTS, token=COINS, **base),
        st.builds(
            ev.Market,
            coin=COINS,
            sz_decimals=st.sampled_from([-1, 0, 5, 9]),
            margin_tiers=st.lists(
                st.builds(ev.MarginTier, lower_bound=AMOUNTS, max_leverage=st.sampled_from([0, 1, 20, 50, 201])),
                max_size=3,
            ),
            **base,
        ),
    )


_BASE = encode_state(_book().state)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_events(), min_size=1, max_size=12))
def test_any_rejected_event_leaves_the_encoded_state_unchanged(events: list) -> None:
    engine = Engine(msgspec.msgpack.decode(_BASE, type=State))
    for event in events:
        seq, before = engine.state.next_seq, encode_state(engine.state)
        derived = engine.apply(event)
        if derived and isinstance(derived[0], ev.Rejected):
            assert len(derived) == 1
            after = encode_state(msgspec.structs.replace(engine.state, next_seq=seq))
            assert after == before, f"{event} changed the state"
        assert conservation_errors(engine.state) == [], f"conservation broken after {event}"
        encode_state(engine.state)  # every figure fits the encoding
