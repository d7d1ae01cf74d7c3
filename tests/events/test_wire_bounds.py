"""The wire format's limits (docs/wire-format.md, "Values, names and limits"): the decimal grammar,
the bound of every input field, the name grammar, and hostile lines, each refused at decoding with
a `CodecError` that names the field and the reason, for JSON lines and msgpack blocks alike.

Expected integers are worked out by hand from the field's unit (micro-USDC, 1e-8 coin, ...)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from msgspec import inspect as mi

from events import schema as ev
from events.bounds import MAX_JSON_DEPTH, MAX_LINE_BYTES, MAX_POSITIONS, MAX_PRICES, MAX_TIERS
from events.codec import CodecError, decode_block, decode_json, encode_block, encode_json, iter_json_lines


def _line(**fields: Any) -> str:
    return json.dumps(fields)


def _refused(line: str | bytes, *words: str) -> str:
    with pytest.raises(CodecError) as info:
        decode_json(line)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def _deposit(amount: Any, **extra: Any) -> str:
    return _line(type="deposit", account="a1", amount=amount, **extra)


# ---- decimals (defect class 8) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "micro"),
    [
        ("5", 5_000_000),
        ("+5", 5_000_000),
        ("-5", -5_000_000),
        ("5.", 5_000_000),
        (".5", 500_000),
        ("-.5", -500_000),
        ("0.000001", 1),
        ("007.250000", 7_250_000),
        ("-0", 0),
        (12, 12_000_000),  # a JSON integer is whole USDC
        ("10000000000", 10**16),  # the bound itself: 10^10 USDC
    ],
)
def test_the_decimal_grammar_reads_exactly(amount: Any, micro: int) -> None:
    assert decode_json(_deposit(amount)).amount == micro


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        # 31 nines: Decimal's 28-digit context rounded this to 1.0 and accepted it
        ("0.9999999999999999999999999999999", "has more than 6 decimals"),
        ("1.0000000", "'1.0000000' has more than 6 decimals"),  # extra digits are refused even as zeros
        ("\u0661\u0660", "only the ASCII digits 0-9 are allowed"),  # Arabic-Indic 10
        ("\u0967", "only the ASCII digits 0-9 are allowed"),  # Devanagari 1
        ("\uff11", "only the ASCII digits 0-9 are allowed"),  # fullwidth 1
        ("1_000", "underscores are not allowed"),
        ("  7  ", "whitespace is not allowed"),
        ("7\n", "whitespace is not allowed"),
        ("1e999999", "exponents are not allowed"),  # decimal.Overflow crashed ingest
        ("1E3", "exponents are not allowed"),
        ("NaN", "not a finite decimal"),
        ("-Infinity", "not a finite decimal"),
        ("", "not a decimal: ''"),
        (".", "not a decimal"),
        ("-", "not a decimal"),
        ("+-1", "not a decimal"),
        ("1.2.3", "not a decimal"),
        ("0x10", "not a decimal"),
        ("1" * 41, "longer than 40 characters"),
    ],
)
def test_anything_outside_the_grammar_is_refused_with_the_reason(amount: str, reason: str) -> None:
    _refused(_deposit(amount), "$.amount", reason)


def test_json_floats_and_other_types_are_refused() -> None:
    _refused(_deposit(1.5), "$.amount: expected a decimal string, got float")
    _refused(_deposit(True), "$.amount: expected a decimal string, got bool")
    _refused(_deposit(None), "amount")


# ---- bounds (defect class 3, input side) -----------------------------------------------------


def test_a_deposit_beyond_ten_billion_usdc_is_refused_not_stored() -> None:
    """9223372036854.775808 USDC is 2^63 micro-USDC: it passed ingest and broke the encoder."""
    _refused(_deposit("9223372036854.775808"), "$.amount", "above the maximum 10000000000.0")
    _refused(_deposit("10000000000.000001"), "$.amount", "above the maximum")
    _refused(_deposit("-10000000000.000001"), "$.amount", "below the minimum -10000000000.0")


def test_a_token_amount_is_bounded_in_its_own_unit() -> None:
    """10^10 tokens in 1e-8 is 10^18; 10^10 USDC in micro-USDC is 10^16."""
    assert decode_json(_deposit("10000000000", token="BTC")).amount == 10**18
    assert decode_json(_deposit("0.00000001", token="BTC")).amount == 1
    _refused(_deposit("10000000000.00000001", token="BTC"), "$.amount", "above the maximum 10000000000.0")
    _refused(_deposit("0.000000001", token="BTC"), "has more than 8 decimals")
    _refused(_deposit("0.0000001"), "has more than 6 decimals")  # USDC: 6 decimals


def test_a_mark_beyond_the_price_bound_is_refused() -> None:
    """92233720368.54775807 is 2^63 - 1 in 1e-8 USDC; prices stop at 10^8 USDC."""
    _refused(
        _line(type="prices", prices={"BTC": {"mark": "92233720368.54775807"}}),
        "$.prices.BTC.mark",
        "above the maximum 100000000.0",
    )
    point = decode_json(_line(type="prices", prices={"BTC": {"mark": "100000000", "oracle": "0.00000001"}}))
    assert point.prices["BTC"] == ev.PricePoint(mark=10**16, oracle=1)


def _market(tiers: list[tuple[str, int]], sz_decimals: int = 2) -> str:
    return _line(
        type="market",
        coin="X",
        sz_decimals=sz_decimals,
        margin_tiers=[{"lower_bound": lb, "max_leverage": lev} for lb, lev in tiers],
    )


def test_margin_tiers_are_counted_and_bounded() -> None:
    ok = [(str(i * 1_000_000), 50 - i) for i in range(MAX_TIERS)]
    assert len(decode_json(_market(ok)).margin_tiers) == 16
    _refused(_market([(str(i), 47 - i) for i in range(47)]), "length <= 16", "$.margin_tiers")
    _refused(_market([("0", 40), ("1000000000000", 20)]), "$.margin_tiers[1].lower_bound", "above the maximum")
    _refused(_market([("0", 201)]), "<= 200", "$.margin_tiers[0].max_leverage")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (_deposit("1", ts=-1), (">= 0", "$.ts")),
        (_deposit("1", ts=4_102_444_800_001), ("<= 4102444800000", "$.ts")),
        (_deposit("1", ts=9_223_372_036_854_775_807), ("$.ts",)),
        (_line(type="set_leverage", account="a", coin="B", leverage=201), ("<= 200", "$.leverage")),
        (_line(type="set_leverage", account="a", coin="B", leverage=-201), (">= -200", "$.leverage")),
        (_market([("0", 10)], sz_decimals=19), ("<= 18", "$.sz_decimals")),
        (_market([("0", 10)], sz_decimals=-1), (">= 0", "$.sz_decimals")),
        (_line(type="token", token="T", decimals=10**30), ("<= 18", "$.decimals")),
        (_line(type="trade", coin="B", px="1", sz="1", buyer="a", seller="b", tid=-1), (">= 0", "$.tid")),
        (_line(type="trade", coin="B", px="1", sz="10000000000.00000001", buyer="a", seller="b"), ("$.sz", "maximum")),
        (
            _line(type="trade", coin="B", px="1", sz="1", buyer="a", seller="b", buyer_fee="-10000000001"),
            ("$.buyer_fee", "minimum"),
        ),
        (_line(type="funding", coin="B", rate="1.000000000001"), ("$.rate", "above the maximum 1.0")),
        (_line(type="funding", coin="B", premium="-1.000000000001"), ("$.premium", "below the minimum -1.0")),
        (_line(type="transfer", to="b", amount="10000000001", **{"from": "a"}), ("$.amount", "maximum")),
        (_line(type="isolated_margin", account="a", coin="B", delta="-10000000001"), ("$.delta", "minimum")),
        (_line(type="class_transfer", account="a", amount="10000000001", to_perp=True), ("$.amount", "maximum")),
        (
            _line(type="spot_trade", base="T", quote="USDC", px="1", sz="10000000001", buyer="a", seller="b"),
            ("$.sz", "maximum"),
        ),
        (
            _line(
                type="import_account",
                account="w",
                raw_usd="0",
                positions=[{"coin": "B", "szi": "1", "entry_px": "1", "leverage": 3, "max_leverage": 10**6}],
            ),
            ("<= 200", "$.positions[0].max_leverage"),
        ),
        (
            _line(
                type="import_account",
                account="w",
                raw_usd="0",
                positions=[{"coin": "B", "szi": "1", "entry_px": "1", "leverage": 3, "funding_all": "1e20"}],
            ),
            ("$.positions[0].funding_all", "exponents"),
        ),
        (_line(type="rules", pm={"liq_ratio": "4611687"}), ("$.pm.liq_ratio", "above the maximum")),
        (_line(type="rules", caps={"BTC": {"supply": 10**30}}), ("64-bit",)),
    ],
)
def test_every_field_is_refused_outside_its_bound(line: str, words: tuple[str, ...]) -> None:
    _refused(line, *words)


def test_counts_are_bounded() -> None:
    prices = {f"C{i}": {"mark": "1"} for i in range(MAX_PRICES)}
    assert len(decode_json(_line(type="prices", prices=prices)).prices) == MAX_PRICES
    _refused(_line(type="prices", prices={**prices, "ONE_MORE": {"mark": "1"}}), "length <= 1000", "$.prices")
    position = {"coin": "B", "szi": "1", "entry_px": "1", "leverage": 3}
    _refused(
        _line(type="import_account", account="w", raw_usd="0", positions=[position] * (MAX_POSITIONS + 1)),
        "length <= 1000",
        "$.positions",
    )
    ltv = {f"T{i}": "0.5" for i in range(MAX_PRICES + 1)}
    _refused(_line(type="rules", ltv=ltv), "length <= 1000", "$.ltv")


def test_the_engine_keeps_its_own_rejections_inside_the_bounds() -> None:
    """Signs and relations are the engine's (a `rejected` event with the reason), not the codec's."""
    assert decode_json(_deposit("-1")).amount == -1_000_000
    assert decode_json(_line(type="set_leverage", account="a", coin="B", leverage=0)).leverage == 0
    assert decode_json(_line(type="prices", prices={"B": {"mark": "0"}})).prices["B"].mark == 0
    assert decode_json(_line(type="token", token="BIG", decimals=9)).decimals == 9  # the engine says why not
    assert decode_json(_market([("0", 10)], sz_decimals=9)).sz_decimals == 9


def test_stored_blocks_are_held_to_the_same_bounds() -> None:
    """A block is checked on reading like a line: a writer that skipped the codec cannot smuggle
    an out-of-bound value into the engine."""
    bad = [
        ev.Deposit(account="a", amount=10**16 + 1),  # USDC: 10^10 USDC + 1 micro
        ev.Deposit(account="a", amount=-(10**16) - 1),
        ev.Deposit(account="a", amount=10**18 + 1, token="BTC"),
        ev.Prices(prices={"B": ev.PricePoint(mark=9_223_372_036_854_775_807)}),
        ev.Market(coin="X", sz_decimals=2, margin_tiers=[ev.MarginTier(0, 10)] * 47),
        ev.Market(coin="X", sz_decimals=2, margin_tiers=[ev.MarginTier(0, 10), ev.MarginTier(10**18, 5)]),
        ev.Deposit(account="a", amount=1, ts=2**63 - 1),
        ev.Deposit(account="BTC ", amount=1),
        ev.Deposit(account="a", amount=1, id=""),
        ev.Prices(prices={"\x1b[31m": ev.PricePoint(mark=1)}),
    ]
    for event in bad:
        with pytest.raises(CodecError, match="bad block"):
            decode_block(encode_block([ev.Deposit(account="ok", amount=1), event]))
    fine = [ev.Deposit(account="a", amount=10**16), ev.Deposit(account="a", amount=10**18, token="BTC")]
    assert decode_block(encode_block(fine)) == fine


def _int_types(t: mi.Type, seen: set[type]) -> list[mi.Type]:
    """Every int, str, list and dict type reachable from `t` (through structs, once each)."""
    if isinstance(t, mi.Metadata):
        return _int_types(t.type, seen)
    if isinstance(t, mi.StructType):
        if t.cls in seen:
            return []
        seen.add(t.cls)
        return [x for f in t.fields for x in _int_types(f.type, seen)]
    if isinstance(t, mi.UnionType):
        return [x for m in t.types for x in _int_types(m, seen)]
    if isinstance(t, mi.ListType):
        return [t, *_int_types(t.item_type, seen)]
    if isinstance(t, mi.DictType):
        return [t, *_int_types(t.key_type, seen), *_int_types(t.value_type, seen)]
    return [t] if isinstance(t, (mi.IntType, mi.StrType)) else []


def test_every_input_field_has_a_bound() -> None:
    """The class, not the examples: every int of every input event has both bounds, every string
    a pattern, every list and dict a maximum length (Caps, the engine's rule type, aside: its
    ranges are the engine's and the codec keeps it within the 64-bit encoding)."""
    seen: set[type] = {__import__("events.schema", fromlist=["Caps"]).Caps}
    for t in _int_types(mi.type_info(ev.InputEvent), seen):
        if isinstance(t, mi.IntType):
            assert t.ge is not None and t.le is not None, t
        elif isinstance(t, mi.StrType):
            assert t.pattern is not None, t
        else:
            assert t.max_length is not None, t


# ---- names (defect class 9) ------------------------------------------------------------------

BAD_NAMES = [
    "",
    "\x00",
    "\n",
    "BTC\n",
    "\x1b[31m",
    "e\u0301",
    "\u00e9",
    "BTC ",
    " BTC",
    "B TC",
    "a" * 65,
    "\u0430",
    "BTC\u200b",
    "\ufeffBTC",
    "x" * 1_000_000,
]
GOOD_NAMES = ["0x" + "ab" * 20, "@107", "PURR/USDC", "kPEPE", "@liquidator", "a", "A" * 64, "x_y.z:1+2-3"]


def _with_name(where: str, name: str) -> str:
    """A valid line of some event type with `name` at `where`."""
    trade = dict(type="trade", coin="BTC", px="1", sz="1", buyer="a", seller="b")
    spot = dict(type="spot_trade", base="T", quote="USDC", px="1", sz="1", buyer="a", seller="b")
    lines: dict[str, dict[str, Any]] = {
        "deposit.account": dict(type="deposit", account=name, amount="1"),
        "deposit.token": dict(type="deposit", account="a", amount="1", token=name),
        "transfer.from": {"type": "transfer", "from": name, "to": "b", "amount": "1"},
        "transfer.to": {"type": "transfer", "from": "a", "to": name, "amount": "1"},
        "trade.buyer": {**trade, "buyer": name},
        "trade.seller": {**trade, "seller": name},
        "trade.coin": {**trade, "coin": name},
        "trade.liquidation": {**trade, "liquidation": {"account": name}},
        "spot_trade.base": {**spot, "base": name},
        "spot_trade.quote": {**spot, "quote": name},
        "market.coin": dict(
            type="market", coin=name, sz_decimals=1, margin_tiers=[{"lower_bound": "0", "max_leverage": 3}]
        ),
        "prices.key": dict(type="prices", prices={name: {"mark": "1"}}),
        "rules.ltv": dict(type="rules", ltv={name: "0.5"}),
        "rules.caps": dict(type="rules", caps={name: {"supply": 1}}),
        "token.token": dict(type="token", token=name, decimals=8),
        "set_mode.account": dict(type="set_mode", account=name, mode="portfolio"),
        "liq_record.position": dict(type="liq_record", account="a", positions=[{"coin": name, "szi": "1"}]),
        "import.position": dict(
            type="import_account",
            account="w",
            raw_usd="0",
            positions=[{"coin": name, "szi": "1", "entry_px": "1", "leverage": 3}],
        ),
    }
    return json.dumps(lines[where])


NAME_FIELDS = [
    "deposit.account",
    "deposit.token",
    "transfer.from",
    "transfer.to",
    "trade.buyer",
    "trade.seller",
    "trade.coin",
    "trade.liquidation",
    "spot_trade.base",
    "spot_trade.quote",
    "market.coin",
    "prices.key",
    "rules.ltv",
    "rules.caps",
    "token.token",
    "set_mode.account",
    "liq_record.position",
    "import.position",
]


@pytest.mark.parametrize("where", NAME_FIELDS)
def test_names_outside_the_grammar_are_refused_everywhere(where: str) -> None:
    for name in BAD_NAMES:
        message = _refused(_with_name(where, name), "name (1 to 64 ASCII letters, digits or _ . : / @ + -)")
        assert len(message) < 300 and message.isprintable() and message.isascii(), message
    for name in GOOD_NAMES:
        decode_json(_with_name(where, name))


def test_source_ids_are_printable_ascii() -> None:
    assert decode_json(_deposit("1", id="dep 1/" + "x" * 122)).id == "dep 1/" + "x" * 122  # 128 characters
    for bad in ["", "x" * 129, "a\x00", "a\nb", "caf\u00e9"]:
        _refused(_deposit("1", id=bad), "an id (1 to 128 printable ASCII characters)", "$.id")


# ---- hostile lines ---------------------------------------------------------------------------


def test_a_line_longer_than_the_limit_is_refused_before_parsing() -> None:
    line = _deposit("1", id="x" * MAX_LINE_BYTES)
    _refused(line, f"longer than the limit of {MAX_LINE_BYTES}")
    _refused(line.encode(), f"longer than the limit of {MAX_LINE_BYTES}")


def test_one_megabyte_strings_are_refused_briefly() -> None:
    for line in [
        _deposit("1" * 1_000_000),
        _line(type="deposit", account="a" * 1_000_000, amount="1"),
        _line(type="t" * 1_000_000),
    ]:
        assert len(line) < MAX_LINE_BYTES
        assert len(_refused(line)) < 300


@pytest.mark.parametrize(
    "line",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"type":"deposit","account":"a","amount":"1","x":' + "[" * 10_000 + "]" * 10_000 + "}",
        '{"type":"deposit","x":' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "}",
        "[" * 10_000,  # and never closed
        '{"type":"deposit","account":"a","amount":"1","x":' + "[" * (MAX_JSON_DEPTH) + "]" * MAX_JSON_DEPTH + "}",
    ],
)
def test_deep_nesting_is_refused_not_a_recursion_error(line: str) -> None:
    _refused(line, f"nest more than {MAX_JSON_DEPTH} levels deep")


