"""Unified and portfolio accounts with open positions, seeded in one log from their state bodies
(`clearinghouseState` beside `spotClearinghouseState`, and a `userAbstraction` answer), and the
ledger's `borrowLend` and `send` updates of `misc_events_by_block`.

Every expected figure is worked out by hand from the files in tests/data/hyperliquid (README.md
there gives their shapes' sources) and the rulebook, in the engine's units: micro-USDC, 1e-8 coin
or token, 1e-8 USDC per coin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clearinghouse import lending
from clearinghouse.engine import Engine
from events.adapters.hl_files import ABSTRACTION, HlFileError, sniff
from events.adapters.hl_fills import LogContents, contents_of
from events.adapters.hl_ingest import HlIngest
from events.adapters.hl_misc import MiscError, misc_events
from events.adapters.hl_spot import LENDER
from events.adapters.hyperliquid import meta_markets
from events.codec import encode_json
from events.schema import (
    Borrow,
    ClassTransfer,
    Deposit,
    ImportAccount,
    ImportedBalance,
    ImportedPosition,
    LiquidationTriggered,
    PricePoint,
    Prices,
    Rejected,
    Repay,
    SetMode,
    Supply,
    Token,
    Transfer,
    Withdraw,
    WithdrawSupply,
)
from tests.support.cli import cli, error
from tests.support.hyperliquid import DATA
from tests.support.pair import Pair

META = meta_markets(json.loads((DATA / "meta.json").read_text()))
U, P = "0x" + "a" * 40, "0x" + "b" * 40  # the unified and the portfolio account
T = 1732000000000  # the clearinghouseState's `time`
BTC_LONG = ImportedPosition(coin="BTC", szi=20_000_000, entry_px=10_000_000_000_000, leverage=10)  # 0.2 at 100,000
HYPE_AT_30 = [Token(token="HYPE", decimals=8), Prices(prices={"HYPE": PricePoint(mark=3_000_000_000)})]


def read(*names: str, user: str, known: LogContents | None = None) -> tuple[list[Any], HlIngest]:
    ingest = HlIngest(known or LogContents(), META, user)
    for name in names:
        ingest.read(DATA / name if "/" not in name else Path(name))
    return ingest.finish(), ingest


def figures(engine: Engine, name: str) -> tuple[int, int, int]:
    """(equity, IM, MM) of the account in its margin model."""
    state = engine.state
    r = engine.ctx.models.of(name).requirement(state, state.accounts[name], state.spot.get(name))
    return r.equity, r.initial, r.maintenance


# ---- the userAbstraction answer ----------------------------------------------------------------


def test_a_user_abstraction_answer_is_its_own_shape() -> None:
    """The info API answers `userAbstraction` with a bare JSON string (nktkas/hyperliquid's
    `UserAbstractionResponse`: unifiedAccount, portfolioMargin, disabled, default, dexAbstraction)."""
    assert sniff(DATA / "user_abstraction.json") == (ABSTRACTION, {"abstraction": "unifiedAccount"})


def test_a_user_abstraction_answer_alone_sets_the_mode() -> None:
    """Refused before; now the account the log knows (a deposit made it) becomes unified."""
    events, ingest = read("user_abstraction.json", user=U, known=LogContents(accounts={U}))
    assert events == [SetMode(account=U, mode="unified", id=f"hl:mode:{U}")]
    assert ingest.files[0]["events"] == 1 and ingest.files[0]["format"] == "userAbstraction"
    engine = Engine()
    assert [d for e in [Deposit(account=U, amount=1_000_000), *events] for d in engine.apply(e)] == []
    assert engine.state.spot[U].mode == "unified" and engine.state.accounts[U].raw_usd == 1_000_000
    again, ingest = read("user_abstraction.json", user=U, known=contents_of(events))
    assert again == [] and ingest.files[0]["events"] == 0  # the log's mode is already the answer's


def test_an_answer_the_log_already_holds_sets_nothing(tmp_path: Path) -> None:
    path = tmp_path / "abstraction.json"
    path.write_text(json.dumps({"user": U, "abstraction": "disabled"}))  # a saved answer naming its user
    events, _ = read(str(path), user=None, known=LogContents(accounts={U}))  # type: ignore[arg-type]
    assert events == []


def test_an_unknown_or_contradicted_abstraction_refuses_the_run(tmp_path: Path) -> None:
    word = tmp_path / "abstraction.json"
    word.write_text('"cosmic"')
    with pytest.raises(HlFileError, match="abstraction 'cosmic' is none of"):
        read(str(word), user=U)
    word.write_text('"disabled"')
    with pytest.raises(HlFileError, match="the userAbstraction answer 'disabled' and the spot state's"):
        read(str(word), "hyperliquid_net_pm_subaccount.json", user=U)


def test_an_answer_goes_on_the_seed_of_an_account_its_fills_create() -> None:
    """A mode switch needs no open position: the account its fills seed (HYPE 6.2 long) is
    created unified instead."""
    from tests.support.hyperliquid import CCXT_USER

    events, _ = read("user_abstraction.json", "ccxt_user_fills.json", user=CCXT_USER)
    seed = next(e for e in events if isinstance(e, ImportAccount))
    assert seed.mode == "unified" and not any(isinstance(e, SetMode) for e in events)
    engine = Engine()
    assert not [d for e in events for d in engine.apply(e) if isinstance(d, Rejected)]
    assert engine.state.spot[CCXT_USER].mode == "unified"


# ---- clearinghouseState beside spotClearinghouseState ------------------------------------------


def test_a_unified_account_with_a_btc_position_is_seeded_whole() -> None:
    """BTC 0.2 long at 100,000, mark 101,000 (20,200 / 0.2); spot USDC total 5,000 and 100 HYPE.
    A unified account's USDC is its spot total (its perp summary, accountValue 2,020 and
    totalRawUsd -18,180, is the margin held from it, not its collateral): its ledger is
    5,000 - 0.2 * 100,000 = -15,000, so its value is -15,000 + 0.2 * 101,000 = 5,200 = total +
    unrealizedPnl 200. IM 20,200 / 10 = 2,020; MM 20,200 / (2 * 40) = 252.5."""
    events, ingest = read("user_abstraction.json", "btc_perp_state.json", "unified_spot_state.json", user=U)
    assert events == [
        META["BTC"],
        Prices(prices={"BTC": PricePoint(mark=10_100_000_000_000)}, ts=T, id=f"hl:marks:{U}"),
        Token(token="HYPE", decimals=8),
        ImportAccount(
            account=U,
            raw_usd=-15_000_000_000,
            positions=[BTC_LONG],
            mode="unified",
            balances=[ImportedBalance(token="HYPE", amount=10_000_000_000)],
            ts=T,
            id=f"hl:seed:{U}",
        ),
    ]
    assert [(f["format"], f["records"], f["events"]) for f in ingest.files] == [
        ("userAbstraction", 1, 0),
        ("clearinghouseState", 1, 4),
        ("spotClearinghouseState", 2, 0),
    ]
    engine = Engine()
    assert [d for e in events for d in engine.apply(e)] == []
    assert figures(engine, U) == (5_200_000_000, 2_020_000_000, 252_500_000)
    spot = engine.state.spot[U]
    assert (spot.mode, spot.balances) == ("unified", {"HYPE": 10_000_000_000})
    assert engine.state.markets["BTC"].long_size == 20_000_000


def test_a_portfolio_account_with_a_btc_position_and_a_usdc_borrow_against_hype() -> None:
    """The same BTC long; spot USDC total 3,000 of which 1,000 borrowed and 500 supplied, HYPE
    500 at 30 (LTV 0.65). Its own USDC 2,000 less the position's cost: ledger -18,000; the
    lender supplies 1,000 that it borrows (-17,000), it supplies 500 (-17,500).
    PM figures (rulebook 7): usdc = AV_cross + supplied = (-17,500 + 20,200) + 500 = 3,200 (total
    3,000 + unrealizedPnl 200); req = 20 + MM 252.5 + borrowed 1,000 = 1,272.5; liqValue = 3,200
    + 500 * 30 * (0.5 + 0.65 / 2) = 3,200 + 12,375 = 15,575; what it must keep is req / 0.95 =
    1,339.47368421..., rounded up to 1,339.473685."""
    events, ingest = read(
        "btc_perp_state.json", "pm_borrow_spot_state.json", user=P, known=LogContents(tokens={"HYPE"})
    )
    lend = f"hl:lend:{P}:USDC"
    assert events == [
        META["BTC"],
        Prices(prices={"BTC": PricePoint(mark=10_100_000_000_000)}, ts=T, id=f"hl:marks:{P}"),
        ImportAccount(
            account=P,
            raw_usd=-18_000_000_000,
            positions=[BTC_LONG],
            mode="portfolio",
            balances=[ImportedBalance(token="HYPE", amount=50_000_000_000)],
            ts=T,
            id=f"hl:seed:{P}",
        ),
        Deposit(account=LENDER, amount=1_000_000_000, id=lend),
        ClassTransfer(account=LENDER, amount=1_000_000_000, to_perp=False, id=f"{lend}:to-spot"),
        Supply(account=LENDER, amount=1_000_000_000, id=f"{lend}:supply"),
        Borrow(account=P, amount=1_000_000_000, id=f"hl:borrow:{P}:USDC"),
        Supply(account=P, amount=500_000_000, id=f"hl:supply:{P}:USDC"),
    ]
    assert [f["events"] for f in ingest.files] == [3, 5]
    engine = Engine()
    assert [d for e in HYPE_AT_30 + events for d in engine.apply(e)] == []
    assert figures(engine, P) == (15_575_000_000, 1_339_473_685, 1_339_473_685)
    state = engine.state
    spot, pool = state.spot[P], state.pools["USDC"]
    assert state.accounts[P].raw_usd == -17_500_000_000
    assert lending.owed(pool, spot.borrowed["USDC"]) == 1_000_000_000
    assert lending.claim(pool, spot.supplied["USDC"]) == 500_000_000
    assert (spot.mode, spot.balances) == ("portfolio", {"HYPE": 50_000_000_000})
    again, ingest = read(
        "btc_perp_state.json", "pm_borrow_spot_state.json", user=P, known=contents_of(HYPE_AT_30 + events)
    )
    assert again == [] and [f["dropped"] for f in ingest.files] == [2, 5]  # the market is known, not dropped


def test_a_standard_account_keeps_its_perp_ledger_beside_its_spot_state() -> None:
    """No abstraction, no unified signal: the clearinghouseState's totalRawUsd (-18,180) is the
    ledger, and the spot body's USDC and HYPE are deposited to spot as before."""
    events, _ = read("btc_perp_state.json", "spot_state.json", user=U)
    seed = next(e for e in events if isinstance(e, ImportAccount))
    assert (seed.raw_usd, seed.mode, seed.balances) == (-18_180_000_000, None, [])
    assert not any(isinstance(e, SetMode) for e in events)
    assert [type(e) for e in events[events.index(seed) + 1 :]] == [Deposit, ClassTransfer, Token, Deposit]


