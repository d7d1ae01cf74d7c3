"""`clearinghouse serve` run as a user runs it: a subprocess, its JSON logs, its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUNNING: list[subprocess.Popen[bytes]] = []  # killed after each test, passed or failed (conftest)


class Served:
    def __init__(self, args: list[str], logs: Path, env: dict[str, str] | None = None) -> None:
        self.logs = logs
        self._err = open(logs, "ab")
        self._from = self._err.tell()  # earlier runs may have logged to the same file
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clearinghouse", "-q", "serve", *args, "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            env={**os.environ, **(env or {})},
        )
        RUNNING.append(self.proc)
        self._port: int | None = None

    @property
    def port(self) -> int:
        deadline = time.monotonic() + 60
        while self._port is None:
            for line in self.logs.read_bytes()[self._from :].decode().splitlines():
                if '"http_listening"' in line:
                    self._port = json.loads(line)["port"]
            if self._port is None:
                assert self.proc.poll() is None, f"serve exited {self.proc.returncode}: {self.logs.read_text()}"
                assert time.monotonic() < deadline, "serve did not start listening"
                time.sleep(0.05)
        return self._port

    def get(self, path: str, token: str | None = None, data: bytes | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                status = response.status
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            body, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        return status, json.loads(body) if "json" in kind else body.decode()

    def wait(
        self, done: Callable[[dict[str, Any]], bool], timeout: float = 120, token: str | None = None
    ) -> dict[str, Any]:
        """Polls /health until `done(health)`."""
        deadline = time.monotonic() + timeout
        while True:
            status, health = self.get("/health", token)
            if status in (200, 503) and done(health):
                return health
            assert self.proc.poll() is None, f"serve exited {self.proc.returncode}: {self.logs.read_text()}"
            assert time.monotonic() < deadline, f"timed out; last health {health}"
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, the graceful way; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._err.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        self._err.close()
