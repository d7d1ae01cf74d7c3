"""`replay audit` as a user runs it (subprocess, real logs): the JSON figures, the shortfall, the
marks at which the account would have survived, the decision rows of the HTML report, and the
report in a real browser (headless Chromium).

Every expected value is worked out by hand from docs/rules.md next to its assertion. Markets:
ETH with sz_decimals 4 (tick 0.01) and SOL with 2, one tier at 10x (MM = notional / 20, l = 1/20
in the liquidation price); BTC with sz_decimals 3 and one tier at 40x (MM = notional / 80).
Cash convention: a buy of s at p debits s * p; AV = rawUsd + sum(szi * mark).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.browser import chromium, open_in_browser
from tests.support.cli import cli
from tests.support.pair import TEN_X, stamped
from tests.support.rulebook import deposit, market, prices, trade

pytestmark = pytest.mark.slow  # the command in subprocesses, a browser

T0 = 1_700_000_000_000  # ms
FORTY_X = [("0", 40)]


def _log(tmp_path: Path, lines: list[str], *run_flags: str) -> Path:
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    cli("run", "--log", str(log), *run_flags)
    return log


def _audit(log: Path, account: str, *extra: str) -> dict:
    return json.loads(cli("replay", "audit", "--log", str(log), "--account", account, "--json", *extra).stdout)


# ---- one position, a tick below maintenance ----------------------------------------------------------


def test_one_btc_position_a_tick_below_maintenance(tmp_path: Path) -> None:
    log = _log(
        tmp_path,
        [
            market("BTC", 3, FORTY_X),
            stamped(prices(BTC="100"), T0),
            deposit("mm", "1000000"),
            deposit("bull", "1000"),
            stamped(trade("BTC", "100", "200", "bull", "mm"), T0 + 1_000),  # seq 4
            stamped(prices(BTC="98"), T0 + 2_000),  # seq 5
            stamped(prices(BTC="96.2"), T0 + 3_000),  # seq 6
        ],
    )
    # bull: 200 BTC long at 100 on 1,000: raw = 1,000 - 20,000 = -19,000.
    # At 98: AV = -19,000 + 19,600 = 600 >= MM = 19,600 / 80 = 245: above maintenance (seq 5).
    # At 96.2: AV = -19,000 + 19,240 = 240 < MM = 19,240 / 80 = 240.5: 0.5 short, 0.5 / 240.5 =
    # 0.2079% of maintenance; 3 * 240 >= 2 * 240.5: the market phase sells 200 at 96.2 (no
    # slippage), fee 0.045% of 19,240 = 8.658; bull keeps -19,000 + 19,240 - 8.658 = 231.342.
    # Survival (rules 2): P = mark - side * (AV - MM) / |szi| / (1 - l) with l = 1/80
    # = 96.2 + 0.5 / (200 * 79/80) = 96.2 + 0.5 / 197.5 = 96.2025316455..., rounded up (against
    # the long) to the 1e-8: 96.20253165; check: AV(P) = 200P - 19,000 = 2.5P = MM(P) at 96.2025316.
    # The move to it, 0.00253165 / 96.2 = 0.0026%, shows as 0.00 (two decimals).
    # The price move: 98 -> 96.2 since seq 5 is -1.8 / 98 = -1.8367% -> -1.84.
    out = _audit(log, "bull")
    (episode,) = out["liquidations"]
    assert (episode["number"], episode["cause"], episode["time"]) == (1, 6, T0 + 3_000)
    assert episode["marks"] == {"BTC": "96.2"}
    assert episode["previous"] == {"seq": 5, "time": T0 + 2_000, "marks": {"BTC": "98.0"}}
    assert episode["before"] == [
        {
            "scope": "cross",
            "equity": "240.0",
            "maintenance": "240.5",
            "phase": "market",
            "shortfall": "0.5",
            "shortfall_pct": "0.21",
            "survival": {"method": "liquidation price", "coin": "BTC", "mark": "96.20253165", "move_pct": "0.00"},
        }
    ]
    assert [(a["type"], a["coin"], a["sz"], a["px"], a["fee"]) for a in episode["actions"]] == [
        ("liquidation_fill", "BTC", "-200.0", "96.2", "8.658")
    ]
    assert episode["after"] == [{"scope": "cross", "equity": "231.342", "maintenance": "0.0"}]
    assert episode["kept"] == "231.342"
    assert episode["why"] == (
        "The cross book was 0.5 USDC below maintenance (0.21% of maintenance): equity 240.0 against maintenance "
        "240.5 USDC, so the market phase closed positions. It was found below at the prices event at seq 6; since "
        "seq 5 (2023-11-14 22:13:22.000Z), the last time the account was above maintenance, the marks moved: BTC from "
        "98.0 to 96.2 (-1.84%). It would have stayed at maintenance with BTC at 96.20253165 or above (+0.00% from the "
        "trigger's mark), the position's liquidation price under the log's rules. After the event its account value "
        "was 231.342 USDC."
    )
    # The window: a minute either side of the one liquidation; the ticks of BTC in it once bull
    # held BTC (from seq 4): 98 and 96.2.
    assert out["window"] == {"start": T0 + 3_000 - 60_000, "end": T0 + 3_000 + 60_000}
    assert out["marks"] == [
        {"seq": 5, "ts": T0 + 2_000, "marks": {"BTC": "98.0"}},
        {"seq": 6, "ts": T0 + 3_000, "marks": {"BTC": "96.2"}},
    ]
    # The text output numbers the liquidation and says why.
    text = cli("replay", "audit", "--log", str(log), "--account", "bull").stdout
    assert "  1. seq 6 (prices): liquidation_fill x1; kept 231.342 USDC" in text
    assert "0.5 USDC below maintenance" in " ".join(text.split())


def test_two_positions_survive_a_uniform_move(tmp_path: Path) -> None:
    log = _log(
        tmp_path,
        [
            market("ETH", 4, TEN_X),
            market("SOL", 2, TEN_X),
            deposit("mm", "1000000"),
            deposit("alice", "300"),
            stamped(prices(ETH="2000", SOL="100"), T0),
            stamped(trade("ETH", "2000", "1", "alice", "mm"), T0 + 1_000),
            stamped(trade("SOL", "100", "10", "alice", "mm"), T0 + 2_000),
            stamped(prices(ETH="1900", SOL="93"), T0 + 3_000),  # seq 7
        ],
    )
    # alice long 1 ETH and 10 SOL: raw = 300 - 2,000 - 1,000 = -2,700. At ETH 1,900, SOL 93:
    # AV = -2,700 + 1,900 + 930 = 130; MM = 95 + 46.5 = 141.5: 11.5 short, 11.5 / 141.5 = 8.127%.
    # All marks times k: AV = -2,700 + 2,830k and MM = 141.5k meet at k = 2,700 / 2,688.5 =
    # 1.0042775... (+4,277.5 ppm). In whole ppm with the engine's rounding: at +4,278 ppm the
    # marks are 1,900 * 1.004278 = 1,908.1282 and 93 * 1.004278 = 93.397854: AV = -2,700 +
    # 1,908.1282 + 933.97854 = 142.10674 >= MM = 95.40641 + 46.698927 = 142.105337; at +4,277:
    # 1,908.1263 and 93.397761, AV = 142.10391 < MM = 95.406315 + ceil(46.6988805) = 142.105196.
    # So +0.4278%, shown as 0.43.
    (episode,) = _audit(log, "alice")["liquidations"]
    (found,) = episode["before"]
    figures = (found["equity"], found["maintenance"], found["shortfall"], found["shortfall_pct"])
    assert figures == ("130.0", "141.5", "11.5", "8.13")
    assert found["survival"] == {
        "method": "uniform move",
        "move_pct": "0.43",
        "marks": {"ETH": "1908.1282", "SOL": "93.397854"},
    }
    assert "with a move of +0.43% (ETH 1,908.1282, SOL 93.397854)" in episode["why"]


# ---- backstop, auto-deleveraging and bad debt --------------------------------------------------------


ADL_STREAM = [
    market("ETH", 4, TEN_X),
    deposit("bob", "300"),
    deposit("lucy", "5000"),
    deposit("alice", "1000"),
    deposit("dora", "1000"),
    stamped(prices(ETH="1000"), T0),  # seq 5
    stamped(trade("ETH", "1000", "2", "lucy", "bob"), T0 + 1_000),  # seq 6
    stamped(prices(ETH="1200"), T0 + 2_000),  # seq 7
    stamped(prices(ETH="1200.009"), T0 + 3_000),  # seq 8
    stamped(trade("ETH", "1200", "2", "alice", "lucy"), T0 + 4_000),  # seq 9
    stamped(prices(ETH="900"), T0 + 5_000),  # seq 10
    stamped(trade("ETH", "2500", "1", "alice", "dora"), T0 + 6_000),  # seq 11
]


@pytest.fixture(scope="module")
def adl_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The liquidator absorbs at most 100 USDC per takeover (`--liquidator-loss-limit 100`)."""
    return _log(tmp_path_factory.mktemp("adl"), ADL_STREAM, "--liquidator-loss-limit", "100")


