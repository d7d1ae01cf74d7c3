"""Codecs: msgpack blocks for storage and Kafka, JSON lines for people.

JSON carries amounts as decimal strings (the public wire format, see docs/wire-format.md); the
scale and bound of each field come from its annotation in `events.schema`, and the conversion to
and from fixed-point ints is derived from the schema once, at import, so the two never drift apart.

Decoding never raises anything but `CodecError`, whatever the input: a line is checked for its
length, its UTF-8 and its nesting before it is parsed, each field for its grammar and bound, and
the message names the field and the reason without echoing a long or hostile value whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec
from msgspec import inspect as mi

from events.bounds import MAX_JSON_DEPTH, MAX_LINE_BYTES, NAME_PATTERN
from events.schema import (
    ID_PATTERN,
    SCHEMA_VERSION,
    Block,
    DerivedBlock,
    DerivedEvent,
    InputEvent,
)
from events.units import USD_DECIMALS, DecimalError, format_decimal, parse_decimal, quoted

Convert = Callable[[Any, str], Any]
T = TypeVar("T")

NAME_RULE = "1 to 64 ASCII letters, digits or _ . : / @ + -"
ID_RULE = "1 to 128 printable ASCII characters"


class CodecError(ValueError):
    """A record or line that does not decode into a valid event; the message says where."""


def _scaled(scale: int, lo: int | None, hi: int | None, to_int: bool) -> Convert:
    """Wire decimal <-> int of 10**-scale units; reading checks the grammar and [lo, hi]."""

    def convert(value: Any, path: str) -> Any:
        if not to_int:
            return format_decimal(value, scale)
        try:
            number = parse_decimal(value, scale)
        except DecimalError as exc:
            raise CodecError(f"{path}: {exc}") from None
        if hi is not None and number > hi:
            raise CodecError(f"{path}: {quoted(str(value))} is above the maximum {format_decimal(hi, scale)}")
        if lo is not None and number < lo:
            raise CodecError(f"{path}: {quoted(str(value))} is below the minimum {format_decimal(lo, scale)}")
        return number

    return convert


def _int_bounds(t: mi.Type) -> tuple[int | None, int | None]:
    return (t.ge, t.le) if isinstance(t, mi.IntType) else (None, None)


def _converter(t: mi.Type, to_int: bool) -> Convert | None:
    """A function rewriting the scaled fields of a builtin value of type `t`, or None if none."""
    if isinstance(t, mi.Metadata):
        scale = (t.extra or {}).get("scale")
        return _scaled(scale, *_int_bounds(t.type), to_int) if scale is not None else _converter(t.type, to_int)
    if isinstance(t, mi.StructType):
        # A field whose scale follows the struct's `token` (USDC or another token) gets a pair.
        by_token = {f.encode_name: _token_pair(f.type, to_int) for f in t.fields if _token_scale(f.type)}
        fields = {
            f.encode_name: c for f in t.fields if f.encode_name not in by_token and (c := _converter(f.type, to_int))
        }
        if not fields and not by_token:
            return None

        def struct(value: Any, path: str) -> Any:
            if isinstance(value, dict):
                for name, conv in fields.items():
                    if value.get(name) is not None:
                        value[name] = conv(value[name], f"{path}.{name}")
                for name, (usdc, other) in by_token.items():
                    if value.get(name) is not None:
                        conv = usdc if value.get("token", "USDC") == "USDC" else other
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
        pattern = t.key_type.pattern if to_int and isinstance(t.key_type, mi.StrType) else None
        key = re.compile(pattern) if pattern else None

        def mapping(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                return value
            if key is not None:  # before a key becomes part of a path in a message
                for k in value:
                    if not key.search(k):
                        raise CodecError(f"{path}: key {quoted(k)} is not a name ({NAME_RULE})")
            return {k: val(x, f"{path}.{k}") for k, x in value.items()}

        return mapping
    if isinstance(t, mi.UnionType):
        members = [m for m in t.types if not isinstance(m, mi.NoneType)]
        if len(members) == 1:
            return _converter(members[0], to_int)
    return None


def _token_scale(t: mi.Type) -> int | None:
    """The scale of a `TokenAmount` field when its token is not USDC (None for other fields)."""
    return (t.extra or {}).get("token_scale") if isinstance(t, mi.Metadata) else None


def _token_pair(t: mi.Metadata, to_int: bool) -> tuple[Convert, Convert]:
    """A `TokenAmount`'s converters: (USDC, in micro-USDC within its bound; any other token)."""
    extra = t.extra or {}
    lo, hi = _int_bounds(t.type)
    usdc = extra["usdc_bound"]
    return _scaled(extra["scale"], -usdc, usdc, to_int), _scaled(extra["token_scale"], lo, hi, to_int)


def _usdc_bounds(union: Any) -> dict[type, tuple[tuple[str, int], ...]]:
    """Event class -> its `TokenAmount` fields and their bound when the token is USDC: msgspec
    checks the wider bound of other tokens, the codec this one (see `_check_usdc`)."""
    out = {}
    for member in mi.type_info(union).types:
        bounded = tuple(
            (f.name, f.type.extra["usdc_bound"]) for f in member.fields if _token_scale(f.type) is not None
        )
        if bounded:
            out[member.cls] = bounded
    return out


def _tag_converters(union: Any, to_int: bool) -> dict[str, Convert | None]:
    info = mi.type_info(union)
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    return {m.tag: _converter(m, to_int) for m in members}


