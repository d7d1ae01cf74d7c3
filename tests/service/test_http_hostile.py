"""Hostile HTTP against `clearinghouse serve --log DIR` as a user runs it, over raw sockets.

Every refusal must come in the API's JSON shape with the status that names it, no client may
hold a connection past the documented deadlines, the connection cap must hold, and /health must
answer throughout. The service mostly runs with `--http-timeout 1 --http-max-connections 20` so
the deadlines show within a test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.served import Served

pytestmark = pytest.mark.slow  # a served process

TIMEOUT = 1.0  # --http-timeout
CAP = 20  # --http-max-connections


def _serve(root: Path, *flags: str) -> Served:
    """`serve --log` over a log of one deposit (account a, 10 USDC), answering /health."""
    source = root / "events.jsonl"
    source.write_text('{"type":"deposit","account":"a","amount":"10"}\n')
    cli = [sys.executable, "-m", "clearinghouse"]
    subprocess.run([*cli, "ingest", str(source), "--log", str(root / "log")], check=True, capture_output=True)
    service = Served(["--log", str(root / "log"), *flags], root / "serve.log")
    service.wait(lambda health: health["status"] == "ok")
    return service


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    flags = ("--http-timeout", str(TIMEOUT), "--http-max-connections", str(CAP))
    service = _serve(tmp_path_factory.mktemp("hostile"), *flags)
    yield service
    assert service.stop() == 0


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names), body. Reads no further than its end, so
    the next pipelined answer stays in the socket."""
    stream = sock.makefile("rb", buffering=0)
    status_line = stream.readline()
    assert status_line, "connection closed before an answer"
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.lower()] = value.strip()
    body, length = b"", int(headers["content-length"])
    while len(body) < length:
        chunk = stream.read(length - len(body))
        assert chunk, "connection closed inside the body"
        body += chunk
    return int(status_line.split(b" ")[1]), headers, body


