"""`clearinghouse hl reconcile`: a log replayed beside Hyperliquid's fills. Every expected figure is
worked out by hand from the samples in tests/data/hyperliquid/ (README.md there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from events.adapters.hl_fills import LogContents
from events.adapters.hl_ingest import HlIngest, fill_legs
from events.adapters.hyperliquid import meta_markets
from events.schema import (
    Deposit,
    LiquidatedPosition,
    LiquidationRecord,
    MarginTier,
    Market,
    PricePoint,
    Prices,
    SetLeverage,
    Trade,
)
from replay.hl_reconcile import Report, direction, reconcile, reconcile_html
from tests.support.cli import cli
from tests.support.hyperliquid import CCXT_USER, DATA, C, D

META = meta_markets(json.loads((DATA / "meta.json").read_text()))


def _ingest(*paths: Path, user: str | None = None, known: LogContents | None = None) -> list[Any]:
    ingest = HlIngest(known or LogContents(), META, user)
    for path in paths:
        ingest.read(path)
    return ingest.finish()


def _reconcile(log: list[Any], fills: Path, user: str | None = None) -> Report:
    legs, unread = fill_legs(fills, user)
    return reconcile(log, legs, unread)


def test_directions_follow_hyperliquids_words() -> None:
    assert [direction(0, True, 1), direction(0, False, 1), direction(5, True, 1), direction(-5, False, 1)] == [
        "Open Long",
        "Open Short",
        "Open Long",
        "Open Short",
    ]
    assert [direction(5, False, 5), direction(-5, True, 2), direction(5, False, 6), direction(-5, True, 6)] == [
        "Close Long",
        "Close Short",
        "Long > Short",
        "Short > Long",
    ]


def test_the_api_sample_reconciles_and_its_liquidation_is_compared() -> None:
    fills = DATA / "ccxt_user_fills.json"
    report = _reconcile(_ingest(fills, user=CCXT_USER), fills, CCXT_USER)
    assert report.summary() == {
        "fills": 3,  # the two USDH fills cannot be read
        "start_position": {"match": 3, "gap": 0},
        # -4.415 = (25.585 - 30) * 1.0; -46.0356 = (21.147 - 30) * 5.2; 0 on the opening fill
        "closed_pnl": {"match": 3, "mismatch": 0, "unknown_entry": 0},
        "fee": {"match": 3, "mismatch": 0},
        "first_mismatch": None,
    }
    assert report.unread == 2 and report.not_in_log == 0
    # At the venue's mark 21.193, the account (seeded with collateral 0: ledger -186, then +25.585
    # - 0.01361 from the first close) is worth -160.42861 + 5.2 * 21.193 = -50.22501 against a
    # maintenance of 110.2036 / 20 = 5.51018: below two thirds of it, so the backstop.
    assert report.liquidations == [
        {
            "tid": 345752513742025,
            "account": CCXT_USER,
            "coin": "HYPE",
            "venue": "market",
            "engine": "backstop",
            "agree": False,
        }
    ]


def test_a_closed_pnl_the_engine_does_not_reach_is_reported() -> None:
    """The 2023 sample: the first close implies an entry of 28832.7 (28814 + 0.068629 / 0.00367),
    which the second close (-3.9663 on 0.113 at 28797) does not follow: the engine realises
    (28797 - 28832.7) * 0.113 = -4.0341."""
    fills = DATA / "sdk_user_fills.json"
    report = _reconcile(_ingest(fills, user="u1"), fills, "u1")
    summary = report.summary()
    assert summary["closed_pnl"] == {"match": 2, "mismatch": 1, "unknown_entry": 0}
    assert summary["start_position"] == {"match": 3, "gap": 0} and summary["fee"] == {"match": 3, "mismatch": 0}
    assert summary["first_mismatch"] == {
        "tid": None,
        "user": "u1",
        "coin": "BTC",
        "time": 1683245873728,
        "field": "closedPnl",
        "venue": "-3.9663",
        "engine": "-4.0341",
    }


def test_a_gap_is_reported_and_resynchronised_by_an_adjustment(tmp_path: Path) -> None:
    """Two windows of the API sample with the liquidation fill between them left out: the second
    window's fill starts from 0.0 where the engine still holds 5.2."""
    fills = json.loads((DATA / "ccxt_user_fills.json").read_text())
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps([fills[4]]))  # closes 1.0 of 6.2 at 25.585
    second.write_text(json.dumps([fills[0]]))  # opens 0.73 long at 33.209 from flat
    log = _ingest(first, user=CCXT_USER)
    log += _ingest(second, user=CCXT_USER, known=LogContents(accounts={CCXT_USER}, markets={"HYPE"}))
    report = _reconcile(log, second, CCXT_USER)
    assert report.summary() == {
        "fills": 1,
        "start_position": {"match": 0, "gap": 1},
        "closed_pnl": {"match": 1, "mismatch": 0, "unknown_entry": 0},  # an opening fill realises nothing
        "fee": {"match": 1, "mismatch": 0},
        "first_mismatch": {
            "tid": 882779857052503,
            "user": CCXT_USER,
            "coin": "HYPE",
            "time": 1770458548926,
            "field": "startPosition",
            "venue": "0.0",
            "engine": "5.2",
        },
    }
    assert report.adjustments == [
        {
            "tid": 882779857052503,
            "user": CCXT_USER,
            "coin": "HYPE",
            "size": "-5.2",
            "px": "33.209",
            "id": f"hl:adjust:882779857052503:{CCXT_USER}",
            "refused": None,
        }
    ]


