"""`clearinghouse margin` and `clearinghouse books` (docs/risk-margin.md): one book's requirement
under each margin model, and the canonical books compared. Files are read here; the figures are
the core's (`clearinghouse.calculator`, `clearinghouse.books`)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from clearinghouse.books import CANONICAL, Row, compare
from clearinghouse.calculator import RATIO_DECIMALS, Answer, BookError, CannotHold, answer
from clearinghouse.edges.tables import print_tables, table
from clearinghouse.models.registry import MODELS
from events.book import MarginBook
from events.codec import CodecError, decode_document
from events.schema import RiskParams
from events.units import USD_DECIMALS, format_decimal

MARGIN_EXAMPLES = """examples:
  clearinghouse margin book.json                   every model, as tables
  clearinghouse margin book.json --model risk      the risk model's figures and every term
  clearinghouse margin book.json --params risk.json --json

A book (docs/risk-margin.md, "Describing a book"):
  {"prices": {"BTC": {"mark": "100000"}}, "balances": {"USDC": "50000", "BTC": "10"},
   "positions": [{"coin": "BTC", "szi": "-10", "entry_px": "100000", "leverage": 10}]}"""

BOOKS_EXAMPLES = """examples:
  clearinghouse books                              the table
  clearinghouse books --out books.html             and an HTML report with a bar chart
  clearinghouse books --params risk.json --json"""


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Registers `margin` and `books` with the CLI's `command` helper."""
    p = command("margin", cmd_margin, "one book's equity, IM, MM and ratio under each margin model, with every term")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = MARGIN_EXAMPLES
    p.add_argument("book", metavar="BOOK.json", help="the book: prices, balances, borrows, positions")
    p.add_argument("--model", choices=[*MODELS, "all"], default="all", help="the model to ask (default all of them)")
    p.add_argument("--params", metavar="FILE", help="risk-model parameters (default: the shipped ones)")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by model name")
    p = command("books", cmd_books, "canonical books under every margin model: IM, MM, capital freed, cheapest")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = BOOKS_EXAMPLES
    p.add_argument("--params", metavar="FILE", help="risk-model parameters (default: the shipped ones)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--out", metavar="report.html", help="also write an HTML report with a bar chart")


def _read(path: str, kind: type, what: str) -> Any:
    """A JSON document of the wire format from a file (errors say which file and field)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BookError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise BookError(f"{what} {path}: is a folder, not a file") from None
    try:
        return decode_document(data, kind, f"{what} {path}")
    except CodecError as exc:
        raise BookError(str(exc)) from None


def _params(path: str | None) -> RiskParams | None:
    return _read(path, RiskParams, "parameters") if path else None


def _usd(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


def _ratio(value: int | None) -> str | None:
    return None if value is None else format_decimal(value, RATIO_DECIMALS)


def answer_json(a: Answer | CannotHold) -> dict[str, Any]:
    """A model's answer in the `--json` shape (these names are a contract)."""
    if isinstance(a, CannotHold):
        return {"cannot_hold": a.reason}
    return {
        "equity": _usd(a.equity),
        "initial": _usd(a.initial),
        "maintenance": _usd(a.maintenance),
        "ratio": _ratio(a.ratio),
        "breakdown": a.breakdown,
    }


def cmd_margin(args: argparse.Namespace) -> int:
    book = _read(args.book, MarginBook, "book")
    risk = _params(args.params)
    modes = list(MODELS) if args.model == "all" else [args.model]
    answers = {mode: answer(book, mode, risk) for mode in modes}
    if args.json:
        sys.stdout.write(json.dumps({m: answer_json(a) for m, a in answers.items()}, indent=2) + "\n")
        return 0
    summary = table("model", "equity", "initial", "maintenance", "ratio")
    notes: list[str | Table] = []
    for mode, a in answers.items():
        if isinstance(a, CannotHold):
            summary.add_row(mode, "-", "-", "-", "-")
            notes.append(f"{mode}: cannot hold this book: {a.reason}")
            continue
        summary.add_row(mode, _usd(a.equity), _usd(a.initial), _usd(a.maintenance), _ratio(a.ratio) or "-")
        terms = a.breakdown.get("terms")
        if terms:
            scans = table(f"{mode} term", "scan", "maintenance", "initial", "binding")
            for name, t in terms.items():
                scans.add_row(name, t.get("scan", ""), t["maintenance"], t["initial"], t.get("binding", ""))
            notes.append(scans)
    print_tables("USDC, exact; ratio = maintenance / equity (liquidatable above 1)", summary, *notes)
    return 0


def books_json(rows: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in rows:
        entry = answer_json(r.answer)
        entry["freed_pct"] = None if r.freed is None else format_decimal(r.freed, 4)
        entry["cheapest"] = r.cheapest
        book = out.setdefault(r.book, {"description": CANONICAL[r.book][0], "models": {}})
        book["models"][r.model] = entry
    return out


def cmd_books(args: argparse.Namespace) -> int:
    rows = compare(_params(args.params))
    if args.out:
        try:
            report = importlib.import_module("replay.books_report")
        except ModuleNotFoundError as exc:
            raise BookError(
                f"`clearinghouse books --out` needs {exc.name}, which is not installed: "
                "pip install 'clearinghouse[report]'"
            ) from None
        Path(args.out).write_text(report.render_html(rows), encoding="utf-8")
    if args.json:
        sys.stdout.write(json.dumps(books_json(rows), indent=2) + "\n")
        return 0
    shown = table("book", "model", "initial", "maintenance", "freed vs standard", note="note")
    for r in rows:
        a = r.answer
        if isinstance(a, CannotHold):
            shown.add_row(r.book, r.model, "-", "-", "-", f"cannot hold: {a.reason}")
            continue
        freed = "-" if r.freed is None else f"{format_decimal(r.freed, 4)}%"
        shown.add_row(r.book, r.model, _usd(a.initial), _usd(a.maintenance), freed, "cheapest" if r.cheapest else "")
    lines: list[str | Table] = [
        "Canonical books at one set of prices (USDC; freed: standard's IM less the model's, in %)"
    ]
    lines += [f"  {name}: {desc}" for name, (desc, _) in CANONICAL.items()]
    print_tables(*lines, shown)
    if args.out:
        print(f"report: {args.out}")
    return 0
