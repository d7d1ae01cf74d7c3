"""A restart never changes the result: a log run in two parts (through a snapshot) ends in the
state and decisions of one run, and `replay verify` agrees.

Hand working (tests/support/borrower.py): a flat 87.6% borrow APY multiplies the debt by exactly
1.0001 an hour. The PM account holds 1,000 HYPE at 10 (LTV 0.65) and borrows 6,400 USDC at
hour 1; its partial borrow threshold is 10,000 * (0.65 + 0.35 / 2) = 8,250. After 2,540 hours
the debt is 6,400 * 1.0001^2540 = 8,250.59, past it (after 2,539: 8,249.77). The event at hour
2,541 is refused (a withdrawal from an account that does not exist), but time passing accrues
the interest whatever the event's fate. The check that interest makes due used to wait for the
next accepted event, in the engine's memory only: run in one go, the liquidation came one event
later; restarted from the snapshot taken after the refused event, it never came.
"""

from __future__ import annotations

from pathlib import Path

from clearinghouse.digest import state_digest
from clearinghouse.edges.cli import main as cli
from clearinghouse.edges.runner import run
from clearinghouse.engine import Engine
from clearinghouse.state import State
from events import schema as ev
from events.codec import decode_json
from events.eventlog import EventLog
from events.units import HOUR_MS, usd
from replay.logdir import LogDir
from replay.verify import verify
from tests.support.borrower import at_hour
from tests.support.pair import stamped
from tests.support.rulebook import class_transfer, deposit, lend, pm_rules, prices, set_mode, token, withdraw

DUE = 1 + 2540  # the hour whose boundary takes the debt past 8,250


def _lines() -> list[str]:
    return [
        pm_rules(pm={"base_apy": "0.876", "kink": "1", "min_value": "0"}),
        token("HYPE"),
        prices(HYPE="10"),
        deposit("lender", "10000"),
        class_transfer("lender", "10000", to_perp=False),
        lend("supply", "lender", "10000"),
        deposit("pm", "1000", token="HYPE"),
        set_mode("pm", "portfolio"),
        at_hour(1),
        lend("borrow", "pm", "6400"),
        stamped(withdraw("nobody", "1"), DUE * HOUR_MS),  # refused; its hour boundary accrues the interest
        at_hour(DUE),  # an accepted event after it (the restart happens between the two)
    ]


def _write(log: LogDir, lines: list[str]) -> None:
    with EventLog(log.events) as out:
        out.append([decode_json(line) for line in lines])


def _wrote(root: Path, lines: list[str]) -> LogDir:
    log = LogDir(root)
    _write(log, lines)
    return log


def test_the_interest_check_of_a_refused_event_is_made_at_that_event() -> None:
    engine = Engine(State())
    derived = [engine.apply(decode_json(line)) for line in _lines()]
    refused = derived[-2]
    assert isinstance(refused[0], ev.Rejected) and refused[0].seq == 10
    liquidated = [(type(d), d.kind, d.threshold, d.cause) for d in refused[1:]]
    assert liquidated == [(ev.BorrowLiquidation, "partial", usd("8250"), 10)]
    assert derived[-1] == []


def test_a_log_run_in_two_parts_ends_as_one_run_and_verifies(tmp_path: Path) -> None:
    lines = _lines()
    whole = run(_wrote(tmp_path / "whole", lines))
    parts = LogDir(tmp_path / "parts")
    _write(parts, lines[:-1])
    run(parts)  # a snapshot after the refused event
    _write(parts, lines[-1:])
    second = run(parts)  # a new engine on that snapshot
    assert second.applied == 1
    assert state_digest(second.state) == state_digest(whole.state)
    with EventLog(parts.derived, derived=True, readonly=True) as out:
        recorded = [e for _, e in out.read() if not isinstance(e, ev.Checkpoint)]
    assert [type(e) for e in recorded] == [ev.Rejected, ev.BorrowLiquidation]
    assert verify(parts).ok
    assert cli(["replay", "verify", "--log", str(parts.root)]) == 0
