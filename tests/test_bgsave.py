"""Snapshots saved by a forked child (`clearinghouse.bgsave`): real forks, real files.

The child's file is byte for byte the one the in-loop save (the file-log `run`'s) writes for the
same state, even while the parent goes on applying; a failed child is reported and reaped and a
later save succeeds; a child dies with a SIGKILLed parent; the child only stages the file,
the parent syncs and renames it once the child is gone. A checkpoint digest hashed by a child
(`ForkedDigest`) is that of the state at the fork, and a child that fails loses it loudly. One
child that hashes a checkpoint and saves its state sends the digest and writes the in-loop file."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clearinghouse.bgsave import BackgroundSave, DigestLost, ForkedDigest, Saved
from clearinghouse.digest import state_digest
from clearinghouse.engine import Engine
from clearinghouse.runner import Known, LogDir, Pending, Position, save_position
from clearinghouse.state import Account, LiquidationConfig, State
from events.generator import GeneratorConfig, generate
from replay.snapshot import SnapshotStore

ROOT = Path(__file__).resolve().parent.parent


def _reaped(pids: list[int]) -> bool:
    """Every pid forked was waited for (none is a zombie or still running)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        return False
    return bool(pids)


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_the_forked_snapshot_is_the_in_loop_one_byte_for_byte(tmp_path: Path, forks: list[int]) -> None:
    events = list(generate(GeneratorConfig(accounts=300, markets=4, events=12_000, seed=5, crash=True)))
    engine = Engine(State(liquidation=LiquidationConfig(slippage_ppm=1_000)))
    for event in events[:10_000]:
        engine.apply(event)
    at = Position(engine.state, derived_count=1_234, chain="ab" * 32, offset=77)
    in_loop, forked = LogDir(tmp_path / "in-loop"), LogDir(tmp_path / "forked")
    save_position(SnapshotStore(in_loop.state), at, None)

    async def save_while_applying() -> Saved | None:
        saver = BackgroundSave(SnapshotStore(forked.state))
        saver.start(at)
        assert saver.busy
        for event in events[10_000:]:  # the parent's state moves on; the child's copy does not
            engine.apply(event)
        at.derived_count, at.offset = 9_999, 99
        return await saver.wait()

    assert asyncio.run(save_while_applying()) == Saved(9_999, 77)
    assert engine.state.next_seq == 12_000
    assert _files(forked.state) == _files(in_loop.state)  # the snapshot (settings are fixed by whoever writes derived events)
    assert _reaped(forks)


