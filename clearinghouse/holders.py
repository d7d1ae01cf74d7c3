"""Which accounts hold a position in a coin: where auto-deleveraging looks for counterparties.

A position record outlives its closing (it keeps the leverage setting and all-time funding)
and accounts are never removed, so the accounts with a record in a coin only ever grow: a
record is created by a trade, a leverage setting or an import (`opened`), never anywhere else.
`Holders` keeps them per coin, built from the state on first use (a run that never
deleverages never builds it) and kept by `opened` after, so ADL visits the holders of one coin,
not every account. `ScanHolders` is the simple twin (every account, in the state's order); the
reference engine (`full_scan`) uses it, so the twins' equal decisions check the index.

Neither lists the liquidator, which is never a counterparty. The order of the names is not the
state's: every ADL policy orders the counterparties itself (by score or by account id).
"""

from __future__ import annotations

from clearinghouse.liquidator import LIQUIDATOR
from clearinghouse.state import State


def scan(state: State, coin: str) -> list[str]:
    """Every account with a position record in `coin` but the liquidator, in the state's order."""
    return [n for n, a in state.accounts.items() if coin in a.positions and n != LIQUIDATOR]


class Holders:
    """coin -> the accounts with a position record in it (open or flat), each once."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._by_coin: dict[str, dict[str, None]] | None = None  # None until first asked

    def of(self, coin: str) -> list[str]:
        by_coin = self._by_coin
        if by_coin is None:
            by_coin = self._by_coin = {}
            for name, account in self.state.accounts.items():
                if name != LIQUIDATOR:
                    for held in account.positions:
                        by_coin.setdefault(held, {})[name] = None
        return list(by_coin.get(coin, ()))

    def opened(self, name: str, coin: str) -> None:
        """`name` got a position record in `coin` (a no-op until the index is first built)."""
        if self._by_coin is not None and name != LIQUIDATOR:
            self._by_coin.setdefault(coin, {})[name] = None


class ScanHolders:
    """The twin: scans every account each time it is asked."""

    def __init__(self, state: State) -> None:
        self.state = state

    def of(self, coin: str) -> list[str]:
        return scan(self.state, coin)

    def opened(self, name: str, coin: str) -> None:
        return None