def test_a_pooled_perp_state_without_its_spot_state_is_refused() -> None:
    with pytest.raises(HlFileError, match="a unified account keeps its USDC in its spotClearinghouseState"):
        read("user_abstraction.json", "btc_perp_state.json", user=U)


def test_a_perp_state_of_an_account_the_log_holds_is_refused() -> None:
    with pytest.raises(HlFileError, match=f"the log already holds account {U}"):
        read("btc_perp_state.json", user=U, known=LogContents(accounts={U}))


def test_two_bodies_of_one_shape_for_one_account_are_refused() -> None:
    with pytest.raises(HlFileError, match=f"a second clearinghouseState body for {U}"):
        read("btc_perp_state.json", "btc_perp_state.json", user=U)


# ---- import_account's new fields -------------------------------------------------------------


def test_the_new_import_fields_leave_existing_encodings_alone() -> None:
    plain = ImportAccount(account="a", raw_usd=1, positions=[BTC_LONG])
    assert encode_json(plain) == (
        b'{"type":"import_account","account":"a","raw_usd":"0.000001","positions":'
        b'[{"coin":"BTC","szi":"0.2","entry_px":"100000.0","leverage":10}]}'
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mode": "cosmic"}, "unknown mode 'cosmic'"),
        ({"balances": [ImportedBalance(token="USDC", amount=1)]}, "USDC is the account's ledger"),
        ({"balances": [ImportedBalance(token="PURR", amount=1)]}, "unknown token 'PURR'"),
        ({"balances": [ImportedBalance(token="HYPE", amount=0)]}, "the HYPE balance must be positive"),
        ({"balances": [ImportedBalance(token="HYPE", amount=1)] * 2}, "HYPE appears twice in balances"),
    ],
)
def test_an_import_with_a_bad_mode_or_balance_is_rejected_whole(change: dict[str, Any], reason: str) -> None:
    engine = Engine()
    for event in [META["BTC"], *HYPE_AT_30]:
        assert engine.apply(event) == []
    event = ImportAccount(account=P, raw_usd=5_000_000_000, positions=[BTC_LONG], **change)
    (derived,) = engine.apply(event)
    assert isinstance(derived, Rejected) and reason in derived.reason
    assert P not in engine.state.accounts and P not in engine.state.spot
    assert engine.state.markets["BTC"].long_size == 0


