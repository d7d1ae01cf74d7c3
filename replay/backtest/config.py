"""A backtest configuration: which margin model which accounts use, rule overrides, liquidation
settings and risk-model parameters (docs/backtest.md), read from JSON and checked before any
event is replayed, so a bad configuration is one clear error and never a run of rejections.

`Config` is the file as written (decimal strings, the `run` command's liquidation flag names);
`Plan` is what the replay needs, resolved against the log: fixed-point values, the liquidation
settings over the log's own, and the `rules` event the configuration injects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from clearinghouse.liquidation import SETTING_RANGES, settings_error
from clearinghouse.models.registry import MODELS
from clearinghouse.risk.params import params_error
from clearinghouse.rules import RULE_SETS, PmRules, patched, pm_rules_error
from clearinghouse.state import LiquidationConfig
from events import schema as ev
from events.bounds import MAX_LEVERAGE, NAME_PATTERN
from events.codec import CodecError, decode_json
from events.units import USD_DECIMALS, DecimalError, format_decimal, parse_decimal

AS_LOGGED = "as-logged"  # the built-in configuration: the log's own settings and models
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a configuration file (a list of accounts may be long)
MAX_ACCOUNTS = 1_000_000  # accounts a configuration may list
BPS_DECIMALS = 2  # basis points with two decimals are parts per million, as the `run` flags take them
ConfigName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.\-]{1,64}\Z")]  # also its folder under --out
Account = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
LeverageCap = Annotated[int, msgspec.Meta(ge=1, le=MAX_LEVERAGE)]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and what is wrong."""


class Liquidation(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The `run` command's liquidation flags, by their names without dashes; amounts as decimal
    strings in the flags' units (bps, USDC). A setting left out keeps the log's own;
    `liquidator_loss_limit` null is no limit (the liquidator absorbs any loss); `market_depth`
    maps coins to their own depth (`--market-depth`; `{}`: none)."""

    liquidation: Literal["mark", "impact", "external", "off"] | None = None
    slippage_bps: str | None = None
    impact_bps: str | None = None
    depth: str | None = None
    liquidator_loss_limit: str | None | msgspec.UnsetType = msgspec.UNSET
    market_depth: dict[str, str] | None = None


# Liquidation flag name -> (LiquidationConfig field, decimals, unit).
_LIQUIDATION_FIELDS = {
    "slippage_bps": ("slippage_ppm", BPS_DECIMALS, "bps"),
    "impact_bps": ("impact_ppm", BPS_DECIMALS, "bps"),
    "depth": ("depth", USD_DECIMALS, "USDC"),
    "liquidator_loss_limit": ("loss_limit", USD_DECIMALS, "USDC"),
}


class Config(msgspec.Struct, forbid_unknown_fields=True):
    """One configuration file (docs/backtest.md, "Configuration")."""

    name: ConfigName
    model: str | None = None  # a registered mode name (`set_mode`); None: each account keeps the log's modes
    accounts: Literal["all", "portfolio"] | Annotated[list[Account], msgspec.Meta(max_length=MAX_ACCOUNTS)] = "all"
    rules: dict[str, Any] | None = None  # a `rules` event's fields (wire form): name, ltv, caps, pm
    tiers: dict[str, list[dict[str, Any]]] | None = None  # coin -> margin tiers (wire form), replacing the log's
    max_leverage: LeverageCap | None = None  # caps every tier of every market
    liquidation: Liquidation | None = None
    risk_params: str | dict[str, Any] | None = None  # a params file or inline object (the `risk` model's)


@dataclass(frozen=True)
class Plan:
    """A configuration resolved against a log: what the rewriter (`stream.Rewriter`) injects and
    rewrites, and the liquidation settings its engine starts with."""

    name: str
    liquidation: LiquidationConfig
    checkpoint_every: int
    model: str | None = None
    accounts: str | frozenset[str] = "all"
    rules: ev.Rules | None = None
    tiers: dict[str, list[ev.MarginTier]] | None = None
    max_leverage: int | None = None

    @property
    def keeps_input(self) -> bool:
        """Nothing injected or rewritten: the log's own input (as `as-logged`, or other
        liquidation settings only)."""
        return self.model is None and self.rules is None and self.tiers is None and self.max_leverage is None


def as_logged(liquidation: LiquidationConfig, checkpoint_every: int) -> Plan:
    return Plan(AS_LOGGED, liquidation, checkpoint_every)


def read_config(path: Path) -> Config:
    """The configuration in the file at `path`, checked against the format (not yet the log)."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size} bytes, more than the {MAX_CONFIG_BYTES} a configuration may hold")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc.strerror or exc}") from None
    try:
        config = msgspec.json.decode(data, type=Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc} (docs/backtest.md, configuration)") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None
    if config.name == AS_LOGGED:
        raise ConfigError(f"{path}: the name {AS_LOGGED!r} is the built-in configuration's; choose another")
    return config


