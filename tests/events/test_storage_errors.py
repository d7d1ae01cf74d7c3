"""Storage errors as one clean line and a non-zero exit, and the states they leave recovered:
a full disk, a read-only folder, a second writer, a derived log shorter than the snapshot
counts, a temp snapshot left by a failed write, warnings kept out of --json output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from events.codec import encode_json
from events.eventlog import EventLog
from events.filelog import FileLog
from replay.logdir import LogDir
from replay.snapshot import SnapshotStore
from replay.workload import GeneratorConfig, generate

pytestmark = pytest.mark.slow  # every test runs the command in a subprocess

ROOT = Path(__file__).resolve().parents[2]
RUN = ("--snapshot-every", "1000", "--checkpoint-every", "500")
# The command line on a disk that fails every write to a path starting with a prefix with one
# errno (a full disk fails the write, a read-only one the open), through the storage layer.
FAILING_DISK = """
import errno, os, sys
from events import storage

class Failing(storage.OsStorage):
    def __init__(self, under, code):
        self.under, self.code, self.paths = under, code, {}
    def _fail(self, path):
        if str(path).startswith(self.under):
            raise OSError(self.code, os.strerror(self.code), str(path))
    def open(self, path, flags, mode=0o644):
        if self.code != errno.ENOSPC and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            self._fail(path)
        fd = super().open(path, flags, mode)
        self.paths[fd] = path
        return fd
    def write(self, fd, data):
        self._fail(self.paths[fd])
        return super().write(fd, data)

