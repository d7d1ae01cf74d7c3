"""The command line's mistakes, made as a user makes them: each gives one line naming the problem
and what to do, and a non-zero exit; never a traceback. Warnings never reach `--json` stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import error

pytestmark = pytest.mark.slow  # every test runs the command in a subprocess

DATA = Path(__file__).parent.parent / "data"
ROOT = Path(__file__).parents[2]
STATE_SHAPE = 'the body of Hyperliquid\'s info request {"type": "clearinghouseState", "user": ...}'


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearinghouse", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def usage_error(*args: str) -> str:
    """argparse's refusal: exit 2, its last line names the argument."""
    result = cli(*args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr.splitlines()[-1]


@pytest.fixture()
def never_run(tmp_path: Path) -> Path:
    source = tmp_path / "events.jsonl"
    source.write_text('{"type":"deposit","account":"a","amount":"10"}\n')
    assert cli("ingest", str(source), "--log", str(tmp_path / "log")).returncode == 0
    return tmp_path / "log"


def test_verify_on_a_log_never_run(never_run: Path) -> None:
    assert error("replay", "verify", "--log", str(never_run)) == (
        f"clearinghouse: error: {never_run} has never been run (no derived/ inside), so there is nothing to verify; "
        f"apply its events first with `clearinghouse run --log {never_run}`"
    )


@pytest.mark.parametrize(
    ("content", "kind"),
    [("[1, 2]", "array"), ("null", "null"), ('"BTC"', "string"), ("7", "number"), ("true", "boolean")],
)
def test_hl_recompute_on_json_that_is_not_an_object(tmp_path: Path, content: str, kind: str) -> None:
    body = tmp_path / "state.json"
    body.write_text(content)
    assert error("hl", "recompute", str(body)) == (
        f"clearinghouse: error: {body} holds a JSON {kind}, not an object; expected {STATE_SHAPE}"
    )


def test_hl_recompute_on_files_that_are_not_json(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    assert error("hl", "recompute", str(missing)) == f"clearinghouse: error: no such file: {missing}"
    assert error("hl", "recompute", str(tmp_path)) == (
        f"clearinghouse: error: cannot read {tmp_path}: Is a directory; give the path of a JSON file"
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"assetPositions": [')
    assert error("hl", "recompute", str(broken)).startswith(f"clearinghouse: error: {broken} is not JSON: ")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)  # the json module's recursion limit
    assert error("hl", "recompute", str(deep)).startswith(f"clearinghouse: error: {deep} is not JSON: ")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"time": "\xe9"}')  # not UTF-8
    assert error("hl", "recompute", str(latin)).startswith(f"clearinghouse: error: {latin} is not JSON: ")


def test_hl_recompute_on_objects_of_another_shape(tmp_path: Path) -> None:
    given = json.loads((DATA / "hl_state.json").read_text())
    given["assetPositions"][0]["position"]["cumFunding"] = 5  # a number where an object belongs
    body = tmp_path / "state.json"
    body.write_text(json.dumps(given))
    assert error("hl", "recompute", str(body)) == (
        f"clearinghouse: error: cannot import {body}: malformed clearinghouseState: 'int' object has no attribute "
        f"'get'; expected {STATE_SHAPE}"
    )
    meta = tmp_path / "meta.json"
    meta.write_text("[1]")
    assert error("hl", "recompute", str(DATA / "hl_state.json"), "--meta", str(meta)) == (
        f"clearinghouse: error: {meta} holds a JSON array, not an object; expected the body of Hyperliquid's info "
        'request {"type": "meta"}'
    )


def test_generate_into_a_missing_folder(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "x.jsonl"
    assert error("generate", "--events", "10", "--out", str(out)) == (
        f"clearinghouse: error: cannot write {out}: No such file or directory; "
        "give a file in an existing folder you can write to"
    )
    assert error("generate", "--events", "10", "--out", str(tmp_path)) == (
        f"clearinghouse: error: cannot write {tmp_path}: Is a directory; "
        "give a file in an existing folder you can write to"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("generate", "--events", "-5"), "argument --events: expected an integer of at least 1, got '-5'"),
        (("generate", "--events", "0"), "argument --events: expected an integer of at least 1, got '0'"),
        (("generate", "--events", "many"), "argument --events: expected an integer of at least 1, got 'many'"),
        (("generate", "--accounts", "1"), "argument --accounts: expected an integer of at least 2, got '1'"),
        (("generate", "--markets", "0"), "argument --markets: expected an integer of at least 1, got '0'"),
        (("generate", "--pm-share", "2"), "argument --pm-share: expected a share from 0 to 1, got '2'"),
        (("generate", "--pm-share", "nan"), "argument --pm-share: expected a share from 0 to 1, got 'nan'"),
    ],
)
def test_generate_counts_out_of_range(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    out = tmp_path / "x.jsonl"
    assert usage_error(*args, "--out", str(out)) == f"clearinghouse generate: error: {message}"
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("demo", "--events", "0"), "argument --events: expected an integer of at least 1, got '0'"),
        (("run", "--log", "L", "--keep", "-1"), "argument --keep: expected an integer of at least 0, got '-1'"),
        (
            ("run", "--log", "L", "--snapshot-every", "0"),
            "argument --snapshot-every: expected an integer of at least 1, got '0'",
        ),
        (
            ("run", "--log", "L", "--checkpoint-every", "-5"),
            "argument --checkpoint-every: expected an integer of at least 1, got '-5'",
        ),
        (
            ("run", "--log", "L", "--depth", "0"),
            "argument --depth: expected from 0.000001 to 10000000000 USDC, got '0'",
        ),
        (
            ("run", "--log", "L", "--market-depth", "BTC=0"),
            "argument --market-depth: BTC: expected from 0.000001 to 10000000000 USDC, got '0'",
        ),
        (
            ("stress", "--generate", "--scenario", "uniform", "--market-depth", "BTC"),
            "argument --market-depth: expected COIN=USDC (a coin name, then its depth), got 'BTC'",
        ),
        (
            ("serve", "--log", "L", "--market-depth", "BTC=1", "--market-depth", "BTC=2"),
            "argument --market-depth: BTC is given twice",
        ),
        (
            ("run", "--log", "L", "--slippage-bps", "-5"),
            "argument --slippage-bps: expected from 0 to 5000 bps, got '-5'",
        ),
        (
            ("run", "--log", "L", "--liquidator-loss-limit", "-1"),
            "argument --liquidator-loss-limit: expected from 0 to 10000000000 USDC, got '-1'",
        ),
        (("events", "--log", "L", "--from", "-3"), "argument --from: expected an integer of at least 0, got '-3'"),
        (("events", "--log", "L", "--limit", "-1"), "argument --limit: expected an integer of at least 0, got '-1'"),
        (
            ("serve", "--log", "L", "--port", "70000"),
            "argument --port: expected an integer from 0 to 65535, got '70000'",
        ),
        (
            ("serve", "--log", "L", "--http-timeout", "0"),
            "argument --http-timeout: expected a number of seconds above 0, got '0'",
        ),
        (("produce", "--generate", "--block", "0"), "argument --block: expected an integer of at least 1, got '0'"),
    ],
)
def test_flags_out_of_range(args: tuple[str, ...], message: str) -> None:
    assert usage_error(*args) == f"clearinghouse {args[0]}: error: {message}"


