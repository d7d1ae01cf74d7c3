"""The event log over the file log, snapshots, and `run` resuming without losing or repeating."""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec
import pytest

from clearinghouse.digest import state_digest
from clearinghouse.edges.runner import run
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig
from events import schema as ev
from events.eventlog import EventLog
from replay.fold import LogPosition, chain_step, step
from replay.logdir import ConfigMismatch, LogDir, LogSettings, settings
from replay.snapshot import (
    MAGIC,
    SnapshotError,
    SnapshotStore,
    make_snapshot,
    read_head,
    read_snapshot,
)
from replay.workload import GeneratorConfig, generate
from tests.support.streams import crash_stream

USD = 10**6


def _write(root: Path, events: list, block: int = 100) -> LogDir:
    log = LogDir(root)
    with EventLog(log.events) as out:
        for i in range(0, len(events), block):
            out.append(events[i : i + block])
    return log


def _stream(n: int = 3000) -> list:
    return list(generate(GeneratorConfig(accounts=80, markets=4, events=n, seed=9)))


def test_event_log_reads_from_any_seq(tmp_path: Path) -> None:
    events = [ev.Deposit(account=f"a{i}", amount=(i + 1) * USD) for i in range(250)]
    with EventLog(tmp_path / "events") as log:
        for size in (1, 7, 100, 42, 100):
            log.append(events[log.next_seq : log.next_seq + size])
    with EventLog(tmp_path / "events", readonly=True) as log:
        assert log.next_seq == 250
        for start in (0, 1, 7, 8, 107, 108, 149, 150, 249):
            assert [e for _, e in log.read(start)] == events[start:]
            assert [s for s, _ in log.read(start, start + 3)] == list(range(start, min(start + 3, 250)))
        assert list(log.read(250)) == []


def test_run_equals_a_plain_fold_and_resumes_where_it_stopped(tmp_path: Path) -> None:
    events = [ev.Deposit(account="x", amount=5 * USD), ev.Withdraw(account="x", amount=9 * USD)] + _stream()
    expected = Engine()
    rejected = [d for e in events for d in expected.apply(e)]
    assert rejected and rejected[0].seq == 1
    whole = run(_write(tmp_path / "whole", events), snapshot_every=500)
    assert state_digest(whole.state) == state_digest(expected.state)
    # In two halves: the second run starts from the first run's snapshot.
    log = _write(tmp_path / "halves", events[:1500])
    run(log)
    with EventLog(log.events) as out:
        out.append(events[1500:])
    second = run(log)
    assert second.applied == len(events) - 1500
    assert state_digest(second.state) == state_digest(expected.state)
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        assert [e for _, e in derived.read()] == rejected


def test_a_crash_between_derived_events_and_snapshot_neither_loses_nor_repeats(tmp_path: Path) -> None:
    events = [ev.Deposit(account="x", amount=5 * USD)] + [ev.Withdraw(account="x", amount=9 * USD)] * 10
    log = _write(tmp_path / "log", events, block=5)
    run(log, snapshot_every=5)
    store = SnapshotStore(log.state)
    assert [p.name for p in store.paths()] == [f"snap-{n:020d}.snap" for n in (5, 10, 11)]
    # The crash: the snapshots after seq 4 never made it to disk, the derived events did.
    for path in store.paths()[1:]:
        path.unlink()
    snap, _ = store.latest()
    assert (snap.seq, snap.derived_count) == (5, 4)
    result = run(log)
    assert result.applied == 6
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        assert [e.seq for _, e in derived.read()] == list(range(1, 11))


def test_a_snapshot_on_demand(tmp_path: Path) -> None:
    log = _write(tmp_path / "log", _stream(500))
    run(log)
    (path,) = SnapshotStore(log.state).paths()
    written = path.stat().st_mtime_ns
    assert run(log).applied == 0 and path.stat().st_mtime_ns == written  # nothing new: no write
    assert run(log, snapshot_now=True).applied == 0
    assert path.stat().st_mtime_ns != written and read_snapshot(path).seq == 500


