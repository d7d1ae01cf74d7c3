"""`clearinghouse hl ingest`: Hyperliquid fills (API userFills, node node_fills_by_block) into trades.

The samples are in tests/data/hyperliquid/ (README.md there gives their sources). Every expected
figure is worked out by hand from the sample, in the engine's units: micro-USDC for fees, 1e-8
coin for sizes, 1e-8 USDC per coin for prices.
"""

from __future__ import annotations

import calendar
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import lz4.frame
import pytest

from clearinghouse import lending
from clearinghouse.engine import IMPORT_ACCOUNT, Engine
from events.adapters.hl_files import (
    NODE_FILLS,
    PERP_STATE,
    SPOT_STATE,
    USER_FILLS,
    HlFileError,
    sniff,
)
from events.adapters.hl_fills import EXTERNAL, OUTSIDE, LogContents, contents_of
from events.adapters.hl_ingest import HlIngest
from events.adapters.hl_misc import MiscError, iso_ms, misc_events
from events.adapters.hl_spot import LENDER
from events.adapters.hyperliquid import meta_markets
from events.codec import encode_json
from events.schema import (
    Borrow,
    ClassTransfer,
    Deposit,
    Funding,
    ImportAccount,
    ImportedPosition,
    LiquidatedPosition,
    LiquidationMark,
    LiquidationRecord,
    Market,
    PricePoint,
    Prices,
    SetMode,
    Supply,
    Token,
    Trade,
    Transfer,
    Withdraw,
)
from tests.support.cli import cli
from tests.support.hyperliquid import CCXT_USER, DATA, A, B, C, D, E

META = meta_markets(json.loads((DATA / "meta.json").read_text()))


def read(*names: str, user: str | None = None, known: LogContents | None = None) -> tuple[list[Any], HlIngest]:
    ingest = HlIngest(known or LogContents(), META, user)
    for name in names:
        ingest.read(DATA / name if "/" not in name else Path(name))
    return ingest.finish(), ingest


def test_the_external_counterparty_is_the_engines_import_account() -> None:
    assert EXTERNAL == IMPORT_ACCOUNT == "@import"


# ---- API userFills (ccxt's static test response: builder fees, liquidation markers, USDH) ------


def test_api_fills_become_trades_against_the_outside_world() -> None:
    events, ingest = read("ccxt_user_fills.json", user=CCXT_USER)
    market, seed, close, liquidated, opened = events
    assert market == META["HYPE"]
    # The first HYPE fill (by time) starts from 6.2 long and closes 1.0 at 25.585 for -4.415:
    # entry = 25.585 - (-4.415) / (+1 * 1.0) = 30.0.
    # Its ledger holds what 6.2 cost at 30.0 (-186 USDC): collateral 0, value the unrealised pnl.
    assert seed == ImportAccount(
        account=CCXT_USER,
        raw_usd=-186_000_000,
        ts=1768713164026,
        id=f"hl:seed:{CCXT_USER}",
        positions=[ImportedPosition(coin="HYPE", szi=620_000_000, entry_px=3_000_000_000, leverage=10)],
    )
    assert close == Trade(
        coin="HYPE",
        px=2_558_500_000,
        sz=100_000_000,
        buyer=EXTERNAL,
        seller=CCXT_USER,
        seller_fee=13_610,
        seller_builder_fee=2_558,
        tid=727991321631002,
        ts=1768713164026,
        id=f"hl:727991321631002:{CCXT_USER}",
    )
    # The user's own liquidation: the marker names the user, with the venue's mark 21.193.
    assert liquidated == Trade(
        coin="HYPE",
        px=2_114_700_000,
        sz=520_000_000,
        buyer=EXTERNAL,
        seller=CCXT_USER,
        seller_fee=47_504,
        tid=345752513742025,
        ts=1768931202995,
        id=f"hl:345752513742025:{CCXT_USER}",
        liquidation=LiquidationMark(account=CCXT_USER, method="market", mark=2_119_300_000),
    )
    assert opened == Trade(
        coin="HYPE",
        px=3_320_900_000,
        sz=73_000_000,
        buyer=CCXT_USER,
        seller=EXTERNAL,
        buyer_fee=12_896,
        buyer_builder_fee=2_424,
        tid=882779857052503,
        ts=1770458548926,
        id=f"hl:882779857052503:{CCXT_USER}",
    )
    # The flx:CRCL fills pay their fee in USDH: left out, with the reason.
    assert [(r["index"], r["tid"], r["reason"]) for r in ingest.rejects] == [
        (2, "202031760494687", "fee in 'USDH': perps settle in USDC here"),
        (1, "1019408913364172", "fee in 'USDH': perps settle in USDC here"),
    ]


