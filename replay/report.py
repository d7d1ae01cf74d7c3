"""The audit as a self-contained HTML page (no script, the plot embedded as a PNG).

The plot has three panels: equity against maintenance margin over the whole history with the
liquidation window shaded; the window itself, with a numbered marker per liquidation (the same
numbers as the sections below) and the equity and maintenance the engine found there; and the
marks of the account's coins over the window, as a change from the window's first tick. Each
section says why in a paragraph, then gives the figures in tables: the scopes found below
maintenance, the marks, every decision with coin, size and price, and what was left.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from clearinghouse.liquidator import LIQUIDATOR  # noqa: E402
from clearinghouse.overview import cents, grouped  # noqa: E402
from events.units import PX_DECIMALS, USD, format_decimal  # noqa: E402
from replay.audit import Audit, Episode, signed, when  # noqa: E402

PLOT_ALT = "equity and maintenance margin over time, the liquidation window and the marks"
EQUITY, MAINTENANCE, MARKER = "#1f77b4", "#d62728", "#ff7f0e"
DECIMAL = re.compile(r"-?\d+(\.\d+)?")
COLORS = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#1f77b4"]


class Frame:
    """The x axis of every panel: event time when the events carry times, otherwise input seq
    (hand-written logs often carry none). On a time axis the points from before the first
    event time (time 0) are left out: they have no place on it."""

    def __init__(self, result: Audit) -> None:
        self.result = result
        self.by_time = any(t for _, t, _, _ in result.series)

    def x(self, seq: int, ts: int) -> Any:
        return datetime.fromtimestamp(ts / 1000, tz=UTC) if self.by_time else seq

    def placed(self, points: list[Any]) -> list[Any]:
        """The points (seq, ts, ...) that have a place on the axis."""
        return [p for p in points if p[1]] if self.by_time else points

    def clip(self, points: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Points (seq, ts, ...) over the window on a time axis: those inside it, the last one
        before it moved to its start and the last one of all carried to its end, so the step
        lines span it (on a seq axis, all of them)."""
        window = self.result.window()
        points = self.placed(points)
        if not self.by_time or window is None or not points:
            return points
        start, end = window
        inside = [p for p in points if start <= p[1] <= end]
        before = [(p[0], start, *p[2:]) for p in points if p[1] < start][-1:]
        last = (inside or before)[-1:]
        return before + inside + [(p[0], end, *p[2:]) for p in last]

    def frame(self, ax: Axes) -> None:
        """On a time axis, the window's bounds."""
        window = self.result.window()
        if self.by_time and window is not None:
            ax.set_xlim(self.x(0, window[0]), self.x(0, window[1]))


def plot_png(result: Audit) -> bytes:
    frame = Frame(result)
    if result.episodes:
        fig, axes = plt.subplots(3, 1, figsize=(11, 11), dpi=100, gridspec_kw={"height_ratios": [3, 4, 3]})
        _history(axes[0], frame)
        _zoom(axes[1], frame)
        _marks(axes[2], frame)
    else:
        fig, ax = plt.subplots(figsize=(11, 4), dpi=100)
        _history(ax, frame)
    return png_of(fig)