def test_a_corrupt_or_torn_newest_snapshot_falls_back_to_an_older_one(tmp_path: Path) -> None:
    stream = _stream(3000)
    log = _write(tmp_path / "log", stream)
    first = run(log, snapshot_every=1000, checkpoint_every=1000)
    store = SnapshotStore(log.state)
    newest, older = store.paths()[-1], store.paths()[-2]
    data = bytearray(newest.read_bytes())
    data[-5] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum mismatch"):
        read_snapshot(newest)
    snap, _ = store.latest()
    assert snap.seq == int(older.stem.split("-")[1])
    older.write_bytes(older.read_bytes()[:100])  # torn
    snap, _ = store.latest()
    assert snap.seq < 2000
    again = run(log, checkpoint_every=1000)
    assert again.applied == len(stream) - snap.seq
    assert state_digest(again.state) == state_digest(first.state)
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        checkpoints = [e for _, e in derived.read() if isinstance(e, ev.Checkpoint)]
    assert [c.seq for c in checkpoints] == [999, 1999]  # 2999's lands 500 events later: held
    held = store.latest()[0].pending
    assert held is not None and held.seq == 2999 and held.digest == state_digest(first.state)


def test_a_staged_snapshot_is_seen_by_no_reader_until_it_is_published(tmp_path: Path) -> None:
    """The two halves of the atomic write, as a forked saver (stage) and its parent (publish)
    do them: until the publish the older snapshot is the newest, a crash's torn temp file is
    replaced by the next stage, and the published file is the one `write` makes."""
    stream = _stream(2000)
    engine = Engine()
    for event in stream[:1000]:
        engine.apply(event)
    store, reference = SnapshotStore(tmp_path / "state"), SnapshotStore(tmp_path / "reference")
    store.write(make_snapshot(engine.state, 3))
    for event in stream[1000:]:
        engine.apply(event)
    newer = make_snapshot(engine.state, 7)
    staged = store.path(2000).with_name(f"snap-{2000:020d}.snap.tmp")
    staged.write_bytes(MAGIC + b"torn")  # what a crash mid-stage leaves
    store.stage(newer)
    assert [path.name for path in store.paths()] == [f"snap-{1000:020d}.snap"]
    snap, _ = store.latest()
    assert (snap.seq, snap.derived_count) == (1000, 3)
    assert store.publish(2000) == store.path(2000)
    snap, state = store.latest()
    assert (snap.seq, snap.derived_count) == (2000, 7) and state_digest(state) == state_digest(engine.state)
    assert sorted(path.name for path in store.directory.iterdir()) == [
        f"snap-{1000:020d}.snap",
        f"snap-{2000:020d}.snap",
    ]
    assert store.path(2000).read_bytes() == reference.write(newer).read_bytes()


@pytest.mark.slow
def test_resuming_from_a_snapshot_mid_crash_decides_as_one_run(tmp_path: Path) -> None:
    """The trigger index is not persisted: it is rebuilt from the snapshot's state, and the
    decisions after the restart are those of an uninterrupted run."""
    stream = crash_stream(accounts=300, events=4_000, seed=5)
    config = LiquidationConfig(loss_limit=0)
    whole = _write(tmp_path / "whole", stream)
    run(whole, liquidation=config)
    halves = _write(tmp_path / "halves", stream[: len(stream) - 40])
    run(halves, liquidation=config)
    with EventLog(halves.events) as out:
        out.append(stream[len(stream) - 40 :])
    resumed = run(halves)
    assert resumed.applied == 40
    with (
        EventLog(whole.derived, derived=True, readonly=True) as a,
        EventLog(halves.derived, derived=True, readonly=True) as b,
    ):
        first, second = [e for _, e in a.read()], [e for _, e in b.read()]
    assert len(first) > 50 and first == second
    assert SnapshotStore(whole.state).latest()[0].digest == SnapshotStore(halves.state).latest()[0].digest