def test_the_fee_already_holds_the_builder_fee() -> None:
    """Why a trade books `fee` alone: in both builder fills, fee - builderFee is the base taker
    fee 0.045% less the 4% referral discount (0.0432%), and builderFee is 0.01% of notional, each
    cut down to the micro-USDC (25.585 * 0.000432 = 0.01105272 -> 0.011052)."""

    def micro(amount: Fraction) -> Fraction:
        return Fraction(math.floor(amount * 10**6), 10**6)

    for px, sz, fee, builder in (("25.585", "1.0", "0.01361", "0.002558"), ("33.209", "0.73", "0.012896", "0.002424")):
        notional = Fraction(px) * Fraction(sz)
        assert Fraction(fee) - Fraction(builder) == micro(notional * Fraction("0.000432"))
        assert Fraction(builder) == micro(notional * Fraction("0.0001"))


def test_fills_without_tid_get_an_id_from_the_fill_and_the_entry_from_the_first_closed_pnl() -> None:
    """The SDK cassette (2023: no tid, no feeToken): newest first, the fills of one moment in order."""
    events, ingest = read("sdk_user_fills.json", user="u1")
    market, seed, opened, first_close, second_close = events
    assert market.coin == "BTC" and not ingest.rejects
    assert [t.sz for t in (opened, first_close, second_close)] == [618_000, 367_000, 11_300_000]
    assert [t.buyer for t in (opened, first_close, second_close)] == ["u1", EXTERNAL, EXTERNAL]
    assert all(t.tid is None and t.id.startswith("hl:h") and t.id.endswith(":u1") for t in events[2:])
    assert len({t.id for t in events[2:]}) == 3
    # Seeded from 0.11049 long; grown by 0.00618 at 28830; the first close (0.00367 at 28814,
    # closedPnl -0.068629) shows an entry of 28814 + 0.068629 / 0.00367 = 28832.7 on 0.11667, so
    # the seeded part cost 28832.7 * 0.11667 - 28830 * 0.00618 = 3363.911109 - 178.1694 = 3185.741709.
    entry = round(Fraction("3185.741709") / Fraction("0.11049") * 10**8)
    assert seed.positions == [ImportedPosition(coin="BTC", szi=11_049_000, entry_px=entry, leverage=40)]
    assert seed.raw_usd == -(11_049_000 * entry // 10**10)  # a buy of 0.11049 at the entry, in micro-USDC
    assert seed.ts == 1683245801398


# ---- node node_fills_by_block (built by hand from the documented schema) ----------------------


def test_node_fills_pair_their_legs_by_tid() -> None:
    events, ingest = read("node_fills_by_block.jsonl")
    assert not ingest.rejects
    btc, eth = META["BTC"], META["ETH"]
    t0 = 1764059598111

    def seed(user: str, raw: int, *positions: ImportedPosition) -> ImportAccount:
        return ImportAccount(account=user, raw_usd=raw, positions=list(positions), ts=t0, id=f"hl:seed:{user}")

    assert events == [
        btc,
        eth,
        seed(A, 0),  # opens from flat: created, nothing to seed
        # closes 0.01 of 0.05 at 97000 for +20: entry 97000 - 20 / 0.01 = 95000; cost 0.05 * 95000 = 4750
        seed(B, -4_750_000_000, ImportedPosition(coin="BTC", szi=5_000_000, entry_px=9_500_000_000_000, leverage=40)),
        # short 1.0 buys back 0.5 at 3000 for +50: entry 3000 - 50 / (-1 * 0.5) = 3100; proceeds 3100
        seed(D, 3_100_000_000, ImportedPosition(coin="ETH", szi=-100_000_000, entry_px=310_000_000_000, leverage=25)),
        # long 0.5 liquidated at 3000 for -200: entry 3000 + 200 / 0.5 = 3400; cost 1700
        seed(C, -1_700_000_000, ImportedPosition(coin="ETH", szi=50_000_000, entry_px=340_000_000_000, leverage=25)),
        # short 0.02, deleveraged: buys 0.01 at 96000 for -60: entry 96000 - (-60) / (-1 * 0.01) = 90000
        seed(E, 1_800_000_000, ImportedPosition(coin="BTC", szi=-2_000_000, entry_px=9_000_000_000_000, leverage=40)),
        Trade(
            coin="BTC",
            px=9_700_000_000_000,
            sz=1_000_000,
            buyer=A,
            seller=B,
            buyer_fee=533_500,
            seller_fee=145_500,
            buyer_builder_fee=97_000,
            tid=1001,
            ts=t0,
            id="hl:1001",
        ),
        Trade(
            coin="ETH",
            px=300_000_000_000,
            sz=50_000_000,
            buyer=D,
            seller=C,
            buyer_fee=225_000,
            seller_fee=675_000,
            tid=1002,
            ts=1764059599111,
            id="hl:1002",
            liquidation=LiquidationMark(account=C, method="market", mark=300_150_000_000),
        ),
        Trade(
            coin="BTC",
            px=9_600_000_000_000,
            sz=1_000_000,
            buyer=E,
            seller=A,
            tid=1003,
            adl=True,
            ts=1764059600111,
            id="hl:1003",
        ),
    ]


def test_one_users_legs_of_a_node_file_trade_against_the_outside_world() -> None:
    events, _ = read("node_fills_by_block.jsonl", user=C)
    trade = events[-1]
    assert trade == Trade(
        coin="ETH",
        px=300_000_000_000,
        sz=50_000_000,
        buyer=EXTERNAL,
        seller=C,
        seller_fee=675_000,
        tid=1002,
        ts=1764059599111,
        id=f"hl:1002:{C}",
        liquidation=LiquidationMark(account=C, method="market", mark=300_150_000_000),
    )
    events, _ = read("node_fills_by_block.jsonl", user=D)  # D bought from the liquidated C
    assert events[-1].liquidation == LiquidationMark(account=EXTERNAL, method="market", mark=300_150_000_000, user=C)


def test_an_lz4_file_reads_as_the_plain_one(tmp_path: Path) -> None:
    framed = tmp_path / "15.lz4"
    framed.write_bytes(lz4.frame.compress((DATA / "node_fills_by_block.jsonl").read_bytes()))
    assert sniff(framed)[0] == NODE_FILLS
    assert read(str(framed))[0] == read("node_fills_by_block.jsonl")[0]


def test_a_leg_whose_other_side_never_comes_is_rejected(tmp_path: Path) -> None:
    lines = (DATA / "node_fills_by_block.jsonl").read_text().splitlines()
    block = json.loads(lines[0])
    block["events"] = block["events"][:1]
    half = tmp_path / "half.jsonl"
    half.write_text(json.dumps(block) + "\n")
    events, ingest = read(str(half))
    assert events == [] and [r["reason"] for r in ingest.rejects] == ["only one side of this trade is in the files"]


# ---- precision rules --------------------------------------------------------------------------


def _fill(coin: str, px: str, sz: str, **extra: Any) -> dict[str, Any]:
    return {
        "coin": coin,
        "px": px,
        "sz": sz,
        "side": "B",
        "time": 1,
        "startPosition": "0.0",
        "dir": "Open Long",
        "closedPnl": "0.0",
        "fee": "0.0",
        "tid": 7,
        "feeToken": "USDC",
        **extra,
    }


@pytest.mark.parametrize(
    ("fill", "reason"),
    [
        (_fill("BTC", "97000.5", "0.01"), "px 97000.5 has 6 significant figures; at most 5"),
        (_fill("HYPE", "0.12345", "1"), "px 0.12345 has more than 4 decimals (6 - szDecimals 2)"),
        (_fill("HYPE", "30", "0.001"), "sz 0.001 is not a positive multiple of HYPE's lot (szDecimals 2)"),
        (_fill("HYPE", "30", "1", startPosition="0.005"), "startPosition 0.005 is not on HYPE's lot (szDecimals 2)"),
        (_fill("PURR/USDC", "0.9641", "49"), "spot fill (PURR/USDC): only perp fills are ingested"),
        (_fill("HYPE", "30", "1", side="S"), "side must be B or A, got 'S'"),
        (_fill("HYPE", "30", "1", fee="1e-3"), "fee: not a decimal: '1e-3' (exponents are not allowed)"),
    ],
)
def test_fills_breaking_the_precision_rules_are_rejected_with_the_reason(
    tmp_path: Path, fill: dict[str, Any], reason: str
) -> None:
    source = tmp_path / "fills.json"
    source.write_text(json.dumps([fill]))
    events, ingest = read(str(source), user="u1")
    assert events == [] and [r["reason"] for r in ingest.rejects] == [reason]


def test_integer_prices_are_allowed_whatever_their_figures(tmp_path: Path) -> None:
    source = tmp_path / "fills.json"
    source.write_text(json.dumps([_fill("BTC", "123456", "0.00001")]))
    events, ingest = read(str(source), user="u1")
    assert not ingest.rejects and events[-1].px == 12_345_600_000_000


# ---- shapes -----------------------------------------------------------------------------------


def test_shapes_are_recognised_from_the_content(tmp_path: Path) -> None:
    ws = tmp_path / "ws.json"
    message = {"channel": "userFills", "data": {"isSnapshot": True, "user": "0xab", "fills": [_fill("BTC", "1", "1")]}}
    ws.write_text(json.dumps(message))
    assert sniff(ws) == (USER_FILLS, ([_fill("BTC", "1", "1")], "0xab"))
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"assetPositions": [], "crossMarginSummary": {}}))
    assert sniff(state)[0] == PERP_STATE
    for text, words in (("", "empty"), ('{"a": 1}', "holds no fill array"), ("nope", "not JSON")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(HlFileError, match=words):
            sniff(bad)


def test_added_fields_leave_existing_encodings_alone() -> None:
    plain = Trade(coin="BTC", px=1, sz=1, buyer="a", seller="b", liquidation=LiquidationMark(account="a"))
    assert encode_json(plain) == (
        b'{"type":"trade","coin":"BTC","px":"0.00000001","sz":"0.00000001","buyer":"a",'
        b'"seller":"b","liquidation":{"account":"a"}}'
    )


# ---- the command ------------------------------------------------------------------------------


@pytest.mark.slow  # runs the command in a subprocess
def test_the_command_ingests_once_and_drops_fills_ingested_before(tmp_path: Path) -> None:
    log = tmp_path / "log"
    args = (
        "hl",
        "ingest",
        str(DATA / "ccxt_user_fills.json"),
        "--user",
        CCXT_USER,
        "--log",
        str(log),
        "--meta",
        str(DATA / "meta.json"),
    )
    first = json.loads(cli(*args, "--json").stdout)
    assert first["files"] == [
        {
            "file": str(DATA / "ccxt_user_fills.json"),
            "format": "userFills",
            "fills": 5,
            "trades": 3,
            "dropped": 0,
            "rejected": 2,
        }
    ]
    assert (first["events"], first["next_seq"], first["rejected"]) == (5, 5, 2)
    assert first["seeded"] == [
        {"account": CCXT_USER, "coin": "HYPE", "szi": "6.2", "entry_px": "30.0", "entry_from": "closedPnl"}
    ]
    again = cli(*args).stdout
    assert "userFills: 5 fills -> 0 trades, 3 already in the log, 2 rejected" in again
    assert "appended 0 events" in again and "(next seq 5)" in again
    rejects = [json.loads(line) for line in (log / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 4 and {r["tid"] for r in rejects} == {"202031760494687", "1019408913364172"}
    run = json.loads(cli("run", "--log", str(log), "--liquidation", "off", "--json").stdout)
    assert run["applied"] == 5 and run["derived"] == 0


@pytest.mark.slow  # runs the command in a subprocess
def test_the_command_needs_a_user_for_a_bare_fill_array(tmp_path: Path) -> None:
    result = cli("hl", "ingest", str(DATA / "ccxt_user_fills.json"), "--log", str(tmp_path / "log"), check=False)
    assert result.returncode == 1
    assert "does not say whose fills they are: pass --user ADDRESS; nothing was ingested" in result.stderr
    assert not (tmp_path / "log" / "events").exists() or "next seq" not in result.stdout


# ---- node misc_events_by_block (built by hand from the documented schema) ---------------------


def test_node_times_read_as_ms() -> None:
    """The pair of the same moment in the node's own file header: block_time and a fill's time."""
    assert iso_ms("2025-11-25T08:33:18.111517886") == 1764059598111


def test_misc_events_become_deposits_withdrawals_transfers_and_funding() -> None:
    events, ingest = read("node_fills_by_block.jsonl", "misc_events_by_block.jsonl")
    misc = [e for e in events if not isinstance(e, (Market, ImportAccount, Trade))]
    hour = 1764061200051  # 2025-11-25T09:00:00.051, 1,601,940 ms after 08:33:18.111
    assert misc == [
        Deposit(account=A, amount=10_000_000_000, ts=1764059598111, id="hl:b807847463:0"),
        # one rate per coin and hour (0.0000125 an hour, in 1e-12); the engine pays each position from it
        Funding(coin="BTC", rate=12_500_000, ts=hour, id="hl:funding:BTC:490017"),
        Withdraw(account=B, amount=101_000_000, ts=hour, id="hl:b807850000:1"),  # 100 out, 1 fee
        Transfer(from_=A, to=C, amount=50_000_000, ts=hour, id="hl:b807850000:2"),
        ClassTransfer(account=A, amount=25_500_000, to_perp=False, ts=hour, id="hl:b807850000:3"),
        # the ledger's record of C's cross liquidation: account value -12.5, 1500 of notional, 0.5 ETH
        LiquidationRecord(
            account=C,
            cross=True,
            account_value=-12_500_000,
            notional=1_500_000_000,
            positions=[LiquidatedPosition(coin="ETH", szi=50_000_000)],
            ts=hour,
            id="hl:b807850000:4",
        ),
    ]
    # in time order with the trades: the deposit shares the first trade's moment and follows it
    assert [type(e).__name__ for e in events[7:10]] == ["Trade", "Deposit", "Trade"]
    assert ingest.liquidations == [
        {
            "account": C,
            "ts": hour,
            "leverage_type": "Cross",
            "account_value": "-12.5",
            "positions": [{"coin": "ETH", "szi": "0.5"}],
        }
    ]
    assert [r["reason"] for r in ingest.rejects] == [
        "CDeposit: staking, not a clearing fact",
        "ledger update vaultDeposit: not booked by this version",
    ]
    assert ingest.files[1] == {
        "file": str(DATA / "misc_events_by_block.jsonl"),
        "format": "misc_events_by_block",
        "records": 8,
        "events": 6,  # the liquidation record is one of them
        "dropped": 0,
        "rejected": 2,
    }
    known = LogContents(ids={e.id for e in events if e.id})
    again, ingest = read("misc_events_by_block.jsonl", known=known)
    assert again == [] and ingest.files[0]["dropped"] == 6


# ---- spotClearinghouseState --------------------------------------------------------------------


def test_a_spot_state_seeds_the_spot_balances() -> None:
    events, ingest = read("spot_state.json", user="u9")
    assert events == [
        # USDC lands in the perp ledger and moves to spot: 14.625485 in micro-USDC
        Deposit(account="u9", amount=14_625_485, id="hl:spot:u9:USDC"),
        ClassTransfer(account="u9", amount=14_625_485, to_perp=False, id="hl:spot:u9:USDC:to-spot"),
        Token(token="PURR", decimals=8),  # not listed yet: the finest step the engine keeps
        Deposit(account="u9", amount=200_000_000, token="PURR", id="hl:spot:u9:PURR"),  # 2 PURR in 1e-8
    ]
    assert ingest.files[0] == {
        "file": str(DATA / "spot_state.json"),
        "format": "spotClearinghouseState",
        "records": 2,
        "events": 4,
        "dropped": 0,
        "rejected": 0,
    }
    again, _ = read(
        "spot_state.json", user="u9", known=LogContents(ids={e.id for e in events if e.id}, tokens={"PURR"})
    )
    assert again == []


def test_a_unified_state_sets_the_mode_and_keeps_usdc_in_the_ledger() -> None:
    """HyperLiquid.Net's recorded answer: `tokenToAvailableAfterMaintenance` is only sent for unified
    and portfolio accounts, and without `portfolioMarginEnabled` the account is unified."""
    events, ingest = read("hyperliquid_net_unified_balances.json", user="u9")
    assert events == [
        Deposit(account="u9", amount=2_773_630, id="hl:spot:u9:USDC"),  # 2.77363, the one USDC balance
        Token(token="HYPE", decimals=8),
        Deposit(account="u9", amount=959_057, token="HYPE", id="hl:spot:u9:HYPE"),  # 0.00959057 in 1e-8
        SetMode(account="u9", mode="unified", id="hl:mode:u9"),
    ]
    assert ingest.spot_states == [
        {
            "account": "u9",
            "mode": "unified",
            "balances": [
                {"coin": "USDC", "total": "2.77363", "hold": "0.0", "borrowed": "0", "supplied": "0"},
                {"coin": "HYPE", "total": "0.00959057", "hold": "0.0", "borrowed": "0", "supplied": "0"},
            ],
        }
    ]
    engine = Engine()
    assert [d for e in events for d in engine.apply(e)] == []
    spot = engine.state.spot["u9"]
    assert (spot.mode, spot.balances, engine.state.accounts["u9"].raw_usd) == ("unified", {"HYPE": 959_057}, 2_773_630)


def test_a_portfolio_sub_account_reads_its_abstraction_and_supply() -> None:
    """HyperLiquid.Net's recorded `subAccounts2` entry: a `spotState` with `abstraction` beside it.
    Its USDC is written to 8 decimals; the engine keeps micro-USDC and drops the last two."""
    kind, body = sniff(DATA / "hyperliquid_net_pm_subaccount.json")
    assert kind == SPOT_STATE and body["abstraction"] == "portfolioMargin"
    events, ingest = read("hyperliquid_net_pm_subaccount.json", user="u9")
    assert events == [
        Deposit(account="u9", amount=894_089_960, id="hl:spot:u9:USDC"),  # 894.08996004 rounded down
        # HYPE and UBTC: total 0, nothing to book
        SetMode(account="u9", mode="portfolio", id="hl:mode:u9"),
        Supply(account="u9", amount=746_677_103, id="hl:supply:u9:USDC"),  # 746.67710305 rounded down
    ]
    assert ingest.spot_states[0]["mode"] == "portfolio"
    assert ingest.spot_states[0]["balances"][0]["hold"] == "140.43677994"  # reported, not booked
    # The engine's own rules decide: 894 USDC of value and no volume is below the portfolio margin
    # entry (10,000 USDC of value), so the switch is refused, and a standard account's USDC in
    # the ledger cannot be supplied.
    engine = Engine()
    derived = [d for e in events for d in engine.apply(e)]
    assert [(d.event, d.reason) for d in derived] == [
        (
            "set_mode",
            "portfolio margin needs weighted volume above the minimum or account value above the minimum",
        ),
        ("supply", "amount 746.677103 is above the available 0.0 USDC"),
    ]


def test_a_portfolio_state_seeds_mode_balances_borrows_and_supplies() -> None:
    """A hand-built portfolio body (the fields HyperLiquid.Net documents): USDC total 3000 of which
    1000 borrowed and 500 supplied, HYPE total 400 of which 100 supplied; HYPE listed at 30."""
    known = LogContents(tokens={"HYPE"})
    events, _ = read("pm_spot_state.json", user="u9", known=known)
    lend = "hl:lend:u9:USDC"
    assert events == [
        Deposit(account="u9", amount=2_000_000_000, id="hl:spot:u9:USDC"),  # its own: 3000 - 1000
        Deposit(account="u9", amount=40_000_000_000, token="HYPE", id="hl:spot:u9:HYPE"),
        SetMode(account="u9", mode="portfolio", id="hl:mode:u9"),
        Deposit(account=LENDER, amount=1_000_000_000, id=lend),  # the outside world supplies the loan
        ClassTransfer(account=LENDER, amount=1_000_000_000, to_perp=False, id=f"{lend}:to-spot"),
        Supply(account=LENDER, amount=1_000_000_000, id=f"{lend}:supply"),
        Borrow(account="u9", amount=1_000_000_000, id="hl:borrow:u9:USDC"),
        Supply(account="u9", amount=500_000_000, id="hl:supply:u9:USDC"),
        Supply(account="u9", amount=10_000_000_000, token="HYPE", id="hl:supply:u9:HYPE"),
    ]
    engine = Engine()
    before = [Token(token="HYPE", decimals=8), Prices(prices={"HYPE": PricePoint(mark=3_000_000_000)})]
    # value at the switch: 2000 + 400 * 30 = 14,000 > 10,000; borrow headroom 400 * 30 * 0.65 = 7,800
    assert [d for e in before + events for d in engine.apply(e)] == []
    state = engine.state
    spot, usdc, hype = state.spot["u9"], state.pools["USDC"], state.pools["HYPE"]
    assert spot.mode == "portfolio"
    assert spot.balances == {"HYPE": 30_000_000_000}  # 400 - 100 supplied
    assert state.accounts["u9"].raw_usd == 2_500_000_000  # 2000 own + 1000 borrowed - 500 supplied
    assert lending.claim(usdc, spot.supplied["USDC"]) == 500_000_000
    assert lending.claim(hype, spot.supplied["HYPE"]) == 10_000_000_000
    assert lending.owed(usdc, spot.borrowed["USDC"]) == 1_000_000_000
    assert lending.lent(usdc) == 1_000_000_000 and lending.supplied(usdc) == 1_500_000_000
    again, _ = read("pm_spot_state.json", user="u9", known=contents_of(before + events))
    assert again == []


def test_a_mode_the_log_already_set_is_not_set_again() -> None:
    events, _ = read("hyperliquid_net_unified_balances.json", user="u9", known=LogContents(modes={"u9": "unified"}))
    assert not any(isinstance(e, SetMode) for e in events)
    assert contents_of([SetMode(account="u9", mode="portfolio")]).modes == {"u9": "portfolio"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"tokenToAvailableAfterMaintenance": [], "balances": [{"coin": "USDC", "total": "5", "borrowed": "1"}]},
            "USDC borrowed by a unified account: only portfolio margin borrows",
        ),
        (
            {"portfolioMarginEnabled": True, "balances": [{"coin": "USDC", "total": "5", "borrowed": "6"}]},
            "borrowed USDC above total: the account's own balance would be negative",
        ),
        (
            {"portfolioMarginEnabled": True, "balances": [{"coin": "HYPE", "total": "1", "supplied": "2"}]},
            "supplied HYPE above total: total holds what is supplied",
        ),
        ({"balances": [{"coin": "HYPE", "hold": "1"}]}, "total of HYPE is missing"),
        ({"balances": [{"coin": "HYPE", "total": "-1"}]}, "total of HYPE is negative"),
        (
            {"balances": [{"coin": "HYPE", "total": "1.000000001"}]},
            "total of HYPE: '1.000000001' has more than 8 decimals",
        ),
    ],
)
def test_borrows_and_supplies_that_do_not_fit_are_rejected_with_the_reason(
    tmp_path: Path, body: dict[str, Any], reason: str
) -> None:
    path = tmp_path / "spot.json"
    path.write_text(json.dumps(body))
    events, ingest = read(str(path), user="u9")
    assert [r["reason"] for r in ingest.rejects] == [reason]
    assert not any(isinstance(e, (Deposit, Borrow, Supply)) for e in events)


