"""Fuzzing the decoders: random bytes and mutations of valid lines and blocks of every input event
type (byte flips, insertions, deletions, splices, edge values in fields, unicode). Whatever comes
in, the only exception is `CodecError`, and an accepted event re-encodes and decodes to itself with
every number within its documented bound (docs/wire-format.md)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import inspect as mi

from events import schema as ev
from events.bounds import MAX_USD
from events.codec import CodecError, decode_block, decode_json, encode_block, encode_json, iter_json_lines

# One valid line of every input event type, optional fields included.
SEEDS: list[dict[str, Any]] = [
    {
        "type": "market",
        "coin": "BTC",
        "sz_decimals": 5,
        "only_isolated": False,
        "ts": 1,
        "id": "m-1",
        "margin_tiers": [{"lower_bound": "0", "max_leverage": 40}, {"lower_bound": "150000000", "max_leverage": 20}],
    },
    {"type": "deposit", "account": "0x" + "ab" * 20, "amount": "1000.5", "token": "USDC", "ts": 1700000000000},
    {"type": "withdraw", "account": "a1", "amount": "10", "token": "HYPE"},
    {"type": "transfer", "from": "a1", "to": "a2", "amount": "5"},
    {"type": "set_leverage", "account": "a1", "coin": "BTC", "leverage": 20, "cross": True},
    {"type": "isolated_margin", "account": "a1", "coin": "ETH", "delta": "-2.5"},
    {"type": "prices", "prices": {"BTC": {"mark": "97000.5", "oracle": "97010"}, "@107": {"mark": "0.00000001"}}},
    {
        "type": "trade",
        "coin": "BTC",
        "px": "97000",
        "sz": "0.5",
        "buyer": "a1",
        "seller": "a2",
        "buyer_fee": "21.825",
        "seller_fee": "-7.275",
        "tid": 123,
        "liquidation": {"account": "a2", "method": "market"},
    },
    {"type": "funding", "coin": "BTC", "rate": "0.0000125"},
    {"type": "funding", "coin": "ETH", "premium": "-0.000001"},
    {
        "type": "rules",
        "name": "hl-2023",
        "ltv": {"BTC": "0.5"},
        "caps": {"BTC": {"supply": 2000, "user_supply": 200}},
        "pm": {"liq_ratio": "0.95", "min_requirement": "20", "slope": "4.75"},
    },
    {
        "type": "import_account",
        "account": "whale",
        "raw_usd": "-40000",
        "positions": [
            {"coin": "BTC", "szi": "0.5", "entry_px": "95000", "leverage": 20, "cross": True},
            {
                "coin": "ETH",
                "szi": "-2",
                "entry_px": "3500",
                "leverage": 10,
                "cross": False,
                "raw_usd": "7700",
                "max_leverage": 25,
                "funding_all": "-4",
                "funding_since_open": "-4",
                "funding_since_change": "-4",
            },
        ],
    },
    {"type": "token", "token": "PURR/USDC", "decimals": 8},
    {
        "type": "spot_trade",
        "base": "HYPE",
        "quote": "USDC",
        "px": "30.5",
        "sz": "2.25",
        "buyer": "a1",
        "seller": "a2",
        "buyer_fee": "0.01",
        "tid": 9,
    },
    {"type": "class_transfer", "account": "a1", "amount": "100", "to_perp": True},
    {"type": "set_mode", "account": "a1", "mode": "portfolio"},
    {"type": "supply", "account": "a1", "amount": "100", "token": "USDC"},
    {"type": "withdraw_supply", "account": "a1", "amount": "1.5", "token": "BTC"},
    {"type": "borrow", "account": "a1", "amount": "10"},
    {"type": "repay", "account": "a1", "amount": "10", "token": "kPEPE"},
    {
        "type": "liq_record",
        "account": "a1",
        "cross": False,
        "account_value": "-12.5",
        "notional": "1500",
        "positions": [{"coin": "ETH", "szi": "0.5"}],
    },
]
SEED_LINES = [json.dumps(s, separators=(",", ":")).encode() for s in SEEDS]

EDGE_VALUES: list[Any] = [
    "0",
    "-0",
    "1",
    "-1",
    ".5",
    "5.",
    "0.000001",
    "0.0000001",
    "0.00000001",
    "0.000000000001",
    "10000000000",
    "10000000000.000001",
    "-10000000000",
    "100000000",
    "100000000.00000001",
    "1",
    "1.000000000001",
    "9223372036854.775808",
    "92233720368.54775807",
    "1e999999",
    "1E-9",
    "NaN",
    "inf",
    " 7",
    "1_000",
    "\u0661\u0660",
    "\uff11",
    "",
    ".",
    "-",
    "1" * 41,
    0,
    1,
    -1,
    200,
    201,
    -201,
    8,
    9,
    2**62,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    4_102_444_800_000,
    4_102_444_800_001,
    1.5,
    -0.0,
    True,
    None,
    [],
    {},
    [1],
    {"a": 1},
    "BTC",
    "BTC ",
    "\x00",
    "\n",
    "\x1b[31m",
    "e\u0301",
    "\u00e9",
    "@107",
    "a" * 64,
    "a" * 65,
    "USDC",
]


def _fields(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of every value in a JSON value (keys of objects included, as ('key', path))."""
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += [("key", *path, k)] + _fields(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _fields(v, (*path, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if path and path[0] == "key":  # rename a key
        *parent, old = path[1:]
        target = obj
        for p in parent:
            target = target[p]
        if isinstance(value, str) and isinstance(target, dict):
            target[value] = target.pop(old)
        return obj
    if not path:
        return value
    target = obj
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return obj


@st.composite
def _edited_lines(draw: st.DrawFn) -> bytes:
    """A seed with one to three values (or keys) replaced by edge values."""
    obj = json.loads(draw(st.sampled_from(SEED_LINES)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_fields(obj)))
        value = draw(st.one_of(st.sampled_from(EDGE_VALUES), st.text(max_size=12), st.integers()))
        obj = _set(obj, path, copy.deepcopy(value))  # edge values are shared: never edit them in place
    return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()


def _mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Seeds with byte flips, insertions, deletions and splices with another seed."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data)))
            op = draw(st.sampled_from(["flip", "insert", "delete", "splice"]))
            if op == "flip" and at < len(data):
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif op == "insert":
                data[at:at] = draw(
                    st.one_of(
                        st.binary(min_size=1, max_size=8),
                        st.sampled_from(
                            [b"[", b"{", b'"', b"\\", b"\x00", b"\xff", b"e9", b"\xd9\xa1", b"0" * 30, b'"a":1,']
                        ),
                    )
                )
            elif op == "delete":
                del data[at : at + draw(st.integers(1, 8))]
            else:
                other = draw(st.sampled_from(seeds))
                data[at:] = other[draw(st.integers(0, len(other))) :]
        return bytes(data)

    return mutate()


def _within_bounds(value: Any, t: mi.Type, path: str) -> None:
    """Every int within its declared bound, every str matching its pattern, every collection within
    its length (walking the type as declared in events.schema); a USDC amount within MAX_USD."""
    if isinstance(t, mi.Metadata):
        _within_bounds(value, t.type, path)
    elif isinstance(t, mi.IntType):  # unbounded: the rules' caps, kept within the 64-bit encoding
        low, high = -(2**63) if t.ge is None else t.ge, 2**64 - 1 if t.le is None else t.le
        assert low <= value <= high, (path, value)
    elif isinstance(t, mi.StrType) and t.pattern:
        assert re.search(t.pattern, value), (path, value)
    elif isinstance(t, mi.UnionType):
        if value is not None:
            [member] = [m for m in t.types if not isinstance(m, mi.NoneType)]
            _within_bounds(value, member, path)
    elif isinstance(t, mi.ListType):
        assert len(value) <= t.max_length, path
        for i, item in enumerate(value):
            _within_bounds(item, t.item_type, f"{path}[{i}]")
    elif isinstance(t, mi.DictType):
        assert len(value) <= t.max_length, path
        for k, item in value.items():
            _within_bounds(k, t.key_type, f"{path}.key")
            _within_bounds(item, t.value_type, f"{path}.{k}")
    elif isinstance(t, mi.StructType):
        for f in t.fields:
            _within_bounds(getattr(value, f.name), f.type, f"{path}.{f.encode_name}")
        if getattr(value, "token", None) == "USDC" and isinstance(getattr(value, "amount", None), int):
            assert abs(value.amount) <= MAX_USD, path


def _accepted(event: Any) -> None:
    assert decode_json(encode_json(event)) == event
    assert decode_block(encode_block([event])) == [event]
    _within_bounds(event, mi.type_info(type(event)), "$")


def _decode_line(line: bytes) -> None:
    try:
        event = decode_json(line)
    except CodecError:
        return
    _accepted(event)


def _decode_block(data: bytes) -> None:
    try:
        events = decode_block(data)
    except CodecError:
        return
    for event in events:
        _accepted(event)


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_seed_is_valid() -> None:
    assert len({s["type"] for s in SEEDS}) == len(ev.InputEvent.__args__)
    for line in SEED_LINES:
        _accepted(decode_json(line))


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_are_a_clean_rejection(data: bytes) -> None:
    _decode_line(data)
    _decode_block(data)


@pytest.mark.slow
@FUZZ
@given(_mutated(SEED_LINES))
def test_mutated_lines_decode_or_are_a_clean_rejection(line: bytes) -> None:
    _decode_line(line)


@pytest.mark.slow
@FUZZ
@given(_edited_lines())
def test_edge_values_in_every_field_decode_or_are_a_clean_rejection(line: bytes) -> None:
    _decode_line(line)


@FUZZ
@given(st.text(max_size=200))
def test_random_text_is_a_clean_rejection(text: str) -> None:
    _decode_line(text.encode("utf-8", "surrogatepass"))
    try:
        decode_json(text)
    except CodecError:
        pass


@pytest.mark.slow
@FUZZ
@given(st.lists(st.one_of(_mutated(SEED_LINES), _edited_lines(), st.binary(max_size=60)), max_size=12))
def test_iter_json_lines_never_raises(lines: list[bytes]) -> None:
    for number, item in iter_json_lines(lines):
        assert 1 <= number <= len(lines)
        if not isinstance(item, CodecError):
            _accepted(item)


BLOCKS = [encode_block([decode_json(line) for line in SEED_LINES], seq=7)] + [
    encode_block([decode_json(line)]) for line in SEED_LINES
]


@pytest.mark.slow
@FUZZ
@given(_mutated(BLOCKS))
def test_mutated_blocks_decode_or_are_a_clean_rejection(data: bytes) -> None:
    _decode_block(data)
