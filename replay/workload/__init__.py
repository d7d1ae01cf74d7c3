"""The synthetic workload: seeded, deterministic, realistic event streams for benchmarks, demos
and tests.

A stream opens with the market listings, one price for every market and a deposit per account,
then mixes trades, price updates and account events (funding lands on every hour boundary of
event time). Trades are sized within a few times each account's net deposits, so most accounts
stay solvent and rejections are rare but possible. Options add a crash (`crash`) and portfolio
margin accounts (`pm_share`); without them, neither draws a random number.

The parts, each named for what it generates:
- `config`: `GeneratorConfig`, the only input: the same config gives the same bytes anywhere;
- `draws`: the one seeded random source every part draws from, and the clock;
- `markets`: listings and price paths (a random walk of a hidden fair price per market);
- `accounts`: names, activity, first deposits, cash and positions as sent, trade sizing room;
- `account_events`: leverage, isolated margin, deposits, withdrawals, transfers;
- `trades`: perp trades and their fees;
- `portfolio`: the PM setup, spot trades and carry trades;
- `crash`: the crash's price paths, panic orders and the levered accounts;
- `estimate`: the one approximation of the clearinghouse's rules (fills' cash, liquidation), used
  by crash streams only; its docstring says what it leaves out and why the engine is not asked;
- `stream`: `generate` (head, then the body's mix) and `write_jsonl`.
"""

from replay.workload.config import GeneratorConfig
from replay.workload.markets import valid_price
from replay.workload.portfolio import LENDER, SPOT_MAKER
from replay.workload.stream import HOUR_MS, generate, write_jsonl

__all__ = ["HOUR_MS", "LENDER", "SPOT_MAKER", "GeneratorConfig", "generate", "valid_price", "write_jsonl"]
