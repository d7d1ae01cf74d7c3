"""The replay tool: state at a point (against a plain replay), verify, audit, diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from clearinghouse.digest import state_digest
from clearinghouse.edges.runner import run
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.eventlog import EventLog
from events.units import HOUR_MS
from replay.audit import audit
from replay.history import parse_time, state_at
from replay.logdir import LogDir
from tests.support.cli import cli
from tests.support.pair import stamped
from tests.support.pm import two_borrow_lines
from tests.support.rulebook import prices
from tests.support.streams import CRASH, crash_stream

pytestmark = pytest.mark.slow  # a generated crash log for the module, the command in subprocesses

CONFIG = LiquidationConfig(loss_limit=0)


@pytest.fixture(scope="module")
def crash_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[LogDir, list]:
    stream = crash_stream(accounts=300, events=4_000, seed=8)
    log = LogDir(tmp_path_factory.mktemp("crash"))
    with EventLog(log.events) as out:
        for i in range(0, len(stream), 100):
            out.append(stream[i : i + 100])
    run(log, snapshot_every=1000, checkpoint_every=500, liquidation=CONFIG)
    return log, stream


def _plain(stream: list, upto: int) -> State:
    """The simple twin: a replay from the first event, no snapshot."""
    engine = Engine(State(liquidation=CONFIG))
    for event in stream[: upto + 1]:
        engine.apply(event)
    return engine.state


@pytest.mark.parametrize("seq", [0, 999, 1000, 2345, 3999, 4008, 4030, 4057])
def test_state_at_a_seq_equals_a_plain_replay(crash_log: tuple[LogDir, list], seq: int) -> None:
    """Points in the calm and inside the crash (the first liquidation is at seq 4008, after the
    snapshot at 4000), replayed as guided by the recorded decisions."""
    log, stream = crash_log
    assert state_digest(state_at(log, seq=seq)) == state_digest(_plain(stream, seq))


def test_state_at_a_time_applies_the_events_up_to_it(crash_log: tuple[LogDir, list]) -> None:
    log, stream = crash_log
    moment = stream[3000].ts
    last = max(i for i, e in enumerate(stream) if e.ts is not None and e.ts <= moment)
    assert state_digest(state_at(log, time=moment)) == state_digest(_plain(stream, last))
    assert parse_time("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_time("2023-11-14T23:13:20+01:00") == 1_700_000_000_000


def test_state_at_is_not_misled_by_a_derived_log_that_does_not_fit(
    crash_log: tuple[LogDir, list], tmp_path: Path
) -> None:
    """Every liquidation decision of the derived log replaced by a rejection: the guided replay
    decides otherwise, so the stretch is replayed again with the trigger index (and says so);
    the audit too."""
    log, stream = crash_log
    copy = LogDir(tmp_path / "copy")
    copy.root.mkdir()
    for path in ("events", "state"):
        (copy.root / path).symlink_to(log.root / path)
    with EventLog(log.derived, derived=True, readonly=True) as src, EventLog(copy.derived, derived=True) as dst:
        for _, block in src.blocks():
            dst.append(
                [
                    e if isinstance(e, (ev.Rejected, ev.Checkpoint)) else ev.Rejected(seq=e.cause, reason="forged")
                    for e in block
                ]
            )
    with structlog.testing.capture_logs() as logs:
        assert state_digest(state_at(copy, seq=4030)) == state_digest(_plain(stream, 4030))
        with EventLog(log.derived, derived=True, readonly=True) as derived:
            victim = next(e.account for _, e in derived.read() if isinstance(e, ev.LiquidationTriggered))
        forged, real = audit(copy, victim), audit(log, victim)
    assert [entry["event"] for entry in logs] == ["history.unguided", "history.unguided"]
    assert forged.as_json() == real.as_json() and real.episodes


def test_state_at_past_the_last_run_replays_with_the_trigger_index(tmp_path: Path) -> None:
    """Events appended after the last run have no recorded decisions yet: the replay past the
    newest snapshot finds the liquidations itself."""
    stream = crash_stream(accounts=300, events=4_000, seed=8)
    log = LogDir(tmp_path / "log")
    with EventLog(log.events) as out:
        out.append(stream[:3_500])
        run(log, snapshot_every=1000, liquidation=CONFIG)
        out.append(stream[3_500:])
    with structlog.testing.capture_logs() as logs:
        assert state_digest(state_at(log, seq=4030)) == state_digest(_plain(stream, 4030))
        moment = stream[4030].ts
        last = max(i for i, e in enumerate(stream) if e.ts is not None and e.ts <= moment)
        assert state_digest(state_at(log, time=moment)) == state_digest(_plain(stream, last))
    assert logs == []


def test_replay_state_cli_has_seq_and_rejects_outside_points(crash_log: tuple[LogDir, list]) -> None:
    log, stream = crash_log
    name = next(e.buyer for e in stream if isinstance(e, ev.Trade))
    out = json.loads(
        cli("replay", "state", "--log", str(log.root), "--at", "3000", "--account", name, "--json").stdout
    )
    assert out["seq"] == 3000
    bad = cli("replay", "state", "--log", str(log.root), "--at", "999999", check=False)
    assert bad.returncode == 1 and "outside the log" in bad.stderr


def test_verify_passes_then_names_the_first_seq_that_differs(crash_log: tuple[LogDir, list], tmp_path: Path) -> None:
    log, _ = crash_log
    result = json.loads(cli("replay", "verify", "--log", str(log.root), "--json").stdout)
    assert result["ok"] and result["checkpoints"] == 7 and result["derived_events"] > 100  # 3999's lands at 4249: held
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        first = next(e for _, e in derived.read() if isinstance(e, ev.LiquidationTriggered))
    # Tamper with the input: the tick that caused the first liquidation becomes a no-op event.
    copy = LogDir(tmp_path / "copy")
    with EventLog(log.events, readonly=True) as src, EventLog(copy.events) as dst:
        for seq, events in src.blocks():
            dst.append([ev.Rules(name="hl-current") if seq + i == first.cause else e for i, e in enumerate(events)])
    for path in ("derived", "state"):
        (copy.root / path).symlink_to(log.root / path)
    bad = cli("replay", "verify", "--log", str(copy.root), check=False)
    assert bad.returncode == 3
    assert f"MISMATCH at seq {first.cause}: derived event differs" in bad.stderr


def test_audit_explains_a_liquidation(tmp_path: Path) -> None:
    source = tmp_path / "crash.jsonl"
    source.write_text(CRASH)
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    cli("run", "--log", str(log))
    report = tmp_path / "report.html"
    result = json.loads(
        cli("replay", "audit", "--log", str(log), "--account", "bull", "--json", "--out", str(report)).stdout
    )
    (episode,) = result["liquidations"]
    # bull: 200 BTC long at 100 on 1,000; at 96 AV 200 < MM 240 -> market phase at 96 (no
    # slippage): sells 200 at 96, pays 0.045% of 19,200 = 8.64, keeps 1000 - 800 - 8.64 = 191.36.
    assert episode["cause"] == 5 and episode["trigger"] == {"type": "prices", "prices": {"BTC": {"mark": "96.0"}}}
    (found,) = episode["before"]
    assert {k: found[k] for k in ("scope", "equity", "maintenance", "phase")} == {
        "scope": "cross",
        "equity": "200.0",
        "maintenance": "240.0",
        "phase": "market",
    }
    assert episode["marks"] == {"BTC": "96.0"}
    assert [(a["type"], a["sz"], a["px"], a["fee"]) for a in episode["actions"]] == [
        ("liquidation_fill", "-200.0", "96.0", "8.64")
    ]
    assert episode["kept"] == "191.36"
    assert [(s["seq"], s["equity"], s["maintenance"]) for s in result["series"]] == [
        (3, "1000.0", "0.0"),
        (4, "1000.0", "250.0"),
        (5, "191.36", "0.0"),
    ]
    page = report.read_text()
    assert "<img" in page and "base64," in page and "liquidation_fill" in page


def test_audit_explains_a_borrow_liquidation(tmp_path: Path) -> None:
    """The rulebook's borrow example (10 HYPE, LTV 0.5, 250 USDC borrowed), then HYPE at 33."""
    source = tmp_path / "borrow.jsonl"
    source.write_text("\n".join([*two_borrow_lines(), stamped(prices(HYPE="33"), HOUR_MS + 1)]) + "\n")
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    cli("run", "--log", str(log))
    (episode,) = json.loads(cli("replay", "audit", "--log", str(log), "--account", "pm", "--json").stdout)[
        "liquidations"
    ]
    # at 33 the collateral is worth 330 and the partial threshold 330 * (0.5 + 0.5 / 2) = 247.50 < 250:
    # a partial liquidation, two 20% steps of the 10 HYPE (4 HYPE, 132 of the debt repaid)
    # (the collateral, 10 HYPE at 33, is worth 330)
    assert episode["before"] == [
        {"scope": "borrow", "borrowed": "250.0", "threshold": "247.5", "collateral_value": "330.0", "kind": "partial"}
    ]
    (action,) = episode["actions"]
    assert (action["type"], action["kind"], action["taken"], action["repaid"]) == (
        "borrow_liquidation",
        "partial",
        {"HYPE": "4.0"},
        "132.0",
    )


def test_diff_between_two_points(tmp_path: Path) -> None:
    source = tmp_path / "crash.jsonl"
    source.write_text(CRASH)
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    out = json.loads(cli("replay", "diff", "--log", str(log), "--from", "3", "--to", "4", "--account", "bull").stdout)
    # seq 4: bull buys 200 BTC at 100: cross ledger 1000 -> 1000 - 20000 = -19000; notional 20,000
    changes = out["accounts"]["bull"]
    assert changes["crossMarginSummary.totalRawUsd"] == ["1000.0", "-19000.0"]
    assert changes["crossMarginSummary.totalNtlPos"] == ["0.0", "20000.0"]
    assert "assetPositions.BTC" not in changes  # a new position: each leaf named, [null, value]
    assert changes["assetPositions.BTC.szi"] == [None, "200.0"]
    assert changes["assetPositions.BTC.entryPx"] == [None, "100.0"]
    assert out["markets"] == {"BTC": {"open_interest": ["0.0", "200.0"]}}