def test_an_imported_portfolio_account_is_banded_and_its_collateral_counts_at_once() -> None:
    """Created in portfolio margin with 100 HYPE at 30 and no USDC: liqValue 100 * 30 * 0.825 =
    2,475 + AV_cross (0 + 0.2 * (101,000 - 100,000) = 200) = 2,675 against req 20 + 252.5 = 272.5:
    healthy from its first event, with liquidation on."""
    engine = Engine()
    seed = ImportAccount(
        account=P,
        raw_usd=-20_000_000_000,
        positions=[BTC_LONG],
        mode="portfolio",
        balances=[ImportedBalance(token="HYPE", amount=10_000_000_000)],
    )
    marks = Prices(prices={"BTC": PricePoint(mark=10_100_000_000_000)})
    assert [d for e in [META["BTC"], *HYPE_AT_30, marks, seed] for d in engine.apply(e)] == []
    assert figures(engine, P)[0] == 2_675_000_000
    assert P in engine.ctx.models.banded


# ---- misc events: borrowLend and send ------------------------------------------------------------


def _ledger(delta: dict[str, Any], users: list[str] | None = None) -> dict[str, Any]:
    return {
        "time": "2025-11-25T08:00:00.5",
        "hash": "0x0",
        "inner": {"LedgerUpdate": {"users": users or [P], "delta": delta}},
    }


