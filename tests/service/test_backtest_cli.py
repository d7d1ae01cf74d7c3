"""`clearinghouse backtest` as a user runs it (subprocess, real logs): as-logged reproduces a
log exactly, a second configuration gives the requirement and rejections worked out by hand,
the result does not depend on --workers, bad configurations are one clear line, and the HTML
report opens in headless Chromium with its plots.

The hand-built log (docs/rules.md): BTC with sz_decimals 3 and one tier at 20x, so a position's
initial margin is notional / leverage and its maintenance notional / 40 (2 x 20); capped at 5x
it is notional / 5 and notional / 10. A new position's leverage is the rule set's default (20)
capped by the market's maximum. Withdrawable = account value - max(IM, 10% of notional).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.eventlog import EventLog
from replay.logdir import LogDir
from tests.support import browser
from tests.support.cli import cli, error
from tests.support.pair import stamped
from tests.support.rulebook import deposit, market, prices, set_leverage, trade, withdraw

pytestmark = pytest.mark.slow  # the command in subprocesses, worker processes, a browser

HOUR = 3_600_000
T0 = 472_223 * HOUR  # an hour boundary of event time
DEMO_DIGEST = "0f152f08dd2bbaee5b6b9fca0468df1e40c15a6322f2fb82673d946c13cd63e0"


def _log(tmp_path: Path) -> Path:
    lines = [
        stamped(market("BTC", 3, [("0", 20)]), T0),  # seq 0
        stamped(prices(BTC="100"), T0),  # 1
        stamped(deposit("mm", "1000000"), T0),  # 2
        stamped(deposit("bull", "2000"), T0),  # 3
        stamped(set_leverage("bull", "BTC", 20), T0 + 1),  # 4
        stamped(trade("BTC", "100", "100", "bull", "mm"), T0 + 1_000),  # 5
        stamped(withdraw("bull", "900"), T0 + 2_000),  # 6
        stamped(prices(BTC="100"), T0 + HOUR + 5),  # 7: the next hour
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    return log


def _config(tmp_path: Path, name: str, **fields: object) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, **fields}))
    return str(path)


def _backtest(log: Path, out: Path, *args: str) -> list[dict]:
    return json.loads(cli("backtest", "--log", str(log), "--out", str(out), "--json", *args).stdout)


def test_a_lower_max_leverage_needs_more_margin_and_rejects_what_it_cannot_finance(tmp_path: Path) -> None:
    log = _log(tmp_path)
    five = _config(tmp_path, "five-x", max_leverage=5)
    base, capped = _backtest(log, tmp_path / "out", "--config", "as-logged", "--config", five)
    assert (base["name"], capped["name"]) == ("as-logged", "five-x")
    # As logged: bull sets 20x (allowed: no position yet) and buys 100 BTC at 100 from mm (notional
    # 10,000; mm's short takes the default 20x). Each side: IM 10,000 / 20 = 500, MM 10,000 / 40 = 250.
    # bull withdraws 900: withdrawable 2,000 - max(500, 1,000) = 1,000 >= 900, allowed.
    assert base["rejected"]["count"] == 0
    # Two samples: at the hour boundary T0 + 1h (after seq 6) and at the end (seq 7, same mark).
    assert base["requirement"] == {
        "samples": 2,
        "initial_mean": "1000.0",
        "maintenance_mean": "500.0",
        "initial_peak": "1000.0",
        "maintenance_peak": "500.0",
    }
    assert (base["initial_end"], base["maintenance_end"]) == ("1000.0", "500.0")
    assert base["capital_freed"] is None
    # Capped at 5x: bull's 20x is rejected (above the maximum 5); both sides take the default 20
    # capped at 5: IM 10,000 / 5 = 2,000 and MM 10,000 / 10 = 1,000 each; bull's withdrawable is
    # 2,000 - max(2,000, 1,000) = 0, so the withdrawal of 900 is rejected.
    assert capped["rejected"]["by_type"] == {"set_leverage": 1, "withdraw": 1}
    reasons = {r["reason"] for r in capped["rejected"]["reasons"]}
    assert reasons == {
        "set_leverage: leverage N is above the maximum N for BTC",
        "withdraw: amount N is above withdrawable N",
    }
    assert (capped["initial_end"], capped["maintenance_end"]) == ("4000.0", "2000.0")
    # Freed against as-logged: a mean IM of 1,000 against 4,000: -3,000, -300% of 1,000. Both
    # accounts hold one side only: directional (bull 1,500 more each, mm 1,500 more).
    freed = capped["capital_freed"]
    assert freed["against"] == "as-logged"
    assert (freed["initial_mean"], freed["initial_mean_pct"]) == ("-3000.0", "-300.00")
    assert freed["initial_end"] == "-3000.0"
    assert freed["directional"] == {"accounts": 2, "initial_mean": "-3000.0", "initial_mean_pct": "-300.00"}
    assert freed["hedged"] == {"accounts": 0, "initial_mean": "0.0", "initial_mean_pct": None}
    assert capped["liquidations"]["count"] == base["liquidations"]["count"] == 0
    assert capped["bad_debt"] == base["bad_debt"] == "0.0"
    # Each configuration's log is a log: its input holds the replayed events (the capped
    # listing, the same 8 events) and `replay verify` proves its derived events.
    for name in ("as-logged", "five-x"):
        out = cli("replay", "verify", "--log", str(tmp_path / "out" / name)).stdout
        assert "8 events" in out, out


def test_the_risk_model_with_parameters_of_its_own(tmp_path: Path) -> None:
    log = _log(tmp_path)
    params = {
        "mm_loss_factor": "0.5",
        "im_loss_factor": "1",
        "units": {
            "BTC": {
                "scenarios": [{"move": "-0.1", "weight": "1"}, {"move": "0.1", "weight": "1"}],
                "min_charge": "0",
                "perp_rate_mm": "0",
                "perp_rate_im": "0",
                "basis_rate_mm": "0",
                "basis_rate_im": "0",
                "conc": "0",
                "depth": "1000000",
            }
        },
        "credits": [],  # the shipped BTC/ETH group needs aligned scenario lists
    }
    risk = _config(tmp_path, "risk", model="risk", accounts="all", risk_params=params)
    _, scan = _backtest(log, tmp_path / "out", "--config", "as-logged", "--config", risk)
    # Both sides in the risk model from their first event: 100 BTC at 100 each way, the worst
    # scenario a 10% move against them: a loss of 1,000, IM 1 x 1,000, MM 0.5 x 1,000. bull's
    # trade needs equity 2,000 >= IM 1,000, its withdrawal of 900 leaves 1,100 >= 1,000: nothing
    # is rejected, and the leverage bull sets does not enter the requirement.
    assert scan["rejected"]["count"] == 0
    assert (scan["initial_end"], scan["maintenance_end"]) == ("2000.0", "1000.0")
    # against as-logged's IM of 1,000 (20x each side): -1,000, -100%
    assert (scan["capital_freed"]["initial_mean"], scan["capital_freed"]["initial_mean_pct"]) == ("-1000.0", "-100.00")


def test_as_logged_reproduces_the_demo_log(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    cli("demo", "--dir", str(demo))
    (one,) = _backtest(demo, tmp_path / "out", "--config", "as-logged")
    assert one["digest"] == DEMO_DIGEST
    with (
        EventLog(LogDir(demo).derived, derived=True, readonly=True) as logged,
        EventLog(LogDir(tmp_path / "out" / "as-logged").derived, derived=True, readonly=True) as replayed,
    ):
        recorded = [e for _, e in logged.read()]
        again = [e for _, e in replayed.read()]
    assert len(recorded) > 4_000 and again == recorded


def test_the_result_does_not_depend_on_the_workers(tmp_path: Path) -> None:
    log = _log(tmp_path)
    configs = [
        "--config",
        "as-logged",
        "--config",
        _config(tmp_path, "five-x", max_leverage=5),
        "--config",
        _config(tmp_path, "unified", model="unified", liquidation={"liquidation": "off"}),
    ]
    one = _backtest(log, tmp_path / "w1", "--workers", "1", *configs)
    two = _backtest(log, tmp_path / "w2", "--workers", "2", *configs)
    assert one == two
    assert len({c["digest"] for c in one}) == 3  # three configurations, three states


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"model": "cross"}, "unknown margin model 'cross' (known: standard, unified, portfolio, risk)"),
        ({"max_leverage": 0}, "Expected `int` >= 1 - at `$.max_leverage`"),
        ({"risk_params": {"floor": "0.1"}}, "rules: Object contains unknown field `floor`"),
        ({"risk_params": {"mm_loss_factor": "2", "im_loss_factor": "1"}}, "rules: "),
        ({"rules": {"ltv": {"BTC": "1.5"}}}, "rules: LTV of BTC must be at least 0 and below 1"),
        ({"rules": {"name": "hl-1999"}}, "unknown rule set 'hl-1999' (known: hl-2023, hl-current)"),
        ({"liquidation": {"slippage_bps": "-1"}}, "liquidation.slippage_bps: expected from 0 to 5000 bps, got '-1'"),
        ({"accounts": ["a"]}, "`accounts` needs a `model` to apply to them"),
        ({"tiers": {"BTC": []}}, "tiers of BTC: at least one tier is needed"),
        ({"leverage": 5}, "Object contains unknown field `leverage`"),
    ],
)
def test_a_bad_configuration_is_one_clear_line(tmp_path: Path, fields: dict, expected: str) -> None:
    log = _log(tmp_path)
    path = _config(tmp_path, "bad", **fields)
    line = error("backtest", "--log", str(log), "--config", path, "--out", str(tmp_path / "out"))
    assert line.startswith(f"clearinghouse: error: {path}"), line
    assert expected in line, line
    assert not (tmp_path / "out").exists()  # nothing replayed


def test_files_that_are_not_configurations(tmp_path: Path) -> None:
    log = _log(tmp_path)
    missing = tmp_path / "nope.json"
    assert "cannot read the configuration" in error("backtest", "--log", str(log), "--config", str(missing))
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    assert "is not JSON" in error("backtest", "--log", str(log), "--config", str(garbled))
    same = _config(tmp_path, "same", max_leverage=5)
    line = error("backtest", "--log", str(log), "--config", same, "--config", same)
    assert line == "clearinghouse: error: two configurations are named 'same': each needs a name of its own"
    taken = tmp_path / "taken"
    (taken / "as-logged").mkdir(parents=True)
    line = error("backtest", "--log", str(log), "--config", "as-logged", "--out", str(taken))
    assert "already exists: give a new --out" in line


def test_the_report_opens_in_a_browser_with_its_plots(tmp_path: Path) -> None:
    browser.chromium()  # skips (fails on CI) without the browser, before the report is made
    log = _log(tmp_path)
    five = _config(tmp_path, "five-x", max_leverage=5)
    cli("backtest", "--log", str(log), "--out", str(tmp_path / "out"), "--config", "as-logged", "--config", five)
    images = browser.open_in_browser(tmp_path / "out" / "report.html", tmp_path)
    assert sorted(images) == ["plot-liquidations", "plot-requirement", "plot-savings"]
    for width, height in images.values():
        assert width > 0 and height > 0  # each plot decoded
