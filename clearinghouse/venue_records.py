"""Venue records (docs/hyperliquid-data.md, "Misc events"): what a venue reported of its own
decisions, kept in the log beside the engine's so that a reconciliation can compare the two."""

from __future__ import annotations

from clearinghouse.context import Context
from events import schema as ev


def liquidation_record(ctx: Context, e: ev.LiquidationRecord) -> None:
    """The venue's word that it liquidated an account: recorded, never acted on (the engine's
    own rules decide its liquidations; the venue's executions arrive as marked trades)."""