def test_nesting_inside_strings_does_not_count() -> None:
    event = decode_json(_deposit("1", id="[" * 90 + '\\"{' * 10))
    assert event.id == "[" * 90 + '\\"{' * 10


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b'{"type":"deposit","account":"\xff","amount":"1"}', ("not JSON", "UTF-8")),
        (b'{"type":"deposit","account":"a\x00","amount":"1"}', ("not JSON",)),
        (b'{"type":"deposit","account":"a\\u0000","amount":"1"}', ("name",)),
        ('{"type":"deposit","account":"\ud800","amount":"1"}', ("lone surrogate",)),
        (b'{"type":"deposit","account":"a","amount":' + b"9" * 5000 + b"}", ("not JSON", "out of range")),
        (b'{"type":[1],"account":"a"}', ("unknown event type [1]",)),
        (b'{"type":{"a":1}}', ("unknown event type",)),
        (b"\x00" * 100, ("not JSON",)),
    ],
)
def test_hostile_bytes_are_clean_rejections(line: str | bytes, words: tuple[str, ...]) -> None:
    _refused(line, *words)


def test_a_deeply_nested_block_is_refused_not_a_recursion_error() -> None:
    good = encode_block([ev.Deposit(account="a", amount=1)])
    # the same block with an extra unknown field on the event, nested 100,000 arrays deep
    event = msgspec.msgpack.encode({"type": "deposit", "account": "a", "amount": 1, "x": None})
    nested = event.replace(b"\xa1x\xc0", b"\xa1x" + b"\x91" * 100_000 + b"\xc0")
    block = msgspec.msgpack.encode({"v": 1, "seq": 0, "events": [msgspec.Raw(nested)]})
    assert decode_block(good)[0].account == "a"
    with pytest.raises(CodecError, match="nested too deeply"):
        decode_block(block)


