"""Storage fault injection: a faulty disk under the file log, the snapshot store and the runner.

`FaultyIO` implements `events.storage.Storage` over the real files and, driven by one
`random.Random(seed)`, injects at random operations: torn writes (a prefix written, then a
crash), short writes (less written than asked, which the caller must notice), bit flips in the
data written, ENOSPC, EROFS, and crashes. It remembers what every file held when it was last
synced; a crash puts each file back to that, keeping none, a prefix, or a zero-filled stretch
of what was written since (what a real disk may show after a power cut), closes every file
(releasing the logs' locks) and raises `SimulatedCrash`, a BaseException no code may swallow.
The machine then "reboots": a new `FaultyIO` with everything on disk taken as synced.

`run_fault_case(seed)` splits a small seeded stream into files and, with faults on, ingests
each and runs the log after each, through the real command line (`clearinghouse.edges.cli.main`,
in process), restarting after every crash and retrying after every error, as an operator
would (`repair` when told to). Then, with faults off, it checks that no command ever failed
other than with one clean line, that the input log holds every accepted event once and in
order (or, if a repair cut input, a prefix of them, with the repair saying so), and that the
final state digest and derived events equal an uninterrupted run's over the same input.

    python -m tests.sim.faults --seed 7
    python -m tests.sim.faults --seeds 0..999
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io as stringio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from clearinghouse.edges.cli import main as cli
from events import storage
from events.codec import encode_json
from events.eventlog import EventLog
from events.storage import OsStorage
from replay.logdir import LogDir
from replay.workload import GeneratorConfig, generate

KINDS = ("torn", "short", "bitflip", "enospc", "erofs", "crash")
FILES = 3  # input files per case
EVENTS = 150  # events per case
BLOCK = 8  # events per stored block: several records per ingest
RUN = ["--snapshot-every", "20", "--checkpoint-every", "30", "--keep", "3"]
RATE = 0.05  # chance that a write is faulty, while a case's budget lasts
OTHER_RATE = 0.01  # chance that another operation (open, fsync, rename, ...) is
BUDGET = 10  # faults per case at most
ATTEMPTS = 40  # tries of one command before the case counts as stuck


class SimulatedCrash(BaseException):
    """The machine lost power: nothing after this point happened."""


@dataclass
class Counts:
    cases: int = 0
    faults: Counter = field(default_factory=Counter)
    restarts: int = 0  # crashes recovered from
    loud: int = 0  # commands that stopped with a clean one-line error
    repairs: int = 0
    input_cut: int = 0  # cases where a repair cut accepted input (reported, and copied aside)
    failures: int = 0

    def add(self, other: Counts) -> None:
        for name in ("cases", "restarts", "loud", "repairs", "input_cut", "failures"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.faults.update(other.faults)


class FaultyIO:
    """A disk that fails as real ones do, at random operations (see the module's doc)."""

    def __init__(self, rng: random.Random, counts: Counts, budget: int) -> None:
        self._real = OsStorage()
        self._rng = rng
        self._counts = counts
        self.budget = budget
        self.dead = False
        self._fds: dict[int, Path] = {}  # open files (and folders), so a crash can close them
        self._synced: dict[Path, bytes | None] = {}  # what each file written held at its last sync

    # ---- the faults ---------------------------------------------------------------------------

    def _fault(self, kinds: tuple[str, ...], rate: float = OTHER_RATE) -> str | None:
        if self.dead:
            raise SimulatedCrash("the machine is down")
        if self.budget <= 0 or self._rng.random() >= rate:
            return None
        kind = self._rng.choice(kinds)
        self.budget -= 1
        self._counts.faults[kind] += 1
        if kind == "crash":
            self.crash()
        if kind in ("enospc", "erofs"):
            code = errno.ENOSPC if kind == "enospc" else errno.EROFS
            raise OSError(code, os.strerror(code))
        return kind

    def crash(self) -> None:
        """Every file back to what was synced, plus perhaps some of what was not; then down."""
        for path, synced in self._synced.items():
            now = path.read_bytes() if path.exists() else None
            if now == synced:
                continue
            kept = self._after_crash(synced, now)
            if kept is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(kept)
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        self.dead = True
        raise SimulatedCrash("power cut")

    def _after_crash(self, synced: bytes | None, now: bytes | None) -> bytes | None:
        old = synced or b""
        if now is None or not now.startswith(old):  # removed, truncated or rewritten: either state
            return synced if self._rng.random() < 0.5 else now
        extra = now[len(old) :]
        keep = self._rng.randrange(len(extra) + 1)
        way = self._rng.randrange(3)
        if way == 0:
            tail = b""
        elif way == 1:
            tail = extra[:keep]
        else:
            tail = extra[:keep] + bytes(len(extra) - keep)  # the size grew, the data never came
        if synced is None and not tail and self._rng.random() < 0.5:
            return None
        return old + tail

    # ---- Storage ------------------------------------------------------------------------------

    def _track(self, path: Path) -> None:
        if path not in self._synced and not path.is_dir():
            self._synced[path] = path.read_bytes() if path.exists() else None

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        if writes:
            self._fault(("enospc", "erofs", "crash"))
            self._track(Path(path))
        elif self.dead:
            raise SimulatedCrash("the machine is down")
        fd = self._real.open(path, flags, mode)
        self._fds[fd] = Path(path)
        return fd

    def _written(self, data: bytes | memoryview) -> tuple[bytes, int | None, str | None]:
        """The data to write (perhaps a bit flipped), how much of it to write for a torn or
        short write, and the fault."""
        data = bytes(data)
        kind = self._fault(KINDS, RATE)
        if kind == "bitflip" and data:
            bit = self._rng.randrange(len(data) * 8)
            flipped = bytearray(data)
            flipped[bit // 8] ^= 1 << (bit % 8)
            return bytes(flipped), None, kind
        if kind in ("torn", "short") and len(data) > 1:
            return data, self._rng.randrange(1, len(data)), kind
        return data, None, kind

    def write(self, fd: int, data: bytes | memoryview) -> int:
        payload, cut, kind = self._written(data)
        done = self._real.write(fd, payload if cut is None else payload[:cut])
        if kind == "torn":
            self.crash()
        return done

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        payload, cut, kind = self._written(data)
        done = self._real.pwrite(fd, payload if cut is None else payload[:cut], offset)
        if kind == "torn":
            self.crash()
        return done

    def fsync(self, fd: int) -> None:
        self._fault(("crash",))
        path = self._fds[fd]  # no real fsync: what is durable is what this disk says
        if path in self._synced:
            self._synced[path] = path.read_bytes() if path.exists() else None

    def truncate(self, fd: int, size: int) -> None:
        self._fault(("erofs", "crash"))
        self._real.truncate(fd, size)

    def close(self, fd: int) -> None:
        if fd in self._fds:  # after a crash every file is closed already
            del self._fds[fd]
            self._real.close(fd)

    def replace(self, source: Path, target: Path) -> None:
        self._fault(("erofs", "crash"))
        self._track(Path(target))
        self._real.replace(source, target)
        self._synced[Path(target)] = self._synced.pop(Path(source), None)

    def unlink(self, path: Path) -> None:
        self._fault(("erofs", "crash"))
        self._real.unlink(path)
        self._synced.pop(Path(path), None)

    def mkdir(self, path: Path) -> None:
        if not Path(path).is_dir():
            self._fault(("enospc", "erofs", "crash"))
        self._real.mkdir(path)

    def end_process(self) -> None:
        """A command ended: the files it left open close, as at a process's exit."""
        for fd in list(self._fds):
            self.close(fd)


# ---- one case ---------------------------------------------------------------------------------


@dataclass
class Command:
    """The outcome of one command line, run in process."""

    code: int | None  # None: the machine crashed under it
    out: str
    err: str


def _command(args: list[str]) -> Command:
    out, err = stringio.StringIO(), stringio.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli(["-q", *args])
    except SimulatedCrash:
        return Command(None, out.getvalue(), err.getvalue())
    return Command(code, out.getvalue(), err.getvalue())


def _clean(result: Command) -> str | None:
    """Why a failed command's report is not one clean line, if it is not."""
    lines = [line for line in result.err.splitlines() if line.startswith("clearinghouse: error:")]
    if "Traceback" in result.err or len(lines) != 1:
        return f"exit {result.code} without one clean error line: {result.err.strip()[-600:]!r}"
    return None


class Case:
    """One seeded case: its machine, its log and what it has seen."""

    def __init__(self, seed: int, root: Path) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.counts = Counts(cases=1)
        self.root = root
        self.log = LogDir(root / "log")
        self.disk = FaultyIO(self.rng, self.counts, BUDGET)
        self.cut_input = False

    def command(self, args: list[str], *, ingest: bool = False) -> str | None:
        """Runs a command until it succeeds, restarting after crashes and retrying after clean
        errors (repairing when told to); a failure description if it never does, or fails
        other than cleanly."""
        crashed_in_ingest = False
        for _ in range(ATTEMPTS):
            try:
                result = self.on_disk(args)
            except Exception as exc:  # anything escaping the command line is a traceback
                return f"{' '.join(args[:2])} raised {type(exc).__name__}: {exc}"
            if result.code == 0:
                return None
            if result.code is None:
                self.counts.restarts += 1
                self.disk = FaultyIO(self.rng, self.counts, self.disk.budget)
                crashed_in_ingest = ingest
                continue
            problem = _clean(result)
            if problem is not None:
                return f"{' '.join(args[:2])}: {problem}"
            self.counts.loud += 1
            if ingest and "already ingested" in result.err:
                return None if crashed_in_ingest or self._retried else f"first ingest refused: {result.err.strip()}"
            if "clearinghouse repair" in result.err:
                problem = self.repair()
                if problem is not None or (ingest and self.cut_input):  # accepted input was cut: the case ends
                    return problem
            elif "remove it and run again with the liquidation flags" in result.err:
                self.log.settings.unlink()  # what the message says to do: the flags are given again
            self._retried = ingest
        return f"{' '.join(args[:2])} did not succeed in {ATTEMPTS} attempts"

    _retried = False

    def on_disk(self, args: list[str], *, faults: bool = True) -> Command:
        """One command on this case's disk (without new faults if not `faults`)."""
        budget = self.disk.budget
        if not faults:
            self.disk.budget = 0
        previous = storage.install(self.disk)
        try:
            return _command(args)
        finally:
            storage.install(previous)
            if not faults:
                self.disk.budget = budget
            if not self.disk.dead:
                self.disk.end_process()

    def repair(self) -> str | None:
        """The operator runs the repair the error named (no new fault during it)."""
        self.counts.repairs += 1
        result = self.on_disk(["repair", "--log", str(self.log.root)], faults=False)
        if result.code != 0:
            return f"repair failed: {result.err.strip()}"
        if f"(log {self.log.events})" in result.out and not self.cut_input:
            self.cut_input = True
            self.counts.input_cut += 1
        return None


def _files(seed: int, root: Path) -> tuple[list[Path], list[list[object]]]:
    """The case's stream, split into FILES JSON-lines files at seeded points."""
    events = list(generate(GeneratorConfig(accounts=6, markets=2, events=EVENTS, seed=seed, pm_share=0.3)))
    rng = random.Random(seed ^ 0x5EED)
    cuts = sorted(rng.sample(range(1, len(events)), FILES - 1))
    parts = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    paths = []
    for k, part in enumerate(parts):
        path = root / f"part{k}.jsonl"
        path.write_bytes(b"".join(encode_json(e) + b"\n" for e in part))
        paths.append(path)
    return paths, parts


def _logged(path: Path, derived: bool = False) -> list[object]:
    with EventLog(path, derived=derived, readonly=True) as log:
        return [event for _, event in log.read()]


def _derived(log: LogDir) -> list[object]:
    return _logged(log.derived, derived=True) if log.derived.is_dir() else []


def _final(log: LogDir) -> Command:
    return _command(["run", "--log", str(log.root), "--json", *RUN])


def _reference(root: Path, log: LogDir) -> LogDir:
    """An uninterrupted run over the same input blocks as `log` holds, on a sound disk."""
    reference = LogDir(root / "reference")
    with EventLog(log.events, readonly=True) as source, EventLog(reference.events) as out:
        for _, events in source.blocks():
            out.append(events)
    return reference


def _check(case: Case, parts: list[list[object]]) -> str | None:
    """With faults off: the input is every accepted event once (or a reported prefix), and a
    final run ends where an uninterrupted run over it ends."""
    expected = [e for part in parts for e in part]
    try:
        logged = _logged(case.log.events)
    except Exception as exc:
        return f"the input log does not read after the case: {type(exc).__name__}: {exc}"
    if logged != expected[: len(logged)]:
        first = next((i for i, (a, b) in enumerate(zip(logged, expected, strict=False)) if a != b), len(expected))
        counts = f"{len(logged)} logged, {len(expected)} accepted"
        return f"the input log differs from the accepted events at seq {first} ({counts})"
    if len(logged) < len(expected) and not case.cut_input:
        missing = len(expected) - len(logged)
        return f"silent loss: {missing} accepted events missing from the input log, no repair cut them"
    final = _final(case.log)
    if final.code != 0:
        return f"the final run failed: {final.err.strip()}"
    reference = _reference(case.root, case.log)
    expected_run = _final(reference)
    if expected_run.code != 0:
        return f"the reference run failed: {expected_run.err.strip()}"
    digest, want = json.loads(final.out)["digest"], json.loads(expected_run.out)["digest"]
    if digest != want:
        return f"final digest {digest} differs from the uninterrupted run's {want}"
    if _derived(case.log) != _derived(reference):
        return "the derived events differ from the uninterrupted run's"
    return None


def run_fault_case(seed: int) -> str | None:
    """One case (see the module's doc): None if it held, else what went wrong."""
    return _run(seed, Counts())


def run_seeds(seeds: range, *, report: bool = False) -> tuple[Counts, dict[int, str]]:
    """Many cases: their totals and failures by seed (printed as they come with `report`)."""
    totals, failures = Counts(), {}
    for seed in seeds:
        failure = _run(seed, totals)
        if failure is not None:
            failures[seed] = failure
            if report:
                print(f"seed {seed}: {failure}\n  reproduce: python -m tests.sim.faults --seed {seed}", flush=True)
    return totals, failures


def _run(seed: int, totals: Counts) -> str | None:
    root = Path(tempfile.mkdtemp(prefix=f"faults-{seed}-"))
    case = Case(seed, root)
    try:
        paths, parts = _files(seed, root)
        failure = None
        for path in paths:
            ingest = ["ingest", str(path), "--log", str(case.log.root), "--block", str(BLOCK)]
            failure = case.command(ingest, ingest=True)
            failure = failure or case.command(["run", "--log", str(case.log.root), *RUN])
            if failure is not None or case.cut_input:  # accepted input was cut (loudly): stop here
                break
        case.disk.budget = 0  # from here on a sound disk (without real syncs)
        failure = failure or case.command(["run", "--log", str(case.log.root), *RUN])
        storage.install(case.disk)
        failure = failure or _check(case, parts)
    except Exception as exc:
        failure = f"the harness failed: {type(exc).__name__}: {exc}"
    finally:
        storage.install(OsStorage())
        shutil.rmtree(root, ignore_errors=True)
    case.counts.failures = int(failure is not None)
    totals.add(case.counts)
    return failure


def _seeds(text: str) -> range:
    first, _, last = text.partition("..")
    return range(int(first), int(last) + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.faults", description="storage fault injection cases")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="one case")
    which.add_argument("--seeds", type=_seeds, metavar="A..B", help="cases A to B, both included")
    args = parser.parse_args(argv)
    seeds = range(args.seed, args.seed + 1) if args.seed is not None else args.seeds
    started = time.perf_counter()
    totals, failed = run_seeds(seeds, report=True)
    faults = ", ".join(f"{kind} {totals.faults[kind]}" for kind in KINDS)
    print(
        f"cases {totals.cases}  faults injected {sum(totals.faults.values())} ({faults})  restarts {totals.restarts}  "
        f"loud reports {totals.loud}  repairs {totals.repairs} (input cut in {totals.input_cut})  "
        f"failures {totals.failures}  ({time.perf_counter() - started:.0f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
