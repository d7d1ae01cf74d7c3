"""The comparison of a backtest's configurations (docs/backtest.md, "Metrics"): each one's
figures, and the capital it frees against the first configuration, in total and for hedged,
directional and flat accounts. Amounts are decimal strings in USDC, exact; a mean over the
samples is floored to the micro-USDC.

An account is hedged when at least half of its exposure offsets: over the first configuration's
samples, the net exposure (the size of the sum of its signed exposures: perp positions at their
marks, spot tokens at their oracles) is at most half the gross (the sum of their sizes). A
carry or a pair nets to about nothing and is hedged; a book all on one side is directional; an
account never holding exposure under the first configuration is flat.
"""

from __future__ import annotations

from typing import Any

from events.units import USD_DECIMALS, format_decimal
from replay.backtest.meter import AccountTally, Outcome

HEDGED_SHARE = (1, 2)  # hedged when net <= gross * 1 / 2: at least half of the exposure offsets
KINDS = ("hedged", "directional", "flat")
TOP_REASONS = 10
UTILISATION = 6  # decimals of the meter's utilisation (parts per million)


def usd(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


def kind_of(tally: AccountTally | None) -> str:
    """hedged, directional or flat (module doc)."""
    if tally is None or not tally.gross:
        return "flat"
    num, den = HEDGED_SHARE
    return "hedged" if tally.net * den <= tally.gross * num else "directional"


def kinds(base: Outcome) -> dict[str, str]:
    """Every account the first configuration measured, by kind."""
    return {name: kind_of(tally) for name, tally in base.accounts.items()}


def mean(total: int, count: int) -> int:
    return total // count if count else 0


def percent(part: int, whole: int) -> str | None:
    """part / whole in percent with two decimals (toward zero), None without a whole."""
    if not whole:
        return None
    hundredths = abs(part) * 10_000 // abs(whole)
    return format_decimal(hundredths if part * whole >= 0 else -hundredths, 2, 2)


def savings(base: Outcome, other: Outcome) -> dict[str, int]:
    """Per account: the mean initial margin over the samples the first configuration needs less
    what `other` needs (positive: capital `other` frees), for every account either measured."""
    count = len(base.samples)
    names = sorted({*base.accounts, *other.accounts})
    zero = AccountTally()
    return {
        name: mean(base.accounts.get(name, zero).initial - other.accounts.get(name, zero).initial, count)
        for name in names
    }


def freed(base: Outcome, other: Outcome, by_kind: dict[str, str]) -> dict[str, Any]:
    """The capital `other` frees against the first configuration: the mean initial margin over
    the samples and the one at the end, in total and by kind of account."""
    saved = savings(base, other)
    zero = AccountTally()
    base_mean = mean(sum(s.initial for s in base.samples), len(base.samples))
    total = sum(saved.values())
    out: dict[str, Any] = {
        "initial_mean": usd(total),
        "initial_mean_pct": percent(total, base_mean),
        "initial_end": usd(base.samples[-1].initial - other.samples[-1].initial),
    }
    for kind in KINDS:
        names = [n for n in saved if by_kind.get(n, "flat") == kind]
        part = sum(saved[n] for n in names)
        needed = mean(sum(base.accounts.get(n, zero).initial for n in names), len(base.samples))
        out[kind] = {"accounts": len(names), "initial_mean": usd(part), "initial_mean_pct": percent(part, needed)}
    return out


def summary(name: str, outcome: Outcome, base: Outcome, by_kind: dict[str, str]) -> dict[str, Any]:
    """One configuration's figures, as `backtest --json` prints them."""
    o = outcome
    samples = o.samples
    end = samples[-1]
    reasons = sorted(o.rejected.items(), key=lambda r: (-r[1], r[0]))
    return {
        "name": name,
        "digest": o.digest,
        "events": o.events,
        "derived": o.derived,
        "maintenance_end": usd(end.maintenance),
        "initial_end": usd(end.initial),
        "requirement": {
            "samples": len(samples),
            "initial_mean": usd(mean(sum(s.initial for s in samples), len(samples))),
            "maintenance_mean": usd(mean(sum(s.maintenance for s in samples), len(samples))),
            "initial_peak": usd(max(s.initial for s in samples)),
            "maintenance_peak": usd(max(s.maintenance for s in samples)),
        },
        "capital_freed": {"against": None, **freed(base, o, by_kind)} if o is not base else None,
        "rejected": {
            "count": sum(o.rejected.values()),
            "by_type": dict(sorted(o.rejected_by_type.items())),
            "reasons": [{"reason": r, "count": n} for r, n in reasons[:TOP_REASONS]],
        },
        "liquidations": {
            "count": o.liquidations,
            "by_phase": dict(sorted(o.by_phase.items())),
            "notional": usd(sum(o.notional_by_phase.values())),
            "notional_by_phase": {k: usd(v) for k, v in sorted(o.notional_by_phase.items())},
            "orders": o.orders,
        },
        "backstops": o.backstops,
        "adl": {"count": o.adl, "notional": usd(o.adl_notional)},
        "bad_debt": usd(o.bad_debt),
        "borrow_liquidations": {"count": o.borrow_liquidations, "borrowed": usd(o.borrow_liquidated)},
        "lending": {
            "peak_utilisation": {t: format_decimal(u, UTILISATION) for t, u in sorted(o.peak_utilisation.items())},
            "shortfalls": o.shortfalls,
        },
    }


def compare(named: list[tuple[str, Outcome]]) -> list[dict[str, Any]]:
    """Every configuration's summary, the first one the baseline of capital freed."""
    base_name, base = named[0]
    by_kind = kinds(base)
    out = []
    for name, outcome in named:
        one = summary(name, outcome, base, by_kind)
        if one["capital_freed"] is not None:
            one["capital_freed"]["against"] = base_name
        out.append(one)
    return out
