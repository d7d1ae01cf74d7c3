"""The `clearinghouse` command: one entry point, a subcommand per job (an edge, not the core)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import importlib.util
import json
import math
import os
import re
import shlex
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import msgspec
import structlog
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from clearinghouse.adl_policies import POLICIES
from clearinghouse.calculator import BookError
from clearinghouse.digest import encode_state, state_digest
from clearinghouse.edges import margin_cli
from clearinghouse.edges.backtest import backtest, plans_for, prepare_out
from clearinghouse.edges.httpserver import Limits
from clearinghouse.edges.jsonlog import configure_logging
from clearinghouse.edges.runner import LogBehind, RunResult, check_snapshots, repair, run
from clearinghouse.edges.stress import run_all
from clearinghouse.edges.tables import print_tables, table
from clearinghouse.engine import Engine
from clearinghouse.lending import USDC
from clearinghouse.liquidation import SETTING_RANGES, settings_error
from clearinghouse.overview import cents, grouped, overview
from clearinghouse.state import DEFAULT_ADL, LiquidationConfig, State
from clearinghouse.summary import clearinghouse_state
from events.adapters.hl_files import HlFileError
from events.adapters.hl_fills import contents_of
from events.adapters.hl_ingest import HlIngest, fill_legs
from events.adapters.hyperliquid import AdapterError, import_events, meta_markets
from events.bounds import NAME_PATTERN
from events.codec import CodecError, decode_json, encode_json, iter_json_lines
from events.eventlog import INGESTED, EventLog, Fingerprint, Ingested, blocks_of
from events.filelog import FileLog, LogCorruption, LogLocked
from events.schema import Checkpoint, LiquidationTriggered, Rejected, Trade, event_type
from events.units import NTL_DIV, USD_DECIMALS, format_decimal, parse_decimal
from replay.audit import audit
from replay.backtest.compare import compare
from replay.backtest.config import AS_LOGGED, ConfigError
from replay.backtest.meter import reason_group
from replay.history import HistoryError, diff, parse_time, state_at
from replay.hl_reconcile import reconcile, reconcile_html
from replay.logdir import ConfigMismatch, LogDir, SettingsConflict
from replay.snapshot import SnapshotError, SnapshotStore
from replay.stress import configs as stress_configs
from replay.stress import population as stress_population
from replay.stress.configs import STRESS_LIQUIDATION, StressConfig
from replay.stress.configs import ConfigError as StressConfigError
from replay.stress.output import run_json
from replay.stress.scenario import ScenarioError
from replay.stress.scenario import load as load_scenario
from replay.verify import verify
from replay.workload import GeneratorConfig, generate, write_jsonl
from replay.workload.config import MAX_BOOKS

BLOCK = 1000  # events per stored block
# The demo lets the liquidator absorb at most 100 USDC per takeover, so its crash shows auto-deleveraging.
DEMO_LIQUIDATION = LiquidationConfig(loss_limit=100_000_000)
TOKEN_ENV = "CLEARINGHOUSE_API_TOKEN"
TRACEBACK_ENV = "CLEARINGHOUSE_TRACEBACK"  # set (to anything) for the traceback of an unexpected error


class UserError(Exception):
    """A problem the user can fix (missing file, bad input); printed without a traceback."""


# ---- progress -----------------------------------------------------------------------------------


class EventRate(ProgressColumn):
    """Events per second, as rich measures them over the last updates."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} ev/s" if task.speed else "")


