"""`clearinghouse demo` leads somewhere: it names the largest liquidation and prints the
`replay audit` command for it (which works as printed), says what it shows about bad debt,
groups the rejections by reason, and formats its numbers one way. Run as a user runs it;
every expectation is read independently from the demo's derived log (`events --derived`)."""

from __future__ import annotations

import json
import re
import shlex
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.cli import cli

pytestmark = pytest.mark.slow  # the demo in a subprocess


def _is_number(word: str) -> bool:
    try:
        Decimal(word)
    except ArithmeticError:
        return False
    return True


def _group(rejected: dict) -> str:
    """A rejection's type and reason with each number replaced by N (a word that parses as a
    decimal, trailing punctuation kept)."""
    words = []
    for word in rejected["reason"].split():
        bare = word.rstrip(",:;.")
        words.append("N" + word[len(bare) :] if _is_number(bare) else word)
    return f"{rejected['event']}: {' '.join(words)}"


def _cents(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01')):,}"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[dict]]:
    """A 5,000-event demo of 100 accounts: its crash leaves some bad debt."""
    root = tmp_path_factory.mktemp("demo") / "log"
    out = cli("demo", "--accounts", "100", "--events", "5000", "--dir", str(root)).stdout
    derived = [json.loads(line) for line in cli("events", "--log", str(root), "--derived").stdout.splitlines()]
    return root, out, derived


def test_demo_names_the_largest_liquidation_and_its_audit_command_works(small: tuple[Path, str, list[dict]]) -> None:
    root, out, derived = small
    triggered = [d for d in derived if d["type"] == "liquidation_triggered"]
    largest = max(triggered, key=lambda d: Decimal(d["maintenance"]))  # the first of equals
    scope = largest["scope"] if largest["scope"] in ("cross", "portfolio") else f"isolated {largest['scope']}"
    assert f"largest liquidation: {largest['account']} at seq {largest['cause']} ({scope}: " in out
    (command,) = [line.strip() for line in out.splitlines() if line.strip().startswith("clearinghouse replay audit")]
    args = shlex.split(command)
    report = root / "audit.html"
    assert args == [
        "clearinghouse",
        "replay",
        "audit",
        "--log",
        str(root),
        "--account",
        largest["account"],
        "--out",
        str(report),
    ]
    audited = cli(*args[1:]).stdout
    assert f"seq {largest['cause']} (" in audited and f"report: {report}" in audited
    assert largest["account"] in report.read_text()


def test_demo_says_how_much_bad_debt(small: tuple[Path, str, list[dict]]) -> None:
    _, out, derived = small
    debts = [Decimal(d["amount"]) for d in derived if d["type"] == "bad_debt"]
    assert debts  # this stream's crash leaves some
    assert f"; {len(debts):,} bad debts ({_cents(sum(debts))} USDC)" in out
    assert f"bad debt {_cents(sum(debts))}  accounts below maintenance" in out


def test_demo_shows_the_top_rejection_reasons(small: tuple[Path, str, list[dict]]) -> None:
    _, out, derived = small
    counts: dict[str, int] = {}
    for rejected in (d for d in derived if d["type"] == "rejected"):
        counts[_group(rejected)] = counts.get(_group(rejected), 0) + 1
    top = sorted(counts.items(), key=lambda c: (-c[1], c[0]))[:3]
    assert top and "N" in top[0][0]  # amounts stripped, so alike reasons add up
    assert f"top rejection reasons: {'; '.join(f'{reason} ({n:,})' for reason, n in top)}\n" in out
    assert f"; {sum(counts.values()):,} rejected" in out


def test_demo_formats_numbers_one_way(small: tuple[Path, str, list[dict]]) -> None:
    """Counts and amounts carry thousands separators, USDC shows cents; seqs stay plain (they
    are typed back as arguments); account names and the digest are not numbers."""
    root, out, _ = small
    assert re.search(r"^5,000 events \([\d,]+ trades, volume [\d,]+\.\d\d USDC\) applied", out, re.M)
    assert re.search(r"^deposited [\d,]+\.\d\d  withdrawn [\d,]+\.\d\d  fees [\d,]+\.\d\d$", out, re.M)
    assert re.search(r"^liquidator value -?[\d,]+\.\d\d \(\d+ positions\)  bad debt [\d,]+\.\d\d  ", out, re.M)
    for line in out.replace(str(root), "DIR").splitlines():
        if "digest" in line:
            continue
        line = re.sub(r"seq \d+", "seq", line)
        assert not re.search(r"(?<![\w.,-])-?\d{4,}(?:\.\d+)?(?![\w])", line), line  # no ungrouped 1000 or more


def test_demo_without_bad_debt_says_so(tmp_path: Path) -> None:
    """The 20,000-event demo of 300 accounts: ADL covers every loss the liquidator declines."""
    root = tmp_path / "demo"
    out = cli("demo", "--accounts", "300", "--events", "20000", "--dir", str(root)).stdout
    derived = [json.loads(line) for line in cli("events", "--log", str(root), "--derived").stdout.splitlines()]
    assert not [d for d in derived if d["type"] == "bad_debt"] and [d for d in derived if d["type"] == "adl"]
    assert "auto-deleveraged closes; no bad debt (the liquidator and auto-deleveraging covered every loss)" in out
    assert "bad debts" not in out
    again = cli("demo", "--accounts", "300", "--events", "20000", "--dir", str(tmp_path / "again"), "--json")
    summary = json.loads(again.stdout)
    assert summary["decisions"].get("bad_debt", 0) == 0 and summary["bad_debt"] == "0.0"
    assert summary["audit_command"].startswith("clearinghouse replay audit --log ")
    assert summary["largest_liquidation"]["account"] in summary["audit_command"]
