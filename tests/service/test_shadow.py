"""The shadow (`clearinghouse.edges.shadow`): a second engine fed the service's records, hashing the
checkpoints and staging the snapshots. Real processes, real pipes, real files.

What the shadow sends and stages is what the file-log `run` computes and writes for the same
input, byte for byte; a record that does not decode moves it past as it moves the service; it
refuses to follow from a state other than the service's; a shadow that ends loses the digests
the service waits for loudly; it dies with a SIGKILLed service."""

from __future__ import annotations

import asyncio
import io
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from clearinghouse.digest import state_digest
from clearinghouse.edges.runner import fix_settings, position_snapshot
from clearinghouse.edges.shadow import (
    HEADER,
    DigestLost,
    Saved,
    Shadow,
    follow,
    frame,
    named,
)
from clearinghouse.engine import Engine
from clearinghouse.state import LiquidationConfig, State
from events import schema as ev
from events.codec import decode_block_at, encode_block
from events.kafkalog import Record
from replay.fold import LogPosition, step
from replay.logdir import LogDir, LogSettings
from replay.snapshot import SnapshotStore, stage_snapshot
from replay.workload import GeneratorConfig, generate

ROOT = Path(__file__).resolve().parents[2]


def _records(sizes: list[int]) -> list[Record]:
    """Blocks of deposits of the given sizes at offsets 0, 1, ..., with a garbage record after
    the first (offset 1)."""
    records, seq = [], 0
    for size in sizes:
        records.append(
            Record(
                len(records),
                encode_block([ev.Deposit(account=f"a{seq + i}", amount=10**6, ts=seq + i) for i in range(size)], seq),
            )
        )
        seq += size
        if len(records) == 1:
            records.append(Record(1, b"garbage"))
    return records


def _generated(events: list[Any], size: int) -> list[Record]:
    return [Record(i, encode_block(events[at : at + size], at)) for i, at in enumerate(range(0, len(events), size))]


def _messages(data: bytes) -> list[Any]:
    messages, view = [], memoryview(data)
    while view:
        (size,) = HEADER.unpack(view[: HEADER.size])
        messages.append(msgspec.msgpack.decode(view[HEADER.size : HEADER.size + size]))
        view = view[HEADER.size + size :]
    return messages


class _Service:
    """What the service does with the records, in this process: the indexed engine's step and
    each record's output; and, worked out from the rule (a checkpoint and a snapshot where the
    input crosses a multiple of `every`), the digests and snapshot files the shadow must match."""

    def __init__(self, tmp_path: Path, records: list[Record], every: int) -> None:
        engine = Engine(State(liquidation=LiquidationConfig()))
        at = LogPosition(engine.state)
        self.frames: list[list[Any]] = []
        self.expected: list[Any] = []
        self.files: dict[int, bytes] = {}
        for record in records:
            first, made = engine.state.next_seq, []
            if record.value == b"garbage":
                at.offset = record.offset + 1
            else:
                made = step(
                    engine,
                    at,
                    record.offset,
                    decode_block_at(record.value).events,
                    record.value,
                    checkpoint_every=every,
                )
            self.frames.append([record.offset, record.value, named(made), len(made)])
            end = engine.state.next_seq
            if end // every > first // every:
                self.expected += [["digest", end - 1, state_digest(engine.state)], ["staged", end - 1, at.offset]]
                path = tmp_path / "in-loop" / f"{end - 1}.snap"
                stage_snapshot(path, position_snapshot(at))
                self.files[end - 1] = path.with_name(path.name + ".tmp").read_bytes()

    def source(self, cut: int) -> io.BytesIO:
        """The records in two frames, cut before record `cut`."""
        return io.BytesIO(frame(self.frames[:cut]) + frame(self.frames[cut:]))


def _staged_files(home: LogDir) -> dict[int, bytes]:
    return {
        int(path.name.split("-")[1].split(".")[0]) - 1: path.read_bytes()
        for path in sorted(home.state.glob("snap-*.snap.tmp"))
    }


