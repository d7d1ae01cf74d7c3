"""The audit as a self-contained HTML page: a plot of equity against maintenance margin over
time, marked with the liquidations, and one table per liquidation (matplotlib, embedded)."""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import datetime, timezone

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from clearinghouse.units import USD  # noqa: E402
from replay.audit import Audit  # noqa: E402


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def plot_png(result: Audit) -> bytes:
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=100)
    if result.series:
        times = [datetime.fromtimestamp(t / 1000, tz=timezone.utc) for _, t, _, _ in result.series]
        ax.plot(times, [e / USD for _, _, e, _ in result.series], label="equity (account value)", color="#1f77b4", drawstyle="steps-post")
        ax.plot(times, [m / USD for _, _, _, m in result.series], label="maintenance margin", color="#d62728", drawstyle="steps-post")
        for n, episode in enumerate(result.episodes):
            ax.axvline(datetime.fromtimestamp(episode.time / 1000, tz=timezone.utc), color="#ff7f0e", linestyle="--", linewidth=1, label="liquidation" if n == 0 else None)
    ax.set_title(f"{result.account}: equity and maintenance margin (USDC)")
    ax.set_xlabel("event time (UTC)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def render_html(result: Audit, log_name: str) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Liquidation audit: {e(result.account)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:0.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}th{background:#f3f3f3}"
        "code{font-size:12px;white-space:pre-wrap}</style></head><body>",
        f"<h1>Liquidation audit of <code>{e(result.account)}</code></h1>",
        f"<p>Log <code>{e(log_name)}</code>: {len(result.episodes)} liquidation event(s) found by a full replay.</p>",
        f"<img alt='equity and maintenance margin over time' src='data:image/png;base64,{base64.b64encode(plot_png(result)).decode()}'>",
    ]
    for n, episode in enumerate(result.episodes, 1):
        parts.append(f"<h2>{n}. after input seq {episode.cause}, at {_when(episode.time)}</h2>")
        parts.append("<table>")
        parts.append(f"<tr><th>triggering event</th><td><code>{e(json.dumps(episode.trigger))}</code></td></tr>")
        parts.append(f"<tr><th>marks</th><td>{e(', '.join(f'{c} {p}' for c, p in sorted(episode.marks.items())) or '-')}</td></tr>")
        before = "<br>".join(f"{e(k)}: {e(v)}" for k, v in episode.before.items()) or "-"
        after = "<br>".join(f"{e(k)}: {e(v)}" for k, v in episode.after.items()) or "no positions left"
        parts.append(f"<tr><th>found (before)</th><td>{before}</td></tr><tr><th>after</th><td>{after}</td></tr>")
        parts.append(f"<tr><th>account value kept</th><td>{e(episode.kept)} USDC</td></tr></table>")
        if episode.actions:
            parts.append("<table><tr><th>decision</th><th>coin</th><th>size</th><th>price</th><th>detail</th></tr>")
            for action in episode.actions:
                detail = {k: v for k, v in action.items() if k not in ("type", "coin", "sz", "px", "cause", "ts", "account")}
                parts.append(
                    f"<tr><td>{e(action['type'])}</td><td>{e(str(action.get('coin', '')))}</td><td>{e(str(action.get('sz', '')))}</td>"
                    f"<td>{e(str(action.get('px', '')))}</td><td><code>{e(json.dumps(detail))}</code></td></tr>"
                )
            parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
