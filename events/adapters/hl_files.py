"""Hyperliquid files as the info API and the node write them: which shape a file holds, read from
its content (never from its name), plain or lz4-framed (the node's hourly archives).

Shapes: an API `userFills` response (a JSON array of fills, or a body holding one, such as a
websocket `userFills` message), node `node_fills_by_block` and `misc_events_by_block` files (JSON
lines, one block per line: `{local_time, block_time, block_number, events}`), and the API
`spotClearinghouseState`, `clearinghouseState` and `userAbstraction` bodies (the last a bare JSON
string such as `"unifiedAccount"`, or an object `{"user", "abstraction"}` that names its user).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import lz4.frame

LZ4_MAGIC = b"\x04\x22\x4d\x18"  # the first bytes of an lz4 frame

USER_FILLS = "userFills"
NODE_FILLS = "node_fills_by_block"
NODE_MISC = "misc_events_by_block"
SPOT_STATE = "spotClearinghouseState"
PERP_STATE = "clearinghouseState"
ABSTRACTION = "userAbstraction"

Progress = Callable[[int, int], None]  # (bytes read, bytes in all) of the file as stored


class HlFileError(ValueError):
    """A file that is not one of the shapes above; the message says what it holds instead."""


@contextmanager
def opened(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """(the file as stored, its decompressed bytes): progress follows the stored file's position."""
    with open(path, "rb") as raw:
        framed = raw.read(4) == LZ4_MAGIC
        raw.seek(0)
        if not framed:
            yield raw, raw
            return
        with lz4.frame.LZ4FrameFile(raw, "rb") as stream:
            yield raw, stream  # type: ignore[misc]


def is_fill(item: Any) -> bool:
    return isinstance(item, dict) and all(k in item for k in ("coin", "px", "sz", "side", "startPosition"))


def _block(line: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(line, parse_float=str)  # a JSON number keeps its digits (misc events write numbers)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and "events" in obj and "block_number" in obj else None


def _node_kind(events: list[Any]) -> str | None:
    item = events[0]
    if isinstance(item, list) and len(item) == 2 and is_fill(item[1]):
        return NODE_FILLS
    if isinstance(item, dict) and "inner" in item:
        return NODE_MISC
    return "?"


def node_blocks(path: Path, progress: Progress | None = None) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, block) of a node file, or (line number, why it is not a block) for a bad line."""
    total = path.stat().st_size
    with opened(path) as (raw, stream):
        for number, line in enumerate(stream, 1):
            if progress is not None and number % 4096 == 0:
                progress(raw.tell(), total)
            if not line.strip():
                continue
            block = _block(line)
            if block is None:
                yield number, "not a node block line ({local_time, block_time, block_number, events})"
            elif not isinstance(block["events"], list):
                yield number, "events is not a list"
            else:
                yield number, block
    if progress is not None:
        progress(total, total)


def _fills_in(body: Any, user: str | None, depth: int = 0) -> tuple[list[Any], str | None] | None:
    """The fill array in a response body (the body itself, or a value inside it, as in a websocket
    `{"channel": "userFills", "data": {"user": ..., "fills": [...]}}`) and the user it names."""
    if isinstance(body, list):
        return (body, user) if all(is_fill(item) for item in body) else None
    if not isinstance(body, dict) or depth > 3:
        return None
    named = body.get("user") if isinstance(body.get("user"), str) else user
    for value in body.values():
        found = _fills_in(value, named, depth + 1)
        if found is not None and found[0]:
            return found
    return None


def _spot_of(body: dict[str, Any], nested: dict[str, Any]) -> dict[str, Any]:
    """The spot state inside a larger body, with the user and the abstraction (mode) it names."""
    extra = {k: body[k] for k in ("abstraction",) if k in body}
    user = body.get("user", body.get("subAccountUser"))
    return {**nested, **extra, **({"user": user} if isinstance(user, str) else {})}


def sniff(path: Path) -> tuple[str, Any]:
    """(shape, content): for node files the content is None (they are streamed), for API
    bodies the parsed JSON (a fill list with its user for `userFills`)."""
    with opened(path) as (_, stream):
        first = b""
        for line in stream:
            if line.strip():
                first = line
                break
        block = _block(first)
        if block is not None:
            kind = _node_kind(block["events"]) if block["events"] else None
            for line in stream:
                if kind is not None:
                    break
                later = _block(line)
                if later is not None and later["events"]:
                    kind = _node_kind(later["events"])
            if kind in (NODE_FILLS, NODE_MISC):
                return kind, None
            if kind is None:
                raise HlFileError("node blocks without any event: nothing to ingest")
            raise HlFileError("node blocks whose events are neither fills ([user, fill]) nor misc events ({inner})")
        body_bytes = first + stream.read()
    if not body_bytes.strip():
        raise HlFileError("the file is empty")
    try:
        body = json.loads(body_bytes)
    except (ValueError, RecursionError) as exc:
        raise HlFileError(f"not JSON and not node JSON lines: {exc}") from None
    if isinstance(body, dict) and "balances" in body:
        return SPOT_STATE, body
    nested = body.get("spotState") if isinstance(body, dict) else None
    if isinstance(nested, dict) and "balances" in nested:  # a `subAccounts2` entry, a `webData2` body
        return SPOT_STATE, _spot_of(body, nested)
    if isinstance(body, dict) and "assetPositions" in body:
        return PERP_STATE, body
    if isinstance(body, str):
        return ABSTRACTION, {"abstraction": body}
    if isinstance(body, dict) and isinstance(body.get("abstraction"), str):
        return ABSTRACTION, body
    found = _fills_in(body, None)
    if found is not None:
        return USER_FILLS, found
    raise HlFileError(
        "JSON that holds no fill array (userFills), balances (spotClearinghouseState), "
        "assetPositions (clearinghouseState) or an abstraction word (userAbstraction)"
    )
