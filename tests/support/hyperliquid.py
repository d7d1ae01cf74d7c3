"""The Hyperliquid samples in tests/data/hyperliquid (their sources in the README beside them)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parents[1] / "data" / "hyperliquid"
CCXT_USER = "0x193bd350ec838b1e22d6f302da5343b920aa1c2b"  # the user of ccxt's userFills sample
A, B, C, D, E = (f"0x{digit * 40}" for digit in "12345")  # the hand-built node files' users
