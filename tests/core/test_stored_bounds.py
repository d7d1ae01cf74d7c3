"""No reachable state or derived event holds an int the 64-bit encodings cannot (docs/wire-format.md,
"Rule parameters and event time"): the engine refuses what would take a stored figure past its
bound, and what grows with time alone is rebased: a market's funding index (positions settled,
then every index moved to 0) and a lending pool's indices (halved, shares doubled). Multi-year
streams through `Engine.apply` encode, digest, snapshot and conserve."""

from __future__ import annotations

from decimal import Decimal, localcontext
from pathlib import Path

from clearinghouse import lending, margin
from clearinghouse.digest import encode_state, state_digest
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from clearinghouse.state import State
from events.bounds import FIGURE_LIMIT, MAX_USD
from events.schema import Deposit, MarginTier, Market, PricePoint, Prices, Rejected, Trade
from events.units import HOUR_MS, usd
from replay.snapshot import make_snapshot, read_snapshot, write_snapshot
from tests.support.pair import Pair, stamped
from tests.support.rejecting import accepted, rejected
from tests.support.rulebook import (
    BTC_TIERS,
    Book,
    class_transfer,
    deposit,
    funding,
    lend,
    market,
    prices,
    set_mode,
    token,
    trade,
)

T0 = 1_700_000_000_000


def _stores(state: State, tmp_path: Path) -> None:
    """The state encodes, digests and survives a snapshot round trip, and conserves."""
    assert conservation_errors(state) == []
    digest = state_digest(state)
    path = tmp_path / "state.snap"
    write_snapshot(path, make_snapshot(state, 0))
    assert state_digest(read_snapshot(path).load_state()) == digest
    assert len(encode_state(state)) > 0


def test_deposits_stop_at_the_deposited_bound():
    engine = Engine()
    assert (
        "deposited total" in rejected(engine, Deposit(account="a", amount=2**63)).reason
    )  # 9223372036854.775808 USDC
    # 230 deposits of 10^10 USDC: 2.30e18 <= 2^61 = 2.3058e18; the 231st would make 2.31e18
    accepted(engine, *(Deposit(account=f"a{i % 7}", amount=MAX_USD) for i in range(230)))
    assert engine.state.deposited == 230 * MAX_USD <= FIGURE_LIMIT
    assert "deposited total" in rejected(engine, Deposit(account="b", amount=MAX_USD)).reason


def _xyz(engine: Engine) -> None:
    """XYZ: sz_decimals 0 (lot 1 coin, tick 0.000001); a and b hold 10^9 coins bought at 0.000001."""
    accepted(
        engine,
        Market(coin="XYZ", sz_decimals=0, margin_tiers=[MarginTier(0, 10)]),
        Deposit(account="a", amount=usd("1000000")),
        Deposit(account="b", amount=usd("1000000")),
        Trade(coin="XYZ", px=100, sz=10**17, buyer="a", seller="b"),
    )


def test_prices_stop_where_open_interest_would_outgrow_its_bound():
    engine = Engine()
    _xyz(engine)
    # a mark of 92233720368.54775807 (2^63 - 1 in 1e-8; above MAX_PX, which the codec refuses):
    # the open interest alone refuses it here
    assert "worth more than" in rejected(engine, Prices(prices={"XYZ": PricePoint(mark=2**63 - 1)})).reason
    # 10^9 coins at 2,000 is worth 2e12 USDC, above 2^58 micro-USDC (2.88e11 USDC); at 200, 2e11: fine
    assert "worth more than" in rejected(engine, Prices(prices={"XYZ": PricePoint(mark=2_000 * 10**8)})).reason
    derived = engine.apply(Prices(prices={"XYZ": PricePoint(mark=200 * 10**8)}))
    assert derived and not any(isinstance(d, Rejected) for d in derived)  # b's short is taken over: a loss of 2e11
    assert engine.state.markets["XYZ"].mark == 200 * 10**8 and conservation_errors(engine.state) == []