@contextmanager
def _progress(args: argparse.Namespace, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr (a terminal only; -q turns it off) for a `progress(done, total)` callback."""
    if args.quiet or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), EventRate(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


# ---- helpers ------------------------------------------------------------------------------------

OURS = ("clearinghouse", "events", "replay")  # a module of these missing is a broken install, not an extra


def _optional(module: str, extra: str, command: str) -> ModuleType:
    """A module that needs an optional dependency (pyproject.toml's extras): its import, or one
    line naming the package missing and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]  # the package to install, not its submodule
        if not missing or missing in OURS:
            raise
        raise UserError(
            f"`clearinghouse {command}` needs {missing}, which is not installed: "
            f"pip install 'clearinghouse[{extra}]' (from a clone: pip install -e '.[{extra}]')"
        ) from None


def _log_dir(path: str, must_exist: bool = True) -> LogDir:
    log = LogDir(Path(path))
    if must_exist and not log.exists():
        raise UserError(f"{path} is not a log directory (no events/ inside); create one with `clearinghouse ingest`")
    return log


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _catch_up(args: argparse.Namespace) -> RunResult:
    """The state with every logged event applied (in memory; `run` persists it). A log never run
    is replayed from its first event, with the settings a first `run` would fix: said on stderr."""
    log = _log_dir(args.log)
    if not SnapshotStore(log.state).paths():
        with EventLog(log.events, readonly=True) as events:
            count = events.next_seq
        settings = (
            f"the log's liquidation settings ({log.settings})"
            if log.settings.exists()
            else "the default liquidation settings (--liquidation mark)"
        )
        print(
            f"note: {log.root} has no snapshot (never run): replaying its {count:,} events in memory with "
            f"{settings}; `clearinghouse run --log {log.root}` applies them once and keeps the state "
            "(pass it the liquidation flags you want)",
            file=sys.stderr,
        )
    with _progress(args, "replaying") as progress:
        return run(log, persist=False, progress=progress)


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from `low` (to `high`), refused with the range otherwise."""
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {text!r}")
        return value

    return parse


def _fixed(decimals: int, low: int, high: int, unit: str) -> Callable[[str], int]:
    """An argparse type: a decimal (at most `decimals` places) as an int of 10**-decimals units,
    from `low` to `high` units."""
    span = f"from {format_decimal(low, decimals, 0)} to {format_decimal(high, decimals, 0)} {unit}"

    def parse(text: str) -> int:
        try:
            value = parse_decimal(text, decimals)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}; expected {span}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {span}, got {text!r}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}")
    return value


class SettingFlag(NamedTuple):
    """A liquidation setting's flag: its argparse dest and how a value is written back in the flag's unit;
    `each`: a map, the flag given once per entry (`shown` writes one entry)."""

    flag: str
    dest: str
    shown: Callable[[Any], str]
    each: bool = False


def _usdc(micro: int) -> str:
    return format_decimal(micro, USD_DECIMALS, 0)


BPS_DECIMALS = 2  # basis points with two decimals are parts per million
LIQUIDATION_FLAGS = {  # LiquidationConfig field -> its flag
    "mode": SettingFlag("--liquidation", "liquidation", str),
    "slippage_ppm": SettingFlag("--slippage-bps", "slippage_bps", lambda ppm: format_decimal(ppm, BPS_DECIMALS, 0)),
    "impact_ppm": SettingFlag("--impact-bps", "impact_bps", lambda ppm: format_decimal(ppm, BPS_DECIMALS, 0)),
    "depth": SettingFlag("--depth", "depth", _usdc),
    "loss_limit": SettingFlag("--liquidator-loss-limit", "liquidator_loss_limit", _usdc),
    "adl": SettingFlag("--adl", "adl", lambda name: DEFAULT_ADL if name is msgspec.UNSET else name),
    "market_depth": SettingFlag("--market-depth", "market_depth", lambda item: f"{item[0]}={_usdc(item[1])}", True),
}


def _liquidation(args: argparse.Namespace, defaults: LiquidationConfig | None = None) -> LiquidationConfig | None:
    """The settings the flags ask for, over `defaults`; None when no flag (and no default) is given
    (an existing log then keeps its own)."""
    given = {field: getattr(args, flag.dest) for field, flag in LIQUIDATION_FLAGS.items()}
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes and defaults is None:
        return None
    config = msgspec.structs.replace(defaults or LiquidationConfig(), **changes)
    problem = settings_error(config)
    if problem:
        raise UserError(f"{problem} (docs/wire-format.md, liquidation settings)")
    return config


def _as_flag(field: str, value: Any) -> str:
    """One setting as the flag that asks for it ("no --liquidator-loss-limit" for none), or the
    field itself for a setting no flag sets."""
    flag = LIQUIDATION_FLAGS.get(field)
    if flag is None:
        return f"{field}={value}"
    if value is None or (flag.each and value is msgspec.UNSET):
        return f"no {flag.flag}"
    if flag.each:
        return " ".join(f"{flag.flag} {flag.shown(item)}" for item in value.items())
    return f"{flag.flag} {flag.shown(value)}"


def _conflict_message(exc: SettingsConflict, args: argparse.Namespace) -> str:
    """The settings conflict in the CLI's units: which flags differ from the log's, and the
    commands that run the same events under the settings asked for, in a copy of the log."""
    differ = [f for f in msgspec.structs.asdict(exc.fixed) if getattr(exc.fixed, f) != getattr(exc.asked, f)]
    conflicts = "; ".join(
        f"{_as_flag(f, getattr(exc.asked, f))} asked, the log has {_as_flag(f, getattr(exc.fixed, f))}" for f in differ
    )
    default = LiquidationConfig()
    flags = " ".join(
        _as_flag(f, getattr(exc.asked, f))
        for f in LIQUIDATION_FLAGS
        if getattr(exc.asked, f) != getattr(default, f) and getattr(exc.asked, f) is not None
    )
    said = (
        f"{exc.root} was run with liquidation settings that stay fixed (a replay decides as its first run did; "
        f"a flag not given takes its default): {conflicts}"
    )
    if getattr(args, "kafka", None):
        return (
            f"{said}. To run the same events under other settings, serve them with a new --state DIR "
            "and --derived-topic"
        )
    copy = Path(f"{exc.root}-copy")
    again = shlex.join(["clearinghouse", args.command, "--log", str(copy)]) + (f" {flags}" if flags else "")
    return (
        f"{said}. To run the same events under other settings, copy its input into a new log: "
        f"`{shlex.join(['clearinghouse', 'copy', '--log', str(exc.root), '--to', str(copy)])}`, "
        f"then `{again}`; without flags, `run` and `serve` take the log's own"
    )


# ---- commands -----------------------------------------------------------------------------------


# What to do about a storage error, by errno: `run` and `ingest` say it in one line.
STORAGE_ADVICE = {
    errno.ENOSPC: "free some space, then run the command again",
    errno.EDQUOT: "the disk quota is used up: free some space, then run the command again",
    errno.EROFS: "the folder is read-only: make it writable (or copy the log to a writable place), then run again",
    errno.EACCES: "no permission to write there: fix the folder's owner or permissions, then run again",
    errno.EPERM: "no permission to write there: fix the folder's owner or permissions, then run again",
    errno.EIO: "the disk reported an I/O error: check the disk, then run again",
}


@contextmanager
def _storage_errors(log: LogDir, outcome: str | Callable[[], str]) -> Iterator[None]:
    """A storage problem as one line naming it and what to do (`outcome`: what became of the
    work in hand, or a function saying it when asked), never a traceback."""
    try:
        yield
    except (LogLocked, LogBehind) as exc:
        raise UserError(str(exc)) from None
    except LogCorruption as exc:
        repair = f"`clearinghouse repair --log {log.root}` cuts the damaged part (keeping a copy)"
        raise UserError(f"{exc}. Nothing was changed: {repair}") from None
    except OSError as exc:
        advice = STORAGE_ADVICE.get(exc.errno or 0)
        if advice is None:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        said = outcome if isinstance(outcome, str) else outcome()
        raise UserError(f"{os.strerror(exc.errno or 0)}{where} writing under {log.root}; {said}: {advice}") from None


def _check_lines(source: Path, rejects_path: Path, counts: set[int]) -> tuple[Fingerprint, dict[int, str], int]:
    """Reads the whole file once before anything is written: reports bad lines (stderr and the
    rejects file) and digests the good events, noting the digest after each of `counts`
    events. Returns the digest, the noted ones and the count of bad lines. A line the decoder
    fails on other than with a clean rejection stops the ingest, naming the line."""
    digest, prefixes, bad = Fingerprint(), {}, 0
    rejects = None
    try:
        with open(source, "rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    event = decode_json(line)
                except CodecError as exc:
                    if bad < 20:
                        print(f"{source}:{number}: {exc}", file=sys.stderr)
                    bad += 1
                    if rejects is None:
                        rejects_path.parent.mkdir(parents=True, exist_ok=True)
                        rejects = open(rejects_path, "a", encoding="utf-8")
                    text = line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")  # as it was, to fix and retry
                    reject = {"file": str(source), "line": number, "error": str(exc), "text": text}
                    rejects.write(json.dumps(reject) + "\n")
                    continue
                except Exception as exc:  # a decoder bug: the file must not land in part
                    failed = f"the decoder failed on this line ({type(exc).__name__}: {exc})"
                    raise UserError(f"{source}:{number}: {failed}; nothing was ingested") from None
                digest.add(event)
                if digest.count in counts:
                    prefixes[digest.count] = digest.hexdigest()
    finally:
        if rejects is not None:
            rejects.close()
    if bad > 20:
        print(f"... and {bad - 20} more bad lines", file=sys.stderr)
    return digest, prefixes, bad


def _good_events(source: Path, expected: str) -> Iterator[Any]:
    """The good events of the file, read again to be appended; the file must not have changed
    since it was checked (else the ingest is cut back)."""
    digest = Fingerprint()
    with open(source, "rb") as lines:
        for _, item in iter_json_lines(lines):
            if not isinstance(item, CodecError):
                digest.add(item)
                yield item
    if digest.hexdigest() != expected:
        raise UserError(f"{source} changed while it was being ingested; nothing was ingested")


def cmd_ingest(args: argparse.Namespace) -> int:
    """Checks the whole file, then appends its good events as one batch that lands whole or not
    at all; refuses events an earlier ingest appended unless --allow-duplicate."""
    source = Path(args.file)
    if not source.is_file():
        raise UserError(f"no such file: {source}")
    if args.block < 1:
        raise UserError(f"--block must be at least 1, got {args.block}")
    log = _log_dir(args.log, must_exist=False)
    rejects_path = Path(args.rejects) if args.rejects else log.root / "rejects.jsonl"
    landed: list[str] = []  # said once the batch has landed: a later error (closing) does not undo it

    def outcome() -> str:
        return landed[0] if landed else "nothing was ingested"

    with _storage_errors(log, outcome), EventLog(log.events) as out:
        check_snapshots(log, out.next_seq)
        digest, prefixes, bad = _check_lines(source, rejects_path, out.counts())
        if bad and args.strict:
            raise UserError(
                f"{source}: {bad} bad lines (listed above, and with their text in {rejects_path}); "
                "nothing was ingested (--strict): fix them, or ingest without --strict to skip them"
            )
        good, first = digest.count, out.next_seq
        earlier = out.already_in({**prefixes, good: digest.hexdigest()}) if good else None
        if earlier is not None and not args.allow_duplicate:
            which = f"its {good} events were"
            if earlier.count != good:
                which = f"the first {earlier.count} of its {good} events were"
            raise UserError(
                f"{source}: {which} already ingested, as seqs {earlier.first}..{earlier.first + earlier.count - 1} "
                f"(from {earlier.source}); nothing was ingested. To append them again, pass --allow-duplicate"
            )
        if good:
            blocks = blocks_of(_good_events(source, digest.hexdigest()), args.block)
            out.append_whole(blocks, Ingested(first, good, digest.hexdigest(), str(source)))
            seqs = f"{first}..{first + good - 1}"
            landed.append(f"the {good} events were ingested, as seqs {seqs}, but the log did not close cleanly")
    rejects = str(rejects_path) if bad else None
    summary = {"ingested": good, "first_seq": first, "rejected_lines": bad, "rejects_file": rejects}
    summary["next_seq"] = out.next_seq
    if args.json:
        _print_json(summary)
    else:
        seqs = f" as seqs {first}..{out.next_seq - 1}" if good else ""
        where = f" -> {rejects_path}" if bad else ""
        print(f"ingested {good} events into {log.events}{seqs} (next seq {out.next_seq}); {bad} bad lines{where}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    log = _log_dir(args.log)
    with _storage_errors(log, "the repair stopped part way; run it again"):
        done = repair(log)
    if args.json:
        _print_json({"repaired": done})
    elif done:
        print("\n".join(done))
        print(f"then: clearinghouse run --log {log.root}")
    else:
        print(f"nothing to repair in {log.root}: every log reads whole and no snapshot is ahead of the input")
    return 0


def _holds_a_log(log: LogDir) -> bool:
    """Whether the folder holds input events or state (a copy that failed leaves neither)."""
    if not log.exists():
        return False
    with EventLog(log.events, readonly=True) as events:
        return events.next_seq > 0 or log.state.exists()


def cmd_copy(args: argparse.Namespace) -> int:
    """Copies a log's input (its events, in the same blocks, and the notes of what was ingested)
    into a new log, all or none: the same events, to run under other settings."""
    source = _log_dir(args.log)
    target = _log_dir(args.to, must_exist=False)
    if target.root.resolve() == source.root.resolve() or _holds_a_log(target):
        raise UserError(f"{target.root} already holds a log; give --to a new folder")
    with EventLog(source.events, readonly=True) as events:
        end = events.next_seq
        digest = Fingerprint()
        for _, event in events.read(0, end):
            digest.add(event)
        notes = [note for note in events.notes() if note.first < end]
        with _storage_errors(target, "nothing was copied"), EventLog(target.events) as out:
            blocks = (block for _, block in events.blocks(0, end))
            out.append_whole(blocks, Ingested(0, end, digest.hexdigest(), f"a copy of {source.events}"))
            if notes:
                with FileLog(target.events / INGESTED) as kept:
                    kept.append_many([msgspec.msgpack.encode(note) for note in notes])
    summary = {"copied": end, "log": str(target.root)}
    if args.json:
        _print_json(summary)
    else:
        print(
            f"copied {end:,} events from {source.events} into {target.events}; "
            f"apply them with `clearinghouse run --log {target.root}` and the liquidation flags you want"
        )
    return 0


def _persistence(args: argparse.Namespace) -> dict[str, int]:
    return {"snapshot_every": args.snapshot_every, "checkpoint_every": args.checkpoint_every, "keep": args.keep}


def cmd_run(args: argparse.Namespace) -> int:
    log = _log_dir(args.log)
    kept = "what was applied up to the last snapshot is kept, and a new run goes on from there"
    with _storage_errors(log, kept), _progress(args, "applying") as progress:
        result = run(
            log,
            progress=progress,
            liquidation=_liquidation(args),
            full_scan=args.full_scan,
            snapshot_now=args.snapshot_now,
            **_persistence(args),
        )
    digest = state_digest(result.state)
    rate = result.applied / result.seconds if result.seconds else 0.0
    summary = {
        "applied": result.applied,
        "derived": result.derived,
        "seq": result.state.next_seq - 1,
        "digest": digest,
        "events_per_second": round(rate),
    }
    if args.json:
        _print_json(summary)
    else:
        print(
            f"applied {result.applied} events ({result.derived} derived) up to seq {summary['seq']} at {rate:,.0f} "
            f"ev/s\nstate digest {digest}"
        )
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    _state_output(args, _catch_up(args).state)
    return 0


def _input_seq(derived: Any) -> int:
    """The input seq a derived event came from: a rejection's or checkpoint's `seq`, else its `cause`."""
    return derived.seq if isinstance(derived, (Rejected, Checkpoint)) else derived.cause


def cmd_events(args: argparse.Namespace) -> int:
    """Input events as on the wire from input seq --from; derived events whose input seq is at
    least --from, each with its `input_seq` and its own `derived_seq` (docs/operations.md)."""
    log = _log_dir(args.log)
    path = log.derived if args.derived else log.events
    if not path.is_dir():
        return 0
    out = sys.stdout.buffer
    with EventLog(path, derived=args.derived, readonly=True) as events:
        if args.derived:
            lines: Iterator[tuple[int, Any]] = ((s, e) for s, e in events.read() if _input_seq(e) >= args.start)
        else:
            lines = events.read(args.start)
        for count, (seq, event) in enumerate(lines):
            if args.limit is not None and count >= args.limit:
                break
            line = encode_json(event)
            if args.derived:  # the wire object with two more keys
                line = line[:-1] + b',"input_seq":%d,"derived_seq":%d}' % (_input_seq(event), seq)
            out.write(line + b"\n")
    return 0


def _config(args: argparse.Namespace) -> GeneratorConfig:
    config = GeneratorConfig(
        accounts=args.accounts,
        markets=args.markets,
        events=args.events,
        seed=args.seed,
        crash=args.crash,
        pm_share=args.pm_share,
        books=args.books,
    )
    try:
        config.check()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return config


def _cannot_write(path: str, exc: OSError) -> UserError:
    return UserError(f"cannot write {path}: {exc.strerror or exc}; give a file in an existing folder you can write to")


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        count = write_jsonl(generate(_config(args)), Path(args.out))
    except OSError as exc:
        raise _cannot_write(args.out, exc) from None
    print(f"wrote {count} events to {args.out}")
    return 0


TOP_REASONS = 3


class DemoDecisions(NamedTuple):
    """What the demo's derived log holds: decisions by type, the PM-ratio liquidations, the
    rejections by reason (most first, then by text), and the largest liquidation (by maintenance
    margin at its trigger)."""

    kinds: Counter[str]
    pm_perps: int
    reasons: list[tuple[str, int]]
    largest: LiquidationTriggered | None


def _demo_decisions(log: LogDir) -> DemoDecisions:
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    pm_perps = 0
    largest = None
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        for _, event in derived.read():
            kinds[event_type(event)] += 1
            if isinstance(event, Rejected):
                reasons[reason_group(event)] += 1
            elif isinstance(event, LiquidationTriggered):
                pm_perps += event.scope == "portfolio"
                if largest is None or event.maintenance > largest.maintenance:
                    largest = event
    return DemoDecisions(kinds, pm_perps, sorted(reasons.items(), key=lambda r: (-r[1], r[0])), largest)


def cmd_demo(args: argparse.Namespace) -> int:
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="clearinghouse-demo-"))
    if (root / "events").exists():
        raise UserError(f"{root} already holds a log; pass a new --dir")
    log = LogDir(root)
    volume: dict[str, int] = {}
    trades = 0

    def counted(events: Iterable[Any]) -> Iterator[Any]:
        nonlocal trades
        for event in events:
            if type(event) is Trade:
                trades += 1
                volume[event.coin] = volume.get(event.coin, 0) + event.sz * event.px // NTL_DIV
            yield event

    config = _config(args)
    with EventLog(log.events) as out, _progress(args, "generating") as bar:
        for block in blocks_of(counted(generate(config)), BLOCK):
            out.append(block)
            if bar is not None:
                bar(out.next_seq, config.events)
    with _progress(args, "applying") as progress:
        result = run(
            log, progress=progress, liquidation=_liquidation(args, DEMO_LIQUIDATION), full_scan=args.full_scan
        )
    view = overview(result.state)
    found = _demo_decisions(log)
    kinds = found.kinds
    rejections = kinds.pop("rejected", 0)
    kinds.pop("checkpoint", None)
    largest = found.largest
    # The HTML report needs the [report] extra: without it the command printed explains as text.
    report = ["--out", str(root / "audit.html")] if importlib.util.find_spec("matplotlib") is not None else []
    audit_command = (
        None
        if largest is None
        else shlex.join(
            [
                "clearinghouse",
                "replay",
                "audit",
                "--log",
                str(root),
                "--account",
                largest.account,
                *report,
            ]
        )
    )
    rate = result.applied / result.seconds if result.seconds else 0.0
    demo = {
        "log": str(root),
        "events": result.applied,
        "trades": trades,
        "volume_usd": {coin: format_decimal(v, USD_DECIMALS) for coin, v in sorted(volume.items())},
        "rejections": rejections,
        "rejection_reasons": dict(found.reasons),
        "decisions": dict(sorted(kinds.items())),
        "largest_liquidation": None
        if largest is None
        else {
            "account": largest.account,
            "cause": largest.cause,
            "scope": largest.scope,
            "equity": format_decimal(largest.equity, USD_DECIMALS),
            "maintenance": format_decimal(largest.maintenance, USD_DECIMALS),
        },
        "audit_command": audit_command,
        "events_per_second": round(rate),
        **view,
    }
    if args.json:
        _print_json(demo)
        return 0
    total_volume = cents(format_decimal(sum(volume.values()), USD_DECIMALS))
    print(f"demo log: {root}")
    print(
        f"{result.applied:,} events ({trades:,} trades, volume {total_volume} USDC) applied at {rate:,.0f} events/s; "
        f"{rejections:,} rejected"
    )
    if found.reasons:
        top = "; ".join(f"{reason} ({n:,})" for reason, n in found.reasons[:TOP_REASONS])
        print(f"top rejection reasons: {top}")
    bad_debt = (
        f"{kinds['bad_debt']:,} bad debts ({cents(view['bad_debt'])} USDC)"
        if kinds["bad_debt"]
        else "no bad debt (the liquidator and auto-deleveraging covered every loss)"
    )
    print(
        f"liquidations: {kinds['liquidation_triggered']:,} triggered, {kinds['liquidation_fill']:,} market fills, "
        f"{kinds['backstop']:,} backstop takeovers, {kinds['adl']:,} auto-deleveraged closes; {bad_debt}"
    )
    if "lending" in view:
        print(
            f"portfolio margin: {kinds['borrow_liquidation']:,} borrow liquidations (backstop), "
            f"{found.pm_perps:,} PM-ratio liquidations of perps"
        )
    _print_overview(view)
    if largest is not None:
        scope = largest.scope if largest.scope in ("cross", "portfolio") else f"isolated {largest.scope}"
        print(
            f"\nlargest liquidation: {largest.account} at seq {largest.cause} ({scope}: equity "
            f"{cents(format_decimal(largest.equity, USD_DECIMALS))} against maintenance "
            f"{cents(format_decimal(largest.maintenance, USD_DECIMALS))} USDC); see why:\n  {audit_command}"
        )
    if view["most_leveraged"]:
        leveraged = view["most_leveraged"][0]["account"]
        state_command = shlex.join(["clearinghouse", "state", "--log", str(root), "--account", leveraged])
        print(f"most leveraged account now:\n  {state_command}")
    return 0


def _state_output(args: argparse.Namespace, state: State) -> None:
    if args.account:
        if args.account not in state.accounts:
            seq = state.next_seq - 1
            raise UserError(
                f"unknown account {args.account!r} at seq {seq}: check the name (names are case-sensitive)"
            )
        body = {**clearinghouse_state(state, args.account), "seq": state.next_seq - 1}
        if args.json:
            _print_json(body)
        else:
            _print_account(args.account, body)
        return
    view = overview(state)
    if args.json:
        _print_json(view)
    else:
        _print_overview(view)


def _print_overview(view: dict[str, Any]) -> None:
    """The book's summary: counts and sizes with thousands separators, USDC to the cent (the JSON
    view has every figure exact), prices as they are, seqs plain (they are typed back as arguments)."""
    markets = table("market", "mark", "open interest", "OI (USDC)")
    for m in view["markets"]:
        markets.add_row(m["coin"], grouped(m["mark"]), grouped(m["open_interest"]), cents(m["open_interest_usd"]))
    leveraged = table("account", "margin ratio", "leverage", "account value", "maintenance")
    for a in view["most_leveraged"]:
        leveraged.add_row(
            a["account"], a["margin_ratio"], a["leverage"], cents(a["account_value"]), cents(a["maintenance"])
        )
    liquidator = view["liquidator"]
    parts: list[str | Table] = [
        f"seq {view['seq']}  rules {view['rules']}  accounts {view['accounts']:,} "
        f"({view['accounts_with_positions']:,} with positions)  (USDC to the cent; --json is exact)",
        f"deposited {cents(view['deposited'])}  withdrawn {cents(view['withdrawn'])}  fees {cents(view['fees'])}",
        f"liquidator value {cents(liquidator['account_value'])} ({liquidator['positions']:,} positions)"
        f"  bad debt {cents(view['bad_debt'])}  accounts below maintenance {view['below_maintenance']:,}",
        "",
        markets,
        "",
        "most leveraged (margin ratio = maintenance / account value):",
        leveraged,
    ]
    if "lending" in view:
        parts += _lending_tables(view["lending"])
    print_tables(*parts, "", f"state digest {view['digest']}")


def _lending_tables(view: dict[str, Any]) -> list[str | Table]:
    pools = table("token", "supplied", "lent", "utilisation", "borrow APY", "supply APY")
    for p in view["pools"]:
        amount = cents if p["token"] == USDC else grouped
        pools.add_row(
            p["token"], amount(p["supplied"]), amount(p["lent"]), p["utilisation"], p["borrow_apy"], p["supply_apy"]
        )
    parts: list[str | Table] = [
        "",
        f"lending pools ({view['pm_accounts']:,} portfolio-margin accounts, "
        f"{cents(view['pm_borrowed'])} USDC borrowed):",
        pools,
    ]
    if view["highest_pm_ratio"]:
        ratios = table("account", "PM ratio", "borrowed", "liq. value")
        for a in view["highest_pm_ratio"]:
            ratios.add_row(a["account"], a["pm_ratio"], cents(a["borrowed"]), cents(a["liquidation_value"]))
        parts += ["", "highest PM ratios (liquidated above 0.95):", ratios]
    return parts


def _print_account(name: str, body: dict[str, Any]) -> None:
    """One account for people (--json gives the clearinghouseState body, every figure exact)."""
    summary = body["marginSummary"]
    positions = table("coin", "size", "entry", "value", "unrealized PnL", "liq. price", "leverage", "margin")
    for item in body["assetPositions"]:
        p = item["position"]
        lev = p["leverage"]
        liq = p["liquidationPx"]
        positions.add_row(
            p["coin"],
            grouped(p["szi"]),
            grouped(p["entryPx"]),
            cents(p["positionValue"]),
            cents(p["unrealizedPnl"]),
            "-" if liq is None else grouped(liq),
            f"{lev['value']}x {lev['type']}",
            cents(p["marginUsed"]),
        )
    parts: list[str | Table] = [
        f"{name} at seq {body['seq']} (USDC to the cent; --json is exact)",
        f"account value {cents(summary['accountValue'])}  notional {cents(summary['totalNtlPos'])}  "
        f"margin used {cents(summary['totalMarginUsed'])}  "
        f"cross maintenance {cents(body['crossMaintenanceMarginUsed'])}  "
        f"withdrawable {cents(body['withdrawable'])}",
    ]
    parts += [positions] if body["assetPositions"] else ["no open positions"]
    print_tables(*parts)


def cmd_replay_state(args: argparse.Namespace) -> int:
    log = _log_dir(args.log)
    state = state_at(log, seq=args.at) if args.at is not None else state_at(log, time=parse_time(args.time))
    _state_output(args, state)
    return 0


def cmd_replay_verify(args: argparse.Namespace) -> int:
    log = _log_dir(args.log)
    if not log.derived.is_dir():
        raise UserError(
            f"{args.log} has never been run (no derived/ inside), so there is nothing to verify; "
            f"apply its events first with `clearinghouse run --log {args.log}`"
        )
    with _progress(args, "verifying") as progress:
        verdict = verify(log, progress=progress)
    summary = {
        "ok": verdict.ok,
        "first_bad_seq": verdict.first_bad_seq,
        "problem": verdict.problem,
        "events": verdict.events,
        "derived_events": verdict.decisions,
        "checkpoints": verdict.checkpoints,
        "snapshots": verdict.snapshots,
        "notes": verdict.notes,
    }
    if args.json:
        _print_json(summary)
    elif verdict.ok:
        print(
            f"verified: {verdict.events:,} events, {verdict.decisions:,} derived events, {verdict.checkpoints} "
            f"checkpoints, {verdict.snapshots} snapshots match"
        )
    else:
        print(f"MISMATCH at seq {verdict.first_bad_seq}: {verdict.problem}", file=sys.stderr)
    for note in verdict.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0 if verdict.ok else 3


def cmd_replay_audit(args: argparse.Namespace) -> int:
    """The JSON shape (`--json`) is documented in docs/operations.md, "The audit report"."""
    log = _log_dir(args.log)
    result = audit(log, args.account)
    if not result.series:
        raise UserError(f"account {args.account!r} does not appear in {args.log}")
    if args.json:
        _print_json(result.as_json())
    if args.out:
        try:
            report = _optional("replay.report", "report", "replay audit --out")
            Path(args.out).write_text(report.render_html(result, str(log.root)), encoding="utf-8")
        except OSError as exc:
            raise _cannot_write(args.out, exc) from None
    if not args.json:
        print(f"{args.account}: {len(result.episodes)} liquidation event(s)")
        for episode in result.episodes:
            kinds = Counter(a["type"] for a in episode.actions)
            done = ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())) or "orders pending"
            kept = grouped(episode.kept)
            print(f"{episode.number:>3}. seq {episode.cause} ({episode.trigger['type']}): {done}; kept {kept} USDC")
            print(textwrap.fill(episode.why, width=100, initial_indent="     ", subsequent_indent="     "))
        if args.out:
            print(f"report: {args.out}")
    return 0


def _stress_population(args: argparse.Namespace) -> bytes:
    """The population, encoded: a log's state (at --at or --time, else its end) or the generator's."""
    if args.log is None:
        if args.at is not None or args.time is not None:
            raise UserError("--at and --time pick a point of a --log; with --generate there is none")
        config = GeneratorConfig(
            accounts=args.accounts, markets=args.markets, events=args.events, seed=args.seed, pm_share=args.pm_share
        )
        return encode_state(stress_population.generated(config))
    time = None if args.time is None else parse_time(args.time)
    return encode_state(stress_population.from_log(_log_dir(args.log), seq=args.at, time=time))


def _stress_configs(args: argparse.Namespace) -> list[StressConfig]:
    """The configurations: each --config file over the flags' settings, or the flags alone."""
    defaults = _liquidation(args, STRESS_LIQUIDATION) or STRESS_LIQUIDATION
    if not args.config:
        problem = stress_configs.mode_error(defaults)
        if problem:
            raise UserError(problem)
        return [StressConfig("default", defaults)]
    configs = [stress_configs.load_config(path, defaults) for path in args.config]
    names = [c.name for c in configs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f'two configurations are named {twice[0]!r}: give each file its own "name"')
    return configs