def png_of(fig: Figure) -> bytes:
    """A figure laid out and saved as PNG bytes (closed after: pyplot keeps none open)."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def png_img(png: bytes, ident: str, alt: str) -> str:
    """An <img> embedding PNG bytes (the page stays self-contained)."""
    return f"<img id='{ident}' alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _steps(ax: Axes, frame: Frame, series: list[tuple[int, int, int, int]]) -> None:
    series = frame.placed(series)
    xs = [frame.x(s, t) for s, t, _, _ in series]
    ax.plot(
        xs, [e / USD for _, _, e, _ in series], label="equity (account value)", color=EQUITY, drawstyle="steps-post"
    )
    ax.plot(
        xs, [m / USD for _, _, _, m in series], label="maintenance margin", color=MAINTENANCE, drawstyle="steps-post"
    )
    ax.set_ylabel("USDC")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.grid(alpha=0.3)


def _history(ax: Axes, frame: Frame) -> None:
    result = frame.result
    _steps(ax, frame, result.series)
    window = result.window()
    if window is not None and frame.by_time:
        ax.axvspan(
            frame.x(0, window[0]), frame.x(0, window[1]), color=MARKER, alpha=0.25, label="liquidation window (below)"
        )
    ax.set_title(f"{result.account}: equity and maintenance margin over the whole log")
    ax.legend(loc="best", fontsize=8)


def _offsets(frame: Frame) -> list[float]:
    """Horizontal offsets (points) of the numbered markers: liquidations closer together than
    a fiftieth of the window sit side by side instead of on top of each other."""
    episodes = frame.result.episodes
    where = [e.time if frame.by_time else e.cause for e in episodes]
    window = frame.result.window()
    start, end = window if frame.by_time and window is not None else (where[0], where[-1])
    gap = (end - start) / 50
    clusters: list[list[int]] = []
    for i, x in enumerate(where):
        if clusters and x - where[clusters[-1][-1]] <= gap:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    return [14 * (k - (len(c) - 1) / 2) for c in clusters for k in range(len(c))]


def _numbers(ax: Axes, frame: Frame) -> None:
    """The numbered vertical markers, one per liquidation."""
    for episode, offset in zip(frame.result.episodes, _offsets(frame), strict=True):
        x = frame.x(episode.cause, episode.time)
        ax.axvline(x, color=MARKER, linestyle="--", linewidth=1)
        ax.annotate(
            str(episode.number),
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(offset, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color="white",
            bbox={"boxstyle": "circle,pad=0.2", "fc": MARKER, "ec": "none"},
        )


def _zoom(ax: Axes, frame: Frame) -> None:
    _steps(ax, frame, frame.clip(frame.result.series))
    frame.frame(ax)
    _numbers(ax, frame)
    labels = 0
    for episode in frame.result.episodes:
        x = frame.x(episode.cause, episode.time)
        for found in (f for f in episode.before if "phase" in f):
            equity, maintenance = float(found["equity"]), float(found["maintenance"])
            ax.plot([x], [equity], "o", color=EQUITY, markersize=5)
            ax.plot([x], [maintenance], "x", color=MAINTENANCE, markersize=6)
            text = (
                f"{episode.number} {found['scope']}: equity {cents(found['equity'])} "
                f"< maintenance {cents(found['maintenance'])}"
            )
            ax.annotate(
                text,
                (x, 0.93 - 0.08 * (labels % 6)),
                xycoords=("data", "axes fraction"),
                xytext=(4, 0),
                textcoords="offset points",
                fontsize=7,
                va="center",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#cccccc", "alpha": 0.9},
            )
            labels += 1
    ax.set_title(
        "the liquidation window: numbered as the sections below; dots: equity (o) and maintenance (x) found", pad=14
    )
    ax.legend(loc="best", fontsize=8)


def _marks(ax: Axes, frame: Frame) -> None:
    ticks = frame.clip(frame.result.marks)
    coins = sorted({c for _, _, m in ticks for c in m})
    for n, coin in enumerate(coins):
        points = [(frame.x(s, t), m[coin]) for s, t, m in ticks if m.get(coin)]
        if not points:
            continue
        first = points[0][1]
        ax.plot(
            [x for x, _ in points],
            [(p - first) * 100 / first for _, p in points],
            color=COLORS[n % len(COLORS)],
            drawstyle="steps-post",
            label=f"{coin} (from {grouped(format_decimal(first, PX_DECIMALS))})",
        )
    frame.frame(ax)
    _numbers(ax, frame)
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.set_ylabel("% from the window's start")
    ax.set_xlabel("event time (UTC)" if frame.by_time else "input seq")
    ax.set_title("marks of the account's coins over the window", pad=14)
    ax.grid(alpha=0.3)
    if coins:
        ax.legend(loc="best", fontsize=8)


# ---- the page ---------------------------------------------------------------------------------

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.2em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
    "vertical-align:top;font-size:13px}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "code{font-size:12px;white-space:pre-wrap}h1 code{font-size:inherit}.why{max-width:60em;line-height:1.45}"
    "img{max-width:100%}"
    "h2{border-top:1px solid #ddd;padding-top:0.8em}.num{display:inline-block;background:#ff7f0e;color:#fff;"
    "border-radius:50%;width:1.6em;text-align:center;margin-right:0.3em}"
)


def html_table(head: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    """A table of already-escaped cells; columns in `numeric` align right."""
    out = ["<table><tr>", *(f"<th>{h}</th>" for h in head), "</tr>"]
    for row in rows:
        cells = (f"<td class='n'>{c}</td>" if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _num(text: str | None) -> str:
    return "-" if text is None else cell(text)


def _found_table(episode: Episode) -> str:
    """The scopes found below maintenance; a borrow check in a table of its own."""
    rows, borrows = [], []
    for f in episode.before:
        if f["scope"] == "borrow":
            borrows.append(
                [html.escape(f["kind"]), _num(f["borrowed"]), _num(f["threshold"]), _num(f["collateral_value"])]
            )
            continue
        rows.append(
            [
                html.escape(f["scope"]),
                html.escape(f["phase"]),
                _num(f["equity"]),
                _num(f["maintenance"]),
                _num(f["shortfall"]),
                "-" if f["shortfall_pct"] is None else f"{f['shortfall_pct']}%",
                _survival(f["survival"]),
            ]
        )
    head = ["scope", "phase", "equity", "maintenance", "short by", "% of maintenance", "would have survived at"]
    found = html_table(head, rows, {2, 3, 4, 5}) if rows else ""
    if borrows:
        found += html_table(["borrow liquidation", "borrowed", "threshold", "collateral value"], borrows, {1, 2, 3})
    return found


def _survival(rescue: dict[str, Any] | None) -> str:
    if rescue is None:
        return "not computed (see above)"
    if rescue["method"] == "liquidation price":
        if rescue["mark"] is None:
            return "no positive price"
        return f"{html.escape(rescue['coin'])} at {_num(rescue['mark'])} ({signed(rescue['move_pct'])}%)"
    if rescue["move_pct"] is None:
        return "no uniform move of all marks"
    marks = ", ".join(f"{html.escape(c)} {_num(p)}" for c, p in rescue["marks"].items())
    return f"all marks moved {signed(rescue['move_pct'])}%: {marks}"


def _marks_table(episode: Episode) -> str:
    previous = episode.previous
    then_head = f"at seq {previous['seq']} (last above maintenance)" if previous else "last above maintenance"
    rows = []
    for coin, now in sorted(episode.marks.items()):
        then = previous["marks"].get(coin) if previous else None
        rows.append([html.escape(coin), _num(then), _num(now)])
    return html_table(["coin", then_head, f"at the trigger (seq {episode.cause})"], rows, {1, 2}) if rows else ""


def action_rows(action: dict[str, Any], name: str) -> list[list[str]]:
    """Display rows of one decision (wire form): decision, coin or token, size, price,
    counterparty, amount; sizes are signed from the audited account's side."""
    kind = action["type"]
    if kind == "liquidation_fill":
        return [["market fill", action["coin"], action["sz"], action["px"], LIQUIDATOR, f"fee {action['fee']}"]]
    if kind == "liquidation_order":
        size = action["sz"] if action["is_buy"] else f"-{action['sz']}"
        return [["order to the book (external)", action["coin"], size, f"mark {action['mark']}", "", ""]]
    if kind == "backstop":
        label, margin = f"backstop takeover ({action['scope']})", f"margin moved {action['margin']}"
        rows = [
            [label, p["coin"], p["szi"], p["mark"], LIQUIDATOR, margin if i == 0 else ""]
            for i, p in enumerate(action["positions"])
        ]
        return rows or [[label, "", "", "", LIQUIDATOR, margin]]
    if kind == "adl":
        if action["counterparty"] == name:
            size = action["sz"][1:] if action["sz"].startswith("-") else f"-{action['sz']}"
            bankrupt = f"{action['account']} (bankrupt)"
            return [["auto-deleveraged (as counterparty)", action["coin"], size, action["px"], bankrupt, ""]]
        return [["auto-deleverage", action["coin"], action["sz"], action["px"], action["counterparty"], ""]]
    if kind == "bad_debt":
        return [[f"bad debt ({action['scope']})", "", "", "", "", f"{action['amount']} USDC"]]
    if kind == "borrow_liquidation":
        moved = f"repaid {action['repaid']}; USDC moved {action['usdc']}"
        taken = sorted(action["taken"].items()) or [("", "")]
        return [
            [f"borrow liquidation ({action['kind']})", token, amount, "", LIQUIDATOR, moved if i == 0 else ""]
            for i, (token, amount) in enumerate(taken)
        ]
    return [[kind, "", "", "", "", json.dumps(action)]]


