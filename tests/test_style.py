"""The tree stays as ruff leaves it: `ruff check` (the rules in pyproject.toml, `[tool.ruff]`)
finds nothing and `ruff format --check` would change nothing. Without ruff the tests are
skipped with the reason on a developer's machine and fail under CI (`CI=true`), where a
missing tool is a broken setup (`pip install -e .[test]` brings it)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ruff() -> None:
    if importlib.util.find_spec("ruff") is None:
        reason = "ruff is not installed (it is in the `test` extra: pip install -e .[test])"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def run_ruff(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ruff ARGS` from the repository root; no cache written into the tree."""
    command = [sys.executable, "-m", "ruff", *args, "--no-cache", "."]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("args", [("check",), ("format", "--check")], ids=["check", "format"])
def test_ruff_is_clean(ruff: None, args: tuple[str, ...]) -> None:
    result = run_ruff(*args)
    assert result.returncode == 0, f"ruff {' '.join(args)} fails:\n{result.stdout}{result.stderr}"