_INPUT_TAGS_IN = _tag_converters(InputEvent, True)
_DERIVED_TAGS_IN = _tag_converters(DerivedEvent, True)
_ALL_TAGS_OUT = {**_tag_converters(InputEvent, False), **_tag_converters(DerivedEvent, False)}
_USDC_BOUNDS = _usdc_bounds(InputEvent)

_block_encoder = msgspec.msgpack.Encoder()
_block_decoder = msgspec.msgpack.Decoder(Block)
_derived_decoder = msgspec.msgpack.Decoder(DerivedBlock)
_json_encoder = msgspec.json.Encoder()


def _readable(message: str) -> str:
    """A msgspec validation message with the name and id patterns said in words."""
    return message.replace(f"`str` matching regex {NAME_PATTERN!r}", f"a name ({NAME_RULE})").replace(
        f"`str` matching regex {ID_PATTERN!r}", f"an id ({ID_RULE})"
    )


def _check_usdc(events: list[Any], where: str) -> None:
    for i, event in enumerate(events):
        fields = _USDC_BOUNDS.get(type(event))
        if fields and event.token == "USDC":
            for name, bound in fields:
                if abs(getattr(event, name)) > bound:
                    raise CodecError(f"{where}[{i}].{name}: beyond +-{format_decimal(bound, USD_DECIMALS)} USDC")


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
        raise CodecError(f"bad {what}: {_readable(str(exc))}") from None
    except RecursionError:  # an unknown field nested deep enough to exhaust the stack
        raise CodecError(f"bad {what}: nested too deeply") from None
    if block.v > SCHEMA_VERSION:
        raise CodecError(f"{what} schema version {block.v} is newer than this reader ({SCHEMA_VERSION})")
    return block


def decode_block_at(data: bytes) -> Block:
    """A stored record -> its Block (first seq and events)."""
    block = _decode(_block_decoder, data, "block")
    _check_usdc(block.events, "bad block: $.events")
    return block


def decode_block(data: bytes) -> list[InputEvent]:
    return decode_block_at(data).events


def decode_derived_block_at(data: bytes) -> DerivedBlock:
    return _decode(_derived_decoder, data, "derived block")


# ---- JSON lines -------------------------------------------------------------------------------

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


def _too_deep(data: bytes) -> bool:
    """Whether objects and arrays nest more than MAX_JSON_DEPTH levels (brackets in strings aside)."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in _OPENING else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def _parse_line(line: str | bytes) -> Any:
    """One line -> its JSON value, checked for length, UTF-8 and nesting before it is parsed."""
    if isinstance(line, str):
        try:
            line = line.encode("utf-8")
        except UnicodeEncodeError:
            raise CodecError("not UTF-8: the line holds a lone surrogate") from None
    size = len(line.rstrip(b"\r\n"))
    if size > MAX_LINE_BYTES:
        raise CodecError(f"line of {size} bytes is longer than the limit of {MAX_LINE_BYTES}")
    if _too_deep(line):
        raise CodecError(f"not an event: objects and arrays nest more than {MAX_JSON_DEPTH} levels deep")
    try:
        return msgspec.json.decode(line)
    except msgspec.DecodeError as exc:  # also a JSON integer too long to read (a ValidationError)
        raise CodecError(f"not JSON: {exc}") from None


def _from_json(line: str | bytes, tags: dict[str, Convert | None], union: Any) -> Any:
    obj = _parse_line(line)
    if not isinstance(obj, dict):
        raise CodecError("an event must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in tags:
        known = ", ".join(sorted(tags))
        shown = quoted(kind) if isinstance(kind, str) else repr(kind)[:40]
        raise CodecError(f"unknown event type {shown} (known: {known})")
    conv = tags[kind]
    if conv is not None:
        obj = conv(obj, "$")
    try:
        event = msgspec.convert(obj, union)
    except msgspec.ValidationError as exc:
        raise CodecError(_readable(str(exc))) from None
    try:  # every accepted event must be storable: a 64-bit guard behind the bounds
        _block_encoder.encode(event)
    except OverflowError:
        raise CodecError("a number does not fit the 64-bit encoding") from None
    return event


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


# ---- documents of the wire format (a risk parameter file, a book) -------------------------------

_document_converters: dict[tuple[type, bool], Convert | None] = {}


def _document_converter(kind: type, to_int: bool) -> Convert | None:
    key = (kind, to_int)
    if key not in _document_converters:
        _document_converters[key] = _converter(mi.type_info(kind), to_int)
    return _document_converters[key]


def decode_document(data: str | bytes, kind: type[T], what: str) -> T:
    """A JSON document of one of the wire format's Structs (decimal strings become fixed-point
    ints as in events), checked for size, nesting and every bound; never raises anything but
    `CodecError`, whose message starts with `what`."""
    try:
        obj = _parse_line(data)
    except CodecError as exc:
        raise CodecError(f"{what}: {exc}".replace("line of", "document of")) from None
    if not isinstance(obj, dict):
        raise CodecError(f"{what}: must be a JSON object")
    conv = _document_converter(kind, True)
    try:
        if conv is not None:
            obj = conv(obj, "$")
        return msgspec.convert(obj, kind)
    except CodecError as exc:
        raise CodecError(f"{what}: {exc}") from None
    except msgspec.ValidationError as exc:
        raise CodecError(f"{what}: {_readable(str(exc))}") from None


def document_to_wire(doc: msgspec.Struct) -> dict[str, Any]:
    """A document as a JSON-ready dict with decimal strings."""
    obj = msgspec.to_builtins(doc)
    conv = _document_converter(type(doc), False)
    return conv(obj, "$") if conv is not None else obj