def _refused(run: dict[str, Any], shown: int = 3) -> list[str]:
    """A run's configuration events the engine refused, a line per event type and reason, naming
    the first few accounts or markets (every one is in --json's `unapplied`)."""
    by: dict[tuple[str, str], list[str]] = {}
    for u in run["unapplied"]:
        by.setdefault((u["event"], u["reason"]), []).append(u["subject"])
    lines = []
    for (event, reason), subjects in by.items():
        names = ", ".join(s for s in subjects[:shown] if s) + (", ..." if len(subjects) > shown else "")
        lines.append(
            f"{run['config']}/{run['adl']}: {len(subjects)} {event} refused ({reason})"
            + (f": {names}" if names else "")
        )
    return lines


def cmd_stress(args: argparse.Namespace) -> int:
    """The JSON shape (`--json`) is documented in docs/stress.md, "Output"."""
    try:
        scenario = load_scenario(args.scenario)
        configs = _stress_configs(args)
    except (ScenarioError, StressConfigError) as exc:
        raise UserError(str(exc)) from None
    policies = list(dict.fromkeys(args.adl_policies or [DEFAULT_ADL]))
    population = _stress_population(args)
    with _progress(args, "stress steps") as progress:
        runs = run_all(
            population, scenario, configs, policies, workers=args.workers, full_scan=args.full_scan, progress=progress
        )
    shown = [run_json(r) for r in runs]
    if args.out:
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "stress.json").write_text(json.dumps(shown, indent=2) + "\n", encoding="utf-8")
            page = _optional("replay.stress.page", "report", "stress --out")
            (out / "stress.html").write_text(page.render_html(runs, scenario), encoding="utf-8")
        except OSError as exc:
            raise _cannot_write(str(out), exc) from None
    if args.json:
        _print_json(shown)
        return 0
    runs = table("config", "adl", "liquidated", "backstop", "adl fills", "bad debt", "pool shortfall", "digest")
    for r in shown:
        runs.add_row(
            r["config"],
            r["adl"],
            cents(r["liquidated_notional"]),
            str(r["takeovers"]),
            f"{r['adl_count']} / {cents(r['adl_notional'])}",
            cents(r["bad_debt"]),
            cents(r["pool_shortfall"]),
            r["digest"][:16],
        )
    said = [f"scenario {scenario.name}: {scenario.steps} steps of {scenario.step_ms // 1000} s, amounts in USDC"]
    unconverged = [f"{r['config']}/{r['adl']} steps {r['unconverged_steps']}" for r in shown if not r["converged"]]
    if unconverged:
        said.append("not converged within the round cap: " + "; ".join(unconverged))
    for r in shown:
        said += _refused(r)
    if args.out:
        said.append(f"report: {Path(args.out) / 'stress.html'}, figures: {Path(args.out) / 'stress.json'}")
    print_tables(said[0], runs, *said[1:])


