"""The engine: `apply(event)` folds one input event into the state and returns derived events.

Single-threaded and pure (LMAX's business logic processor): no I/O, no clock, no randomness.
Every handler validates completely before it mutates, so a rejected event leaves the state as it
was (apart from the sequence number and event time, which count every event of the log).
"""

from __future__ import annotations

from typing import Any, Callable

from clearinghouse import margin
from clearinghouse.fills import apply_fill
from clearinghouse.liquidation import LIQUIDATOR, Liquidations, below_maintenance, healthy
from clearinghouse.rules import RULE_SETS, RuleSet, cap_hourly, hourly_rate_from_premium
from clearinghouse.state import Account, Market, Position, State
from clearinghouse.tiers import build_table, tier_table_error
from clearinghouse.triggers import FullScan, TriggerIndex
from clearinghouse.units import (
    FUNDING_QUANTUM,
    NTL_DIV,
    PX_DECIMALS,
    SZ_DECIMALS,
    USD_DECIMALS,
    ceil_div,
    format_decimal,
    round_half_even,
)
from events import schema as ev

IMPORT_ACCOUNT = "@import"  # holds the other side of imported positions
SYSTEM_ACCOUNTS = frozenset({IMPORT_ACCOUNT, LIQUIDATOR})  # never liquidated
DEDUP_WINDOW = 100_000  # how many recent source ids are remembered for de-duplication


class Reject(Exception):
    """Raised by a handler, before any mutation, to turn the event into a `rejected` event."""


