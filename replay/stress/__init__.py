"""Stress and cascade simulation (docs/stress.md): a population of accounts (a log's state at a
seq or a moment, or the generator's levered one) through a scenario of price moves, in the
engine, under configurations and ADL policies.

- `scenario`: scenarios (built-ins and JSON files) and the level of each market at each step;
- `configs`: configurations and ADL policies (the hook for the backtest's configuration files);
- `population`: where the accounts come from;
- `cascade`: the run itself, the impact fixed point and the collateral sales of each step;
- `overshoot`: the run's over-deleveraging (`replay.overdeleverage` on its price path);
- `page`: the HTML report.
"""