def test_node_fills_reconcile_leg_by_leg_and_the_marked_liquidation_is_compared() -> None:
    fills = DATA / "node_fills_by_block.jsonl"
    report = _reconcile(_ingest(fills), fills)
    assert report.summary() == {
        "fills": 6,
        "start_position": {"match": 6, "gap": 0},
        "closed_pnl": {"match": 6, "mismatch": 0, "unknown_entry": 0},
        "fee": {"match": 6, "mismatch": 0},
        "first_mismatch": None,
    }
    # C at the venue's mark 3001.5: ledger -1700 (0.5 at 3400) + 0.5 * 3001.5 = -199.25 against a
    # maintenance of 1500.75 / 50 = 30.015: the backstop, where the venue sold in the market.
    assert report.liquidations == [
        {"tid": 1002, "account": C, "coin": "ETH", "venue": "market", "engine": "backstop", "agree": False}
    ]
    assert "Hyperliquid reconciliation" in reconcile_html(report)


def test_an_unknown_entry_is_not_counted_as_a_pnl_mismatch(tmp_path: Path) -> None:
    """Hand-built windows: the first opens 1.0 at 30; the second closes 1.0 at 31 from 2.0 (a fill
    outside both added 1.0 at a price no file shows). The gap is adjusted at 31, so the engine
    cannot know the entry the venue's closedPnl 1.5 comes from."""

    def fill(px: str, start: str, side: str, direction: str, pnl: str, tid: int, time: int) -> dict[str, Any]:
        return {
            "coin": "HYPE",
            "px": px,
            "sz": "1.0",
            "side": side,
            "time": time,
            "startPosition": start,
            "dir": direction,
            "closedPnl": pnl,
            "fee": "0.0",
            "tid": tid,
            "feeToken": "USDC",
        }

    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps([fill("30.0", "0.0", "B", "Open Long", "0.0", 1, 1_000)]))
    second.write_text(json.dumps([fill("31.0", "2.0", "A", "Close Long", "1.5", 2, 2_000)]))
    log = _ingest(first, user="u1") + _ingest(second, user="u1", known=LogContents(accounts={"u1"}, markets={"HYPE"}))
    report = _reconcile(log, second, "u1")
    assert report.summary()["start_position"] == {"match": 0, "gap": 1}
    assert report.summary()["closed_pnl"] == {"match": 0, "mismatch": 0, "unknown_entry": 1}
    assert report.adjustments[0]["size"] == "1.0" and report.adjustments[0]["refused"] is None


@pytest.mark.slow  # runs the command in a subprocess
def test_the_command_prints_the_json_and_writes_the_html(tmp_path: Path) -> None:
    log, fills = tmp_path / "log", DATA / "node_fills_by_block.jsonl"
    cli("hl", "ingest", str(fills), "--log", str(log), "--meta", str(DATA / "meta.json"))
    out = tmp_path / "report.html"
    result = cli("hl", "reconcile", "--log", str(log), "--fills", str(fills), "--json", "--out", str(out))
    result = json.loads(result.stdout)
    assert list(result) == ["fills", "start_position", "closed_pnl", "fee", "first_mismatch"]
    assert result["fills"] == 6 and result["first_mismatch"] is None
    assert "<h1>Hyperliquid reconciliation</h1>" in out.read_text()


