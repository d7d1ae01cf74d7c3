"""The `clearinghouse` command: one entry point, a subcommand per job (an edge, not the core)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
from collections import Counter
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import structlog
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.overview import overview, render
from clearinghouse.produce import event_blocks, log_blocks, produce
from clearinghouse.runner import ConfigMismatch, LogBehind, LogDir, RunResult, check_snapshots, repair, run
from clearinghouse.service import ServiceError, Settings, configure_logging, file_service, kafka_service, serve
from clearinghouse.state import LiquidationConfig, State
from clearinghouse.summary import clearinghouse_state
from clearinghouse.units import NTL_DIV, USD_DECIMALS, format_decimal, parse_decimal
from events.adapters.hyperliquid import AdapterError, import_events
from events.codec import CodecError, decode_json, encode_json, iter_json_lines
from events.eventlog import EventLog, Fingerprint, Ingested, blocks_of
from events.filelog import LogCorruption, LogLocked
from events.generator import GeneratorConfig, generate, write_jsonl
from events.kafkalog import KafkaConfig, KafkaConfigError, Topics, ensure_topics
from events.schema import Trade, event_type
from replay.audit import audit
from replay.history import HistoryError, diff, parse_time, state_at
from replay.report import render_html
from replay.snapshot import SnapshotError
from replay.verify import verify

BLOCK = 1000  # events per stored block
# The demo lets the liquidator absorb at most 100 USDC per takeover, so its crash shows ADL and bad debt.
DEMO_LIQUIDATION = LiquidationConfig(loss_limit=100_000_000)
TOKEN_ENV = "CLEARINGHOUSE_API_TOKEN"


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


def _usd_arg(text: str) -> int:
    try:
        return parse_decimal(text, USD_DECIMALS)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bps_to_ppm(text: str) -> int:
    """Basis points (decimals allowed, e.g. 2.5) -> parts per million."""
    try:
        return parse_decimal(text, 2)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    return msgspec.structs.replace(defaults or LiquidationConfig(), **changes)


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


def cmd_generate(args: argparse.Namespace) -> int:
    count = write_jsonl(generate(_config(args)), Path(args.out))
    print(f"wrote {count} events to {args.out}")
    return 0


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
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        kinds = Counter(event_type(e) for _, e in derived.read())
        pm_perps = sum(1 for _, e in derived.read() if event_type(e) == "liquidation_triggered" and e.scope == "portfolio")
    rejections = kinds.pop("rejected", 0)
    rate = result.applied / result.seconds if result.seconds else 0.0
    demo = {
        "log": str(root),
        "events": result.applied,
        "trades": trades,
        "volume_usd": {coin: format_decimal(v, USD_DECIMALS) for coin, v in sorted(volume.items())},
        "rejections": rejections,
        "decisions": dict(sorted(kinds.items())),
        "events_per_second": round(rate),
        **view,
    }
    if args.json:
        _print_json(demo)
        return 0
    total_volume = format_decimal(sum(volume.values()), USD_DECIMALS)
    print(f"demo log: {root}")
    print(f"{result.applied:,} events ({trades:,} trades, volume {total_volume} USDC) applied at {rate:,.0f} events/s; {rejections} rejected")
    print(
        f"liquidations: {kinds['liquidation_triggered']:,} triggered, {kinds['liquidation_fill']:,} market fills, "
        f"{kinds['backstop']:,} backstop takeovers, {kinds['adl']:,} auto-deleveraged closes, "
        f"{kinds['bad_debt']:,} bad debts ({view['bad_debt']} USDC)"
    )
    if "lending" in view:
        print(f"portfolio margin: {kinds['borrow_liquidation']:,} borrow liquidations (backstop), {pm_perps:,} PM-ratio liquidations of perps")
    print(render(view))
    print(f"inspect: clearinghouse state --log {root} --account {view['most_leveraged'][0]['account']}" if view["most_leveraged"] else "")
    return 0


def _state_output(args: argparse.Namespace, state: State) -> None:
    if args.account:
        if args.account not in state.accounts:
            raise UserError(f"unknown account {args.account!r}")
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
    verdict = verify(_log_dir(args.log), progress=_progress(args, "verifying"))
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
    log = _log_dir(args.log)
    result = audit(log, args.account)
    if not result.series:
        raise UserError(f"account {args.account!r} does not appear in {args.log}")
    if args.json:
        _print_json(result.as_json())
    if args.out:
        Path(args.out).write_text(render_html(result, str(log.root)), encoding="utf-8")
    if not args.json:
        print(f"{args.account}: {len(result.episodes)} liquidation event(s)")
        for episode in result.episodes:
            kinds = Counter(a["type"] for a in episode.actions)
            print(f"  seq {episode.cause} ({episode.trigger['type']}): {', '.join(f'{k} x{v}' for k, v in sorted(kinds.items())) or 'orders pending'}; kept {episode.kept} USDC")
        if args.out:
            print(f"report: {args.out}")
    return 0


def cmd_replay_diff(args: argparse.Namespace) -> int:
    _print_json(diff(_log_dir(args.log), args.start, args.end, args.account))
    return 0


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not JSON: {exc}") from None


def _hl_events(args: argparse.Namespace, account: str) -> list[Any]:
    meta = _read_json(args.meta) if args.meta else None
    return import_events(_read_json(args.file), account, meta=meta, rules=args.rules)


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
            raise UserError(f"cannot read the token file: {exc}") from None
        if not token:
            raise UserError(f"{args.token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings(args.snapshot_every, args.checkpoint_every, args.keep, _liquidation(args), args.full_scan)
    token = _token(args)
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
        asyncio.run(serve(service, host=args.host, port=args.port, token=token))
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
    g.add_argument("--partition", type=int, default=0, metavar="N", help="the partition (account shard) this process owns (default 0)")
    g.add_argument("--partitions", type=int, default=1, metavar="N", help="partitions of topics created here (default 1)")


# ---- parser -------------------------------------------------------------------------------------


def _generator_args(p: argparse.ArgumentParser, accounts: int, markets: int, events: int, crash: bool) -> None:
    p.add_argument("--accounts", type=int, default=accounts, help=f"accounts (default {accounts})")
    if crash:
        p.add_argument("--no-crash", dest="crash", action="store_false", help="no crash: a calm market")
    else:
        p.add_argument("--crash", action="store_true", help="a sharp multi-market drop and rebound, 60%% into the stream")
    p.add_argument("--markets", type=int, default=markets, help=f"perp markets (default {markets})")
    p.add_argument("--events", type=int, default=events, help=f"events in all (default {events})")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same stream")
    pm = 0.2 if crash else 0.0  # the demo (crash by default) shows portfolio margin too
    p.add_argument("--pm-share", type=float, default=pm, metavar="SHARE",
                   help=f"share of accounts in portfolio margin: spot collateral, carry trades, borrowed USDC (default {pm})")


def _liquidation_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("liquidation (fixed when a log's state is created)")
    g.add_argument("--liquidation", choices=["mark", "impact", "external", "off"], help="execution mode (default mark)")
    g.add_argument("--slippage-bps", type=_bps_to_ppm, metavar="BPS", help="mark mode: fills at mark -/+ this (default 0)")
    g.add_argument("--impact-bps", type=_bps_to_ppm, metavar="BPS", help="impact mode: price move per DEPTH of notional (default 100)")
    g.add_argument("--depth", type=_usd_arg, metavar="USDC", help="impact mode: market depth (default 1000000)")
    g.add_argument("--liquidator-loss-limit", type=_usd_arg, metavar="USDC", help="most the liquidator absorbs per takeover; beyond it ADL (default: no limit)")
    g.add_argument("--full-scan", action="store_true", help="reference trigger mode: check every account on every tick")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clearinghouse", description="Event-sourced clearinghouse with Hyperliquid's margin rules.")
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
    p.add_argument("--snapshot-every", type=int, default=100_000, metavar="N", help="write a snapshot every N events (default 100000; and always at the end)")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="derived checkpoint every N events (default: the log's own, 100000 for a new one; fixed by its first run)")
    p.add_argument("--keep", type=int, default=10, metavar="K", help="snapshots kept (default 10; 0 keeps all)")
    p.add_argument("--snapshot-now", action="store_true", help="write a snapshot at the end even if nothing new was applied")
    _liquidation_args(p)

    p = command("state", cmd_state, "the state: one account in the clearinghouseState shape, or a summary table")
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--account", metavar="A")
    p.add_argument("--json", action="store_true")

    p = command("events", cmd_events, "print logged events (or the derived ones) as JSON lines")
    p.add_argument("--log", required=True, metavar="DIR")
    p.add_argument("--derived", action="store_true", help="the engine's derived events (rejections, ...)")
    p.add_argument("--from", dest="start", type=int, default=0, metavar="SEQ")
    p.add_argument("--limit", type=int, metavar="N")

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
    p.add_argument("--port", type=int, default=8080, help="HTTP API port (default 8080; 0 picks a free one, logged as http_listening)")
    p.add_argument("--token-file", metavar="FILE", help=f"require this bearer token on the HTTP API (or set ${TOKEN_ENV})")
    p.add_argument("--snapshot-every", type=int, default=100_000, metavar="N", help="snapshot every N events (default 100000; and at shutdown)")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="derived checkpoint every N events (default: the log's own, 100000 for a new one; fixed by its first run)")
    p.add_argument("--keep", type=int, default=10, metavar="K", help="snapshots kept (default 10)")
    _liquidation_args(p)

    p = command("produce", cmd_produce, "publish a stream into a Kafka topic at a target rate (load tests, moving a file log into Kafka)")
    _kafka_args(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--log", metavar="DIR", help="the blocks of a file log, as stored")
    source.add_argument("--events", metavar="FILE", help="a JSON-lines file of events")
    source.add_argument("--generate", action="store_true", help="a seeded synthetic stream (the generator's options below)")
    p.add_argument("--rate", type=int, default=0, metavar="EV_PER_S", help="target events per second (default 0: as fast as possible)")
    p.add_argument("--block", type=int, default=BLOCK, metavar="N", help=f"events per record for --events/--generate (default {BLOCK})")
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--markets", type=int, default=5)
    p.add_argument("--count", dest="events_count", type=int, default=100_000, metavar="N", help="--generate: events in all (default 100000)")
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

    hl_text = "Hyperliquid data: recompute or import a clearinghouseState"
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # warnings never in --json stdout
    try:
        return args.func(args)
    except (UserError, CodecError, AdapterError, LogCorruption, LogLocked, SnapshotError, ConfigMismatch, HistoryError) as exc:
        print(f"clearinghouse: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
