"""The `clearinghouse` command as a user runs it: a subprocess from the repository root."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "clearinghouse.cli", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result
