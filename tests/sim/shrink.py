"""The reducer: a failing stream cut down to a small one that fails the same way.

Delta debugging (Zeller's ddmin, simplified): drop chunks of the stream, halving the chunk size
down to single lines, keeping every cut after which the case still fails with the same
signature (kind, twin, what), and going round again until a whole pass cuts nothing. Each try
replays a prefix-free subsequence from scratch, so the result is a stream that fails on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Check = Callable[[list[str]], bool]  # does this stream still fail the same way?


def shrink(lines: list[str], fails: Check, budget: int = 4_000) -> list[str]:
    """The smallest stream found (at most `budget` tries) for which `fails` still holds; the
    line after the failure is never needed, so the stream is first cut at the failing line by
    the caller."""
    current = list(lines)
    tries = 0
    changed = True
    while changed and tries < budget:
        changed = False
        chunk = max(1, len(current) // 2)
        while chunk >= 1 and tries < budget:
            start = 0
            while start < len(current) and tries < budget:
                candidate = current[:start] + current[start + chunk :]
                tries += 1
                if candidate and fails(candidate):
                    current = candidate
                    changed = True
                else:
                    start += chunk
            chunk //= 2
    return current


def write_reproducer(lines: list[str], path: Path) -> Path:
    """The stream as a JSON-lines file (one event a line, as `ingest` reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
