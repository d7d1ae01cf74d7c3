"""The events: a tagged union of msgspec Structs, the language of the whole system.

Amount fields are ints in the fixed-point scales of `events.units`; the scale of each
field is declared once here (the `Usd`, `Size`, `Price`, `Rate` aliases) and read by the codec,
which turns JSON decimal strings into these ints once, at the edge. msgpack storage holds the
ints directly. `SCHEMA_VERSION` is stamped on every stored block; a reader refuses newer blocks.

Every field of an input event carries its bound (`events.bounds`, docs/wire-format.md) as
msgspec constraints, so JSON lines and stored blocks alike are refused at decoding when a value,
a name or a count is out of bounds. Amounts are bounded in magnitude only: their sign, like every
relation to the state, is the engine's to check (with a `rejected` event naming the reason).
Derived events are the engine's output and carry scales only.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from events.bounds import (
    MAX_ID,
    MAX_LEVERAGE,
    MAX_POSITIONS,
    MAX_PRICES,
    MAX_PX,
    MAX_RATE,
    MAX_RISK_UNITS,
    MAX_SCENARIOS,
    MAX_SZ,
    MAX_TIERS,
    MAX_TOKENS,
    MAX_TS,
    MAX_USD,
    NAME_PATTERN,
    STORED_LIMIT,
)
from events.units import (
    PX_DECIMALS,
    RATE_DECIMALS,
    SZ_DECIMALS,
    TOKEN_DECIMALS,
    USD_DECIMALS,
)

SCHEMA_VERSION = 1

# ---- input field types: scale and bound ------------------------------------------------------

Usd = Annotated[int, msgspec.Meta(ge=-MAX_USD, le=MAX_USD, extra={"scale": USD_DECIMALS})]
Size = Annotated[int, msgspec.Meta(ge=-MAX_SZ, le=MAX_SZ, extra={"scale": SZ_DECIMALS})]
Price = Annotated[int, msgspec.Meta(ge=-MAX_PX, le=MAX_PX, extra={"scale": PX_DECIMALS})]
Rate = Annotated[int, msgspec.Meta(ge=-MAX_RATE, le=MAX_RATE, extra={"scale": RATE_DECIMALS})]
Tokens = Annotated[int, msgspec.Meta(ge=-MAX_TOKENS, le=MAX_TOKENS, extra={"scale": TOKEN_DECIMALS})]
# An amount of the event's `token`: micro-USDC within +-MAX_USD for USDC (the default), 1e-8 within
# +-MAX_TOKENS for any other token. The constraint holds the wider bound; the codec checks the other.
TokenAmount = Annotated[
    int,
    msgspec.Meta(
        ge=-MAX_TOKENS,
        le=MAX_TOKENS,
        extra={"scale": USD_DECIMALS, "usdc_bound": MAX_USD, "token_scale": TOKEN_DECIMALS},
    ),
]
# Rule parameters: the engine checks their ranges; decoding only keeps them within the stored limit.
RuleUsd = Annotated[int, msgspec.Meta(ge=-STORED_LIMIT, le=STORED_LIMIT, extra={"scale": USD_DECIMALS})]
RuleRate = Annotated[int, msgspec.Meta(ge=-STORED_LIMIT, le=STORED_LIMIT, extra={"scale": RATE_DECIMALS})]
Leverage = Annotated[int, msgspec.Meta(ge=-MAX_LEVERAGE, le=MAX_LEVERAGE)]
EventTime = Annotated[int, msgspec.Meta(ge=0, le=MAX_TS)]  # ms since the epoch
TradeId = Annotated[int, msgspec.Meta(ge=0, le=STORED_LIMIT)]
# A count of decimal places: at most 18 when read (10**18 fits 64 bits); the engine lists at most 8.
Places = Annotated[int, msgspec.Meta(ge=0, le=18)]
# An account, coin or token name (also rule set, mode and method words).
Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
ID_PATTERN = rf"^[\x20-\x7e]{{1,{MAX_ID}}}\Z"  # printable ASCII
SourceId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]

# ---- derived field types: scale only (figures the engine keeps within its stored limit) ------

UsdFigure = Annotated[int, msgspec.Meta(extra={"scale": USD_DECIMALS})]
SizeFigure = Annotated[int, msgspec.Meta(extra={"scale": SZ_DECIMALS})]
PriceFigure = Annotated[int, msgspec.Meta(extra={"scale": PX_DECIMALS})]
TokensFigure = Annotated[int, msgspec.Meta(extra={"scale": TOKEN_DECIMALS})]


class _Base(msgspec.Struct, kw_only=True, tag_field="type", omit_defaults=True, frozen=True):
    """Fields every event may carry: event time in ms, and a source key for de-duplication."""

    ts: EventTime | None = None
    id: SourceId | None = None


# ---- input events (facts) -------------------------------------------------------------------


class Caps(msgspec.Struct, frozen=True, omit_defaults=True):
    """A token's lending caps in whole tokens (0 = none allowed): global supply and borrow,
    and per account."""

    supply: int = 0
    borrow: int = 0
    user_supply: int = 0
    user_borrow: int = 0


class MarginTier(msgspec.Struct, frozen=True):
    lower_bound: Usd
    max_leverage: Leverage


class Market(_Base, tag="market"):
    """Lists a perp market, or replaces its parameters (tiers, isolated-only)."""

    coin: Name
    sz_decimals: Places
    margin_tiers: Annotated[list[MarginTier], msgspec.Meta(max_length=MAX_TIERS)]
    only_isolated: bool = False


class _TokenMove(_Base):
    """An account moving an amount of one token (USDC unless named): deposits, withdrawals and
    the lending actions share this shape."""

    account: Name
    amount: TokenAmount
    token: Name = "USDC"


class Deposit(_TokenMove, tag="deposit"):
    """USDC into the perp ledger (a unified or portfolio account's one balance), or any other
    listed token into the spot balance."""


class Withdraw(_TokenMove, tag="withdraw"):
    pass


class Transfer(_Base, tag="transfer"):
    from_: Name = msgspec.field(name="from")
    to: Name
    amount: Usd


class SetLeverage(_Base, tag="set_leverage"):
    account: Name
    coin: Name
    leverage: Leverage
    cross: bool = True


class IsolatedMargin(_Base, tag="isolated_margin"):
    account: Name
    coin: Name
    delta: Usd


class PricePoint(msgspec.Struct, frozen=True, omit_defaults=True):
    mark: Price
    oracle: Price | None = None  # absent: the oracle follows the mark


class Prices(_Base, tag="prices"):
    prices: Annotated[dict[Name, PricePoint], msgspec.Meta(max_length=MAX_PRICES)]


class LiquidationMark(msgspec.Struct, frozen=True, omit_defaults=True):
    """On a trade: this fill executes a liquidation order of `account` (external mode).

    From Hyperliquid fills: `mark` is the venue's mark price at the liquidation (`markPx`), and
    `user` the venue's liquidated address when it is not a side of this trade (a one-user fill
    file, whose counterparty is the outside world). The engine does not read either."""

    account: Name
    method: Name = "market"
    mark: Price | None = None
    user: Name | None = None


class Trade(_Base, tag="trade"):
    coin: Name
    px: Price
    sz: Size
    buyer: Name
    seller: Name
    buyer_fee: Usd = 0
    seller_fee: Usd = 0
    tid: TradeId | None = None
    liquidation: LiquidationMark | None = None
    # From Hyperliquid fills, for the record (the engine reads neither): the part of each side's
    # fee that went to the order's builder (already inside the fee), and an auto-deleveraging fill.
    buyer_builder_fee: Usd = 0
    seller_builder_fee: Usd = 0
    adl: bool = False


class Funding(_Base, tag="funding"):
    """One hour of funding: either the hourly `rate`, or the hour's mean `premium` from which the
    era's formula (rule set) derives the rate."""

    coin: Name
    rate: Rate | None = None
    premium: Rate | None = None