class Rows(HTMLParser):
    """The text of every table row of a page, cell by cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _rows(page: str) -> list[list[str]]:
    parser = Rows()
    parser.feed(page)
    return parser.rows


def test_backstop_of_a_short_then_adl_backstop_and_bad_debt(adl_log: Path, tmp_path: Path) -> None:
    # bob: short 2 at 1,000 on 300: raw = 300 + 2,000 = 2,300. At 1,000 (seq 6) AV = 300 >= MM 100.
    # At 1,200 (seq 7): AV = 2,300 - 2,400 = -100, MM = 2,400 / 20 = 120: 220 short (220 / 120 =
    # 183.33%); 3 * -100 < 2 * 120: backstop; the loss 100 is within the limit, so the liquidator
    # takes the short 2 over at 1,200 with the cash -100.
    # Survival: P = 1,200 - (-1) * (-100 - 120) / 2 / (1 + 1/20) = 1,200 - 220 / 2.1 =
    # 1,095.238095238..., rounded down (against the short): 1,095.23809523; the move is
    # -104.76190477 / 1,200 = -8.7302% -> -8.73. Check: AV(P) = 2,300 - 2P = 109.52 = 2P / 20.
    (episode,) = _audit(adl_log, "bob")["liquidations"]
    assert episode["previous"] == {"seq": 6, "time": T0 + 1_000, "marks": {"ETH": "1000.0"}}
    assert episode["before"] == [
        {
            "scope": "cross",
            "equity": "-100.0",
            "maintenance": "120.0",
            "phase": "backstop",
            "shortfall": "220.0",
            "shortfall_pct": "183.33",
            "survival": {"method": "liquidation price", "coin": "ETH", "mark": "1095.23809523", "move_pct": "-8.73"},
        }
    ]
    assert "ETH from 1,000.0 to 1,200.0 (+20.00%)" in episode["why"]
    assert "with ETH at 1,095.23809523 or below (-8.73% from the trigger's mark)" in episode["why"]
    report = tmp_path / "bob.html"
    cli("replay", "audit", "--log", str(adl_log), "--account", "bob", "--out", str(report))
    row = ["backstop takeover (cross) backstop", "ETH", "-2.0", "1,200.0", "@liquidator", "margin moved -100.0"]
    assert row in _rows(report.read_text())


def test_adl_backstop_and_bad_debt_rows(adl_log: Path, tmp_path: Path) -> None:
    # alice: long 2 at 1,200 (seq 9, from lucy, who goes flat): raw = 1,000 - 2,400 = -1,400.
    # At 900 (seq 10): AV = 400 >= MM 90. The trade at 2,500 (seq 11) makes her long 3 with raw
    # -3,900: AV = -3,900 + 2,700 = -1,200, MM = 135: 1,335 short (988.89%), backstop; -1,200
    # is beyond the 100 limit, so auto-deleveraging at the previous mark 1,200.009, rounded down
    # for a long to the tick: 1,200.00. The only short left is dora's 1 (the liquidator's is not
    # in the queue): ADL of 1 against dora, the other 2 go to the liquidator at 1,200 with no
    # margin; raw = -3,900 + 3 * 1,200 = -300 is bad debt (the liquidator declined her).
    # Survival: P = 900 + 1,335 / 3 / (1 - 1/20) = 900 + 1,335 / 2.85 = 1,368.421052631...,
    # rounded up: 1,368.42105264; move 468.42105264 / 900 = 52.047% -> 52.05.
    # No mark moved since seq 10: the trade itself took her below.
    report = tmp_path / "alice.html"
    out = _audit(adl_log, "alice", "--out", str(report))
    (episode,) = out["liquidations"]
    assert episode["previous"] == {"seq": 10, "time": T0 + 5_000, "marks": {"ETH": "900.0"}}
    assert episode["before"] == [
        {
            "scope": "cross",
            "equity": "-1200.0",
            "maintenance": "135.0",
            "phase": "backstop",
            "shortfall": "1335.0",
            "shortfall_pct": "988.89",
            "survival": {"method": "liquidation price", "coin": "ETH", "mark": "1368.42105264", "move_pct": "52.05"},
        }
    ]
    actions = [
        (a["type"], a.get("counterparty"), a.get("sz"), a.get("px"), a.get("amount")) for a in episode["actions"]
    ]
    assert actions == [
        ("adl", "dora", "-1.0", "1200.0", None),
        ("backstop", None, None, None, None),
        ("bad_debt", None, None, None, "300.0"),
    ]
    (backstop,) = [a for a in episode["actions"] if a["type"] == "backstop"]
    assert (backstop["positions"], backstop["margin"]) == ([{"coin": "ETH", "szi": "2.0", "mark": "1200.0"}], "0.0")
    assert episode["after"] == [] and episode["kept"] == "0.0"
    assert "No mark of its liquidated positions moved since seq 10" in episode["why"]
    assert "It had a bad debt of 300.0 USDC (cross), recorded, not dropped." in episode["why"]
    rows = _rows(report.read_text())
    assert ["auto-deleverage adl", "ETH", "-1.0", "1,200.0", "dora", ""] in rows
    assert ["backstop takeover (cross) backstop", "ETH", "2.0", "1,200.0", "@liquidator", "margin moved 0.0"] in rows
    assert ["bad debt (cross) bad_debt", "", "", "", "", "300.0 USDC"] in rows
    assert ["cross", "backstop", "-1,200.0", "135.0", "1,335.0", "988.89%", "ETH at 1,368.42105264 (+52.05%)"] in rows
    assert ["ETH", "900.0", "900.0"] in rows  # the marks: last above maintenance, at the trigger


def test_adl_counterparty_sees_its_side(adl_log: Path, tmp_path: Path) -> None:
    # dora sold 1 at 2,500 (raw 3,500) and was bought back at 1,200 by ADL: 1 ETH closed from
    # her side (+1), 3,500 - 1,200 = 2,300 kept. She was never below maintenance.
    report = tmp_path / "dora.html"
    (episode,) = _audit(adl_log, "dora", "--out", str(report))["liquidations"]
    assert episode["before"] == [] and episode["kept"] == "2300.0"
    assert episode["why"] == (
        "Auto-deleveraging closed 1.0 ETH of this account's position at 1,200.0 against the "
        "bankrupt account alice. After the event its account value was 2,300.0 USDC."
    )
    row = ["auto-deleveraged (as counterparty) adl", "ETH", "1.0", "1,200.0", "alice (bankrupt)", ""]
    assert row in _rows(report.read_text())


# ---- the page in a browser -------------------------------------------------------------------------


def test_the_report_loads_in_a_browser_with_its_plot(adl_log: Path, tmp_path: Path) -> None:
    chromium()  # skips (fails on CI) without the browser, before the report is made
    report = tmp_path / "alice.html"
    cli("replay", "audit", "--log", str(adl_log), "--account", "alice", "--out", str(report))
    images = open_in_browser(report, tmp_path)
    width, height = images["plot"]
    assert width > 0 and height > 0  # the plot decoded
