"""A small HTTP/1.1 server on asyncio streams, for the service's read-only query API.

Why not a framework: every answer, protocol errors included (a URL or header too long, an
ambiguous body length, a malformed request line), must come in the API's own JSON shape, and no
client may hold the service: the head of a request, its body and the writing of the answer each
have a deadline, and the open connections a cap. The API needs GET and one small POST; this is
what that takes and nothing more (no upgrades, no streaming bodies).

Limits (`Limits`, documented in the README's `serve` section):
- the request line (method, URL, version) at most 8 KiB: else 414; headers at most 16 KiB and
  100 lines: else 431; a body at most 64 KiB: else 413;
- a request must begin within `timeout` seconds of the connection waiting for one (else the
  connection is closed quietly), its head must be complete within `timeout` more and its body
  within `timeout` more (else 408), and the client must take an answer within `timeout`;
- at most `max_connections` open at once: past the cap, the connection that has waited longest
  for a request is dropped to make room (it is idle or slow; the newcomer is served); only if
  every open connection is in the middle of taking an answer is the newcomer refused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qsl

import structlog

log = structlog.get_logger(__name__)

MAX_LINE = 8 * 1024  # bytes of the request line
MAX_HEAD = 16 * 1024  # bytes of all header lines
MAX_HEADERS = 100  # header lines
MAX_BODY = 64 * 1024  # bytes of a body; an info request is a few dozen
LINGER = 2.0  # seconds spent reading what a client still sends after an error, before closing

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_TARGET = re.compile(r"[\x21-\x7e]+")  # visible ASCII: no spaces, controls or raw non-ASCII
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than tab
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(;[^\r\n]*)?\r?\n")


@dataclass(frozen=True)
class Limits:
    """What one client may take of the server (seconds and counts)."""

    timeout: float = 10.0
    max_connections: int = 256
    max_body: int = MAX_BODY

    def __post_init__(self) -> None:
        if not self.timeout > 0 or self.max_connections < 1 or self.max_body < 0:
            raise ValueError(f"HTTP limits must be positive: {self}")


DEFAULT_LIMITS = Limits()  # frozen: one shared default for every server


@dataclass
class Request:
    method: str
    path: str  # as sent: percent-encoded, without the query
    query: dict[str, str]  # the first value of each name
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    body: bytes
    keep_alive: bool


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """A request refused before the application sees it; the connection is closed after the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class App(Protocol):
    """What the server serves: an answer for each request, and the shape of a protocol error."""

    def handle(self, request: Request) -> Response: ...

    def error(self, status: int, message: str) -> Response: ...


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.busy = False  # answering: not to be dropped
        self.task = asyncio.current_task()


