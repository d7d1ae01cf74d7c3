"""How far each price a risk-model account is exposed to may move before its equity could reach
maintenance (docs/risk-margin.md, "Trigger bands"): the shares of its buffer `equity - MM` the
trigger bands (`pm_triggers.PmBands`) give each coin, with the bound `K` on how fast the buffer
falls per unit of the coin's price.

Within one underlying `u`, every term of the buffer is, in each price, either linear with a
bounded slope or (concentration) convex with a slope bounded on a bounded range, so the fall
per unit of price is at most `A_u * F_u + C_u`, `A_u` being the sum over the unit's cross
positions and tokens of their absolute sizes (held, supplied and owed):

- equity: slope 1 (each position at its mark, each token at its oracle);
- the scan: `mm_loss_factor * max(max_k w_k * |move_k| * max(1, credit rate), min_charge)`
  (a group's aligned loss is a sum of members' weighted losses less the credit times their
  gains: per member at most `w_k |move_k| max(1, rate)` per unit of its value);
- the perp contingency, basis and loan charges at their MM rates (each linear in an oracle);
- concentration `conc * net^2 / depth`: its slope is `2 conc |net| / depth`, and `|net|` stays
  below `N_u`, the unit's gross value with every price doubled, while each price stays below
  twice its reference: a coin's share is capped so its band cannot reach that far.

Shares are in proportion to value at risk (`K` times the price), after `ROUND` micro-USDC per
coin kept back for the rounding of the terms (each rounded once, up or down, at most a micro-USDC
each; a coin moves at most its unit's terms). Funding moves equity alone; the bands take 1/8 of
each share for it with `|szi|` per unit of the index.

The buffer is also a sum: the terms no price moves (`cash_of`) plus one buffer per part of the
book (`part_figures`: a credit group, or an underlying outside any), each reading only its own
underlyings' prices, positions and tokens. So a fill, which moves the cash and one part, can
re-reference that part's bands alone (`Sizing.filled`, as `pm_triggers` does coin by coin for
portfolio margin) instead of an exact check of the whole book.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from clearinghouse import margin, portfolio
from clearinghouse.risk import charges
from clearinghouse.risk.exposure import LOAN_TOKENS, Book, Exposure, with_fill
from clearinghouse.risk.params import RiskRules, resolved
from clearinghouse.risk.requirement import part_of, part_requirement
from clearinghouse.spot import USDC, price, value
from clearinghouse.state import Account, Position, SpotAccount, State
from events.units import FUNDING_DIV, NTL_DIV, RATE

ROUND = 16  # micro-USDC of the buffer kept back per coin for rounding (beyond the bands' own)
SCALE = RATE**4  # the denominator of `slope`
# the slopes worked out for one parameter object (held, so that no other object takes its id)
_slopes: tuple[RiskRules | None, dict[tuple[str, int], int]] = (None, {})


def slope(rules: RiskRules, underlying: str, side: int = 0) -> int:
    """`F_u` over `SCALE`: the buffer's fall per unit of the unit's value, concentration aside
    (`side` 1: of `equity - IM`, with the IM factor and rates)."""
    global _slopes
    if _slopes[0] is not rules:
        _slopes = (rules, {})
    known = _slopes[1].get((underlying, side))
    if known is None:
        known = _slopes[1][underlying, side] = _slope(rules, underlying, side)
    return known


def _slope(rules: RiskRules, underlying: str, side: int) -> int:
    unit = rules.unit(underlying)
    group = rules.group_of.get(underlying)
    credit = max(RATE, rules.groups[group].rate) if group is not None else RATE
    scan = max(unit.swing * credit, unit.min_charge * RATE**2)  # over RATE^3
    charges = unit.perp_rate[side] + unit.basis_rate[side] + rules.loan_rate[side]
    return SCALE + rules.loss_factor[side] * scan + charges * RATE**3


class PartFigures(NamedTuple):
    """One part of an account's book (`requirement.part_of`: a credit group or an underlying
    outside any): `worth`, what its positions, unsettled funding, tokens and debts add to
    equity; its `mm` and `im` (scans and charges); per perp coin it uses (`coins`) its `K`,
    cross `szi` and `K` of `equity - IM`; and its units' exposures as the book holds them."""

    worth: int
    mm: int
    im: int
    coins: dict[str, tuple[int, int, int]]
    units: dict[str, Exposure]

    @property
    def buffer(self) -> int:
        """Its terms of `equity - MM`."""
        return self.worth - self.mm