def test_a_moment_finds_its_snapshot_from_the_heads(tmp_path: Path) -> None:
    """The newest snapshot at or before a time, found from each file's first bytes; a file whose
    head cannot be read is read whole (and skipped if it is bad)."""
    stream = _stream(3000)
    log = _write(tmp_path / "log", stream)
    run(log, snapshot_every=1000)
    store = SnapshotStore(log.state)
    heads = [read_head(path) for path in store.paths()]
    assert [h.seq for h in heads] == [1000, 2000, 3000]
    assert [h.time for h in heads] == [stream[999].ts, stream[1999].ts, stream[2999].ts]
    assert store.latest(time=stream[2500].ts)[0].seq == 2000
    assert store.latest(time=stream[999].ts)[0].seq == 1000
    assert store.latest(time=stream[998].ts) is None
    middle = store.paths()[1]
    middle.write_bytes(middle.read_bytes()[:30])  # torn inside the checksum
    assert read_head(middle) is None
    assert store.latest(time=stream[2500].ts)[0].seq == 1000


def _landings(stream: list, sizes: list[int], every: int) -> list[tuple[int, int]]:
    """(record index, checkpoint seq) for each checkpoint `step` lands, records of `sizes`."""
    engine = Engine()
    at = LogPosition(engine.state)
    landed, start = [], 0
    for index, size in enumerate(sizes):
        out = step(engine, at, index, stream[start : start + size], None, checkpoint_every=every)
        start += size
        landed += [(index, e.seq) for e in out if isinstance(e, ev.Checkpoint)]
    return landed


def test_a_checkpoint_lands_half_an_interval_after_its_state() -> None:
    """Taken after the record that ends an interval, landed after the first record that ends
    `every // 2` events past it, or before the record that takes the next one lands its own."""
    stream = _stream(3000)
    # Records of 100: taken at records 9 and 19 (seqs 999, 1999), landed at records 14 (ends
    # 1499) and 24 (ends 2499); 2999's is still held at the end.
    assert _landings(stream, [100] * 30, 1000) == [(14, 999), (24, 1999)]
    # Records of 700: record 1 ends 1399 (taken); record 2 ends 2099, past 1899, and ends the
    # next interval: 1399's lands, 2099's is taken; record 3 ends 2799, past 2599.
    assert _landings(stream, [700] * 4, 1000) == [(2, 1399), (3, 2099)]
    # An interval of 1 lands every checkpoint with the record that takes it.
    assert _landings(stream, [3, 4], 1) == [(0, 2), (1, 6)]


def test_a_checkpoint_holds_the_digest_and_chain_of_its_state(tmp_path: Path) -> None:
    stream = _stream(2000)
    log = _write(tmp_path / "log", stream)
    run(log, checkpoint_every=1000)
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        (checkpoint,) = [e for _, e in derived.read() if isinstance(e, ev.Checkpoint)]
    plain = Engine()  # the simple twin: the first 1000 events, nothing else
    for event in stream[:1000]:
        plain.apply(event)
    chain = ""
    for i in range(0, 1000, 100):
        chain = chain_step(chain, i, stream[i : i + 100], None)
    assert (checkpoint.seq, checkpoint.digest, checkpoint.chain) == (999, state_digest(plain.state), chain)


