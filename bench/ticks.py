"""The cost of a price tick against the number of accounts: trigger index against full scan.

    python bench/ticks.py            # 10,000, 100,000 and 1,000,000 accounts
    python bench/ticks.py --quick    # 10,000 and 100,000 accounts

For each size, a book is built directly from events: the 50 markets of the generator's listing,
one market-maker account with a deep deposit, and every account depositing 1,000-50,000 USDC
and trading 1 to 4 of the 45 cross markets (isolated-only ones are left out) against the market
maker, at 1x-3x gross leverage in all, so no account is anywhere near maintenance. The book is
applied with liquidation off (fills alone, fast); the same state is then driven by
`Engine()` (the trigger index, rebuilt from the state) and by `Engine(full_scan=True)` with
liquidation in its default (mark) mode, through `Prices` events that each move one random
market by a random-walk step of up to 5 bps. Every tick is timed on its own around
`engine.apply`; the figures are medians in microseconds (means alongside). No tick may derive
anything (nobody is near liquidation): the script fails if one does.

The full scan checks every account with a position on every tick, so at 1,000,000 accounts it
is timed on only a few ticks (`--full-ticks-1m`, default 3). Objects built for the book are
moved out of the garbage collector's generations (`gc.freeze`) before timing, as a long-running
engine's state would be after a few collections. The machine is shared and noisy: the ratios,
measured in the same run, matter more than the absolute figures.

Targets: the indexed tick at 1,000,000 accounts within 3x of its cost at 10,000; at 100,000
accounts the indexed tick at least 100x faster than the full scan.
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

from clearinghouse.engine import Engine  # noqa: E402
from clearinghouse.state import LiquidationConfig, State  # noqa: E402
from events.schema import Deposit, Market, PricePoint, Prices, Trade  # noqa: E402
from events.units import NTL_DIV, USD  # noqa: E402
from replay.workload import GeneratorConfig, generate, valid_price  # noqa: E402

MARKETS = 50
MAKER = "maker"
MAKER_DEPOSIT = 10**12 * USD  # deep enough to carry the other side of every account
STEP_PPM = 500  # a tick moves the mark by up to +-0.05%
WARMUP = 50


def listing() -> tuple[list[Market], Prices]:
    """The generator's 50 markets and their first prices (the head of any generated stream)."""
    head = list(generate(GeneratorConfig(accounts=2, markets=MARKETS, events=MARKETS + 1)))
    return head[:MARKETS], head[MARKETS]  # type: ignore[return-value]