@contextmanager
def _progress_by_name(args: argparse.Namespace, names: list[str]) -> Iterator[Callable[[str, int, int], None] | None]:
    """One progress bar per name (a terminal only; -q turns them off) for `progress(name, done, total)`."""
    if args.quiet or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        tasks = {name: bar.add_task(name, total=None) for name in names}
        yield lambda name, done, total: bar.update(tasks[name], completed=done, total=total)


BACKTEST_WIDTH = 130  # columns the comparison table needs


def _freed_pct(capital: dict[str, Any] | None, kind: str | None) -> str:
    """The share of the baseline's mean initial margin a configuration frees (of one kind of account)."""
    part = None if capital is None else (capital if kind is None else capital[kind])["initial_mean_pct"]
    return "-" if part is None else f"{part}%"


def cmd_backtest(args: argparse.Namespace) -> int:
    """The JSON shape (`--json`, and backtest.json) is documented in docs/backtest.md."""
    log = _log_dir(args.log)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="clearinghouse-backtest-"))
    try:
        plans = plans_for(log, args.config)
        prepare_out(out, plans)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    with _progress_by_name(args, [p.name for p in plans]) as progress:
        outcomes = backtest(log, plans, out, args.workers, progress)
    summaries = compare([(p.name, o) for p, o in zip(plans, outcomes, strict=True)])
    try:
        (out / "backtest.json").write_text(json.dumps(summaries, indent=2) + "\n", encoding="utf-8")
        report = None
        if importlib.util.find_spec("matplotlib") is not None:
            report = out / "report.html"
            page = importlib.import_module("replay.backtest.report").render_html(summaries, outcomes, str(log.root))
            report.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise _cannot_write(str(out), exc) from None
    if args.json:
        _print_json(summaries)
        return 0
    table = Table(box=box.SIMPLE)
    head = [
        "configuration",
        "IM mean",
        "MM end",
        "freed",
        "hedged",
        "directional",
        "rejected",
        "liquidations",
        "bad debt",
    ]
    for h in head:
        table.add_column(h, justify="left" if h == "configuration" else "right")
    for one in summaries:
        capital = one["capital_freed"]
        table.add_row(
            one["name"],
            cents(one["requirement"]["initial_mean"]),
            cents(one["maintenance_end"]),
            *(_freed_pct(capital, kind) for kind in (None, "hedged", "directional")),
            f"{one['rejected']['count']:,}",
            f"{one['liquidations']['count']:,}",
            cents(one["bad_debt"]),
        )
    console = Console()
    console.width = max(console.width, BACKTEST_WIDTH)  # a pipe's 80 columns would cut the names
    console.print(table)
    print(f"logs, backtest.json{' and report.html' if report else ''} in {out}")
    return 0