under, code = sys.argv[1], getattr(errno, sys.argv[2])
storage.install(Failing(under, code))
from clearinghouse.edges.cli import main
sys.exit(main(sys.argv[3:]))
"""


def cli(*args: str, disk: tuple[Path, str] | None = None) -> subprocess.CompletedProcess[str]:
    head = ["-c", FAILING_DISK, str(disk[0]), disk[1]] if disk else ["-m", "clearinghouse"]
    return subprocess.run([sys.executable, *head, "-q", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("clearinghouse: error: ")
    return line


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "events.jsonl"
    events = generate(GeneratorConfig(accounts=60, markets=3, events=4000, seed=21, crash=True))
    path.write_bytes(b"".join(encode_json(e) + b"\n" for e in events))
    return path


@pytest.fixture(scope="module")
def reference(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """An uninterrupted run: its summary and derived events."""
    log = tmp_path_factory.mktemp("reference") / "log"
    cli("ingest", str(source), "--log", str(log))
    summary = json.loads(cli("run", "--log", str(log), *RUN, "--json").stdout)
    return {"digest": summary["digest"], "derived": cli("events", "--log", str(log), "--derived").stdout}


def ingested(tmp_path: Path, source: Path) -> Path:
    log = tmp_path / "log"
    assert cli("ingest", str(source), "--log", str(log)).returncode == 0
    return log


def ends_as_reference(log: Path, reference: dict[str, object]) -> None:
    summary = json.loads(cli("run", "--log", str(log), *RUN, "--json").stdout)
    assert summary["digest"] == reference["digest"]
    assert cli("events", "--log", str(log), "--derived").stdout == reference["derived"]


def test_a_full_disk_during_run(tmp_path: Path, source: Path, reference: dict[str, object]) -> None:
    log = ingested(tmp_path, source)
    line = one_error_line(cli("run", "--log", str(log), *RUN, disk=(log / "state" / "snap-", "ENOSPC")))
    assert f"No space left on device ({log / 'state'}/snap-{1000:020d}.snap.tmp) writing under {log}" in line
    assert line.endswith("free some space, then run the command again")
    assert list((log / "state").glob("*.tmp")) == []  # the failed write took its temp file with it
    ends_as_reference(log, reference)


def test_a_full_disk_during_ingest_leaves_nothing(tmp_path: Path, source: Path) -> None:
    log = tmp_path / "log"
    line = one_error_line(cli("ingest", str(source), "--log", str(log), disk=(log / "events" / "0", "ENOSPC")))
    assert "No space left on device" in line and "nothing was ingested: free some space" in line
    with EventLog(log / "events", readonly=True) as events:
        assert events.next_seq == 0
    assert cli("ingest", str(source), "--log", str(log)).returncode == 0


@pytest.mark.parametrize("code, words", [("EROFS", "Read-only file system"), ("EACCES", "Permission denied")])
def test_a_read_only_state_folder_during_run(
    tmp_path: Path, source: Path, reference: dict[str, object], code: str, words: str
) -> None:
    log = ingested(tmp_path, source)
    line = one_error_line(cli("run", "--log", str(log), *RUN, disk=(log / "state", code)))
    assert f"{words} ({log / 'state'}/" in line
    assert ("the folder is read-only" if code == "EROFS" else "no permission to write there") in line
    ends_as_reference(log, reference)


def test_a_second_writer_is_told_to_wait(tmp_path: Path, source: Path) -> None:
    log = ingested(tmp_path, source)
    with FileLog(log / "derived"):  # another run (or serve) holds the derived log
        line = one_error_line(cli("run", "--log", str(log)))
        assert f"{log / 'derived'} is open for writing in another process" in line and "wait for it to end" in line
    with FileLog(log / "events"):  # another ingest holds the input log
        line = one_error_line(cli("ingest", str(source), "--log", str(log)))
        assert f"{log / 'events'} is open for writing in another process" in line


@pytest.mark.parametrize("kept", [0, 1])
def test_a_derived_log_shorter_than_the_snapshot_counts_recovers_by_itself(
    tmp_path: Path, source: Path, reference: dict[str, object], kept: int
) -> None:
    """The derived log lost its records after the first `kept` (none, or one): the run starts
    from the newest snapshot counting no more derived events than remain (or from the start)
    and writes exactly the missing ones, with a warning on stderr, not in the JSON."""
    log = ingested(tmp_path, source)
    assert cli("run", "--log", str(log), *RUN).returncode == 0
    with FileLog(log / "derived", readonly=True) as derived:
        records = [payload for _, payload in derived.read()]
    assert len(records) > kept + 1
    for path in (log / "derived").iterdir():
        path.unlink()
    with FileLog(log / "derived") as derived:
        derived.append_many(records[:kept])
    result = cli("run", "--log", str(log), *RUN, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["digest"] == reference["digest"]
    assert "runner.derived_log_behind_snapshot" in result.stderr
    assert cli("events", "--log", str(log), "--derived").stdout == reference["derived"]
    counted = [SnapshotStore(LogDir(log).state).latest()[0].derived_count]
    with EventLog(log / "derived", derived=True, readonly=True) as derived:
        assert counted == [derived.next_seq]


def test_a_temp_snapshot_left_by_a_failed_write_is_removed(tmp_path: Path, source: Path) -> None:
    log = ingested(tmp_path, source)
    cli("run", "--log", str(log), *RUN)
    stale = log / "state" / f"snap-{9000:020d}.snap.tmp"
    stale.write_bytes(b"CHSNAP01 half a snapshot")
    result = cli("run", "--log", str(log), "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["applied"] == 0, result.stderr
    assert not stale.exists() and "runner.removed_unpublished_snapshot" in result.stderr


def test_warnings_go_to_stderr_never_into_json(tmp_path: Path, source: Path) -> None:
    log = ingested(tmp_path, source)
    assert cli("run", "--log", str(log), *RUN).returncode == 0
    with FileLog(log / "derived", fsync="never") as derived:  # written, never synced, then torn
        derived.append(b"\x01" * 40)
    segment = log / "derived" / "00000000000000000000.seg"
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size - 10)
    result = cli("run", "--log", str(log), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"] == 0
    assert "filelog.truncated_torn_tail" in result.stderr
