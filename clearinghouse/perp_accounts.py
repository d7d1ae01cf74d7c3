"""Perp markets and per-account perp settings (docs/rules.md 1-2): listing a market, leverage,
isolated margin, and accounts imported from a snapshot of another venue."""

from __future__ import annotations

from clearinghouse import margin, perps
from clearinghouse.account_modes import enter, model_named
from clearinghouse.context import Context, positive, room, shown
from clearinghouse.errors import Reject
from clearinghouse.fills import apply_fill
from clearinghouse.spot import USDC, add, spot_of
from clearinghouse.state import Account, MarketState, Position
from clearinghouse.tiers import build_table, tier_table_error
from events import schema as ev
from events.bounds import FIGURE_LIMIT, FUNDING_EXPOSURE_LIMIT, MAX_LEVERAGE, MAX_NOTIONAL, MAX_PX, OPEN_LIMIT
from events.units import NTL_DIV, PX_DECIMALS, SZ_DECIMALS, USD_DECIMALS, ceil_div

IMPORT_ACCOUNT = "@import"  # holds the other side of imported positions


def list_market(ctx: Context, e: ev.Market) -> None:
    if not 0 <= e.sz_decimals <= SZ_DECIMALS:
        raise Reject(f"sz_decimals must be between 0 and {SZ_DECIMALS}")
    bounds = [(t.lower_bound, t.max_leverage) for t in e.margin_tiers]
    problem = tier_table_error(bounds)
    if problem:
        raise Reject(problem)
    table = build_table(bounds)
    market = ctx.state.markets.get(e.coin)
    if market is None:
        lot = 10 ** (SZ_DECIMALS - e.sz_decimals)
        tick = 10 ** (PX_DECIMALS - USD_DECIMALS + e.sz_decimals)  # so lot * tick is one micro-USDC
        ctx.state.markets[e.coin] = MarketState(e.coin, e.sz_decimals, lot, tick, table, e.only_isolated)
        return
    if market.sz_decimals != e.sz_decimals:
        raise Reject(f"sz_decimals of listed market {e.coin} cannot change")
    if market.only_isolated != e.only_isolated and (market.long_size or market.short_size):
        raise Reject(f"only_isolated of {e.coin} cannot change while positions are open")
    market.table = table
    market.only_isolated = e.only_isolated


def set_leverage(ctx: Context, e: ev.SetLeverage) -> None:
    market = ctx.market_of(e.coin)
    account = ctx.account(e.account)
    pos = account.positions.get(e.coin)
    if pos is None or not pos.szi:
        cap = pos.max_leverage if pos is not None and pos.max_leverage else market.table.max_leverage
        check_leverage(market, e.leverage, e.cross, cap)
        if pos is None:
            account.positions[e.coin] = perps.new_position(ctx, market, e.leverage, e.cross)
            ctx.holders.opened(e.account, e.coin)
        else:
            pos.leverage, pos.cross = e.leverage, e.cross
        return
    table = margin.table_of(pos, market)
    ntl = margin.notional(pos.szi, market.mark)
    check_leverage(market, e.leverage, e.cross, table.tier_for(ntl).max_leverage)
    if e.cross != pos.cross:
        raise Reject(f"cannot switch {e.coin} between cross and isolated with an open position")
    # A portfolio account's cross book answers to the PM ratio, which leverage does not enter.
    if e.leverage < pos.leverage and (not pos.cross or ctx.models.of(e.account).cross_leverage_margined):
        if pos.cross:
            cross = margin.cross_figures(account, ctx.state.markets)
            needed = cross.margin_used - ceil_div(ntl, pos.leverage) + ceil_div(ntl, e.leverage)
            equity = cross.account_value
        else:
            needed = ceil_div(ntl, e.leverage)
            equity = margin.iso_margin_used(pos, market)
        if needed > equity:
            raise Reject(f"insufficient margin for leverage {e.leverage}: needs {shown(needed)}, has {shown(equity)}")
    pos.leverage = e.leverage


def check_leverage(market: MarketState, leverage: int, cross: bool, max_leverage: int) -> None:
    if leverage < 1:
        raise Reject("leverage must be at least 1")
    if leverage > max_leverage:
        raise Reject(f"leverage {leverage} is above the maximum {max_leverage} for {market.coin}")
    if cross and market.only_isolated:
        raise Reject(f"{market.coin} is isolated-only")


def isolated_margin(ctx: Context, e: ev.IsolatedMargin) -> None:
    if not e.delta:
        raise Reject("delta must not be zero")
    market = ctx.market_of(e.coin)
    account = ctx.account(e.account)
    pos = account.positions.get(e.coin)
    if pos is None or not pos.szi or pos.cross:
        raise Reject(f"no open isolated position in {e.coin}")
    if e.delta > 0:
        available = ctx.withdrawable(account)
        if e.delta > available:
            raise Reject(f"delta {shown(e.delta)} is above withdrawable {shown(available)}")
        ctx.models.of(e.account).check_margin_move(ctx.state, account, ctx.state.spot.get(e.account), e.delta)
    else:
        if market.only_isolated:
            raise Reject(f"margin cannot be removed from strict-isolated {e.coin}")
        removable = margin.iso_removable(pos, market, ctx.rules)
        if -e.delta > removable:
            raise Reject(f"removing {shown(-e.delta)} exceeds removable {shown(removable)}")
    room(pos.iso_raw if e.delta > 0 else account.raw_usd, abs(e.delta), "the ledger", e.account)
    account.raw_usd -= e.delta
    pos.iso_raw += e.delta


