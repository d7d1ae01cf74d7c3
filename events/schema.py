"""The events: a tagged union of msgspec Structs, the language of the whole system.

Amount fields are ints in the fixed-point scales of `clearinghouse.units`; the scale of each
field is declared once here (the `Usd`, `Size`, `Price`, `Rate` aliases) and read by the codec,
which turns JSON decimal strings into these ints once, at the edge. msgpack storage holds the
ints directly. `SCHEMA_VERSION` is stamped on every stored block; a reader refuses newer blocks.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

from clearinghouse.rules import Caps
from clearinghouse.units import (
    PX_DECIMALS,
    RATE_DECIMALS,
    SZ_DECIMALS,
    TOKEN_DECIMALS,
    USD_DECIMALS,
)

SCHEMA_VERSION = 1

Usd = Annotated[int, msgspec.Meta(extra={"scale": USD_DECIMALS})]
Size = Annotated[int, msgspec.Meta(extra={"scale": SZ_DECIMALS})]
Price = Annotated[int, msgspec.Meta(extra={"scale": PX_DECIMALS})]
Rate = Annotated[int, msgspec.Meta(extra={"scale": RATE_DECIMALS})]
# An amount of the event's `token`: micro-USDC for USDC (the default), 1e-8 for any other token.
TokenAmount = Annotated[int, msgspec.Meta(extra={"scale": USD_DECIMALS, "token_scale": TOKEN_DECIMALS})]
Tokens = Annotated[int, msgspec.Meta(extra={"scale": TOKEN_DECIMALS})]


class _Base(msgspec.Struct, kw_only=True, tag_field="type", omit_defaults=True, frozen=True):
    """Fields every event may carry: event time in ms, and a source key for de-duplication."""

    ts: int | None = None
    id: str | None = None


# ---- input events (facts) -------------------------------------------------------------------


class MarginTier(msgspec.Struct, frozen=True):
    lower_bound: Usd
    max_leverage: int


class Market(_Base, tag="market"):
    """Lists a perp market, or replaces its parameters (tiers, isolated-only)."""

    coin: str
    sz_decimals: int
    margin_tiers: list[MarginTier]
    only_isolated: bool = False


class _TokenMove(_Base):
    """An account moving an amount of one token (USDC unless named): deposits, withdrawals and
    the lending actions share this shape."""

    account: str
    amount: TokenAmount
    token: str = "USDC"


class Deposit(_TokenMove, tag="deposit"):
    """USDC into the perp ledger (a unified or portfolio account's one balance), or any other
    listed token into the spot balance."""


class Withdraw(_TokenMove, tag="withdraw"):
    pass


class Transfer(_Base, tag="transfer"):
    from_: str = msgspec.field(name="from")
    to: str
    amount: Usd


class SetLeverage(_Base, tag="set_leverage"):
    account: str
    coin: str
    leverage: int
    cross: bool = True


class IsolatedMargin(_Base, tag="isolated_margin"):
    account: str
    coin: str
    delta: Usd


class PricePoint(msgspec.Struct, frozen=True, omit_defaults=True):
    mark: Price
    oracle: Price | None = None  # absent: the oracle follows the mark


class Prices(_Base, tag="prices"):
    prices: dict[str, PricePoint]


class LiquidationMark(msgspec.Struct, frozen=True, omit_defaults=True):
    """On a trade: this fill executes a liquidation order of `account` (external mode)."""

    account: str
    method: str = "market"


class Trade(_Base, tag="trade"):
    coin: str
    px: Price
    sz: Size
    buyer: str
    seller: str
    buyer_fee: Usd = 0
    seller_fee: Usd = 0
    tid: int | None = None
    liquidation: LiquidationMark | None = None


class Funding(_Base, tag="funding"):
    """One hour of funding: either the hourly `rate`, or the hour's mean `premium` from which the
    era's formula (rule set) derives the rate."""

    coin: str
    rate: Rate | None = None
    premium: Rate | None = None


class PmParams(msgspec.Struct, frozen=True, omit_defaults=True):
    """Scalar portfolio-margin and lending parameters a `rules` event sets (clearinghouse.rules.PmRules)."""

    base_apy: Rate | None = None
    kink: Rate | None = None
    slope: Rate | None = None
    supply_share: Rate | None = None
    liq_ratio: Rate | None = None
    min_requirement: Usd | None = None
    partial_step: Rate | None = None
    threshold_quantum: Rate | None = None
    min_volume: Usd | None = None
    min_value: Usd | None = None
    max_value: Usd | None = None


class Rules(_Base, tag="rules"):
    """Selects a named perp rule set (`name`) and/or changes spot and PM parameters: LTVs and
    caps token by token (caps in whole tokens), scalars through `pm`."""

    name: str | None = None
    ltv: dict[str, Rate] | None = None
    caps: dict[str, Caps] | None = None
    pm: PmParams | None = None


class Token(_Base, tag="token"):
    """Lists a spot token; balances step by 10^-decimals (at most 8)."""

    token: str
    decimals: int


class SpotTrade(_Base, tag="spot_trade"):
    """A spot fill: `buyer` pays `sz * px` of `quote` (USDC) for `sz` of `base`; fees in USDC."""

    base: str
    quote: str
    px: Price
    sz: Tokens
    buyer: str
    seller: str
    buyer_fee: Usd = 0
    seller_fee: Usd = 0
    tid: int | None = None


class ClassTransfer(_Base, tag="class_transfer"):
    """USDC between a standard account's spot balance and its perp ledger."""

    account: str
    amount: Usd
    to_perp: bool


class SetMode(_Base, tag="set_mode"):
    account: str
    mode: str  # "standard" | "unified" | "portfolio"


class Supply(_TokenMove, tag="supply"):
    pass


class WithdrawSupply(_TokenMove, tag="withdraw_supply"):
    pass


class Borrow(_TokenMove, tag="borrow"):
    pass


class Repay(_TokenMove, tag="repay"):
    pass


class ImportedPosition(msgspec.Struct, frozen=True, omit_defaults=True):
    coin: str
    szi: Size
    entry_px: Price
    leverage: int
    cross: bool = True
    raw_usd: Usd = 0  # the isolated ledger (isolated positions only)
    max_leverage: int | None = None  # the position's own cap, as vault positions carry
    funding_all: Usd = 0  # cumFunding as the snapshot shows it (positive = paid)
    funding_since_open: Usd = 0
    funding_since_change: Usd = 0


class ImportAccount(_Base, tag="import_account"):
    """Seeds an account from an outside snapshot (Hyperliquid `clearinghouseState`).

    The opposite side of every position is held by the system account `IMPORT_ACCOUNT` at the
    entry price, so sizes still net to zero; the cash that makes the ledgers match the snapshot
    counts as deposited."""

    account: str
    raw_usd: Usd
    positions: list[ImportedPosition] = []


InputEvent = Union[
    Market,
    Deposit,
    Withdraw,
    Transfer,
    SetLeverage,
    IsolatedMargin,
    Prices,
    Trade,
    Funding,
    Rules,
    ImportAccount,
    Token,
    SpotTrade,
    ClassTransfer,
    SetMode,
    Supply,
    WithdrawSupply,
    Borrow,
    Repay,
]

# ---- derived events (decisions) -------------------------------------------------------------


class Rejected(_Base, tag="rejected"):
    """An input event that broke a rule; state was left unchanged."""

    seq: int
    reason: str
    event: str = ""  # the rejected event's type


class PositionView(msgspec.Struct, frozen=True):
    coin: str
    szi: Size
    mark: Price


class LiquidationTriggered(_Base, tag="liquidation_triggered"):
    """An account (scope "cross") or one isolated position (scope = its coin) fell below
    maintenance margin; `cause` is the seq of the input event after which it was found."""

    account: str
    scope: str
    cause: int
    equity: Usd
    maintenance: Usd
    positions: list[PositionView]
    phase: str  # "market" or "backstop" (equity below 2/3 of maintenance)


class LiquidationOrder(_Base, tag="liquidation_order"):
    """External mode: an order for a matching engine to close `sz` of the account's position."""

    account: str
    coin: str
    is_buy: bool
    sz: Size
    mark: Price
    cause: int


class LiquidationFill(_Base, tag="liquidation_fill"):
    """Mark and impact modes: `account` closed `sz` (signed, from its side) at `px` against the
    liquidator, paying `fee`."""

    account: str
    coin: str
    sz: Size
    px: Price
    fee: Usd
    cause: int


class Backstop(_Base, tag="backstop"):
    """The liquidator took over the positions (at their marks) and the margin of a scope."""

    account: str
    scope: str
    positions: list[PositionView]
    margin: Usd  # the account's cash that moved with them (negative = a loss absorbed)
    cause: int


class Adl(_Base, tag="adl"):
    """Auto-deleveraging: `counterparty`'s position was closed against the bankrupt `account`
    at the previous mark."""

    account: str
    counterparty: str
    coin: str
    sz: Size  # closed from the bankrupt account's side (signed)
    px: Price
    cause: int


class BadDebt(_Base, tag="bad_debt"):
    account: str
    scope: str
    amount: Usd
    cause: int


class BorrowLiquidation(_Base, tag="borrow_liquidation"):
    """The backstop took over collateral of a portfolio-margin account against its borrows,
    with no order-book phase: `kind` "partial" (one or more 20% steps) or "full" (all of it)."""

    account: str
    kind: str
    borrowed: Usd  # the borrowed value that crossed the threshold
    collateral_value: Usd  # sum of balance * oracle over the collateral, before
    threshold: Usd
    taken: dict[str, Tokens]  # collateral moved to the liquidator
    usdc: Usd  # USDC balance moved with it (full takeovers)
    repaid: Usd  # debt the liquidator repaid to the pool
    cause: int


class Checkpoint(_Base, tag="checkpoint"):
    """Every N input events: the state digest after seq `seq` and the rolling hash over the
    input blocks applied so far, so a replay can prove it reached the same state."""

    seq: int
    digest: str
    chain: str


DerivedEvent = Union[Rejected, Checkpoint, LiquidationTriggered, LiquidationOrder, LiquidationFill, Backstop, Adl, BadDebt, BorrowLiquidation]


class Block(msgspec.Struct, frozen=True):
    """One stored record: a block of events stamped with the schema version and the sequence
    number of its first event (so a reader can find an event's record by bisection)."""

    v: int
    seq: int
    events: list[InputEvent]


class DerivedBlock(msgspec.Struct, frozen=True):
    v: int
    seq: int
    events: list[DerivedEvent]


def event_type(event: msgspec.Struct) -> str:
    """The wire tag of an event ("trade", "rejected", ...)."""
    return type(event).__struct_config__.tag  # type: ignore[return-value]
