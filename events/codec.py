"""Codecs: msgpack blocks for storage and Kafka, JSON lines for people.

JSON carries amounts as decimal strings (the public wire format, see docs/wire-format.md); the
scale of each field comes from its annotation in `events.schema`, and the conversion to and from
fixed-point ints is derived from the schema once, at import, so the two never drift apart.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import msgspec
from msgspec import inspect as mi

from clearinghouse.units import DecimalError, format_decimal, parse_decimal
from events.schema import (
    SCHEMA_VERSION,
    Block,
    DerivedBlock,
    DerivedEvent,
    InputEvent,
)

Convert = Callable[[Any, str], Any]


class CodecError(ValueError):
    """A record or line that does not decode into a valid event; the message says where."""


def _scaled(scale: int, to_int: bool) -> Convert:
    def convert(value: Any, path: str) -> Any:
        if to_int:
            try:
                return parse_decimal(value, scale)
            except DecimalError as exc:
                raise CodecError(f"{path}: {exc}") from None
        return format_decimal(value, scale)

    return convert


def _converter(t: mi.Type, to_int: bool) -> Convert | None:
    """A function rewriting the scaled fields of a builtin value of type `t`, or None if none."""
    if isinstance(t, mi.Metadata):
        scale = (t.extra or {}).get("scale")
        return _scaled(scale, to_int) if scale is not None else _converter(t.type, to_int)
    if isinstance(t, mi.StructType):
        # A field whose scale follows the struct's `token` (USDC or another token) gets a pair.
        by_token = {f.encode_name: (_converter(f.type, to_int), _scaled(scale, to_int)) for f in t.fields if (scale := _token_scale(f.type))}
        fields = {f.encode_name: c for f in t.fields if f.encode_name not in by_token and (c := _converter(f.type, to_int))}
        if not fields and not by_token:
            return None

        def struct(value: Any, path: str) -> Any:
            if isinstance(value, dict):
                for name, conv in fields.items():
                    if value.get(name) is not None:
                        value[name] = conv(value[name], f"{path}.{name}")
                for name, (usdc, other) in by_token.items():
                    if value.get(name) is not None:
                        conv = usdc if value.get("token", "USDC") == "USDC" else other  # type: ignore[assignment]
                        value[name] = conv(value[name], f"{path}.{name}")
            return value

        return struct
    if isinstance(t, mi.ListType):
        item = _converter(t.item_type, to_int)
        if item is None:
            return None
        return lambda v, p: [item(x, f"{p}[{i}]") for i, x in enumerate(v)] if isinstance(v, list) else v
    if isinstance(t, mi.DictType):
        val = _converter(t.value_type, to_int)
        if val is None:
            return None
        return lambda v, p: {k: val(x, f"{p}.{k}") for k, x in v.items()} if isinstance(v, dict) else v
    if isinstance(t, mi.UnionType):
        members = [m for m in t.types if not isinstance(m, mi.NoneType)]
        if len(members) == 1:
            return _converter(members[0], to_int)
    return None


def _token_scale(t: mi.Type) -> int | None:
    """The scale of a `TokenAmount` field when its token is not USDC (None for other fields)."""
    return (t.extra or {}).get("token_scale") if isinstance(t, mi.Metadata) else None


def _tag_converters(union: Any, to_int: bool) -> dict[str, Convert | None]:
    info = mi.type_info(union)
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    return {m.tag: _converter(m, to_int) for m in members}


_INPUT_TAGS_IN = _tag_converters(InputEvent, True)
_DERIVED_TAGS_IN = _tag_converters(DerivedEvent, True)
_ALL_TAGS_OUT = {**_tag_converters(InputEvent, False), **_tag_converters(DerivedEvent, False)}

_block_encoder = msgspec.msgpack.Encoder()
_block_decoder = msgspec.msgpack.Decoder(Block)
_derived_decoder = msgspec.msgpack.Decoder(DerivedBlock)
_json_encoder = msgspec.json.Encoder()


# ---- msgpack blocks ---------------------------------------------------------------------------


def encode_block(events: list[Any], seq: int = 0) -> bytes:
    """A record holding `events`, the first of which has sequence number `seq`."""
    return _block_encoder.encode(Block(SCHEMA_VERSION, seq, events))


def encode_derived_block(events: list[Any], seq: int = 0) -> bytes:
    return _block_encoder.encode(DerivedBlock(SCHEMA_VERSION, seq, events))


def _decode(decoder: msgspec.msgpack.Decoder, data: bytes, what: str) -> Any:
    try:
        block = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(f"bad {what}: {exc}") from None
    if block.v > SCHEMA_VERSION:
        raise CodecError(f"{what} schema version {block.v} is newer than this reader ({SCHEMA_VERSION})")
    return block


def decode_block_at(data: bytes) -> Block:
    """A stored record -> its Block (first seq and events)."""
    return _decode(_block_decoder, data, "block")


def decode_block(data: bytes) -> list[InputEvent]:
    return decode_block_at(data).events


def decode_derived_block_at(data: bytes) -> DerivedBlock:
    return _decode(_derived_decoder, data, "derived block")


# ---- JSON lines -------------------------------------------------------------------------------


def _from_json(line: str | bytes, tags: dict[str, Convert | None], union: Any) -> Any:
    try:
        obj = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CodecError("an event must be a JSON object")
    kind = obj.get("type")
    if kind not in tags:
        known = ", ".join(sorted(tags))
        raise CodecError(f"unknown event type {kind!r} (known: {known})")
    conv = tags[kind]
    if conv is not None:
        obj = conv(obj, "$")
    try:
        return msgspec.convert(obj, union)
    except msgspec.ValidationError as exc:
        raise CodecError(str(exc)) from None


def decode_json(line: str | bytes) -> InputEvent:
    """One JSON line of the public wire format -> an input event (amounts as fixed-point ints)."""
    return _from_json(line, _INPUT_TAGS_IN, InputEvent)


def decode_derived_json(line: str | bytes) -> DerivedEvent:
    return _from_json(line, _DERIVED_TAGS_IN, DerivedEvent)


def to_wire(event: Any) -> dict[str, Any]:
    """An event as a JSON-ready dict with decimal strings (the public wire form)."""
    obj = msgspec.to_builtins(event)
    conv = _ALL_TAGS_OUT.get(obj["type"])
    return conv(obj, "$") if conv is not None else obj


def encode_json(event: Any) -> bytes:
    return _json_encoder.encode(to_wire(event))


def iter_json_lines(lines: Iterable[str | bytes]) -> Iterable[tuple[int, InputEvent | CodecError]]:
    """(line number from 1, event or the error) for each non-blank line; never raises on bad input."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, decode_json(line)
        except CodecError as exc:
            yield number, exc
