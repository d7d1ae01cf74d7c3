"""Auto-deleveraging (docs/rules.md 5): a position the liquidator declines is closed against the
opposite positions ranked by profit and leverage, at the previous mark; what no one can take,
the liquidator takes at that price."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from clearinghouse import margin
from clearinghouse.liquidator import LIQUIDATOR, fill_between, fill_with_liquidator, to_tick
from clearinghouse.state import Account, MarketState, Position, State
from events import schema as ev


class Deleveraging:
    """Closes positions against ADL counterparties; `counterparties` collects the accounts whose
    positions it changed (the engine checks them in its next round)."""

    def __init__(self, state: State, emit: Callable[[Any], None]) -> None:
        self.state = state
        self.emit = emit
        self.counterparties: set[str] = set()
        self._holders: dict[str, list[str]] = {}  # coin -> accounts holding it, per input event

    def begin_event(self) -> None:
        """Within one input event the accounts holding a coin only shrink (liquidations close
        positions, the liquidator is never a counterparty), so ADL scans the book once per event."""
        self._holders.clear()

    def close(self, name: str, account: Account, held: list, cause: int) -> None:
        """Closes each position against the most profitable, most leveraged opposite positions at
        the previous mark; what no one can take, the liquidator takes at that price."""
        state = self.state
        for coin, pos, market in held:
            px = to_tick(market.prev_mark or market.mark, market, up=pos.szi < 0)
            for other_name, other, opos in self.queue(name, coin, pos.szi > 0, market):
                if not pos.szi:
                    break
                size = min(abs(pos.szi), abs(opos.szi))
                signed = -size if pos.szi > 0 else size
                fill_between(state, account, pos, other, opos, market, signed, px, 0)
                self.counterparties.add(other_name)
                self.emit(
                    ev.Adl(
                        account=name, counterparty=other_name, coin=coin, sz=signed, px=px, cause=cause, ts=state.time
                    )
                )
            if pos.szi:  # no one left to deleverage: the liquidator takes the rest at that price
                view = ev.PositionView(coin, pos.szi, px)
                fill_with_liquidator(state, account, pos, market, -pos.szi, px, 0)
                self.emit(
                    ev.Backstop(
                        account=name,
                        scope=coin if not pos.cross else "cross",
                        positions=[view],
                        margin=0,
                        cause=cause,
                        ts=state.time,
                    )
                )

    def queue(
        self, bankrupt: str, coin: str, bankrupt_long: bool, market: MarketState
    ) -> list[tuple[str, Account, Position]]:
        """Opposite positions ranked by (profit ratio) x (notional / account value), highest
        first, ties by account id; accounts with no equity come last, by id."""
        ranked = []
        markets, accounts = self.state.markets, self.state.accounts
        holders = self._holders.get(coin)
        if holders is None:
            holders = self._holders[coin] = [
                n for n, a in accounts.items() if coin in a.positions and a.positions[coin].szi
            ]
        for other_name in holders:
            other = accounts[other_name]
            opos = other.positions.get(coin)
            if opos is None or not opos.szi or (opos.szi > 0) == bankrupt_long or other_name in (bankrupt, LIQUIDATOR):
                continue
            value = (
                margin.cross_figures(other, markets).account_value
                if opos.cross
                else margin.iso_margin_used(opos, market)
            )
            if value > 0 and opos.entry_px > 0:
                ntl = margin.notional(opos.szi, market.mark)  # 0 without a mark: no profit ratio to rank by
                score = (
                    Fraction(market.mark * ntl, opos.entry_px * value)
                    if opos.szi > 0
                    else Fraction(opos.entry_px * ntl, market.mark * value)
                    if ntl
                    else Fraction(0)
                )
                ranked.append((0, -score, other_name, other, opos))
            else:
                ranked.append((1, Fraction(0), other_name, other, opos))
        ranked.sort(key=lambda r: (r[0], r[1], r[2]))
        return [(n, a, p) for _, _, n, a, p in ranked]