def test_a_trade_above_the_notional_bound_is_rejected():
    engine = Engine()
    _xyz(engine)
    # 10^11 coins at 0.2: 2e10 USDC, above 10^10
    assert "notional" in rejected(engine, Trade(coin="XYZ", px=2 * 10**7, sz=10**19, buyer="a", seller="b")).reason


def test_a_pool_at_full_utilisation_for_three_years(tmp_path: Path):
    """1,000 USDC supplied, all of it borrowed: U = 1, borrow APY 0.05 + 4.75 * (1 - 0.8) = 1.0,
    so the borrow index grows by 1/8760 an hour: (1 + 1/8760)^26280 = 20.08 after three years
    of 365 days. Unrebased it would reach 2.0e19, past 2^64; rebased it stays in [2^60, 2^61)."""
    book = Book()
    book.ok(
        stamped(token("HYPE"), T0),
        prices(HYPE="40"),
        deposit("lender", "1000"),
        class_transfer("lender", "1000", to_perp=False),
        lend("supply", "lender", "1000"),
        deposit("borrower", "1000", token="HYPE"),
        set_mode("borrower", "portfolio"),
        # the next hour boundary settles the new PM account (nothing to do); from here on
        # nothing settles it, so what it borrows stays in its ledger and is never repaid
        stamped(prices(HYPE="40"), T0 + HOUR_MS),
        lend("borrow", "borrower", "1000"),
    )
    hours = 3 * 8760
    for day in range(30, 3 * 365 + 1, 30):
        book.ok(stamped(prices(HYPE="40"), T0 + HOUR_MS + day * 24 * HOUR_MS))
    book.ok(stamped(prices(HYPE="40"), T0 + (1 + hours) * HOUR_MS))
    pool = book.state.pools["USDC"]
    assert pool.hour == T0 // HOUR_MS + 1 + hours
    assert 2**60 <= pool.borrow_index < 2**61 and 2**60 <= pool.supply_index < 2**61
    with localcontext() as ctx:
        ctx.prec = 50
        expected = Decimal(usd("1000")) * (1 + Decimal(1) / 8760) ** hours
    owed = lending.owed(pool, book.state.spot["borrower"].borrowed["USDC"])
    assert abs(owed - expected) / expected < Decimal("1e-9")
    assert lending.lent(pool) == owed
    _stores(book.state, tmp_path)


def test_funding_at_the_cap_for_six_hundred_hours(tmp_path: Path):
    """BTC at 1,000,000: an hour at the 4% cap adds 1e14 * 0.04 = 4e16 to the index (1e-12 USDC
    per coin), 2.4e19 after 600 hours unrebased (past 2^64). The index is rebased to 0 each time
    it would pass 2^61, the positions settled first, so every hour still moves exactly 40,000
    USDC from the long to the short, and the trigger index and the full scan agree throughout."""
    pair = Pair()
    pair.ok(
        market("BTC", 5, BTC_TIERS),
        stamped(prices(BTC="1000000"), T0),
        deposit("long", "30000000"),
        deposit("short", "1000000"),
        trade("BTC", "1000000", "1", "long", "short"),
    )
    for hour in range(1, 601):
        pair.ok(stamped(funding("BTC", rate="1"), T0 + hour * HOUR_MS))  # capped at 4%
        assert abs(pair.state.markets["BTC"].funding_index) <= 2**61
    markets = pair.state.markets
    assert margin.cross_figures(pair.account("short"), markets).account_value == usd("1000000") + 600 * usd("40000")
    assert margin.cross_figures(pair.account("long"), markets).account_value == usd("30000000") - 600 * usd("40000")
    # 57 steps reach 2.28e18 <= 2^61 = 2.3058e18, a 58th would pass it: the funding of hours 58,
    # 115, ..., 571 (58 + 57j) each rebased after settling the 57 hours before it, 10 times: 570
    # hours settled (booked in the all-time totals), the last 30 pending
    assert pair.pos("long", "BTC").funding_all == 570 * usd("40000")
    assert pair.state.markets["BTC"].funding_index == 30 * 4 * 10**16
    _stores(pair.state, tmp_path)
