"""Shared fixtures. `kafka` starts a real single-node broker once per test session from the
project's own files (deploy/kafka): a missing Java or Maven fails the Kafka tests loudly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

BROKER_SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "kafka" / "broker.py"


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
def kafka(broker: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a broker started for this session."""
    data = tmp_path_factory.mktemp("kafka")
    try:
        bootstrap = broker.start(data)
    except broker.BrokerError as exc:  # java or mvn missing, or the broker would not start
        pytest.fail(f"the Kafka tests need a real broker: {exc}", pytrace=False)
    try:
        yield bootstrap
    finally:
        broker.stop(data)
