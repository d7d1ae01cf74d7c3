"""The stream's one source of randomness, and the stream's clock.

All randomness comes from one `random.Random(seed)`, through `random()` (an exact multiple of
2**-53, so scaling it to an int is the same on every platform; `randrange` would be slower, and
`gauss`/`paretovariate` call libm, which may not be) and `getrandbits`/`shuffle`. Every amount is
integer arithmetic, so a config gives the same bytes on any machine. The parts of the workload
share one `Draws`, so the order in which they draw is part of the stream's definition.
"""

from __future__ import annotations

import random
from bisect import bisect_right


class Draws:
    """One seeded `random.Random` and the integer draws made from it."""

    __slots__ = ("random", "rng")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.random = self.rng.random

    def between(self, low: int, high: int) -> int:
        """A uniform int in [low, high] (spans below 2**53)."""
        return low + int(self.random() * (high - low + 1))

    def rank(self, cumulative: list[int]) -> int:
        """A rank drawn by the cumulative integer weights `cumulative`."""
        return bisect_right(cumulative, int(self.random() * cumulative[-1]))


def cumulative_zipf(n: int) -> list[int]:
    """Cumulative integer weights 1/rank (Zipf, s = 1) for picking rank 0..n-1."""
    cum, total = [], 0
    for rank in range(1, n + 1):
        total += 10**12 // rank
        cum.append(total)
    return cum


class Clock:
    """Event time (ms), advanced by the stream and read by every part that writes an event."""

    __slots__ = ("ts",)

    def __init__(self, ts: int) -> None:
        self.ts = ts