def test_an_unknown_abstraction_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spot.json"
    path.write_text(json.dumps({"abstraction": "cosmic", "balances": []}))
    with pytest.raises(HlFileError, match="abstraction 'cosmic' is none of portfolioMargin, unifiedAccount"):
        read(str(path), user="u9")


# ---- one-user fills on a log without the outside world -----------------------------------------


def test_one_user_fills_of_a_known_user_bring_the_outside_world_in() -> None:
    """The user exists (a deposit made it) but no import ever ran, so `@import` does not: an empty
    import of `@outside` creates it before the trades."""
    events, _ = read("sdk_user_fills.json", user="u9", known=LogContents(accounts={"u9"}))
    assert events[0] == META["BTC"]
    assert events[1] == ImportAccount(account=OUTSIDE, raw_usd=0, id="hl:seed:@outside")
    assert [type(e) for e in events[2:]] == [Trade, Trade, Trade]
    engine = Engine()
    assert [d for e in [Deposit(account="u9", amount=1_000_000_000), *events] for d in engine.apply(e)] == []
    assert engine.state.accounts[OUTSIDE].raw_usd == 0 and IMPORT_ACCOUNT in engine.state.accounts


def test_the_outside_world_is_not_seeded_twice() -> None:
    # the log holds an import (so @import exists): the trades need nothing more
    known = contents_of([ImportAccount(account="x", raw_usd=0), Deposit(account="u9", amount=1)])
    events, _ = read("sdk_user_fills.json", user="u9", known=known)
    assert not any(isinstance(e, ImportAccount) for e in events)
    # a new user is seeded by its own import, which creates @import: no @outside either
    events, _ = read("sdk_user_fills.json", user="u9")
    assert [e.account for e in events if isinstance(e, ImportAccount)] == ["u9"]


