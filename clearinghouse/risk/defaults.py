"""The shipped parameters of the risk model (docs/risk-margin.md, "Shipped defaults"), as data.

BTC and ETH: moves of 0, +-5%, +-10%, +-15% at full weight and tail moves of +-30% counted at
0.35 (as SPAN counts its extreme move); every other underlying: 0, +-8%, +-16%, +-25% and tails
of +-50% at 0.35. Maintenance counts half the worst weighted loss, initial all of it; a 1%
floor on gross notional for alts, perp contingency 0.2% / 0.4% (MM / IM), basis 0.5% / 1% of
the matched carry (alts 1% / 2%), concentration 0.1 * net^2 / depth (depth 1B USDC for BTC and
ETH, 50M for alts), USDC and USDT loans 1% / 2%. BTC and ETH form one credit group at 70%;
UBTC, UETH and USOL are aliases of BTC, ETH and SOL."""

from __future__ import annotations

from events.schema import RiskCredit, RiskParams, RiskScenario, RiskUnit
from events.units import RATE, USD


def _pct(tenths_of_bp: int) -> int:
    """A rate given in 0.001% steps, in 1e-12."""
    return RATE * tenths_of_bp // 100_000


def _grid(moves_pct: tuple[int, ...], tail_pct: int) -> list[RiskScenario]:
    """Scenarios at the given moves (whole %) and +-tail at weight 0.35, in that order."""
    full = [RiskScenario(move=RATE * m // 100) for m in moves_pct]
    tail = RATE * 35 // 100
    return [*full, RiskScenario(move=-RATE * tail_pct // 100, weight=tail), RiskScenario(RATE * tail_pct // 100, tail)]


MAJOR = RiskUnit(
    scenarios=_grid((-15, -10, -5, 0, 5, 10, 15), 30),
    min_charge=0,
    perp_rate_mm=_pct(200),
    perp_rate_im=_pct(400),
    basis_rate_mm=_pct(500),
    basis_rate_im=_pct(1_000),
    conc=_pct(10_000),
    depth=1_000_000_000 * USD,
)
ALT = RiskUnit(
    scenarios=_grid((-25, -16, -8, 0, 8, 16, 25), 50),
    min_charge=_pct(1_000),
    perp_rate_mm=_pct(200),
    perp_rate_im=_pct(400),
    basis_rate_mm=_pct(1_000),
    basis_rate_im=_pct(2_000),
    conc=_pct(10_000),
    depth=50_000_000 * USD,
)

DEFAULTS = RiskParams(
    model="risk",
    mm_loss_factor=RATE // 2,
    im_loss_factor=RATE,
    units={"BTC": MAJOR, "ETH": MAJOR},
    default_unit=ALT,
    aliases={"UBTC": "BTC", "UETH": "ETH", "USOL": "SOL"},
    credits=[RiskCredit(units=["BTC", "ETH"], rate=RATE * 7 // 10)],
    loan_rate_mm=_pct(1_000),
    loan_rate_im=_pct(2_000),
)
