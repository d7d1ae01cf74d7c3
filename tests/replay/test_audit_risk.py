"""`replay audit` of a risk-model account (docs/risk-margin.md): the liquidation is explained on
the risk book's own figures, with no survival price from the rulebook's liquidation-price
formula (which describes cross and isolated positions, not a scan over scenarios)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.risk import SPEC_PARAMS
from tests.support.rulebook import BTC_TIERS, deposit, market, prices, set_mode, trade

pytestmark = pytest.mark.slow  # the command in subprocesses


def test_a_risk_liquidation_is_explained_on_the_risk_book(tmp_path: Path) -> None:
    lines = [
        market("BTC", 5, BTC_TIERS),
        prices(BTC="100000"),
        json.dumps({"type": "rules", "risk": SPEC_PARAMS}),
        deposit("a", "20000"),
        set_mode("a", "risk"),
        deposit("b", "1000000"),
        trade("BTC", "100000", "1", buyer="a", seller="b"),
        prices(BTC="90000"),
        prices(BTC="85000"),  # seq 8: equity 5,000 against MM 0.5 * 0.15 * 85,000 = 6,375
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    log = tmp_path / "log"
    cli("ingest", str(source), "--log", str(log))
    cli("run", "--log", str(log))
    result = json.loads(cli("replay", "audit", "--log", str(log), "--account", "a", "--json").stdout)
    (episode,) = result["liquidations"]
    (found,) = episode["before"]
    assert (found["scope"], found["equity"], found["maintenance"], found["survival"]) == (
        "risk",
        "5000.0",
        "6375.0",
        None,
    )
    assert episode["why"].startswith(
        "The risk book (equity against the risk model's maintenance, docs/risk-margin.md) was 1,375.0 USDC below"
    )
    assert "no survival price is computed" in episode["why"]
