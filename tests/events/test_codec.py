"""The public JSON-lines format and the msgpack blocks: the issue's examples, exact ints, errors."""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from events import schema as ev
from events.codec import CodecError, decode_block, decode_json, encode_block, encode_json, to_wire

EXAMPLES = {
    '{"type":"market","coin":"BTC","sz_decimals":5,"margin_tiers":[{"lower_bound":"0","max_leverage":40},'
    '{"lower_bound":"150000000","max_leverage":20}],"only_isolated":false}': ev.Market(
        coin="BTC", sz_decimals=5, margin_tiers=[ev.MarginTier(0, 40), ev.MarginTier(150_000_000_000_000, 20)]
    ),
    '{"type":"deposit","account":"a1","amount":"1000"}': ev.Deposit(account="a1", amount=1_000_000_000),
    '{"type":"withdraw","account":"a1","amount":"10"}': ev.Withdraw(account="a1", amount=10_000_000),
    '{"type":"transfer","from":"a1","to":"a2","amount":"5"}': ev.Transfer(from_="a1", to="a2", amount=5_000_000),
    '{"type":"set_leverage","account":"a1","coin":"BTC","leverage":20,"cross":true}': ev.SetLeverage(
        account="a1", coin="BTC", leverage=20, cross=True
    ),
    '{"type":"isolated_margin","account":"a1","coin":"ETH","delta":"-2.5"}': ev.IsolatedMargin(
        account="a1", coin="ETH", delta=-2_500_000
    ),
    '{"type":"prices","prices":{"BTC":{"mark":"97000.5","oracle":"97010"}}}': ev.Prices(
        prices={"BTC": ev.PricePoint(mark=9_700_050_000_000, oracle=9_701_000_000_000)}
    ),
    '{"type":"trade","coin":"BTC","px":"97000","sz":"0.5","buyer":"a1","seller":"a2","buyer_fee":"21.825",'
    '"seller_fee":"-7.275","tid":123}': ev.Trade(
        coin="BTC",
        px=9_700_000_000_000,
        sz=50_000_000,
        buyer="a1",
        seller="a2",
        buyer_fee=21_825_000,
        seller_fee=-7_275_000,
        tid=123,
    ),
    '{"type":"funding","coin":"BTC","rate":"0.0000125"}': ev.Funding(coin="BTC", rate=12_500_000),
    '{"type":"rules","name":"hl-2023"}': ev.Rules(name="hl-2023"),
}


@pytest.mark.parametrize("line", list(EXAMPLES))
def test_the_documented_lines_decode_to_exact_ints_and_round_trip(line: str) -> None:
    event = decode_json(line)
    assert event == EXAMPLES[line]
    assert decode_json(encode_json(event)) == event
    assert decode_block(encode_block([event])) == [event]


def test_decimals_render_back_as_strings_with_the_same_value() -> None:
    wire = to_wire(
        decode_json(
            '{"type":"trade","coin":"BTC","px":"97000","sz":"0.5","buyer":"a1","seller":"a2","buyer_fee":"21.825","seller_fee":"-7.275","tid":123}'
        )
    )
    assert (wire["px"], wire["sz"], wire["buyer_fee"], wire["seller_fee"]) == ("97000.0", "0.5", "21.825", "-7.275")


def test_ts_and_id_travel_with_every_event() -> None:
    event = decode_json('{"type":"deposit","account":"a1","amount":"1","ts":1700000000000,"id":"dep-1"}')
    assert (event.ts, event.id) == (1_700_000_000_000, "dep-1")
    assert json.loads(encode_json(event))["id"] == "dep-1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"type":"deposit","account":"a1","amount":"1.0000001"}', "$.amount: '1.0000001' has more than 6 decimals"),
        ('{"type":"deposit","account":"a1","amount":1.5}', "$.amount: expected a decimal string, got float"),
        ('{"type":"deposit","account":"a1","amount":"ten"}', "$.amount: not a decimal: 'ten'"),
        ('{"type":"deposit","account":"a1","amount":"NaN"}', "not a finite decimal"),
        ('{"type":"deposit","account":"a1"}', "missing required field `amount`"),
        (
            '{"type":"prices","prices":{"BTC":{"mark":"0.000000001"}}}',
            "$.prices.BTC.mark: '0.000000001' has more than 8 decimals",
        ),
        (
            '{"type":"prices","prices":{"BTC":{"mark":"1e-9"}}}',
            "$.prices.BTC.mark: not a decimal: '1e-9' (exponents are not allowed)",
        ),
        ('{"type":"teleport"}', "unknown event type 'teleport'"),
        ("[1,2]", "an event must be a JSON object"),
        ('{"type":', "not JSON"),
        ('{"type":"set_leverage","account":"a1","coin":"BTC","leverage":"20"}', "Expected `int`, got `str`"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(CodecError) as info:
        decode_json(line)
    assert message in str(info.value)


def test_a_block_from_a_newer_schema_is_refused() -> None:
    newer = msgspec.msgpack.encode({"v": ev.SCHEMA_VERSION + 1, "seq": 0, "events": []})
    with pytest.raises(CodecError, match="newer than this reader"):
        decode_block(newer)
    with pytest.raises(CodecError, match="bad block"):
        decode_block(b"\x00garbage")


@pytest.mark.parametrize(
    ("risk", "where"),
    [
        ({"mm_loss_factr": "0.6"}, "$.risk"),
        ({"units": {"BTC": {"scenarios": [{"move": "-0.1", "wieght": "1"}]}}}, "$.risk.units[...].scenarios[0]"),
    ],
)
def test_a_misspelt_risk_parameter_is_refused_not_left_at_its_default(risk: dict, where: str) -> None:
    """Other events ignore fields they do not know; a risk parameter spelt wrong would silently keep
    its default, so inside `risk` an unknown field is an error."""
    with pytest.raises(CodecError, match=rf"unknown field `\w+` - at `{re.escape(where)}`"):
        decode_json(json.dumps({"type": "rules", "risk": risk}))
