"""The optional dependencies (pyproject.toml's extras) as a user meets them: a command whose extra
is not installed says which to install (its package is made unimportable in the subprocess, as
in an environment without it), and the demo, the README's first command, needs none of them."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow  # every test runs the command in a subprocess

OPTIONAL = ("aiokafka", "prometheus_client", "matplotlib")
WITHOUT = """\
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # `import name` now fails as if it were not installed
from clearinghouse.edges.cli import main
sys.exit(main(sys.argv[2:]))
"""


def without(missing: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, ",".join(missing), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _log(tmp_path: Path) -> Path:
    source = tmp_path / "events.jsonl"
    source.write_text('{"type":"deposit","account":"a","amount":"10"}\n')
    log = tmp_path / "log"
    assert without(OPTIONAL, "ingest", str(source), "--log", str(log)).returncode == 0
    return log


def _says(result: subprocess.CompletedProcess[str], command: str, package: str, extra: str) -> None:
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr == (
        f"clearinghouse: error: `clearinghouse {command}` needs {package}, which is not installed: "
        f"pip install 'clearinghouse[{extra}]' (from a clone: pip install -e '.[{extra}]')\n"
    )


@pytest.mark.parametrize("package", ["prometheus_client", "aiokafka"])
def test_serve_without_the_service_extra_names_it(tmp_path: Path, package: str) -> None:
    _says(without((package,), "serve", "--log", str(_log(tmp_path))), "serve", package, "service")


def test_produce_without_the_kafka_extra_names_it(tmp_path: Path) -> None:
    result = without(("aiokafka",), "produce", "--kafka", "127.0.0.1:9", "--topic", "t", "--log", str(_log(tmp_path)))
    _says(result, "produce", "aiokafka", "kafka")


def test_audit_report_without_the_report_extra_names_it_and_the_text_needs_none(tmp_path: Path) -> None:
    log = _log(tmp_path)
    assert without(OPTIONAL, "run", "--log", str(log)).returncode == 0
    text = without(OPTIONAL, "replay", "audit", "--log", str(log), "--account", "a")
    assert text.returncode == 0 and text.stdout == "a: 0 liquidation event(s)\n"
    out = str(tmp_path / "r.html")
    report = without(("matplotlib",), "replay", "audit", "--log", str(log), "--account", "a", "--out", out)
    _says(report, "replay audit --out", "matplotlib", "report")


def test_the_demo_needs_no_extra(tmp_path: Path) -> None:
    result = without(OPTIONAL, "-q", "demo", "--events", "3000", "--accounts", "50", "--dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "3,000 events" in result.stdout
    # the audit command it prints leaves out the HTML report (the [report] extra) and works as printed
    (command,) = [line.split() for line in result.stdout.splitlines() if "clearinghouse replay audit" in line]
    assert "--out" not in command
    audited = without(OPTIONAL, *command[1:])
    assert audited.returncode == 0 and " liquidation event(s)\n" in audited.stdout


def test_the_extras_cover_every_optional_package_and_all_holds_them_all() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    name = lambda requirement: requirement.split(">")[0].split("=")[0].replace("-", "_")  # noqa: E731
    assert not {name(r) for r in project["dependencies"]} & set(OPTIONAL)
    assert {name(r) for r in extras["all"]} == set(OPTIONAL)
    assert [name(r) for r in extras["kafka"]] == ["aiokafka"] and [name(r) for r in extras["report"]] == ["matplotlib"]
    assert {name(r) for r in extras["service"]} == {"prometheus_client", "aiokafka"}
    assert (
        "'.[all,test]'" in (ROOT / ".ci" / "run").read_text() and "'.[all,test]'" in (ROOT / "README.md").read_text()
    )