def cmd_replay_diff(args: argparse.Namespace) -> int:
    _print_json(diff(_log_dir(args.log), args.start, args.end, args.account))
    return 0


JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
STATE_SHAPE = 'the body of Hyperliquid\'s info request {"type": "clearinghouseState", "user": ...}'
META_SHAPE = 'the body of Hyperliquid\'s info request {"type": "meta"}'


def _read_json_object(path: str, shape: str) -> dict[str, Any]:
    """The JSON object in the file at `path`; `shape` names what it should hold, for the messages."""
    try:
        body = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}; give the path of a JSON file") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, too deep
        raise UserError(f"{path} is not JSON: {exc}; expected {shape}") from None
    if not isinstance(body, dict):
        kind = JSON_KINDS.get(type(body), "value")
        raise UserError(f"{path} holds a JSON {kind}, not an object; expected {shape}")
    return body


def _hl_events(args: argparse.Namespace, account: str) -> list[Any]:
    meta = _read_json_object(args.meta, META_SHAPE) if args.meta else None
    body = _read_json_object(args.file, STATE_SHAPE)
    try:
        return import_events(body, account, meta=meta, rules=args.rules)
    except AdapterError as exc:
        if args.meta:
            raise UserError(
                f"cannot import {args.file} with --meta {args.meta}: {exc}; "
                f"expected {STATE_SHAPE} (and for --meta, {META_SHAPE})"
            ) from None
        raise UserError(f"cannot import {args.file}: {exc}; expected {STATE_SHAPE}") from None


def cmd_hl_recompute(args: argparse.Namespace) -> int:
    engine = Engine()
    for event in _hl_events(args, "hl"):
        for derived in engine.apply(event):
            raise UserError(f"the snapshot does not import: {derived.reason}")
    _print_json(clearinghouse_state(engine.state, "hl"))
    return 0


def cmd_hl_import(args: argparse.Namespace) -> int:
    events = _hl_events(args, args.account)
    log = _log_dir(args.log, must_exist=False)
    with EventLog(log.events) as out:
        first = out.append(events)
    print(
        f"appended {len(events)} events at seq {first} to {log.events}; apply them with `clearinghouse run --log "
        f"{log.root}`"
    )
    return 0


def cmd_hl_ingest(args: argparse.Namespace) -> int:
    """Reads Hyperliquid fills (API or node files) into events and appends them as one batch that
    lands whole or not at all; fills the log already holds are dropped, the rest that cannot be
    booked go to DIR/rejects.jsonl with the reason (docs/hyperliquid-data.md)."""
    try:
        markets = meta_markets(_read_json_object(args.meta, META_SHAPE)) if args.meta else {}
    except AdapterError as exc:
        raise UserError(f"--meta {args.meta}: {exc}; expected {META_SHAPE}") from None
    log = _log_dir(args.log, must_exist=False)
    rejects_path = log.root / "rejects.jsonl"
    with _storage_errors(log, "nothing was ingested"), EventLog(log.events) as out:
        check_snapshots(log, out.next_seq)
        ingest = HlIngest(contents_of(event for _, event in out.read()), markets, args.user)
        for name in args.files:
            path = Path(name)
            if not path.is_file():
                raise UserError(f"no such file: {path}; nothing was ingested")
            try:
                with _progress(args, f"reading {path.name}") as progress:
                    ingest.read(path, progress)
            except HlFileError as exc:
                raise UserError(f"{path}: {exc}; nothing was ingested") from None
        try:
            events, first = ingest.finish(), out.next_seq
        except HlFileError as exc:
            raise UserError(f"{exc}; nothing was ingested") from None
        for done in ingest.files if not args.json else []:  # an account's state bodies count once all are read
            read, made = list(done)[2:4]
            print(
                f"{done['file']}: {done['format']}: {done[read]} {read} -> {done[made]} {made}, "
                f"{done['dropped']} already in the log, {done['rejected']} rejected"
            )
        if events:
            digest = Fingerprint()
            for event in events:
                digest.add(event)
            note = Ingested(first, len(events), digest.hexdigest(), ", ".join(args.files))
            out.append_whole(blocks_of(events, BLOCK), note)
    if ingest.rejects:
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
        with open(rejects_path, "a", encoding="utf-8") as rejects:
            rejects.writelines(json.dumps(reject) + "\n" for reject in ingest.rejects)
    summary = {
        "files": ingest.files,
        "events": len(events),
        "first_seq": first,
        "next_seq": out.next_seq,
        "seeded": ingest.fills.seed_notes(),
        "liquidation_records": ingest.liquidations,
        "spot_states": ingest.spot_states,
        "rejected": len(ingest.rejects),
        "rejects_file": str(rejects_path) if ingest.rejects else None,
    }
    if args.json:
        _print_json(summary)
    else:
        where = f" -> {rejects_path}" if ingest.rejects else ""
        print(
            f"appended {len(events)} events to {log.events} (next seq {out.next_seq}); "
            f"{len(ingest.rejects)} rejected{where}"
        )
    return 0


