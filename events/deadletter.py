"""Dead letters of the file log backend: source records that did not decode, kept unchanged.

(The Kafka backend keeps the record as it came and puts the same fields in headers.)
"""

from __future__ import annotations

import msgspec


class DeadLetter(msgspec.Struct, frozen=True):
    offset: int  # the record's offset in its source log
    reason: str
    payload: bytes


def encode(letter: DeadLetter) -> bytes:
    return msgspec.msgpack.encode(letter)


def decode(data: bytes) -> DeadLetter:
    return msgspec.msgpack.decode(data, type=DeadLetter)
