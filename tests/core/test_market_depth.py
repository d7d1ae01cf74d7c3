"""Per-market depth, a liquidation setting (docs/rules.md 5, docs/wire-format.md): its encoding
(absent when no market is named, so every existing state, settings file and digest keeps its
bytes), its bounds, and the codec and the engine refusing a map that breaks them.

The impact a depth gives a fill is worked by hand in tests/core/test_liquidation_rules.py."""

from __future__ import annotations

import msgspec
import pytest

from clearinghouse.digest import decode_state, encode_state
from clearinghouse.engine import Engine
from clearinghouse.liquidation import settings_error
from clearinghouse.state import LiquidationConfig, State
from events.bounds import MAX_MARKET_DEPTHS, MAX_USD
from replay.logdir import ConfigMismatch, LogDir, LogSettings, recorded_settings, settings_file

# The settings as they were encoded before the per-market depth existed: a map of the nine
# fields in declaration order, `adl` left out at its default.
DEFAULT_FIELDS = {
    "mode": "mark",
    "slippage_ppm": 0,
    "impact_ppm": 10_000,
    "depth": 1_000_000_000_000,
    "fee_ppm": 450,
    "partial_above": 100_000_000_000,
    "partial_ppm": 200_000,
    "cooldown_ms": 30_000,
    "loss_limit": None,
}


def test_the_encoding_is_unchanged_when_no_market_is_named() -> None:
    before = msgspec.msgpack.encode(DEFAULT_FIELDS)
    assert msgspec.msgpack.encode(LiquidationConfig()) == before
    # an empty map is no map: one config, one encoding
    assert LiquidationConfig(market_depth={}).market_depth is msgspec.UNSET
    assert msgspec.msgpack.encode(LiquidationConfig(market_depth={})) == before
    assert encode_state(State(liquidation=LiquidationConfig(market_depth={}))) == encode_state(State())


def test_a_depth_map_is_kept_in_coin_order_and_round_trips() -> None:
    given = {"SOL": 5, "BTC": 7}
    config = LiquidationConfig(market_depth=given)
    given["ETH"] = 9  # the config holds its own copy
    assert list(config.market_depth.items()) == [("BTC", 7), ("SOL", 5)]
    assert msgspec.msgpack.encode(config) == msgspec.msgpack.encode(
        {**DEFAULT_FIELDS, "market_depth": {"BTC": 7, "SOL": 5}}
    )
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(config), type=LiquidationConfig) == config
    # the depth an impact fill uses: the market's own, else the global one
    assert (config.depth_of("BTC"), config.depth_of("SOL"), config.depth_of("ETH")) == (7, 5, 1_000_000_000_000)


BAD_MAPS = [
    ({"BTC": 0}, "liquidation market depth of BTC must be between 0.000001 USDC and 10000000000 USDC"),
    ({"BTC": MAX_USD + 1}, "liquidation market depth of BTC must be between 0.000001 USDC and 10000000000 USDC"),
    ({"BTC perp": 5}, "liquidation market depth: 'BTC perp' is not a coin name"),
    (
        {f"C{i}": 1 for i in range(MAX_MARKET_DEPTHS + 1)},
        "liquidation market depth names 1001 markets, at most 1000",
    ),
]


@pytest.mark.parametrize(("depths", "reason"), BAD_MAPS)
def test_the_engine_refuses_a_bad_depth_map(depths: dict, reason: str) -> None:
    config = LiquidationConfig(market_depth=depths)
    assert settings_error(config) == reason
    with pytest.raises(ValueError, match="market depth"):
        Engine(State(liquidation=config))


@pytest.mark.parametrize(("depths", "reason"), BAD_MAPS)
def test_the_codec_refuses_a_bad_depth_map(tmp_path, depths: dict, reason: str) -> None:
    bad = State(liquidation=LiquidationConfig(market_depth=depths))  # built in code: not checked
    with pytest.raises(msgspec.ValidationError, match=r"\$\.liquidation\.market_depth"):
        decode_state(encode_state(bad))
    # a log's settings file holding it is refused as not a log's settings
    log = LogDir(tmp_path)
    log.settings.parent.mkdir(parents=True)
    log.settings.write_bytes(settings_file(LogSettings(LiquidationConfig(market_depth=depths))))
    with pytest.raises(ConfigMismatch, match="does not hold a log's settings"):
        recorded_settings(log)


def test_a_good_depth_map_is_accepted_everywhere(tmp_path) -> None:
    config = LiquidationConfig(mode="impact", market_depth={"BTC": 1, "HYPE": MAX_USD})
    assert settings_error(config) is None
    state = State(liquidation=config)
    assert decode_state(encode_state(state)).liquidation == config
    log = LogDir(tmp_path)
    log.settings.parent.mkdir(parents=True)
    log.settings.write_bytes(settings_file(LogSettings(config, 500)))
    assert recorded_settings(log) == (config, 500)