def import_account(ctx: Context, e: ev.ImportAccount) -> None:
    if e.account in ctx.state.accounts or e.account == IMPORT_ACCOUNT:
        raise Reject(f"account {e.account!r} already exists")
    seen: set[str] = set()
    for p in e.positions:
        market = ctx.market_of(p.coin)
        if p.coin in seen:
            raise Reject(f"{p.coin} appears twice")
        seen.add(p.coin)
        if not p.szi or p.szi % market.lot:
            raise Reject(f"szi of {p.coin} must be a non-zero multiple of the lot")
        positive(p.entry_px, "entry_px")
        if p.max_leverage is not None and not 1 <= p.max_leverage <= MAX_LEVERAGE:
            raise Reject(f"max_leverage must be between 1 and {MAX_LEVERAGE}")
        check_leverage(market, p.leverage, p.cross, p.max_leverage or market.table.max_leverage)
        if p.cross and p.raw_usd:
            raise Reject(f"raw_usd is for isolated positions only ({p.coin})")
        size = market.long_size + abs(p.szi)
        if (
            p.entry_px > MAX_PX
            or abs(p.szi) * p.entry_px // NTL_DIV > MAX_NOTIONAL
            or size > FIGURE_LIMIT
            or size * market.mark > OPEN_LIMIT
        ):
            raise Reject(f"the {p.coin} position's entry or notional, or the open interest, would pass its bound")
    model = model_named(e.mode) if e.mode is not None else None
    check_balances(ctx, e.balances)
    moved = abs(e.raw_usd) + sum(abs(p.raw_usd) + abs(p.szi) * p.entry_px // NTL_DIV for p in e.positions)
    other = ctx.state.accounts.get(IMPORT_ACCOUNT)
    room(ctx.state.deposited, moved, "the deposited total")
    room(other.raw_usd if other is not None else 0, moved, "the ledger", IMPORT_ACCOUNT)
    accounts = ctx.state.accounts
    account = accounts[e.account] = Account()
    if other is None:
        other = accounts[IMPORT_ACCOUNT] = Account()
    for p in e.positions:
        market = ctx.state.markets[p.coin]
        if (market.long_size + abs(p.szi)) * abs(market.funding_index) > FUNDING_EXPOSURE_LIMIT:
            perps.rebase_funding(ctx, market)
        pos = account.positions[p.coin] = Position(p.leverage, p.cross, max_leverage=p.max_leverage or 0)
        ctx.holders.opened(e.account, p.coin)
        # The opening fill at entry is a trade with the import account, so it is zero-sum: at
        # an entry off the tick both cash legs round down, and the import account gives back
        # the unit that makes.
        apply_fill(account, pos, market, p.szi, p.entry_px, 0)
        opposite = other.positions.get(p.coin)
        if opposite is None:
            opposite = other.positions[p.coin] = Position(1, True)
            ctx.holders.opened(IMPORT_ACCOUNT, p.coin)
        ctx.state.funding_pool -= apply_fill(other, opposite, market, -p.szi, p.entry_px, 0)
        if p.szi * p.entry_px % NTL_DIV:
            other.raw_usd -= 1
        pos.funding_all, pos.funding_open, pos.funding_change = (
            p.funding_all,
            p.funding_since_open,
            p.funding_since_change,
        )
    # The snapshot's ledgers are facts: whatever makes them match counts as deposited.
    before = account.raw_usd + sum(pos.iso_raw for pos in account.positions.values())
    account.raw_usd = e.raw_usd
    for p in e.positions:
        if not p.cross:
            account.positions[p.coin].iso_raw = p.raw_usd
    after = e.raw_usd + sum(p.raw_usd for p in e.positions if not p.cross)
    ctx.state.deposited += after - before
    token_net = ctx.state.token_net
    for b in e.balances:
        add(spot_of(ctx.state, e.account), b.token, b.amount)
        token_net[b.token] = token_net.get(b.token, 0) + b.amount
    if model is not None and model is not ctx.models.of(e.account):
        enter(ctx, e.account, account, ctx.models.of(e.account), model)


def check_balances(ctx: Context, balances: list[ev.ImportedBalance]) -> None:
    """An imported account's own spot tokens: listed, on their unit, each once, and within the
    bounds a deposit of them keeps; USDC is its ledger (`raw_usd`), never a balance here."""
    seen: set[str] = set()
    for b in balances:
        if b.token == USDC:
            raise Reject("USDC is the account's ledger: give it as raw_usd, not as a balance")
        if b.token in seen:
            raise Reject(f"{b.token} appears twice in balances")
        seen.add(b.token)
        positive(b.amount, f"the {b.token} balance")
        ctx.token_of(b.token, b.amount)
        room(ctx.state.token_net.get(b.token, 0), b.amount, "the deposits", b.token)
        ctx.token_worth(b.token, b.amount)