def test_funding_rates_are_read_under_either_spelling() -> None:
    """A Funding event whose deltas write `funding_rate` (the snake_case of the other per-delta
    fields, as the public node excerpt cited in tests/data/hyperliquid/README.md shows) gives the
    same events as `fundingRate`: one rate per coin, in 1e-12 an hour. Figures made up."""
    moment = calendar.timegm((2026, 6, 11, 2, 0, 0)) * 1000 + 52  # 2026-06-11T02:00:00.052134000
    deltas = [
        {"user": A, "coin": "ETH", "funding_amount": "1.25", "szi": "2.0", "funding_rate": "-0.0000412"},
        {"user": B, "coin": "BTC", "funding_amount": "0.5", "szi": "-0.1", "funding_rate": "0.0000125"},
    ]
    item = {"time": "2026-06-11T02:00:00.052134000", "hash": "0x0", "inner": {"Funding": {"deltas": deltas}}}
    events, note = misc_events(item, "hl:b1:0")
    hour = moment // 3_600_000
    assert note is None and events == [
        Funding(coin="BTC", rate=12_500_000, ts=moment, id=f"hl:funding:BTC:{hour}"),
        Funding(coin="ETH", rate=-41_200_000, ts=moment, id=f"hl:funding:ETH:{hour}"),
    ]
    del deltas[1]["funding_rate"]
    with pytest.raises(MiscError, match="a funding delta without fundingRate"):
        misc_events(item, "hl:b1:0")


