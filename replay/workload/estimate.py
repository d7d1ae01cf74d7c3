"""What the workload believes the clearinghouse did to its accounts in a crash: the one place
where the workload approximates the clearinghouse's rules instead of asking the engine.

What it approximates (crash streams only; without `crash` nothing here runs):
- the cash side of a fill: cross fills in the account's flow; an isolated position keeps its own
  ledger, funded from the cross one with the margin of what it opens (at the leverage set, or 20x
  capped by the market when none was set) and paid back as it closes;
- liquidation at the current marks, scope by scope (the cross book, each isolated position), with
  the first tier's maintenance only (1 / (2 x max leverage)): below `_WIPED` of maintenance the
  backstop takes everything; above it the market phase closes the largest positions first, each
  paying a 0.045% fee, until maintenance is met.
It leaves out funding, the tiers above the first, rejections, auto-deleveraging, portfolio margin
collateral and the liquidation settings (mark, impact, slippage), and it checks only when the
workload is about to use an account (and at the crash's sweeps), later than the engine does.

Why the engine is not consulted: a stream is an input, fixed by its config alone. The same crash
stream is replayed with liquidation on and off, in mark or impact mode, with other margin models
in a backtest; an engine inside the workload would have to pick one of those settings, and the
stream would then depend on it. And every seeded stream users and benchmarks hold was written by
this estimate: the engine's exact answers (funding, tiers, rejections, PM collateral) differ from
it, so consulting the engine would change the stream of every seed. An engine fed with every
event would also cost several times the generation itself.
"""

from __future__ import annotations

from events.units import NTL_DIV, ceil_div
from replay.workload.accounts import Accounts
from replay.workload.markets import Book

_DEFAULT_LEVERAGE = 20  # of a position whose leverage was never set (capped by the market)
_LIQ_FEE = 45  # per 100_000: the liquidation fill's fee
_FEE_DIV = 100_000
# Below this share of maintenance the estimate takes an account as backstopped (wiped) rather than
# partly closed: above the clearinghouse's 2/3, since the estimate checks later than it does (a gap
# may have taken the account through 2/3 in between), and wiping an account that kept something
# is the safer error (it does not go on trading money it no longer has).
_WIPED = (5, 6)
DISTRESS_WIDE = 3  # `check` tells whether the cross book is within this many times maintenance


