"""The lending pool of one token (docs/portfolio-margin.md): shares, indices, the kinked rate
curve, hourly accrual in event time, caps.

Suppliers and borrowers hold shares; what a supplier is owed is `shares * supply_index`
(rounded down), what a borrower owes `shares * borrow_index` (rounded up), so rounding always
favours the pool. The pool's totals are the same products over the share totals; every mint or
burn books its rounding in `dust`, so `idle + lent = supplied + protocol + dust` holds exactly
(clearinghouse/invariants.py checks it, with dust and protocol never negative).

Interest accrues once per hour of event time, hour by hour (a gap of several hours compounds
each hour at the rates of that moment): borrow APY `base + slope * max(0, U - kink)` with
`U = lent / supplied` (capped at 1), rounded up to 1e-12; supply APY
`borrow_APY * U * supply_share` rounded down. An hour multiplies the borrow index by
`1 + APY / 8760` (rounded up to 1e-18) and the supply index likewise (rounded down), the supply
step capped so suppliers never earn more than borrowers paid that hour (rounding could otherwise
tip a tiny pool's hour over). The protocol keeps the rest: its 10% and the rounding. Interest
accrues on a whole hour whenever a boundary passes, so a borrow taken during an
hour pays that hour's interest in full (as an hourly index does).

Bounds (docs/wire-format.md, "Rule parameters and event time"): an index that reaches
`INDEX_REBASE_AT` (2^61, about 2.3 times its start) is halved and every share of its side doubled
(`rebase`), so indices stay in [2^60, 2^61) and shares never exceed the amounts they are worth.
An hour that would take the pool's debt or its all-time interest past `POOL_LIMIT` (2^61 units)
accrues no interest: such a pool has stopped accruing (decades of unpaid debt at the highest
rates), which keeps every stored figure within the encoding.

Every function validates before it mutates and raises `Reject` with the reason; moving the
token between the account's balance and the pool is the caller's side of the operation.
"""

from __future__ import annotations

from clearinghouse.errors import Reject
from clearinghouse.rules import PmRules
from clearinghouse.state import Pool, SpotAccount
from events.bounds import INDEX_REBASE_AT, POOL_LIMIT
from events.schema import Caps
from events.units import HOURS_PER_YEAR, INDEX_ONE, RATE, TOKEN, USD, ceil_div, format_decimal

USDC = "USDC"


def scale(token: str) -> int:
    """One whole token in its unit: 10**6 for USDC, 10**8 for every other token."""
    return USD if token == USDC else TOKEN


def show(amount: int, token: str) -> str:
    return format_decimal(amount, 6 if token == USDC else 8)


# ---- figures -----------------------------------------------------------------------------------


