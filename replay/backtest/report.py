"""The backtest comparison as a self-contained HTML page (no script, plots embedded as PNGs), in
the audit report's style (`replay.report`): the requirement over time per configuration, the
distribution of per-account savings against the first configuration, and liquidations over
time; then the figures of `compare` in tables."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from events.units import USD  # noqa: E402
from replay.backtest.compare import savings  # noqa: E402
from replay.backtest.meter import HOUR_MS, Outcome  # noqa: E402
from replay.report import COLORS, STYLE, cell, html_table, png_img, png_of  # noqa: E402


def _when(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, tz=UTC)


def _usdc_axis(ax: Any) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.grid(alpha=0.3)


def requirement_png(names: list[str], outcomes: list[Outcome]) -> bytes:
    """Initial (solid) and maintenance (dashed) margin summed over accounts, per configuration."""
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=100)
    for n, (name, o) in enumerate(zip(names, outcomes, strict=True)):
        xs = [_when(s.ts) for s in o.samples]
        color = COLORS[n % len(COLORS)]
        initial, maintenance = [s.initial / USD for s in o.samples], [s.maintenance / USD for s in o.samples]
        ax.plot(xs, initial, color=color, marker=".", label=f"{name}: initial")
        ax.plot(xs, maintenance, color=color, linestyle="--", label=f"{name}: maintenance")
    ax.set_ylabel("USDC")
    ax.set_xlabel("event time (UTC), sampled every hour and at the end")
    ax.set_title("requirement over time: the sum over accounts of initial and maintenance margin")
    _usdc_axis(ax)
    ax.legend(loc="best", fontsize=8)
    return png_of(fig)


def savings_png(names: list[str], outcomes: list[Outcome]) -> bytes:
    """Per account, the mean initial margin each configuration frees against the first one, as
    a distribution: the accounts sorted by what they save (a symmetric log scale, so the many
    small savings and the few large ones both show)."""
    fig, ax = plt.subplots(figsize=(11, 4), dpi=100)
    drawn = False
    for n, (name, o) in enumerate(zip(names[1:], outcomes[1:], strict=True), 1):
        saved = sorted(v / USD for v in savings(outcomes[0], o).values())
        if saved:
            shares = [100 * (i + 0.5) / len(saved) for i in range(len(saved))]
            ax.plot(shares, saved, color=COLORS[n % len(COLORS)], label=f"{name} ({len(saved):,} accounts)")
            drawn = True
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.set_yscale("symlog", linthresh=1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.set_xlabel("accounts, sorted by what they save (% of the accounts)")
    ax.set_ylabel(f"USDC freed against {names[0]}")
    ax.set_title("distribution of per-account savings: mean initial margin freed (negative: needs more)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "one configuration: nothing to compare", transform=ax.transAxes, ha="center")
    return png_of(fig)


def liquidations_png(names: list[str], outcomes: list[Outcome]) -> bytes:
    """Liquidations found per hour of event time, per configuration."""
    fig, ax = plt.subplots(figsize=(11, 3.5), dpi=100)
    hours = sorted({h for o in outcomes for h in o.liquidation_hours})
    if hours:
        width = len(names) + 1
        for n, (name, o) in enumerate(zip(names, outcomes, strict=True)):
            xs = [_when(h + HOUR_MS * (n + 1) // width) for h in hours]
            counts = [o.liquidation_hours.get(h, 0) for h in hours]
            ax.bar(xs, counts, width=1 / 24 / width, align="edge", color=COLORS[n % len(COLORS)], label=name)
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no liquidation in any configuration", transform=ax.transAxes, ha="center")
    ax.set_ylabel("liquidations")
    ax.set_xlabel("event time (UTC), by hour")
    ax.set_title("liquidations over time")
    ax.grid(alpha=0.3)
    return png_of(fig)


def _pct(text: str | None) -> str:
    return "-" if text is None else f"{text}%"


def _summary_tables(summaries: list[dict[str, Any]]) -> str:
    """The requirement and capital freed, then the decisions, a row per configuration."""
    need, decided = [], []
    for s in summaries:
        freed = s["capital_freed"]
        name = html.escape(s["name"])
        need.append(
            [
                name,
                cell(s["requirement"]["initial_mean"]),
                cell(s["requirement"]["maintenance_mean"]),
                cell(s["maintenance_end"]),
                "baseline" if freed is None else cell(freed["initial_mean"]),
                "-" if freed is None else _pct(freed["initial_mean_pct"]),
                "-" if freed is None else _pct(freed["hedged"]["initial_mean_pct"]),
                "-" if freed is None else _pct(freed["directional"]["initial_mean_pct"]),
            ]
        )
        decided.append(
            [
                name,
                f"{s['rejected']['count']:,}",
                f"{s['liquidations']['count']:,}",
                cell(s["liquidations"]["notional"]),
                f"{s['backstops']:,}",
                f"{s['adl']['count']:,}",
                cell(s["adl"]["notional"]),
                cell(s["bad_debt"]),
            ]
        )
    head = ["configuration", "initial (mean)", "maintenance (mean)", "maintenance at the end", "freed (mean initial)"]
    head += ["freed %", "hedged", "directional"]
    decisions = ["configuration", "rejected", "liquidations", "notional liquidated", "backstops", "ADL"]
    decisions += ["ADL notional", "bad debt"]
    return html_table(head, need, set(range(1, len(head)))) + html_table(
        decisions, decided, set(range(1, len(decisions)))
    )


def _details(s: dict[str, Any]) -> str:
    """One configuration's liquidations by phase, kinds of account, rejections and pools."""
    e = html.escape
    liq = s["liquidations"]
    phases = [[e(p), f"{n:,}", cell(liq["notional_by_phase"].get(p, "0"))] for p, n in liq["by_phase"].items()]
    parts = [f"<h2 id='config-{e(s['name'])}'>{e(s['name'])}</h2>"]
    parts.append(f"<p>Final state digest <code>{e(s['digest'])}</code>; {s['events']:,} input events replayed.</p>")
    if phases:
        parts.append(html_table(["liquidation phase", "found", "notional"], phases, {1, 2}))
    freed = s["capital_freed"]
    if freed is not None:
        rows = [
            [k, f"{freed[k]['accounts']:,}", cell(freed[k]["initial_mean"]), _pct(freed[k]["initial_mean_pct"])]
            for k in ("hedged", "directional", "flat")
        ]
        head = ["accounts", "count", f"freed against {e(freed['against'])} (mean initial)", "% of their requirement"]
        parts.append(html_table(head, rows, {1, 2, 3}))
    reasons = [[e(r["reason"]), f"{r['count']:,}"] for r in s["rejected"]["reasons"]]
    if reasons:
        parts.append(html_table(["rejected: event and reason (numbers as N)", "count"], reasons, {1}))
    pools = [[e(t), cell(u)] for t, u in s["lending"]["peak_utilisation"].items()]
    borrow = s["borrow_liquidations"]
    parts.append(
        f"<p>Borrow liquidations: {borrow['count']:,} (borrowed {cell(borrow['borrowed'])} USDC); "
        f"pool shortfalls (payments refused, the rest lent out): {s['lending']['shortfalls']:,}.</p>"
    )
    if pools:
        parts.append(html_table(["lending pool", "peak utilisation"], pools, {1}))
    return "".join(parts)


def render_html(summaries: list[dict[str, Any]], outcomes: list[Outcome], log_name: str) -> str:
    e = html.escape
    names = [s["name"] for s in summaries]
    plots = [
        ("plot-requirement", "requirement over time per configuration", requirement_png(names, outcomes)),
        ("plot-savings", "distribution of per-account savings", savings_png(names, outcomes)),
        ("plot-liquidations", "liquidations over time", liquidations_png(names, outcomes)),
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Backtest: {e(log_name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Backtest of <code>{e(log_name)}</code></h1>",
        f"<p class='why'>The log's input replayed under {len(names)} configuration(s), each through the same engine. "
        f"Capital freed is measured against the first, <code>{e(names[0])}</code>: the mean over the hourly "
        "samples of the initial margin it needs less what the other needs. Amounts are in USDC, exact "
        "(docs/backtest.md defines every figure).</p>",
        _summary_tables(summaries),
    ]
    for pid, alt, png in plots:
        parts.append(png_img(png, pid, alt))
    parts.extend(_details(s) for s in summaries)
    parts.append("</body></html>")
    return "".join(parts)
