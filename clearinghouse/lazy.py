"""A state decoded on first use: for reading a snapshot to answer one question.

Decoding a snapshot costs about a microsecond per position, and a large book holds millions of
them, while a look at the past (a replay of one snapshot interval, then one account) touches a
fraction: a trade reads two accounts and one position of each. So `lazy_state` leaves every
account, and within an account every position, as the raw msgpack bytes the snapshot stored
(`msgspec.Raw`, a view into the snapshot, no copy), decoded the first time it is read.
Written back, raw bytes are the value's canonical encoding, so the digest and the encoding of
a lazy state equal those of a decoded one without decoding anything (`digest.encode_state`).
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, ValuesView
from typing import Any

import msgspec

from clearinghouse.state import Account, Position, State


class Lazy(dict):  # type: ignore[type-arg]
    """A dict whose values start as raw bytes, decoded by `load` when first read. Every way
    the code base reads a value (`[]`, `get`, `values`, `items`) decodes it first; keys, `in`
    and `len` never need to; `dict.items(d)` sees the raw bytes (for encoding)."""

    __slots__ = ("_load",)

    def __init__(self, raw: dict[str, msgspec.Raw], load: Callable[[msgspec.Raw], Any]) -> None:
        dict.__init__(self, raw)
        self._load = load

    def _decoded(self, key: str, value: Any) -> Any:
        if type(value) is msgspec.Raw:
            value = self._load(value)
            dict.__setitem__(self, key, value)
        return value

    def __getitem__(self, key: str) -> Any:
        return self._decoded(key, dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        return self._decoded(key, dict.get(self, key, default))

    def decode_all(self) -> None:
        for key, value in dict.items(self):
            self._decoded(key, value)

    def values(self) -> ValuesView[Any]:
        self.decode_all()
        return dict.values(self)

    def items(self) -> ItemsView[str, Any]:
        self.decode_all()
        return dict.items(self)

    def __eq__(self, other: object) -> bool:
        self.decode_all()
        if isinstance(other, Lazy):
            other.decode_all()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def pending(self) -> int:
        """Values not decoded yet."""
        return sum(1 for value in dict.values(self) if type(value) is msgspec.Raw)


def _raw_field(kind: type, field: str) -> type:
    """`kind` with the dict `field` left as raw values: the same wire format, read in one pass."""
    fields = []
    for f in msgspec.structs.fields(kind):
        default = f.default if f.default is not msgspec.NODEFAULT else msgspec.field(default_factory=f.default_factory)
        fields.append((f.name, dict[str, msgspec.Raw] if f.name == field else f.type, default))
    return msgspec.defstruct(f"Raw{kind.__name__}", fields, array_like=kind.__struct_config__.array_like)


_raw_state = msgspec.msgpack.Decoder(_raw_field(State, "accounts")).decode
_raw_account = msgspec.msgpack.Decoder(_raw_field(Account, "positions")).decode
_position = msgspec.msgpack.Decoder(Position).decode


def _rebuild(kind: type, raw: Any, field: str, value: Any) -> Any:
    return kind(**{name: value if name == field else getattr(raw, name) for name in kind.__struct_fields__})


def _account(data: msgspec.Raw) -> Account:
    raw = _raw_account(data)
    return _rebuild(Account, raw, "positions", Lazy(raw.positions, _position))


def lazy_state(data: bytes) -> State:
    """The state encoded in `data` (by `digest.encode_state`), its accounts and their
    positions decoded as they are first read."""
    raw = _raw_state(data)
    return _rebuild(State, raw, "accounts", Lazy(raw.accounts, _account))


def same(before: dict[str, Any], after: dict[str, Any], key: str) -> bool:
    """Whether two dicts (lazy or not) hold equal values at `key`, without decoding two raw
    values: canonical encodings are equal exactly when the values are."""
    a, b = dict.get(before, key), dict.get(after, key)
    if type(a) is msgspec.Raw and type(b) is msgspec.Raw:
        return a == b
    return before.get(key) == after.get(key)
