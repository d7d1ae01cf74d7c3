"""`clearinghouse stress` as a user runs it (subprocess): a log's state at a seq as the
population, the JSON contract, the same digests whatever --workers, clear errors for bad
scenario and configuration files, and the HTML report in a real browser.

The three accounts are tests/replay/test_stress.py's: long 10 X at 100 on 100, 110 and 128
USDC (MM = notional / 20), their impact cascade worked by hand there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.browser import shows_in_chromium
from tests.support.cli import cli, error
from tests.support.pair import TEN_X
from tests.support.rulebook import deposit, market, prices, trade

pytestmark = pytest.mark.slow  # the command in subprocesses

FALL = {"steps": 1, "paths": {"X": [[0, "0"], [1, "-6"]]}}
IMPACT = ("--impact-bps", "100", "--depth", "600")
GENERATE = ("--generate", "--accounts", "300", "--events", "6000")


def _log(tmp_path: Path) -> Path:
    lines = [
        market("X", 2, TEN_X),
        prices(X="100"),
        deposit("mm", "10000"),
        deposit("a", "100"),
        deposit("b", "110"),
        deposit("c", "128"),
        trade("X", "100", "10", "a", "mm"),  # seq 6
        trade("X", "100", "10", "b", "mm"),  # seq 7
        trade("X", "100", "10", "c", "mm"),  # seq 8
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    cli("run", "--log", str(log))
    return log


def _file(tmp_path: Path, name: str, body: object) -> str:
    path = tmp_path / name
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return str(path)


def _stress(*args: str) -> list[dict]:
    return json.loads(cli("stress", *args, "--json").stdout)


def test_a_log_at_a_seq_through_a_scenario_file(tmp_path: Path) -> None:
    log, scenario = _log(tmp_path), _file(tmp_path, "fall.json", FALL)
    (whole,) = _stress("--log", str(log), "--scenario", scenario, *IMPACT)
    # the cascade of a, b and c: X 94 -> 92.5273 -> 91.1004 -> 89.7172 (fees do not move prices)
    assert whole["steps"][1]["marks"] == {"X": "89.7172"}
    assert whole["liquidated_notional"] == "2733.449"
    assert (whole["config"], whole["adl"], whole["found_below"]) == ("default", "hl-queue", 3)
    # right after seq 7 c has no position yet: a's fill takes b under, X ends at 91.1004
    (early,) = _stress("--log", str(log), "--at", "7", "--scenario", scenario, *IMPACT)
    assert early["steps"][1]["marks"] == {"X": "91.1004"}
    assert early["liquidated_notional"] == "1836.277"  # 925.273 + 911.004
    assert early["digest"] != whole["digest"]
    for key in ("bad_debt", "adl_notional", "pool_shortfall"):
        assert whole[key] == "0.0"
    assert whole["overshoot"] == {"over": "0.0", "under": "0.0", "net": "0.0"}  # no ADL round
    # the full-scan twin decides the same
    (twin,) = _stress("--log", str(log), "--scenario", scenario, *IMPACT, "--full-scan")
    assert twin == whole


def test_one_market_s_depth_from_a_flag_a_configuration_or_the_scenario(tmp_path: Path) -> None:
    """A deep book (--depth 1000000): a's fill of 940 moves X 10,000 * 940 / 1,000,000 = 9 ppm,
    94 * 0.999991 = 93.999154 -> 93.9991, and b (below 93.6842) is safe. X's own depth of 600 USDC,
    however given, is the three longs' cascade again."""
    log, fall = _log(tmp_path), _file(tmp_path, "fall.json", FALL)
    deep = ("--impact-bps", "100", "--depth", "1000000")
    (alone,) = _stress("--log", str(log), "--scenario", fall, *deep)
    assert (alone["steps"][1]["marks"], alone["liquidated_notional"]) == ({"X": "93.9991"}, "939.991")
    thin = _file(tmp_path, "thin.json", {"name": "default", "liquidation": {"market_depth": {"X": "600"}}})
    # the scenario's own path for X: 0.06% of 1,000,000 = 600 USDC
    thinned = _file(tmp_path, "thinned.json", {**FALL, "depth": {"X": [[0, "0.06"]]}})
    for args in (
        ("--scenario", fall, "--market-depth", "X=600"),
        ("--scenario", fall, "--config", thin),
        ("--scenario", thinned),
    ):
        (run,) = _stress("--log", str(log), *args, *deep)
        assert (run["steps"][1]["marks"], run["liquidated_notional"]) == ({"X": "89.7172"}, "2733.449")


def test_same_digests_whatever_the_workers(tmp_path: Path) -> None:
    deep = _file(tmp_path, "deep.json", {"name": "deep", "liquidation": {"depth": "1000000"}})
    thin = _file(tmp_path, "thin.json", {"name": "thin", "liquidation": {"liquidator_loss_limit": "10"}})
    runs = {}
    for workers in ("1", "2"):
        out = _stress(*GENERATE, "--scenario", "btc-led", "--config", deep, "--config", thin, "--workers", workers)
        runs[workers] = out
    assert [r["config"] for r in runs["1"]] == ["deep", "thin"]
    assert runs["1"] == runs["2"]
    for run in runs["1"]:
        for key in ("liquidated_notional", "bad_debt", "adl_notional", "pool_shortfall"):
            assert isinstance(run[key], str) and float(run[key]) >= 0
        assert set(run["overshoot"]) >= {"over", "under", "net"}
    # the thinner backstop declines more: the loss limit of 10 sends more accounts through ADL
    assert runs["1"][1]["adl_count"] > runs["1"][0]["adl_count"]