TS = 1764057600500  # 2025-11-25T08:00:00.5 UTC


@pytest.mark.parametrize(
    ("operation", "token", "amount", "event"),
    [
        (
            "supply",
            "USDC",
            "100.12345678",
            Supply(account=P, amount=100_123_456, ts=TS, id="x"),
        ),  # 8 places: down to 6
        ("withdraw", "HYPE", "2.5", WithdrawSupply(account=P, amount=250_000_000, token="HYPE", ts=TS, id="x")),
        ("borrow", "USDC", "1000.0", Borrow(account=P, amount=1_000_000_000, ts=TS, id="x")),
        ("repay", "USDC", "1000.000001", Repay(account=P, amount=1_000_000_001, ts=TS, id="x")),
    ],
)
def test_borrow_lend_updates_become_the_lending_events(operation: str, token: str, amount: str, event: Any) -> None:
    """nktkas/hyperliquid's ledger delta `{type: "borrowLend", token, operation, amount,
    interestAmount}`; the venue's interest is not booked (the engine accrues its own)."""
    delta = {"type": "borrowLend", "token": token, "operation": operation, "amount": amount, "interestAmount": "0.3"}
    assert misc_events(_ledger(delta), "x") == ([event], None)


@pytest.mark.parametrize(
    ("delta", "reason"),
    [
        ({"type": "borrowLend", "token": "USDC", "operation": "lend", "amount": "1"}, "operation must be one of"),
        ({"type": "borrowLend", "token": "USDC", "operation": "supply", "amount": "0"}, "amount must be positive"),
        ({"type": "borrowLend", "token": "USDC", "operation": "supply"}, "missing amount"),
        (
            {"type": "send", "user": P, "destination": U, "token": "USDC", "amount": "1", "sourceDex": "xyz"},
            "dex 'xyz'",
        ),
        (
            {"type": "send", "user": P, "destination": P, "token": "HYPE", "amount": "1"},
            "spot tokens have one balance",
        ),
        ({"type": "send", "user": P, "destination": P, "token": "USDC", "amount": "1"}, "nothing moves"),
    ],
)
def test_lending_and_sends_that_cannot_be_booked_say_why(delta: dict[str, Any], reason: str) -> None:
    with pytest.raises(MiscError, match=reason):
        misc_events(_ledger(delta), "x")


