"""The accounts and what the workload has sent for each: names, how busy each is, cash brought
in, positions as traded, leverage settings; and the sizing rule that keeps trades within a few
times an account's net deposits, so most accounts stay solvent and rejections are rare."""

from __future__ import annotations

from collections.abc import Iterator

from events.schema import Deposit
from events.units import NTL_DIV, USD
from replay.workload.draws import Draws, cumulative_zipf

_MIN_DEPOSIT = 50 * USD
_MAX_DEPOSIT = 25_000_000 * USD


class Accounts:
    """Per account (by index): its name, cash and positions as the workload sent them."""

    def __init__(self, count: int, markets: int, gross_leverage: int, draws: Draws) -> None:
        self.draws = draws
        self.count = count
        self.names = [f"0x{draws.rng.getrandbits(160):040x}" for _ in range(count)]
        self.by_activity = list(range(count))  # rank -> account: the busiest accounts are random
        draws.rng.shuffle(self.by_activity)
        self.cumulative = cumulative_zipf(count)
        self.makers = set(self.by_activity[: max(1, count // 100)])
        self.cap = [gross_leverage] * count  # gross leverage each account trades up to
        self.risky = [False] * count  # levered up for the crash (replay.workload.crash)
        self.first_deposit = [0] * count
        self.funds = [0] * count  # net cash in: deposits and transfers in, less what left
        self.gross = [0] * count  # sum of `ntl` over markets
        self.pos = [[0] * markets for _ in range(count)]
        self.ntl = [[0] * markets for _ in range(count)]  # |pos| at the last trade price
        self.leverage: dict[tuple[int, int], tuple[int, bool]] = {}  # (account, market) -> (lev, cross)
        self.isolated: list[tuple[int, int]] = []  # (account, market) pairs ever set isolated
        self.isolated_seen: set[tuple[int, int]] = set()

    def first_deposits(self, ts: int) -> Iterator[Deposit]:
        """One skewed deposit per account: Pareto with alpha 1/2 by inverse transform in integers,
        a median of about $200 and a few whales."""
        for a, name in enumerate(self.names):
            k = self.draws.between(1, 2**20)
            amount = min(_MAX_DEPOSIT, _MIN_DEPOSIT * 2**40 // (k * k))
            self.first_deposit[a] = self.funds[a] = amount
            yield Deposit(ts=ts, account=name, amount=amount)

    def pick(self) -> int:
        """A Zipf-weighted account: a few trade (and move money) far more than the rest."""
        return self.by_activity[self.draws.rank(self.cumulative)]

    def other(self, a: int) -> int:
        """A uniform account other than `a`."""
        b = self.draws.between(0, self.count - 2)
        return b + (b >= a)

    def room(self, x: int, m: int, side: int, px: int) -> int:
        """The largest size account `x` may trade on `side` (+1 buy) without its gross notional
        passing its cap (`gross_leverage`, or a levered account's own) times its funds; reducing
        a position is always allowed."""
        spare = self.funds[x] * self.cap[x] - self.gross[x] + self.ntl[x][m]
        cap = max(0, spare) * NTL_DIV // px
        p = self.pos[x][m]
        return max(cap, abs(p)) - side * p

    def trade(self, z: int, m: int, signed: int, px: int) -> None:
        """Adds `signed` to the position and takes its notional at `px`."""
        new = self.pos[z][m] + signed
        self.pos[z][m] = new
        ntl = abs(new) * px // NTL_DIV
        self.gross[z] += ntl - self.ntl[z][m]
        self.ntl[z][m] = ntl