@pytest.mark.slow  # runs the command in a subprocess
def test_one_user_fills_after_a_spot_state_run_on_a_log_without_imports(tmp_path: Path) -> None:
    """The spot state creates the account by its deposits; the fills read after it find the user
    known and no outside world, so `@outside`'s empty import comes first and every trade lands."""
    log = str(tmp_path / "log")
    spot = json.loads(
        cli("hl", "ingest", str(DATA / "spot_state.json"), "--user", "u9", "--log", log, "--json").stdout
    )
    assert spot["spot_states"][0]["mode"] == "standard" and spot["events"] == 4
    fills = json.loads(
        cli("hl", "ingest", str(DATA / "sdk_user_fills.json"), "--user", "u9", "--log", log, "--json").stdout
    )
    assert (fills["events"], fills["seeded"]) == (5, [])  # BTC's market, @outside's import, 3 trades
    run = json.loads(cli("run", "--log", log, "--liquidation", "off", "--json").stdout)
    assert run["applied"] == 9 and run["derived"] == 0


@pytest.mark.parametrize(
    ("delta", "reason"),
    [
        ({"leverageType": "Portfolio"}, "liquidation leverageType must be Cross or Isolated, got 'Portfolio'"),
        (
            {"leverageType": "Cross", "liquidatedPositions": {"coin": "ETH"}},
            "liquidatedPositions is not a list of {coin, szi}",
        ),
        (
            {"leverageType": "Isolated", "liquidatedPositions": [{"coin": "ETH", "szi": "x"}]},
            "szi: not a decimal: 'x' (expected an optional sign, then digits with at most one point)",
        ),
        (
            {"leverageType": "Cross", "accountValue": "1e3"},
            "accountValue: not a decimal: '1e3' (exponents are not allowed)",
        ),
    ],
)
def test_a_liquidation_record_that_cannot_be_read_is_rejected_with_the_reason(
    delta: dict[str, Any], reason: str
) -> None:
    item = {
        "time": "2025-11-25T09:00:00.051",
        "inner": {"LedgerUpdate": {"users": [C], "delta": {"type": "liquidation", **delta}}},
    }
    with pytest.raises(MiscError) as caught:
        misc_events(item, "hl:b1:0")
    assert str(caught.value) == reason


def test_an_isolated_liquidation_record_without_figures_keeps_what_it_has() -> None:
    item = {
        "time": "2025-11-25T09:00:00.051",
        "inner": {
            "LedgerUpdate": {
                "users": [C],
                "delta": {
                    "type": "liquidation",
                    "leverageType": "Isolated",
                    "liquidatedPositions": [{"coin": "ETH", "szi": -2}],
                },
            }
        },
    }
    events, _ = misc_events(item, "hl:b1:0")
    assert events == [
        LiquidationRecord(
            account=C,
            cross=False,
            positions=[LiquidatedPosition(coin="ETH", szi=-200_000_000)],
            ts=1764061200051,
            id="hl:b1:0",
        )
    ]