def cmd_hl_reconcile(args: argparse.Namespace) -> int:
    """Replays the log beside a fills file and says where the engine and Hyperliquid disagree."""
    log = _log_dir(args.log)
    try:
        legs, unread = fill_legs(Path(args.fills), args.user)
    except FileNotFoundError:
        raise UserError(f"no such file: {args.fills}") from None
    except HlFileError as exc:
        raise UserError(f"{args.fills}: {exc}") from None
    with _storage_errors(log, "nothing was changed"), EventLog(log.events, readonly=True) as source:
        report = reconcile((event for _, event in source.read()), legs, unread)
    if args.out:
        try:
            Path(args.out).write_text(reconcile_html(report), encoding="utf-8")
        except OSError as exc:
            raise _cannot_write(args.out, exc) from None
    if args.json:
        _print_json(report.summary())
        return 0
    summary = report.summary()
    start, pnl, fee = summary["start_position"], summary["closed_pnl"], summary["fee"]
    print(f"{report.fills} fills compared ({report.not_in_log} not in the log, {report.unread} unreadable)")
    print(f"startPosition: {start['match']} match, {start['gap']} gaps (each resynchronised by an adjustment)")
    print(f"closedPnl: {pnl['match']} match, {pnl['mismatch']} differ, {pnl['unknown_entry']} with an unknown entry")
    print(f"fee: {fee['match']} match, {fee['mismatch']} differ")
    for liq in report.liquidations:
        print(f"liquidation tid {liq['tid']} of {liq['account']}: venue {liq['venue']}, engine {liq['engine']}")
    for record in report.records:
        print(
            f"liquidation record {record['id']} of {record['account']} ({record['scope']}): "
            f"venue liquidated, engine {record['engine']}"
        )
    if report.mismatches:
        print(f"first difference: {json.dumps(report.mismatches[0])}")
    return 0


def _kafka(args: argparse.Namespace, kafkalog: ModuleType) -> Any:
    """The Kafka client settings (`events.kafkalog.KafkaConfig`) of --kafka and --kafka-config."""
    try:
        return kafkalog.KafkaConfig.load(args.kafka, args.kafka_config)
    except kafkalog.KafkaConfigError as exc:
        raise UserError(str(exc)) from None


