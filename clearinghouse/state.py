"""The clearinghouse state: plain msgspec Structs, so one encoder gives snapshots and digests.

The per-account and per-market Structs encode as arrays (field order is part of the snapshot
format, `replay.snapshot.VERSION`), which keeps snapshots about a third of the size. They are
`gc=False`: no state object refers back up to its holder, so there is no cycle to collect, and
the cyclic collector (whose pauses are a live service's latency) never walks the accounts.

Units: cash in micro-USDC, sizes and prices in the 1e-8 scales of `units`, funding indices in
1e-12 USDC per coin (`units.FUNDING_DECIMALS`). Dicts are insertion-ordered and only ever encoded with
sorted keys, so iteration order never reaches a digest.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from clearinghouse.rules import DEFAULT_RULES, PmRules
from clearinghouse.tiers import TierTable
from events.bounds import MAX_MARKET_DEPTHS, MAX_USD
from events.schema import Name, RiskParams
from events.units import INDEX_ONE


class MarketState(msgspec.Struct, gc=False, array_like=True):
    """A listed perp market as the state keeps it (the `market` event is `events.schema.Market`)."""

    coin: str
    sz_decimals: int
    lot: int  # the smallest size step, in the 1e-8 size scale
    tick: int  # the smallest price step: 6 - sz_decimals decimals, in the 1e-8 price scale
    table: TierTable
    only_isolated: bool
    mark: int = 0  # 0 until the first price tick
    prev_mark: int = 0  # the mark before the latest tick: auto-deleveraging closes at it
    oracle: int = 0
    funding_index: int = 0  # cumulative funding per coin: sum of oracle * hourly rate
    long_size: int = 0  # open interest, kept to check that longs and shorts net to zero
    short_size: int = 0


class Position(msgspec.Struct, gc=False, array_like=True):
    """An account's state in one market; it outlives a closed position to keep the leverage
    setting and all-time funding."""

    leverage: int
    cross: bool
    szi: int = 0
    entry_px: int = 0
    iso_raw: int = 0  # the isolated ledger (cash convention, docs/rules.md 2)
    max_leverage: int = 0  # the position's own cap; 0 = the market's tiers
    funding_index: int = 0  # the market index at the last settlement
    funding_all: int = 0  # funding paid (positive = paid), all time
    funding_open: int = 0  # since the position opened
    funding_change: int = 0  # since its size last changed


class Account(msgspec.Struct, gc=False, array_like=True):
    raw_usd: int = 0  # the cross USDC ledger
    positions: dict[str, Position] = {}
    cooldown_until: int = 0  # ms: after a partial liquidation, orders are for whole positions until then
    volume: int = 0  # weighted volume in micro-USDC (perp fills + 2 x spot trades), for PM eligibility


class TokenState(msgspec.Struct, gc=False, array_like=True):
    """A spot token (USDC is built in and never listed). Balances are in 1e-8 token whatever
    the token's own decimals; `unit` is its smallest step in that scale."""

    decimals: int
    unit: int
    oracle: int = 0  # its own price from `prices` events (1e-8 USDC per token); 0 = none yet
    last_px: int = 0  # the last spot trade's price against USDC


class SpotAccount(msgspec.Struct, gc=False, array_like=True):
    """The spot side of an account, created by its first spot event. USDC of a standard account
    sits in `balances["USDC"]` (separate from the perp ledger); a unified or portfolio account
    keeps all its USDC in the perp ledger `Account.raw_usd` (one balance per asset)."""

    mode: str = "standard"  # "standard" | "unified" | "portfolio" | "risk"
    balances: dict[str, int] = {}  # token -> amount (USDC in micro-USDC, others in 1e-8)
    supplied: dict[str, int] = {}  # token -> supply shares in its pool
    borrowed: dict[str, int] = {}  # token -> borrow shares in its pool


class Pool(msgspec.Struct, gc=False, array_like=True):
    """A token's lending pool (clearinghouse/lending.py). What suppliers are owed and borrowers
    owe are the share totals times the indices; `idle` is the token the pool holds.
    Ledger: idle + lent = supplied + protocol + dust; interest_paid = interest_earned + protocol."""

    hour: int  # the last hour (event time // 1h) whose interest has accrued
    supply_shares: int = 0
    borrow_shares: int = 0
    supply_index: int = INDEX_ONE
    borrow_index: int = INDEX_ONE
    idle: int = 0
    protocol: int = 0  # the protocol's share of the interest (10%) and the hourly rounding
    dust: int = 0  # rounding of share mints and burns, always in the pool's favour
    interest_paid: int = 0  # by borrowers, all time
    interest_earned: int = 0  # by suppliers, all time