def cash_of(state: State, account: Account, spot: SpotAccount, rules: RiskRules) -> tuple[int, int] | None:
    """The terms of `equity - MM` and of `equity - IM` no price moves: the ledger, USDC held and
    supplied less USDC owed, less the loan charge at MM (at IM). None when a debt's loan charge
    moves with a price (a USDT borrow), a token has no perp market of its name (its price is
    not banded) or a token other than USDC is supplied (its claim grows with the pool's interest,
    which moves no band, and may raise a scan faster than equity): such an account is checked
    exactly on each of its fills."""
    markets = state.markets
    if any(token != USDC for token in spot.supplied):
        return None
    for token in (*spot.balances, *spot.borrowed):
        if token != USDC and (token not in markets or token in LOAN_TOKENS):
            return None
    owed = portfolio.debt(state, spot, USDC)
    loan_mm, loan_im = charges.loan(owed, rules.loan_rate)
    cash = account.raw_usd + portfolio.holdings(state, spot, USDC) - owed
    return cash - loan_mm, cash - loan_im


def part_figures(
    state: State, account: Account, spot: SpotAccount, rules: RiskRules, only: str | int | None = None
) -> dict[str | int, PartFigures]:
    """Each part's figures (`only`: that part's alone), read as `exposure.book_of` reads the
    book and rounded term by term as it and `requirement.totals` round them, so that
    `cash_of + the sum of the buffers` is exactly `equity - MM` (tests hold it)."""
    markets = state.markets
    rows: dict[str, list[int]] = {}  # underlying -> exposure (as `Exposure`), worth, A_u, N_u, in the book
    coins: dict[str, list[str]] = {}
    aliases = rules.aliases
    if only is None:
        positions: Iterable[tuple[str, Position]] = account.positions.items()
        tokens = sorted(set(spot.balances) | set(spot.supplied) | set(spot.borrowed))
    else:  # the part's names alone: its underlyings and their aliases
        names = _names(rules, only)
        open_ = account.positions
        positions = [(n, open_[n]) for n in names if n in open_]
        tokens = [n for n in names if n in spot.balances or n in spot.supplied or n in spot.borrowed]
    for coin, pos in positions:
        szi = pos.szi
        if not szi or not pos.cross:
            continue
        u = aliases.get(coin, coin)
        market = markets[coin]
        mark, oracle = market.mark, market.oracle
        r = rows.get(u)
        if r is None:
            r = rows[u] = [0, 0, 0, 0, 0, price(state, u), 0, 0, 0, 0]
        size = szi if szi > 0 else -szi
        r[2] += szi
        r[3] += szi * mark
        r[4] += szi * oracle
        r[6] += margin.value(szi, mark) + margin.pending_funding(pos, market)
        r[7] += size
        r[8] += 2 * size * max(mark, oracle)
        r[9] = 1
        coins.setdefault(u, []).append(coin)
    for token in tokens:
        if token == USDC:
            continue
        u = aliases.get(token, token)
        held, owed = portfolio.holdings(state, spot, token), portfolio.debt(state, spot, token)
        px = price(state, token)
        r = rows.get(u)
        if r is None:
            r = rows[u] = [0, 0, 0, 0, 0, price(state, u), 0, 0, 0, 0]
        r[6] += value(held, px) - portfolio.owed_value(state, token, owed)
        r[7] += held + owed
        r[8] += 2 * (held + owed) * px
        if held != owed:
            r[0] += held - owed
            r[1] += (held - owed) * px
            r[9] = 1
        if held + owed and token in markets and token not in coins.get(u, ()):
            coins.setdefault(u, []).append(token)
    out: dict[str | int, PartFigures] = {}
    for u in sorted(rows):
        r = rows[u]
        part = part_of(rules, u)
        f = out.get(part)
        if f is None:
            f = out[part] = PartFigures(0, 0, 0, {}, {})
        if r[9]:  # a unit `book_of` holds (a position, or tokens that do not cancel their debt)
            f.units[u] = Exposure(*r[:6])
        held_coins = coins.get(u)
        if held_coins:
            unit, size = rules.unit(u), r[7]
            conc = -(-2 * unit.conc * r[8] * size // (RATE * NTL_DIV * unit.depth))
            k = -(-size * slope(rules, u) // SCALE) + conc
            k_im = -(-size * slope(rules, u, 1) // SCALE) + conc
            for coin in held_coins:
                pos = account.positions.get(coin)
                f.coins[coin] = (k, pos.szi if pos is not None and pos.cross else 0, k_im)
        out[part] = f._replace(worth=f.worth + r[6])
    for part, f in out.items():
        if f.units:
            mm, im = part_requirement(part, {u: (e, rules.unit(u)) for u, e in f.units.items()}, rules)
            out[part] = f._replace(mm=mm, im=im)
    return out


def _names(rules: RiskRules, part: str | int) -> list[str]:
    """The coins and tokens whose terms fall in `part`: its underlyings and their aliases,
    sorted (worked out once per parameter object)."""
    global _parts
    if _parts[0] is not rules:
        _parts = (rules, {})
    known = _parts[1].get(part)
    if known is None:
        members = rules.groups[part].units if type(part) is int else (part,)  # type: ignore[index]
        known = _parts[1][part] = sorted({*members, *(a for a, u in rules.aliases.items() if u in members)})
    return known


_parts: tuple[RiskRules | None, dict[str | int, list[str]]] = (None, {})


Shares = dict[str, tuple[int, int, int]]  # coin -> its share, K and cross szi
Coins = dict[str, tuple[int, int, int]]  # coin -> K, cross szi, K of `equity - IM`
# a part's buffer at its reference, booked shares, weight, coins, and its terms of `equity - IM`
Booked = tuple[int, int, int, tuple[str, ...], int]
Reference = tuple[int, int, int, int, int]  # a coin's mark, oracle and funding index, `K` of `equity - IM`, |szi|


def _split(state: State, coins: Coins, free: int) -> Shares:
    """`free` split among `coins` in proportion to value at risk (`K` times the price), each
    share capped so that its band stays below twice the price (the concentration slope's
    range); all 0 when nothing is free or nothing is at risk."""
    markets = state.markets
    weights = {coin: k * max(markets[coin].mark, markets[coin].oracle) for coin, (k, _, _) in coins.items()}
    total = sum(weights.values())
    if free <= 0 or not total:
        return {coin: (0, k, szi) for coin, (k, szi, _) in coins.items()}
    out: Shares = {}
    for coin, (k, szi, _) in coins.items():
        market = markets[coin]
        cap = k * min(market.mark, market.oracle) // NTL_DIV
        out[coin] = (min(free * weights[coin] // total, cap), k, szi)
    return out


class Sizing:
    """What a risk account's book bands were sized from, so that a fill re-references only its
    own part (as `pm_triggers` does for portfolio margin, one coin at a time): `cash` at the
    reference, `slack` (the buffer outside every booked share), per part its buffer at the
    reference, what its coins' bands booked (their shares and `ROUND` each), its weight, its
    coins and its terms of `equity - IM` (`im` sums those), and per coin its prices at the
    reference (`refs`).

    While every price stays inside its band, each part's buffer is at least its reference less
    what it booked, so `equity - MM >= cash + sum of (reference - booked) = slack`; a fill of
    one part moves that part's buffer and the cash, both worked out again exactly, and leaves
    the others' bounds as they were. A fill's IM check works out its own part alone when the
    others' terms of `equity - IM`, at most `K_im` per unit of the prices' moves since their
    reference lower, cover it (`covers_im`)."""

    __slots__ = ("cash", "slack", "parts", "booked", "weights", "im", "refs")

    def __init__(self, cash: int, slack: int, parts: dict[str | int, Booked], refs: dict[str, Reference]) -> None:
        self.cash, self.slack, self.parts, self.refs = cash, slack, parts, refs
        self.booked = sum(p[1] for p in parts.values())
        self.weights = sum(p[2] for p in parts.values())
        self.im = sum(p[4] for p in parts.values())

    @staticmethod
    def make(state: State, account: Account, spot: SpotAccount, buffer: int) -> tuple[Sizing | None, Shares]:
        """After an exact check (`buffer`: its `equity - MM`): the whole buffer, less `ROUND`
        per coin, split among the coins the cross book and spot side use, and the sizing that
        lets a fill re-reference its part (None: an account `cash_of` refuses, or no share)."""
        rules = resolved(state.risk or None)
        figures = part_figures(state, account, spot, rules)
        coins = {coin: kz for f in figures.values() for coin, kz in f.coins.items()}
        out = _split(state, coins, buffer - ROUND * len(coins))
        cashes = cash_of(state, account, spot, rules)
        if cashes is None or not any(share for share, _, _ in out.values()):
            return None, out
        parts: dict[str | int, Booked] = {}
        for part, f in figures.items():
            parts[part] = (f.buffer, _booked(f, out), _weight(state, f.coins), tuple(f.coins), f.worth - f.im)
        # the buffer as the parts sum it, which `filled` moves part by part (the same as `buffer`)
        slack = cashes[0] + sum(p[0] - p[1] for p in parts.values())
        if slack < 0:
            return None, out
        return Sizing(cashes[0], slack, parts, _references(state, coins)), out

    def filled(
        self, state: State, account: Account, spot: SpotAccount, coin: str
    ) -> tuple[Shares, tuple[str, ...]] | None:
        """After a fill of `coin` (its cross perp, or the token): the shares of its part's coins
        re-referenced at the current prices. What the part's buffer and the cash moved since the
        reference comes out of the part's booked shares and the slack; of what is then free,
        the part gets its weight's part of half, as `pm_triggers` re-references a coin, and the
        rest stays slack for the next fill. None (the sizing is then void) when a price left
        outside the bands moved (`cash_of` refuses) or too little is left: the caller checks the
        account exactly and re-bands it. With the shares, the part's coins banded before that it
        no longer uses."""
        rules = resolved(state.risk or None)
        cashes = cash_of(state, account, spot, rules)
        if cashes is None:
            return None
        cash = cashes[0]
        part = part_of(rules, rules.underlying(coin))
        now = part_figures(state, account, spot, rules, part).get(part, NO_PART)
        buffer, booked, weight, was, im = self.parts.pop(part, NO_BOOKING)
        self.booked -= booked
        self.weights -= weight
        self.im -= im
        available = self.slack + booked + cash - self.cash + now.buffer - buffer
        self.cash = cash
        weight = _weight(state, now.coins)
        free = self.booked + available  # what the other bands hold plus what is left
        given = (free - free // 2) * weight // (self.weights + weight or 1)
        least = available - ROUND * len(now.coins)
        if least < 4 * ROUND:
            return None
        out = _split(state, now.coins, min(least, given))
        booked = _booked(now, out)
        self.parts[part] = (now.buffer, booked, weight, tuple(now.coins), now.worth - now.im)
        self.booked += booked
        self.weights += weight
        self.im += now.worth - now.im
        self.slack = available - booked
        refs = self.refs
        for gone in was:
            refs.pop(gone, None)
        refs.update(_references(state, now.coins))
        return out, tuple(c for c in was if c not in now.coins)

    def covers_im(self, state: State, account: Account, spot: SpotAccount, coin: str, szi: int, cash: int) -> bool:
        """Whether `equity - IM` after a cross fill of `szi` of `coin` (`cash`: what it moves
        equity by, as the model's IM check counts it) is surely not negative: the fill's part
        worked out exactly with the fill; every other part's terms at their reference, less
        `K_im` times the largest move of the coin's mark or oracle since and `|szi|` times its
        funding index's, less `ROUND` per coin (its bands hold, so each price is within twice
        its reference, the range `K` holds on); and the terms no price moves. False says
        nothing: the check works the whole book out, as it does for a borrower of a token
        other than USDC (the hour's interest may have raised its debt since the reference, and
        the trade is checked before the hour's checks re-band it)."""
        if any(token != USDC for token in spot.borrowed):
            return False
        rules = resolved(state.risk or None)
        cashes = cash_of(state, account, spot, rules)
        if cashes is None:
            return False
        part = part_of(rules, rules.underlying(coin))
        booked = self.parts.get(part, NO_BOOKING)
        others = self.im - booked[4]
        markets, own = state.markets, booked[3]
        for c, (mark, oracle, index, k_im, size) in self.refs.items():
            if c not in own:
                m = markets[c]
                move = max(abs(m.mark - mark), abs(m.oracle - oracle))
                others -= -(-k_im * move // NTL_DIV) + -(-size * abs(m.funding_index - index) // FUNDING_DIV) + ROUND
        now = part_figures(state, account, spot, rules, part).get(part, NO_PART)
        market = markets[coin]
        after = with_fill(Book(0, now.units, 0), rules, coin, szi, market.mark, market.oracle, 0)
        im = part_requirement(part, {u: (e, rules.unit(u)) for u, e in after.units.items()}, rules)[1]
        return cashes[1] + cash + now.worth - im + others >= 0


def _references(state: State, coins: Coins) -> dict[str, Reference]:
    """Each coin's prices and funding index now, with its `K` of `equity - IM` and `|szi|`."""
    markets = state.markets
    out: dict[str, Reference] = {}
    for coin, (_, szi, k_im) in coins.items():
        m = markets[coin]
        out[coin] = (m.mark, m.oracle, m.funding_index, k_im, abs(szi))
    return out


def _booked(f: PartFigures, shares: Shares) -> int:
    """What a part's coins book of the buffer: their shares and `ROUND` each."""
    return sum(shares[coin][0] + ROUND for coin in f.coins)


NO_PART = PartFigures(0, 0, 0, {}, {})
NO_BOOKING: Booked = (0, 0, 0, (), 0)


def _weight(state: State, coins: Coins) -> int:
    """Value at risk: `K` times the price, over `coins`."""
    markets = state.markets
    return sum(k * max(markets[coin].mark, markets[coin].oracle) for coin, (k, _, _) in coins.items())
