"""The engine: `apply(event)` folds one input event into the state and returns derived events.

Single-threaded and pure (LMAX's business logic processor): no I/O, no clock, no randomness.
Every handler validates completely before it mutates, so a rejected event leaves the state as it
was (apart from the sequence number and event time, which count every event of the log).
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Mapping

from clearinghouse import account_modes, lending, margin, portfolio
from events.bounds import (
    FIGURE_LIMIT,
    FUNDING_EXPOSURE_LIMIT,
    FUNDING_INDEX_LIMIT,
    MAX_JUMP_HOURS,
    MAX_LEVERAGE,
    MAX_NOTIONAL,
    MAX_PX,
    MAX_TS,
    OPEN_LIMIT,
    OPEN_NOTIONAL_LIMIT,
)
from clearinghouse.errors import Reject
from clearinghouse.fills import apply_fill, saturated, settle_funding
from clearinghouse.liquidation import LIQUIDATOR, Liquidations, healthy, settings_error
from clearinghouse.models.base import MarginModel
from clearinghouse.models.registry import AccountModels
from clearinghouse.scopes import below_maintenance
from clearinghouse.rules import RULE_SETS, RuleSet, cap_hourly, hourly_rate_from_premium, patched, pm_rules_error
from clearinghouse.spot import USDC, add, price, spot_of
from clearinghouse.state import Account, Market, Pool, Position, SpotAccount, State, Token
from clearinghouse.tiers import build_table, tier_table_error
from clearinghouse.pm_triggers import PmBands
from clearinghouse.triggers import FullScan, TriggerIndex
from events.units import (
    FUNDING_QUANTUM,
    HOUR_MS,
    NTL_DIV,
    PX_DECIMALS,
    SZ_DECIMALS,
    TOKEN_DECIMALS,
    USD_DECIMALS,
    ceil_div,
    format_decimal,
    round_half_even,
)
from events import schema as ev

IMPORT_ACCOUNT = "@import"  # holds the other side of imported positions
SYSTEM_ACCOUNTS = frozenset({IMPORT_ACCOUNT, LIQUIDATOR})  # never liquidated
DEDUP_WINDOW = 100_000  # how many recent source ids are remembered for de-duplication
LOW = -FIGURE_LIMIT


def _usd(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


class Engine:
    """`full_scan` selects the reference trigger mode (every account checked on every tick);
    both modes make the same decisions.

    `guide` replaces both with the decisions a log already records, for reading history: input
    seq -> the accounts its derived events name. After each event only those accounts (and the
    watch list) are checked, in the same rounds, so a replay of the same log under the same
    settings decides exactly as the indexed run did: the index found every account below
    maintenance, each of those is named, and checking one found healthy changes nothing that
    the watch list does not already cover. The trigger index is never built. A guide that does
    not come from the log (tampered, other settings) can mislead it: readers compare the
    decisions it makes with the recorded ones (`replay.decisions`)."""

    def __init__(self, state: State | None = None, *, full_scan: bool = False, guide: Mapping[int, Collection[str]] | None = None) -> None:
        self.state = state if state is not None else State()
        problem = settings_error(self.state.liquidation)
        if problem:
            raise ValueError(problem)
        self.rules: RuleSet = RULE_SETS[self.state.rules]
        self._liquidating = self.state.liquidation.mode != "off"
        self._guide = guide
        self._indexed = self._liquidating and guide is None  # the trigger index and bands are kept
        self.triggers: TriggerIndex | FullScan = FullScan() if full_scan else TriggerIndex()
        # Each account's margin model, chosen from its mode. Accounts of a banded model (unified,
        # portfolio) stay out of the trigger index (its keys are for standard maintenance):
        # their own price and funding bands (`pm_triggers`) pick those a tick may have made
        # liquidatable; the full scan checks all those exposed to the coin.
        self.models = AccountModels(self.state)
        self._exposed: dict[str, set[str]] = {}
        for name in sorted(self.models.banded):
            self._expose(name)
        self.pm_bands: PmBands | None = None if full_scan else PmBands()
        self._accrue_at = 0  # event time of the next hour boundary (the pools accrue, the time limit moves)
        self._latest = self._time_limit()  # the latest event time the next event may carry
        self._accrued = False  # interest accrued during this event: accounts with borrows are checked
        self._settled: set[str] = set()  # PM accounts settled with the pool since the last check
        self._recheck: set[str] = set()  # a rebase moved their funding index or pool shares: checked, keys rebuilt
        self._unbuilt = self._indexed  # built by the first `apply`: a resume with nothing to apply skips it
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
            ev.Token: self._token,
            ev.SpotTrade: self._spot_trade,
            ev.ClassTransfer: self._class_transfer,
            ev.SetMode: self._set_mode,
            ev.Supply: self._supply,
            ev.WithdrawSupply: self._withdraw_supply,
            ev.Borrow: self._borrow,
            ev.Repay: self._repay,
        }

    # ---- the fold ---------------------------------------------------------------------------

    def apply(self, event: Any) -> list[Any]:
        if self._unbuilt:  # keys are taken from the state before the first event, as after a load
            self._build()
        state = self.state
        seq = state.next_seq
        state.next_seq = seq + 1
        ts = event.ts
        if ts is not None and ts > state.time:
            if ts > self._latest:
                return [ev.Rejected(seq=seq, reason=self._time_error(ts), event=ev.event_type(event))]
            state.time = ts
        if state.time >= self._accrue_at:
            self._accrue()
        source_id = event.id
        checked: Any = event
        try:
            if source_id is not None and source_id in state.recent_ids:
                first = state.recent_ids[source_id]
                raise Reject(f"duplicate id {source_id!r} (first applied at seq {first})")
            self._handlers[type(event)](event)
        except Reject as exc:
            rejected = ev.Rejected(seq=seq, reason=str(exc), event=ev.event_type(event), ts=ts)
            if not (self._accrued and self._liquidating):
                return [rejected]
            # The hour's interest accrued before the event was refused: its checks are due now,
            # not at the next event (an engine rebuilt from this state would never make them).
            self._derived.append(rejected)
            checked = None
        else:
            if source_id is not None:
                self._remember(source_id, seq)
        if self._liquidating:
            self._check_triggers(checked, seq)
        if not self._derived:
            return []
        derived = self._derived[:]
        self._derived.clear()
        return derived

    def _time_limit(self) -> int:
        """The latest event time the next event may carry: once the state has a time past the
        first hour (or a pool accrues from hour 0), one that passes at most `MAX_JUMP_HOURS` hour
        boundaries, which bounds the hours of interest one event makes the pools accrue; else
        `MAX_TS`. A function of the state alone, kept up to date at each hour boundary."""
        state = self.state
        if state.time < HOUR_MS and not state.pools:
            return MAX_TS
        return (state.time // HOUR_MS + 1 + MAX_JUMP_HOURS) * HOUR_MS - 1

    def _time_error(self, ts: int) -> str:
        """The reason for refusing `ts` (it is past `_latest`)."""
        if self._latest == MAX_TS:
            return f"ts {ts} is past the latest event time {MAX_TS}"
        return f"ts {ts} is more than {MAX_JUMP_HOURS} hours past the event time {self.state.time}"

    def _accrue(self) -> None:
        """Interest for every hour boundary event time has passed, then the settlement of the PM
        accounts whose USDC moved (before the event applies; it happens whatever the event's
        fate, as time passing does)."""
        state = self.state
        hour = state.time // HOUR_MS
        if any(pool.hour < hour for pool in state.pools.values()):
            rebased = lending.accrue(state.pools, state.pm_rules, hour, state.spot)
            self._accrued = True
            if rebased and self._liquidating:
                self._recheck.update(name for name, spot in state.spot.items()
                                     if any(t in spot.supplied or t in spot.borrowed for t in rebased))
            if self._indexed:
                self._settled.update(state.unswept)
            spots, accounts, settle, settling = state.spot, state.accounts, portfolio.settle, self.models.settling
            for name in sorted(state.unswept):  # then PM accounts' USDC is settled with the pool
                if name in settling:
                    settle(state, accounts[name], spots[name])
            state.unswept.clear()
        self._accrue_at = (hour + 1) * HOUR_MS
        self._latest = self._time_limit()

    def _pools_opened(self) -> None:
        """A handler may have opened a pool: the next hour boundary accrues it, and event time
        is bounded from now on (a pool opened at time 0 accrues from hour 0)."""
        if self.state.pools:
            self._accrue_at = min(self._accrue_at, (self.state.time // HOUR_MS + 1) * HOUR_MS)
            self._latest = self._time_limit()

    def _expose(self, name: str) -> None:
        """Files a unified or portfolio account under every coin whose price moves its figures."""
        spot, account = self.state.spot[name], self.state.accounts[name]
        for coin in (*account.positions, *spot.balances, *spot.supplied, *spot.borrowed):
            self._file(coin, name)

    def _file(self, coin: str, name: str) -> None:
        """Files `name` under `coin` for the trigger checks (nothing to keep with liquidation off)."""
        if not self._liquidating:
            return
        names = self._exposed.get(coin)
        if names is None:
            names = self._exposed[coin] = set()
        names.add(name)

    def _remember(self, source_id: str, seq: int) -> None:
        """Keeps the id of an applied event; a rejected one leaves no trace, so its redelivery
        is judged again."""
        seen = self.state.recent_ids
        seen[source_id] = seq
        if len(seen) > DEDUP_WINDOW:
            del seen[next(iter(seen))]

    # ---- liquidation triggers ----------------------------------------------------------------

    def _candidates(self, event: Any) -> set[str]:
        """Accounts whose margin the event may have lowered (None: a refused event, none); a
        fill the index can absorb in O(log n) adds nothing."""
        state, triggers = self.state, self.triggers
        kind = type(event)
        if event is None:
            return set()
        if kind is ev.Trade:
            accounts, markets, coin, special = state.accounts, state.markets, event.coin, self.models.banded
            return {n for n in (event.buyer, event.seller)
                    if not (self._pm_filled(n, coin, True) if n in special else triggers.filled(n, accounts[n], coin, markets))}
        if kind is ev.Prices:
            found: set[str] = set()
            exposed = self._exposed
            for coin in event.prices:
                if coin in state.markets:
                    found |= triggers.crossed(coin, state)
                if exposed and coin in exposed:
                    found |= self._exposed_crossed(coin)
            return found
        if kind is ev.Funding:
            return triggers.crossed(event.coin, state) | self._exposed_crossed(event.coin)
        if kind is ev.Market:
            return triggers.holders(event.coin, state) | self._exposed.get(event.coin, set())
        if kind is ev.Transfer or kind is ev.Deposit or kind is ev.Withdraw:
            names = (event.from_, event.to) if kind is ev.Transfer else (event.account,)
            return {n for n in names if not triggers.cash_moved(n, state.accounts[n])}
        if kind is ev.SpotTrade:  # a standard account's spot side is not its perp margin
            banded = self.models.banded
            return {n for n in (event.buyer, event.seller) if n in banded and not self._pm_filled(n, event.base, False)}
        if kind is ev.Rules:
            return set(self.models.banded) if event.ltv or event.caps or event.pm else set()
        if kind is ev.SetLeverage or kind is ev.Token:
            return set()  # neither changes account value or maintenance
        return {event.account}

    def _pm_filled(self, name: str, coin: str, perp: bool) -> bool:
        """A unified or PM account's fill its bands absorbed (`PmBands.filled`; never in the full
        scan, which checks the account)."""
        return self.pm_bands is not None and self.pm_bands.filled(name, self.state, coin, perp)

    def _check_triggers(self, event: Any, seq: int) -> None:
        """Checks the candidates exactly, in rounds: each round's accounts below maintenance
        (as found at its start) are liquidated in account-id order, at most once per event;
        the next round looks at what those liquidations moved (impact prices, ADL)."""
        state, triggers, liq, guide = self.state, self.triggers, self.liquidations, self._guide
        accounts, markets = state.accounts, state.markets
        ticked: set[str] = set()
        if guide is not None:
            self._accrued = False
            self._recheck.clear()
            named = [n for n in guide.get(seq, ()) if n in accounts]  # a guide may name anyone
            if not named and not state.watch:
                return
            candidates = set(named)
        else:
            candidates = self._candidates(event)
            if type(event) is ev.Prices or type(event) is ev.Funding:
                ticked = candidates  # only marks or a funding index moved: their keys were crossed
            if self._accrued:  # interest raised every borrow (a new set: `ticked` is the tick's alone)
                self._accrued = False
                candidates = candidates | self._interest_due()
            if self._recheck:  # a rebase moved these accounts' keys: checked, and indexed afresh
                candidates, ticked = candidates | self._recheck, ticked - self._recheck
                self._recheck = set()
        liq.begin_event()
        done: set[str] = set()
        idle: set[str] = set()  # found below, but an earlier liquidation of the round moved them back above
        while True:
            candidates = (candidates | state.watch.keys()) - done - SYSTEM_ACCOUNTS
            if not candidates:
                return
            below = []
            chosen, spots = self.models.chosen, state.spot
            for name in sorted(candidates):
                now = None
                model = chosen.get(name)
                if model is None:  # standard
                    liquidatable = below_maintenance(accounts[name], markets)
                else:
                    account, spot = accounts[name], spots[name]
                    now = model.precheck(state, account, spot)
                    liquidatable = model.liquidatable(state, account, spot, now)
                if liquidatable:
                    below.append(name)
                else:
                    healthy(state, name)
                    self._index(name, now, name in ticked)
            if not below:
                return
            ticked = set()  # later rounds look at what liquidations moved
            liq.moved.clear()
            liq.counterparties.clear()
            for name in below:
                made = len(self._derived)
                liq.check(name, self.models.of(name), seq)
                self._index(name)
                if len(self._derived) == made:
                    idle.add(name)
                else:
                    idle.discard(name)
            done.update(below)
            if liq.moved or liq.counterparties:  # fills moved marks (impact) or positions (ADL)
                done -= idle  # never liquidated: a later round may find them again
                idle.clear()
                for name in sorted(done):
                    self._moved_after(name, seq)
            if guide is not None:
                candidates = set(named)
                continue
            candidates = set(liq.counterparties)
            for coin in sorted(liq.moved):  # impact mode's fills moved these marks
                candidates |= triggers.crossed(coin, state) | self._exposed_crossed(coin)

    def _moved_after(self, name: str, seq: int) -> None:
        """An account liquidated earlier in this event that a later fill may have moved (an
        impact fill's price, an ADL closing its position at the previous mark): not liquidated
        twice in one event, but watched if left below maintenance (the next event liquidates
        it), and re-indexed on what it holds now at the current marks."""
        state = self.state
        if self.models.of(name).liquidatable(state, state.accounts[name], state.spot.get(name)):
            state.watch.setdefault(name, seq)
        self._index(name)

    def _build(self) -> None:
        """Indexes every account of the state (after a snapshot load: O(positions))."""
        self._unbuilt = False
        banded = self.models.banded
        self.triggers.rebuild(self.state, SYSTEM_ACCOUNTS | banded.keys())
        for name in sorted(banded):
            self._index(name)

    def _interest_due(self) -> set[str]:
        """Borrowers the hour's interest and settlement may have made liquidatable: every one in
        the full scan; with the bands, those settled and those whose interest used up what their
        buffer kept back, unless their slack absorbs what moved (`PmBands.cash_moved`)."""
        state, settled, bands, banded = self.state, self._settled, self.pm_bands, self.models.banded
        spot = state.spot
        if bands is None:
            due = {n for n in banded if spot[n].borrowed}
        else:
            due = {n for n in banded if spot[n].borrowed and (n in settled or bands.interest_due(n, state))
                   and not bands.cash_moved(n, state)}
        settled.clear()
        return due

    def _exposed_crossed(self, coin: str) -> set[str]:
        """Unified and PM accounts a move of `coin` (price or funding) may have made liquidatable."""
        exposed = self._exposed.get(coin)
        if not exposed:
            return set()
        market = self.state.markets.get(coin)
        if self.pm_bands is None or market is None:
            return set(exposed)
        return self.pm_bands.crossed(coin, market)

    def _index(self, name: str, now: portfolio.Check | None = None, ticked: bool = False) -> None:
        """Re-indexes an account after an exact check (`now`: a PM account's figures from it;
        `ticked`: found healthy after the event's tick crossed its keys, nothing else moved)."""
        if not self._indexed:
            return
        model = self.models.banded.get(name)
        if model is not None:
            self.triggers.forget(name)
            if self.pm_bands is not None:
                (self.pm_bands.refresh if ticked else self.pm_bands.index)(name, self.state, model, now)
        else:
            if self.pm_bands is not None:
                self.pm_bands.forget(name)
            (self.triggers.refresh if ticked else self.triggers.reindex)(name, self.state.accounts[name], self.state.markets)

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

    def _token_worth(self, token: str, more: int, px: int | None = None) -> None:
        """Refuses an event after which a spot token's deposits (plus `more`) would be worth more
        than `OPEN_NOTIONAL_LIMIT` at `px` (default: its price), which bounds every value of it."""
        if token in self.state.token_net:
            held = self.state.token_net[token] + more
            if held * (price(self.state, token) if px is None else px) > OPEN_LIMIT:
                raise Reject(f"{token} deposits would be worth more than {_usd(OPEN_NOTIONAL_LIMIT)} USDC")

    @staticmethod
    def _room(figure: int, amount: int, what: str, name: str = "") -> None:
        """Refuses an event that would move a stored figure (`what`, of account `name` if given)
        by up to `amount` (>= 0) when that could take it past `FIGURE_LIMIT` (docs/wire-format.md)."""
        if abs(figure) + amount > FIGURE_LIMIT:
            raise Reject(f"{what}{f' of {name!r}' if name else ''} would pass its stored bound")

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
        state = self.state
        if e.token != USDC:
            self._token_of(e.token, e.amount)
            self._room(state.token_net.get(e.token, 0), e.amount, "the deposits", e.token)
            self._token_worth(e.token, e.amount)
            if e.account not in state.accounts:
                state.accounts[e.account] = Account()
            add(spot_of(state, e.account), e.token, e.amount)
            state.token_net[e.token] = state.token_net.get(e.token, 0) + e.amount
            if e.account in self.models.banded:
                self._file(e.token, e.account)
            return
        account = state.accounts.get(e.account)
        if abs(state.deposited) + e.amount > FIGURE_LIMIT or (
                account is not None and abs(account.raw_usd) + e.amount > FIGURE_LIMIT):
            raise Reject(f"the deposited total or the ledger of {e.account!r} would pass its stored bound")
        if account is None:
            account = state.accounts[e.account] = Account()
        account.raw_usd += e.amount
        state.deposited += e.amount
        self._settle(e.account)

    def _take(self, name: str, amount: int) -> Account:
        """Checks a non-trade removal of `amount` USDC from `name` (withdrawable in its mode) and
        takes it out of the ledger (a PM account's supply first)."""
        self._positive(amount, "amount")
        account = self._account(name)
        state = self.state
        spot = state.spot.get(name)
        model = self.models.of(name)
        available = model.withdrawable(state, account, spot, self.rules)
        if amount > available:
            raise Reject(f"amount {_usd(amount)} is above withdrawable {_usd(available)}")
        model.debit_ledger(state, account, spot, amount)
        return account

    def _withdraw(self, e: ev.Withdraw) -> None:
        state = self.state
        if e.token == USDC:
            self._room(state.withdrawn, max(0, e.amount), "the withdrawn total")
            self._take(e.account, e.amount)
            state.withdrawn += e.amount
            return
        self._token_of(e.token, e.amount)
        self._positive(e.amount, "amount")
        account = self._account(e.account)
        spot = state.spot.get(e.account)
        held = spot.balances.get(e.token, 0) if spot is not None else 0
        if e.amount > held:
            raise Reject(f"amount {format_decimal(e.amount, TOKEN_DECIMALS)} is above the {e.token} balance {format_decimal(held, TOKEN_DECIMALS)}")
        if spot is not None:
            self.models.of(e.account).check_removal(state, account, spot, (e.token, -e.amount))
        add(spot, e.token, -e.amount)  # type: ignore[arg-type]
        state.token_net[e.token] -= e.amount

    def _transfer(self, e: ev.Transfer) -> None:
        if e.from_ == e.to:
            raise Reject("transfer to the same account")
        target = self.state.accounts.get(e.to)
        self._room(target.raw_usd if target is not None else 0, max(0, e.amount), "the ledger", e.to)
        self._take(e.from_, e.amount)
        if target is None:
            target = self.state.accounts[e.to] = Account()
        target.raw_usd += e.amount
        self._settle(e.to)

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
        # A portfolio account's cross book answers to the PM ratio, which leverage does not enter.
        if e.leverage < pos.leverage and (not pos.cross or self.models.of(e.account).cross_leverage_margined):
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
        self._room(pos.iso_raw if e.delta > 0 else account.raw_usd, abs(e.delta), "the ledger", e.account)
        account.raw_usd -= e.delta
        pos.iso_raw += e.delta

    def _prices(self, e: ev.Prices) -> None:
        markets = self.state.markets
        prices = e.prices
        if not prices.keys() <= markets.keys():
            self._token_prices(e)
            return
        token_net = self.state.token_net
        for coin, point in prices.items():  # MAX_PX is the codec's: here what the state decides
            if (point.mark <= 0 or (point.oracle is not None and point.oracle <= 0)
                    or markets[coin].long_size * point.mark > OPEN_LIMIT):
                raise Reject(self._price_error(coin, point) or "")
            if token_net and coin in token_net:  # a token of the same name is priced at this oracle
                self._token_worth(coin, 0, point.mark if point.oracle is None else point.oracle)
        for coin, point in prices.items():
            market = markets[coin]
            market.prev_mark = market.mark
            market.mark = mark = point.mark
            market.oracle = mark if point.oracle is None else point.oracle

    def _price_error(self, coin: str, point: ev.PricePoint) -> str | None:
        """Why a price point is refused (`_prices` checks the same inline), or None."""
        if point.mark <= 0 or (point.oracle is not None and point.oracle <= 0):
            return f"prices of {coin} must be positive"
        market = self.state.markets.get(coin)
        if market is not None and market.long_size * point.mark > OPEN_LIMIT:
            return f"open interest of {coin} would be worth more than {_usd(OPEN_NOTIONAL_LIMIT)} USDC at this mark"
        return None

    def _token_prices(self, e: ev.Prices) -> None:
        """Prices with entries for listed spot tokens that have no perp market of their name:
        those set the token's oracle (its `oracle`, else its `mark`); the rest go to `_prices`."""
        state = self.state
        tokens = sorted(e.prices.keys() - state.markets.keys())
        unknown = [t for t in tokens if t not in state.tokens]
        if unknown:
            raise Reject(f"unknown market {unknown[0]!r}")
        for coin, point in e.prices.items():
            problem = self._price_error(coin, point)
            if problem:
                raise Reject(problem)
            self._token_worth(coin, 0, point.mark if point.oracle is None else point.oracle)
        self._prices(ev.Prices(prices={c: p for c, p in e.prices.items() if c in state.markets}))
        for token in tokens:
            point = e.prices[token]
            state.tokens[token].oracle = point.mark if point.oracle is None else point.oracle

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
        bpos, spos = buyer.positions.get(coin), seller.positions.get(coin)
        ntl = sz * px // NTL_DIV
        open_size = market.long_size + sz
        if (ntl > MAX_NOTIONAL or open_size > FIGURE_LIMIT or open_size * market.mark > OPEN_LIMIT
                or not LOW <= buyer.raw_usd <= FIGURE_LIMIT or not LOW <= seller.raw_usd <= FIGURE_LIMIT
                or not LOW <= state.fees <= FIGURE_LIMIT
                or (bpos and bpos.iso_raw and not LOW <= bpos.iso_raw <= FIGURE_LIMIT)
                or (spos and spos.iso_raw and not LOW <= spos.iso_raw <= FIGURE_LIMIT)):
            raise Reject(self._too_large(ntl, market, ((e.buyer, buyer, bpos), (e.seller, seller, spos))))
        if e.liquidation is not None:
            self._liquidation_fill(e)
        index = market.funding_index
        if index and open_size * (index if index > 0 else -index) > FUNDING_EXPOSURE_LIMIT:
            self._rebase_funding(market)
        if bpos is None:
            bpos = buyer.positions[coin] = self._new_position(market)
        if spos is None:
            spos = seller.positions[coin] = self._new_position(market)
        funding = apply_fill(buyer, bpos, market, sz, px, e.buyer_fee)
        funding += apply_fill(seller, spos, market, -sz, px, e.seller_fee)
        state.funding_pool -= funding
        state.fees += e.buyer_fee + e.seller_fee
        buyer.volume += ntl
        seller.volume += ntl
        if buyer.volume > FIGURE_LIMIT or seller.volume > FIGURE_LIMIT:  # volume only informs: it saturates
            buyer.volume, seller.volume = saturated(buyer.volume), saturated(seller.volume)
        banded = self.models.banded
        if banded:
            if e.buyer in banded:
                self._touched(coin, e.buyer)
            if e.seller in banded:
                self._touched(coin, e.seller)

    def _too_large(self, ntl: int, market: Market, sides: tuple[tuple[str, Account, Position | None], ...]) -> str:
        """Says which bound a trade would break (`Engine._trade`'s combined check)."""
        if ntl > MAX_NOTIONAL:
            return f"trade notional {_usd(ntl)} is above {_usd(MAX_NOTIONAL)} USDC"
        (buyer, account, pos), (seller, other, opos) = sides
        if abs(self.state.fees) > FIGURE_LIMIT:
            return "the fee account is at its stored bound"
        for name, ledger, pos in ((buyer, account, pos), (seller, other, opos)):
            if abs(ledger.raw_usd) > FIGURE_LIMIT or (pos is not None and abs(pos.iso_raw) > FIGURE_LIMIT):
                return f"the ledger of {name!r} is at its stored bound"
        worth = _usd(OPEN_NOTIONAL_LIMIT)
        return f"open interest of {market.coin} would pass {worth} USDC at the mark, or its size bound"

    def _rebase_funding(self, market: Market) -> None:
        """Settles every position of the market at its funding index (as a fill would), then
        moves the index and every position's to 0: payments depend only on differences, so
        nothing owed changes, and the index and what any position can owe stay bounded."""
        state, coin = self.state, market.coin
        for account in state.accounts.values():
            pos = account.positions.get(coin)
            if pos is not None:
                if pos.szi:
                    state.funding_pool -= settle_funding(account, pos, market)
                pos.funding_index = 0
        market.funding_index = 0
        if self._liquidating:
            self._recheck |= self.triggers.holders(coin, state) | self._exposed.get(coin, set())

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
        # Past its bounds the index is rebased to 0 first; one step alone is within both (at most
        # MAX_PX * 4% = 4e18, and open interest * step <= 400 * OPEN_NOTIONAL_LIMIT * NTL_DIV).
        step = round_half_even(market.oracle * hourly, FUNDING_QUANTUM)
        index = market.funding_index + step
        if abs(index) > FUNDING_INDEX_LIMIT or market.long_size * abs(index) > FUNDING_EXPOSURE_LIMIT:
            self._rebase_funding(market)
            index = step
        market.funding_index = index

    def _rules(self, e: ev.Rules) -> None:
        """Selects a named perp rule set and/or changes spot, lending and PM parameters."""
        rules = self.rules
        if e.name is not None:
            named = RULE_SETS.get(e.name)
            if named is None:
                raise Reject(f"unknown rule set {e.name!r} (known: {', '.join(sorted(RULE_SETS))})")
            rules = named
        if e.name is None and not (e.ltv or e.caps or e.pm):
            raise Reject("rules needs a name or parameters to change")
        pm = patched(self.state.pm_rules, e.ltv, e.caps, e.pm)
        problem = pm_rules_error(pm)
        if problem:
            raise Reject(problem)
        self.state.rules = rules.name
        self.rules = rules
        self.state.pm_rules = pm

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
            if p.max_leverage is not None and not 1 <= p.max_leverage <= MAX_LEVERAGE:
                raise Reject(f"max_leverage must be between 1 and {MAX_LEVERAGE}")
            self._check_leverage(market, p.leverage, p.cross, p.max_leverage or market.table.max_leverage)
            if p.cross and p.raw_usd:
                raise Reject(f"raw_usd is for isolated positions only ({p.coin})")
            size = market.long_size + abs(p.szi)
            if (p.entry_px > MAX_PX or abs(p.szi) * p.entry_px // NTL_DIV > MAX_NOTIONAL or size > FIGURE_LIMIT
                    or size * market.mark > OPEN_LIMIT):
                raise Reject(f"the {p.coin} position's entry or notional, or the open interest, would pass its bound")
        moved = abs(e.raw_usd) + sum(abs(p.raw_usd) + abs(p.szi) * p.entry_px // NTL_DIV for p in e.positions)
        other = self.state.accounts.get(IMPORT_ACCOUNT)
        self._room(self.state.deposited, moved, "the deposited total")
        self._room(other.raw_usd if other is not None else 0, moved, "the ledger", IMPORT_ACCOUNT)
        accounts = self.state.accounts
        account = accounts[e.account] = Account()
        if other is None:
            other = accounts[IMPORT_ACCOUNT] = Account()
        for p in e.positions:
            market = self.state.markets[p.coin]
            if (market.long_size + abs(p.szi)) * abs(market.funding_index) > FUNDING_EXPOSURE_LIMIT:
                self._rebase_funding(market)
            pos = account.positions[p.coin] = Position(p.leverage, p.cross, max_leverage=p.max_leverage or 0)
            # The opening fill at entry is a trade with the import account, so it is zero-sum: at
            # an entry off the tick both cash legs round down, and the import account gives back
            # the unit that makes.
            apply_fill(account, pos, market, p.szi, p.entry_px, 0)
            opposite = other.positions.get(p.coin)
            if opposite is None:
                opposite = other.positions[p.coin] = Position(1, True)
            self.state.funding_pool -= apply_fill(other, opposite, market, -p.szi, p.entry_px, 0)
            if p.szi * p.entry_px % NTL_DIV:
                other.raw_usd -= 1
            pos.funding_all, pos.funding_open, pos.funding_change = p.funding_all, p.funding_since_open, p.funding_since_change
        # The snapshot's ledgers are facts: whatever makes them match counts as deposited.
        before = account.raw_usd + sum(pos.iso_raw for pos in account.positions.values())
        account.raw_usd = e.raw_usd
        for p in e.positions:
            if not p.cross:
                account.positions[p.coin].iso_raw = p.raw_usd
        after = e.raw_usd + sum(p.raw_usd for p in e.positions if not p.cross)
        self.state.deposited += after - before

    # ---- spot, modes and lending (docs/portfolio-margin.md) ------------------------------------

    def _token_of(self, name: str, amount: int | None = None) -> Token:
        """A listed token; `amount` (if given) must be on its unit."""
        token = self.state.tokens.get(name)
        if token is None:
            raise Reject(f"unknown token {name!r}")
        if amount is not None and amount % token.unit:
            raise Reject(f"amount {format_decimal(amount, TOKEN_DECIMALS)} is finer than {name}'s {token.decimals} decimals")
        return token

    def _touched(self, coin: str, name: str) -> None:
        """A unified or PM account traded `coin`: filed under it, and settled if PM."""
        self._file(coin, name)
        self._settle(name)

    def _settle(self, name: str) -> None:
        """A portfolio account's USDC moved: it is settled with the pool (borrow, repay, supply)
        at the next hour boundary."""
        if name in self.models.settling:
            self.state.unswept[name] = 0

    def _token(self, e: ev.Token) -> None:
        if e.token == USDC:
            raise Reject("USDC is built in")
        if e.token in self.state.tokens:
            raise Reject(f"token {e.token!r} is already listed")
        if not 0 <= e.decimals <= TOKEN_DECIMALS:
            raise Reject(f"decimals must be between 0 and {TOKEN_DECIMALS}")
        self.state.tokens[e.token] = Token(e.decimals, 10 ** (TOKEN_DECIMALS - e.decimals))

    def _spot_trade(self, e: ev.SpotTrade) -> None:
        """A spot fill. Unlike a perp trade it is checked against balances (spot cannot go
        short, and a buyer must be able to pay, a PM buyer by borrowing against what it buys)."""
        state = self.state
        token = state.tokens.get(e.base)
        sz, px = e.sz, e.px
        if token is None or e.quote != USDC or sz <= 0 or px <= 0 or sz % token.unit or sz * px % NTL_DIV or e.buyer == e.seller:
            self._bad_spot_trade(e)
        accounts = state.accounts
        buyer = accounts.get(e.buyer) or self._account(e.buyer)
        seller = accounts.get(e.seller) or self._account(e.seller)
        bspot, sspot = state.spot.get(e.buyer), state.spot.get(e.seller)
        cost = sz * px // NTL_DIV
        held = sspot.balances.get(e.base, 0) if sspot is not None else 0
        if sz > held:
            raise Reject(f"seller holds {format_decimal(held, TOKEN_DECIMALS)} {e.base}, less than sz")
        assert sspot is not None  # a seller with no spot side holds nothing: refused above
        if cost > MAX_NOTIONAL:
            raise Reject(f"trade notional {_usd(cost)} is above {_usd(MAX_NOTIONAL)} USDC")
        self._token_worth(e.base, 0, px)
        models, rules = self.models, self.rules
        bmodel, smodel = models.of(e.buyer), models.of(e.seller)
        self._room(smodel.spot_usdc(seller, sspot), cost + abs(e.seller_fee), "the USDC", e.seller)
        self._room(state.fees, abs(e.buyer_fee) + abs(e.seller_fee), "the fee account")
        pay, fee_due = cost + e.buyer_fee, e.seller_fee - cost
        now = bmodel.cash_now(state, buyer, bspot) if bspot is not None else None
        room = bmodel.usdc_room(state, buyer, bspot, rules, (e.base, sz), pay, now)
        if pay > room:
            raise Reject(f"buyer can pay {_usd(room)} USDC, the buy needs {_usd(pay)}")
        if fee_due > 0 and fee_due > smodel.usdc_room(state, seller, sspot, rules):
            raise Reject("seller cannot pay its fee")
        # what the payments take out of the USDC pool (the buyer's supply first), checked before anything moves
        buyer_take = bmodel.payment_take(state, buyer, bspot, pay, 0, now) if now is not None else 0
        seller_take = smodel.payment_take(state, seller, sspot, fee_due, buyer_take, None)
        bspot = spot_of(state, e.buyer)
        add(bspot, e.base, sz)
        add(sspot, e.base, -sz)
        bmodel.pay_usdc(state, buyer, bspot, pay, buyer_take)
        smodel.pay_usdc(state, seller, sspot, fee_due, seller_take)
        state.fees += e.buyer_fee + e.seller_fee
        buyer.volume = saturated(buyer.volume + 2 * cost)
        seller.volume = saturated(seller.volume + 2 * cost)
        token.last_px = px
        for name in (e.buyer, e.seller):
            if name in models.banded:
                self._touched(e.base, name)

    def _bad_spot_trade(self, e: ev.SpotTrade) -> None:
        """Says why a spot trade failed the hot path's combined check."""
        if e.quote != USDC:
            raise Reject("spot trades are quoted in USDC")
        token = self._token_of(e.base)
        self._positive(e.sz, "sz")
        self._positive(e.px, "px")
        if e.sz % token.unit:
            raise Reject(f"sz {format_decimal(e.sz, TOKEN_DECIMALS)} is finer than {e.base}'s {token.decimals} decimals")
        if e.sz * e.px % NTL_DIV:
            raise Reject("sz * px must be a whole micro-USDC")
        raise Reject("buyer and seller are the same account")

    def _class_transfer(self, e: ev.ClassTransfer) -> None:
        """A standard account's USDC between spot and perp; leaving perp is a removal of margin
        (checked against withdrawable)."""
        self._positive(e.amount, "amount")
        account = self._account(e.account)
        spot = self.state.spot.get(e.account)
        model = self.models.of(e.account)
        if model.one_usdc_balance:
            raise Reject(f"a {model.mode} account has one USDC balance: nothing to transfer")
        if e.to_perp:
            held = spot.balances.get(USDC, 0) if spot is not None else 0
            if e.amount > held:
                raise Reject(f"amount {_usd(e.amount)} is above the spot USDC {_usd(held)}")
            self._room(account.raw_usd, e.amount, "the ledger", e.account)
            add(spot, USDC, -e.amount)  # type: ignore[arg-type]
            account.raw_usd += e.amount
            return
        available = self._withdrawable(account)
        if e.amount > available:
            raise Reject(f"amount {_usd(e.amount)} is above withdrawable {_usd(available)}")
        self._room(spot.balances.get(USDC, 0) if spot is not None else 0, e.amount, "the spot USDC", e.account)
        account.raw_usd -= e.amount
        add(spot_of(self.state, e.account), USDC, e.amount)

    def _set_mode(self, e: ev.SetMode) -> None:
        new = account_modes.model_named(e.mode)
        account = self._account(e.account)
        old = self.models.of(e.account)
        account_modes.check_switch(self.state, e.account, account, old, new)
        account_modes.switch(self.state, e.account, account, old, new)
        self.models.set(e.account, new)
        self.triggers.forget(e.account)
        if new.banded:
            self._expose(e.account)
        else:
            for names in self._exposed.values():
                names.discard(e.account)
            if self._indexed:
                self.triggers.reindex(e.account, account, self.state.markets)
        self._pools_opened()

    def _lending_amount(self, e: ev.Supply | ev.Borrow, what: str) -> None:
        """A positive amount on the token's unit, of a token the rules let be `what` ("supply"
        or "borrow")."""
        self._positive(e.amount, "amount")
        if e.token != USDC:
            self._token_of(e.token, e.amount)
        caps = self.state.pm_rules.caps.get(e.token)
        if caps is None or not (caps.borrow if what == "borrow" else caps.supply):
            raise Reject(f"{e.token} cannot be {'borrowed' if what == 'borrow' else 'supplied'}")

    def _supply(self, e: ev.Supply) -> None:
        self._lending_amount(e, "supply")
        state = self.state
        account = self._account(e.account)
        spot = state.spot.get(e.account)
        model = self.models.of(e.account)
        if e.token != USDC:
            held = spot.balances.get(e.token, 0) if spot else 0
        else:
            held = model.suppliable_usdc(state, account, spot, self.rules) if spot is not None else 0
        if e.amount > held:
            raise Reject(f"amount {lending.show(e.amount, e.token)} is above the available {lending.show(held, e.token)} {e.token}")
        assert spot is not None  # with no spot side nothing is held, and the amount was refused
        pool = state.pools.get(e.token) or Pool(hour=state.time // HOUR_MS)
        lending.supply(pool, spot, state.pm_rules, e.token, e.amount)
        state.pools.setdefault(e.token, pool)
        self._pools_opened()
        if model.banded:  # its supply is valued at the token's price
            self._file(e.token, e.account)
        if e.token == USDC:
            model.pay_usdc(state, account, spot, e.amount)
        else:
            add(spot, e.token, -e.amount)

    def _withdraw_supply(self, e: ev.WithdrawSupply) -> None:
        self._positive(e.amount, "amount")
        state = self.state
        account = self._account(e.account)
        spot = state.spot.get(e.account)
        pool = state.pools.get(e.token)
        if spot is None or pool is None or not spot.supplied.get(e.token):
            raise Reject(f"nothing supplied in {e.token}")
        model = self.models.of(e.account)
        if e.token != USDC:
            self._token_of(e.token, e.amount)
        else:
            home = "the ledger" if model.one_usdc_balance else "the spot USDC"
            self._room(model.spot_usdc(account, spot), e.amount, home, e.account)
        paid = lending.withdraw_supply(pool, spot, e.token, e.amount)
        if e.token == USDC:
            model.pay_usdc(state, account, spot, -paid)
        else:
            add(spot, e.token, paid)

    def _borrow(self, e: ev.Borrow) -> None:
        """An explicit borrow: portfolio accounts only, within the LTV headroom; the proceeds
        stay in the account (a PM withdrawal never takes borrowed funds)."""
        self._lending_amount(e, "borrow")
        state = self.state
        account = self._account(e.account)
        spot = state.spot.get(e.account)
        if spot is None or not self.models.of(e.account).may_borrow:
            raise Reject("borrowing needs a portfolio margin account")
        pool = state.pools.get(e.token)
        if pool is None:
            raise Reject(f"nothing supplied in {e.token} to borrow")
        if e.token != USDC and not price(state, e.token):
            raise Reject(f"no price for {e.token} yet: a borrow of it has no value to check")
        if e.token == USDC:
            self._room(account.raw_usd, e.amount, "the ledger", e.account)
        f = portfolio.figures(state, account, spot)
        worth = e.amount if e.token == USDC else ceil_div(e.amount * price(state, e.token), NTL_DIV)
        if f.borrowed + worth > f.borrow_limit:
            raise Reject(f"borrowing {_usd(worth)} USDC of value is above the headroom {_usd(max(0, f.borrow_limit - f.borrowed))}")
        lending.borrow(pool, spot, state.pm_rules, e.token, e.amount)
        if e.token == USDC:
            account.raw_usd += e.amount
        else:
            add(spot, e.token, e.amount)
            self._file(e.token, e.account)

    def _repay(self, e: ev.Repay) -> None:
        """Repays from the account's own balance: USDC from its free ledger cash, other tokens
        from the spot balance; an amount above the debt repays the debt."""
        self._positive(e.amount, "amount")
        state = self.state
        account = self._account(e.account)
        spot = state.spot.get(e.account)
        pool = state.pools.get(e.token)
        if spot is None or pool is None or not spot.borrowed.get(e.token):
            raise Reject(f"no {e.token} borrowed")
        amount = min(e.amount, portfolio.debt(state, spot, e.token))
        if e.token == USDC:
            held = max(0, margin.cross_value(account, state.markets))
        else:
            held = spot.balances.get(e.token, 0)
        if amount > held:
            raise Reject(f"repaying {lending.show(amount, e.token)} needs that much free {e.token}, the account has {lending.show(held, e.token)}")
        paid = lending.repay(pool, spot, e.token, amount)
        if e.token == USDC:
            account.raw_usd -= paid
        else:
            add(spot, e.token, -paid)
