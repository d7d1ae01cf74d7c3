"""The command line guides a user who makes a mistake: each test makes it as a user does (a
subprocess) and asserts what the command says. The expected texts are written from the flags'
documented units, not copied from the code."""

from __future__ import annotations

import argparse
import json
import os
import pty
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from clearinghouse.edges.cli import build_parser
from tests.support.cli import WIRE_EXAMPLE, cli, error
from tests.support.streams import CRASH

pytestmark = pytest.mark.slow  # every test runs the command in a subprocess


def _crash_log(tmp_path: Path, *flags: str) -> Path:
    source = tmp_path / "crash.jsonl"
    source.write_text(CRASH)
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    cli("run", "--log", str(log), *flags)
    return log


def test_settings_conflict_names_the_flags_in_their_units_and_the_copy_command(tmp_path: Path) -> None:
    """The log was run with 50 bps of slippage. Asking for impact mode at 200 bps conflicts on three
    flags: the mode, the slippage (not given: its default 0) and the impact (the log keeps the
    default 1% = 100 bps). The message prints the commands that run the same events under them."""
    log = _crash_log(tmp_path, "--slippage-bps", "50")
    copy = tmp_path / "log-copy"
    line = error("run", "--log", str(log), "--liquidation", "impact", "--impact-bps", "200")
    assert line == (
        f"clearinghouse: error: {log} was run with liquidation settings that stay fixed (a replay decides as its "
        "first run did; a flag not given takes its default): --liquidation impact asked, the log has --liquidation "
        "mark; --slippage-bps 0 asked, the log has --slippage-bps 50; --impact-bps 200 asked, the log has "
        "--impact-bps 100. To run the same events under other settings, copy its input into a new log: "
        f"`clearinghouse copy --log {log} --to {copy}`, then "
        f"`clearinghouse run --log {copy} --liquidation impact --impact-bps 200`; "
        "without flags, `run` and `serve` take the log's own"
    )
    assert "LiquidationConfig" not in line and "ppm" not in line
    limit = error("serve", "--log", str(log), "--liquidator-loss-limit", "100")
    assert (
        "--slippage-bps 0 asked, the log has --slippage-bps 50; --liquidator-loss-limit 100 asked, the log has "
        "no --liquidator-loss-limit."
    ) in limit
    assert limit.endswith(
        f"then `clearinghouse serve --log {copy} --liquidator-loss-limit 100`; "
        "without flags, `run` and `serve` take the log's own"
    )


def test_the_adl_policy_is_a_fixed_setting_named_in_the_conflict(tmp_path: Path) -> None:
    """A log run under `--adl pro-rata` keeps it: a run asking for the default (named or not given)
    is a conflict that names both policies; an unknown policy is refused with the choices."""
    log = _crash_log(tmp_path, "--adl", "pro-rata")
    copy = tmp_path / "log-copy"
    line = error("run", "--log", str(log), "--adl", "hl-queue")
    assert "--adl hl-queue asked, the log has --adl pro-rata." in line
    assert line.endswith(f"`clearinghouse run --log {copy}`; without flags, `run` and `serve` take the log's own")
    assert cli("run", "--log", str(log)).returncode == 0  # no flag: the log's own policy
    bad = cli("run", "--log", str(log), "--adl", "fifo", check=False)
    assert bad.returncode == 2
    assert "argument --adl: invalid choice: 'fifo' (choose from 'hl-queue', 'pro-rata', 'deficit-pro-rata')" in (
        bad.stderr
    )


