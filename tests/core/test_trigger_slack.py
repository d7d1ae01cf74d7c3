"""The standard accounts' slack: a fill that leaves the account's buffer covered at its keys is
absorbed with no index work, one past it is re-keyed, a risk-reducing fill and a close are
absorbed; and the decisions stay those of the full scan.

Every case: BTC with one tier of 40x (maintenance = notional / 80), account `a` with 1,000 USDC
long 10 BTC bought at 100 from a market maker, no fees unless said. The index keeps `a`'s keys
`(P, F)` (price, funding); its ledger is `slack = raw_usd + floor`, the floor being the position's
`AV - MM` term with the mark at `P` and the funding index at `F`, less 3 micro-USDC of rounding:
for a long of `s` coins with `raw` USDC of cash, `slack = raw + s * P - ceil(s * P / 80) - s * (F - f0) - 3`
(`f0` the position's funding index; every figure in micro-USDC and whole units as below)."""

from __future__ import annotations

import pytest

from clearinghouse import scopes
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from clearinghouse.triggers import ID_BITS, ID_MASK, TriggerIndex
from events import schema as ev
from events.units import FUNDING_DIV, NTL_DIV, PX, SZ, USD


def _engine(full_scan: bool = False) -> Engine:
    engine = Engine(State(liquidation=LiquidationConfig()), full_scan=full_scan)
    for e in (
        ev.Market(coin="BTC", sz_decimals=3, margin_tiers=[ev.MarginTier(0, 40)]),
        ev.Prices(prices={"BTC": ev.PricePoint(mark=100 * PX)}),
        ev.Deposit(account="mm", amount=10**9 * USD),
        ev.Deposit(account="a", amount=1_000 * USD),
        ev.Trade(coin="BTC", px=100 * PX, sz=10 * SZ, buyer="a", seller="mm"),
    ):
        assert engine.apply(e) == []
    return engine


def _keys(engine: Engine) -> tuple[int, int]:
    """a's (price key, funding key), read from the BTC book's long lists."""
    index = engine.triggers
    assert isinstance(index, TriggerIndex)
    book = index.books["BTC"]
    ident = index.ids.of("a")
    (px,) = [e >> ID_BITS for e in book.long_px if e & ID_MASK == ident]
    (fund,) = [e >> ID_BITS for e in book.long_fund if e & ID_MASK == ident]
    return px, fund


def _slack(engine: Engine) -> int:
    return engine.triggers.accounts["a"].slack  # type: ignore[union-attr]