def _send(source: str, target: str, token: str = "USDC", to: str = U, amount: str = "25.5") -> dict[str, Any]:
    return _ledger(
        {
            "type": "send",
            "user": P,
            "destination": to,
            "sourceDex": source,
            "destinationDex": target,
            "token": token,
            "amount": amount,
            "usdcValue": amount,
            "fee": "1.0",
            "nativeTokenFee": "0.0",
            "nonce": 1,
            "feeToken": "USDC",
        }
    )


def test_a_usdc_send_between_accounts_is_a_transfer_with_the_spot_sides_moved() -> None:
    """25.5 USDC from P's spot balance to U's perp balance: P (standard) moves it to its ledger,
    then the ledgers transfer; U unified: no spot side of its own. The 1 USDC fee is not booked."""
    events, _ = misc_events(_send("spot", ""), "hl:b1:0")
    assert events == [
        ClassTransfer(account=P, amount=25_500_000, to_perp=True, ts=TS, id="hl:b1:0:from-spot"),
        Transfer(from_=P, to=U, amount=25_500_000, ts=TS, id="hl:b1:0"),
    ]
    events, _ = misc_events(_send("", "spot"), "hl:b1:0", modes={U: "unified"})
    assert events == [Transfer(from_=P, to=U, amount=25_500_000, ts=TS, id="hl:b1:0")]
    events, _ = misc_events(_send("", "spot"), "hl:b1:0")
    assert events[-1] == ClassTransfer(account=U, amount=25_500_000, to_perp=False, ts=TS, id="hl:b1:0:to-spot")


def test_a_usdc_send_between_an_accounts_own_balances_is_a_class_transfer() -> None:
    events, _ = misc_events(_send("", "spot", to=P), "hl:b1:0")
    assert events == [ClassTransfer(account=P, amount=25_500_000, to_perp=False, ts=TS, id="hl:b1:0:class")]
    with pytest.raises(MiscError, match="nothing moves"):
        misc_events(_send("", "spot", to=P), "hl:b1:0", modes={P: "portfolio"})


