"""The `clearinghouse` command as a user runs it: a subprocess, real files, real logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import WIRE_EXAMPLE, cli
from tests.support.streams import CRASH

pytestmark = pytest.mark.slow  # every test runs the command in a subprocess

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture()
def logged(tmp_path: Path) -> Path:
    source = tmp_path / "events.jsonl"
    source.write_text(WIRE_EXAMPLE)
    log = tmp_path / "log"
    result = cli("ingest", str(source), "--log", str(log))
    assert "15 events" in result.stdout and "2 bad lines" in result.stdout
    assert f"{source}:9: not JSON" in result.stderr
    assert f"{source}:11: $.amount: '1.0000001' has more than 6 decimals" in result.stderr
    return log


def test_help_lists_every_command() -> None:
    out = cli("--help").stdout
    for name in ("ingest", "run", "state", "events", "generate", "demo", "hl"):
        assert name in out
    for sub in (("run",), ("hl", "recompute"), ("hl", "import-state"), ("demo",)):
        assert "usage:" in cli(*sub, "--help").stdout


def test_ingest_writes_bad_lines_to_the_rejects_file(logged: Path) -> None:
    rejects = [json.loads(line) for line in (logged / "rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [9, 11]


def test_run_state_and_derived_events(logged: Path) -> None:
    summary = json.loads(cli("run", "--log", str(logged), "--json").stdout)
    assert summary["applied"] == 15 and summary["seq"] == 14
    # Two rejections. seq 11: the isolated ETH short holds 170 + 1700 (margin plus the sale's cash)
    # and is worth 1870 - 0.5 * 3400 = 170 = its IM (0.5 * 3400 / 10) = 10% of its notional, so
    # nothing is removable. seq 13: a1's cross value (about 810) is below the 10% floor on its
    # 9700 BTC notional (970), so withdrawable is 0.
    derived = [json.loads(line) for line in cli("events", "--log", str(logged), "--derived").stdout.splitlines()]
    assert [(d["type"], d["seq"], d["event"]) for d in derived] == [
        ("rejected", 11, "isolated_margin"),
        ("rejected", 13, "withdraw"),
    ]
    assert derived[0]["reason"] == "removing 2.5 exceeds removable 0.0"
    assert derived[1]["reason"] == "amount 100000.0 is above withdrawable 0.0"
    # A second run has nothing left to apply and the digest stays.
    again = json.loads(cli("run", "--log", str(logged), "--json").stdout)
    assert again["applied"] == 0 and again["digest"] == summary["digest"]
    state = json.loads(cli("state", "--log", str(logged), "--account", "a1", "--json").stdout)
    assert state["seq"] == 14
    btc = state["assetPositions"][0]["position"]
    assert (btc["coin"], btc["szi"], btc["entryPx"], btc["positionValue"]) == ("BTC", "0.1", "97000.0", "9700.05")
    # a1's cross ledger: 1000 - 10 - 5 - 9700 (BTC buy) - 4.365 (fee) - 170 (ETH isolated margin,
    # 0.5 * 3400 / 10) - 0.121263 (funding 0.1 * 97010 * 0.0000125 = 0.12126250, rounded against).
    assert state["crossMarginSummary"]["totalRawUsd"] == "-8889.486263"
    eth = state["assetPositions"][1]["position"]
    assert eth["leverage"] == {"type": "isolated", "value": 10, "rawUsd": "1870.0"}  # 170 + 0.5 * 3400
    table = cli("state", "--log", str(logged)).stdout
    assert "BTC" in table and "state digest " + summary["digest"] in table


def test_events_prints_the_wire_format(logged: Path) -> None:
    lines = cli("events", "--log", str(logged), "--from", "2", "--limit", "2").stdout.splitlines()
    assert [json.loads(x) for x in lines] == [
        {"type": "deposit", "account": "a1", "amount": "1000.0"},
        {"type": "deposit", "account": "a2", "amount": "100000.0"},
    ]


def test_generate_then_ingest_run(tmp_path: Path) -> None:
    out = tmp_path / "gen.jsonl"
    cli("generate", "--accounts", "50", "--markets", "3", "--events", "2000", "--seed", "4", "--out", str(out))
    assert len(out.read_text().splitlines()) == 2000
    cli("ingest", str(out), "--log", str(tmp_path / "log"))
    first = json.loads(cli("run", "--log", str(tmp_path / "log"), "--json").stdout)
    cli("ingest", str(out), "--log", str(tmp_path / "log2"))
    second = json.loads(cli("run", "--log", str(tmp_path / "log2"), "--json").stdout)
    assert first["digest"] == second["digest"] and first["applied"] == 2000


def test_demo_prints_a_summary(tmp_path: Path) -> None:
    result = cli("demo", "--events", "20000", "--accounts", "300", "--dir", str(tmp_path / "demo"))
    out = result.stdout
    for expected in (
        "20,000 events",
        "trades",
        "open interest",
        "most leveraged",
        "state digest",
        "events/s",
        "rejected",
        "backstop takeovers",
    ):
        assert expected in out
    liquidations = out.split("liquidations: ")[1].split(" triggered")[0]
    assert int(liquidations.replace(",", "")) > 0  # the demo's market crashes
    again = cli("demo", "--events", "20000", "--accounts", "300", "--dir", str(tmp_path / "demo2"), "--json")
    first_digest = out.split("state digest ")[1].split()[0]
    assert json.loads(again.stdout)["digest"] == first_digest
    refused = cli("demo", "--dir", str(tmp_path / "demo"), check=False)
    assert refused.returncode == 1 and "already holds a log" in refused.stderr


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    missing = cli("run", "--log", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 1 and "not a log directory" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = cli("hl", "recompute", str(bad), check=False)
    assert result.returncode == 1 and "is not JSON" in result.stderr
    (tmp_path / "empty.json").write_text("{}")
    result = cli("hl", "recompute", str(tmp_path / "empty.json"), check=False)
    assert result.returncode == 1 and "missing field assetPositions" in result.stderr


def test_hl_recompute_reproduces_every_figure() -> None:
    """The fixture's figures were worked out by hand from the rules, e.g. its BTC line: 0.5 at the
    mark 97,000.5 is worth 48,500.25; from the entry 95,000 that is 1,000.25 unrealised; at 20x
    cross the margin used is 48,500.25 / 20 = 2,425.0125."""
    given = json.loads((DATA / "hl_state.json").read_text())
    for meta in ([], ["--meta", str(DATA / "hl_meta.json")]):
        assert json.loads(cli("hl", "recompute", str(DATA / "hl_state.json"), *meta).stdout) == given


def test_hl_import_state_seeds_a_log(tmp_path: Path) -> None:
    log = tmp_path / "log"
    cli(
        "hl",
        "import-state",
        str(DATA / "hl_state.json"),
        "--account",
        "whale",
        "--log",
        str(log),
        "--meta",
        str(DATA / "hl_meta.json"),
    )
    cli("run", "--log", str(log))
    state = json.loads(cli("state", "--log", str(log), "--account", "whale", "--json").stdout)
    given = json.loads((DATA / "hl_state.json").read_text())
    assert state["marginSummary"] == given["marginSummary"]
    assert state["withdrawable"] == given["withdrawable"]


def test_run_liquidation_flags_are_fixed_per_log(tmp_path: Path) -> None:
    """bull: 200 BTC long at 100 on 1,000 USDC. At 96: AV = 1000 - 800 = 200 < MM = 200 * 96 / 80
    = 240, and 200 >= 2/3 * 240 = 160, so the market phase closes it (notional 19,200 is under
    100,000: all of it) at 96 less 50 bps = 95.52, paying 0.045% of 19,104 = 8.5968 in fees."""
    source = tmp_path / "crash.jsonl"
    source.write_text(CRASH)
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    cli("run", "--log", str(log), "--slippage-bps", "50")
    derived = [json.loads(line) for line in cli("events", "--log", str(log), "--derived").stdout.splitlines()]
    assert [d["type"] for d in derived] == ["liquidation_triggered", "liquidation_fill"]
    assert derived[0] | {"ts": 0} == {
        "type": "liquidation_triggered",
        "account": "bull",
        "scope": "cross",
        "cause": 5,
        "equity": "200.0",
        "maintenance": "240.0",
        "positions": [{"coin": "BTC", "szi": "200.0", "mark": "96.0"}],
        "phase": "market",
        "ts": 0,
        "input_seq": 5,
        "derived_seq": 0,
    }
    assert (derived[1]["sz"], derived[1]["px"], derived[1]["fee"]) == ("-200.0", "95.52", "8.5968")
    # bull keeps 1000 - 20000 + 19104 - 8.5968 = 95.4032
    state = json.loads(cli("state", "--log", str(log), "--account", "bull", "--json").stdout)
    assert state["crossMarginSummary"]["totalRawUsd"] == "95.4032" and state["assetPositions"] == []
    refused = cli("run", "--log", str(log), "--liquidation", "impact", check=False)
    assert refused.returncode == 1 and "was run with liquidation settings" in refused.stderr
    refused = cli("run", "--log", str(log), "--checkpoint-every", "500", check=False)
    assert refused.returncode == 1 and "was run with a checkpoint every 100000 events" in refused.stderr
    assert cli("run", "--log", str(log), "--slippage-bps", "50").returncode == 0


def test_run_market_depth_moves_its_market_by_its_own_depth(tmp_path: Path) -> None:
    """bull as above, in impact mode at the default 100 bps per depth: BTC's own depth, 19,200 USDC,
    makes the sale of 200 at 96 (notional 19,200) move the price 100 bps * 19,200 / 19,200 = 1%, to
    95.04 (the global depth, 1,000,000, would move it 192 ppm), paying 0.045% of 19,008 = 8.5536."""
    source = tmp_path / "crash.jsonl"
    source.write_text(CRASH)
    log = str(tmp_path / "log")
    cli("ingest", str(source), "--log", log)
    own = ("--liquidation", "impact", "--market-depth", "ETH=5", "--market-depth", "BTC=19200")
    cli("run", "--log", log, *own)
    derived = [json.loads(line) for line in cli("events", "--log", log, "--derived").stdout.splitlines()]
    assert [d["type"] for d in derived] == ["liquidation_triggered", "liquidation_fill"]
    assert (derived[1]["sz"], derived[1]["px"], derived[1]["fee"]) == ("-200.0", "95.04", "8.5536")
    # the map is fixed with the log's settings: another map, or none, is a conflict in the flags' words
    refused = cli("run", "--log", log, "--liquidation", "impact", "--market-depth", "BTC=9600", check=False)
    assert refused.returncode == 1
    assert "--market-depth BTC=9600 asked, the log has --market-depth BTC=19200 --market-depth ETH=5" in refused.stderr
    refused = cli("run", "--log", log, "--liquidation", "impact", check=False)
    assert "no --market-depth asked, the log has --market-depth BTC=19200" in refused.stderr
    assert cli("run", "--log", log, *own).returncode == 0


def test_hl_recompute_under_the_2023_rules() -> None:
    """The same snapshot under hl-2023, by hand: withdrawable = AV_cross - IM = 8500.25 - 2425.0125;
    BTC liq = mark - (AV - MM) / |szi| = 97000.5 - (8500.25 - 606.253125) / 0.5 (no (1 - l) factor);
    ETH (isolated short) liq = 3400 + (900 - 6800 / 50) / 2 = 3782; ROE = upnl / marginUsed."""
    out = json.loads(cli("hl", "recompute", str(DATA / "hl_state.json"), "--rules", "hl-2023").stdout)
    btc, eth = (p["position"] for p in out["assetPositions"])
    assert out["withdrawable"] == "6075.2375"
    assert (btc["liquidationPx"], btc["returnOnEquity"]) == ("81212.50625", "0.4124721007")  # 1000.25 / 2425.0125
    assert (eth["liquidationPx"], eth["returnOnEquity"]) == ("3782.0", "0.2222222222")  # 200 / 900