class HttpServer:
    """Serves `app` on an asyncio server; `cleanup()` stops listening and closes every connection."""

    def __init__(self, app: App, limits: Limits) -> None:
        self.app, self.limits = app, limits
        self._open: dict[_Connection, None] = {}  # by when each began to wait for a request, oldest first
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._connected, host, port, limit=MAX_HEAD + MAX_LINE)
        return int(self._server.sockets[0].getsockname()[1])

    async def cleanup(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [conn.task for conn in self._open if conn.task is not None]
        for conn in list(self._open):
            conn.writer.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _admit(self, conn: _Connection) -> bool:
        """Makes room for `conn` by dropping the connection idle longest; False if every open one
        is busy answering (then `conn` is refused)."""
        if len(self._open) >= self.limits.max_connections:
            idle = next((c for c in self._open if not c.busy), None)
            if idle is None:
                return False
            self._open.pop(idle)
            idle.writer.transport.abort()
        self._open[conn] = None
        return True

    def _waiting(self, conn: _Connection) -> None:
        """Moves `conn` to the back of the queue of connections to drop first."""
        self._open.pop(conn, None)
        self._open[conn] = None

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        if not self._admit(conn):
            writer.transport.abort()
            return
        try:
            while await self._exchange(conn, reader, writer):
                self._waiting(conn)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client left, was dropped or would not take the answer
        except Exception:
            log.exception("http connection failed")
        finally:
            self._open.pop(conn, None)
            writer.close()

    async def _exchange(self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Reads one request and answers it; whether the connection stays open for another."""
        try:
            async with asyncio.timeout(self.limits.timeout):
                first = await reader.read(1)
                if not first:
                    return False
        except TimeoutError:
            return False  # nothing was sent: close quietly
        try:
            request = await self._read(first, reader, writer)
        except HttpError as exc:
            conn.busy = True
            await self._send(writer, self.app.error(exc.status, exc.message), keep_alive=False)
            conn.busy = False  # answered: while it lingers it may be dropped for a newcomer
            await self._linger(reader, writer)
            return False
        conn.busy = True
        await self._send(writer, self.app.handle(request), request.keep_alive, request.method == "HEAD")
        conn.busy = False
        return request.keep_alive

    async def _read(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request:
        seconds = self.limits.timeout
        try:
            async with asyncio.timeout(seconds):
                method, target, minor, fields = await self._head(first, reader)
        except TimeoutError:
            raise HttpError(408, f"the request's head did not arrive within {seconds:g} s") from None
        headers: dict[str, str] = {}
        for name, value in fields:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if minor >= 1 and sum(1 for name, _ in fields if name == "host") != 1:
            raise HttpError(400, "an HTTP/1.1 request needs exactly one Host header")
        path, _, query = target.partition("?")
        body_length = self._body_length(fields, minor)
        body = b""
        if body_length != 0:
            if minor >= 1 and headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                async with asyncio.timeout(seconds):
                    body = (
                        await self._chunked(reader) if body_length is None else await reader.readexactly(body_length)
                    )
            except TimeoutError:
                raise HttpError(408, f"the request's body did not arrive within {seconds:g} s") from None
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        keep_alive = "close" not in tokens and (minor >= 1 or "keep-alive" in tokens)
        pairs = parse_qsl(query, keep_blank_values=True)
        return Request(
            method, path, dict(reversed(pairs)), headers, body, keep_alive
        )  # reversed: the first value wins

    async def _head(self, first: bytes, reader: asyncio.StreamReader) -> tuple[str, str, int, list[tuple[str, str]]]:
        """The request line (method, target in origin form, minor version) and the header fields."""
        line = first + await _line(reader, 414, "the request line is longer than {} bytes", MAX_LINE)
        if line in (b"\r\n", b"\n"):  # one empty line before a request is allowed (RFC 9112 2.2)
            line = await _line(reader, 414, "the request line is longer than {} bytes", MAX_LINE)
        if len(line) > MAX_LINE:
            raise HttpError(414, f"the request line is longer than {MAX_LINE} bytes")
        parts = _strip(line).decode("latin-1").split(" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
            raise HttpError(400, "malformed request line: expected METHOD /path HTTP/1.1")
        method, target, version = parts
        match = _VERSION.fullmatch(version)
        if match is None:
            raise HttpError(400, f"malformed HTTP version {version!r}")
        if match[1] != "1":
            raise HttpError(505, f"{version} is not supported: use HTTP/1.1")
        fields: list[tuple[str, str]] = []
        size = 0
        while True:
            raw = await _line(reader, 431, "the headers are longer than {} bytes", MAX_HEAD)
            size += len(raw)
            if size > MAX_HEAD:
                raise HttpError(431, f"the headers are longer than {MAX_HEAD} bytes")
            text = _strip(raw).decode("latin-1")
            if not text:
                return method, _origin(target), int(match[2]), fields
            if len(fields) == MAX_HEADERS:
                raise HttpError(431, f"more than {MAX_HEADERS} headers")
            name, colon, value = text.partition(":")
            value = value.strip(" \t")
            if not colon or not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
                raise HttpError(400, f"malformed header line {text[:40]!r}")
            fields.append((name.lower(), value))

    def _body_length(self, fields: list[tuple[str, str]], minor: int) -> int | None:
        """The body's length from Content-Length, or None for a chunked body."""
        lengths = {v.strip() for name, value in fields if name == "content-length" for v in value.split(",")}
        codings = [
            v.strip().lower() for name, value in fields if name == "transfer-encoding" for v in value.split(",")
        ]
        if codings and lengths:
            raise HttpError(400, "both Content-Length and Transfer-Encoding: the body's length is ambiguous")
        if codings:
            if minor == 0 or codings != ["chunked"]:
                raise HttpError(501, f"transfer coding {', '.join(codings)!r} is not supported: send Content-Length")
            return None
        if not lengths:
            return 0
        if len(lengths) > 1 or not all(v.isascii() and v.isdigit() for v in lengths):
            raise HttpError(400, f"malformed Content-Length {', '.join(sorted(lengths))!r}")
        length = int(lengths.pop())
        if length > self.limits.max_body:
            raise HttpError(413, f"request body above {self.limits.max_body} bytes")
        return length

    async def _chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = b""
        while True:
            size_line = await _line(reader, 400, "a chunk size line is longer than {} bytes", 1024)
            match = _CHUNK_SIZE.fullmatch(size_line)
            if match is None:
                raise HttpError(400, "malformed chunk size line")
            size = int(match[1], 16)
            if len(body) + size > self.limits.max_body:
                raise HttpError(413, f"request body above {self.limits.max_body} bytes")
            if size == 0:
                break
            body += await reader.readexactly(size)
            if _strip(await _line(reader, 400, "chunk data is longer than its size", 2)):
                raise HttpError(400, "chunk data is longer than its size")
        trailers = 0
        while _strip(await _line(reader, 431, "a trailer line is longer than {} bytes", MAX_HEAD)):
            trailers += 1
            if trailers > MAX_HEADERS:
                raise HttpError(431, f"more than {MAX_HEADERS} trailer lines")
        return body

    async def _send(
        self, writer: asyncio.StreamWriter, response: Response, keep_alive: bool, head: bool = False
    ) -> None:
        """Writes `response` (without its body for a HEAD request) within the deadline."""
        lines = [
            f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
            *(f"{name}: {value}" for name, value in response.headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else response.body))
        async with asyncio.timeout(self.limits.timeout):
            await writer.drain()

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """After an error answer: stop sending, and read what the client still sends for a moment,
        so that closing with unread data does not reset the connection before the answer is read."""
        if writer.can_write_eof():
            writer.write_eof()
        try:
            async with asyncio.timeout(LINGER):
                while await reader.read(65536):
                    pass
        except (TimeoutError, ConnectionError):
            pass


async def _line(reader: asyncio.StreamReader, status: int, message: str, limit: int) -> bytes:
    """One line, its end included; `status` (with `message` naming `limit`) when it is too long."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise HttpError(status, message.format(limit)) from None
    if len(line) > limit + 2:
        raise HttpError(status, message.format(limit))
    return line


def _strip(line: bytes) -> bytes:
    """The line without its end (CRLF, or a bare LF as RFC 9112 allows); a stray CR is an error."""
    body = line[:-2] if line.endswith(b"\r\n") else line.rstrip(b"\n")
    if b"\r" in body:
        raise HttpError(400, "a bare CR in the request head")
    return body


def _origin(target: str) -> str:
    """The path and query of a request target, from origin form (/p?q) or absolute form (http://h/p?q)."""
    if target.startswith("/"):
        return target
    scheme, sep, rest = target.partition("://")
    if sep and scheme.lower() in ("http", "https") and rest:
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    raise HttpError(400, f"malformed request target {target[:40]!r}: expected a path such as /health")


async def serve(app: App, host: str, port: int, limits: Limits) -> tuple[HttpServer, int]:
    """Starts serving `app` on host:port (0: any free port); the server and the port it bound."""
    server = HttpServer(app, limits)
    return server, await server.start(host, port)