def cell(text: str) -> str:
    """A cell's text, escaped; a plain decimal gets thousands separators."""
    return html.escape(grouped(text) if DECIMAL.fullmatch(text) else text)


def _actions_table(episode: Episode, name: str) -> str:
    rows = [
        [f"{cell(row[0])} <code>{html.escape(action['type'])}</code>", *(cell(c) for c in row[1:])]
        for action in episode.actions
        for row in action_rows(action, name)
    ]
    head = ["decision", "coin / token", "size", "price", "counterparty", "amount"]
    return html_table(head, rows, {2, 3}) if rows else "<p>No order filled yet (orders pending).</p>"


def _after_table(episode: Episode) -> str:
    rows = [[html.escape(a["scope"]), _num(a["equity"]), _num(a["maintenance"])] for a in episode.after]
    rows.append(["<b>account value kept</b>", _num(episode.kept), ""])
    return html_table(["after the event", "equity", "maintenance"], rows, {1, 2})


def render_html(result: Audit, log_name: str) -> str:
    e = html.escape
    window = result.window()
    span = ""
    if window is not None and Frame(result).by_time:
        span = f" The liquidation window runs from {when(window[0])} to {when(window[1])}."
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Liquidation audit: {e(result.account)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Liquidation audit of <code>{e(result.account)}</code></h1>",
        f"<p>Log <code>{e(log_name)}</code>: {len(result.episodes)} liquidation event(s) found by a full replay."
        f"{e(span)}"
        " Amounts are in USDC, exact.</p>",
        png_img(plot_png(result), "plot", PLOT_ALT),
    ]
    for episode in result.episodes:
        moment = f", {when(episode.time)}" if episode.time else ""
        parts.append(
            f"<h2 id='liquidation-{episode.number}'><span class='num'>{episode.number}</span>"
            f"{e(episode.trigger['type'])} at input seq {episode.cause}{moment}</h2>"
        )
        parts.append(f"<p class='why'>{e(episode.why)}</p>")
        if episode.before:
            parts.append(_found_table(episode))
        parts.append(_marks_table(episode))
        parts.append(_actions_table(episode, result.account))
        parts.append(_after_table(episode))
        trigger = e(json.dumps(episode.trigger))
        parts.append(f"<details><summary>triggering event</summary><code>{trigger}</code></details>")
    parts.append("</body></html>")
    return "".join(parts)
