"""Streams shared by several tests: a hand-made liquidation (`CRASH`, JSON lines) and generated
markets that crash, with and without portfolio-margin accounts."""

from __future__ import annotations

from events import schema as ev
from events.units import HOUR_MS
from replay.workload import GeneratorConfig, generate, valid_price

CRASH = """\
{"type":"market","coin":"BTC","sz_decimals":3,"margin_tiers":[{"lower_bound":"0","max_leverage":40}]}
{"type":"prices","prices":{"BTC":{"mark":"100"}}}
{"type":"deposit","account":"mm","amount":"1000000"}
{"type":"deposit","account":"bull","amount":"1000"}
{"type":"trade","coin":"BTC","px":"100","sz":"200","buyer":"bull","seller":"mm"}
{"type":"prices","prices":{"BTC":{"mark":"96"}}}
"""


def crash_stream(accounts: int, events: int, seed: int) -> list:
    """A generated market, then every market falls 3% a tick for 20 ticks (interleaved with
    1% rebounds) and recovers part of it: a sharp correlated drop and rebound."""
    base = list(generate(GeneratorConfig(accounts=accounts, markets=6, events=events, seed=seed)))
    decimals = {e.coin: e.sz_decimals for e in base if isinstance(e, ev.Market)}
    last: dict[str, int] = {}
    for e in base:
        if isinstance(e, ev.Prices):
            last.update({c: p.mark for c, p in e.prices.items()})
    stream, ts = list(base), base[-1].ts
    for step in [*range(1, 21), *range(19, 10, -1)]:
        for pct in (100 - 3 * step, 100 + step):
            ts += 1000
            stream.append(
                ev.Prices(
                    ts=ts,
                    prices={c: ev.PricePoint(mark=valid_price(m * pct // 100, decimals[c])) for c, m in last.items()},
                )
            )
    return stream


def pm_crash_stream() -> list:
    """A PM stream with the market crash (about half an hour of event time), the next hour
    boundary (the PM accounts' shortfalls are borrowed), then the collateral coin (HYPE) falling
    a further 10% a minute for eight minutes: PM accounts get their borrows and perps liquidated."""
    events = list(generate(GeneratorConfig(accounts=300, markets=5, events=12_000, seed=2, crash=True, pm_share=0.3)))
    hype = next(e for e in reversed(events) if type(e) is ev.Prices and "HYPE" in e.prices).prices["HYPE"].mark
    ts = (events[-1].ts // HOUR_MS + 1) * HOUR_MS
    events.append(ev.Prices(ts=ts, prices={"HYPE": ev.PricePoint(mark=hype)}))
    for step in range(1, 9):
        hype = hype * 9 // 10 // 100 * 100  # HYPE's tick is 1e-4 USDC (sz_decimals 2)
        events.append(ev.Prices(ts=ts + step * 60_000, prices={"HYPE": ev.PricePoint(mark=hype)}))
    return events