def test_configurations_change_the_population_before_step_1(tmp_path: Path) -> None:
    """The backtest's configuration files: a leverage cap of 8x re-lists X before step 1 (MM =
    notional / 16); a switch to unified is refused for every account with a position and
    reported. Liquidations at mark: no fill moves the price."""
    log, scenario = _log(tmp_path), _file(tmp_path, "fall.json", FALL)
    cap = _file(tmp_path, "cap.json", {"name": "cap8", "max_leverage": 8})
    unified = _file(tmp_path, "unified.json", {"name": "unified", "model": "unified"})
    args = ("--log", str(log), "--scenario", scenario, "--liquidation", "mark", "--config", cap, "--config", unified)
    runs = {workers: _stress(*args, "--workers", workers) for workers in ("1", "2")}
    assert runs["1"] == runs["2"]
    capped, switched = runs["1"]
    # X at 94: under 8x MM is 58.75, so a (value 40) and b (50) are sold, 10 at 94 each; c (68) is safe.
    assert (capped["config"], capped["found_below"], capped["liquidated_notional"]) == ("cap8", 2, "1880.0")
    assert capped["unapplied"] == []
    # The switch applies to nobody: a, b, c and mm hold positions, so under 10x only a goes (MM 47).
    assert (switched["config"], switched["found_below"], switched["liquidated_notional"]) == ("unified", 1, "940.0")
    reason = "switching modes needs no open position"
    assert switched["unapplied"] == [
        {"event": "set_mode", "subject": name, "reason": reason} for name in ("a", "b", "c", "mm")
    ]
    # the full-scan twin decides the same
    assert _stress(*args, "--full-scan") == runs["1"]
    table = cli("stress", *args, "--out", str(tmp_path / "out")).stdout
    assert f"unified/hl-queue: 4 set_mode refused ({reason}): a, b, c, ..." in " ".join(table.split())
    page = (tmp_path / "out" / "stress.html").read_text()
    assert page.count("<details class='unapplied'>") == 1  # the unified run's, none for cap8
    assert f"<tr><td>set_mode</td><td>mm</td><td>{reason}</td></tr>" in page


def test_each_adl_policy_is_a_run_of_its_own() -> None:
    """`--adl` repeated: one run per policy, in the order given, under the same flags."""
    runs = _stress(*GENERATE, "--scenario", "uniform", "--adl", "pro-rata", "--adl", "hl-queue", "--adl", "pro-rata")
    assert [(r["config"], r["adl"]) for r in runs] == [("default", "pro-rata"), ("default", "hl-queue")]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("{not json", " is not JSON: Expecting property name enclosed in double quotes at line 1"),
        ({"paths": {"X": [[0, "-1"]]}, "steps": "ten"}, ": steps must be an integer from 1 to 10000, got 'ten'"),
        ({"paths": {"X": [[2, "-1"], [1, "-2"]]}}, ": paths.X[1]: steps must increase (1 after 2)"),
    ],
)
def test_bad_scenario_files_are_one_line(tmp_path: Path, body: object, said: str) -> None:
    scenario = _file(tmp_path, "bad.json", body)
    assert error("stress", *GENERATE, "--scenario", scenario) == f"clearinghouse: error: scenario {scenario}{said}"


def test_other_mistakes_are_one_line(tmp_path: Path) -> None:
    assert "neither a built-in (btc-led, oct-2025, uniform) nor a file" in error(
        "stress", *GENERATE, "--scenario", "october"
    )
    off = _file(tmp_path, "off.json", {"name": "off", "liquidation": {"liquidation": "off"}})
    assert "mode 'off' cannot be stressed" in error("stress", *GENERATE, "--scenario", "uniform", "--config", off)
    assert "mode 'external' cannot be stressed" in error(
        "stress", *GENERATE, "--scenario", "uniform", "--liquidation", "external"
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"liquidation": {"depth": "1"}}, "Object missing required field `name`"),
        ({"name": "x", "liquidation": {"impact": "1"}}, "Object contains unknown field `impact` - at `$.liquidation`"),
        ({"name": "x", "model": "cross"}, "unknown margin model 'cross' (known: standard, unified, portfolio, risk)"),
        ({"name": "x", "liquidation": {"depth": 600}}, "Expected `str | null`, got `int` - at `$.liquidation.depth`"),
    ],
)
def test_bad_configuration_files_are_the_backtests_one_line_errors(tmp_path: Path, body: object, said: str) -> None:
    bad = _file(tmp_path, "bad.json", body)
    line = error("stress", *GENERATE, "--scenario", "uniform", "--config", bad)
    assert line == f"clearinghouse: error: {bad}: {said} (docs/backtest.md, configuration)"
    assert "--at and --time pick a point of a --log" in error(
        "stress", *GENERATE, "--scenario", "uniform", "--at", "3"
    )
    log = _log(tmp_path)
    assert "seq 99 is outside the log (0..8)" in error(
        "stress", "--log", str(log), "--at", "99", "--scenario", "uniform"
    )


def test_the_report_opens_in_a_browser(tmp_path: Path) -> None:
    out = tmp_path / "out"
    thin = _file(tmp_path, "thin.json", {"name": "thin", "liquidation": {"liquidator_loss_limit": "10"}})
    cli("stress", *GENERATE, "--scenario", "oct-2025", "--config", thin, "--out", str(out))
    figures = json.loads((out / "stress.json").read_text())
    assert [r["config"] for r in figures] == ["thin"]
    page = (out / "stress.html").read_text()
    assert "thin / hl-queue" in page
    shows_in_chromium(out / "stress.html", tmp_path)
