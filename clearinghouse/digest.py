"""The state digest: blake2b over a canonical msgpack encoding of the state.

Structs encode in declaration order and every dict with sorted keys, so the bytes (and the
digest) depend only on the state's content, never on insertion or hash order.
"""

from __future__ import annotations

import hashlib

import msgspec

from clearinghouse.state import State

_encoder = msgspec.msgpack.Encoder(order="sorted")
_state_decoder = msgspec.msgpack.Decoder(State)


def encode_state(state: State) -> bytes:
    return _encoder.encode(state)


def decode_state(data: bytes) -> State:
    return _state_decoder.decode(data)


def digest_of(encoded: bytes) -> str:
    """The digest of an already encoded state (saves encoding twice when both are needed)."""
    return hashlib.blake2b(encoded, digest_size=32).hexdigest()


def state_digest(state: State) -> str:
    return digest_of(encode_state(state))