def test_the_printed_copy_command_runs_the_same_events_under_other_settings(tmp_path: Path) -> None:
    """The copy holds the same events in the same blocks: under the log's own settings it reaches the
    same digest; under impact mode (the flags the error printed) it liquidates at another price.
    bull: 200 BTC long at 100 on 1,000 USDC, mark 96: closed whole (19,200 of notional). Impact mode
    moves the price 1% per 1,000,000 USDC of notional: 96 * (1 - 0.01 * 19200 / 1e6) = 95.981568, to
    the tick against the seller (5 significant figures, 3 decimals at sz_decimals 3): 95.981; mark
    mode with 50 bps fills at 95.52."""
    log = _crash_log(tmp_path, "--slippage-bps", "50")
    line = error("run", "--log", str(log), "--liquidation", "impact")
    copy_command, run_command = [shlex.split(part)[1:] for part in line.split("`")[1:4:2]]
    assert cli(*copy_command).stdout.startswith("copied 6 events from ")
    copied = Path(copy_command[-1])
    again = tmp_path / "again"
    assert cli("copy", "--log", str(log), "--to", str(again)).returncode == 0
    same = json.loads(cli("run", "--log", str(again), "--slippage-bps", "50", "--json").stdout)
    first = json.loads(cli("run", "--log", str(log), "--json").stdout)
    assert same["digest"] == first["digest"] and same["applied"] == 6
    assert cli(*run_command).returncode == 0
    fills = [json.loads(x) for x in cli("events", "--log", str(copied), "--derived").stdout.splitlines()]
    assert [(f["sz"], f["px"]) for f in fills if f["type"] == "liquidation_fill"] == [("-200.0", "95.981")]
    assert error("copy", "--log", str(log), "--to", str(copied)) == (
        f"clearinghouse: error: {copied} already holds a log; give --to a new folder"
    )
    left = tmp_path / "left"  # what a copy that failed leaves: an empty input log, which a new copy may fill
    (left / "events").mkdir(parents=True)
    assert cli("copy", "--log", str(log), "--to", str(left)).stdout.startswith("copied 6 events from ")


def test_diff_names_every_leaf_of_an_account_that_appears(tmp_path: Path) -> None:
    """At seq 5 the liquidator (`@liquidator`, absent before) takes bull's 200 BTC at 96 less 50 bps
    = 95.52: its ledger pays 200 * 95.52 = 19,104, its position is worth 200 * 96 = 19,200, so its
    account value is 96. Every change is named by its path, never by an empty key."""
    log = _crash_log(tmp_path, "--slippage-bps", "50")
    out = json.loads(cli("replay", "diff", "--log", str(log), "--from", "4", "--to", "5").stdout)
    liquidator = out["accounts"]["@liquidator"]
    assert all(key for account in out["accounts"].values() for key in account)
    assert liquidator["assetPositions.BTC.szi"] == [None, "200.0"]
    assert liquidator["assetPositions.BTC.entryPx"] == [None, "95.52"]
    assert liquidator["crossMarginSummary.totalRawUsd"] == [None, "-19104.0"]
    assert liquidator["marginSummary.accountValue"] == [None, "96.0"]
    assert out["accounts"]["bull"]["assetPositions.BTC.szi"] == ["200.0", None]


def test_derived_lines_carry_their_input_seq_and_derived_seq_and_from_is_an_input_seq(tmp_path: Path) -> None:
    """WIRE_EXAMPLE's run rejects input seqs 11 and 13 (test_cli): derived seqs 0 and 1. `--from 12`
    means input seq 12, so only the second, which used to print nothing (derived position 12)."""
    source = tmp_path / "events.jsonl"
    source.write_text(WIRE_EXAMPLE)
    logged = tmp_path / "log"
    cli("ingest", str(source), "--log", str(logged))
    cli("run", "--log", str(logged))
    printed = cli("events", "--log", str(logged), "--derived", "--from", "12").stdout
    lines = [json.loads(x) for x in printed.splitlines()]
    assert [(d["type"], d["seq"], d["input_seq"], d["derived_seq"]) for d in lines] == [("rejected", 13, 13, 1)]
    every = [json.loads(x) for x in cli("events", "--log", str(logged), "--derived").stdout.splitlines()]
    assert [(d["input_seq"], d["derived_seq"]) for d in every] == [(11, 0), (13, 1)]
    assert cli("events", "--log", str(logged), "--derived", "--from", "11", "--limit", "1").stdout.count("\n") == 1
    assert cli("events", "--log", str(logged), "--derived", "--from", "14").stdout == ""


