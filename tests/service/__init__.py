"""Tests of the edges: the runner that persists, the service and its shadow, the HTTP API, the CLI,
Kafka."""
