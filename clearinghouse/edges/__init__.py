"""The edges: what runs the pure core against the world. The runner that persists a log's
derived events and snapshots, the live service, its shadow process, the HTTP API and metrics,
the producer and the command line. They may import everything below them (`replay`, the core,
`events`); nothing below imports them (tests/test_layers.py keeps it so)."""