def test_the_shadow_hashes_each_checkpoint_and_stages_a_snapshot_at_each_multiple(tmp_path: Path) -> None:
    """Checkpoints and snapshots every 100 events over records ending at seqs 149, 198, 199,
    249 and 300: the input crosses a multiple of 100 at the records ending at 149, 199 and 300,
    so the shadow sends three digests and stages three snapshots there (after 199 the next is
    due at 300, not 299 + 100); each digest is the state's at that seq, each staged file the one
    the file-log run writes for that position. It only stages: publishing is the service's."""
    home = LogDir(tmp_path / "home")
    fix_settings(home, LogSettings(checkpoint_every=100))
    service = _Service(tmp_path, _records([150, 49, 1, 50, 51]), 100)
    out = io.BytesIO()
    assert follow(home, 0, 100, service.source(3), out) == 0
    assert [m[:2] for m in _messages(out.getvalue())] == [
        ["digest", 149],
        ["staged", 149],
        ["digest", 199],
        ["staged", 199],
        ["digest", 300],
        ["staged", 300],
    ]
    assert _messages(out.getvalue()) == service.expected
    assert [m[2] for m in service.expected if m[0] == "staged"] == [1, 4, 6]  # the garbage record is offset 1
    assert _staged_files(home) == service.files
    assert not SnapshotStore(home.state).paths()


@pytest.mark.slow
def test_guided_by_the_services_decisions_the_shadow_holds_its_state(tmp_path: Path) -> None:
    """A crash stream with PM accounts (liquidations, backstops, borrow liquidations): the
    shadow guided by the accounts the service's decisions named, and the shadow unguided, send
    the digests of the indexed engine's states and stage its snapshots byte for byte."""
    events = list(generate(GeneratorConfig(accounts=400, markets=4, events=20_000, seed=11, crash=True, pm_share=0.2)))
    service = _Service(tmp_path, _generated(events, 250), 5_000)
    assert sum(count for *_, count in service.frames) > 100  # it decides something
    assert any(names for _, _, names, _ in service.frames)
    for guided in (True, False):
        home = LogDir(tmp_path / f"home-{guided}")
        fix_settings(home, LogSettings(checkpoint_every=5_000))
        out = io.BytesIO()
        assert follow(home, 0, 5_000, service.source(37), out, guided=guided) == 0
        assert _messages(out.getvalue()) == service.expected
        assert _staged_files(home) == service.files


def test_a_shadow_whose_decisions_differ_exits_and_says_so(tmp_path: Path) -> None:
    """The service's decisions for one record name an account the shadow's do not: the shadow
    exits with `DIVERGED`, and the service's side sees it (`diverged`: its next session runs
    the shadow unguided)."""
    home = LogDir(tmp_path / "home")
    events = [ev.Deposit(account=f"a{i}", amount=10**6) for i in range(10)]
    record = Record(0, encode_block(events, 0))

    async def diverge() -> tuple[bool, str]:
        shadow = Shadow(SnapshotStore(home.state))
        await shadow.start(home, 0, 100)
        shadow.forward(
            record,
            [
                ev.LiquidationTriggered(
                    account="a3", scope="cross", cause=4, equity=0, maintenance=1, positions=[], phase="market"
                )
            ],
        )
        await shadow.send()
        with pytest.raises(DigestLost) as lost:
            await asyncio.wait_for(shadow.digest_in(shadow.digest(State(next_seq=100))), 60)
        await shadow.kill()
        return shadow.diverged, str(lost.value)

    diverged, reason = asyncio.run(diverge())
    assert diverged
    assert reason.endswith("exited with 3 (its decisions differed from the service's)")


