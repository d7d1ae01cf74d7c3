"""Ingest throughput of Hyperliquid node fills against the plain JSON-lines ingest of the same
events, in one run.

    python bench/hl_ingest.py            # 1,000,000 node fills (500,000 trades), 10,000 users
    python bench/hl_ingest.py --quick    # 100,000 node fills, 1,000 users

Writes a seeded `node_fills_by_block` file (blocks of 20 fills, both legs of each trade, positions
and startPositions consistent), then times `clearinghouse hl ingest` of it into a new log, and
`clearinghouse ingest` of the events that gave, written as JSON lines, into another. Both run as
the user runs them (a fresh interpreter each) and both check everything and append one batch.
Reports fills/s of the node ingest, events/s of the plain one, and their ratio. The machine is
shared and noisy: the ratio means more than the rates.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COINS = {"BTC": ("97000.0", "0.001"), "ETH": ("3400.0", "0.01"), "SOL": ("140.0", "0.1")}


def write_node_file(path: Path, fills: int, users: int, seed: int) -> None:
    rng = random.Random(seed)
    names = [f"0x{i:040x}" for i in range(1, users + 1)]
    held: dict[tuple[str, str], int] = {}  # in lots
    tid, t = 1, 1_764_059_598_111
    with open(path, "w") as out:
        block: list[list[object]] = []
        for _ in range(fills // 2):
            coin = rng.choice(list(COINS))
            px, lot = COINS[coin]
            lots = rng.randint(1, 20)
            buyer, seller = rng.sample(names, 2)
            for user, side in ((buyer, "B"), (seller, "A")):
                start = held.get((user, coin), 0)
                held[(user, coin)] = start + (lots if side == "B" else -lots)
                fill = {
                    "coin": coin,
                    "px": px,
                    "sz": _lots(lots, lot),
                    "side": side,
                    "time": t,
                    "startPosition": _lots(start, lot),
                    "dir": "Open Long",
                    "closedPnl": "0.0",
                    "hash": f"0x{tid:064x}",
                    "oid": tid,
                    "crossed": side == "B",
                    "fee": "0.01",
                    "tid": tid,
                    "feeToken": "USDC",
                }
                block.append([user, fill])
            tid += 1
            if len(block) == 20:
                line = {"local_time": "", "block_time": "", "block_number": tid, "events": block}
                out.write(json.dumps(line) + "\n")
                block, t = [], t + 70
        if block:
            out.write(json.dumps({"local_time": "", "block_time": "", "block_number": tid, "events": block}) + "\n")


def _lots(count: int, lot: str) -> str:
    places = len(lot.split(".")[1])
    value = count * int(lot.replace(".", "").lstrip("0") or "0")
    sign = "-" if value < 0 else ""
    digits = str(abs(value)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def timed(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "clearinghouse", "-q", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    fills, users = (100_000, 1_000) if args.quick else (1_000_000, 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        node = work / "node_fills_by_block"
        write_node_file(node, fills, users, args.seed)
        hl_seconds = timed("hl", "ingest", str(node), "--log", str(work / "hl"))
        events = subprocess.run(
            [sys.executable, "-m", "clearinghouse", "events", "--log", str(work / "hl")],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        plain = work / "events.jsonl"
        plain.write_bytes(events)
        count = events.count(b"\n")
        plain_seconds = timed("ingest", str(plain), "--log", str(work / "plain"))
    print(
        json.dumps(
            {
                "node_fills": fills,
                "events": count,
                "hl_ingest_seconds": round(hl_seconds, 2),
                "hl_ingest_fills_per_second": round(fills / hl_seconds),
                "plain_ingest_seconds": round(plain_seconds, 2),
                "plain_ingest_events_per_second": round(count / plain_seconds),
                "hl_over_plain_time": round(hl_seconds / plain_seconds, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
