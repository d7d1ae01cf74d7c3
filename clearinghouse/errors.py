"""The one exception handlers raise to refuse an event (the engine turns it into `Rejected`).

It lives apart from the engine so that the pure modules the engine calls (spot, lending,
portfolio) can refuse an event before they mutate anything, without importing the engine.
"""

from __future__ import annotations


class Reject(Exception):
    """Raised by a handler, before any mutation, to turn the event into a `rejected` event."""