def test_a_token_send_leaves_the_sender_and_reaches_the_receiver() -> None:
    """1.25 HYPE spot to spot: the engine has no spot transfer, so a withdrawal and a deposit."""
    events, _ = misc_events(_send("spot", "spot", token="HYPE", amount="1.25"), "hl:b1:0")
    assert events == [
        Withdraw(account=P, amount=125_000_000, token="HYPE", ts=TS, id="hl:b1:0:out"),
        Deposit(account=U, amount=125_000_000, token="HYPE", ts=TS, id="hl:b1:0:in"),
    ]
    engine = Engine()
    setup = [*HYPE_AT_30, Deposit(account=P, amount=200_000_000, token="HYPE")]
    assert [d for e in setup + events for d in engine.apply(e)] == []
    assert engine.state.spot[P].balances == {"HYPE": 75_000_000}
    assert engine.state.spot[U].balances == {"HYPE": 125_000_000}


def test_borrow_lend_and_send_lines_of_a_node_file_are_booked(tmp_path: Path) -> None:
    """A node block with a supply, a borrow and a send: each is an event now, none a reject."""
    block = {
        "local_time": "2025-11-25T08:00:00.6",
        "block_time": "2025-11-25T08:00:00.5",
        "block_number": 7,
        "events": [
            _ledger(
                {"type": "borrowLend", "token": "HYPE", "operation": "supply", "amount": "10", "interestAmount": "0"}
            ),
            _ledger(
                {"type": "borrowLend", "token": "USDC", "operation": "borrow", "amount": "5", "interestAmount": "0"}
            ),
            _send("", ""),
        ],
    }
    path = tmp_path / "misc"
    path.write_text(json.dumps(block) + "\n")
    events, ingest = read(str(path), user=None)  # type: ignore[arg-type]
    assert events == [
        Supply(account=P, amount=1_000_000_000, token="HYPE", ts=TS, id="hl:b7:0"),
        Borrow(account=P, amount=5_000_000, ts=TS, id="hl:b7:1"),
        Transfer(from_=P, to=U, amount=25_500_000, ts=TS, id="hl:b7:2"),
    ]
    assert ingest.rejects == [] and ingest.files[0]["events"] == 3


# ---- the CLI: seed, run, verify, reconcile -------------------------------------------------------


@pytest.mark.slow
def test_seeded_pooled_accounts_run_verify_and_reconcile(tmp_path: Path) -> None:
    """Both accounts seeded in one `hl ingest` with a fill of P's (it sells 0.1 BTC at 101,000:
    closedPnl 0.1 * (101,000 - 100,000) = 100, fee 0.045% of 10,100 = 4.545), run with
    liquidation on, verified, and reconciled: P's position before the fill is the seeded 0.2."""
    log = str(tmp_path / "log")
    prices = tmp_path / "hype.jsonl"
    prices.write_text(
        '{"type":"token","token":"HYPE","decimals":8}\n{"type":"prices","prices":{"HYPE":{"mark":"30"}}}\n'
    )
    fills = tmp_path / "fills.json"
    fill = {
        "coin": "BTC",
        "px": "101000.0",
        "sz": "0.1",
        "side": "A",
        "time": T + 1000,
        "startPosition": "0.2",
        "dir": "Close Long",
        "closedPnl": "100.0",
        "hash": "0x1",
        "oid": 1,
        "crossed": True,
        "fee": "4.545",
        "tid": 77,
        "feeToken": "USDC",
    }
    fills.write_text(json.dumps([fill]))
    cli("ingest", str(prices), "--log", log)
    unified = ("user_abstraction.json", "btc_perp_state.json", "unified_spot_state.json")
    cli(
        "hl", "ingest", *(str(DATA / n) for n in unified), "--user", U, "--log", log, "--meta", str(DATA / "meta.json")
    )
    pm = [str(DATA / "btc_perp_state.json"), str(DATA / "pm_borrow_spot_state.json"), str(fills)]
    out = json.loads(cli("hl", "ingest", *pm, "--user", P, "--log", log, "--json").stdout)
    assert [f["events"] if "events" in f else f["trades"] for f in out["files"]] == [2, 5, 1]  # BTC listed already
    assert out["seeded"] == [] and out["rejected"] == 0
    cli("run", "--log", log)
    derived = cli("events", "--log", log, "--derived").stdout
    assert derived == ""  # nothing refused, nobody liquidated
    cli("replay", "verify", "--log", log)
    report = json.loads(cli("hl", "reconcile", "--log", log, "--fills", str(fills), "--user", P, "--json").stdout)
    assert report == {
        "fills": 1,
        "start_position": {"match": 1, "gap": 0},
        "closed_pnl": {"match": 1, "mismatch": 0, "unknown_entry": 0},
        "fee": {"match": 1, "mismatch": 0},
        "first_mismatch": None,
    }