def _ledger(raw_usdc: int, coins: int, px_key: int, fund_key: int) -> int:
    """The module docstring's `slack` for a long of `coins` BTC (whole coins) and `raw_usdc` of
    cash (whole USDC), written out from the rules: value rounds down, notional and maintenance up,
    funding owed rounds against the account."""
    size = coins * SZ
    value = size * px_key // NTL_DIV
    notional = -(-size * px_key // NTL_DIV)
    maintenance = -(-notional // 80)
    funding = -((size * fund_key) // -FUNDING_DIV)  # owed by a long as the index rises: rounded up
    return raw_usdc * USD + value - maintenance - funding - 3


def _names(engine: Engine, checked: list) -> list[str]:
    """The names of the accounts `checked` recorded, in order."""
    return [n for account in checked for n, a in engine.state.accounts.items() if a is account]


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list:
    """The accounts the engine checks exactly, in order (`_names` gives their names)."""
    seen: list = []
    exact = scopes.below_maintenance

    def counting(account, markets):  # noqa: ANN001, ANN202
        seen.append(account)
        return exact(account, markets)

    import clearinghouse.engine as engine_module

    monkeypatch.setattr(engine_module, "below_maintenance", counting)
    return seen


def test_the_ledger_after_indexing_is_the_buffer_at_the_keys() -> None:
    """Indexed on the first fill: the keys are below the mark (100) and above where a's buffer
    runs out (AV - MM = 10 P - 10 P / 80 >= 0 for every P > 0: at most 1,000 USDC of loss), and
    the slack is a's buffer at them."""
    engine = _engine()
    px_key, fund_key = _keys(engine)
    assert 0 < px_key < 100 * PX and fund_key > 0
    assert _slack(engine) == _ledger(0, 10, px_key, fund_key) > 0


def test_a_fill_inside_the_buffer_is_absorbed(checked: list) -> None:
    """a buys 1 more BTC at 100 (fee 0.5 USDC): at the keys its buffer is still positive (cash
    -100.5, 11 BTC at P > 50: 11 P (79/80) > 543 USDC), so the keys stay, no exact check is made,
    and the slack is the new buffer at the same keys."""
    engine = _engine()
    checked.clear()  # the deposits' checks
    keys = _keys(engine)
    assert keys[0] > 50 * PX
    fill = ev.Trade(coin="BTC", px=100 * PX, sz=1 * SZ, buyer="a", seller="mm", buyer_fee=USD // 2)
    assert engine.apply(fill) == []
    assert _keys(engine) == keys and checked == []
    assert _slack(engine) == _ledger(0, 11, *keys) - USD // 2 - 100 * USD


def test_a_fill_past_the_buffer_is_re_keyed(checked: list) -> None:
    """a buys 30 more BTC at 100: at the old keys (P below 57: 1/8 of the buffer is kept for
    funding) 40 BTC with -3,000 USDC of cash are worth at most 40 * 57 * 79/80 = 2,251.5 < 3,000
    USDC, so the slack cannot pay. The position is re-keyed closer to the mark from the buffer
    (AV 1,000 - MM 4,000 / 80 = 950 USDC, all of it the position's share), without an exact
    check, and the ledger at the new keys is not negative."""
    engine = _engine()
    checked.clear()
    old = _keys(engine)
    assert old[0] < 57 * PX
    assert engine.apply(ev.Trade(coin="BTC", px=100 * PX, sz=30 * SZ, buyer="a", seller="mm")) == []
    assert checked == []
    new = _keys(engine)
    assert old[0] < new[0] < 100 * PX
    assert _slack(engine) == _ledger(-3_000, 40, *new) >= 0


def test_a_risk_reducing_fill_and_a_close_are_absorbed(checked: list) -> None:
    """a sells 4 BTC at 99 (fee 1 USDC): the keys stay and the slack rises to the buffer of 6 BTC
    at them (cash 396 - 1 = 395 USDC); then it sells the other 6 at 99: the position is closed,
    its keys stay in the book with a floor of 0 (the slack is the cash, 989 USDC), and a new long
    of 2 BTC at 100 takes the same keys back, no check made at any step."""
    engine = _engine()
    checked.clear()
    keys = _keys(engine)
    before = _slack(engine)
    assert engine.apply(ev.Trade(coin="BTC", px=99 * PX, sz=4 * SZ, buyer="mm", seller="a", seller_fee=USD)) == []
    assert _keys(engine) == keys and _slack(engine) == _ledger(395, 6, *keys) > before
    assert engine.apply(ev.Trade(coin="BTC", px=99 * PX, sz=6 * SZ, buyer="mm", seller="a")) == []
    assert _keys(engine) == keys and _slack(engine) == 989 * USD
    assert engine.apply(ev.Trade(coin="BTC", px=100 * PX, sz=2 * SZ, buyer="a", seller="mm")) == []
    assert _keys(engine) == keys and _slack(engine) == _ledger(789, 2, *keys)
    assert checked == []


def test_a_tick_across_a_closed_positions_keys_drops_them(checked: list) -> None:
    """a closes its long; BTC then falls to 40, below the keys it left: the tick visits a, whose
    ledger (1,000 USDC of cash, no position) covers it with no exact check, and its keys leave
    the book; the next tick visits no one."""
    engine = _engine()
    checked.clear()
    assert engine.apply(ev.Trade(coin="BTC", px=100 * PX, sz=10 * SZ, buyer="mm", seller="a")) == []
    book = engine.triggers.books["BTC"]  # type: ignore[union-attr]
    assert len(book.long_px) == 1
    assert engine.apply(ev.Prices(prices={"BTC": ev.PricePoint(mark=40 * PX)})) == []
    assert book.long_px == [] and book.long_fund == [] and _slack(engine) == 1_000 * USD
    assert engine.triggers.crossed("BTC", engine.state) == set()  # type: ignore[union-attr]
    assert checked == []


def test_a_tick_the_ledger_covers_needs_no_exact_check(checked: list) -> None:
    """BTC falls to 55, across a's price key (between 56 and 57: 1/8 of half the buffer went to
    funding): a's buffer there is 10 * 55 * 79/80 = 543.1 USDC (cash 0), so its ledger re-keys
    it below 55 with no exact check, the slack its buffer at the new keys."""
    engine = _engine()
    checked.clear()
    px_key, _ = _keys(engine)
    assert 56 * PX < px_key < 57 * PX
    assert engine.apply(ev.Prices(prices={"BTC": ev.PricePoint(mark=55 * PX)})) == []
    assert checked == [] and _keys(engine)[0] < 55 * PX
    assert _slack(engine) == _ledger(0, 10, *_keys(engine)) >= 0


def test_a_tick_the_ledger_cannot_cover_is_checked_exactly(checked: list) -> None:
    """a buys 30 more BTC at 100: 40 BTC on -3,000 USDC of cash, below maintenance when
    40 P - 40 P / 80 < 3,000, at P < 75.95. A fall to 75 crosses its keys and its ledger cannot
    cover it (AV 0 < MM 37.5): it is checked exactly and liquidated."""
    engine = _engine()
    assert engine.apply(ev.Trade(coin="BTC", px=100 * PX, sz=30 * SZ, buyer="a", seller="mm")) == []
    checked.clear()
    derived = engine.apply(ev.Prices(prices={"BTC": ev.PricePoint(mark=75 * PX)}))
    assert _names(engine, checked)[:1] == ["a"]
    assert [d.account for d in derived if isinstance(d, ev.LiquidationTriggered)] == ["a"]


def _edge_stream() -> list:
    """Longs and shorts grown and reduced in steps that cross their keys' slack, with ticks that
    walk the mark to where some are liquidated and fees on every fill."""
    events: list = [
        ev.Market(coin="BTC", sz_decimals=3, margin_tiers=[ev.MarginTier(0, 40)]),
        ev.Prices(prices={"BTC": ev.PricePoint(mark=100 * PX)}),
        ev.Deposit(account="mm", amount=10**9 * USD),
    ]
    names = [f"u{i}" for i in range(12)]
    events += [ev.Deposit(account=n, amount=(200 + 50 * i) * USD) for i, n in enumerate(names)]
    mark = 100
    for step in range(60):
        for i, n in enumerate(names):
            long = i % 2 == 0
            sz = (1 + (step * 7 + i * 3) % 5) * SZ // (1 if step % 4 else 2)
            grows = (step + i) % 3 != 0
            buyer, seller = (n, "mm") if long == grows else ("mm", n)
            events.append(ev.Trade(coin="BTC", px=mark * PX, sz=sz, buyer=buyer, seller=seller, buyer_fee=USD // 10))
        mark += (-3, 2, -1, 4, -2, 1)[step % 6]
        events.append(ev.Prices(prices={"BTC": ev.PricePoint(mark=mark * PX)}))
    return events


def test_absorbed_fills_decide_as_the_full_scan() -> None:
    """The stream above through the index and through the full scan: the same derived events
    (liquidations among them) and the same state."""
    from clearinghouse.digest import state_digest

    runs = []
    for full_scan in (False, True):
        engine = Engine(State(liquidation=LiquidationConfig()), full_scan=full_scan)
        derived = [d for e in _edge_stream() for d in engine.apply(e)]
        runs.append((derived, state_digest(engine.state)))
    assert runs[0] == runs[1]
    assert any(isinstance(d, ev.LiquidationTriggered) for d in runs[0][0])