def test_iter_json_lines_reports_every_hostile_line_and_goes_on() -> None:
    lines = [
        b'{"type":"deposit","account":"a","amount":"1"}\n',
        b"[" * 10_000 + b"\n",
        b'{"type":"deposit","account":"a","amount":"1e999999"}\n',
        b'{"type":"deposit","account":"\xff"}\n',
        b"\n",
        _deposit("1", id="x" * (MAX_LINE_BYTES + 1)).encode() + b"\n",
        b'{"type":"deposit","account":"b","amount":"2"}\n',
    ]
    out = list(iter_json_lines(lines))
    assert [n for n, _ in out] == [1, 2, 3, 4, 6, 7]
    assert [type(x).__name__ for _, x in out] == [
        "Deposit",
        "CodecError",
        "CodecError",
        "CodecError",
        "CodecError",
        "Deposit",
    ]


def test_an_accepted_line_round_trips() -> None:
    line = _line(
        type="import_account",
        account="w",
        raw_usd="-40000",
        positions=[
            {"coin": "BTC", "szi": "0.5", "entry_px": "95000", "leverage": 20},
            {"coin": "@107", "szi": "-2", "entry_px": "3500", "leverage": 10, "cross": False, "raw_usd": "7700"},
        ],
    )
    event = decode_json(line)
    assert event.raw_usd == -40_000_000_000
    assert event.positions[1].szi == -200_000_000
    assert decode_json(encode_json(event)) == event
    assert decode_block(encode_block([event])) == [event]