DEFAULT_ADL = "hl-queue"  # the auto-deleveraging policy of a state that names none

# Per-market book depth: coin -> micro-USDC, each within the range of `depth`; the bounds hold
# when a state or a settings file is decoded (`settings_error` checks a config built in code).
MarketDepths = Annotated[
    dict[Name, Annotated[int, msgspec.Meta(ge=1, le=MAX_USD)]], msgspec.Meta(max_length=MAX_MARKET_DEPTHS)
]


class LiquidationConfig(msgspec.Struct, frozen=True):
    """How liquidations execute in this run (docs/rules.md 5); fixed when the state is
    created, so a replay decides exactly as the original run did."""

    mode: str = "mark"  # "external" | "mark" | "impact" | "off" (margin figures only)
    slippage_ppm: int = 0  # mark mode: fills at mark -/+ this share
    impact_ppm: int = 10_000  # impact mode: price moves this share per `depth` of notional filled
    depth: int = 1_000_000_000_000  # micro-USDC of notional that moves a price by `impact_ppm`
    fee_ppm: int = 450  # liquidation fills pay the taker fee (0.045%)
    partial_above: int = 100_000_000_000  # micro-USDC: positions above are liquidated in slices
    partial_ppm: int = 200_000  # the slice (20%)
    cooldown_ms: int = 30_000
    loss_limit: int | None = None  # the most the liquidator absorbs in one takeover (None: any)
    # the auto-deleveraging policy (clearinghouse/adl_policies.py); UNSET is the default `hl-queue`
    # and is left out of the encoding, so states and settings files of the default keep their bytes
    adl: str | msgspec.UnsetType = msgspec.UNSET
    # impact mode: the depth of the markets named, in place of `depth` (docs/rules.md 5); UNSET
    # (no market named) is left out of the encoding, as `adl` is
    market_depth: MarketDepths | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        """The default named is the default, and a depth map is kept in coin order (a copy, so
        the caller's dict cannot change it): one config, one encoding."""
        if self.adl == DEFAULT_ADL:
            msgspec.structs.force_setattr(self, "adl", msgspec.UNSET)
        if self.market_depth is not msgspec.UNSET:
            depths = dict(sorted(self.market_depth.items())) if self.market_depth else msgspec.UNSET
            msgspec.structs.force_setattr(self, "market_depth", depths)

    @property
    def adl_policy(self) -> str:
        return DEFAULT_ADL if self.adl is msgspec.UNSET else self.adl

    def depth_of(self, coin: str) -> int:
        """The depth an impact fill in `coin` moves its price against: its own, else `depth`."""
        depths = self.market_depth
        return self.depth if depths is msgspec.UNSET else depths.get(coin, self.depth)


class State(msgspec.Struct):
    rules: str = DEFAULT_RULES
    next_seq: int = 0  # the sequence number the next input event gets
    time: int = 0  # ms, the latest event time seen
    markets: dict[str, MarketState] = {}
    accounts: dict[str, Account] = {}
    fees: int = 0  # the fee account
    funding_pool: int = 0  # funding paid in minus paid out (rounding dust stays here)
    deposited: int = 0  # net of deposits and imports
    withdrawn: int = 0
    recent_ids: dict[str, int] = {}  # source id -> seq, a bounded window for de-duplication
    liquidation: LiquidationConfig = LiquidationConfig()
    bad_debt: int = 0  # losses no one absorbed: counted in conservation, never dropped
    watch: dict[str, int] = {}  # accounts still below maintenance after a liquidation step -> seq found
    liq_orders: dict[str, dict[str, int]] = {}  # external mode: account -> coin -> size still to fill
    tokens: dict[str, TokenState] = {}  # listed spot tokens (USDC is built in)
    spot: dict[str, SpotAccount] = {}  # accounts with a spot side or a mode other than standard
    pools: dict[str, Pool] = {}  # lending pools by token
    pm_rules: PmRules = PmRules()
    token_net: dict[str, int] = {}  # per token (not USDC): deposited less withdrawn
    unswept: dict[str, int] = {}  # PM accounts whose idle USDC is supplied at the next hour boundary (-> 0)
    # The risk model's parameters as a `rules` event set them; unset (and then not encoded, so a
    # state that never set them digests as before) the shipped defaults apply.
    risk: RiskParams | msgspec.UnsetType = msgspec.UNSET
