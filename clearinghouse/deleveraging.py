"""Auto-deleveraging (docs/rules.md 5, docs/adl.md): a position the liquidator declines is closed
against opposite positions at the previous mark, as the run's ADL policy plans
(`clearinghouse.adl_policies`); what no one takes, the liquidator takes at the plan's price."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clearinghouse import margin
from clearinghouse.adl_policies import Opposite, policy_of
from clearinghouse.holders import Holders, ScanHolders
from clearinghouse.liquidator import LIQUIDATOR, fill_between, fill_with_liquidator, to_tick
from clearinghouse.state import Account, MarketState, Position, State
from events import schema as ev


class Deleveraging:
    """Closes positions against ADL counterparties; `counterparties` collects the accounts whose
    positions it changed (the engine checks them in its next round)."""

    def __init__(self, state: State, emit: Callable[[Any], None], holders: Holders | ScanHolders) -> None:
        self.state = state
        self.emit = emit
        self.policy = policy_of(state.liquidation)
        self.counterparties: set[str] = set()
        self.holders = holders
        self._open: dict[str, list[str]] = {}  # coin -> accounts with an open position in it, per input event

    def begin_event(self) -> None:
        """Within one input event the accounts holding a coin only shrink (liquidations close
        positions, the liquidator is never a counterparty), so ADL lists each coin's open
        positions once per event, from the coin's holders (`holders`)."""
        if self._open:
            self._open.clear()

    def close(self, name: str, account: Account, held: list, cause: int) -> None:
        """Closes each position as the policy plans, at the previous mark; what no one takes, the
        liquidator takes at the plan's price."""
        state = self.state
        for coin, pos, market in held:
            px = to_tick(market.prev_mark or market.mark, market, up=pos.szi < 0)
            opposites = self.opposites(name, coin, pos.szi > 0)
            plan = self.policy.plan(state, opposites, pos, market, px, _equity(account, pos, market, state.markets))
            for other, size in plan.fills:
                signed = -size if pos.szi > 0 else size
                fill_between(state, account, pos, other.account, other.pos, market, signed, px, 0)
                self.counterparties.add(other.name)
                self.emit(
                    ev.Adl(
                        account=name, counterparty=other.name, coin=coin, sz=signed, px=px, cause=cause, ts=state.time
                    )
                )
            if pos.szi:  # no one left to deleverage: the liquidator takes the rest
                left = abs(pos.szi)
                for size, price in ((plan.at_adl_px, px), (left - plan.at_adl_px, plan.rest_px)):
                    if size:
                        self._backstop(name, account, pos, market, size if pos.szi > 0 else -size, price, cause)

    def _backstop(
        self, name: str, account: Account, pos: Position, market: MarketState, szi: int, px: int, cause: int
    ) -> None:
        """The liquidator takes `szi` of the position at `px`, with no margin."""
        view = ev.PositionView(market.coin, szi, px)
        fill_with_liquidator(self.state, account, pos, market, -szi, px, 0)
        self.emit(
            ev.Backstop(
                account=name,
                scope=market.coin if not pos.cross else "cross",
                positions=[view],
                margin=0,
                cause=cause,
                ts=self.state.time,
            )
        )

    def opposites(self, bankrupt: str, coin: str, bankrupt_long: bool) -> list[Opposite]:
        """The open positions on the other side, in no particular order (policies order them)."""
        accounts = self.state.accounts
        holders = self._open.get(coin)
        if holders is None:
            holders = self._open[coin] = [n for n in self.holders.of(coin) if _open_in(accounts[n], coin)]
        found = []
        for other_name in holders:
            other = accounts[other_name]
            opos = other.positions.get(coin)
            if opos is None or not opos.szi or (opos.szi > 0) == bankrupt_long or other_name in (bankrupt, LIQUIDATOR):
                continue
            found.append(Opposite(other_name, other, opos))
        return found


def _equity(
    account: Account, pos: Position, market: MarketState, markets: dict[str, MarketState]
) -> Callable[[], int]:
    """The bankrupt scope's equity at the mark, when a policy asks: the cross account value, or
    the isolated position's margin used."""
    if pos.cross:
        return lambda: margin.cross_figures(account, markets).account_value
    return lambda: margin.iso_margin_used(pos, market)


def _open_in(account: Account, coin: str) -> bool:
    pos = account.positions.get(coin)
    return pos is not None and pos.szi != 0
