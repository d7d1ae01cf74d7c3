"""Backtests: a log's input replayed under other configurations (margin models, rules,
liquidation settings) and compared (docs/backtest.md). `config` reads a configuration,
`stream` applies it as input events, `meter` measures a replay, `compare` and `report` set the
configurations side by side; the worker processes are an edge (`clearinghouse.edges.backtest`)."""
