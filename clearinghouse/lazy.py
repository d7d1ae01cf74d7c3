"""Accounts decoded on first use: a state read from a snapshot to answer one question.

Decoding a snapshot costs about a microsecond per position, and a large book holds millions of
them, while a look at the past (a replay of one snapshot interval, then one account) touches a
fraction. `LazyAccounts` holds each account as the raw msgpack bytes the snapshot stored
(`msgspec.Raw`, a view into the snapshot, no copy) and decodes it the first time it is read;
written back, the raw bytes are the account's canonical encoding, so digests and snapshots of
a lazy state equal those of a decoded one without decoding anything (`digest.canonical`).
"""

from __future__ import annotations

from collections.abc import ItemsView, ValuesView
from typing import Any

import msgspec

from clearinghouse.state import Account

_decode = msgspec.msgpack.Decoder(Account).decode


class LazyAccounts(dict):  # type: ignore[type-arg]
    """A dict of account name -> Account whose values start as raw bytes. Every way the
    code base reads a value (`[]`, `get`, `values`, `items`, iteration over items) decodes
    first; keys, `in` and `len` never need to."""

    def __getitem__(self, name: str) -> Account:
        value = dict.__getitem__(self, name)
        if type(value) is msgspec.Raw:
            value = _decode(value)
            dict.__setitem__(self, name, value)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        value = dict.get(self, name, default)
        if type(value) is msgspec.Raw:
            value = _decode(value)
            dict.__setitem__(self, name, value)
        return value

    def decode_all(self) -> None:
        for name, value in dict.items(self):
            if type(value) is msgspec.Raw:
                dict.__setitem__(self, name, _decode(value))

    def values(self) -> ValuesView[Account]:
        self.decode_all()
        return dict.values(self)

    def items(self) -> ItemsView[str, Account]:
        self.decode_all()
        return dict.items(self)

    def __eq__(self, other: object) -> bool:
        self.decode_all()
        if isinstance(other, LazyAccounts):
            other.decode_all()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def pending(self) -> int:
        """Accounts not decoded yet."""
        return sum(1 for value in dict.values(self) if type(value) is msgspec.Raw)
