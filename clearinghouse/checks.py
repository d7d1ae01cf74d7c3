"""Which accounts to check after an event: one protocol, three ways of answering it.

- `IndexedChecks`: the trigger index (`triggers.TriggerIndex`) for standard accounts and the
  price and funding bands (`pm_triggers.PmBands`) for banded ones; a tick visits only the keys
  it crossed, and each account checked is re-indexed.
- `FullScanChecks`: the reference twin: every holder of a ticked coin (`triggers.FullScan`) and
  every banded account exposed to it; it must make the same decisions as the index.
- `GuidedChecks`: the accounts a log's recorded decisions name for the event (reading history,
  `Engine`'s `guide`); nothing is indexed.

The engine asks `first` after every applied (or refused) event, checks the candidates exactly in
rounds (`Engine._check_triggers`), tells the checks which accounts it found healthy (`checked`)
or acted on (`acted`), and asks `next_round` what the round's liquidations may have moved.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from clearinghouse.context import Context, Watching
from clearinghouse.liquidation import Liquidations
from clearinghouse.pm_triggers import PmBands
from clearinghouse.portfolio import Check
from clearinghouse.risk.bands import Sizing
from clearinghouse.triggers import FullScan, TriggerIndex
from events import schema as ev


class AccountChecks(Watching, Protocol):
    def build(self, skip: frozenset[str]) -> None:
        """Indexes every account of the state but `skip` (after a snapshot load)."""
        ...

    def first(self, event: ev.InputEvent | None, seq: int) -> tuple[set[str], set[str]] | None:
        """The accounts the event (None: refused) may have lowered, and those of them whose keys
        only a tick crossed; None: nothing to check, not even the watch list."""
        ...

    def checked(self, name: str, now: Check | None, ticked: bool) -> None:
        """`name` was found healthy (`now`: its model's figures from the check)."""
        ...

    def acted(self, name: str) -> None:
        """`name` was liquidated, or a later liquidation of the event may have moved it."""
        ...

    def next_round(self, liq: Liquidations) -> set[str]:
        """The accounts the round's liquidations may have lowered (ADL counterparties, holders of
        the coins whose marks impact fills moved)."""
        ...


class IndexedChecks:
    def __init__(self, ctx: Context, triggers: TriggerIndex | FullScan, bands: PmBands | None) -> None:
        self.ctx, self.state, self.triggers, self.bands = ctx, ctx.state, triggers, bands

    def build(self, skip: frozenset[str]) -> None:
        banded = self.ctx.models.banded
        self.triggers.rebuild(self.state, skip | banded.keys())
        for name in sorted(banded):
            self.acted(name)

    def first(self, event: ev.InputEvent | None, seq: int) -> tuple[set[str], set[str]] | None:
        ctx = self.ctx
        candidates = self._candidates(event)
        ticked: set[str] = set()
        if candidates and (type(event) is ev.Prices or type(event) is ev.Funding):
            # only marks or a funding index moved: their keys were crossed; those the ledger
            # re-covers need no exact check (`TriggerIndex.covered`)
            candidates = ticked = {n for n in candidates if not self._covered(n)}
        if ctx.accrued:  # interest raised every borrow (a new set: `ticked` is the tick's alone)
            ctx.accrued = False
            candidates = candidates | self._interest_due()
        if ctx.recheck:  # a rebase moved these accounts' keys: checked, and indexed afresh
            candidates, ticked = candidates | ctx.recheck, ticked - ctx.recheck
            ctx.recheck = set()
        return candidates, ticked

    def _candidates(self, event: ev.InputEvent | None) -> set[str]:
        """Accounts whose margin the event may have lowered (None: a refused event, none); a
        fill the index can absorb in O(log n) adds nothing."""
        state, triggers, ctx = self.state, self.triggers, self.ctx
        kind = type(event)
        if event is None:
            return set()
        if kind is ev.Trade:
            accounts, markets, coin, banded = state.accounts, state.markets, event.coin, ctx.models.banded
            found = set()
            for n in (event.buyer, event.seller):
                if not (
                    self._band_filled(n, coin, True) if n in banded else triggers.filled(n, accounts[n], coin, markets)
                ):
                    found.add(n)
            return found
        if kind is ev.Prices:
            found: set[str] = set()
            exposed = ctx.exposed
            for coin in event.prices:
                if coin in state.markets:
                    found |= triggers.crossed(coin, state)
                if exposed and coin in exposed:
                    found |= self._banded_crossed(coin)
            return found
        if kind is ev.Funding:
            return triggers.crossed(event.coin, state) | self._banded_crossed(event.coin)
        if kind is ev.Market:
            return triggers.holders(event.coin, state) | ctx.exposed.get(event.coin, set())
        if kind is ev.Transfer or kind is ev.Deposit or kind is ev.Withdraw:
            names = (event.from_, event.to) if kind is ev.Transfer else (event.account,)
            return {n for n in names if not triggers.cash_moved(n, state.accounts[n])}
        if kind is ev.SpotTrade:  # a standard account's spot side is not its perp margin
            banded = ctx.models.banded
            return {
                n for n in (event.buyer, event.seller) if n in banded and not self._band_filled(n, event.base, False)
            }
        if kind is ev.Rules:
            return set(ctx.models.banded) if event.ltv or event.caps or event.pm or event.risk else set()
        if kind is ev.SetLeverage or kind is ev.Token or kind is ev.LiquidationRecord:
            return set()  # none changes account value or maintenance
        return {event.account}  # type: ignore[union-attr]

    def _covered(self, name: str) -> bool:
        """A standard account a tick sent for a check whose ledger proves it healthy and
        re-keys it (`TriggerIndex.covered`: `AV - MM >= 0` in every scope, the standard model's
        rule; another model is checked by its own). Not one the watch list or liquidation
        orders hold: their exact check also clears those (`liquidation.healthy`)."""
        state = self.state
        return (
            name not in self.ctx.models.chosen
            and name not in state.watch
            and name not in state.liq_orders
            and self.triggers.covered(name, state.accounts[name], state.markets)
        )

    def _band_filled(self, name: str, coin: str, perp: bool) -> bool:
        """A banded account's fill its bands absorbed (`PmBands.filled`)."""
        return self.bands.filled(name, self.state, coin, perp)  # type: ignore[union-attr]

    def _banded_crossed(self, coin: str) -> set[str]:
        """Banded accounts a move of `coin` (price or funding) may have made liquidatable."""
        exposed = self.ctx.exposed.get(coin)
        if not exposed:
            return set()
        market = self.state.markets.get(coin)
        if market is None:
            return set(exposed)
        return self.bands.crossed(coin, market)  # type: ignore[union-attr]

    def _interest_due(self) -> set[str]:
        """Borrowers the hour's interest and settlement may have made liquidatable: those settled
        and those whose interest used up what their buffer kept back, unless their slack absorbs
        what moved (`PmBands.cash_moved`)."""
        state, settled, bands = self.state, self.ctx.settled_since_check, self.bands
        spot = state.spot
        due = {
            n
            for n in self.ctx.models.banded
            if spot[n].borrowed
            and (n in settled or bands.interest_due(n, state))  # type: ignore[union-attr]
            and not bands.cash_moved(n, state)
        }  # type: ignore[union-attr]
        settled.clear()
        return due

    def checked(self, name: str, now: Check | None, ticked: bool) -> None:
        self._index(name, now, ticked)

    def acted(self, name: str) -> None:
        self._index(name, None, False)

    def _index(self, name: str, now: Check | None, ticked: bool) -> None:
        """Re-indexes an account after an exact check (`now`: its model's figures from it;
        `ticked`: found healthy after the event's tick crossed its keys, nothing else moved)."""
        state, bands = self.state, self.bands
        model = self.ctx.models.banded.get(name)
        if model is not None:
            self.triggers.forget(name)
            if bands is not None:
                (bands.refresh if ticked else bands.index)(name, state, model, now)
        else:
            if bands is not None:
                bands.forget(name)
            (self.triggers.refresh if ticked else self.triggers.reindex)(name, state.accounts[name], state.markets)

    def mode_changed(self, name: str) -> None:
        """Out of the index it was kept in; a standard account is indexed afresh (a banded one
        is indexed in its bands when it is next checked)."""
        self.triggers.forget(name)
        if self.ctx.indexed and name not in self.ctx.models.banded:
            self.triggers.reindex(name, self.state.accounts[name], self.state.markets)

    def holders(self, coin: str) -> set[str]:
        return self.triggers.holders(coin, self.state) | self.ctx.exposed.get(coin, set())

    def sizing(self, name: str) -> Sizing | None:
        return self.bands.risk.get(name) if self.bands is not None else None

    def next_round(self, liq: Liquidations) -> set[str]:
        state, triggers = self.state, self.triggers
        candidates = set(liq.counterparties)
        for coin in sorted(liq.moved):  # impact mode's fills moved these marks
            candidates |= triggers.crossed(coin, state) | self._banded_crossed(coin)
        return candidates


class FullScanChecks(IndexedChecks):
    """Every account exposed to what moved: no bands, and every borrower at each hour's
    interest."""

    def __init__(self, ctx: Context, triggers: FullScan) -> None:
        super().__init__(ctx, triggers, None)

    def _band_filled(self, name: str, coin: str, perp: bool) -> bool:
        return False  # the account is checked

    def _banded_crossed(self, coin: str) -> set[str]:
        exposed = self.ctx.exposed.get(coin)
        return set(exposed) if exposed else set()

    def _interest_due(self) -> set[str]:
        spot = self.state.spot
        due = {n for n in self.ctx.models.banded if spot[n].borrowed}
        self.ctx.settled_since_check.clear()
        return due


class GuidedChecks:
    """The accounts the log's derived events name for each input seq (and the watch list), in
    the same rounds; see `Engine`."""

    def __init__(self, ctx: Context, guide: Mapping[int, Collection[str]]) -> None:
        self.ctx, self.guide = ctx, guide
        self.named: list[str] = []

    def build(self, skip: frozenset[str]) -> None:
        return None  # nothing is indexed

    def first(self, event: ev.InputEvent | None, seq: int) -> tuple[set[str], set[str]] | None:
        ctx = self.ctx
        ctx.accrued = False
        ctx.recheck.clear()
        accounts = ctx.state.accounts
        self.named = [n for n in self.guide.get(seq, ()) if n in accounts]  # a guide may name anyone
        if not self.named and not ctx.state.watch:
            return None
        return set(self.named), set()

    def checked(self, name: str, now: Check | None, ticked: bool) -> None:
        return None

    def acted(self, name: str) -> None:
        return None

    def mode_changed(self, name: str) -> None:
        return None

    def holders(self, coin: str) -> set[str]:
        return set()  # the guide names whom to check

    def sizing(self, name: str) -> Sizing | None:
        return None  # nothing is banded

    def next_round(self, liq: Liquidations) -> set[str]:
        return set(self.named)
