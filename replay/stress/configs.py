"""What a stress run is run under: configurations (a name and liquidation settings) and the ADL
policies, each behind one function so the backtest's configuration files and further ADL
policies plug in here (docs/stress.md, "Configurations").

- `load_config(path, defaults)`: a configuration file. Today's format holds a name and
  liquidation settings in the CLI's units; the backtest's files (margin models, rule
  overrides) replace this function's body.
- `adl_policies()`: the ADL policies a run may ask for (`clearinghouse.adl_policies`);
  `with_policy(config, policy)` the liquidation settings that select one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from clearinghouse.adl_policies import POLICIES
from clearinghouse.liquidation import settings_error
from clearinghouse.state import DEFAULT_ADL, LiquidationConfig
from events.units import USD_DECIMALS, parse_decimal

# The stress defaults under every configuration (the flags of `run` override them): impact
# execution with a book of 100,000 USDC per 1% of price, so liquidations move marks, and a finite
# backstop: the liquidator absorbs at most 100 USDC of loss per takeover and declines deeper
# ones, which then go through ADL (docs/stress.md, "Defaults").
STRESS_LIQUIDATION = LiquidationConfig(mode="impact", depth=100_000_000_000, loss_limit=100_000_000)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class StressConfig:
    """One configuration: its name (as reports show it) and its liquidation settings."""

    name: str
    liquidation: LiquidationConfig


def adl_policies() -> tuple[str, ...]:
    """The ADL policies a run may ask for (`--adl`)."""
    return tuple(POLICIES)


def with_policy(config: LiquidationConfig, policy: str) -> LiquidationConfig:
    """The liquidation settings that run `policy` (one of `adl_policies()`)."""
    if policy not in adl_policies():
        raise ConfigError(f"unknown ADL policy {policy!r} (known: {', '.join(adl_policies())})")
    return msgspec.structs.replace(config, adl=msgspec.UNSET if policy == DEFAULT_ADL else policy)


# A configuration file's liquidation keys: the CLI flag's name -> (LiquidationConfig field, decimals of its unit)
SETTINGS = {
    "liquidation": ("mode", None),
    "slippage_bps": ("slippage_ppm", 2),
    "impact_bps": ("impact_ppm", 2),
    "depth": ("depth", USD_DECIMALS),
    "liquidator_loss_limit": ("loss_limit", USD_DECIMALS),
}


def load_config(path: str, defaults: LiquidationConfig) -> StressConfig:
    """A configuration file: `{"name": ..., "liquidation": {"impact_bps": "100", ...}}`, its
    settings over `defaults` (docs/stress.md); `liquidator_loss_limit` null for none."""
    try:
        body = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"configuration {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"configuration {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        return parse_config(body, Path(path).stem, defaults)
    except ConfigError as exc:
        raise ConfigError(f"configuration {path}: {exc}") from None


def parse_config(body: Any, default_name: str, defaults: LiquidationConfig) -> StressConfig:
    if not isinstance(body, dict) or set(body) - {"name", "liquidation"}:
        raise ConfigError('expected an object {"name": ..., "liquidation": {...}}')
    name = body.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ConfigError("name must be a non-empty string")
    given = body.get("liquidation", {})
    if not isinstance(given, dict):
        raise ConfigError("liquidation must be an object")
    changes: dict[str, Any] = {}
    for key, value in sorted(given.items()):
        if key not in SETTINGS:
            raise ConfigError(f"unknown liquidation setting {key!r} (settings: {', '.join(SETTINGS)})")
        field, decimals = SETTINGS[key]
        if decimals is None:
            if not isinstance(value, str):
                raise ConfigError(f"liquidation.{key} must be a string")
            changes[field] = value
        elif value is None and field == "loss_limit":
            changes[field] = None
        else:
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ConfigError(f"liquidation.{key} must be a decimal string, got {value!r}")
            try:
                changes[field] = parse_decimal(str(value), decimals)
            except ValueError as exc:
                raise ConfigError(f"liquidation.{key}: {exc}") from None
    liquidation = msgspec.structs.replace(defaults, **changes)
    problem = settings_error(liquidation)
    if problem:
        raise ConfigError(problem)
    if liquidation.mode in ("off", "external"):
        raise ConfigError(f"a stress run liquidates in the engine: mode {liquidation.mode!r} cannot be stressed")
    return StressConfig(name, liquidation)
