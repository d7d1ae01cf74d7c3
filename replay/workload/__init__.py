"""The synthetic workload: seeded, deterministic event streams for benchmarks, demos and tests."""

from replay.workload.stream import HOUR_MS, LENDER, SPOT_MAKER, GeneratorConfig, generate, valid_price, write_jsonl

__all__ = ["HOUR_MS", "LENDER", "SPOT_MAKER", "GeneratorConfig", "generate", "valid_price", "write_jsonl"]
