"""Logging for the processes that run unattended (the service and its shadow): JSON lines on
stderr, one object per event, for log shippers. Its own module so the service and the shadow
it starts share it without importing each other."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging() -> None:
    """JSON lines on stderr; the libraries' stdlib logging (aiokafka's) goes through the same
    renderer."""
    shared: list[Any] = [structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
    )
    handler = logging.StreamHandler(sys.stderr)
    renderer = structlog.processors.JSONRenderer()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
