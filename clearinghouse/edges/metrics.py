"""Prometheus metrics of the service (`clearinghouse serve`).

Each `Metrics` owns a private registry, never prometheus_client's global one, so a process (or a
test) can hold several services without their series colliding.
"""

from __future__ import annotations

from typing import Any, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from events.schema import DerivedEvent, LiquidationTriggered, Rejected, event_type

# The classic text format (0.0.4): what `render` produces and every Prometheus version scrapes.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Applying one block takes from ~10 us (a single event) to ~1 s (a crash block full of liquidations).
APPLY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """The service's counters and gauges; the service calls it once per applied block."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_applied = Counter("clearinghouse_events_applied_total", "Input events applied.", registry=r)
        self.derived = Counter(
            "clearinghouse_derived_events_total", "Derived events produced, by type.", ["type"], registry=r
        )
        self.liquidations = Counter("clearinghouse_liquidations_total", "liquidation_triggered events.", registry=r)
        self.rejected = Counter("clearinghouse_rejected_total", "Input events rejected by the engine.", registry=r)
        self.dead_letters = Counter(
            "clearinghouse_dead_letters_total", "Malformed source records sent to the dead-letter output.", registry=r
        )
        self.lag = Gauge("clearinghouse_lag_records", "Records behind the end of the source.", registry=r)
        self.seq = Gauge("clearinghouse_seq", "Seq of the last applied input event (-1: none).", registry=r)
        self.snapshot_seq = Gauge(
            "clearinghouse_snapshot_seq", "Seq of the newest snapshot written or loaded (-1: none).", registry=r
        )
        self.shadow_backlog = Gauge(
            "clearinghouse_shadow_backlog_bytes",
            "Bytes of records for the shadow still buffered in the service (its pipe is full: the shadow is behind).",
            registry=r,
        )
        self.shadow_waits = Counter(
            "clearinghouse_shadow_waits_total",
            "Times the loop waited for a checkpoint digest from the shadow.",
            registry=r,
        )
        self.apply_latency = Histogram(
            "clearinghouse_apply_latency_seconds", "Time to apply one block.", buckets=APPLY_BUCKETS, registry=r
        )
        self.output_latency = Histogram(
            "clearinghouse_output_latency_seconds",
            "Time to write one batch's derived events and dead letters (a Kafka transaction).",
            buckets=APPLY_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "clearinghouse_gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation.",
            ["generation"],
            buckets=APPLY_BUCKETS,
            registry=r,
        )
        # Every derived type shows from the start (at 0), so rate() works before its first event.
        for kind in get_args(DerivedEvent):
            self.derived.labels(type=kind.__struct_config__.tag)

    def observe_block(self, events: int, derived: list[Any], seconds: float, *, seq: int | None = None) -> None:
        """Records one applied block: its input events, the derived events it produced, how
        long it took and (when given) the seq of its last event."""
        self.events_applied.inc(events)
        self.apply_latency.observe(seconds)
        for event in derived:
            self.derived.labels(type=event_type(event)).inc()
            if isinstance(event, LiquidationTriggered):
                self.liquidations.inc()
            elif isinstance(event, Rejected):
                self.rejected.inc()
        if seq is not None:
            self.seq.set(seq)

    def observe_output(self, seconds: float) -> None:
        self.output_latency.observe(seconds)

    def observe_gc(self, generation: int, seconds: float) -> None:
        self.gc_pause.labels(generation=str(generation)).observe(seconds)

    def set_lag(self, records: int) -> None:
        self.lag.set(records)

    def set_snapshot(self, seq: int) -> None:
        self.snapshot_seq.set(seq)

    def set_position(self, seq: int, snapshot_seq: int | None) -> None:
        """Where a session starts: the last applied input seq and the snapshot loaded (-1: none)."""
        self.seq.set(seq)
        self.snapshot_seq.set(-1 if snapshot_seq is None else snapshot_seq)

    def set_shadow_backlog(self, size: int) -> None:
        self.shadow_backlog.set(size)

    def shadow_waited(self) -> None:
        self.shadow_waits.inc()

    def dead_letter(self) -> None:
        self.dead_letters.inc()

    def render(self) -> bytes:
        """The registry in the text exposition format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
