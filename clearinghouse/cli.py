"""The `clearinghouse` command: one entry point, a subcommand per job (an edge, not the core)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import math
import os
import re
import shlex
from collections import Counter
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import msgspec
import structlog
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.httpserver import Limits
from clearinghouse.liquidation import SETTING_RANGES, settings_error
from clearinghouse.overview import cents, grouped, overview, render
from clearinghouse.produce import event_blocks, log_blocks, produce
from clearinghouse.runner import ConfigMismatch, LogBehind, LogDir, RunResult, check_snapshots, repair, run
from clearinghouse.service import ServiceError, Settings, configure_logging, file_service, kafka_service, serve
from clearinghouse.state import LiquidationConfig, State
from clearinghouse.summary import clearinghouse_state
from events.units import NTL_DIV, USD_DECIMALS, format_decimal, parse_decimal
from events.adapters.hl_files import HlFileError
from events.adapters.hl_fills import known_in
from events.adapters.hl_ingest import HlIngest, fill_legs
from events.adapters.hyperliquid import AdapterError, import_events, meta_markets
from events.codec import CodecError, decode_json, encode_json, iter_json_lines
from events.eventlog import EventLog, Fingerprint, Ingested, blocks_of
from events.filelog import LogCorruption, LogLocked
from events.generator import GeneratorConfig, generate, write_jsonl
from events.kafkalog import KafkaConfig, KafkaConfigError, Topics, ensure_topics
from events.schema import LiquidationTriggered, Rejected, Trade, event_type
from replay.audit import audit
from replay.history import HistoryError, diff, parse_time, state_at
from replay.hl_reconcile import reconcile, reconcile_html
from replay.report import render_html
from replay.snapshot import SnapshotError
from replay.verify import verify

BLOCK = 1000  # events per stored block
# The demo lets the liquidator absorb at most 100 USDC per takeover, so its crash shows auto-deleveraging.
DEMO_LIQUIDATION = LiquidationConfig(loss_limit=100_000_000)
TOKEN_ENV = "CLEARINGHOUSE_API_TOKEN"
TRACEBACK_ENV = "CLEARINGHOUSE_TRACEBACK"  # set (to anything) for the traceback of an unexpected error


class UserError(Exception):
    """A problem the user can fix (missing file, bad input); printed without a traceback."""


# ---- progress -----------------------------------------------------------------------------------


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled = label, enabled
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        share = done / total if total else 1.0
        rate = done / max(now - self.started, 1e-9)
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {done:,}/{total:,} {rate:,.0f} ev/s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _progress(args: argparse.Namespace, label: str) -> ProgressBar:
    return ProgressBar(label, enabled=not args.quiet and sys.stderr.isatty())


# ---- helpers ------------------------------------------------------------------------------------


def _log_dir(path: str, must_exist: bool = True) -> LogDir:
    log = LogDir(Path(path))
    if must_exist and not log.exists():
        raise UserError(f"{path} is not a log directory (no events/ inside); create one with `clearinghouse ingest`")
    return log


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _catch_up(args: argparse.Namespace) -> RunResult:
    """The state with every logged event applied (in memory; `run` persists it)."""
    return run(_log_dir(args.log), persist=False, progress=_progress(args, "replaying"))


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


def _liquidation(args: argparse.Namespace, defaults: LiquidationConfig | None = None) -> LiquidationConfig | None:
    """The settings the flags ask for, over `defaults`; None when no flag (and no default) is given
    (an existing log then keeps its own)."""
    given = {
        "mode": args.liquidation,
        "slippage_ppm": args.slippage_bps,
        "impact_ppm": args.impact_bps,
        "depth": args.depth,
        "loss_limit": args.liquidator_loss_limit,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes and defaults is None:
        return None
    config = msgspec.structs.replace(defaults or LiquidationConfig(), **changes)
    problem = settings_error(config)
    if problem:
        raise UserError(f"{problem} (docs/wire-format.md, liquidation settings)")
    return config


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
                    rejects.write(json.dumps({"file": str(source), "line": number, "error": str(exc)}) + "\n")
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


def _persistence(args: argparse.Namespace) -> dict[str, int]:
    return {"snapshot_every": args.snapshot_every, "checkpoint_every": args.checkpoint_every, "keep": args.keep}


def cmd_run(args: argparse.Namespace) -> int:
    log = _log_dir(args.log)
    with _storage_errors(log, "what was applied up to the last snapshot is kept, and a new run goes on from there"):
        result = run(
            log,
            progress=_progress(args, "applying"),
            liquidation=_liquidation(args),
            full_scan=args.full_scan,
            snapshot_now=args.snapshot_now,
            **_persistence(args),
        )
    digest = state_digest(result.state)
    rate = result.applied / result.seconds if result.seconds else 0.0
    summary = {"applied": result.applied, "derived": result.derived, "seq": result.state.next_seq - 1, "digest": digest, "events_per_second": round(rate)}
    if args.json:
        _print_json(summary)
    else:
        print(f"applied {result.applied} events ({result.derived} derived) up to seq {summary['seq']} at {rate:,.0f} ev/s\nstate digest {digest}")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    _state_output(args, _catch_up(args).state)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    log = _log_dir(args.log)
    path = log.derived if args.derived else log.events
    if not path.is_dir():
        return 0
    out = sys.stdout.buffer
    with EventLog(path, derived=args.derived, readonly=True) as events:
        for count, (_, event) in enumerate(events.read(args.start)):
            if args.limit is not None and count >= args.limit:
                break
            out.write(encode_json(event) + b"\n")
    return 0


def _config(args: argparse.Namespace) -> GeneratorConfig:
    return GeneratorConfig(accounts=args.accounts, markets=args.markets, events=args.events, seed=args.seed, crash=args.crash, pm_share=args.pm_share)


def _cannot_write(path: str, exc: OSError) -> UserError:
    return UserError(f"cannot write {path}: {exc.strerror or exc}; give a file in an existing folder you can write to")


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        count = write_jsonl(generate(_config(args)), Path(args.out))
    except OSError as exc:
        raise _cannot_write(args.out, exc) from None
    print(f"wrote {count} events to {args.out}")
    return 0


NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")  # a number standing alone (not part of a name)
TOP_REASONS = 3


def _reason_group(rejected: Rejected) -> str:
    """A rejection's event type and reason with its numbers stripped, so alike ones add up."""
    return f"{rejected.event}: {NUMBER.sub('N', rejected.reason)}"


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
                reasons[_reason_group(event)] += 1
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
    bar = _progress(args, "generating")
    with EventLog(log.events) as out:
        for block in blocks_of(counted(generate(config)), BLOCK):
            out.append(block)
            bar(out.next_seq, config.events)
    result = run(log, progress=_progress(args, "applying"), liquidation=_liquidation(args, DEMO_LIQUIDATION), full_scan=args.full_scan)
    view = overview(result.state)
    found = _demo_decisions(log)
    kinds = found.kinds
    rejections = kinds.pop("rejected", 0)
    kinds.pop("checkpoint", None)
    largest = found.largest
    audit_command = None if largest is None else shlex.join([
        "clearinghouse", "replay", "audit", "--log", str(root), "--account", largest.account,
        "--out", str(root / "audit.html"),
    ])
    rate = result.applied / result.seconds if result.seconds else 0.0
    demo = {
        "log": str(root),
        "events": result.applied,
        "trades": trades,
        "volume_usd": {coin: format_decimal(v, USD_DECIMALS) for coin, v in sorted(volume.items())},
        "rejections": rejections,
        "rejection_reasons": dict(found.reasons),
        "decisions": dict(sorted(kinds.items())),
        "largest_liquidation": None if largest is None else {
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
    print(f"{result.applied:,} events ({trades:,} trades, volume {total_volume} USDC) applied at {rate:,.0f} events/s; "
          f"{rejections:,} rejected")
    if found.reasons:
        top = "; ".join(f"{reason} ({n:,})" for reason, n in found.reasons[:TOP_REASONS])
        print(f"top rejection reasons: {top}")
    bad_debt = (f"{kinds['bad_debt']:,} bad debts ({cents(view['bad_debt'])} USDC)" if kinds["bad_debt"]
                else "no bad debt (the liquidator and auto-deleveraging covered every loss)")
    print(
        f"liquidations: {kinds['liquidation_triggered']:,} triggered, {kinds['liquidation_fill']:,} market fills, "
        f"{kinds['backstop']:,} backstop takeovers, {kinds['adl']:,} auto-deleveraged closes; {bad_debt}"
    )
    if "lending" in view:
        print(f"portfolio margin: {kinds['borrow_liquidation']:,} borrow liquidations (backstop), "
              f"{found.pm_perps:,} PM-ratio liquidations of perps")
    print(render(view))
    if largest is not None:
        scope = largest.scope if largest.scope in ("cross", "portfolio") else f"isolated {largest.scope}"
        print(f"\nlargest liquidation: {largest.account} at seq {largest.cause} ({scope}: equity "
              f"{cents(format_decimal(largest.equity, USD_DECIMALS))} against maintenance "
              f"{cents(format_decimal(largest.maintenance, USD_DECIMALS))} USDC); see why:\n  {audit_command}")
    if view["most_leveraged"]:
        leveraged = view["most_leveraged"][0]["account"]
        state_command = shlex.join(["clearinghouse", "state", "--log", str(root), "--account", leveraged])
        print(f"most leveraged account now:\n  {state_command}")
    return 0


def _state_output(args: argparse.Namespace, state: State) -> None:
    if args.account:
        if args.account not in state.accounts:
            seq = state.next_seq - 1
            raise UserError(f"unknown account {args.account!r} at seq {seq}: check the name (names are case-sensitive)")
        _print_json({**clearinghouse_state(state, args.account), "seq": state.next_seq - 1})
        return
    view = overview(state)
    if args.json:
        _print_json(view)
    else:
        print(render(view))


def cmd_replay_state(args: argparse.Namespace) -> int:
    log = _log_dir(args.log)
    state = state_at(log, seq=args.at) if args.at is not None else state_at(log, time=parse_time(args.time))
    _state_output(args, state)
    return 0


def cmd_replay_verify(args: argparse.Namespace) -> int:
    log = _log_dir(args.log)
    if not log.derived.is_dir():
        raise UserError(f"{args.log} has never been run (no derived/ inside), so there is nothing to verify; "
                        f"apply its events first with `clearinghouse run --log {args.log}`")
    verdict = verify(log, progress=_progress(args, "verifying"))
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
        print(f"verified: {verdict.events:,} events, {verdict.decisions:,} derived events, {verdict.checkpoints} checkpoints, {verdict.snapshots} snapshots match")
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
            Path(args.out).write_text(render_html(result, str(log.root)), encoding="utf-8")
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
            raise UserError(f"cannot import {args.file} with --meta {args.meta}: {exc}; "
                            f"expected {STATE_SHAPE} (and for --meta, {META_SHAPE})") from None
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
    print(f"appended {len(events)} events at seq {first} to {log.events}; apply them with `clearinghouse run --log {log.root}`")
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
        ingest = HlIngest(known_in(event for _, event in out.read()), markets, args.user)
        for name in args.files:
            path = Path(name)
            if not path.is_file():
                raise UserError(f"no such file: {path}; nothing was ingested")
            try:
                done = ingest.read(path, _progress(args, f"reading {path.name}"))
            except HlFileError as exc:
                raise UserError(f"{path}: {exc}; nothing was ingested") from None
            if not args.json:
                read, made = list(done)[2:4]
                print(f"{path}: {done['format']}: {done[read]} {read} -> {done[made]} {made}, "
                      f"{done['dropped']} already in the log, {done['rejected']} rejected")
        events, first = ingest.finish(), out.next_seq
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
    summary = {"files": ingest.files, "events": len(events), "first_seq": first, "next_seq": out.next_seq,
               "seeded": ingest.fills.seed_notes(), "liquidation_records": ingest.liquidations,
               "rejected": len(ingest.rejects),
               "rejects_file": str(rejects_path) if ingest.rejects else None}
    if args.json:
        _print_json(summary)
    else:
        where = f" -> {rejects_path}" if ingest.rejects else ""
        print(f"appended {len(events)} events to {log.events} (next seq {out.next_seq}); "
              f"{len(ingest.rejects)} rejected{where}")
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
    if report.mismatches:
        print(f"first difference: {json.dumps(report.mismatches[0])}")
    return 0


def _kafka(args: argparse.Namespace) -> KafkaConfig:
    try:
        return KafkaConfig.load(args.kafka, args.kafka_config)
    except KafkaConfigError as exc:
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
    settings = Settings(args.snapshot_every, args.checkpoint_every, args.keep, _liquidation(args), args.full_scan)
    token = _token(args)
    limits = Limits(timeout=args.http_timeout, max_connections=args.http_max_connections)
    if args.kafka:
        if not args.topic or not args.state:
            raise UserError("serve --kafka needs --topic and --state DIR (where snapshots go)")
        config = _kafka(args)
        topics = Topics.named(args.topic, args.derived_topic, args.dead_letter_topic)
        partitions = max(args.partitions, args.partition + 1)
        asyncio.run(ensure_topics(config, [topics.input, topics.derived, topics.dead_letter], partitions))
        service = kafka_service(LogDir(Path(args.state)), config, topics, args.partition, settings)
    else:
        if not args.log:
            raise UserError("serve needs --log DIR (a file log) or --kafka BOOTSTRAP --topic T --state DIR")
        service = file_service(_log_dir(args.log), settings)
    configure_logging()
    try:
        asyncio.run(serve(service, host=args.host, port=args.port, token=token, limits=limits))
    except ServiceError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    if not args.kafka or not args.topic:
        raise UserError("produce needs --kafka BOOTSTRAP and --topic TOPIC")
    config = _kafka(args)
    total = 0
    if args.log:
        log = _log_dir(args.log)
        with EventLog(log.events, readonly=True) as events:
            total = events.next_seq
        blocks = log_blocks(log.events)
    elif args.events:
        path = Path(args.events)
        if not path.is_file():
            raise UserError(f"no such file: {path}")
        blocks = event_blocks(_json_events(path), args.block)
    else:
        total = args.events_count
        blocks = event_blocks(generate(GeneratorConfig(accounts=args.accounts, markets=args.markets, events=args.events_count, seed=args.seed, crash=args.crash)), args.block)
    done = asyncio.run(
        produce(config, args.topic, blocks, rate=args.rate, partition=args.partition, partitions=args.partitions, total=total, progress=_progress(args, "producing"))
    )
    rate = done.events / done.seconds if done.seconds else 0.0
    summary = {"records": done.records, "events": done.events, "seconds": round(done.seconds, 3), "events_per_second": round(rate), "topic": args.topic}
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
    g.add_argument("--kafka-config", metavar="FILE", help="JSON object of aiokafka settings: TLS (ssl_cafile, ssl_certfile, ssl_keyfile, ssl_password), SASL (security_protocol, sasl_mechanism, sasl_plain_username, sasl_plain_password), client_id, timeouts")
    g.add_argument("--topic", metavar="TOPIC", help="the input topic")
    g.add_argument("--partition", type=_integer(0), default=0, metavar="N", help="the partition (account shard) this process owns (default 0)")
    g.add_argument("--partitions", type=_integer(1), default=1, metavar="N", help="partitions of topics created here (default 1)")


# ---- parser -------------------------------------------------------------------------------------


def _generator_args(p: argparse.ArgumentParser, accounts: int, markets: int, events: int, crash: bool) -> None:
    p.add_argument("--accounts", type=_integer(2), default=accounts, help=f"accounts, at least 2 (default {accounts})")
    if crash:
        p.add_argument("--no-crash", dest="crash", action="store_false", help="no crash: a calm market")
    else:
        p.add_argument("--crash", action="store_true", help="a sharp multi-market drop and rebound, 60%% into the stream")
    p.add_argument("--markets", type=_integer(1), default=markets, help=f"perp markets (default {markets})")
    p.add_argument("--events", type=_integer(1), default=events, help=f"events in all (default {events})")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same stream")
    pm = 0.2 if crash else 0.0  # the demo (crash by default) shows portfolio margin too
    p.add_argument("--pm-share", type=_share, default=pm, metavar="SHARE",
                   help=f"share of accounts in portfolio margin: spot collateral, carry trades, borrowed USDC (default {pm})")


def _liquidation_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("liquidation (fixed when a log's state is created)")
    g.add_argument("--liquidation", choices=["mark", "impact", "external", "off"], help="execution mode (default mark)")
    bps = 2  # basis points with two decimals are parts per million
    g.add_argument("--slippage-bps", type=_fixed(bps, *SETTING_RANGES["slippage_ppm"], "bps"), metavar="BPS", help="mark mode: fills at mark -/+ this (default 0)")
    g.add_argument("--impact-bps", type=_fixed(bps, *SETTING_RANGES["impact_ppm"], "bps"), metavar="BPS", help="impact mode: price move per DEPTH of notional (default 100)")
    g.add_argument("--depth", type=_fixed(USD_DECIMALS, *SETTING_RANGES["depth"], "USDC"), metavar="USDC", help="impact mode: market depth (default 1000000)")
    g.add_argument("--liquidator-loss-limit", type=_fixed(USD_DECIMALS, *SETTING_RANGES["loss_limit"], "USDC"), metavar="USDC", help="most the liquidator absorbs per takeover; beyond it ADL (default: no limit)")
    g.add_argument("--full-scan", action="store_true", help="reference trigger mode: check every account on every tick")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clearinghouse",
        description="Event-sourced clearinghouse with Hyperliquid's margin rules.",
        epilog=f"Exit status: 0 done, 1 an error the message explains, 2 bad arguments, 3 replay verify found a "
        f"mismatch, 70 an unexpected error (a bug: set {TRACEBACK_ENV}=1 to print its traceback).",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str, parent: Any = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = command("ingest", cmd_ingest, "validate a JSON-lines file and append its good events to a log, all or none")
    p.add_argument("file", metavar="EVENTS.jsonl")
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--rejects", metavar="FILE", help="where bad lines go (default DIR/rejects.jsonl)")
    p.add_argument("--allow-duplicate", action="store_true", help="append events an earlier ingest appended")
    p.add_argument("--block", type=int, default=BLOCK, metavar="N", help=f"events per stored block (default {BLOCK})")
    p.add_argument("--json", action="store_true")

    repair_text = "cut damaged logs at their first bad record, set aside what depended on it; copies go to DIR/cut/"
    p = command("repair", cmd_repair, repair_text)
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true")

    p = command("run", cmd_run, "apply every logged event not yet applied (from the newest good snapshot) and persist the state")
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.add_argument("--snapshot-every", type=_integer(1), default=100_000, metavar="N", help="write a snapshot every N events (default 100000; and always at the end)")
    p.add_argument("--checkpoint-every", type=_integer(1), metavar="N", help="derived checkpoint every N events (default: the log's own, 100000 for a new one; fixed by its first run)")
    p.add_argument("--keep", type=_integer(0), default=10, metavar="K", help="snapshots kept (default 10; 0 keeps all)")
    p.add_argument("--snapshot-now", action="store_true", help="write a snapshot at the end even if nothing new was applied")
    _liquidation_args(p)

    p = command("state", cmd_state, "the state: one account in the clearinghouseState shape, or a summary table")
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--account", metavar="A")
    p.add_argument("--json", action="store_true")

    p = command("events", cmd_events, "print logged events (or the derived ones) as JSON lines")
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--derived", action="store_true", help="the engine's derived events (rejections, ...)")
    p.add_argument("--from", dest="start", type=_integer(0), default=0, metavar="SEQ")
    p.add_argument("--limit", type=_integer(0), metavar="N")

    p = command("generate", cmd_generate, "write a seeded synthetic event stream as JSON lines")
    _generator_args(p, 1000, 5, 100_000, crash=False)
    p.add_argument("--out", required=True, metavar="FILE")

    p = command("demo", cmd_demo, "generate a market with a crash, run it through the engine on a file log, summarise")
    _generator_args(p, 5_000, 8, 200_000, crash=True)
    p.add_argument("--dir", metavar="DIR", help="keep the demo log here (default: a new temporary folder)")
    p.add_argument("--json", action="store_true")
    _liquidation_args(p)

    p = command("serve", cmd_serve, "run live: consume a Kafka topic (or tail a file log), apply, produce derived events, snapshot, answer HTTP queries")
    p.add_argument("--log", metavar="DIR", help="tail this file log (the default backend)")
    _kafka_args(p)
    p.add_argument("--derived-topic", metavar="TOPIC", help="default TOPIC.derived")
    p.add_argument("--dead-letter-topic", metavar="TOPIC", help="default TOPIC.dead-letter")
    p.add_argument("--state", metavar="DIR", help="Kafka: where snapshots and settings go")
    p.add_argument("--host", default="127.0.0.1", help="HTTP API address (default 127.0.0.1)")
    p.add_argument("--port", type=_integer(0, 65535), default=8080, help="HTTP API port (default 8080; 0 picks a free one, logged as http_listening)")
    p.add_argument("--token-file", metavar="FILE", help=f"require this bearer token on the HTTP API (or set ${TOKEN_ENV})")
    p.add_argument("--http-timeout", type=_seconds, default=Limits.timeout, metavar="SECONDS",
                   help=f"HTTP: seconds a client has to begin a request, again to send its head, again its body, "
                        f"and to take an answer (default {Limits.timeout:g})")
    p.add_argument("--http-max-connections", type=_integer(1), default=Limits.max_connections, metavar="N",
                   help=f"HTTP: open connections at most; past it the one idle longest is dropped (default {Limits.max_connections})")
    p.add_argument("--snapshot-every", type=_integer(1), default=100_000, metavar="N", help="snapshot every N events (default 100000; and at shutdown)")
    p.add_argument("--checkpoint-every", type=_integer(1), metavar="N", help="derived checkpoint every N events (default: the log's own, 100000 for a new one; fixed by its first run)")
    p.add_argument("--keep", type=_integer(0), default=10, metavar="K", help="snapshots kept (default 10)")
    _liquidation_args(p)

    p = command("produce", cmd_produce, "publish a stream into a Kafka topic at a target rate (load tests, moving a file log into Kafka)")
    _kafka_args(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--log", metavar="DIR", help="the blocks of a file log, as stored")
    source.add_argument("--events", metavar="FILE", help="a JSON-lines file of events")
    source.add_argument("--generate", action="store_true", help="a seeded synthetic stream (the generator's options below)")
    p.add_argument("--rate", type=_integer(0), default=0, metavar="EV_PER_S", help="target events per second (default 0: as fast as possible)")
    p.add_argument("--block", type=_integer(1), default=BLOCK, metavar="N", help=f"events per record for --events/--generate (default {BLOCK})")
    p.add_argument("--accounts", type=_integer(2), default=1000)
    p.add_argument("--markets", type=_integer(1), default=5)
    p.add_argument("--count", dest="events_count", type=_integer(1), default=100_000, metavar="N", help="--generate: events in all (default 100000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--crash", action="store_true")
    p.add_argument("--json", action="store_true")

    replay_text = "read history: state at a point, verify, audit a liquidation, diff"
    rp = sub.add_parser("replay", help=replay_text, description=replay_text)
    rp_sub = rp.add_subparsers(dest="replay_command", required=True, metavar="COMMAND")
    p = command("state", cmd_replay_state, "the state as it was after input seq SEQ, or at a moment", rp_sub)
    p.add_argument("--log", required=True, metavar="DIR")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", type=int, metavar="SEQ")
    when.add_argument("--time", metavar="ISO8601", help="e.g. 2026-11-25T21:15:03Z")
    p.add_argument("--account", metavar="A")
    p.add_argument("--json", action="store_true")
    p = command("verify", cmd_replay_verify, "rebuild from scratch and compare every derived event, checkpoint and snapshot; exit 3 naming the first seq that differs", rp_sub)
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true")
    p = command("audit", cmd_replay_audit, "every liquidation of an account, explained; an HTML report with a plot", rp_sub)
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--account", required=True, metavar="A")
    p.add_argument("--out", metavar="report.html")
    p.add_argument("--json", action="store_true")
    p = command("diff", cmd_replay_diff, "what changed between two points of the log", rp_sub)
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--from", dest="start", type=int, required=True, metavar="SEQ")
    p.add_argument("--to", dest="end", type=int, required=True, metavar="SEQ")
    p.add_argument("--account", metavar="A")

    hl_text = "Hyperliquid data: recompute or import a clearinghouseState, ingest fills and misc events, reconcile"
    hl = sub.add_parser("hl", help=hl_text, description=hl_text)
    hl_sub = hl.add_subparsers(dest="hl_command", required=True, metavar="COMMAND")
    for name, func, text in (
        ("recompute", cmd_hl_recompute, "recompute every figure of a clearinghouseState body with the engine"),
        ("import-state", cmd_hl_import, "append events that seed an account from a clearinghouseState body"),
    ):
        p = command(name, func, text, hl_sub)
        p.add_argument("file", metavar="STATE.json")
        p.add_argument("--rules", choices=["hl-current", "hl-2023"], help="rule set (default hl-current)")
        p.add_argument("--meta", metavar="META.json", help="an info `meta` body: szDecimals and margin tables")
        if name == "import-state":
            p.add_argument("--account", required=True, metavar="NAME")
            p.add_argument("--log", required=True, metavar="DIR")
    p = command("ingest", cmd_hl_ingest, "append Hyperliquid fills (API userFills, node node_fills_by_block) and node "
                "misc_events_by_block, plain or .lz4, to a log as events, all or none", hl_sub)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--user", metavar="ADDRESS", help="whose fills a userFills array holds; in node files, "
                   "only this user's fills, each against the outside world (@import)")
    p.add_argument("--meta", metavar="META.json", help="an info `meta` body: szDecimals and margin tables")
    p.add_argument("--json", action="store_true")
    p = command("reconcile", cmd_hl_reconcile, "replay a log beside Hyperliquid fills: positions, closedPnl, fees, "
                "directions and liquidations compared, gaps reported", hl_sub)
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--fills", required=True, metavar="FILE", help="userFills or node_fills_by_block, plain or .lz4")
    p.add_argument("--user", metavar="ADDRESS", help="as for `hl ingest`")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", metavar="report.html")
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
    _log_to_stderr()  # serve then logs JSON lines (service.configure_logging)
    try:
        return args.func(args)
    except (UserError, CodecError, AdapterError, LogCorruption, LogLocked, SnapshotError, ConfigMismatch, HistoryError) as exc:
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
        print(f"clearinghouse: unexpected error: {type(exc).__name__}: {exc}; this is a bug: "
              f"run again with {TRACEBACK_ENV}=1 for the traceback and report it", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