class PmParams(msgspec.Struct, frozen=True, omit_defaults=True):
    """Scalar portfolio-margin and lending parameters a `rules` event sets (clearinghouse.rules.PmRules)."""

    base_apy: RuleRate | None = None
    kink: RuleRate | None = None
    slope: RuleRate | None = None
    supply_share: RuleRate | None = None
    liq_ratio: RuleRate | None = None
    min_requirement: RuleUsd | None = None
    partial_step: RuleRate | None = None
    threshold_quantum: RuleRate | None = None
    min_volume: RuleUsd | None = None
    min_value: RuleUsd | None = None
    max_value: RuleUsd | None = None


class RiskScenario(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """One scenario of an underlying: a relative price `move` (-0.15 is a 15% fall) and the
    `weight` its loss counts at (docs/risk-margin.md)."""

    move: RuleRate
    weight: RuleRate = 10**RATE_DECIMALS


class RiskUnit(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """The risk model's parameters of one underlying: its scenarios, the floor, and the charges
    beside the scan at their maintenance and initial rates (`depth` in USDC)."""

    scenarios: Annotated[list[RiskScenario], msgspec.Meta(min_length=1, max_length=MAX_SCENARIOS)]
    min_charge: RuleRate = 0
    perp_rate_mm: RuleRate = 0
    perp_rate_im: RuleRate = 0
    basis_rate_mm: RuleRate = 0
    basis_rate_im: RuleRate = 0
    conc: RuleRate = 0
    depth: RuleUsd = 100_000_000 * 10**USD_DECIMALS


class RiskCredit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A spread-credit group: underlyings revalued together on aligned scenarios, the gaining
    legs offsetting `rate` of the losing ones."""

    units: Annotated[list[Name], msgspec.Meta(min_length=2, max_length=MAX_RISK_UNITS)]
    rate: RuleRate


class RiskParams(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """The risk-based portfolio margin's parameters (a `rules` event's `risk`, or a parameter
    file): a field left out takes the shipped default (`clearinghouse.risk.defaults`)."""

    model: Name = "risk"
    mm_loss_factor: RuleRate | None = None
    im_loss_factor: RuleRate | None = None
    units: Annotated[dict[Name, RiskUnit], msgspec.Meta(max_length=MAX_RISK_UNITS)] | None = None
    default_unit: RiskUnit | None = None
    aliases: Annotated[dict[Name, Name], msgspec.Meta(max_length=MAX_RISK_UNITS)] | None = None
    credits: Annotated[list[RiskCredit], msgspec.Meta(max_length=MAX_RISK_UNITS)] | None = None
    loan_rate_mm: RuleRate | None = None
    loan_rate_im: RuleRate | None = None


class Rules(_Base, tag="rules"):
    """Selects a named perp rule set (`name`) and/or changes spot and PM parameters: LTVs and
    caps token by token (caps in whole tokens), scalars through `pm`; `risk` replaces the risk
    model's parameters."""

    name: Name | None = None
    ltv: Annotated[dict[Name, RuleRate], msgspec.Meta(max_length=MAX_PRICES)] | None = None
    caps: Annotated[dict[Name, Caps], msgspec.Meta(max_length=MAX_PRICES)] | None = None
    pm: PmParams | None = None
    risk: RiskParams | None = None


class Token(_Base, tag="token"):
    """Lists a spot token; balances step by 10^-decimals (at most 8)."""

    token: Name
    decimals: Places


class SpotTrade(_Base, tag="spot_trade"):
    """A spot fill: `buyer` pays `sz * px` of `quote` (USDC) for `sz` of `base`; fees in USDC."""

    base: Name
    quote: Name
    px: Price
    sz: Tokens
    buyer: Name
    seller: Name
    buyer_fee: Usd = 0
    seller_fee: Usd = 0
    tid: TradeId | None = None


class ClassTransfer(_Base, tag="class_transfer"):
    """USDC between a standard account's spot balance and its perp ledger."""

    account: Name
    amount: Usd
    to_perp: bool


class SetMode(_Base, tag="set_mode"):
    account: Name
    mode: Name  # "standard" | "unified" | "portfolio" | "risk"


class Supply(_TokenMove, tag="supply"):
    pass


class WithdrawSupply(_TokenMove, tag="withdraw_supply"):
    pass


class Borrow(_TokenMove, tag="borrow"):
    pass


class Repay(_TokenMove, tag="repay"):
    pass


class ImportedPosition(msgspec.Struct, frozen=True, omit_defaults=True):
    coin: Name
    szi: Size
    entry_px: Price
    leverage: Leverage
    cross: bool = True
    raw_usd: Usd = 0  # the isolated ledger (isolated positions only)
    max_leverage: Leverage | None = None  # the position's own cap, as vault positions carry
    funding_all: Usd = 0  # cumFunding as the snapshot shows it (positive = paid)
    funding_since_open: Usd = 0
    funding_since_change: Usd = 0


class ImportedBalance(msgspec.Struct, frozen=True):
    """A spot token (not USDC: that is the ledger, `raw_usd`) the imported account holds of its own."""

    token: Name
    amount: Tokens


class ImportAccount(_Base, tag="import_account"):
    """Seeds an account from an outside snapshot (Hyperliquid `clearinghouseState`, with its
    `spotClearinghouseState` for a unified or portfolio account).

    The opposite side of every position is held by the system account `IMPORT_ACCOUNT` at the
    entry price, so sizes still net to zero; the cash that makes the ledgers match the snapshot
    counts as deposited. `mode` (absent: standard) is the margin model the account is created
    in, open positions and all: the snapshot is the venue's word that it is in that mode.
    `balances` are its own spot tokens, deposited with it, so the account is whole from its
    first event (a portfolio account's collateral counts at once)."""

    account: Name
    raw_usd: Usd
    positions: Annotated[list[ImportedPosition], msgspec.Meta(max_length=MAX_POSITIONS)] = []
    mode: Name | None = None
    balances: Annotated[list[ImportedBalance], msgspec.Meta(max_length=MAX_POSITIONS)] = []


class LiquidatedPosition(msgspec.Struct, frozen=True):
    coin: Name
    szi: Size


class LiquidationRecord(_Base, tag="liq_record"):
    """A venue's record that it liquidated `account` (Hyperliquid's ledger `liquidation`): its
    cross book (`cross`) or isolated positions, the account value and liquidated notional it saw,
    and the positions. The engine keeps it in the log and changes nothing; `hl reconcile`
    compares it with the engine's own decision at that point."""

    account: Name
    cross: bool = True
    account_value: Usd | None = None
    notional: Usd | None = None
    positions: Annotated[list[LiquidatedPosition], msgspec.Meta(max_length=MAX_POSITIONS)] = []


InputEvent = (
    Market
    | Deposit
    | Withdraw
    | Transfer
    | SetLeverage
    | IsolatedMargin
    | Prices
    | Trade
    | Funding
    | Rules
    | ImportAccount
    | Token
    | SpotTrade
    | ClassTransfer
    | SetMode
    | Supply
    | WithdrawSupply
    | Borrow
    | Repay
    | LiquidationRecord
)

# ---- derived events (decisions) -------------------------------------------------------------


class Rejected(_Base, tag="rejected"):
    """An input event that broke a rule; state was left unchanged."""

    seq: int
    reason: str
    event: str = ""  # the rejected event's type


class PositionView(msgspec.Struct, frozen=True):
    coin: str
    szi: SizeFigure
    mark: PriceFigure


class LiquidationTriggered(_Base, tag="liquidation_triggered"):
    """An account (scope "cross") or one isolated position (scope = its coin) fell below
    maintenance margin; `cause` is the seq of the input event after which it was found."""

    account: str
    scope: str
    cause: int
    equity: UsdFigure
    maintenance: UsdFigure
    positions: list[PositionView]
    phase: str  # "market" or "backstop" (equity below 2/3 of maintenance)


class LiquidationOrder(_Base, tag="liquidation_order"):
    """External mode: an order for a matching engine to close `sz` of the account's position."""

    account: str
    coin: str
    is_buy: bool
    sz: SizeFigure
    mark: PriceFigure
    cause: int


class LiquidationFill(_Base, tag="liquidation_fill"):
    """Mark and impact modes: `account` closed `sz` (signed, from its side) at `px` against the
    liquidator, paying `fee`."""

    account: str
    coin: str
    sz: SizeFigure
    px: PriceFigure
    fee: UsdFigure
    cause: int


class Backstop(_Base, tag="backstop"):
    """The liquidator took over the positions (at their marks) and the margin of a scope."""

    account: str
    scope: str
    positions: list[PositionView]
    margin: UsdFigure  # the account's cash that moved with them (negative = a loss absorbed)
    cause: int


class Adl(_Base, tag="adl"):
    """Auto-deleveraging: `counterparty`'s position was closed against the bankrupt `account`
    at the previous mark."""

    account: str
    counterparty: str
    coin: str
    sz: SizeFigure  # closed from the bankrupt account's side (signed)
    px: PriceFigure
    cause: int


class BadDebt(_Base, tag="bad_debt"):
    account: str
    scope: str
    amount: UsdFigure
    cause: int


class BorrowLiquidation(_Base, tag="borrow_liquidation"):
    """The backstop took over collateral of a portfolio-margin account against its borrows,
    with no order-book phase: `kind` "partial" (one or more 20% steps) or "full" (all of it)."""

    account: str
    kind: str
    borrowed: UsdFigure  # the borrowed value that crossed the threshold
    collateral_value: UsdFigure  # sum of balance * oracle over the collateral, before
    threshold: UsdFigure
    taken: dict[str, TokensFigure]  # collateral moved to the liquidator
    usdc: UsdFigure  # USDC balance moved with it (full takeovers)
    repaid: UsdFigure  # debt the liquidator repaid to the pool
    cause: int


class Checkpoint(_Base, tag="checkpoint"):
    """Every N input events: the state digest after seq `seq` and the rolling hash over the
    input blocks applied so far, so a replay can prove it reached the same state."""

    seq: int
    digest: str
    chain: str


DerivedEvent = (
    Rejected
    | Checkpoint
    | LiquidationTriggered
    | LiquidationOrder
    | LiquidationFill
    | Backstop
    | Adl
    | BadDebt
    | BorrowLiquidation
)


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