def test_a_seeded_portfolio_account_is_watched_alike_by_the_index_and_the_full_scan() -> None:
    """The PM account above, with liquidation on, through both engines (conservation checked after
    every event). BTC at 50,000: usdc (-17,500 + 10,000) + 500 = -7,000, req 20 + 125 + 1,000 =
    1,145, liqValue -7,000 + 12,375 = 5,375: healthy. HYPE then at 5: 500 * 5 * 0.825 = 2,062.5,
    so liqValue -4,937.5 is below the requirement: both engines liquidate it, the same way."""
    events, _ = read("btc_perp_state.json", "pm_borrow_spot_state.json", user=P, known=LogContents(tokens={"HYPE"}))
    pair = Pair()
    pair.ok(*(encode_json(e).decode() for e in HYPE_AT_30 + events))
    assert P in pair.fast.ctx.models.banded and P in pair.full.ctx.models.banded
    pair.ok(encode_json(Prices(prices={"BTC": PricePoint(mark=5_000_000_000_000)})).decode())
    derived = pair.send(encode_json(Prices(prices={"HYPE": PricePoint(mark=500_000_000)})).decode())
    assert derived and isinstance(derived[0], LiquidationTriggered) and derived[0].account == P


@pytest.mark.slow
def test_state_bodies_that_cannot_seed_an_account_refuse_the_run(tmp_path: Path) -> None:
    bad = tmp_path / "state.json"
    bad.write_text(json.dumps({"assetPositions": [{"position": {"coin": "BTC", "szi": "0.2"}}]}))
    with pytest.raises(HlFileError, match="missing field leverage"):
        read(str(bad), user=U)
    with pytest.raises(HlFileError, match="user is not an account name"):
        read("btc_perp_state.json", user="not an address")
    log = str(tmp_path / "log")
    message = error("hl", "ingest", str(bad), "--user", U, "--log", log)
    assert message == f"clearinghouse: error: {bad}: missing field leverage; nothing was ingested"


def test_an_isolated_position_of_a_unified_account_keeps_its_margin_out_of_the_cross_ledger() -> None:
    """tests/data/hl_state.json: BTC 0.5 cross at 95,000 (mark 97,000.5) and ETH -2 isolated at
    3,500 with rawUsd 7,700 (mark 3,400), as a unified account with spot USDC total 5,000. The
    cross ledger is 5,000 - 0.5 * 95,000 - (-2 * 3,500) - 7,700 = -43,200: cross value -43,200 +
    48,500.25 = 5,300.25, the isolated position's 7,700 - 6,800 = 900, in all 6,200.25 = total
    5,000 + unrealizedPnl (1,000.25 + 200)."""
    events, _ = read(str(DATA.parent / "hl_state.json"), "unified_spot_state.json", "user_abstraction.json", user=U)
    seed = next(e for e in events if isinstance(e, ImportAccount))
    assert seed.raw_usd == -43_200_000_000 and seed.mode == "unified"
    engine = Engine()
    assert [d for e in events for d in engine.apply(e)] == []
    equity, _, _ = figures(engine, U)
    assert equity == 6_200_250_000
