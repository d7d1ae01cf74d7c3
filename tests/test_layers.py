"""The packages stay in layers without cycles: import-linter checks the contracts written in
pyproject.toml (`[tool.importlinter]`, explained in docs/architecture.md) on the import graph,
function-level imports included. One test per contract, so a failure names the one broken and
shows import-linter's account of the imports that break it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", LINT, "--no-logo", "--no-cache", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("contract", CONTRACTS, ids=[contract["id"] for contract in CONTRACTS])
def test_contract_is_kept(contract: dict[str, object]) -> None:
    result = lint("--contract", str(contract["id"]))
    assert result.returncode == 0, f"broken: {contract['name']}\n{result.stdout}{result.stderr}"


def inside_a_function(statement: str) -> str:
    return f"def f():\n    {statement}\n"


# A module added to a layer, importing inside a function: (module, the import, the contract it
# breaks, what the report names).
BREAKS = [
    ("events/probe.py", "from clearinghouse import state", "layers", "events.probe -> clearinghouse.state"),
    ("clearinghouse/probe.py", "from replay import fold", "layers", "clearinghouse.probe -> replay.fold"),
    (
        "clearinghouse/probe.py",
        "from clearinghouse.edges import cli",
        "core-below-edges",
        "clearinghouse.probe -> clearinghouse.edges.cli",
    ),
    (
        "replay/probe.py",
        "from clearinghouse.edges import runner",
        "replay-below-edges",
        "replay.probe -> clearinghouse.edges.runner",
    ),
    ("clearinghouse/probe.py", "import time", "pure-core", "clearinghouse.probe -> time"),
    (
        "clearinghouse/edges/probe.py",
        "from clearinghouse.edges import service",
        "acyclic",
        "No cycles are allowed in clearinghouse.edges.",
    ),
]


@pytest.mark.parametrize(("module", "statement", "contract", "named"), BREAKS, ids=[f"{b[0]}:{b[2]}" for b in BREAKS])
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, statement: str, contract: str, named: str
) -> None:
    """The contracts see imports made inside functions; for the cycle, the service is made to
    import the probe back (`acyclic` then reports the cycle between the two)."""
    for path in ("pyproject.toml", "events", "clearinghouse", "replay"):
        copy = tmp_path / path
        if (ROOT / path).is_dir():
            shutil.copytree(ROOT / path, copy, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / path, copy)
    (tmp_path / module).write_text(inside_a_function(statement))
    if contract == "acyclic":
        with (tmp_path / "clearinghouse/edges/service.py").open("a") as service:
            service.write("\n\n" + inside_a_function("from clearinghouse.edges import probe"))
    result = lint("--contract", contract, cwd=tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode == 1 and "BROKEN" in result.stdout and named in result.stdout, report
