"""`clearinghouse margin` and `clearinghouse books` as a user runs them (subprocesses): the
`--json` contract, the tables, the risk parameters from a file, clear one-line errors, and the
books report in headless Chromium with its chart. Figures worked by hand in the comments
(standard: BTC at 40x, MM notional / 80; risk: the shipped defaults of docs/risk-margin.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.browser import chromium, open_in_browser
from tests.support.cli import cli, error

pytestmark = pytest.mark.slow  # the command in subprocesses, a browser

# risk-model.md's example book
BOOK = {
    "prices": {"BTC": {"mark": "100000", "oracle": "100000"}, "HYPE": {"oracle": "40"}},
    "balances": {"USDC": "50000", "BTC": "10", "HYPE": "1000"},
    "borrowed": {"USDC": "0"},
    "positions": [{"coin": "BTC", "szi": "-10", "entry_px": "100000", "leverage": 10, "cross": True}],
}
# risk-model.md's parameter shape, BTC only (other underlyings take the shipped alt unit)
PARAMS = {
    "model": "risk",
    "mm_loss_factor": "0.5",
    "im_loss_factor": "1",
    "units": {
        "BTC": {
            "scenarios": [{"move": "-0.15"}, {"move": "0"}, {"move": "0.15"}],
            "basis_rate_mm": "0.005",
            "basis_rate_im": "0.01",
        }
    },
    "credits": [],
}


def _file(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_margin_json_gives_every_model_in_the_contract_shape(tmp_path: Path) -> None:
    out = json.loads(cli("margin", _file(tmp_path, "book.json", BOOK), "--json").stdout)
    assert list(out) == ["standard", "unified", "portfolio", "risk"]
    for figures in out.values():
        assert set(figures) == {"equity", "initial", "maintenance", "ratio", "breakdown"}
    # standard: the USDC alone backs the perp (spot does not count): IM 1,000,000 / 10 = 100,000,
    # MM 1,000,000 / 80 = 12,500, ratio 12,500 / 50,000 = 0.25
    standard = out["standard"]
    figures = [standard[k] for k in ("equity", "initial", "maintenance", "ratio")]
    assert figures == ["50000.0", "100000.0", "12500.0", "0.25"]
    # risk: equity 50,000 + 1,000,000 + 40,000; BTC nets to 0 (scan 0), HYPE 40,000 falls 25%:
    # 10,000; perp 0.2% / 0.4% of 1,000,000; basis 0.5% / 1% of 1,000,000; concentration
    # 0.1 * 40,000^2 / 5e7 = 3.2. MM 5,000 + 2,000 + 5,000 + 3.2, IM 10,000 + 4,000 + 10,000 + 3.2;
    # ratio 12,003.2 / 1,090,000 = 0.01101211..., up to 0.011013
    risk = out["risk"]
    assert [risk[k] for k in ("equity", "initial", "maintenance", "ratio")] == [
        "1090000.0",
        "24003.2",
        "12003.2",
        "0.011013",
    ]
    assert risk["breakdown"]["terms"]["scan HYPE"] == {
        "scan": "10000.0",
        "binding": "scenario 0: move -0.25 (weight 1)",
        "maintenance": "5000.0",
        "initial": "10000.0",
    }


def test_margin_with_a_parameter_file_and_one_model(tmp_path: Path) -> None:
    book = {
        "prices": {"BTC": {"mark": "100000"}},
        "balances": {"USDC": "200000"},
        "positions": [{"coin": "BTC", "szi": "10", "entry_px": "100000"}],
    }
    args = ("margin", _file(tmp_path, "book.json", book), "--params", _file(tmp_path, "p.json", PARAMS))
    out = json.loads(cli(*args, "--model", "risk", "--json").stdout)
    # risk-model.md's directional example: scan 150,000 at -15%, MM 75,000, IM 150,000
    assert list(out) == ["risk"]
    assert (out["risk"]["maintenance"], out["risk"]["initial"]) == ("75000.0", "150000.0")
    text = cli(*args, "--model", "risk").stdout
    assert "scan BTC" in text and "scenario 0: move -0.15 (weight 1)" in text and "150000.0" in text


def test_margin_errors_are_one_line_without_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    assert error("margin", str(missing)) == f"clearinghouse: error: book {missing}: no such file"
    bad = _file(tmp_path, "bad.json", {**BOOK, "balance": {}})
    assert error("margin", bad) == f"clearinghouse: error: book {bad}: Object contains unknown field `balance`"
    odd = _file(tmp_path, "odd.json", {**BOOK, "balances": {"USDC": "1.0000001"}})
    assert error("margin", odd) == "clearinghouse: error: a balance of USDC has more than 6 decimals"
    params = _file(tmp_path, "p.json", {**PARAMS, "im_loss_factor": "0.1"})
    book = _file(tmp_path, "book.json", BOOK)
    assert error("margin", book, "--params", params) == (
        "clearinghouse: error: im_loss_factor must not be below mm_loss_factor"
    )
    text = tmp_path / "text.json"
    text.write_text("not json")
    assert error("margin", str(text)).startswith(f"clearinghouse: error: book {text}: not JSON")


def test_help_shows_examples() -> None:
    assert "clearinghouse margin book.json --model risk" in cli("margin", "--help").stdout
    assert "clearinghouse books --out books.html" in cli("books", "--help").stdout


def test_books_json_and_table() -> None:
    out = json.loads(cli("books", "--json").stdout)
    assert list(out) == ["carry", "pair", "directional", "market maker", "HYPE borrower"]
    carry = out["carry"]["models"]
    # tests/core/test_canonical_books.py works these out: risk frees (25,000 - 14,000) / 25,000
    assert (carry["risk"]["initial"], carry["risk"]["freed_pct"]) == ("14000.0", "44.0")
    assert carry["portfolio"]["cheapest"] is True
    assert out["HYPE borrower"]["models"]["standard"] == {
        "cannot_hold": "a standard account cannot borrow",
        "freed_pct": None,
        "cheapest": False,
    }
    table = cli("books").stdout
    assert "cannot hold: a standard account cannot borrow" in table and "-516.04%" in table
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("book"))
    assert header.split()[-1] == "note"  # remarks sit under a named, left-aligned column
    assert not [line for line in lines if line != line.rstrip()]  # piped: no padding left at line ends


def test_the_books_report_loads_in_a_browser_with_its_chart(tmp_path: Path) -> None:
    chromium()
    report = tmp_path / "books.html"
    assert cli("books", "--out", str(report)).stdout.endswith(f"report: {report}\n")
    page = report.read_text()
    assert "HYPE borrower" in page and "cannot hold: a standard account cannot borrow" in page
    width, height = open_in_browser(report, tmp_path)["chart"]
    assert width > 0 and height > 0  # the chart decoded
