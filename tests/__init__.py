"""The test suite, one folder per package: `events/` (the event language and its logs), `core/`
(the rules of the pure core), `replay/` (reading history), `service/` (the edges: runner, service,
shadow, API, CLI). Shared helpers live in `support/`; the simulation harness in `sim/`."""