def _send(port: int, request: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    """Sends `request` on a new connection; the answer's status, headers and JSON body."""
    with _connect(port) as sock:
        sock.sendall(request)
        status, headers, body = _answer(sock)
    assert headers["content-type"] == "application/json", headers
    return status, headers, json.loads(body)


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed `sock` (EOF or reset), without waiting."""
    sock.settimeout(0.01)
    try:
        return sock.recv(65536) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def _healthy(served: Served) -> None:
    status, health = served.get("/health")
    assert (status, health["status"]) == (200, "ok")


def test_protocol_errors_answer_in_json(served: Served) -> None:
    port = served.port
    long_url = b"/accounts/" + b"a" * 100_000
    cases = [
        (b"GET " + long_url + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "the request line is longer than 8192 bytes"),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n",
            431,
            "the headers are longer than 16384 bytes",
        ),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 101 + b"\r\n", 431, "more than 100 headers"),
        (
            b"POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "both Content-Length and Transfer-Encoding: the body's length is ambiguous",
        ),
        (
            b"POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            400,
            "malformed Content-Length '5, 6'",
        ),
        (
            b"POST /info HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "transfer coding 'gzip' is not supported: send Content-Length",
        ),
        (b"POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", 413, "request body above 65536 bytes"),
        (b"G@T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line: expected METHOD /path HTTP/1.1"),
        (b"GARBAGE\r\n\r\n", 400, "malformed request line: expected METHOD /path HTTP/1.1"),
        (
            b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            400,
            "malformed request line: expected METHOD /path HTTP/1.1",
        ),
        (b"GET /health HTTP/9\r\nHost: x\r\n\r\n", 400, "malformed HTTP version 'HTTP/9'"),
        (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/2.0 is not supported: use HTTP/1.1"),
        (b"GET /health HTTP/1.1\r\n\r\n", 400, "an HTTP/1.1 request needs exactly one Host header"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "malformed header line 'Bad Name: 1'"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "malformed header line ' folded'"),
        (b"GET /health HTTP/1.1\r\nHost: x\rY: 1\r\n\r\n", 400, "a bare CR in the request head"),
    ]
    for request, status, message in cases:
        got_status, headers, body = _send(port, request)
        assert (got_status, body) == (status, {"error": message}), request[:60]
        assert headers["connection"] == "close"
        _healthy(served)


def test_bad_methods_and_bodies_are_the_apis_own_errors(served: Served) -> None:
    port = served.port
    status, headers, body = _send(port, b"BREW /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, headers["allow"]) == (405, "GET")
    assert body == {"error": "method BREW not allowed on /health; allowed: GET"}
    nested = b"[" * 60_000
    request = b"POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(nested), nested)
    assert _send(port, request)[::2] == (400, {"error": "malformed JSON: nested too deeply"})
    nested_object = b'{"type":"clearinghouseState","user":' + b'{"a":' * 10_000
    request = b"POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(nested_object), nested_object)
    assert _send(port, request)[::2] == (400, {"error": "malformed JSON: nested too deeply"})
    _healthy(served)


def test_half_requests_are_cut_off_at_the_deadline(served: Served) -> None:
    """Slowloris: heads and bodies that never finish get 408 within the timeout (plus a margin for
    a loaded machine); connections that send nothing are closed quietly; /health answers meanwhile."""
    port = served.port
    heads = [_connect(served.port) for _ in range(5)]
    for sock in heads:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    bodies = [_connect(port) for _ in range(5)]
    for sock in bodies:
        sock.sendall(b'POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"type":')
    silent = [_connect(port) for _ in range(5)]
    started = time.monotonic()
    _healthy(served)
    for sock in heads:
        status, _, body = _answer(sock)
        assert (status, json.loads(body)) == (408, {"error": "the request's head did not arrive within 1 s"})
    for sock in bodies:
        status, _, body = _answer(sock)
        assert (status, json.loads(body)) == (408, {"error": "the request's body did not arrive within 1 s"})
    for sock in silent:
        sock.settimeout(10)
        assert sock.recv(100) == b""
    assert time.monotonic() - started < 6 * TIMEOUT
    for sock in heads + bodies + silent:
        sock.close()
    _healthy(served)


def test_connections_past_the_cap_drop_the_longest_idle(tmp_path: Path) -> None:
    """With CAP open connections each holding half a request, every new one drops the oldest:
    60 opened leave the last CAP open, and /health (a newcomer) is still answered at once. (A
    10 s timeout here, so that no deadline passes during the test.)"""
    served = _serve(tmp_path, "--http-max-connections", str(CAP))
    port = served.port
    held = []
    for _ in range(60):
        sock = _connect(port)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        held.append(sock)
    _healthy(served)  # one more newcomer: it drops the oldest of the CAP still open
    deadline = time.monotonic() + 5
    while not all(_closed(sock) for sock in held[: 60 - CAP + 1]):
        assert time.monotonic() < deadline, "the oldest connections were not dropped"
        time.sleep(0.05)
    assert not any(_closed(sock) for sock in held[60 - CAP + 1 :])
    for sock in held:
        sock.close()
    _healthy(served)
    assert served.stop() == 0


def test_keep_alive_and_pipelining_on_one_connection(served: Served) -> None:
    with _connect(served.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /accounts/a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(sock)[0] == 200
        status, headers, body = _answer(sock)
        assert (status, headers["connection"]) == (200, "keep-alive")
        assert json.loads(body)["marginSummary"]["accountValue"] == "10.0"
        sock.sendall(b"GET /nope HTTP/1.0\r\n\r\n")
        status, headers, body = _answer(sock)
        assert (status, headers["connection"], json.loads(body)) == (
            404,
            "close",
            {"error": "no such endpoint: /nope"},
        )
        sock.settimeout(10)
        assert sock.recv(100) == b""


def test_sigterm_stops_promptly_with_connections_held(tmp_path: Path) -> None:
    service = _serve(tmp_path)  # the default 10 s timeout
    held = [_connect(service.port) for _ in range(20)]
    for sock in held:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    assert service.stop() == 0
    assert time.monotonic() - started < 5
    for sock in held:
        sock.close()