def _usd(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


class Engine:
    """`full_scan` selects the reference trigger mode (every account checked on every tick);
    both modes make the same decisions. `quiet=True` skips the liquidation checks altogether:
    only for replaying a stretch of a log known to hold no liquidation decision, starting from a
    state with no account on the watch list or on order (then the checks would change nothing)."""

    def __init__(self, state: State | None = None, *, full_scan: bool = False, quiet: bool = False) -> None:
        self.state = state if state is not None else State()
        self.rules: RuleSet = RULE_SETS[self.state.rules]
        self._liquidating = self.state.liquidation.mode != "off" and not quiet
        self.triggers: TriggerIndex | FullScan = FullScan() if full_scan else TriggerIndex()
        if self._liquidating:
            self.triggers.rebuild(self.state, SYSTEM_ACCOUNTS)
        self._derived: list[Any] = []
        self.liquidations = Liquidations(self.state, self._derived.append)
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.Market: self._market,
            ev.Deposit: self._deposit,
            ev.Withdraw: self._withdraw,
            ev.Transfer: self._transfer,
            ev.SetLeverage: self._set_leverage,
            ev.IsolatedMargin: self._isolated_margin,
            ev.Prices: self._prices,
            ev.Trade: self._trade,
            ev.Funding: self._funding,
            ev.Rules: self._rules,
            ev.ImportAccount: self._import_account,
        }

    # ---- the fold ---------------------------------------------------------------------------

    def apply(self, event: Any) -> list[Any]:
        state = self.state
        seq = state.next_seq
        state.next_seq = seq + 1
        ts = event.ts
        if ts is not None and ts > state.time:
            state.time = ts
        source_id = event.id
        try:
            if source_id is not None and source_id in state.recent_ids:
                first = state.recent_ids[source_id]
                raise Reject(f"duplicate id {source_id!r} (first applied at seq {first})")
            self._handlers[type(event)](event)
        except Reject as exc:
            return [ev.Rejected(seq=seq, reason=str(exc), event=ev.event_type(event), ts=ts)]
        if source_id is not None:
            self._remember(source_id, seq)
        if self._liquidating:
            self._check_triggers(event, seq)
        if not self._derived:
            return []
        derived = self._derived[:]
        self._derived.clear()
        return derived

    def _remember(self, source_id: str, seq: int) -> None:
        """Keeps the id of an applied event; a rejected one leaves no trace, so its redelivery
        is judged again."""
        seen = self.state.recent_ids
        seen[source_id] = seq
        if len(seen) > DEDUP_WINDOW:
            del seen[next(iter(seen))]

    # ---- liquidation triggers ----------------------------------------------------------------

    def _candidates(self, event: Any) -> set[str]:
        """Accounts whose margin the event may have lowered; a fill the index can absorb in
        O(log n) adds nothing."""
        state, triggers = self.state, self.triggers
        kind = type(event)
        if kind is ev.Trade:
            accounts, markets = state.accounts, state.markets
            return {n for n in (event.buyer, event.seller) if not triggers.filled(n, accounts[n], event.coin, markets)}
        if kind is ev.Prices:
            found: set[str] = set()
            for coin in event.prices:
                found |= triggers.crossed(coin, state)
            return found
        if kind is ev.Funding:
            return triggers.crossed(event.coin, state)
        if kind is ev.Market:
            return triggers.holders(event.coin, state)
        if kind is ev.Transfer or kind is ev.Deposit or kind is ev.Withdraw:
            names = (event.from_, event.to) if kind is ev.Transfer else (event.account,)
            return {n for n in names if not triggers.cash_moved(n, state.accounts[n])}
        if kind is ev.Rules or kind is ev.SetLeverage:
            return set()  # neither changes account value or maintenance
        return {event.account}

    def _check_triggers(self, event: Any, seq: int) -> None:
        """Checks the candidates exactly, in rounds: each round's accounts below maintenance
        (as found at its start) are liquidated in account-id order, at most once per event;
        the next round looks at what those liquidations moved (impact prices, ADL)."""
        state, triggers, liq = self.state, self.triggers, self.liquidations
        accounts, markets = state.accounts, state.markets
        candidates = self._candidates(event)
        liq.begin_event()
        done: set[str] = set()
        while True:
            candidates = (candidates | state.watch.keys()) - done - SYSTEM_ACCOUNTS
            if not candidates:
                return
            below = []
            for name in sorted(candidates):
                if below_maintenance(accounts[name], markets):
                    below.append(name)
                else:
                    healthy(state, name)
                    triggers.reindex(name, accounts[name], markets)
            if not below:
                return
            liq.moved.clear()
            liq.counterparties.clear()
            for name in below:
                liq.check(name, seq)
                triggers.reindex(name, accounts[name], markets)
            done.update(below)
            candidates = set(liq.counterparties)
            for coin in sorted(liq.moved):
                candidates |= triggers.crossed(coin, state)

    # ---- lookups that reject ----------------------------------------------------------------

    def _account(self, name: str) -> Account:
        account = self.state.accounts.get(name)
        if account is None:
            raise Reject(f"unknown account {name!r}")
        return account

    def _market_of(self, coin: str) -> Market:
        market = self.state.markets.get(coin)
        if market is None:
            raise Reject(f"unknown market {coin!r}")
        return market

    @staticmethod
    def _positive(amount: int, what: str) -> None:
        if amount <= 0:
            raise Reject(f"{what} must be positive")

    def _withdrawable(self, account: Account) -> int:
        return margin.withdrawable(margin.cross_figures(account, self.state.markets), self.rules)

    def _new_position(self, market: Market, leverage: int | None = None, cross: bool | None = None) -> Position:
        lev = leverage if leverage is not None else min(self.rules.default_leverage, market.table.max_leverage)
        return Position(leverage=lev, cross=(not market.only_isolated) if cross is None else cross)

    def _check_leverage(self, market: Market, leverage: int, cross: bool, max_leverage: int) -> None:
        if leverage < 1:
            raise Reject("leverage must be at least 1")
        if leverage > max_leverage:
            raise Reject(f"leverage {leverage} is above the maximum {max_leverage} for {market.coin}")
        if cross and market.only_isolated:
            raise Reject(f"{market.coin} is isolated-only")

    # ---- handlers ---------------------------------------------------------------------------

    def _market(self, e: ev.Market) -> None:
        if not 0 <= e.sz_decimals <= SZ_DECIMALS:
            raise Reject(f"sz_decimals must be between 0 and {SZ_DECIMALS}")
        bounds = [(t.lower_bound, t.max_leverage) for t in e.margin_tiers]
        problem = tier_table_error(bounds)
        if problem:
            raise Reject(problem)
        table = build_table(bounds)
        market = self.state.markets.get(e.coin)
        if market is None:
            lot = 10 ** (SZ_DECIMALS - e.sz_decimals)
            tick = 10 ** (PX_DECIMALS - USD_DECIMALS + e.sz_decimals)  # so lot * tick is one micro-USDC
            self.state.markets[e.coin] = Market(e.coin, e.sz_decimals, lot, tick, table, e.only_isolated)
            return
        if market.sz_decimals != e.sz_decimals:
            raise Reject(f"sz_decimals of listed market {e.coin} cannot change")
        if market.only_isolated != e.only_isolated and (market.long_size or market.short_size):
            raise Reject(f"only_isolated of {e.coin} cannot change while positions are open")
        market.table = table
        market.only_isolated = e.only_isolated

    def _deposit(self, e: ev.Deposit) -> None:
        self._positive(e.amount, "amount")
        account = self.state.accounts.get(e.account)
        if account is None:
            account = self.state.accounts[e.account] = Account()
        account.raw_usd += e.amount
        self.state.deposited += e.amount

    def _take(self, name: str, amount: int) -> Account:
        """Checks a non-trade removal of `amount` from `name` against withdrawable."""
        self._positive(amount, "amount")
        account = self._account(name)
        available = self._withdrawable(account)
        if amount > available:
            raise Reject(f"amount {_usd(amount)} is above withdrawable {_usd(available)}")
        return account

    def _withdraw(self, e: ev.Withdraw) -> None:
        account = self._take(e.account, e.amount)
        account.raw_usd -= e.amount
        self.state.withdrawn += e.amount

    def _transfer(self, e: ev.Transfer) -> None:
        if e.from_ == e.to:
            raise Reject("transfer to the same account")
        source = self._take(e.from_, e.amount)
        target = self.state.accounts.get(e.to)
        if target is None:
            target = self.state.accounts[e.to] = Account()
        source.raw_usd -= e.amount
        target.raw_usd += e.amount

    def _set_leverage(self, e: ev.SetLeverage) -> None:
        market = self._market_of(e.coin)
        account = self._account(e.account)
        pos = account.positions.get(e.coin)
        if pos is None or not pos.szi:
            cap = pos.max_leverage if pos is not None and pos.max_leverage else market.table.max_leverage
            self._check_leverage(market, e.leverage, e.cross, cap)
            if pos is None:
                account.positions[e.coin] = self._new_position(market, e.leverage, e.cross)
            else:
                pos.leverage, pos.cross = e.leverage, e.cross
            return
        table = margin.table_of(pos, market)
        ntl = margin.notional(pos.szi, market.mark)
        self._check_leverage(market, e.leverage, e.cross, table.tier_for(ntl).max_leverage)
        if e.cross != pos.cross:
            raise Reject(f"cannot switch {e.coin} between cross and isolated with an open position")
        if e.leverage < pos.leverage:
            if pos.cross:
                cross = margin.cross_figures(account, self.state.markets)
                needed = cross.margin_used - ceil_div(ntl, pos.leverage) + ceil_div(ntl, e.leverage)
                equity = cross.account_value
            else:
                needed = ceil_div(ntl, e.leverage)
                equity = margin.iso_margin_used(pos, market)
            if needed > equity:
                raise Reject(f"insufficient margin for leverage {e.leverage}: needs {_usd(needed)}, has {_usd(equity)}")
        pos.leverage = e.leverage

    def _isolated_margin(self, e: ev.IsolatedMargin) -> None:
        if not e.delta:
            raise Reject("delta must not be zero")
        market = self._market_of(e.coin)
        account = self._account(e.account)
        pos = account.positions.get(e.coin)
        if pos is None or not pos.szi or pos.cross:
            raise Reject(f"no open isolated position in {e.coin}")
        if e.delta > 0:
            available = self._withdrawable(account)
            if e.delta > available:
                raise Reject(f"delta {_usd(e.delta)} is above withdrawable {_usd(available)}")
        else:
            if market.only_isolated:
                raise Reject(f"margin cannot be removed from strict-isolated {e.coin}")
            removable = margin.iso_removable(pos, market, self.rules)
            if -e.delta > removable:
                raise Reject(f"removing {_usd(-e.delta)} exceeds removable {_usd(removable)}")
        account.raw_usd -= e.delta
        pos.iso_raw += e.delta

    def _prices(self, e: ev.Prices) -> None:
        markets = self.state.markets
        prices = e.prices
        if not prices.keys() <= markets.keys():
            unknown = sorted(prices.keys() - markets.keys())
            raise Reject(f"unknown market {unknown[0]!r}")
        for coin, point in prices.items():
            if point.mark <= 0 or (point.oracle is not None and point.oracle <= 0):
                raise Reject(f"prices of {coin} must be positive")
        for coin, point in prices.items():
            market = markets[coin]
            market.prev_mark = market.mark
            market.mark = mark = point.mark
            market.oracle = mark if point.oracle is None else point.oracle

    def _trade(self, e: ev.Trade) -> None:
        state = self.state
        market = state.markets.get(e.coin) or self._market_of(e.coin)
        sz, px = e.sz, e.px
        if sz <= 0 or px <= 0 or sz % market.lot or px % market.tick or e.buyer == e.seller:
            self._bad_trade(e, market)
        accounts = state.accounts
        buyer = accounts.get(e.buyer) or self._account(e.buyer)
        seller = accounts.get(e.seller) or self._account(e.seller)
        coin = e.coin
        bpos = buyer.positions.get(coin)
        if bpos is None:
            bpos = buyer.positions[coin] = self._new_position(market)
        spos = seller.positions.get(coin)
        if spos is None:
            spos = seller.positions[coin] = self._new_position(market)
        if e.liquidation is not None:
            self._liquidation_fill(e)
        funding = apply_fill(buyer, bpos, market, sz, px, e.buyer_fee)
        funding += apply_fill(seller, spos, market, -sz, px, e.seller_fee)
        state.funding_pool -= funding
        state.fees += e.buyer_fee + e.seller_fee

    def _liquidation_fill(self, e: ev.Trade) -> None:
        """A fill of an external liquidation order: what it fills is no longer on order."""
        name = e.liquidation.account  # type: ignore[union-attr]
        if name not in (e.buyer, e.seller):
            raise Reject(f"liquidated account {name!r} is neither buyer nor seller")
        orders = self.state.liq_orders.get(name)
        if orders is not None and e.coin in orders:
            orders[e.coin] -= e.sz
            if orders[e.coin] <= 0:
                del orders[e.coin]
            if not orders:
                del self.state.liq_orders[name]

    def _bad_trade(self, e: ev.Trade, market: Market) -> None:
        """Says why a trade failed the hot path's combined check."""
        self._positive(e.sz, "sz")
        self._positive(e.px, "px")
        if e.sz % market.lot:
            raise Reject(f"sz {format_decimal(e.sz, SZ_DECIMALS)} is not a multiple of the lot of {e.coin}")
        if e.px % market.tick:
            raise Reject(f"px {format_decimal(e.px, PX_DECIMALS)} has more decimals than {e.coin} allows (6 - sz_decimals)")
        raise Reject("buyer and seller are the same account")

    def _funding(self, e: ev.Funding) -> None:
        market = self._market_of(e.coin)
        if (e.rate is None) == (e.premium is None):
            raise Reject("funding needs exactly one of rate or premium")
        if market.oracle <= 0:
            raise Reject(f"no oracle price for {e.coin} yet")
        if e.rate is not None:
            hourly = cap_hourly(self.rules, e.rate)
        else:
            hourly = hourly_rate_from_premium(self.rules, e.premium)  # type: ignore[arg-type]
        # One hour's funding per coin, quantised once per market (half to even) so that every
        # position pays exactly `szi * per_coin`, whenever it settles.
        market.funding_index += round_half_even(market.oracle * hourly, FUNDING_QUANTUM)

    def _rules(self, e: ev.Rules) -> None:
        rules = RULE_SETS.get(e.name)
        if rules is None:
            raise Reject(f"unknown rule set {e.name!r} (known: {', '.join(sorted(RULE_SETS))})")
        self.state.rules = e.name
        self.rules = rules

    def _import_account(self, e: ev.ImportAccount) -> None:
        if e.account in self.state.accounts or e.account == IMPORT_ACCOUNT:
            raise Reject(f"account {e.account!r} already exists")
        seen: set[str] = set()
        for p in e.positions:
            market = self._market_of(p.coin)
            if p.coin in seen:
                raise Reject(f"{p.coin} appears twice")
            seen.add(p.coin)
            if not p.szi or p.szi % market.lot:
                raise Reject(f"szi of {p.coin} must be a non-zero multiple of the lot")
            self._positive(p.entry_px, "entry_px")
            if p.max_leverage is not None and p.max_leverage < 1:
                raise Reject("max_leverage must be at least 1")
            self._check_leverage(market, p.leverage, p.cross, p.max_leverage or market.table.max_leverage)
            if p.cross and p.raw_usd:
                raise Reject(f"raw_usd is for isolated positions only ({p.coin})")
        accounts = self.state.accounts
        account = accounts[e.account] = Account()
        other = accounts.get(IMPORT_ACCOUNT)
        if other is None:
            other = accounts[IMPORT_ACCOUNT] = Account()
        for p in e.positions:
            market = self.state.markets[p.coin]
            pos = account.positions[p.coin] = Position(p.leverage, p.cross, max_leverage=p.max_leverage or 0)
            # The opening fill at entry is a trade with the import account, so it is zero-sum.
            apply_fill(account, pos, market, p.szi, p.entry_px, 0)
            opposite = other.positions.get(p.coin)
            if opposite is None:
                opposite = other.positions[p.coin] = Position(1, True)
            self.state.funding_pool -= apply_fill(other, opposite, market, -p.szi, p.entry_px, 0)
            pos.funding_all, pos.funding_open, pos.funding_change = p.funding_all, p.funding_since_open, p.funding_since_change
        # The snapshot's ledgers are facts: whatever makes them match counts as deposited.
        before = account.raw_usd + sum(pos.iso_raw for pos in account.positions.values())
        account.raw_usd = e.raw_usd
        for p in e.positions:
            if not p.cross:
                account.positions[p.coin].iso_raw = p.raw_usd
        after = e.raw_usd + sum(p.raw_usd for p in e.positions if not p.cross)
        self.state.deposited += after - before
