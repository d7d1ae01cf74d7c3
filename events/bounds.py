"""The documented bounds of every input field and of every stored figure (docs/wire-format.md).

The storage and wire encodings (msgpack, the snapshot, the digest) hold signed 64-bit ints. The
bounds below are chosen so that no single field can come near that, and so that the engine can
keep every figure it stores (balances, sizes, open interest, totals, indices) within
`STORED_LIMIT` by refusing, with a `rejected` event, any event that would take one past it.
A value outside its bound is refused at the codec (JSON and msgpack alike); a figure that would
outgrow `STORED_LIMIT` is refused by the engine.
"""

from __future__ import annotations

from events.units import HOUR_MS, NTL_DIV

STORED_LIMIT = 2**62  # every int the state or a derived event holds stays within +-this

MAX_TS = 4_102_444_800_000  # event time in ms: at most 2100-01-01T00:00:00Z
MAX_TIME_JUMP_MS = 366 * 24 * HOUR_MS  # an event may move event time forward by at most this
MAX_JUMP_HOURS = MAX_TIME_JUMP_MS // HOUR_MS  # the engine's form of it: hour boundaries one event may pass

MAX_USD = 10**16  # one USDC amount: 10^10 USDC (ten billion), in micro-USDC
MAX_TOKENS = 10**18  # one amount of another token: 10^10 tokens, in 1e-8 token
MAX_SZ = 10**18  # one size: 10^10 coins, in 1e-8 coin
MAX_PX = 10**16  # one price: 10^8 USDC per coin, in 1e-8 USDC
MAX_RATE = 10**12  # one hourly funding rate or premium: 100% an hour, in 1e-12

MAX_LEVERAGE = 200  # leverage settings and tier maxima: 1..MAX_LEVERAGE
MAX_TIERS = 16  # margin tiers per market
MAX_PRICES = 1_000  # coins in one `prices` event
MAX_POSITIONS = 1_000  # positions in one `import_account` event

MAX_NAME = 64  # characters in an account, coin or token name
# ASCII letters, digits and _ . : / @ + - only; `\Z`, not `$`, which would let one trailing "\n" through
NAME_PATTERN = r"^[A-Za-z0-9_.:/@+\-]{1,64}\Z"
MAX_ID = 128  # characters in a source id (`id`): printable ASCII
MAX_LINE_BYTES = 1 << 20  # one JSON line of the wire format
MAX_JSON_DEPTH = 8  # nesting of objects and arrays in one JSON line (input events need 3)

# ---- what only the engine can check (docs/wire-format.md, "Rule parameters and event time") ----

FIGURE_LIMIT = 2**61  # a ledger, size, total or counter past this refuses the events that would grow it
MAX_NOTIONAL = MAX_USD  # one trade's or imported position's `sz * px`, in micro-USDC
FUNDING_INDEX_LIMIT = 2**61  # a market's funding index past this is rebased to 0 (positions settled)
FUNDING_EXPOSURE_LIMIT = 2**58 * 10**14  # open interest (1e-8 coin) * |funding index| (1e-12 USDC) at most
POOL_LIMIT = 2**61  # a pool whose figures would pass this accrues no more interest
INDEX_REBASE_AT = 2**61  # a lending index at or past this is halved, its shares doubled
MAX_APY = 100 * 10**12  # base_apy and slope: at most 10,000% a year, in 1e-12
MIN_LIQ_RATIO = 10**10  # liq_ratio: 0.01 .. 1, in 1e-12
MIN_PARTIAL_STEP = 10**10  # partial_step: 0.01 .. 1 (at most 100 steps), in 1e-12
MAX_CAP = 10**10  # a lending cap, in whole tokens
MAX_COOLDOWN_MS = MAX_TIME_JUMP_MS  # liquidation settings: the partial-liquidation cooldown
MAX_MARKET_DEPTHS = MAX_PRICES  # liquidation settings: markets given a depth of their own (`market_depth`)
OPEN_NOTIONAL_LIMIT = 2**58  # micro-USDC: a market's open interest, or a token's deposits, at its price
OPEN_LIMIT = OPEN_NOTIONAL_LIMIT * NTL_DIV  # the same as size (1e-8) * price (1e-8)

# ---- the risk-based portfolio margin's parameters (docs/risk-margin.md) ----

MAX_SCENARIOS = 64  # scenarios in one underlying's list
MAX_RISK_UNITS = 1_000  # underlyings (units, aliases, members of credit groups) in one parameter set
MAX_RISK_FACTOR = 10 * 10**12  # a loss factor (IM or MM): at most 10, in 1e-12
MAX_MOVE = 10 * 10**12  # a scenario's price move: -1 (a fall to zero) .. +10, in 1e-12
