"""A stress run at scale: a book of accounts through a 60-step crash under two configurations.

    python bench/stress.py            # 1,000,000 accounts (about 2.5 million positions), 20% PM
    python bench/stress.py --quick    # 10,000 accounts

The book is built directly from events, as bench/ticks.py builds its own (the generator's 50
markets, a market maker with a deep deposit on the other side of every trade), applied with
liquidation off: each account deposits 1,000-50,000 USDC and trades 1 to 4 cross markets (2.5
on average), 70% of the positions long; three accounts in ten are levered 3x-12x gross, the
rest 1x-3x. 20% of the accounts are in portfolio margin: they also deposit HYPE worth 50%-150% of
their USDC and borrow USDC for 40%-62% of its value (a lender supplies the pool), so the crash
takes some of them past their borrow thresholds.

Measured, in one run:
- one plain price tick over the same book (every market moved by up to 0.05%, nobody near
  liquidation: the event a step of the scenario is), median of `--ticks`, on the trigger index;
- the stress run of `--scenario` (default oct-2025) under two configurations (the stress
  defaults, and a book ten times deeper with an unlimited backstop), in `--workers` processes:
  wall time, peak resident memory of the parent and the workers;
- the first configuration again in this process with each step timed: the median step, the
  median step that liquidated nobody (the trigger index keeps those cheap), each as a multiple
  of the plain tick.
The machine is shared and noisy: ratios within the run matter more than absolute figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ticks import MAKER, MAKER_DEPOSIT, listing, rss_mib  # noqa: E402

from clearinghouse.digest import decode_state, encode_state  # noqa: E402
from clearinghouse.edges.stress import run_all  # noqa: E402
from clearinghouse.engine import Engine  # noqa: E402
from clearinghouse.state import LiquidationConfig, State  # noqa: E402
from events import schema as ev  # noqa: E402
from events.units import NTL_DIV, TOKEN, USD  # noqa: E402
from replay.stress.cascade import run  # noqa: E402
from replay.stress.configs import STRESS_LIQUIDATION, StressConfig  # noqa: E402
from replay.stress.scenario import BUILTINS  # noqa: E402
from replay.workload import valid_price  # noqa: E402

LENDER = "lender"
LENT = 5 * 10**9 * USD  # the lender's supply: enough for every borrow of a million accounts
USDC_CAPS = ev.Caps(supply=10**10, borrow=10**10, user_supply=10**10, user_borrow=10**8)  # whole USDC
PM_SHARE = 0.2
LEVERED_SHARE = 0.3
STEP_PPM = 500


def build(accounts: int, seed: int) -> tuple[State, int]:
    """The book (see the module docstring) and how many of its events were rejected."""
    rng = random.Random(seed)
    markets, prices = listing()
    engine = Engine(State(liquidation=LiquidationConfig(mode="off")))
    apply = engine.apply
    hype_px = prices.prices["HYPE"].mark
    head = [
        *markets,
        prices,
        ev.Token(token="HYPE", decimals=8),
        ev.Rules(caps={"USDC": USDC_CAPS}, pm=ev.PmParams(min_volume=0, min_value=0)),
        ev.Deposit(account=MAKER, amount=MAKER_DEPOSIT),
        ev.Deposit(account=LENDER, amount=LENT),
        ev.ClassTransfer(account=LENDER, amount=LENT, to_perp=False),
        ev.Supply(account=LENDER, amount=LENT),
    ]
    for event in head:
        derived = apply(event)
        assert not derived, derived
    cross = [(m.coin, 10 ** (8 - m.sz_decimals), prices.prices[m.coin].mark) for m in markets if not m.only_isolated]
    rejected = 0
    for i in range(accounts):
        name = f"0x{i:040x}"
        deposit = (1_000 + int(rng.random() * 49_001)) * USD
        events: list[ev.InputEvent] = [ev.Deposit(account=name, amount=deposit)]
        if rng.random() < PM_SHARE:
            hype_usd = deposit * (50 + int(rng.random() * 101)) // 100
            hype = hype_usd * NTL_DIV // hype_px // TOKEN * TOKEN
            borrow = hype * hype_px // NTL_DIV * (40 + int(rng.random() * 23)) // 100
            events += [
                ev.Deposit(account=name, amount=hype, token="HYPE"),
                ev.SetMode(account=name, mode="portfolio"),
                ev.Borrow(account=name, amount=borrow),
            ]
        levered = rng.random() < LEVERED_SHARE
        lo, hi = (300, 1_200) if levered else (100, 300)
        gross = deposit * (lo + int(rng.random() * (hi - lo + 1))) // 100
        held = rng.sample(cross, 1 + int(rng.random() * 4))
        for coin, lot, px in held:
            size = max(lot, gross // len(held) * NTL_DIV // px // lot * lot)
            long = rng.random() < 0.7
            buyer, seller = (name, MAKER) if long else (MAKER, name)
            events.append(ev.Trade(coin=coin, px=px, sz=size, buyer=buyer, seller=seller))
        for event in events:
            rejected += any(type(d) is ev.Rejected for d in apply(event))
    return engine.state, rejected


def tick(state: State, rng: random.Random) -> ev.Prices:
    """Every market moved by up to +-0.05% (what a step of the scenario sends, far smaller)."""
    points = {}
    for coin, market in sorted(state.markets.items()):
        step = int(rng.random() * (2 * STEP_PPM + 1)) - STEP_PPM
        mark = valid_price(market.mark * (1_000_000 + step) // 1_000_000, market.sz_decimals)
        points[coin] = ev.PricePoint(mark=mark, oracle=mark)
    return ev.Prices(prices=points)


def plain_ticks(population: bytes, count: int, seed: int) -> list[float]:
    """Microseconds per plain tick on the trigger index (stress defaults), each timed alone."""
    state = decode_state(population)
    state.liquidation = STRESS_LIQUIDATION
    engine = Engine(state)
    rng = random.Random(seed)
    engine.apply(ev.Prices(prices={}))  # builds the trigger index (not timed)
    out = []
    for _ in range(count):
        event = tick(state, rng)
        started = time.perf_counter_ns()
        derived = engine.apply(event)
        out.append((time.perf_counter_ns() - started) / 1_000)
        if any(type(d) is not ev.Rejected for d in derived):
            raise SystemExit("a plain tick liquidated: the book is meant to be far from liquidation at rest")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 accounts")
    parser.add_argument("--accounts", type=int, help="accounts (default 1,000,000; --quick 10,000)")
    parser.add_argument("--scenario", default="oct-2025", choices=sorted(BUILTINS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ticks", type=int, default=200, help="plain ticks timed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    accounts = args.accounts or (10_000 if args.quick else 1_000_000)
    command = "python bench/stress.py" + "".join(f" {a}" for a in sys.argv[1:])
    machine = f"{platform.machine()} {platform.system()} python {platform.python_version()}"
    print(f"{command}  [{machine}]", file=sys.stderr)

    started = time.perf_counter()
    state, rejected = build(accounts, args.seed)
    build_s = time.perf_counter() - started
    positions = sum(1 for a in state.accounts.values() for p in a.positions.values() if p.szi)
    pm = sum(1 for s in state.spot.values() if s.borrowed)
    population = encode_state(state)
    del state
    gc.collect()
    print(f"  built {accounts:,} accounts, {positions:,} positions in {build_s:.1f}s", file=sys.stderr)

    ticks = plain_ticks(population, args.ticks, args.seed)
    tick_us = statistics.median(ticks)
    gc.collect()

    scenario = BUILTINS[args.scenario]
    deep = msgspec.structs.replace(STRESS_LIQUIDATION, depth=STRESS_LIQUIDATION.depth * 10, loss_limit=None)
    configs = [StressConfig("stress-defaults", STRESS_LIQUIDATION), StressConfig("deep-unlimited", deep)]
    started = time.perf_counter()
    runs = run_all(population, scenario, configs, ["hl-queue"], workers=args.workers)
    wall_s = time.perf_counter() - started
    workers_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  two configurations in {wall_s:.1f}s", file=sys.stderr)

    steps: list[float] = []
    last = [time.perf_counter()]

    def timed(k: int, total: int) -> None:
        now = time.perf_counter()
        steps.append(now - last[0])
        last[0] = now

    again = run(population, scenario, configs[0], "hl-queue", progress=timed)
    assert again.digest == runs[0].digest, "the in-process run differs from the worker's"
    quiet = [t for t, s in zip(steps, again.steps[1:], strict=True) if not s.found_below]
    busy = [t for t, s in zip(steps, again.steps[1:], strict=True) if s.found_below]
    result = {
        "command": command,
        "machine": machine,
        "accounts": accounts,
        "positions": positions,
        "pm_borrowers": pm,
        "rejected_in_build": rejected,
        "build_s": round(build_s, 1),
        "population_mib": round(len(population) / 2**20),
        "plain_tick_us_median": round(tick_us, 1),
        "scenario": scenario.name,
        "steps": scenario.steps,
        "workers": args.workers,
        "two_configs_wall_s": round(wall_s, 1),
        "parent_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "parent_now_mib": round(rss_mib()),
        "worker_peak_mib": round(workers_mib),
        "step_s_median": round(statistics.median(steps), 4),
        "step_over_tick": round(statistics.median(steps) * 1e6 / tick_us, 1),
        "quiet_steps": len(quiet),
        "quiet_step_over_tick": round(statistics.median(quiet) * 1e6 / tick_us, 1) if quiet else None,
        "busiest_step_s": round(max(busy), 2) if busy else None,
        "runs": [
            {
                "config": r.config,
                "digest": r.digest,
                "liquidated_usdc": sum(s.liquidated_notional for s in r.steps) // USD,
                "found_below": r.total("found_below"),
                "adl_count": r.total("adl_count"),
                "bad_debt_usdc": r.total("bad_debt") // USD,
                "pool_shortfall_usdc": r.total("pool_shortfall") // USD,
                "converged": r.converged,
            }
            for r in runs
        ],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