def test_ingest_strict_refuses_a_file_with_bad_lines_and_the_rejects_keep_their_text(tmp_path: Path) -> None:
    """WIRE_EXAMPLE has two bad lines, 9 and 11: with --strict nothing lands and the exit is 1;
    either way the rejects file holds each line as it was written."""
    source = tmp_path / "events.jsonl"
    source.write_text(WIRE_EXAMPLE)
    log = tmp_path / "log"
    strict = cli("ingest", str(source), "--log", str(log), "--strict", check=False)
    rejects = log / "rejects.jsonl"
    assert strict.returncode == 1 and strict.stdout == "" and "Traceback" not in strict.stderr
    assert strict.stderr.splitlines()[-1] == (
        f"clearinghouse: error: {source}: 2 bad lines (listed above, and with their text in {rejects}); "
        "nothing was ingested (--strict): fix them, or ingest without --strict to skip them"
    )
    assert cli("events", "--log", str(log)).stdout == ""
    kept = [json.loads(x) for x in rejects.read_text().splitlines()]
    lines = WIRE_EXAMPLE.splitlines()
    assert [(r["line"], r["text"]) for r in kept] == [(9, lines[8]), (11, lines[10])]
    assert lines[10] == '{"type":"deposit","account":"a1","amount":"1.0000001"}'
    lenient = cli("ingest", str(source), "--log", str(log))
    assert lenient.returncode == 0 and "ingested 15 events" in lenient.stdout


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _options(sub, (*path, name))
        else:
            found.append((path, action))
    return found


def test_every_option_of_every_command_has_a_help_text() -> None:
    options = _options(build_parser(), ("clearinghouse",))
    assert len(options) > 100  # every command's options were walked
    missing = [
        (" ".join(path), action.option_strings or action.dest)
        for path, action in options
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == []


def test_state_of_a_log_never_run_says_how_it_was_replayed(tmp_path: Path) -> None:
    """No snapshot: `state` replays every event in memory with the settings a first `run` would
    fix, and says so on stderr (stdout stays the JSON document)."""
    source = tmp_path / "crash.jsonl"
    source.write_text(CRASH)
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    result = cli("state", "--log", str(log), "--account", "bull", "--json")
    assert result.stderr == (
        f"note: {log} has no snapshot (never run): replaying its 6 events in memory with the default liquidation "
        f"settings (--liquidation mark); `clearinghouse run --log {log}` applies them once and keeps the state "
        "(pass it the liquidation flags you want)\n"
    )
    assert json.loads(result.stdout)["seq"] == 5
    cli("run", "--log", str(log))
    assert cli("state", "--log", str(log), "--account", "bull", "--json").stderr == ""


def test_state_of_one_account_honours_json(tmp_path: Path) -> None:
    """mm sold bull 200 BTC at 100 and holds the short at mark 96 (no liquidation: --liquidation
    off): value 1,000,000 + 200 * 4 = 1,000,800, notional 200 * 96 = 19,200, maintenance at
    40x = 19,200 / 80 = 240, margin used at the default 20x = 960, withdrawable 1,000,800 less the
    10% floor on notional (1,920) = 998,880, unrealized PnL 800. Without --json: text for people
    (USDC to the cent); with it: the exact JSON body."""
    log = _crash_log(tmp_path, "--liquidation", "off")
    text = cli("state", "--log", str(log), "--account", "mm").stdout
    assert text.splitlines()[:2] == [
        "mm at seq 5 (USDC to the cent; --json is exact)",
        "account value 1,000,800.00  notional 19,200.00  margin used 960.00  cross maintenance 240.00  "
        "withdrawable 998,880.00",
    ]
    (row,) = [line.split() for line in text.splitlines() if line.startswith("BTC")]
    assert row[:5] + row[6:] == ["BTC", "-200.0", "100.0", "19,200.00", "800.00", "20x", "cross", "960.00"]
    body = json.loads(cli("state", "--log", str(log), "--account", "mm", "--json").stdout)
    assert body["marginSummary"]["accountValue"] == "1000800.0" and body["crossMaintenanceMarginUsed"] == "240.0"


def _on_a_terminal(*args: str) -> str:
    """What the command writes to stderr when stderr is a terminal (a pseudo-terminal here)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearinghouse", *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    return b"".join(chunks).decode(errors="replace")


def test_progress_bars_on_a_terminal_and_quiet_turns_them_off(tmp_path: Path) -> None:
    shown = _on_a_terminal("demo", "--events", "3000", "--accounts", "50", "--dir", str(tmp_path / "a"))
    assert "generating" in shown and "applying" in shown and "3000/3000" in shown and "━" in shown
    assert _on_a_terminal("-q", "demo", "--events", "3000", "--accounts", "50", "--dir", str(tmp_path / "b")) == ""
