"""A stress run as JSON (the `--json` contract of `clearinghouse stress`, docs/stress.md):
amounts as decimal strings in USDC, marks in the price scale, rates and shares as decimals."""

from __future__ import annotations

from typing import Any

from events.units import PX_DECIMALS, USD_DECIMALS, format_decimal
from replay.stress.cascade import PHASES, PoolFigures, StepFigures, StressRun

SHARE_DECIMALS = 12  # utilisation and APYs are kept in 1e-12


def usdc(amount: int) -> str:
    return format_decimal(amount, USD_DECIMALS)


def _pool(pool: PoolFigures) -> dict[str, str]:
    return {
        "supplied": usdc(pool.supplied),
        "lent": usdc(pool.lent),
        "utilisation": format_decimal(pool.utilisation, SHARE_DECIMALS),
        "borrow_apy": format_decimal(pool.borrow_apy, SHARE_DECIMALS),
        "supplied_after_loss": usdc(pool.supplied_after_loss),
        "utilisation_after_loss": format_decimal(pool.utilisation_after_loss, SHARE_DECIMALS),
        "borrow_apy_after_loss": format_decimal(pool.borrow_apy_after_loss, SHARE_DECIMALS),
    }


def step_json(step: StepFigures) -> dict[str, Any]:
    return {
        "step": step.step,
        "ts": step.ts,
        "rounds": step.rounds,
        "converged": step.converged,
        "marks": {coin: format_decimal(px, PX_DECIMALS) for coin, px in step.marks.items()},
        "found_below": step.found_below,
        "still_below": step.still_below,
        "liquidated_notional": usdc(step.liquidated_notional),
        "liquidated_by_phase": {phase: usdc(step.liquidated[phase]) for phase in PHASES},
        "takeovers": step.takeovers,
        "liquidator_pnl": usdc(step.liquidator_pnl),
        "adl_count": step.adl_count,
        "adl_notional": usdc(step.adl_notional),
        "bad_debt": usdc(step.bad_debt),
        "pool_shortfall": usdc(step.pool_shortfall),
        "pools": {token: _pool(pool) for token, pool in step.pools.items()},
        "rejected": step.rejected,
    }


def run_json(run: StressRun) -> dict[str, Any]:
    """One run: totals first, then every step (step 0 is the population before the scenario)."""
    over = run.overshoot
    return {
        "config": run.config,
        "adl": run.adl,
        "scenario": run.scenario,
        "digest": run.digest,
        "accounts": run.accounts,
        "liquidated_notional": usdc(sum(s.liquidated_notional for s in run.steps)),
        "liquidated_by_phase": {phase: usdc(run.phase_total(phase)) for phase in PHASES},
        "found_below": run.total("found_below"),
        "takeovers": run.total("takeovers"),
        "liquidator_pnl": usdc(run.total("liquidator_pnl")),
        "adl_count": run.total("adl_count"),
        "adl_notional": usdc(run.total("adl_notional")),
        "bad_debt": usdc(run.total("bad_debt")),
        "pool_shortfall": usdc(run.total("pool_shortfall")),
        "overshoot": {"over": usdc(over.over), "under": usdc(over.under), "net": usdc(over.net)},
        "unapplied": [{"event": u.event, "subject": u.subject, "reason": u.reason} for u in run.unapplied],
        "converged": run.converged,
        "unconverged_steps": [s.step for s in run.steps if not s.converged],
        "steps": [step_json(s) for s in run.steps],
    }