class LiquidationEstimate:
    """The cash each account holds by the estimate, and the liquidations it applies to `Accounts`."""

    def __init__(self, books: list[Book], accounts: Accounts) -> None:
        self.books = books
        self.accounts = accounts
        n = accounts.count
        self.open: list[set[int]] = [set() for _ in range(n)]  # markets with a position
        self.flow = [0] * n  # cash from trades (fees included): the cross ledger is funds + flow
        self.iso: dict[tuple[int, int], int] = {}  # (account, market) -> isolated ledger
        self.crashing = False  # in the drop or the rebound: every account is checked before use

    def isolated(self, a: int, m: int) -> bool:
        setting = self.accounts.leverage.get((a, m))
        return not setting[1] if setting else self.books[m].only_isolated

    def watch(self, a: int) -> None:
        """Before an account is used: a levered one (or any, during the crash) is checked."""
        if self.open[a] and (self.accounts.risky[a] or self.crashing):
            self.check(a)

    def fill(self, z: int, m: int, old: int, size: int, px: int, fee: int) -> None:
        """The cash side of a fill of `size` (signed) on position `old`, paying `fee`."""
        new = old + size
        if new:
            self.open[z].add(m)
        else:
            self.open[z].discard(m)
        if not self.isolated(z, m):
            self.flow[z] -= size * px // NTL_DIV + fee
            return
        key = (z, m)
        iso = self.iso.get(key, 0) - fee
        if old and (old > 0) != (size > 0):  # closes (and maybe flips)
            closed = max(size, -old) if old > 0 else min(size, -old)
            equity = iso + old * px // NTL_DIV
            iso -= closed * px // NTL_DIV
            rest = old + closed
            if not rest:
                self.flow[z] += iso
                iso = 0
            elif self.books[m].only_isolated and equity > 0:
                release = equity * abs(closed) // abs(old)
                iso -= release
                self.flow[z] += release
            size -= closed
        if size:  # opens
            setting = self.accounts.leverage.get(key)
            lev = setting[0] if setting else min(_DEFAULT_LEVERAGE, self.books[m].max_leverage)
            margin = ceil_div(abs(size) * px // NTL_DIV, lev)
            self.flow[z] -= margin
            iso += margin - size * px // NTL_DIV
        if iso or new:
            self.iso[key] = iso
        else:
            self.iso.pop(key, None)

    def check(self, a: int, settle: bool = False) -> bool:
        """Closes out in `Accounts` what the clearinghouse will (roughly) have liquidated at the
        current marks (see the module doc). With `settle`, the account's funds become its cross
        equity (its budget from then on; isolated margin is not available) and its notionals are
        taken at the marks. True if the cross book survives within `DISTRESS_WIDE` times its
        maintenance."""
        accounts, books = self.accounts, self.books
        held, pos, ntls = self.open[a], accounts.pos[a], accounts.ntl[a]
        cross = []
        equity = accounts.funds[a] + self.flow[a]
        maintenance = 0
        for m in sorted(held):
            b = books[m]
            ntl = abs(pos[m]) * b.mark // NTL_DIV
            mm = ntl // (2 * b.max_leverage)
            value = pos[m] * b.mark // NTL_DIV
            if not self.isolated(a, m):
                cross.append((ntl, m, value, mm))
                equity += value
                maintenance += mm
                continue
            iso_equity = self.iso.get((a, m), 0) + value
            if iso_equity >= mm:
                continue
            wiped = iso_equity * _WIPED[1] < _WIPED[0] * mm
            back = 0 if wiped else max(0, iso_equity - ntl * _LIQ_FEE // _FEE_DIV)
            self.flow[a] += back
            self.iso.pop((a, m), None)
            pos[m] = ntls[m] = 0
            held.discard(m)
            equity += back
        if equity < maintenance:
            backstop = equity * _WIPED[1] < _WIPED[0] * maintenance
            cross.sort(key=lambda c: (-c[0], c[1]))
            for ntl, m, _value, mm in cross:
                if not backstop:
                    equity -= ntl * _LIQ_FEE // _FEE_DIV
                    maintenance -= mm
                pos[m] = ntls[m] = 0
                held.discard(m)
                if not backstop and equity >= maintenance:
                    break
            equity = 0 if backstop else max(0, equity)  # the cross ledger and the budget
            accounts.funds[a] = equity
            self.flow[a] = -sum(value for _, m, value, _ in cross if pos[m])
        if settle:
            cross_value = 0
            for m in held:
                b = books[m]
                ntls[m] = abs(pos[m]) * b.mark // NTL_DIV
                if not self.isolated(a, m):
                    cross_value += pos[m] * b.mark // NTL_DIV
            accounts.funds[a] = max(0, equity)
            self.flow[a] = equity - cross_value - accounts.funds[a]
        accounts.gross[a] = sum(ntls[m] for m in held)
        return 0 < maintenance and equity < DISTRESS_WIDE * maintenance

    def sweep(self, settle: bool = False) -> list[int]:
        """Checks every account with a position (see `check`); returns those in distress."""
        return [a for a, held in enumerate(self.open) if held and self.check(a, settle)]

    def cross_book(self, a: int, longs: bool) -> tuple[int, int, int | None]:
        """(equity, maintenance) of the account's cross book at the marks, and its largest cross
        position on the long (or short) side."""
        pos, books = self.accounts.pos[a], self.books
        equity, maintenance, worst = self.accounts.funds[a] + self.flow[a], 0, (0, None)
        for m in sorted(self.open[a]):
            if self.isolated(a, m):
                continue
            b = books[m]
            ntl = abs(pos[m]) * b.mark // NTL_DIV
            equity += pos[m] * b.mark // NTL_DIV
            maintenance += ntl // (2 * b.max_leverage)
            if (pos[m] > 0) == longs and ntl > worst[0]:
                worst = (ntl, m)
        return equity, maintenance, worst[1]
