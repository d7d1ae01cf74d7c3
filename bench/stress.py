"""A stress run at scale: a book of accounts through a 60-step crash under two configurations.

    python bench/stress.py            # 1,000,000 accounts (about 2.5 million positions), 20% PM
    python bench/stress.py --quick    # 10,000 accounts
    python bench/stress.py --book-only   # the book and its plain tick alone

The book is built directly from events, as bench/ticks.py builds its own (the generator's 50
markets, a market maker with a deep deposit on the other side of every trade), applied with
liquidation off: each account deposits 1,000-50,000 USDC and trades 1 to 4 cross markets (2.5
on average), 70% of the positions long; three accounts in ten are levered 3x-12x gross, the
rest 1x-3x. 20% of the accounts are in portfolio margin: they also deposit HYPE worth 50%-150% of
their USDC and borrow USDC for 40%-62% of its value (a lender supplies the pool), so the crash
takes some of them past their borrow thresholds.

The configurations' depth grows with the book: `--depth-per-10k` USDC (default the stress
default, 100,000) per 10,000 accounts, so a step's liquidations move prices as far at every size
and the work grows with the book, not with a deeper crash (a fixed depth under a million
accounts' selling would take every price to its floor in the first steps).

Measured, in one run:
- one plain price tick over the same book (every market moved by up to 0.05%, nobody near
  liquidation: the event a step of the scenario is), median of `--ticks`, on the trigger index;
- the stress run of `--scenario` (default oct-2025) under two configurations (the stress
  defaults with the book's depth, and a book ten times deeper with an unlimited backstop), one
  worker process each (`--workers`, default 2, runs them side by side): wall time, peak
  resident memory of the parent and of each worker, each step timed in its worker (the
  overshoot's replay after the last step apart): the median step, the median step that
  liquidated nobody (the trigger index keeps those cheap), each as a multiple of the plain tick.
The machine is shared and noisy: ratios within the run matter more than absolute figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
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

from ticks import MAKER_DEPOSIT, listing, rss_mib  # noqa: E402

from clearinghouse.digest import decode_state, encode_state  # noqa: E402
from clearinghouse.engine import Engine  # noqa: E402
from clearinghouse.state import LiquidationConfig, State  # noqa: E402
from events import schema as ev  # noqa: E402
from events.units import NTL_DIV, TOKEN, USD  # noqa: E402
from replay.stress.cascade import run  # noqa: E402
from replay.stress.configs import STRESS_LIQUIDATION, StressConfig  # noqa: E402
from replay.stress.scenario import BUILTINS, Scenario  # noqa: E402
from replay.workload import valid_price  # noqa: E402

# The market maker and the lender are named to sort before the accounts' addresses, so the
# accounts dict is in key order as built: msgspec's deterministic encoding (the state digest)
# sorts a dict whose first keys belong after a long sorted run in quadratic time (a book of
# 100,000 accounts after "maker" and "lender" took 42 s to encode, 50,000 10 s).
MAKER = "0maker"
LENDER = "0lender"
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


def timed_run(population: bytes, scenario: Scenario, config: StressConfig) -> dict[str, object]:
    """One configuration's run with each step timed (the overshoot's replay after the last step
    apart), and this process's peak resident memory."""
    steps: list[float] = []
    started = time.perf_counter()
    last = [started]

    def timed(k: int, total: int) -> None:
        now = time.perf_counter()
        steps.append(now - last[0])
        last[0] = now

    result = run(population, scenario, config, "hl-queue", progress=timed)
    ended = time.perf_counter()
    quiet = [t for t, s in zip(steps, result.steps[1:], strict=True) if not s.found_below]
    busy = [t for t, s in zip(steps, result.steps[1:], strict=True) if s.found_below]
    return {
        "config": result.config,
        "digest": result.digest,
        "wall_s": round(ended - started, 1),
        "steps_s": round(sum(steps), 1),
        "overshoot_s": round(ended - last[0], 1),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "step_s": steps,
        "quiet": quiet,
        "busiest_step_s": round(max(busy), 2) if busy else None,
        "liquidated_usdc": sum(s.liquidated_notional for s in result.steps) // USD,
        "found_below": result.total("found_below"),
        "adl_count": result.total("adl_count"),
        "bad_debt_usdc": result.total("bad_debt") // USD,
        "pool_shortfall_usdc": result.total("pool_shortfall") // USD,
        "overshoot_net_usdc": result.overshoot.net // USD,
        "converged": result.converged,
    }


