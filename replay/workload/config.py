"""What to generate: the one config a stream is a pure function of."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BOOKS = 1_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; the same config always gives the same stream."""

    accounts: int = 1000
    markets: int = 5
    events: int = 100_000
    seed: int = 1
    start_ts: int = 1_700_000_000_000  # ms
    trade_share: float = 0.70  # of body events; prices get `prices_share`, the rest are other
    prices_share: float = 0.25
    min_step_ms: int = 1  # event time advances by a uniform step in [min, max] ms
    max_step_ms: int = 300
    gross_leverage: int = 3  # cap on an account's total notional / its net deposits
    crash: bool = False  # a multi-market crash and rebound at 60% of the body (see replay.workload.crash)
    pm_share: float = 0.0  # share of accounts in portfolio margin (replay.workload.portfolio); 0 draws nothing
    books: int = 0  # extra accounts holding hedged and directional books (replay.workload.books); 0 draws nothing

    def check(self) -> None:
        """Raises ValueError naming the first setting out of its range."""
        if self.accounts < 2 or self.markets < 1 or self.events < 0:
            raise ValueError("need at least 2 accounts, 1 market and a non-negative event count")
        if not 1 <= self.min_step_ms <= self.max_step_ms:
            raise ValueError("need 1 <= min_step_ms <= max_step_ms")
        if self.trade_share < 0 or self.prices_share < 0 or self.trade_share + self.prices_share > 1:
            raise ValueError("trade_share and prices_share must be shares of the body that sum to at most 1")
        if self.gross_leverage < 1:
            raise ValueError("gross_leverage must be at least 1")
        if not 0 <= self.pm_share <= 1:
            raise ValueError("pm_share must be a share of the accounts")
        if not 0 <= self.books <= MAX_BOOKS:
            raise ValueError(f"books must be from 0 to {MAX_BOOKS}")
        if self.books and self.markets < 2:
            raise ValueError("books need at least 2 markets (a pair is long one and short another)")