def test_the_child_stages_the_file_and_the_parent_syncs_and_renames_it(tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's life ends with its write: the publish (fsync, rename) is the parent's, after
    the child has exited, and until then no reader sees the snapshot."""
    engine = Engine()
    for event in generate(GeneratorConfig(accounts=300, markets=4, events=3_000, seed=5)):
        engine.apply(event)
    at = Position(engine.state, derived_count=12, offset=30)
    home = LogDir(tmp_path / "home")
    store = SnapshotStore(home.state)
    final = store.path(3_000)
    seen: list[tuple[int, bool, bool, bool]] = []
    publish = SnapshotStore.publish

    def watched(self: SnapshotStore, seq: int) -> Path:
        staged = final.with_name(final.name + ".tmp")
        seen.append((os.getpid(), _reaped(forks), staged.exists(), final.exists()))
        return publish(self, seq)

    monkeypatch.setattr(SnapshotStore, "publish", watched)

    async def save() -> Saved | None:
        saver = BackgroundSave(store)
        saver.start(at)
        return await saver.wait()

    assert asyncio.run(save()) == Saved(2_999, 30)
    assert seen == [(os.getpid(), True, True, False)]  # in this process, the child gone, staged only
    assert [path.name for path in store.paths()] == [final.name] and not final.with_name(final.name + ".tmp").exists()
    snapshot, state = store.latest()
    assert (snapshot.seq, snapshot.derived_count, snapshot.offset) == (3_000, 12, 30) and state_digest(state) == state_digest(engine.state)


def test_a_failed_child_is_reported_and_reaped_and_the_next_save_succeeds(tmp_path: Path, capfd: pytest.CaptureFixture[str], forks: list[int]) -> None:
    home = LogDir(tmp_path / "home")
    home.root.mkdir()
    home.state.write_text("not a folder")
    at = Position(State(next_seq=10), offset=3)

    async def save() -> Saved | None:
        saver = BackgroundSave(SnapshotStore(home.state))
        saver.start(at)
        return await saver.wait()

    assert asyncio.run(save()) is None
    logged = "".join(capfd.readouterr())
    assert "snapshot_child_failed" in logged and "FileExistsError" in logged and "snapshot_failed" in logged
    assert _reaped(forks)
    home.state.unlink()
    assert asyncio.run(save()) == Saved(9, 3)
    assert [path.name for path in SnapshotStore(home.state).paths()] == [f"snap-{10:020d}.snap"]


def test_a_forked_digest_is_that_of_the_state_at_the_fork(forks: list[int]) -> None:
    events = list(generate(GeneratorConfig(accounts=300, markets=4, events=6_000, seed=5)))
    engine = Engine()
    for event in events[:5_000]:
        engine.apply(event)
    expected = state_digest(engine.state)
    digest = ForkedDigest(engine.state)
    digest.start()
    for event in events[5_000:]:  # the parent's state moves on; the child's copy does not
        engine.apply(event)
    assert state_digest(engine.state) != expected
    deadline = time.monotonic() + 30
    while not digest.ready():
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert digest.result() == expected and _reaped(forks)
    waited = ForkedDigest(engine.state)  # asked for at once: waits for the child
    waited.start()
    assert waited.result() == state_digest(engine.state) and waited.ready()


def test_a_failed_digest_child_loses_the_digest_loudly(capfd: pytest.CaptureFixture[str], forks: list[int]) -> None:
    broken = State(accounts={"x": Account(positions={"BTC": object()})})  # type: ignore[dict-item]
    digest = ForkedDigest(broken)
    digest.start()
    with pytest.raises(DigestLost, match="exited with 1"):
        digest.result()
    with pytest.raises(DigestLost, match="was lost"):
        digest.ready() or digest.result()
    assert "digest_child_failed" in "".join(capfd.readouterr()) and _reaped(forks)


def test_one_child_hashes_a_checkpoint_and_saves_its_state(tmp_path: Path, forks: list[int]) -> None:
    """The snapshot child given the checkpoint's digest: one fork, the digest is the state's,
    and the file is the in-loop save of the same position with that digest known."""
    events = list(generate(GeneratorConfig(accounts=300, markets=4, events=12_000, seed=5, crash=True)))
    engine = Engine(State(liquidation=LiquidationConfig(slippage_ppm=1_000)))
    for event in events[:10_000]:
        engine.apply(event)
    expected = state_digest(engine.state)
    ts = engine.state.time
    digest = ForkedDigest(engine.state)
    at = Position(engine.state, derived_count=1_234, chain="ab" * 32, offset=77, pending=Pending(9_999, "cd" * 32, ts, digest))
    in_loop, forked = LogDir(tmp_path / "in-loop"), LogDir(tmp_path / "forked")
    save_position(SnapshotStore(in_loop.state), Position(engine.state, 1_234, "ab" * 32, 77, Pending(9_999, "cd" * 32, ts, Known(expected))), None)

    async def save_while_applying() -> Saved | None:
        saver = BackgroundSave(SnapshotStore(forked.state))
        saver.start(at, digest)
        for event in events[10_000:]:  # the parent's state moves on; the child's copy does not
            engine.apply(event)
        at.derived_count, at.offset, at.pending = 9_999, 99, None
        while not digest.ready():
            await asyncio.sleep(0.001)
        return await saver.wait()

    assert asyncio.run(save_while_applying()) == Saved(9_999, 77)
    assert digest.result() == expected != state_digest(engine.state)
    assert _files(forked.state) == _files(in_loop.state)
    assert len(forks) == 1 and _reaped(forks)


def test_a_saving_child_that_fails_before_hashing_loses_both(tmp_path: Path, capfd: pytest.CaptureFixture[str], forks: list[int]) -> None:
    broken = State(next_seq=5, accounts={"x": Account(positions={"BTC": object()})})  # type: ignore[dict-item]
    digest = ForkedDigest(broken)
    home = LogDir(tmp_path / "home")

    async def save() -> Saved | None:
        saver = BackgroundSave(SnapshotStore(home.state))
        saver.start(Position(broken, pending=Pending(4, "", 0, digest)), digest)
        return await saver.wait()

    assert asyncio.run(save()) is None
    with pytest.raises(DigestLost, match="the child hashing seq 4 sent no digest"):
        digest.result()
    logged = "".join(capfd.readouterr())
    assert "snapshot_child_failed" in logged and "snapshot_failed" in logged and _reaped(forks)
    assert not list(home.state.glob("*.snap"))


CHILD_OF_A_KILLED_PARENT = """
import asyncio, os, sys, time
from clearinghouse.bgsave import BackgroundSave
from clearinghouse.runner import LogDir, Position
from clearinghouse.state import Account, State
from replay.snapshot import SnapshotStore

home = LogDir(__import__("pathlib").Path(sys.argv[1]))
state = State(next_seq=1, accounts={f"a{i:07d}": Account(raw_usd=i) for i in range(1_500_000)})

async def main():
    BackgroundSave(SnapshotStore(home.state)).start(Position(state))
    print(open(f"/proc/self/task/{os.getpid()}/children").read().split()[0], flush=True)
    time.sleep(60)

asyncio.run(main())
"""


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A SIGKILLed service leaves no snapshot writer behind (it would race the next instance)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD_OF_A_KILLED_PARENT, str(tmp_path / "home")], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while _running(child):
        assert time.monotonic() < deadline, f"snapshot child {child} outlived its parent"
        time.sleep(0.02)
    assert not list((tmp_path / "home" / "state").glob("*.snap"))


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit status is its new parent's to collect)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"
