"""Applies events built as structs (past the codec, whose own bounds are tested in test_codec):
what the engine alone must refuse, and the proof that a refusal changed nothing."""

from __future__ import annotations

from typing import Any

import msgspec

from clearinghouse.digest import encode_state
from clearinghouse.engine import Engine
from clearinghouse.invariants import conservation_errors
from events.schema import Rejected


def rejected(engine: Engine, event: Any) -> Rejected:
    """Applies `event`, which must be rejected: one `Rejected` with its seq, and the encoded
    state unchanged apart from `next_seq` (event time included)."""
    state = engine.state
    seq, before = state.next_seq, encode_state(state)
    derived = engine.apply(event)
    assert len(derived) == 1 and isinstance(derived[0], Rejected), f"{event}: expected one Rejected, got {derived}"
    assert derived[0].seq == seq and derived[0].reason
    after = encode_state(msgspec.structs.replace(engine.state, next_seq=seq))
    assert after == before, f"{event}: rejected but the state changed"
    assert conservation_errors(engine.state) == []
    return derived[0]


def accepted(engine: Engine, *events: Any) -> None:
    """Applies events that must derive nothing, with conservation after each."""
    for event in events:
        derived = engine.apply(event)
        assert derived == [], f"{event} derived {derived}"
        assert conservation_errors(engine.state) == [], f"conservation broken after {event}"
