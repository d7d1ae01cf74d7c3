"""Portfolio margin and unified accounts (docs/portfolio-margin.md): figures, the automatic
borrow / repay / supply of USDC, eligibility, and the PM and borrow liquidations.

A portfolio (PM) account's USDC is its cross ledger; its *USDC balance* is the cross account
value `AV_cross` (cash plus unrealised pnl and unsettled funding) plus the USDC it has supplied.
Its USDC is settled with the pool at the first hour boundary of event time after any event
moved it (a deposit, a spot trade, a perp fill, a liquidation), right after that hour's interest
accrues: a negative `AV_cross` is covered from its USDC supply, then by borrowing up to the
headroom `sum(balance * oracle * LTV) - borrowed` (and the pool's caps and liquidity); a positive
one repays USDC borrows and the rest is supplied to the pool, as far as the caps allow. Interest
accrues by whole hours, so a borrow or a supply counts from the boundary at which it is booked,
exactly as if it had been booked at the fill; in between, a negative balance is the shortfall
the PM ratio already counts. A spot buy is only accepted if the account's balance plus its borrow
headroom (with what it buys) can pay for it. What no borrow can cover stays a negative balance:
the fallback to non-PM behaviour, where more USDC must be posted (and the PM ratio counts it).

Choices where the rulebook is silent (also in docs/portfolio-margin.md):
- Collateral of token c is its spot balance plus what it has supplied. Borrowed value counts
  USDC 1:1 and other borrows at their oracle, rounded up.
- PM ratio: `req = min_requirement + crossMM + borrowed`, `liqValue = usdc + sum over collateral
  c != USDC of min(user USDC borrow cap, min(amount_c, user supply cap_c) * px_c *
  (1/2 + LTV_c/2))`, each term rounded down. Liquidatable when `req / liqValue > liq_ratio` and
  there is something to liquidate (a cross position or a borrow).
- Borrow liquidation counts the collateral with LTV > 0: partial when `borrowed > sum(value_c *
  q(LTV_c + (1 - LTV_c)/2))`, full when `borrowed > sum(value_c * q(LTV_c + 2(1 - LTV_c)/3))`, `q`
  rounding the factor down to `threshold_quantum` (0.001), so a threshold is never above the
  rulebook's (against the borrower: 10 HYPE at 30 with LTV 0.5 gives 300 * 0.833 = 249.90).
  The backstop (`@liquidator`) takes the collateral over at the oracle with the debt, no order
  book: a partial step moves `partial_step` (20%, rounded up) of every collateral holding as it
  was when the liquidation began, and borrow shares worth at most the same (rounded down); steps
  repeat while the account is above the partial threshold (or above the PM ratio with no cross
  position left), so five take everything. A full takeover moves every collateral holding and
  every borrow.
- A PM account above the ratio has its cross positions closed through the liquidation engine's
  market phase (largest first, 20% slices above 100k), until the ratio is met; with no position
  left and the ratio still broken, the backstop takes everything over (collateral, USDC balance,
  supply and borrows).
- Unified accounts: every perp is USDC-margined, so the unified ratio is USDC's:
  `crossMM / (spotTotal(USDC) - isolated marginUsed) = crossMM / AV_cross`; liquidatable at 1
  or above, and liquidated through the cross market phase and backstop.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import NamedTuple

from clearinghouse import lending, margin
from clearinghouse.errors import Reject
from clearinghouse.rules import PmRules
from clearinghouse.spot import USDC, add, price, value
from clearinghouse.state import Account, Pool, SpotAccount, State
from events import schema as ev
from events.units import HOUR_MS, INDEX_ONE, NTL_DIV, RATE, USD_DECIMALS, ceil_div, format_decimal


class Figures(NamedTuple):
    usdc: int  # AV_cross + supplied USDC
    borrowed: int  # value of every borrow
    borrow_limit: int  # sum(amount * oracle * LTV)
    collateral_value: int  # sum(amount * oracle) over collateral with LTV > 0
    maintenance: int  # cross MM
    requirement: int  # min_requirement + MM + borrowed
    liq_value: int
    net: int  # net balance: usdc + every spot token and supply at its oracle, less borrows


def pool_of(state: State, token: str) -> Pool:
    """The token's pool, opened at the current hour on first use."""
    pool = state.pools.get(token)
    if pool is None:
        pool = state.pools[token] = Pool(hour=state.time // HOUR_MS)
    return pool


def holdings(state: State, spot: SpotAccount, token: str) -> int:
    """Spot balance plus supplied amount of `token`."""
    amount = spot.balances.get(token, 0)
    shares = spot.supplied.get(token)
    if shares:
        amount += lending.claim(state.pools[token], shares)
    return amount


def debt(state: State, spot: SpotAccount, token: str) -> int:
    shares = spot.borrowed.get(token)
    return lending.owed(state.pools[token], shares) if shares else 0


def owed_value(state: State, token: str, owed: int) -> int:
    """What a debt of `owed` counts as in USDC: 1:1, other tokens at their oracle, rounded up."""
    return owed if token == USDC else ceil_div(owed * price(state, token), NTL_DIV)


def borrowed_value(state: State, spot: SpotAccount) -> int:
    total = 0
    for token, shares in spot.borrowed.items():  # a loop, not a generator: every automatic borrow asks
        total += owed_value(state, token, lending.owed(state.pools[token], shares))
    return total


class Holdings(NamedTuple):
    """Sums over an account's spot tokens (USDC aside) at their oracles."""

    borrow_limit: int  # sum(amount * oracle * LTV)
    collateral: int  # sum(amount * oracle) over LTV > 0
    liquidation: int  # the PM liquidation value of the collateral
    worth: int  # sum(amount * oracle) over every token
    partial: int  # the partial borrow-liquidation threshold
    full: int  # the full one


class _Terms(NamedTuple):
    """What the rules apply to one PM-eligible token in `spot_sums`."""

    ltv: int
    partial: int  # the partial threshold's factor, rounded down to the quantum
    full: int
    supply_cap: int | None  # the user supply cap in the token's unit (None: no caps, no liquidation value)


class _RulesTerms(NamedTuple):
    """What `_terms` works out once per rules object."""

    rules: PmRules | None
    terms: dict[str, _Terms]  # per PM-eligible token
    usdc_cap: int  # the user USDC borrow cap in micro-USDC
    collateral: tuple[tuple[str, int], ...]  # (token, LTV) of the tokens a borrow limit counts: LTV > 0, USDC aside


_cached_terms = _RulesTerms(None, {}, 0, ())


def _terms(rules: PmRules) -> _RulesTerms:
    """The per-token terms of a rules object, worked out once for it (rules are immutable; a
    `rules` event makes a new object). The cache holds the object, so its identity stays its own."""
    global _cached_terms
    if _cached_terms.rules is not rules:
        q = rules.threshold_quantum
        caps = rules.caps
        _cached_terms = _RulesTerms(
            rules,
            {
                token: _Terms(
                    ltv,
                    _factor(ltv, 1, 2, q),
                    _factor(ltv, 2, 3, q),
                    caps[token].user_supply * lending.scale(token) if token in caps else None,
                )
                for token, ltv in rules.ltv.items()
            },
            caps[USDC].user_borrow * lending.scale(USDC) if USDC in caps else 0,
            tuple((token, ltv) for token, ltv in rules.ltv.items() if ltv and token != USDC),
        )
    return _cached_terms


NO_HOLDINGS = Holdings(0, 0, 0, 0, 0, 0)


def token_sums(state: State, token: str, amount: int) -> Holdings:
    """One token's terms of `spot_sums` for `amount` held (USDC has none): each of those sums
    is a sum of these, which the PM bands use to follow one coin."""
    if token == USDC:
        return NO_HOLDINGS
    _, terms, usdc_cap, _ = _terms(state.pm_rules)
    px = price(state, token)
    worth = value(amount, px)
    t = terms.get(token)
    if t is None:
        return Holdings(0, 0, 0, worth, 0, 0)
    capped = min(amount, t.supply_cap) if t.supply_cap is not None else 0
    liq = min(usdc_cap, value(capped, px) * (RATE + t.ltv) // (2 * RATE))
    if not t.ltv:
        return Holdings(0, 0, liq, worth, 0, 0)
    return Holdings(_times(worth, t.ltv), worth, liq, worth, _times(worth, t.partial), _times(worth, t.full))


def _times(worth: int, factor: int) -> int:
    """`worth` times a factor in the 1e-12 scale, rounded down."""
    return worth * factor // RATE


def spot_sums(state: State, spot: SpotAccount, extra: tuple[str, int] | None = None) -> Holdings:
    """`extra` adds (token, amount) to the holdings (a buy being checked). One pass gives every
    sum a margin check needs, the borrow thresholds included (integer sums: any token order)."""
    tokens = dict.fromkeys(spot.balances)
    tokens.update(dict.fromkeys(spot.supplied))
    if extra is not None:
        tokens[extra[0]] = None
    total = NO_HOLDINGS
    for token in tokens:
        if token != USDC:
            part = token_sums(
                state,
                token,
                holdings(state, spot, token) + (extra[1] if extra is not None and extra[0] == token else 0),
            )
            total = part if total is NO_HOLDINGS else Holdings(*map(operator.add, total, part))
    return total


def borrow_limit(state: State, spot: SpotAccount, extra: tuple[str, int] | None = None) -> int:
    """`spot_sums(...).borrow_limit` alone, what every automatic borrow asks: each token with an
    LTV (USDC aside), held or bought (`extra`), at its oracle times the LTV."""
    limit = 0
    for token, ltv in _terms(state.pm_rules).collateral:
        amount = holdings(state, spot, token) + (extra[1] if extra is not None and extra[0] == token else 0)
        if amount:
            limit += _times(value(amount, price(state, token)), ltv)
    return limit


def figures(state: State, account: Account, spot: SpotAccount, extra: tuple[str, int] | None = None) -> Figures:
    """The PM figures; `extra` adds (token, amount) to the holdings (a buy being checked)."""
    return _figures(state, account, spot, spot_sums(state, spot, extra))


def _figures(state: State, account: Account, spot: SpotAccount, sums: Holdings) -> Figures:
    cross = margin.cross_figures(account, state.markets)
    usdc = cross.account_value + holdings(state, spot, USDC)
    borrowed = borrowed_value(state, spot)
    requirement = state.pm_rules.min_requirement + cross.maintenance + borrowed
    return Figures(
        usdc,
        borrowed,
        sums.borrow_limit,
        sums.collateral,
        cross.maintenance,
        requirement,
        usdc + sums.liquidation,
        usdc + sums.worth - borrowed,
    )


def at_risk(account: Account, spot: SpotAccount) -> bool:
    """Something the PM ratio can liquidate: a cross position or a borrow."""
    return bool(spot.borrowed) or any(p.szi and p.cross for p in account.positions.values())


def ratio_broken(f: Figures, rules: PmRules) -> bool:
    """`req / liqValue > liq_ratio` (a non-positive liqValue always breaks it)."""
    return f.requirement * RATE > rules.liq_ratio * f.liq_value


class Check(NamedTuple):
    """What the liquidation check and the band index both need, computed once."""

    figures: Figures
    partial: int  # the partial borrow-liquidation threshold
    at_risk: bool  # see `at_risk`


def check(state: State, account: Account, spot: SpotAccount) -> Check:
    sums = spot_sums(state, spot)
    return Check(_figures(state, account, spot, sums), sums.partial, at_risk(account, spot))


def pm_liquidatable(state: State, account: Account, spot: SpotAccount, now: Check | None = None) -> bool:
    """Above the PM ratio or the partial borrow threshold (the full one is never below it),
    with something to liquidate."""
    if now is None:
        if not at_risk(account, spot):
            return False
        now = check(state, account, spot)
    f, partial, risky = now
    if not risky:
        return False
    return ratio_broken(f, state.pm_rules) or (bool(spot.borrowed) and f.borrowed > partial)


# ---- the automatic borrow, repay and supply ----------------------------------------------------


def headroom(state: State, spot: SpotAccount, extra: tuple[str, int] | None = None) -> int:
    """USDC the account may still borrow: LTV headroom, caps and pool liquidity."""
    pool = state.pools.get(USDC)
    room = lending.borrow_room(pool, spot, state.pm_rules, USDC) if pool is not None else 0
    if not room:
        return 0
    return max(0, min(borrow_limit(state, spot, extra) - borrowed_value(state, spot), room))


class Cash(NamedTuple):
    """A PM account's USDC as a payment sees it, read once for the checks and the payment."""

    free: int  # AV_cross: the ledger (negative: a shortfall not borrowed yet)
    supply: int  # its USDC supply claim

    def take(self, amount: int) -> int:
        """What paying `amount` takes out of the supply first: what the free ledger cash does not cover."""
        return max(0, min(amount - max(0, self.free), self.supply))


def cash(state: State, account: Account, spot: SpotAccount) -> Cash:
    shares = spot.supplied.get(USDC)
    return Cash(margin.cross_value(account, state.markets), lending.claim(state.pools[USDC], shares) if shares else 0)


def spendable(
    state: State,
    account: Account,
    spot: SpotAccount,
    extra: tuple[str, int] | None = None,
    need: int = 0,
    now: Cash | None = None,
) -> int:
    """USDC a PM account can pay now: its balance (supply included) plus the borrow headroom
    (left out when the balance alone covers `need`); `now` is its `cash` if already read."""
    if now is None:
        now = cash(state, account, spot)
    free = max(0, now.free + now.supply)
    return free if free >= need > 0 else free + headroom(state, spot, extra)


def settle(state: State, account: Account, spot: SpotAccount) -> None:
    """Settles a PM account's USDC with the pool (at an hour boundary, after the hour's interest):
    a shortfall (`AV_cross` < 0) is covered from its USDC supply, then by borrowing up to the
    headroom; a surplus repays USDC borrows, and what is still idle is supplied, as far as the
    caps allow."""
    free = margin.cross_value(account, state.markets)
    pool = state.pools.get(USDC)
    if free < 0:
        if pool is None:
            return
        shares = spot.supplied.get(USDC)
        if shares:
            take = min(-free, lending.claim(pool, shares), pool.idle)
            if take > 0:
                account.raw_usd += lending.burn_supply(pool, spot, USDC, take)
                free += take
        loan = min(-free, headroom(state, spot)) if free < 0 else 0
        if loan > 0:  # within the headroom, so within the pool's room
            lending.mint_borrow(pool, spot, USDC, loan)
            account.raw_usd += loan
        return
    if not free:
        return
    if spot.borrowed.get(USDC):
        paid = lending.repay(pool, spot, USDC, free)  # type: ignore[arg-type]
        account.raw_usd -= paid
        free -= paid
        if not free or spot.borrowed.get(USDC):
            return
    rules = state.pm_rules
    if rules.caps.get(USDC):
        pool = pool_of(state, USDC)
        amount = min(free, lending.supply_room(pool, spot, rules, USDC))
        if amount * INDEX_ONE >= pool.supply_index:  # at least one share, within the room
            lending.mint_supply(pool, spot, USDC, amount)
            account.raw_usd -= amount


def withdrawable(state: State, account: Account, spot: SpotAccount) -> int:
    """USDC a PM account may take out: its own USDC net of borrows (borrowed funds never leave),
    and no more than keeps `req / liqValue <= liq_ratio`."""
    f = figures(state, account, spot)
    keep = ceil_div(f.requirement * RATE, state.pm_rules.liq_ratio) if at_risk(account, spot) else 0
    return max(0, min(f.usdc - f.borrowed, f.liq_value - keep))


def supply_take(
    state: State, account: Account, spot: SpotAccount, amount: int, taken: int = 0, now: Cash | None = None
) -> int:
    """What paying `amount` takes out of a PM account's USDC supply (as far as its free ledger
    cash falls short; `now` is its `cash` if already read), with `taken` already promised out of
    the pool; rejects when the pool cannot pay it out. Changes nothing, so handlers check before
    they mutate."""
    if now is None:
        if not spot.supplied.get(USDC):
            return 0
        now = cash(state, account, spot)
    take = now.take(amount)
    idle = state.pools[USDC].idle if take else 0
    if take > idle - taken:
        raise Reject(f"the USDC pool holds only {format_decimal(idle - taken, USD_DECIMALS)} (the rest is lent out)")
    return take


def from_supply(state: State, account: Account, spot: SpotAccount, amount: int, take: int | None = None) -> None:
    """Brings what a PM account is about to pay out of its USDC supply into the ledger (`take`,
    if the caller has worked it out with `supply_take`)."""
    if take is None:
        take = supply_take(state, account, spot, amount)
    if take:
        account.raw_usd += lending.burn_supply(state.pools[USDC], spot, USDC, take)


# ---- modes -------------------------------------------------------------------------------------


def account_value(state: State, account: Account, spot: SpotAccount | None) -> int:
    """Everything the account holds at the oracles, less its borrows (PM eligibility)."""
    total = margin.cross_figures(account, state.markets).account_value
    for coin, pos in account.positions.items():
        if pos.szi and not pos.cross:
            total += margin.iso_margin_used(pos, state.markets[coin])
    if spot is not None:
        for token in sorted(set(spot.balances) | set(spot.supplied)):
            amount = holdings(state, spot, token)
            total += amount if token == USDC else value(amount, price(state, token))
        total -= borrowed_value(state, spot)
    return total


# ---- liquidation -------------------------------------------------------------------------------


def _factor(ltv: int, num: int, den: int, quantum: int) -> int:
    """`LTV + num/den * (1 - LTV)` in 1e-12, rounded down to the quantum."""
    exact = ltv + (RATE - ltv) * num // den
    return exact // quantum * quantum


def thresholds(state: State, spot: SpotAccount) -> tuple[int, int, int]:
    """(collateral value, partial threshold, full threshold) over the collateral with LTV > 0."""
    sums = spot_sums(state, spot)
    return sums.collateral, sums.partial, sums.full


def borrow_stage(state: State, spot: SpotAccount) -> tuple[str | None, int, int, int]:
    """("full" | "partial" | None, borrowed, collateral value, threshold crossed)."""
    if not spot.borrowed:
        return None, 0, 0, 0
    borrowed = borrowed_value(state, spot)
    collateral, partial, full = thresholds(state, spot)
    if borrowed > full:
        return "full", borrowed, collateral, full
    if borrowed > partial:
        return "partial", borrowed, collateral, partial
    return None, borrowed, collateral, 0


class Takeover:
    """Moves collateral and borrows of a PM account to the backstop (`liquidator`). A partial
    step takes a share of each collateral holding as it was when the liquidation began, so five
    20% steps take it all."""

    def __init__(self, state: State, spot: SpotAccount, liquidator: SpotAccount, every: bool = False) -> None:
        self.state, self.spot, self.liquidator = state, spot, liquidator
        self.taken: dict[str, int] = {}
        ltv = state.pm_rules.ltv
        held = sorted(t for t in set(spot.balances) | set(spot.supplied) if t != USDC and (every or t in ltv))
        self.start = {t: (spot.balances.get(t, 0), spot.supplied.get(t, 0)) for t in held}

    def slice(self, share: int | None) -> int:
        """Moves `share` (1e-12, rounded up; None: all) of each collateral holding with LTV > 0
        (None: every PM-eligible one); returns its value at the oracles."""
        state, spot, liquidator = self.state, self.spot, self.liquidator
        moved = 0
        for token, (balance0, shares0) in self.start.items():
            if share is not None and not state.pm_rules.ltv[token]:
                continue
            unit = state.tokens[token].unit
            balance, shares = spot.balances.get(token, 0), spot.supplied.get(token, 0)
            amount = (
                balance if share is None else min(balance, ceil_div(ceil_div(balance0 * share, RATE), unit) * unit)
            )
            part = shares if share is None else min(shares, ceil_div(shares0 * share, RATE))
            if amount:
                add(spot, token, -amount)
                add(liquidator, token, amount)
            claimed = lending.claim(state.pools[token], part) if part else 0
            if part:
                _move(spot.supplied, liquidator.supplied, token, part)
            if amount or claimed:
                self.taken[token] = self.taken.get(token, 0) + amount + claimed
                moved += value(amount + claimed, price(state, token))
        return moved

    def debts(self, worth: int | None) -> int:
        """Moves borrow shares worth at most `worth` (None: all); returns the value moved."""
        state, spot = self.state, self.spot
        moved = 0
        for token in sorted(spot.borrowed):
            pool, held = state.pools[token], spot.borrowed[token]
            px = price(state, token)
            if worth is None:
                shares = held
            else:
                left = worth - moved
                amount = left if token == USDC else left * NTL_DIV // px if px else 0
                shares = min(held, amount * INDEX_ONE // pool.borrow_index)
            if shares:
                owed = lending.owed(pool, shares)
                moved += owed if token == USDC else ceil_div(owed * px, NTL_DIV)
                _move(spot.borrowed, self.liquidator.borrowed, token, shares)
        return moved


def _move(source: dict[str, int], target: dict[str, int], token: str, shares: int) -> None:
    left = source[token] - shares
    if left:
        source[token] = left
    else:
        del source[token]
    target[token] = target.get(token, 0) + shares


def liquidate_borrows(
    state: State,
    name: str,
    account: Account,
    spot: SpotAccount,
    backstop: SpotAccount,
    cause: int,
    emit: Callable[[object], None],
    broken: Callable[[], bool],
) -> None:
    """The borrow liquidation, by the backstop with no order book: above the full threshold a
    full takeover of the collateral and the borrows; else, while above the partial threshold
    (or above the PM ratio with no cross position left to close), 20% steps."""
    kind, borrowed, collateral, threshold = borrow_stage(state, spot)
    flat = not any(p.szi and p.cross for p in account.positions.values())
    if kind is None and not (flat and broken()):
        return
    move = Takeover(state, spot, backstop)
    if kind == "full":
        move.slice(None)
        repaid = move.debts(None)
    else:
        kind, repaid = "partial", 0
        step = state.pm_rules.partial_step
        for _ in range(ceil_div(RATE, step)):
            repaid += move.debts(move.slice(step))
            if not spot.borrowed or (borrow_stage(state, spot)[0] is None and not (flat and broken())):
                break
    emit(
        ev.BorrowLiquidation(
            account=name,
            kind=kind,
            borrowed=borrowed,
            collateral_value=collateral,
            threshold=threshold,
            taken=dict(sorted(move.taken.items())),
            usdc=0,
            repaid=repaid,
            cause=cause,
            ts=state.time,
        )
    )


def take_over(
    state: State,
    name: str,
    account: Account,
    spot: SpotAccount,
    backstop: tuple[Account, SpotAccount],
    cause: int,
    emit: Callable[[object], None],
    every: bool = False,
) -> None:
    """The last resort, with no cross position left and the book still broken: the backstop
    takes every PM-eligible holding (`every`: every token, for a model they all count in), the
    USDC ledger and supply, and every borrow."""
    borrowed = borrowed_value(state, spot)
    collateral = thresholds(state, spot)[0]
    liquidator, liquidator_spot = backstop
    move = Takeover(state, spot, liquidator_spot, every)
    move.slice(None)
    usdc_shares = spot.supplied.get(USDC, 0)
    usdc = account.raw_usd + (lending.claim(state.pools[USDC], usdc_shares) if usdc_shares else 0)
    if usdc_shares:
        _move(spot.supplied, liquidator_spot.supplied, USDC, usdc_shares)
    liquidator.raw_usd += account.raw_usd
    account.raw_usd = 0
    repaid = move.debts(None)
    emit(
        ev.BorrowLiquidation(
            account=name,
            kind="full",
            borrowed=borrowed,
            collateral_value=collateral,
            threshold=0,
            taken=dict(sorted(move.taken.items())),
            usdc=usdc,
            repaid=repaid,
            cause=cause,
            ts=state.time,
        )
    )
