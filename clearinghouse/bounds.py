"""The documented bounds of every input field and of every stored figure (docs/wire-format.md).

The storage and wire encodings (msgpack, the snapshot, the digest) hold signed 64-bit ints. The
bounds below are chosen so that no single field can come near that, and so that the engine can
keep every figure it stores (balances, sizes, open interest, totals, indices) within
`STORED_LIMIT` by refusing, with a `rejected` event, any event that would take one past it.
A value outside its bound is refused at the codec (JSON and msgpack alike); a figure that would
outgrow `STORED_LIMIT` is refused by the engine.
"""

from __future__ import annotations

from clearinghouse.units import HOUR_MS

STORED_LIMIT = 2**62  # every int the state or a derived event holds stays within +-this

MAX_TS = 4_102_444_800_000  # event time in ms: at most 2100-01-01T00:00:00Z
MAX_TIME_JUMP_MS = 366 * 24 * HOUR_MS  # an event may move event time forward by at most this

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