def build(accounts: int, seed: int) -> State:
    """A book of `accounts` accounts with 1-4 open cross positions each, all against the maker,
    applied with liquidation off."""
    rng = random.Random(seed)
    markets, prices = listing()
    engine = Engine(State(liquidation=LiquidationConfig(mode="off")))
    apply = engine.apply
    for event in (*markets, prices, Deposit(account=MAKER, amount=MAKER_DEPOSIT)):
        assert not apply(event)
    cross = [(m.coin, 10 ** (8 - m.sz_decimals), prices.prices[m.coin].mark) for m in markets if not m.only_isolated]
    for i in range(accounts):
        name = f"0x{i:040x}"
        deposit = (1_000 + int(rng.random() * 49_001)) * USD
        if apply(Deposit(account=name, amount=deposit)):
            raise SystemExit(f"deposit of {name} rejected")
        held = rng.sample(cross, 1 + int(rng.random() * 4))
        gross = deposit * (100 + int(rng.random() * 201)) // 100  # 1x-3x of the deposit, in all
        for coin, lot, px in held:
            size = max(lot, gross // len(held) * NTL_DIV // px // lot * lot)
            buyer, seller = (name, MAKER) if rng.random() < 0.5 else (MAKER, name)
            if apply(Trade(coin=coin, px=px, sz=size, buyer=buyer, seller=seller)):
                raise SystemExit(f"trade of {name} rejected")
    return engine.state


def ticks(state: State, count: int, rng: random.Random) -> list[Prices]:
    """`count` one-market ticks continuing a random walk from the state's marks."""
    marks = {coin: market.mark for coin, market in state.markets.items()}
    decimals = {coin: market.sz_decimals for coin, market in state.markets.items()}
    coins = sorted(marks)
    out = []
    for _ in range(count):
        coin = coins[int(rng.random() * len(coins))]
        step = int(rng.random() * (2 * STEP_PPM + 1)) - STEP_PPM
        mark = valid_price(marks[coin] * (1_000_000 + step) // 1_000_000, decimals[coin])
        marks[coin] = mark
        out.append(Prices(prices={coin: PricePoint(mark=mark, oracle=mark)}))
    return out


def time_ticks(engine: Engine, events: list[Prices], warmup: int) -> list[float]:
    """Microseconds per tick, each tick timed on its own; the first `warmup` are not kept."""
    apply, clock = engine.apply, time.perf_counter_ns
    out = []
    for i, event in enumerate(events):
        started = clock()
        derived = apply(event)
        elapsed = clock() - started
        if derived:
            raise SystemExit(f"a tick derived {len(derived)} events: the book is meant to be far from liquidation")
        if i >= warmup:
            out.append(elapsed / 1_000)
    return out


def rss_mib() -> float:
    """Resident memory now (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(accounts: int, indexed_ticks: int, full_ticks: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed + accounts)
    started = time.perf_counter()
    built = build(accounts, seed)
    build_s = time.perf_counter() - started
    state = msgspec.structs.replace(built, liquidation=LiquidationConfig())  # default mark mode
    del built
    positions = sum(1 for a in state.accounts.values() for p in a.positions.values() if p.szi)
    started = time.perf_counter()
    indexed = Engine(state)
    index_s = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    rss = rss_mib()
    print(
        f"  {accounts:,} accounts: built in {build_s:.1f}s, index in {index_s:.1f}s, {rss:,.0f} MiB resident",
        file=sys.stderr,
    )
    fast = time_ticks(indexed, ticks(state, indexed_ticks + WARMUP, rng), WARMUP)
    del indexed
    scan = Engine(state, full_scan=True)
    full_warmup = 1 if full_ticks > 5 else 0
    started = time.perf_counter()
    slow = time_ticks(scan, ticks(state, full_ticks + full_warmup, rng), full_warmup)
    print(
        f"  {accounts:,} accounts: full scan {len(slow)} ticks in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    del scan, state
    gc.unfreeze()
    gc.collect()
    return {
        "accounts": accounts,
        "positions": positions,
        "build_s": round(build_s, 1),
        "index_build_s": round(index_s, 1),
        "rss_mib": round(rss),
        "indexed_ticks": len(fast),
        "indexed_us_median": round(statistics.median(fast), 1),
        "indexed_us_mean": round(statistics.fmean(fast), 1),
        "full_scan_ticks": len(slow),
        "full_scan_us_median": round(statistics.median(slow), 1),
        "full_scan_us_mean": round(statistics.fmean(slow), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 accounts only")
    parser.add_argument("--ticks", type=int, default=20_000, help="indexed ticks timed per size")
    parser.add_argument("--full-ticks-1m", type=int, default=3, help="full-scan ticks timed at 1,000,000 accounts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [(10_000, 300), (100_000, 40)] + ([] if args.quick else [(1_000_000, args.full_ticks_1m)])
    command = "python bench/ticks.py" + "".join(f" {a}" for a in sys.argv[1:])
    machine = (
        f"{platform.machine()} {platform.processor() or ''} {platform.system()} python {platform.python_version()}"
    )
    print(f"{command}  [{' '.join(machine.split())}]", file=sys.stderr)
    rows = [measure(accounts, args.ticks, full, args.seed) for accounts, full in sizes]
    by_size = {row["accounts"]: row for row in rows}
    small, mid, big = by_size[10_000], by_size[100_000], by_size.get(1_000_000)
    ratios: dict[str, float] = {
        "full_over_indexed_100k": round(mid["full_scan_us_median"] / mid["indexed_us_median"], 1),  # type: ignore[operator]
        "indexed_100k_over_10k": round(mid["indexed_us_median"] / small["indexed_us_median"], 2),  # type: ignore[operator]
        "full_scan_100k_over_10k": round(mid["full_scan_us_median"] / small["full_scan_us_median"], 1),  # type: ignore[operator]
    }
    if big is not None:
        ratios["indexed_1m_over_10k"] = round(big["indexed_us_median"] / small["indexed_us_median"], 2)  # type: ignore[operator]
        ratios["full_scan_1m_over_10k"] = round(big["full_scan_us_median"] / small["full_scan_us_median"], 1)  # type: ignore[operator]
    targets = {"full_over_indexed_100k >= 100": ratios["full_over_indexed_100k"] >= 100}
    if big is not None:
        targets["indexed_1m_over_10k <= 3"] = ratios["indexed_1m_over_10k"] <= 3
    result = {
        "command": command,
        "machine": " ".join(machine.split()),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "sizes": rows,
        "ratios": ratios,
        "targets_met": targets,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"command: {command}")
    print(f"machine: {result['machine']}")
    print(
        f"{'accounts':>10} {'positions':>10} {'build s':>8} {'RSS MiB':>8} {'indexed us/tick':>16} {'(mean, n)':>16} "
        f"{'full scan us/tick':>18} {'(mean, n)':>18}"
    )
    for row in rows:
        print(
            f"{row['accounts']:>10,} {row['positions']:>10,} {row['build_s']:>8} {row['rss_mib']:>8,}"
            f" {row['indexed_us_median']:>16,} "
            f"{'(' + format(row['indexed_us_mean'], ',') + ', ' + format(row['indexed_ticks'], ',') + ')':>16}"
            f" {row['full_scan_us_median']:>18,} "
            f"{'(' + format(row['full_scan_us_mean'], ',') + ', ' + str(row['full_scan_ticks']) + ')':>18}"
        )
    if big is not None:
        print(f"(full scan at 1,000,000 accounts: only {big['full_scan_ticks']} ticks timed)")
    for key, value in ratios.items():
        print(f"{key:>26}: {value:,}")
    for key, ok in targets.items():
        print(f"{'target':>26}: {key}: {'met' if ok else 'NOT met'}")
    print(f"{'peak RSS':>26}: {result['peak_rss_mib']:,} MiB")


if __name__ == "__main__":
    main()