def test_replay_of_an_account_that_does_not_exist(never_run: Path) -> None:
    assert error("replay", "diff", "--log", str(never_run), "--from", "0", "--to", "0", "--account", "zz") == (
        "clearinghouse: error: account 'zz' does not exist at seq 0 or at seq 0: "
        "check the name (names are case-sensitive)"
    )
    assert error("replay", "state", "--log", str(never_run), "--at", "0", "--account", "zz") == (
        "clearinghouse: error: unknown account 'zz' at seq 0: check the name (names are case-sensitive)"
    )
    outside = "clearinghouse: error: seq 5 is outside the log (0..0)"
    assert error("replay", "state", "--log", str(never_run), "--at", "5") == outside
    assert error("replay", "state", "--log", str(never_run), "--time", "yesterday") == (
        "clearinghouse: error: not an ISO 8601 time: 'yesterday'"
    )


def test_report_into_a_missing_folder(never_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "report.html"
    assert error("replay", "audit", "--log", str(never_run), "--account", "a", "--out", str(out)) == (
        f"clearinghouse: error: cannot write {out}: No such file or directory; "
        f"give a file in an existing folder you can write to"
    )


def test_warnings_go_to_stderr_not_into_json(tmp_path: Path) -> None:
    """A corrupt newest snapshot is skipped with a warning (the state is rebuilt from the older
    one): the warning is on stderr, and --json stdout stays one JSON document."""
    source = tmp_path / "gen.jsonl"
    generated = cli("generate", "--events", "3000", "--accounts", "50", "--markets", "2", "--out", str(source))
    assert generated.returncode == 0
    log = tmp_path / "log"
    assert cli("ingest", str(source), "--log", str(log)).returncode == 0
    assert cli("run", "--log", str(log), "--snapshot-every", "1000").returncode == 0
    newest = sorted((log / "state").glob("snap-*.snap"))[-1]
    data = bytearray(newest.read_bytes())
    data[100] ^= 0xFF
    newest.write_bytes(bytes(data))
    for args in (
        ("state", "--log", str(log), "--json"),
        ("replay", "state", "--log", str(log), "--at", "2999", "--json"),
    ):
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["seq"] == 2999
        assert "snapshot.skipped" in result.stderr and newest.name in result.stderr


BOOM = """\
import sys
import clearinghouse.edges.cli as cli
def boom(*args):
    raise RuntimeError("boom")
cli.write_jsonl = boom
sys.exit(cli.main(sys.argv[1:]))
"""


def test_an_unexpected_error_is_one_line_unless_a_traceback_is_asked_for(tmp_path: Path) -> None:
    args = [sys.executable, "-c", BOOM, "generate", "--events", "10", "--out", str(tmp_path / "x")]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 70
    assert result.stderr == (
        "clearinghouse: unexpected error: RuntimeError: boom; this is a bug: "
        "run again with CLEARINGHOUSE_TRACEBACK=1 for the traceback and report it\n"
    )
    result = subprocess.run(
        args, capture_output=True, text=True, cwd=ROOT, timeout=60, env={**os.environ, "CLEARINGHOUSE_TRACEBACK": "1"}
    )
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "RuntimeError: boom" in result.stderr
