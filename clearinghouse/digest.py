"""The state digest: blake2b over a canonical msgpack encoding of the state.

Canonical means every dict in key order, so the bytes (and the digest) depend only on the
state's content, never on insertion or hash order. The keys are sorted here with Python's sort
rather than by the encoder: msgspec's `order="sorted"` goes quadratic, and at about 100,000 keys
crashes, on keys that are already in order (accounts created as a1, a2, ...), which snapshots and
digests of large books meet. Structs encode in declaration order.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from clearinghouse.lazy import lazy_state
from clearinghouse.state import Account, SpotAccount, State

_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(State)


def _sorted(d: dict[str, Any]) -> dict[str, Any]:
    return d if len(d) < 2 else dict(sorted(dict.items(d)))  # dict.items: undecoded values stay so (`lazy`)


def _account(account: Account | msgspec.Raw) -> Account | msgspec.Raw:
    if type(account) is msgspec.Raw or len(account.positions) < 2:  # raw: as a snapshot stored it, canonical
        return account
    return msgspec.structs.replace(account, positions=_sorted(account.positions))


def _spot(spot: SpotAccount) -> SpotAccount:
    return msgspec.structs.replace(spot, balances=_sorted(spot.balances), supplied=_sorted(spot.supplied), borrowed=_sorted(spot.borrowed))


def canonical(state: State) -> State:
    """A shallow copy of the state with every dict in key order (the state itself is untouched)."""
    accounts = state.accounts
    return msgspec.structs.replace(
        state,
        markets=_sorted(state.markets),
        accounts={name: _account(dict.__getitem__(accounts, name)) for name in sorted(accounts)},  # undecoded stays so
        recent_ids=_sorted(state.recent_ids),
        watch=_sorted(state.watch),
        liq_orders={name: _sorted(orders) for name, orders in sorted(state.liq_orders.items())},
        tokens=_sorted(state.tokens),
        spot={name: _spot(state.spot[name]) for name in sorted(state.spot)},
        pools=_sorted(state.pools),
        pm_rules=msgspec.structs.replace(state.pm_rules, ltv=_sorted(state.pm_rules.ltv), caps=_sorted(state.pm_rules.caps)),
        token_net=_sorted(state.token_net),
        unswept=_sorted(state.unswept),
    )


def encode_state(state: State) -> bytes:
    return _encoder.encode(canonical(state))


def decode_state(data: bytes, *, lazy: bool = False) -> State:
    """The state; `lazy` leaves each account as raw bytes until it is first read
    (`clearinghouse.lazy`), for readers that touch a few of them."""
    if not lazy:
        return _state_decoder.decode(data)
    return lazy_state(data)


def digest_of(encoded: bytes) -> str:
    """The digest of an already encoded state (saves encoding twice when both are needed)."""
    return hashlib.blake2b(encoded, digest_size=32).hexdigest()


def state_digest(state: State) -> str:
    return digest_of(encode_state(state))