def test_a_held_checkpoint_lands_in_its_place_after_a_restart(tmp_path: Path) -> None:
    """A run that stops between a checkpoint's state and its landing keeps it in the snapshot;
    the next run lands it where one run over the whole log does."""
    stream = _stream(3000)
    whole = _write(tmp_path / "whole", stream)
    run(whole, checkpoint_every=1000)
    parts = _write(tmp_path / "parts", stream[:1200])
    run(parts, checkpoint_every=1000)
    snap, _ = SnapshotStore(parts.state).latest()
    assert snap.seq == 1200 and snap.pending is not None and snap.pending.seq == 999
    with EventLog(parts.events) as out:
        for i in range(1200, 3000, 100):
            out.append(stream[i : i + 100])
    run(parts, checkpoint_every=1000)
    with (
        EventLog(whole.derived, derived=True, readonly=True) as a,
        EventLog(parts.derived, derived=True, readonly=True) as b,
    ):
        assert list(a.read()) == list(b.read())


def test_a_version_4_snapshot_is_read_as_holding_no_checkpoint_and_older_ones_are_refused(tmp_path: Path) -> None:
    """Version 4 came before checkpoints were held (each landed with its record): its file has
    no `pending` field and reads as holding none; a version 3 is refused."""
    log = _write(tmp_path / "log", _stream(500))
    run(log)
    path = SnapshotStore(log.state).paths()[-1]
    fields = msgspec.structs.asdict(read_snapshot(path))
    del fields["pending"]
    for version in (4, 3):
        body = msgspec.msgpack.encode({**fields, "version": version})
        path.write_bytes(MAGIC + hashlib.blake2b(body, digest_size=32).digest() + body)
        if version == 4:
            old = read_snapshot(path)
            assert old.pending is None and old.seq == 500 and old.version == 4
        else:
            with pytest.raises(SnapshotError, match="snapshot version 3, expected one of"):
                read_snapshot(path)


def _checkpoint_seqs(log: LogDir) -> list[int]:
    with EventLog(log.derived, derived=True, readonly=True) as derived:
        return [e.seq for _, e in derived.read() if isinstance(e, ev.Checkpoint)]


def test_the_checkpoint_interval_is_fixed_by_the_first_run(tmp_path: Path) -> None:
    """Where checkpoints fall is part of the derived stream a restart counts, so a later run may
    not change the interval: without a flag it keeps the log's, and asking for another is
    refused before anything is applied."""
    stream = _stream(3000)
    log = _write(tmp_path / "log", stream[:1500])
    run(log, checkpoint_every=400)
    # taken after the records ending at 399, 799, 1199; each lands 200 events later
    assert _checkpoint_seqs(log) == [399, 799, 1199]
    with EventLog(log.events) as out:
        for start in range(1500, 3000, 100):
            out.append(stream[start : start + 100])
    written = read_snapshot(SnapshotStore(log.state).paths()[-1]).seq
    with pytest.raises(ConfigMismatch, match="was run with a checkpoint every 400 events"):
        run(log, checkpoint_every=1000)
    assert read_snapshot(SnapshotStore(log.state).paths()[-1]).seq == written == 1500  # nothing applied
    again = run(log)  # the log's own interval
    assert again.applied == 1500
    assert _checkpoint_seqs(log) == [399, 799, 1199, 1599, 1999, 2399, 2799]  # 2799's lands at 2999


def test_a_settings_file_without_the_interval_is_read_and_completed(tmp_path: Path) -> None:
    """A log whose settings file predates the interval (a bare `LiquidationConfig`) keeps its
    liquidation settings, takes the interval of its next run, and holds both from then on."""
    log = _write(tmp_path / "log", _stream(1000))
    config = LiquidationConfig(mode="impact")
    log.settings.parent.mkdir(parents=True)
    log.settings.write_bytes(msgspec.msgpack.encode(config))
    assert settings(log) == LogSettings(config, 100_000)
    run(log, checkpoint_every=300)
    assert msgspec.msgpack.decode(log.settings.read_bytes(), type=LogSettings) == LogSettings(config, 300)
    with pytest.raises(ConfigMismatch, match="every 300 events"):
        settings(log, checkpoint_every=100_000)
    log.settings.write_bytes(b"\x01garbage")
    with pytest.raises(ConfigMismatch, match="does not hold a log's settings"):
        settings(log)