_population = b""  # a worker's copy, inherited when it is forked


def _job(scenario: Scenario, config: StressConfig) -> dict[str, object]:
    return timed_run(_population, scenario, config)


def run_configs(population: bytes, scenario: Scenario, configs: list[StressConfig], workers: int) -> list[dict]:
    """Each configuration timed in a worker process of its own (forked with the population), at
    most `workers` at a time; in this process with `workers` 0."""
    global _population
    if workers <= 0:
        return [timed_run(population, scenario, c) for c in configs]
    _population = population
    with multiprocessing.get_context("fork").Pool(workers, maxtasksperchild=1) as pool:
        jobs = [pool.apply_async(_job, (scenario, c)) for c in configs]
        return [job.get() for job in jobs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 accounts")
    parser.add_argument("--accounts", type=int, help="accounts (default 1,000,000; --quick 10,000)")
    parser.add_argument("--scenario", default="oct-2025", choices=sorted(BUILTINS))
    parser.add_argument("--workers", type=int, default=2, help="worker processes (0: in this process)")
    parser.add_argument("--depth-per-10k", type=int, default=STRESS_LIQUIDATION.depth // USD, help="USDC")
    parser.add_argument("--ticks", type=int, default=200, help="plain ticks timed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--book-only", action="store_true", help="build the book and time the plain tick, no runs")
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
    built_mib = rss_mib()
    del state
    gc.collect()
    print(f"  built {accounts:,} accounts, {positions:,} positions in {build_s:.1f}s", file=sys.stderr)

    ticks = plain_ticks(population, args.ticks, args.seed)
    tick_us = statistics.median(ticks)
    gc.collect()
    print(f"  plain tick {tick_us / 1000:.1f} ms", file=sys.stderr)

    book_figures = {
        "command": command,
        "machine": machine,
        "accounts": accounts,
        "positions": positions,
        "pm_borrowers": pm,
        "rejected_in_build": rejected,
        "build_s": round(build_s, 1),
        "built_mib": round(built_mib),
        "population_mib": round(len(population) / 2**20),
        "plain_tick_us_median": round(tick_us, 1),
    }
    if args.book_only:
        peak_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps({**book_figures, "peak_mib": peak_mib}, indent=2))
        return
    scenario = BUILTINS[args.scenario]
    depth = max(1, args.depth_per_10k * USD * accounts // 10_000)
    book = msgspec.structs.replace(STRESS_LIQUIDATION, depth=depth)
    deep = msgspec.structs.replace(STRESS_LIQUIDATION, depth=depth * 10, loss_limit=None)
    configs = [StressConfig("stress-defaults", book), StressConfig("deep-unlimited", deep)]
    started = time.perf_counter()
    runs = run_configs(population, scenario, configs, args.workers)
    wall_s = time.perf_counter() - started
    print(f"  two configurations in {wall_s:.1f}s", file=sys.stderr)

    def ratio(seconds: list[float]) -> float | None:
        return round(statistics.median(seconds) * 1e6 / tick_us, 1) if seconds else None

    result = {
        **book_figures,
        "scenario": scenario.name,
        "steps": scenario.steps,
        "depth_usdc": depth // USD,
        "workers": args.workers,
        "two_configs_wall_s": round(wall_s, 1),
        "parent_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "runs": [
            {
                **{k: v for k, v in r.items() if k not in ("step_s", "quiet")},
                "step_s_median": round(statistics.median(r["step_s"]), 4),
                "step_over_tick": ratio(r["step_s"]),
                "quiet_steps": len(r["quiet"]),
                "quiet_step_over_tick": ratio(r["quiet"]),
            }
            for r in runs
        ],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
