"""The liquidation flags as argparse gathers them (clearinghouse/edges/cli.py): stress's repeated
`--adl` kept apart from the settings (each policy is a run of its own). In process: no
subprocess needed."""

from __future__ import annotations

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
