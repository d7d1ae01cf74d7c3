"""The twins in lockstep: one stream through four engines that must decide alike.

- `indexed`: the production engine, trigger index and PM bands on;
- `full_scan`: the reference, every exposed account checked on every tick;
- `guided`: no index, only the accounts the indexed run's decisions name (`replay.decisions`),
  as a replay of history runs;
- `rebuilt`: an engine constructed afresh from the encoded state (the snapshot and digest
  encoding) every `rebuild_every` events, so any memory an engine keeps outside its state shows
  as a difference.

After every event all four must return the same derived events and have the same digest, the
indexed state must conserve every token and net every market to zero size, and no exception may
escape `apply` or the encoding. The first breach ends the case as a `Failure` whose `signature`
(what broke, in which twin) is what the shrinker keeps constant.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from clearinghouse.digest import decode_state, digest_of, encode_state
from clearinghouse.engine import Engine
from clearinghouse.invariants import bound_errors, conservation_errors
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.codec import CodecError, decode_json
from events.units import USD
from replay.decisions import guide_of

CONFIGS = {
    "mark": LiquidationConfig(),
    "mark-adl": LiquidationConfig(slippage_ppm=5_000, loss_limit=0),
    "impact": LiquidationConfig(mode="impact", impact_ppm=20_000, depth=200_000 * USD, loss_limit=1_000 * USD),
    "external": LiquidationConfig(mode="external", loss_limit=10_000 * USD),
}
LIQUIDATIONS = ("liquidation_triggered", "borrow_liquidation")
TWINS = ("full_scan", "guided", "rebuilt")


@dataclass
class Failure:
    """The first breach of a case: `kind` (exception, divergence, invariant), the twin it showed
    in, and for an exception its type; `index` is the line of the stream."""

    kind: str
    twin: str
    what: str
    index: int
    detail: str

    @property
    def signature(self) -> tuple[str, str, str]:
        return self.kind, self.twin, self.what

    def describe(self) -> str:
        return f"{self.kind} in {self.twin} ({self.what}) at line {self.index + 1}: {self.detail}"


@dataclass
class Totals:
    """What a run did, summed over its cases."""

    cases: int = 0
    lines: int = 0
    events: int = 0  # input events applied (by each twin)
    codec_rejected: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason family -> count
    derived: Counter = field(default_factory=Counter)  # derived event type -> count
    comparisons: int = 0  # twin results compared with the indexed one (events x twins)
    failures: int = 0

    def add(self, other: Totals) -> None:
        self.cases += other.cases
        self.lines += other.lines
        self.events += other.events
        self.codec_rejected += other.codec_rejected
        self.rejected.update(other.rejected)
        self.derived.update(other.derived)
        self.comparisons += other.comparisons
        self.failures += other.failures

    @property
    def liquidations(self) -> int:
        return sum(self.derived[k] for k in LIQUIDATIONS)


_NOISE = re.compile(r"'[^']*'|\"[^\"]*\"|-?\d[\d.]*|\(.*\)")


def family(reason: str) -> str:
    """A rejection reason without its figures and names: what kind of rule refused the event."""
    words = _NOISE.sub("", reason).split()
    return " ".join(words[:4]) or reason[:30]


def decode(lines: list[str], totals: Totals) -> tuple[list[tuple[int, Any]], Failure | None]:
    """(line index, event) for the lines the codec takes; the others are counted, as an ingest
    dead-letters them. Anything but a clean `CodecError` is a failure."""
    events = []
    for i, text in enumerate(lines):
        try:
            events.append((i, decode_json(text)))
        except CodecError:
            totals.codec_rejected += 1
        except Exception as exc:  # noqa: BLE001 - any exception is the finding
            return events, Failure("exception", "codec", type(exc).__name__, i, str(exc)[:300])
    return events, None


class _Twin:
    def __init__(self, name: str, engine: Engine) -> None:
        self.name, self.engine = name, engine


def run_case(
    lines: list[str], mode: str, rebuild_every: int = 1, adl: str | None = None
) -> tuple[Totals, Failure | None]:
    """Runs one stream through the four twins; the totals and the first failure (or None).
    `adl` runs the mode under that ADL policy instead of the default (the stream is the same)."""
    totals = Totals(cases=1, lines=len(lines))
    config = CONFIGS[mode] if adl is None else msgspec.structs.replace(CONFIGS[mode], adl=adl)
    guide: dict[int, tuple[str, ...]] = {}
    indexed = Engine(State(liquidation=config))
    twins = [
        _Twin("full_scan", Engine(State(liquidation=config), full_scan=True)),
        _Twin("guided", Engine(State(liquidation=config), guide=guide)),
        _Twin("rebuilt", Engine(State(liquidation=config))),
    ]
    rebuilt = twins[2]
    events, failure = decode(lines, totals)
    if failure is not None:
        return totals, failure
    for n, (index, event) in enumerate(events):
        if n and n % rebuild_every == 0:
            try:
                rebuilt.engine = Engine(decode_state(encode_state(rebuilt.engine.state)))
            except Exception as exc:  # noqa: BLE001 - any exception is the finding
                what = f"{type(exc).__name__} rebuilding"
                return totals, Failure("exception", "rebuilt", what, index, str(exc)[:300])
        try:
            derived = indexed.apply(event)
        except Exception as exc:  # noqa: BLE001
            return totals, Failure("exception", "indexed", type(exc).__name__, index, str(exc)[:300])
        totals.events += 1
        for d in derived:
            kind = ev.event_type(d)
            totals.derived[kind] += 1
            if kind == "rejected":
                totals.rejected[family(d.reason)] += 1
        guide.update(guide_of(derived))
        try:
            encoded = encode_state(indexed.state)
        except Exception as exc:  # noqa: BLE001
            return totals, Failure("exception", "indexed", f"{type(exc).__name__} encoding", index, str(exc)[:300])
        digest = digest_of(encoded)
        errors = conservation_errors(indexed.state) + bound_errors(indexed.state)
        if errors:
            return totals, Failure("invariant", "indexed", errors[0].split(":")[0], index, "; ".join(errors)[:300])
        for twin in twins:
            try:
                theirs = twin.engine.apply(event)
                their_digest = digest_of(encode_state(twin.engine.state))
            except Exception as exc:  # noqa: BLE001
                return totals, Failure("exception", twin.name, type(exc).__name__, index, str(exc)[:300])
            totals.comparisons += 1
            if theirs != derived:
                detail = _first_difference(derived, theirs)
                return totals, Failure("divergence", twin.name, "derived events", index, detail)
            if their_digest != digest:
                return totals, Failure("divergence", twin.name, "digest", index, "same derived events, other state")
    return totals, None


def _first_difference(ours: list[Any], theirs: list[Any]) -> str:
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else None
        b = theirs[i] if i < len(theirs) else None
        if a != b:
            return f"indexed {a!r} / twin {b!r}"[:400]
    return "equal"
