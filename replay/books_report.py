"""The canonical books report (`clearinghouse books --out`): a self-contained HTML page with a
bar chart of each book's initial and maintenance requirement under every margin model and the
table of figures, made with the audit report's machinery (`replay.report`)."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt

from clearinghouse.books import CANONICAL, Row
from clearinghouse.calculator import Answer
from clearinghouse.models.registry import MODELS
from events.units import USD, USD_DECIMALS, format_decimal
from replay.report import COLORS, STYLE, html_table, png_img, png_of


def plot_png(rows: list[Row]) -> bytes:
    """Grouped bars: per book, each model's IM (solid) with its MM (hatched, in front); a model
    that cannot hold the book has no bar."""
    books = list(CANONICAL)
    models = list(MODELS)
    fig, ax = plt.subplots(figsize=(11, 5), dpi=100)
    width = 0.8 / len(models)
    for j, mode in enumerate(models):
        figures = {r.book: r.answer for r in rows if r.model == mode and isinstance(r.answer, Answer)}
        xs = [i + (j - (len(models) - 1) / 2) * width for i, b in enumerate(books) if b in figures]
        held = [b for b in books if b in figures]
        color = COLORS[j % len(COLORS)]
        ax.bar(xs, [figures[b].initial / USD for b in held], width, color=color, label=f"{mode} IM")
        mm = [figures[b].maintenance / USD for b in held]
        ax.bar(xs, mm, width * 0.6, color="white", edgecolor=color, hatch="//")
    ax.set_xticks(range(len(books)), books)
    ax.set_ylabel("USDC")
    ax.set_yscale("log")
    ax.set_title("Initial (bars) and maintenance (hatched) requirement of each book, by margin model")
    ax.legend(ncols=len(models), fontsize=9)
    return png_of(fig)


def render_html(rows: list[Row]) -> str:
    e = html.escape
    table_rows = []
    for r in rows:
        a = r.answer
        if isinstance(a, Answer):
            freed = "-" if r.freed is None else f"{format_decimal(r.freed, 4)}%"
            cells = [format_decimal(v, USD_DECIMALS) for v in (a.equity, a.initial, a.maintenance)]
            table_rows.append([e(r.book), e(r.model), *cells, freed, "cheapest" if r.cheapest else ""])
        else:
            table_rows.append([e(r.book), e(r.model), "-", "-", "-", "-", e(f"cannot hold: {a.reason}")])
    described = "".join(f"<li><b>{e(name)}</b>: {e(desc)}</li>" for name, (desc, _) in CANONICAL.items())
    head = ["book", "model", "equity", "initial", "maintenance", "freed vs standard", ""]
    return "".join(
        [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>Margin models on canonical books</title><style>{STYLE}</style></head><body>",
            "<h1>Margin models on canonical books</h1>",
            "<p class='why'>Each book at one set of prices, held as one account under every margin model. "
            "Freed: standard cross margin's initial requirement less the model's, as a share of standard's. "
            "Amounts in USDC, exact.</p>",
            f"<ul>{described}</ul>",
            png_img(plot_png(rows), "chart", "initial and maintenance requirement of each book under each model"),
            html_table(head, table_rows, {2, 3, 4, 5}),
            "</body></html>",
        ]
    )
