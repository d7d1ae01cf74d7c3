"""What a stress run is run under: configurations and ADL policies (docs/stress.md,
"Configurations").

- `load_config(path, defaults)`: a configuration file in the backtest's format
  (`replay.backtest.config`, docs/backtest.md): its margin model for which accounts, rule
  overrides, tiers and leverage cap are applied to the population as input events before step 1
  (`replay.backtest.stream.state_events`), its liquidation settings over the stress defaults.
- `adl_policies()`: the ADL policies a run may ask for (`clearinghouse.adl_policies`);
  `with_policy(config, policy)` the liquidation settings that select one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec

from clearinghouse.adl_policies import POLICIES
from clearinghouse.state import DEFAULT_ADL, LiquidationConfig
from replay.backtest.config import ConfigError, Plan, plan, read_config

__all__ = [
    "STRESS_LIQUIDATION",
    "ConfigError",
    "StressConfig",
    "adl_policies",
    "load_config",
    "mode_error",
    "with_policy",
]

# The stress defaults under every configuration (the flags of `run` override them): impact
# execution with a book of 100,000 USDC per 1% of price, so liquidations move marks, and a finite
# backstop: the liquidator absorbs at most 100 USDC of loss per takeover and declines deeper
# ones, which then go through ADL (docs/stress.md, "Configurations, defaults and ADL policies").
STRESS_LIQUIDATION = LiquidationConfig(mode="impact", depth=100_000_000_000, loss_limit=100_000_000)


@dataclass(frozen=True)
class StressConfig:
    """One configuration: its name (as reports show it), its liquidation settings, and what it
    changes in the population before step 1 (None: nothing, the flags' configuration)."""

    name: str
    liquidation: LiquidationConfig
    plan: Plan | None = None


def adl_policies() -> tuple[str, ...]:
    """The ADL policies a run may ask for (`--adl`)."""
    return tuple(POLICIES)


def with_policy(config: LiquidationConfig, policy: str) -> LiquidationConfig:
    """The liquidation settings that run `policy` (one of `adl_policies()`)."""
    if policy not in adl_policies():
        raise ConfigError(f"unknown ADL policy {policy!r} (known: {', '.join(adl_policies())})")
    return msgspec.structs.replace(config, adl=msgspec.UNSET if policy == DEFAULT_ADL else policy)


def mode_error(liquidation: LiquidationConfig) -> str | None:
    """Why these settings cannot be stressed, or None: a stress run needs the engine to execute
    the liquidations, which `off` and `external` leave to no one or to someone else."""
    if liquidation.mode in ("off", "external"):
        return f"a stress run liquidates in the engine: mode {liquidation.mode!r} cannot be stressed"
    return None


def load_config(path: str, defaults: LiquidationConfig) -> StressConfig:
    """A backtest configuration file, its liquidation settings over `defaults` (the stress
    defaults under the command's flags); a mode that leaves liquidations to someone else is
    refused, as the stress run needs the engine to execute them."""
    resolved = plan(read_config(Path(path)), defaults, 0, path)
    problem = mode_error(resolved.liquidation)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return StressConfig(resolved.name, resolved.liquidation, None if resolved.keeps_input else resolved)