def _token(args: argparse.Namespace) -> str | None:
    """The API token: from --token-file, else $CLEARINGHOUSE_API_TOKEN (never on the command line)."""
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise UserError(f"cannot read the token file {args.token_file}: {exc.strerror or exc}") from None
        if not token:
            raise UserError(f"{args.token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


def cmd_serve(args: argparse.Namespace) -> int:
    live = _optional("clearinghouse.edges.service", "service", "serve")
    kafkalog = _optional("events.kafkalog", "service", "serve")
    settings = live.Settings(args.snapshot_every, args.checkpoint_every, args.keep, _liquidation(args), args.full_scan)
    token = _token(args)
    limits = Limits(timeout=args.http_timeout, max_connections=args.http_max_connections)
    if args.kafka:
        if not args.topic or not args.state:
            raise UserError("serve --kafka needs --topic and --state DIR (where snapshots go)")
        config = _kafka(args, kafkalog)
        topics = kafkalog.Topics.named(args.topic, args.derived_topic, args.dead_letter_topic)
        partitions = max(args.partitions, args.partition + 1)
        asyncio.run(kafkalog.ensure_topics(config, [topics.input, topics.derived, topics.dead_letter], partitions))
        service = live.kafka_service(LogDir(Path(args.state)), config, topics, args.partition, settings)
    else:
        if not args.log:
            raise UserError("serve needs --log DIR (a file log) or --kafka BOOTSTRAP --topic T --state DIR")
        service = live.file_service(_log_dir(args.log), settings)
    configure_logging()
    try:
        asyncio.run(live.serve(service, host=args.host, port=args.port, token=token, limits=limits))
    except live.ServiceError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    if not args.kafka or not args.topic:
        raise UserError("produce needs --kafka BOOTSTRAP and --topic TOPIC")
    publish = _optional("clearinghouse.edges.produce", "kafka", "produce")
    config = _kafka(args, _optional("events.kafkalog", "kafka", "produce"))
    total = 0
    if args.log:
        log = _log_dir(args.log)
        with EventLog(log.events, readonly=True) as events:
            total = events.next_seq
        blocks = publish.log_blocks(log.events)
    elif args.events:
        path = Path(args.events)
        if not path.is_file():
            raise UserError(f"no such file: {path}")
        blocks = publish.event_blocks(_json_events(path), args.block)
    else:
        total = args.events_count
        stream = GeneratorConfig(
            accounts=args.accounts, markets=args.markets, events=args.events_count, seed=args.seed, crash=args.crash
        )
        blocks = publish.event_blocks(generate(stream), args.block)
    with _progress(args, "producing") as progress:
        done = asyncio.run(
            publish.produce(
                config,
                args.topic,
                blocks,
                rate=args.rate,
                partition=args.partition,
                partitions=args.partitions,
                total=total,
                progress=progress,
            )
        )
    rate = done.events / done.seconds if done.seconds else 0.0
    summary = {
        "records": done.records,
        "events": done.events,
        "seconds": round(done.seconds, 3),
        "events_per_second": round(rate),
        "topic": args.topic,
    }
    if args.json:
        _print_json(summary)
    else:
        print(f"published {done.events} events in {done.records} records to {args.topic} at {rate:,.0f} ev/s")
    return 0


def _json_events(path: Path) -> Iterator[Any]:
    """The events of a JSON-lines file; the first bad line stops the command (nothing is skipped)."""
    with open(path, "rb") as lines:
        for number, item in iter_json_lines(lines):
            if isinstance(item, CodecError):
                raise UserError(f"{path}:{number}: {item}")
            yield item


def _kafka_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Kafka")
    g.add_argument("--kafka", metavar="BOOTSTRAP", help="bootstrap servers, e.g. 127.0.0.1:9092")
    g.add_argument(
        "--kafka-config",
        metavar="FILE",
        help="JSON object of aiokafka settings: TLS (ssl_cafile, ssl_certfile, ssl_keyfile, ssl_password), SASL "
        "(security_protocol, sasl_mechanism, sasl_plain_username, sasl_plain_password), client_id, timeouts",
    )
    g.add_argument("--topic", metavar="TOPIC", help="the input topic")
    g.add_argument(
        "--partition",
        type=_integer(0),
        default=0,
        metavar="N",
        help="the partition (account shard) this process owns (default 0)",
    )
    g.add_argument(
        "--partitions", type=_integer(1), default=1, metavar="N", help="partitions of topics created here (default 1)"
    )


# ---- parser -------------------------------------------------------------------------------------

LOG_HELP = "the log directory (events/, derived/ and state/ inside)"
JSON_HELP = "print one JSON document (every figure exact) instead of text"
ACCOUNT_HELP = "one account (with --json, in the clearinghouseState shape); default: the whole book"


def _generator_args(p: argparse.ArgumentParser, accounts: int, markets: int, events: int, crash: bool) -> None:
    p.add_argument("--accounts", type=_integer(2), default=accounts, help=f"accounts, at least 2 (default {accounts})")
    if crash:
        p.add_argument("--no-crash", dest="crash", action="store_false", help="no crash: a calm market")
    else:
        p.add_argument(
            "--crash", action="store_true", help="a sharp multi-market drop and rebound, 60%% into the stream"
        )
    p.add_argument("--markets", type=_integer(1), default=markets, help=f"perp markets (default {markets})")
    p.add_argument("--events", type=_integer(1), default=events, help=f"events in all (default {events})")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same stream")
    pm = 0.2 if crash else 0.0  # the demo (crash by default) shows portfolio margin too
    p.add_argument(
        "--pm-share",
        type=_share,
        default=pm,
        metavar="SHARE",
        help=f"share of accounts in portfolio margin: spot collateral, carry trades, borrowed USDC (default {pm})",
    )
    p.add_argument(
        "--books",
        type=_integer(0, MAX_BOOKS),
        default=0,
        metavar="N",
        help="N more accounts holding books in turn: carry, pair, directional, market maker (default 0)",
    )


def _market_depth(text: str) -> tuple[str, int]:
    """An argparse type: COIN=USDC, a coin and its own depth (the range of --depth)."""
    coin, equals, amount = text.partition("=")
    if not equals or not re.fullmatch(NAME_PATTERN, coin):
        raise argparse.ArgumentTypeError(f"expected COIN=USDC (a coin name, then its depth), got {text!r}")
    try:
        return coin, _fixed(USD_DECIMALS, *SETTING_RANGES["depth"], "USDC")(amount)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{coin}: {exc}") from None


class _DepthMap(argparse.Action):
    """Gathers repeated `--market-depth COIN=USDC` into one map (coin -> micro-USDC); a coin given
    twice is refused (too many coins, as any setting out of range, by `settings_error`)."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        coin, depth = values
        depths = dict(getattr(namespace, self.dest) or {})
        if coin in depths:
            raise argparse.ArgumentError(self, f"{coin} is given twice")
        depths[coin] = depth
        setattr(namespace, self.dest, depths)


def _liquidation_args(
    p: argparse.ArgumentParser, title: str = "liquidation (fixed when a log's state is created)", several: bool = False
) -> None:
    """The liquidation flags; `several`: `--adl` may be repeated (stress runs each policy), gathered
    in `adl_policies`, and the settings hold no single policy."""
    g = p.add_argument_group(title)
    g.add_argument(
        "--liquidation", choices=["mark", "impact", "external", "off"], help="execution mode (default mark)"
    )
    bps = BPS_DECIMALS
    g.add_argument(
        "--slippage-bps",
        type=_fixed(bps, *SETTING_RANGES["slippage_ppm"], "bps"),
        metavar="BPS",
        help="mark mode: fills at mark -/+ this (default 0)",
    )
    g.add_argument(
        "--impact-bps",
        type=_fixed(bps, *SETTING_RANGES["impact_ppm"], "bps"),
        metavar="BPS",
        help="impact mode: price move per DEPTH of notional (default 100)",
    )
    g.add_argument(
        "--depth",
        type=_fixed(USD_DECIMALS, *SETTING_RANGES["depth"], "USDC"),
        metavar="USDC",
        help="impact mode: market depth (default 1000000)",
    )
    g.add_argument(
        "--market-depth",
        type=_market_depth,
        action=_DepthMap,
        metavar="COIN=USDC",
        help="impact mode: this market's own depth, in place of --depth (repeat for each market)",
    )
    g.add_argument(
        "--liquidator-loss-limit",
        type=_fixed(USD_DECIMALS, *SETTING_RANGES["loss_limit"], "USDC"),
        metavar="USDC",
        help="most the liquidator absorbs per takeover; beyond it ADL (default: no limit)",
    )
    if several:
        p.set_defaults(adl=None)
    g.add_argument(
        "--adl",
        action="append" if several else "store",
        dest="adl_policies" if several else "adl",
        choices=list(POLICIES),
        metavar="POLICY",
        help=f"auto-deleveraging policy: {', '.join(POLICIES)} (default {DEFAULT_ADL}; docs/adl.md)"
        + ("; repeat to run each" if several else ""),
    )
    g.add_argument(
        "--full-scan", action="store_true", help="reference trigger mode: check every account on every tick"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clearinghouse",
        description="Event-sourced clearinghouse with Hyperliquid's margin rules.",
        epilog=f"Exit status: 0 done, 1 an error the message explains, 2 bad arguments, 3 replay verify found a "
        f"mismatch, 70 an unexpected error (a bug: set {TRACEBACK_ENV}=1 to print its traceback).",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, func: Callable[[argparse.Namespace], int], help: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = command("ingest", cmd_ingest, "validate a JSON-lines file and append its good events to a log, all or none")
    p.add_argument("file", metavar="EVENTS.jsonl", help="events as JSON lines (docs/wire-format.md)")
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument("--rejects", metavar="FILE", help="where bad lines go (default DIR/rejects.jsonl)")
    p.add_argument("--allow-duplicate", action="store_true", help="append events an earlier ingest appended")
    p.add_argument("--strict", action="store_true", help="ingest nothing and exit 1 if any line is bad")
    p.add_argument("--block", type=int, default=BLOCK, metavar="N", help=f"events per stored block (default {BLOCK})")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    repair_text = "cut damaged logs at their first bad record, set aside what depended on it; copies go to DIR/cut/"
    p = command("repair", cmd_repair, repair_text)
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = command("copy", cmd_copy, "copy a log's input into a new log, to run the same events under other settings")
    p.add_argument("--log", required=True, metavar="DIR", help="the log whose input events are copied")
    p.add_argument("--to", required=True, metavar="NEW_DIR", help="the new log (a folder without a log in it)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = command(
        "run",
        cmd_run,
        "apply every logged event not yet applied (from the newest good snapshot) and persist the state",
    )
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument(
        "--snapshot-every",
        type=_integer(1),
        default=100_000,
        metavar="N",
        help="write a snapshot every N events (default 100000; and always at the end)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_integer(1),
        metavar="N",
        help="derived checkpoint every N events "
        "(default: the log's own, 100000 for a new one; fixed by its first run)",
    )
    p.add_argument(
        "--keep", type=_integer(0), default=10, metavar="K", help="snapshots kept (default 10; 0 keeps all)"
    )
    p.add_argument(
        "--snapshot-now", action="store_true", help="write a snapshot at the end even if nothing new was applied"
    )
    _liquidation_args(p)

    p = command("state", cmd_state, "the state: one account in the clearinghouseState shape, or a summary table")
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument("--account", metavar="A", help=ACCOUNT_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = command("events", cmd_events, "print logged events (or the derived ones) as JSON lines")
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument(
        "--derived",
        action="store_true",
        help="the engine's derived events (rejections, liquidations, checkpoints, ...), each with its "
        "input_seq (the input event it came from) and derived_seq (its place in the derived log)",
    )
    p.add_argument(
        "--from",
        dest="start",
        type=_integer(0),
        default=0,
        metavar="SEQ",
        help="start at this input seq (with --derived: the derived events of input seqs from SEQ)",
    )
    p.add_argument("--limit", type=_integer(0), metavar="N", help="print at most N lines")

    p = command("generate", cmd_generate, "write a seeded synthetic event stream as JSON lines")
    _generator_args(p, 1000, 5, 100_000, crash=False)
    p.add_argument("--out", required=True, metavar="FILE", help="the JSON-lines file to write")

    p = command("demo", cmd_demo, "generate a market with a crash, run it through the engine on a file log, summarise")
    _generator_args(p, 5_000, 8, 200_000, crash=True)
    p.add_argument("--dir", metavar="DIR", help="keep the demo log here (default: a new temporary folder)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    _liquidation_args(p)

    p = command(
        "serve",
        cmd_serve,
        "run live: consume a Kafka topic (or tail a file log), apply, produce derived events, "
        "snapshot, answer HTTP queries",
    )
    p.add_argument("--log", metavar="DIR", help="tail this file log (the default backend)")
    _kafka_args(p)
    p.add_argument("--derived-topic", metavar="TOPIC", help="default TOPIC.derived")
    p.add_argument("--dead-letter-topic", metavar="TOPIC", help="default TOPIC.dead-letter")
    p.add_argument("--state", metavar="DIR", help="Kafka: where snapshots and settings go")
    p.add_argument("--host", default="127.0.0.1", help="HTTP API address (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=_integer(0, 65535),
        default=8080,
        help="HTTP API port (default 8080; 0 picks a free one, logged as http_listening)",
    )
    p.add_argument(
        "--token-file", metavar="FILE", help=f"require this bearer token on the HTTP API (or set ${TOKEN_ENV})"
    )
    p.add_argument(
        "--http-timeout",
        type=_seconds,
        default=Limits.timeout,
        metavar="SECONDS",
        help=f"HTTP: seconds a client has to begin a request, again to send its head, again its body, "
        f"and to take an answer (default {Limits.timeout:g})",
    )
    p.add_argument(
        "--http-max-connections",
        type=_integer(1),
        default=Limits.max_connections,
        metavar="N",
        help="HTTP: open connections at most; past it the one idle longest is dropped (default "
        f"{Limits.max_connections})",
    )
    p.add_argument(
        "--snapshot-every",
        type=_integer(1),
        default=100_000,
        metavar="N",
        help="snapshot every N events (default 100000; and at shutdown)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_integer(1),
        metavar="N",
        help="derived checkpoint every N events "
        "(default: the log's own, 100000 for a new one; fixed by its first run)",
    )
    p.add_argument("--keep", type=_integer(0), default=10, metavar="K", help="snapshots kept (default 10)")
    _liquidation_args(p)

    p = command(
        "produce",
        cmd_produce,
        "publish a stream into a Kafka topic at a target rate (load tests, moving a file log into Kafka)",
    )
    _kafka_args(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--log", metavar="DIR", help="the blocks of a file log, as stored")
    source.add_argument("--events", metavar="FILE", help="a JSON-lines file of events")
    source.add_argument(
        "--generate", action="store_true", help="a seeded synthetic stream (the generator's options below)"
    )
    p.add_argument(
        "--rate",
        type=_integer(0),
        default=0,
        metavar="EV_PER_S",
        help="target events per second (default 0: as fast as possible)",
    )
    p.add_argument(
        "--block",
        type=_integer(1),
        default=BLOCK,
        metavar="N",
        help=f"events per record for --events/--generate (default {BLOCK})",
    )
    p.add_argument(
        "--accounts", type=_integer(2), default=1000, help="--generate: accounts, at least 2 (default 1000)"
    )
    p.add_argument("--markets", type=_integer(1), default=5, help="--generate: perp markets (default 5)")
    p.add_argument(
        "--count",
        dest="events_count",
        type=_integer(1),
        default=100_000,
        metavar="N",
        help="--generate: events in all (default 100000)",
    )
    p.add_argument("--seed", type=int, default=1, help="--generate: random seed (default 1)")
    p.add_argument("--crash", action="store_true", help="--generate: with a sharp multi-market drop and rebound")
    p.add_argument("--json", action="store_true", help=JSON_HELP)

    p = command(
        "backtest",
        cmd_backtest,
        "replay a log's input under several configurations (models, rules, liquidation) and compare them",
    )
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument(
        "--config",
        required=True,
        action="append",
        metavar="FILE",
        help=f"a configuration (JSON, docs/backtest.md) or {AS_LOGGED} (the log's own); repeat for more; "
        "the first is the baseline of capital freed",
    )
    p.add_argument(
        "--workers", type=_integer(1, 64), default=2, metavar="N", help="configurations replayed at once (default 2)"
    )
    p.add_argument(
        "--out", metavar="DIR", help="where each configuration's log and the report go (default: a new temp folder)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list, an object per configuration")

    replay_text = "read history: state at a point, verify, audit a liquidation, diff"
    margin_cli.add_commands(command)

    rp = sub.add_parser("replay", help=replay_text, description=replay_text)
    rp_sub = rp.add_subparsers(dest="replay_command", required=True, metavar="COMMAND")
    p = command("state", cmd_replay_state, "the state as it was after input seq SEQ, or at a moment", rp_sub)
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", type=int, metavar="SEQ", help="right after this input seq")
    when.add_argument(
        "--time", metavar="ISO8601", help="after the last event at or before this moment, e.g. 2026-11-25T21:15:03Z"
    )
    p.add_argument("--account", metavar="A", help=ACCOUNT_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p = command(
        "verify",
        cmd_replay_verify,
        "rebuild from scratch and compare every derived event, checkpoint and snapshot; "
        "exit 3 naming the first seq that differs",
        rp_sub,
    )
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p = command(
        "audit", cmd_replay_audit, "every liquidation of an account, explained; an HTML report with a plot", rp_sub
    )
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument("--account", required=True, metavar="A", help="the account whose liquidations are explained")
    p.add_argument("--out", metavar="report.html", help="also write a self-contained HTML report with plots")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p = command("diff", cmd_replay_diff, "what changed between two points of the log", rp_sub)
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument(
        "--from", dest="start", type=int, required=True, metavar="SEQ", help="from right after this input seq"
    )
    p.add_argument("--to", dest="end", type=int, required=True, metavar="SEQ", help="to right after this input seq")
    p.add_argument("--account", metavar="A", help="only this account (default: every account that changed)")

    p = command(
        "stress",
        cmd_stress,
        "run a population through a crash scenario in the engine, under configurations and ADL policies",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--log", metavar="DIR", help="the population is this log's state (at its end by default)")
    source.add_argument(
        "--generate", action="store_true", help="the population is the generator's levered one (options below)"
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", type=_integer(0), metavar="SEQ", help="--log: the state right after this input seq")
    when.add_argument("--time", metavar="ISO8601", help="--log: the state at this moment")
    p.add_argument("--accounts", type=_integer(2), default=2000, help="--generate: accounts (default 2000)")
    p.add_argument("--markets", type=_integer(1), default=5, help="--generate: perp markets (default 5)")
    p.add_argument(
        "--events", type=_integer(1), default=40_000, help="--generate: events of the stream (default 40000)"
    )
    p.add_argument("--seed", type=int, default=1, help="--generate: random seed (default 1)")
    p.add_argument(
        "--pm-share", type=_share, default=0.2, metavar="SHARE", help="--generate: share in portfolio margin"
    )
    p.add_argument(
        "--scenario", required=True, metavar="NAME|FILE", help="uniform, btc-led, oct-2025, or a JSON scenario file"
    )
    p.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="a configuration file (repeat for several; default: one from the liquidation flags)",
    )
    p.add_argument("--workers", type=_integer(1), default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--out", metavar="DIR", help="write stress.json and the HTML report stress.html here")
    p.add_argument("--json", action="store_true", help="print one JSON object per run, in a list")
    _liquidation_args(
        p, "liquidation: every configuration's defaults (here impact, depth 100000, loss limit 100)", several=True
    )

    hl_text = "Hyperliquid data: recompute or import a clearinghouseState, ingest fills and misc events, reconcile"
    hl = sub.add_parser("hl", help=hl_text, description=hl_text)
    hl_sub = hl.add_subparsers(dest="hl_command", required=True, metavar="COMMAND")
    for name, func, text in (
        ("recompute", cmd_hl_recompute, "recompute every figure of a clearinghouseState body with the engine"),
        ("import-state", cmd_hl_import, "append events that seed an account from a clearinghouseState body"),
    ):
        p = command(name, func, text, hl_sub)
        p.add_argument("file", metavar="STATE.json", help=f"a JSON file holding {STATE_SHAPE}")
        p.add_argument("--rules", choices=["hl-current", "hl-2023"], help="rule set (default hl-current)")
        p.add_argument("--meta", metavar="META.json", help="an info `meta` body: szDecimals and margin tables")
        if name == "import-state":
            p.add_argument("--account", required=True, metavar="NAME", help="the account's name in the log")
            p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p = command(
        "ingest",
        cmd_hl_ingest,
        "append Hyperliquid fills (API userFills, node node_fills_by_block), node misc_events_by_block, and "
        "clearinghouseState, spotClearinghouseState and userAbstraction bodies, plain or .lz4, to a log as events, "
        "all or none",
        hl_sub,
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="Hyperliquid files: userFills JSON, node_fills_by_block, misc_events_by_block, clearinghouseState, "
        "spotClearinghouseState or userAbstraction, plain or .lz4",
    )
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument(
        "--user",
        metavar="ADDRESS",
        help="whose fills a userFills array (or whose state a clearinghouseState, spot state or "
        "userAbstraction body) holds; in node files, "
        "only this user's fills, each against the outside world (@import)",
    )
    p.add_argument("--meta", metavar="META.json", help="an info `meta` body: szDecimals and margin tables")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p = command(
        "reconcile",
        cmd_hl_reconcile,
        "replay a log beside Hyperliquid fills: positions, closedPnl, fees, "
        "directions and liquidations compared, gaps reported",
        hl_sub,
    )
    p.add_argument("--log", required=True, metavar="DIR", help=LOG_HELP)
    p.add_argument("--fills", required=True, metavar="FILE", help="userFills or node_fills_by_block, plain or .lz4")
    p.add_argument("--user", metavar="ADDRESS", help="as for `hl ingest`")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("--out", metavar="report.html", help="also write the comparison as an HTML page")
    return parser


def _log_to_stderr() -> None:
    """The library modules' structlog warnings (a snapshot skipped, a torn tail cut) as one line
    each on stderr: never on stdout, which holds the command's output (JSON with --json)."""
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.dev.ConsoleRenderer(colors=False)],
        # sys.stderr as it is when a line is logged (a caller may have replaced it since)
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr()  # serve then logs JSON lines (jsonlog.configure_logging)
    try:
        return args.func(args)
    except SettingsConflict as exc:
        print(f"clearinghouse: error: {_conflict_message(exc, args)}", file=sys.stderr)
        return 1
    except (
        UserError,
        CodecError,
        BookError,
        AdapterError,
        LogCorruption,
        LogLocked,
        SnapshotError,
        ConfigMismatch,
        HistoryError,
    ) as exc:
        print(f"clearinghouse: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        hint = "check the path, its permissions and free space"
        print(f"clearinghouse: error: {exc.strerror or exc}{where}; {hint}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(
            f"clearinghouse: unexpected error: {type(exc).__name__}: {exc}; this is a bug: "
            f"run again with {TRACEBACK_ENV}=1 for the traceback and report it",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