def test_the_shadow_follows_only_the_state_the_service_loaded(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Told the service stands at seq 5 while the log has no snapshot (a fresh state, seq 0),
    the shadow refuses to follow and says why."""
    home = LogDir(tmp_path / "home")
    assert follow(home, 5, 100, io.BytesIO(), io.BytesIO()) == 2
    captured = capfd.readouterr()  # one read: a second one finds nothing left
    assert "shadow_mismatch" in captured.out + captured.err


def test_a_shadow_that_ends_loses_its_digests_loudly(tmp_path: Path) -> None:
    """The shadow's process is killed: a digest the service holds or asks for afterwards raises
    `DigestLost` (the session then restarts from the newest snapshot), never hangs."""
    home = LogDir(tmp_path / "home")

    async def lose() -> tuple[str, str]:
        shadow = Shadow(SnapshotStore(home.state))
        await shadow.start(home, 0, 100)
        held = shadow.digest(State(next_seq=100))
        assert shadow._process is not None
        shadow._process.kill()
        reasons = []
        for later in (100, 200):  # the second asked for once the first is lost
            with pytest.raises(DigestLost) as lost:
                await asyncio.wait_for(
                    shadow.digest_in(held if later == 100 else shadow.digest(State(next_seq=later))), 30
                )
            reasons.append(str(lost.value))
        await shadow.kill()
        return reasons[0], reasons[1]

    first, second = asyncio.run(lose())
    assert first == "the shadow exited with -9"
    assert second == "the shadow ended before the checkpoint at seq 199: the shadow exited with -9"


def test_a_staged_snapshot_is_published_by_the_service(tmp_path: Path) -> None:
    """Through the real pipe: the shadow stages the snapshot at 99, the service's side publishes
    it (synced and renamed) and reports it landed."""
    home = LogDir(tmp_path / "home")
    fix_settings(home, LogSettings(checkpoint_every=100))
    deposits = [ev.Deposit(account=f"a{i}", amount=10**6) for i in range(100)]
    records = [Record(0, encode_block(deposits, 0))]

    async def publish() -> tuple[Saved | None, str]:
        shadow = Shadow(SnapshotStore(home.state))
        await shadow.start(home, 0, 100)
        digest = shadow.digest(State(next_seq=100))  # as `replay.fold.step` asks, before the record goes
        shadow.forward(records[0], [])
        await shadow.send()
        await asyncio.wait_for(shadow.digest_in(digest), 60)
        return await shadow.close(), digest.result()

    saved, digest = asyncio.run(publish())
    assert saved == Saved(99, 1)
    reference = Engine()
    for event in deposits:
        reference.apply(event)
    assert digest == state_digest(reference.state)
    assert [SnapshotStore.seq_of(path) for path in SnapshotStore(home.state).paths()] == [100]
    assert not list(home.state.glob("*.tmp"))


SHADOW_OF_A_KILLED_SERVICE = """
import asyncio, sys
from pathlib import Path
from replay.logdir import LogDir
from clearinghouse.edges.shadow import Shadow
from replay.snapshot import SnapshotStore

async def main() -> None:
    home = LogDir(Path(sys.argv[1]))
    shadow = Shadow(SnapshotStore(home.state))
    await shadow.start(home, 0, 100)
    print(shadow._process.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.slow
def test_the_shadow_dies_with_the_service(tmp_path: Path) -> None:
    """A SIGKILLed service leaves no shadow behind (it would stage snapshots beside the next
    instance's)."""
    service = subprocess.Popen(
        [sys.executable, "-c", SHADOW_OF_A_KILLED_SERVICE, str(tmp_path / "home")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert service.stdout is not None
        shadow = int(service.stdout.readline())
        time.sleep(1.0)  # its start-up is done: it waits on its input
        assert _running(shadow)
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait()
    deadline = time.monotonic() + 10
    while _running(shadow):
        assert time.monotonic() < deadline, f"shadow {shadow} outlived its service"
        time.sleep(0.02)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit status is its new parent's to collect)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"