def lent(pool: Pool) -> int:
    """What borrowers owe in all (rounded up, as `owed`)."""
    return -(-pool.borrow_shares * pool.borrow_index // INDEX_ONE)


def supplied(pool: Pool) -> int:
    return pool.supply_shares * pool.supply_index // INDEX_ONE


def owed(pool: Pool, shares: int) -> int:
    """What a borrower with `shares` owes (rounded up; `ceil_div` written out: this is the
    automatic borrow's hot path)."""
    return -(-shares * pool.borrow_index // INDEX_ONE)


def claim(pool: Pool, shares: int) -> int:
    """What a supplier with `shares` is owed (rounded down)."""
    return shares * pool.supply_index // INDEX_ONE


def borrow_apy(rules: PmRules, lent_amount: int, supplied_amount: int) -> int:
    """`base + slope * max(0, U - kink)` in 1e-12, rounded up (against borrowers); U capped at 1."""
    if supplied_amount <= 0:
        return rules.base_apy
    excess = min(lent_amount, supplied_amount) * RATE - rules.kink * supplied_amount
    return rules.base_apy + ceil_div(rules.slope * max(0, excess), supplied_amount * RATE)


def supply_apy(rules: PmRules, borrow: int, lent_amount: int, supplied_amount: int) -> int:
    """`borrow_APY * U * supply_share` in 1e-12, rounded down."""
    if supplied_amount <= 0:
        return 0
    used = min(lent_amount, supplied_amount)
    return borrow * used * rules.supply_share // (supplied_amount * RATE)


def rates(pool: Pool, rules: PmRules) -> tuple[int, int, int]:
    """(utilisation, borrow APY, supply APY), each in 1e-12 (utilisation rounded down)."""
    lent_amount, supplied_amount = lent(pool), supplied(pool)
    borrow = borrow_apy(rules, lent_amount, supplied_amount)
    util = min(lent_amount, supplied_amount) * RATE // supplied_amount if supplied_amount else 0
    return util, borrow, supply_apy(rules, borrow, lent_amount, supplied_amount)


# ---- accrual -----------------------------------------------------------------------------------


def accrue_hour(pool: Pool, rules: PmRules) -> None:
    """One hour of interest at the pool's current rates; none if it would take the debt or the
    all-time interest past `POOL_LIMIT` (the pool stops accruing: see the module docstring)."""
    lent_before, supplied_before = lent(pool), supplied(pool)
    borrow = borrow_apy(rules, lent_before, supplied_before)
    supply = supply_apy(rules, borrow, lent_before, supplied_before)
    year = RATE * HOURS_PER_YEAR
    index = pool.borrow_index + ceil_div(pool.borrow_index * borrow, year) if pool.borrow_shares else pool.borrow_index
    paid = -(-pool.borrow_shares * index // INDEX_ONE) - lent_before
    if lent_before + paid > POOL_LIMIT or pool.interest_paid + paid > POOL_LIMIT:
        pool.hour += 1
        return
    pool.borrow_index = index
    if pool.supply_shares:
        step = pool.supply_index * supply // year
        # the highest index at which suppliers are owed at most what borrowers paid
        cap = supplied_before + paid
        highest = ((cap + 1) * INDEX_ONE - 1) // pool.supply_shares
        pool.supply_index += max(0, min(step, highest - pool.supply_index))
    earned = supplied(pool) - supplied_before
    pool.interest_paid += paid
    pool.interest_earned += earned
    pool.protocol += paid - earned
    pool.hour += 1


def rebase(pool: Pool, spots: dict[str, SpotAccount], token: str) -> bool:
    """Halves an index that reached `INDEX_REBASE_AT` and doubles every share of its side (the
    pool's total and each account's), so indices stay below the stored bound while what each
    share is worth stays the same: the borrow index rounds up and the supply index down (a debt
    may grow and a claim shrink by one unit, never the other way), the difference going to
    `dust`. Returns whether anything was rebased."""
    borrow, supply = pool.borrow_index >= INDEX_REBASE_AT, pool.supply_index >= INDEX_REBASE_AT
    if not (borrow or supply):
        return False
    lent_before, supplied_before = lent(pool), supplied(pool)
    if borrow:
        pool.borrow_index = ceil_div(pool.borrow_index, 2)
        pool.borrow_shares *= 2
    if supply:
        pool.supply_index //= 2
        pool.supply_shares *= 2
    for spot in spots.values():
        if borrow and token in spot.borrowed:
            spot.borrowed[token] *= 2
        if supply and token in spot.supplied:
            spot.supplied[token] *= 2
    pool.dust += (lent(pool) - lent_before) + (supplied_before - supplied(pool))
    return True


def accrue(pools: dict[str, Pool], rules: PmRules, hour: int, spots: dict[str, SpotAccount]) -> list[str]:
    """Brings every pool up to `hour` (pools in token order, each hour by hour); returns the
    tokens whose pool was rebased on the way (their holders' shares changed)."""
    rebased = []
    for token in sorted(pools):
        pool = pools[token]
        while pool.hour < hour:
            accrue_hour(pool, rules)
            if rebase(pool, spots, token) and token not in rebased:
                rebased.append(token)
    return rebased


# ---- operations --------------------------------------------------------------------------------


NO_CAPS = Caps()  # a token without caps may not be supplied or borrowed at all


def _caps(rules: PmRules, token: str) -> Caps:
    return rules.caps.get(token, NO_CAPS)


def supply_room(pool: Pool, spot: SpotAccount, rules: PmRules, token: str) -> int:
    """How much more the account may supply under the global and per-account caps."""
    caps, unit = _caps(rules, token), scale(token)
    mine = claim(pool, spot.supplied.get(token, 0))
    return max(0, min(caps.supply * unit - supplied(pool), caps.user_supply * unit - mine))


def borrow_room(pool: Pool, spot: SpotAccount, rules: PmRules, token: str) -> int:
    """How much more the account may borrow: caps, and what suppliers have not lent out."""
    caps, unit = _caps(rules, token), scale(token)
    mine = owed(pool, spot.borrowed.get(token, 0))
    lent_amount, supplied_amount = lent(pool), supplied(pool)
    return max(0, min(caps.borrow * unit - lent_amount, caps.user_borrow * unit - mine, supplied_amount - lent_amount))


def supply(pool: Pool, spot: SpotAccount, rules: PmRules, token: str, amount: int) -> None:
    """Mints shares for `amount` (rounded down) and takes the token into the pool."""
    room = supply_room(pool, spot, rules, token)
    if amount > room:
        raise Reject(f"supply of {show(amount, token)} {token} is above the cap room {show(room, token)}")
    if amount * INDEX_ONE < pool.supply_index:
        raise Reject(f"supply of {show(amount, token)} {token} is below one share")
    mint_supply(pool, spot, token, amount)


def mint_supply(pool: Pool, spot: SpotAccount, token: str, amount: int) -> None:
    """`supply` once checked (at least one share, within the room): for a caller that has just
    computed the room itself."""
    shares = amount * INDEX_ONE // pool.supply_index
    before = supplied(pool)
    pool.supply_shares += shares
    spot.supplied[token] = spot.supplied.get(token, 0) + shares
    pool.idle += amount
    pool.dust += amount - (supplied(pool) - before)


def withdraw_supply(pool: Pool, spot: SpotAccount, token: str, amount: int) -> int:
    """Burns the shares worth `amount` (rounded up; all of them for at least the whole claim);
    returns what leaves the pool."""
    mine = claim(pool, spot.supplied.get(token, 0))
    if amount > mine:
        raise Reject(f"withdrawal of {show(amount, token)} {token} is above the supplied {show(mine, token)}")
    if amount > pool.idle:
        raise Reject(f"the {token} pool holds only {show(pool.idle, token)} (the rest is lent out)")
    return burn_supply(pool, spot, token, amount)


def burn_supply(pool: Pool, spot: SpotAccount, token: str, amount: int) -> int:
    """`withdraw_supply` once checked (at most the claim and the idle balance)."""
    held = spot.supplied[token]
    shares = held if amount == claim(pool, held) else min(held, ceil_div(amount * INDEX_ONE, pool.supply_index))
    before = supplied(pool)
    pool.supply_shares -= shares
    if shares == held:
        del spot.supplied[token]
    else:
        spot.supplied[token] = held - shares
    pool.idle -= amount
    pool.dust += (before - supplied(pool)) - amount
    return amount


def borrow(pool: Pool, spot: SpotAccount, rules: PmRules, token: str, amount: int) -> None:
    """Mints borrow shares for `amount` (rounded up) and pays the token out of the pool."""
    room = borrow_room(pool, spot, rules, token)
    if amount > room:
        raise Reject(f"borrow of {show(amount, token)} {token} is above what may be borrowed ({show(room, token)})")
    mint_borrow(pool, spot, token, amount)


def mint_borrow(pool: Pool, spot: SpotAccount, token: str, amount: int) -> None:
    """`borrow` once checked (within the room): for a caller that has just computed it."""
    shares = ceil_div(amount * INDEX_ONE, pool.borrow_index)
    before = lent(pool)
    pool.borrow_shares += shares
    spot.borrowed[token] = spot.borrowed.get(token, 0) + shares
    pool.idle -= amount
    pool.dust += (lent(pool) - before) - amount


def repay(pool: Pool, spot: SpotAccount, token: str, amount: int) -> int:
    """Burns the shares `amount` repays (rounded down; all of them for at least the debt);
    returns what is taken from the account (at most the debt)."""
    held = spot.borrowed.get(token, 0)
    debt = owed(pool, held)
    if not debt:
        raise Reject(f"no {token} borrowed")
    amount = min(amount, debt)
    shares = held if amount == debt else amount * INDEX_ONE // pool.borrow_index
    before = lent(pool)
    pool.borrow_shares -= shares
    if shares == held:
        del spot.borrowed[token]
    else:
        spot.borrowed[token] = held - shares
    pool.idle += amount
    pool.dust += amount - (before - lent(pool))
    return amount