def plan(config: Config, logged: LiquidationConfig, checkpoint_every: int, where: str) -> Plan:
    """`config` resolved against the log's liquidation settings and checkpoint interval; every
    value checked here (`where` names the file in the errors)."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {problem} (docs/backtest.md, configuration)")

    if config.model is not None and config.model not in MODELS:
        raise fail(f"unknown margin model {config.model!r} (known: {', '.join(MODELS)})")
    if config.model is None and config.accounts != "all":
        raise fail("`accounts` needs a `model` to apply to them")
    risk = _risk_params(config.risk_params, where, fail)
    rules = _rules_event(config.rules or {}, risk, fail) if config.rules is not None or risk is not None else None
    tiers = {coin: _tiers(coin, table, fail) for coin, table in sorted(config.tiers.items())} if config.tiers else None
    accounts = config.accounts if isinstance(config.accounts, str) else frozenset(config.accounts)
    return Plan(
        config.name,
        _liquidation(config.liquidation, logged, fail),
        checkpoint_every,
        config.model,
        accounts,
        rules,
        tiers,
        config.max_leverage,
    )


def _risk_params(given: str | dict[str, Any] | None, where: str, fail: Any) -> dict[str, Any] | None:
    """The risk-model parameters: inline, or read from a JSON file (relative to the
    configuration's folder)."""
    if given is None or isinstance(given, dict):
        return given
    path = Path(where).parent / given
    try:
        loaded = json.loads(path.read_bytes())
    except OSError as exc:
        raise fail(f"cannot read risk_params {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise fail(f"risk_params {path} is not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise fail(f"risk_params {path} must hold a JSON object")
    return loaded


def _rules_event(fields: dict[str, Any], risk: dict[str, Any] | None, fail: Any) -> ev.Rules:
    """The `rules` event the configuration injects (with the risk-model parameters as its
    `risk`), decoded by the codec (its bounds and units) and checked as the engine would check
    it, so it is never rejected in the replay."""
    if "type" in fields or "ts" in fields or "id" in fields or "risk" in fields:
        raise fail("`rules` holds a rules event's fields only (name, ltv, caps, pm; risk_params beside it)")
    if risk is not None:
        fields = {**fields, "risk": risk}
    try:
        event = decode_json(json.dumps({"type": "rules", **fields}))
    except CodecError as exc:
        raise fail(f"rules: {exc}") from None
    assert isinstance(event, ev.Rules)
    if event.name is not None and event.name not in RULE_SETS:
        raise fail(f"unknown rule set {event.name!r} (known: {', '.join(sorted(RULE_SETS))})")
    if event.name is None and not (event.ltv or event.caps or event.pm or event.risk):
        raise fail("`rules` needs a rule set name or parameters to change")
    problem = pm_rules_error(patched(PmRules(), event.ltv, event.caps, event.pm)) or (
        params_error(event.risk) if event.risk is not None else None
    )
    if problem:
        raise fail(f"rules: {problem}")
    return event


def _tiers(coin: str, table: list[dict[str, Any]], fail: Any) -> list[ev.MarginTier]:
    """A market's margin tiers in the wire form of a `market` event, decoded by the codec."""
    if not re.fullmatch(NAME_PATTERN, coin):
        raise fail(f"tiers: {coin!r} is not a coin name")
    market = {"type": "market", "coin": coin, "sz_decimals": 0, "margin_tiers": table}
    try:
        event = decode_json(json.dumps(market))
    except CodecError as exc:
        raise fail(f"tiers of {coin}: {str(exc).replace('$.margin_tiers', '$')}") from None
    assert isinstance(event, ev.Market)
    if not event.margin_tiers:
        raise fail(f"tiers of {coin}: at least one tier is needed")
    return event.margin_tiers


def _liquidation(given: Liquidation | None, logged: LiquidationConfig, fail: Any) -> LiquidationConfig:
    """The log's liquidation settings with the configuration's flags over them."""
    if given is None:
        return logged
    changes: dict[str, Any] = {}
    if given.liquidation is not None:
        changes["mode"] = given.liquidation
    if given.liquidator_loss_limit is None:
        changes["loss_limit"] = None
    for flag, (field, decimals, unit) in _LIQUIDATION_FIELDS.items():
        text = getattr(given, flag)
        if text is None or text is msgspec.UNSET:
            continue
        changes[field] = _setting(text, f"liquidation.{flag}", field, decimals, unit, fail)
    if given.market_depth is not None:
        changes["market_depth"] = _market_depth(given.market_depth, fail)
    config = msgspec.structs.replace(logged, **changes)
    problem = settings_error(config)
    if problem:
        raise fail(problem)
    return config


def _setting(text: str, where: str, field: str, decimals: int, unit: str, fail: Any) -> int:
    """A decimal string within the setting's range (`SETTING_RANGES`), in its fixed point."""
    low, high = SETTING_RANGES[field]
    span = f"from {format_decimal(low, decimals, 0)} to {format_decimal(high, decimals, 0)} {unit}"
    try:
        value = parse_decimal(text, decimals)
    except DecimalError as exc:
        raise fail(f"{where}: {exc}; expected a decimal string {span}") from None
    if not low <= value <= high:
        raise fail(f"{where}: expected {span}, got {text!r}")
    return value


def _market_depth(given: dict[str, str], fail: Any) -> dict[str, int]:
    """`market_depth`: coin -> its depth in USDC, each in the range of `depth` (the coins and
    their count are the core's to check, `settings_error`)."""
    return {
        coin: _setting(text, f"liquidation.market_depth.{coin}", "depth", USD_DECIMALS, "USDC", fail)
        for coin, text in sorted(given.items())
    }
