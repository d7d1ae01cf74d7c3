"""The test suite on a machine without Java or Maven: the Kafka tests are skipped with the reason,
except under CI (`CI=true`), where a missing tool fails them (run as a developer runs pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs pytest in a subprocess

ROOT = Path(__file__).resolve().parents[2]


def _pytest_without_java(ci: str) -> subprocess.CompletedProcess[str]:
    python_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": python_dir, "CI": ci, "JAVA_HOME": ""}
    test = "tests/service/test_kafka.py::test_garbage_goes_to_the_dead_letter_topic_and_the_service_goes_on"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_java_the_kafka_tests_are_skipped_with_the_reason() -> None:
    result = _pytest_without_java("")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "Kafka tests skipped: `java` not found on PATH" in result.stdout


def test_under_ci_a_missing_java_fails_the_kafka_tests() -> None:
    result = _pytest_without_java("true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the Kafka tests need a real broker: `java` not found on PATH" in result.stdout
