"""Shared fixtures. `kafka` starts a real single-node broker once per test session from the
project's own files (deploy/kafka). Without Java or Maven the Kafka tests are skipped with the
reason on a developer's machine, and fail under CI (`CI=true`), where a missing tool is a
broken setup. Every test that uses the broker is marked `kafka` here, so `-m "not kafka"` leaves
out exactly the tests that need one."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.served import RUNNING

BROKER_SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "kafka" / "broker.py"


BROKER_FIXTURES = {"broker", "kafka"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `kafka` every test that uses the broker (directly or through another fixture)."""
    for item in items:
        if BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


def broker_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kafka_broker", BROKER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def broker() -> ModuleType:
    return broker_module()


@pytest.fixture(scope="session")
def kafka(
    broker: ModuleType, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The bootstrap address of a broker started for this session."""
    data = tmp_path_factory.mktemp("kafka")
    if not broker._lib_complete(broker.LIB_DIR):
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"Kafka tests: resolving the broker's jars (about 100 MB) into {broker.LIB_DIR} with Maven"
            )
    try:
        bootstrap = broker.start(data)
    except broker.ToolMissingError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the Kafka tests need a real broker: {exc}", pytrace=False)
        pytest.skip(f"Kafka tests skipped: {exc}")
    except broker.BrokerError as exc:  # the broker would not start
        pytest.fail(f"the Kafka tests need a real broker: {exc}", pytrace=False)
    try:
        yield bootstrap
    finally:
        broker.stop(data)


@pytest.fixture(autouse=True)
def no_leftover_services() -> Iterator[None]:
    """A failed test must not leave the `clearinghouse serve` processes it started running (a
    module-scoped fixture's process starts before this and stays up for the module's tests)."""
    started = len(RUNNING)
    yield
    while len(RUNNING) > started:
        proc = RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
