"""The stress report as a self-contained HTML page (no script, the plots embedded as a PNG),
built with the audit report's style, table and figure helpers (`replay.report`).

The plot has three panels: each market's mark over the scenario as a change from its start (one
colour per market, one line style per run); the notional liquidated in each step, per run; and
the runs side by side on their totals (liquidated, ADL, bad debt, pool shortfall). Tables give
the totals of every run, then each run's steps and the configuration's events the engine refused.
"""

from __future__ import annotations

import base64
import html

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from clearinghouse.overview import cents  # noqa: E402
from events.units import USD  # noqa: E402
from replay.report import COLORS, STYLE, html_table, png_of  # noqa: E402
from replay.stress.cascade import PHASES, StressRun  # noqa: E402
from replay.stress.output import run_json  # noqa: E402
from replay.stress.scenario import Scenario  # noqa: E402

STYLES = ["-", "--", ":", "-."]
TOTALS = (("liquidated", "liquidated_notional"), ("ADL", "adl_notional"), ("bad debt", "bad_debt"))


def _label(run: StressRun) -> str:
    return f"{run.config} / {run.adl}"


def _seconds(run: StressRun) -> list[float]:
    start = run.steps[0].ts
    return [(s.ts - start) / 1000 for s in run.steps]


def _marks(ax: Axes, runs: list[StressRun]) -> None:
    coins = sorted({c for r in runs for c in r.steps[0].marks})
    for n, coin in enumerate(coins):
        for i, run in enumerate(runs):
            first = run.steps[0].marks.get(coin)
            if not first:
                continue
            ys = [(s.marks.get(coin, first) - first) * 100 / first for s in run.steps]
            label = coin if i == 0 else None
            ax.plot(_seconds(run), ys, color=COLORS[n % len(COLORS)], linestyle=STYLES[i % len(STYLES)], label=label)
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.set_ylabel("% from the start")
    ax.set_title("marks (colour: market; line style: run, as in the panel below)")
    ax.grid(alpha=0.3)
    if coins:
        ax.legend(loc="best", fontsize=8, ncol=4)


def _liquidated(ax: Axes, runs: list[StressRun]) -> None:
    for i, run in enumerate(runs):
        ys = [s.liquidated_notional / USD for s in run.steps]
        ax.plot(_seconds(run), ys, color=COLORS[i % len(COLORS)], linestyle=STYLES[i % len(STYLES)], label=_label(run))
    ax.set_ylabel("USDC per step")
    ax.set_xlabel("seconds of event time from the start")
    ax.set_title("notional liquidated in each step (every phase: market, backstop, ADL, borrow)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def _side_by_side(ax: Axes, runs: list[StressRun]) -> None:
    measures = [*TOTALS, ("pool shortfall", "pool_shortfall")]
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        values = [
            sum(s.liquidated_notional for s in run.steps) / USD
            if key == "liquidated_notional"
            else run.total(key) / USD
            for _, key in measures
        ]
        xs = [m + (i - (len(runs) - 1) / 2) * width for m in range(len(measures))]
        ax.bar(xs, values, width=width, color=COLORS[i % len(COLORS)], label=_label(run))
    ax.set_xticks(range(len(measures)), [name for name, _ in measures])
    ax.set_ylabel("USDC, whole run")
    ax.set_title("the runs side by side")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="best", fontsize=8)


def plot_png(runs: list[StressRun]) -> bytes:
    fig, axes = plt.subplots(3, 1, figsize=(11, 12), dpi=100, gridspec_kw={"height_ratios": [4, 3, 3]})
    _marks(axes[0], runs)
    _liquidated(axes[1], runs)
    _side_by_side(axes[2], runs)
    return png_of(fig)


def _totals_tables(runs: list[StressRun]) -> str:
    """Two tables, one row per run: what was liquidated, then who paid for it."""
    liquidated, losses = [], []
    for run in runs:
        j = run_json(run)
        over = cents(j["overshoot"]["net"])
        who = [html.escape(run.config), html.escape(run.adl)]
        liquidated.append(
            [
                *who,
                cents(j["liquidated_notional"]),
                *(cents(j["liquidated_by_phase"][p]) for p in PHASES),
                f"{j['takeovers']:,}",
                f"{j['found_below']:,}",
            ]
        )
        losses.append(
            [
                *who,
                cents(j["liquidator_pnl"]),
                f"{j['adl_count']:,}",
                cents(j["adl_notional"]),
                cents(j["bad_debt"]),
                cents(j["pool_shortfall"]),
                over,
                "yes" if run.converged else f"no: steps {j['unconverged_steps']}",
                f"<code>{run.digest[:16]}</code>",
            ]
        )
    head = ["configuration", "ADL policy", "liquidated", *PHASES, "takeovers", "found below"]
    first = html_table(head, liquidated, set(range(2, len(head))))
    head = ["configuration", "ADL policy", "liquidator PnL", "ADL fills", "ADL notional", "bad debt"]
    head += ["pool shortfall", "overshoot (net)", "converged", "digest"]
    return first + html_table(head, losses, set(range(2, 8)))


def _steps_table(run: StressRun) -> str:
    head = ["step", "s", "rounds", "found below", "still below", "liquidated", *PHASES, "takeovers"]
    head += ["ADL fills", "bad debt", "pool shortfall"]
    rows = []
    start = run.steps[0].ts
    for s in run_json(run)["steps"]:
        rows.append(
            [
                str(s["step"]),
                str((s["ts"] - start) // 1000),
                str(s["rounds"]) + ("" if s["converged"] else " (cap)"),
                str(s["found_below"]),
                str(s["still_below"]),
                cents(s["liquidated_notional"]),
                *(cents(s["liquidated_by_phase"][p]) for p in PHASES),
                str(s["takeovers"]),
                str(s["adl_count"]),
                cents(s["bad_debt"]),
                cents(s["pool_shortfall"]),
            ]
        )
    return html_table(head, rows, set(range(len(head))))


def render_html(runs: list[StressRun], scenario: Scenario) -> str:
    e = html.escape
    accounts = runs[0].accounts if runs else 0
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Stress: {e(scenario.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Stress run: <code>{e(scenario.name)}</code></h1>",
        f"<p class='why'>{e(scenario.description.rstrip('.') + '. ' if scenario.description else '')}"
        f"{scenario.steps} steps of "
        f"{scenario.step_ms // 1000} s over {accounts:,} accounts, through the engine, {len(runs)} run(s) "
        "(configuration x ADL policy). Amounts are in USDC to the cent (stress.json holds them exact). "
        "The overshoot is what ADL took from winners beyond the bankrupt accounts' deficit (docs/adl.md).</p>",
        f"<img id='plot' alt='marks over the scenario, notional liquidated per step, the runs side by side' "
        f"src='data:image/png;base64,{base64.b64encode(plot_png(runs)).decode()}'>",
        "<h2>Totals</h2>",
        _totals_tables(runs),
    ]
    for run in runs:
        parts.append(f"<h2>{e(_label(run))}: each step</h2>")
        parts.append(f"<details><summary>{len(run.steps)} steps</summary>{_steps_table(run)}</details>")
        if run.unapplied:
            rows = [[e(u.event), e(u.subject), e(u.reason)] for u in run.unapplied]
            parts.append(
                f"<details class='unapplied'><summary>{len(rows):,} of the configuration's events refused by "
                "the engine before step 1 (the accounts stay in their mode; docs/stress.md)</summary>"
                f"{html_table(['event', 'account or market', 'reason'], rows, set())}</details>"
            )
    parts.append("</body></html>")
    return "".join(parts)