def test_ledger_liquidation_records_are_compared_with_the_engines_decision() -> None:
    """Three hand-built records at the moment of the node sample's liquidation (08:33:19.111):
    C's cross book, and D's cross book and an isolated ETH position that D does not hold."""
    fills, misc = DATA / "node_fills_by_block.jsonl", DATA / "misc_liquidation_records.jsonl"
    report = _reconcile(_ingest(fills, misc), fills)
    moment = 1764059599111
    assert report.records == [
        # C's marked fill came first at that moment: the decision before it, at the venue's mark
        # 3001.5: -1700 + 0.5 * 3001.5 = -199.25 below two thirds of 30.015, the backstop
        {
            "id": "hl:b807847465:0",
            "account": C,
            "time": moment,
            "scope": "cross",
            "venue_account_value": "-199.25",
            "engine": "backstop",
            "engine_equity": "-199.25",
            "agree": True,
        },
        # D (seeded short 1.0 at 3100: closedPnl 50 = -(3000 - 3100) * 0.5) bought 0.5 at 3000 for a
        # fee of 0.225: 3100 - 1500 - 0.225 - 0.5 * 3001.5 = 99.025 against 1500.75 / 50 = 30.015
        {
            "id": "hl:b807847465:1",
            "account": D,
            "time": moment,
            "scope": "cross",
            "venue_account_value": "99.025",
            "engine": "not triggered",
            "engine_equity": "99.025",
            "agree": False,
        },
        {
            "id": "hl:b807847465:2",
            "account": D,
            "time": moment,
            "scope": "isolated ETH",
            "venue_account_value": "99.025",
            "engine": "no such isolated position",
            "engine_equity": None,
            "agree": False,
        },
    ]
    assert report.summary()["fills"] == 6  # the records leave the fill counts as they were
    assert "Ledger liquidation records" in reconcile_html(report)


@pytest.mark.slow  # runs the command in a subprocess
def test_the_command_lists_the_ledger_liquidation_records(tmp_path: Path) -> None:
    log, fills = tmp_path / "log", DATA / "node_fills_by_block.jsonl"
    misc = DATA / "misc_liquidation_records.jsonl"
    cli("hl", "ingest", str(fills), str(misc), "--log", str(log), "--meta", str(DATA / "meta.json"))
    out = cli("hl", "reconcile", "--log", str(log), "--fills", str(fills)).stdout
    assert f"liquidation record hl:b807847465:0 of {C} (cross): venue liquidated, engine backstop" in out
    assert f"liquidation record hl:b807847465:2 of {D} (isolated ETH): venue liquidated, engine no such" in out


def test_a_record_is_judged_on_the_scope_it_names() -> None:
    """u holds 1 ETH isolated at 10x from 3000 with 1000 deposited, the mark falls to 2750: its
    isolated margin 300 - 250 = 50 is below 2750 / 50 = 55 (above two thirds of it: the market
    phase), while its cross book, 1000 - 300 = 700 with nothing to maintain, is not."""
    tiers = [MarginTier(0, 25), MarginTier(100_000_000_000_000, 15)]
    log = [
        Market(coin="ETH", sz_decimals=4, margin_tiers=tiers),
        Deposit(account="u", amount=1_000_000_000),
        Deposit(account="c", amount=100_000_000_000),
        SetLeverage(account="u", coin="ETH", leverage=10, cross=False),
        Prices(prices={"ETH": PricePoint(mark=300_000_000_000)}),
        Trade(coin="ETH", px=300_000_000_000, sz=100_000_000, buyer="u", seller="c"),
        Prices(prices={"ETH": PricePoint(mark=275_000_000_000)}),
        LiquidationRecord(account="u", cross=True, id="r1"),
        LiquidationRecord(
            account="u", cross=False, positions=[LiquidatedPosition(coin="ETH", szi=100_000_000)], id="r2"
        ),
    ]
    report = reconcile(log, [])
    assert [(r["id"], r["scope"], r["engine"], r["engine_equity"]) for r in report.records] == [
        ("r1", "cross", "not triggered", "700.0"),
        ("r2", "isolated ETH", "market", "50.0"),
    ]
