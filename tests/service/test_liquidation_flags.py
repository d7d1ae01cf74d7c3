"""The liquidation flags as argparse gathers them (clearinghouse/edges/cli.py): `--market-depth`
repeated into one map on every command that takes the flags, and stress's repeated `--adl` kept
apart from the settings (each policy is a run of its own). In process: no subprocess needed."""

from __future__ import annotations

import msgspec
import pytest

from clearinghouse.edges.cli import _liquidation, build_parser
from clearinghouse.state import LiquidationConfig
from replay.stress.configs import STRESS_LIQUIDATION

GENERATE = ("stress", "--generate", "--scenario", "uniform")


def test_stress_policies_are_their_own_flag() -> None:
    args = build_parser().parse_args([*GENERATE, "--adl", "pro-rata", "--adl", "hl-queue"])
    assert args.adl_policies == ["pro-rata", "hl-queue"]
    # the settings every configuration starts from name no policy: the stress defaults as they are
    assert args.adl is None
    assert _liquidation(args, STRESS_LIQUIDATION) == STRESS_LIQUIDATION
    # run's single --adl is the log's policy, as before
    run = build_parser().parse_args(["run", "--log", "L", "--adl", "pro-rata"])
    assert _liquidation(run) == LiquidationConfig(adl="pro-rata")


@pytest.mark.parametrize("command", [("run", "--log", "L"), ("serve", "--log", "L"), ("demo",), GENERATE])
def test_market_depth_is_gathered_into_one_map(command: tuple[str, ...]) -> None:
    args = build_parser().parse_args([*command, "--market-depth", "SOL=2.5", "--market-depth", "BTC=20000"])
    assert args.market_depth == {"SOL": 2_500_000, "BTC": 20_000_000_000}
    config = _liquidation(args, LiquidationConfig(mode="impact"))
    assert config == LiquidationConfig(mode="impact", market_depth={"BTC": 20_000_000_000, "SOL": 2_500_000})
    # without the flag the settings have no map (nor bytes for one)
    plain = _liquidation(build_parser().parse_args(list(command)), LiquidationConfig(mode="impact"))
    assert plain.market_depth is msgspec.UNSET
