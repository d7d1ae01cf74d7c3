"""Run a real single-node Apache Kafka 4.x broker (KRaft, broker+controller) locally.

The broker comes from the Maven Central jars resolved by ``deploy/kafka/pom.xml`` into
``deploy/kafka/lib`` (no Docker, no Apache tarball). Usage::

    python deploy/kafka/broker.py start  [--dir DATA_DIR]   # prints the bootstrap address
    python deploy/kafka/broker.py status [--dir DATA_DIR]
    python deploy/kafka/broker.py stop   [--dir DATA_DIR]

From Python (e.g. a pytest session fixture)::

    bootstrap = broker.start(tmp_dir)   # "127.0.0.1:PORT", once the broker answers Metadata
    ...
    broker.stop(tmp_dir)

Files in the data dir: ``server.properties``, ``cluster.id``, ``kafka-logs/`` (log.dirs),
``broker.pid``, ``bootstrap`` (the address), ``broker.log`` (the JVM's stdout/stderr).
Exit codes of the CLI: 0 ok, 1 broker failed / not running (status), 2 java or mvn missing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

KAFKA_DIR = Path(__file__).resolve().parent
POM = KAFKA_DIR / "pom.xml"
LIB_DIR = KAFKA_DIR / "lib"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
DEFAULT_DATA_DIR = KAFKA_DIR / "data"

HOST = "127.0.0.1"
NODE_ID = 1
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0

# Jars that must be present for lib/ to count as resolved.
_REQUIRED_JAR_PREFIXES = ("kafka_2.13-", "kafka-clients-", "log4j-core-", "log4j-slf4j2-impl-")

# Popen handles of brokers started by this process, so stop() can reap them (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class BrokerError(RuntimeError):
    """The broker could not be prepared, started or stopped."""


class ToolMissingError(BrokerError):
    """`java` or `mvn` is not installed / not on PATH."""


# --------------------------------------------------------------------------- helpers


def _data_paths(data_dir: Path) -> dict[str, Path]:
    return {
        "props": data_dir / "server.properties",
        "cluster_id": data_dir / "cluster.id",
        "log_dirs": data_dir / "kafka-logs",
        "pid": data_dir / "broker.pid",
        "bootstrap": data_dir / "bootstrap",
        "log": data_dir / "broker.log",
        "lock": data_dir / ".broker.lock",
    }


def _require_tool(name: str) -> str:
    if name == "java" and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    path = shutil.which(name)
    if path is None:
        hint = {
            "java": "install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)",
            "mvn": "install Maven (e.g. apt-get install maven) to resolve the Kafka jars",
        }[name]
        raise ToolMissingError(f"`{name}` not found on PATH: {hint}")
    return path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _lib_complete(lib: Path) -> bool:
    if not lib.is_dir():
        return False
    names = [p.name for p in lib.glob("*.jar")]
    return all(any(n.startswith(prefix) for n in names) for prefix in _REQUIRED_JAR_PREFIXES)


def ensure_jars() -> Path:
    """Resolve the broker's runtime jars into deploy/kafka/lib with Maven if missing."""
    if _lib_complete(LIB_DIR):
        return LIB_DIR
    mvn = _require_tool("mvn")
    with _file_lock(KAFKA_DIR / ".lib.lock"):
        if _lib_complete(LIB_DIR):  # another process resolved them meanwhile
            return LIB_DIR
        tmp = Path(tempfile.mkdtemp(prefix="lib.tmp-", dir=KAFKA_DIR))
        try:
            cmd = [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-Dkafka.lib.dir={tmp}",
            ]
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if proc.returncode != 0 or not _lib_complete(tmp):
                out = (proc.stdout + proc.stderr).strip()[-4000:]
                raise BrokerError(f"resolving Kafka jars failed (mvn exit {proc.returncode}): {' '.join(cmd)}\n{out}")
            if LIB_DIR.exists():
                shutil.rmtree(LIB_DIR)
            tmp.chmod(0o755)  # mkdtemp makes it 0700
            tmp.rename(LIB_DIR)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return LIB_DIR


def _classpath() -> str:
    return str(LIB_DIR / "*")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _read_props(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                props[key.strip()] = value.strip()
    return props


def _choose_ports(props_path: Path) -> tuple[int, int]:
    """Reuse the previous (broker, controller) ports when still free, else pick new ones."""
    old = _read_props(props_path)
    try:
        broker_port = int(old["listeners"].split("PLAINTEXT://")[1].split(",")[0].rsplit(":", 1)[1])
        controller_port = int(old["controller.quorum.voters"].rsplit(":", 1)[1])
        if broker_port != controller_port and _port_free(broker_port) and _port_free(controller_port):
            return broker_port, controller_port
    except (KeyError, IndexError, ValueError):
        pass
    broker_port, controller_port = _free_ports(2)
    return broker_port, controller_port


def _write_server_properties(paths: dict[str, Path], broker_port: int, controller_port: int) -> None:
    lines = [
        "# Written by deploy/kafka/broker.py: single combined broker/controller, KRaft mode.",
        "process.roles=broker,controller",
        f"node.id={NODE_ID}",
        f"controller.quorum.voters={NODE_ID}@{HOST}:{controller_port}",
        f"listeners=PLAINTEXT://{HOST}:{broker_port},CONTROLLER://{HOST}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{broker_port}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        f"log.dirs={paths['log_dirs']}",
        "num.partitions=1",
        "default.replication.factor=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "",
    ]
    paths["props"].write_text("\n".join(lines))


# The broker's heap and collector: Kafka's own start script's performance options (G1 with a
# 20 ms pause goal, where the JVM's default goal is 200 ms: the broker's young collections sit
# in every produce and fetch path, so in the service's tick latency), on a fixed 512 MB heap.
BROKER_JVM = (
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)


def _java_base(java: str, *jvm_opts: str) -> list[str]:
    return [java, *jvm_opts, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", _classpath()]


def _format_storage(java: str, paths: dict[str, Path]) -> None:
    """Format log.dirs once (skipped when meta.properties already exists)."""
    if (paths["log_dirs"] / "meta.properties").is_file():
        return
    if paths["cluster_id"].is_file():
        cluster_id = paths["cluster_id"].read_text().strip()
    else:
        proc = subprocess.run(
            [*_java_base(java), "kafka.tools.StorageTool", "random-uuid"],
            check=False,
            capture_output=True,
            text=True,
        )
        cluster_id = proc.stdout.strip().splitlines()[-1].strip() if proc.stdout.strip() else ""
        if proc.returncode != 0 or not cluster_id:
            raise BrokerError(f"StorageTool random-uuid failed: {proc.stdout}{proc.stderr}")
        paths["cluster_id"].write_text(cluster_id + "\n")
    proc = subprocess.run(
        [
            *_java_base(java),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(paths["props"]),
            "--ignore-formatted",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BrokerError(f"StorageTool format failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")


# ----------------------------------------------------------- raw Kafka protocol probe


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    client_id = b"broker.py"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    resp = _recv_exact(sock, size)
    (resp_corr,) = struct.unpack(">i", resp[:4])
    if resp_corr != corr:
        raise ConnectionError(f"correlation id mismatch: {resp_corr} != {corr}")
    return resp[4:]


def probe(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when the broker answers ApiVersions and a Metadata request listing a broker."""
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            # ApiVersions v0 (api_key 18): empty body.
            body = _request(sock, 18, 0, 1, b"")
            error_code, count = struct.unpack(">hi", body[:6])
            if error_code != 0:
                return False
            versions: dict[int, tuple[int, int]] = {}
            for i in range(count):
                key, vmin, vmax = struct.unpack(">hhh", body[6 + 6 * i : 12 + 6 * i])
                versions[key] = (vmin, vmax)
            meta = versions.get(3)
            if meta is None or not (meta[0] <= 4 <= meta[1]):
                return False
            # Metadata v4 (api_key 3): topics=null (all), allow_auto_topic_creation=false.
            body = _request(sock, 3, 4, 2, struct.pack(">ib", -1, 0))
            _throttle, n_brokers = struct.unpack(">ii", body[:8])
            if n_brokers < 1:
                return False
            node_id: int = struct.unpack(">i", body[8:12])[0]
            return node_id == NODE_ID
    except (OSError, ConnectionError, struct.error, ValueError):
        return False


# ----------------------------------------------------------------- process handling


def _read_pid(paths: dict[str, Path]) -> int | None:
    try:
        return int(paths["pid"].read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # zombie: exited, not yet reaped
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline  # guard against a recycled pid


def _log_tail(paths: dict[str, Path], lines: int = 40) -> str:
    try:
        text = paths["log"].read_text(errors="replace")
    except OSError:
        return "(no broker.log)"
    return "\n".join(text.splitlines()[-lines:])


def _kill_group(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


# ------------------------------------------------------------------------ public API


def status(data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR) -> str | None:
    """The bootstrap address if the broker of data_dir runs and answers Metadata, else None."""
    paths = _data_paths(Path(data_dir).resolve())
    pid = _read_pid(paths)
    if pid is None or not _alive(pid):
        return None
    try:
        bootstrap = paths["bootstrap"].read_text().strip()
    except OSError:
        return None
    return bootstrap if probe(bootstrap) else None


def start(data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR, timeout: float = START_TIMEOUT_S) -> str:
    """Start (or reuse) the broker for data_dir; return its bootstrap address once ready."""
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    paths = _data_paths(data)
    java = _require_tool("java")
    ensure_jars()
    with _file_lock(paths["lock"]):
        pid = _read_pid(paths)
        if pid is not None and _alive(pid):
            existing = status(data)
            if existing is not None:
                return existing
            _kill_group(pid, STOP_TIMEOUT_S)  # running but not answering: restart it
        broker_port, controller_port = _choose_ports(paths["props"])
        _write_server_properties(paths, broker_port, controller_port)
        _format_storage(java, paths)
        bootstrap = f"{HOST}:{broker_port}"
        with open(paths["log"], "ab") as log:
            log.write(f"\n=== broker.py start {time.strftime('%Y-%m-%dT%H:%M:%S')} {bootstrap} ===\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [*_java_base(java, *BROKER_JVM), "kafka.Kafka", str(paths["props"])],
                cwd=data,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills the group
            )
        _CHILDREN[proc.pid] = proc
        paths["pid"].write_text(f"{proc.pid}\n")
        paths["bootstrap"].write_text(bootstrap + "\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                paths["pid"].unlink(missing_ok=True)
                _CHILDREN.pop(proc.pid, None)
                raise BrokerError(
                    f"Kafka broker exited with code {proc.returncode} during startup; "
                    f"tail of {paths['log']}:\n{_log_tail(paths)}"
                )
            if probe(bootstrap):
                return bootstrap
            time.sleep(0.25)
        _kill_group(proc.pid, STOP_TIMEOUT_S)
        paths["pid"].unlink(missing_ok=True)
        raise BrokerError(
            f"Kafka broker did not answer a Metadata request on {bootstrap} within {timeout:.0f}s; "
            f"tail of {paths['log']}:\n{_log_tail(paths)}"
        )


def stop(data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR, timeout: float = STOP_TIMEOUT_S) -> None:
    """Terminate the broker's process group (SIGTERM, then SIGKILL) and wait for it."""
    paths = _data_paths(Path(data_dir).resolve())
    pid = _read_pid(paths)
    if pid is not None and _alive(pid):
        _kill_group(pid, timeout)
        if _alive(pid):
            raise BrokerError(f"Kafka broker pid {pid} did not exit")
    paths["pid"].unlink(missing_ok=True)


# ------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local single-node Kafka 4.x broker (KRaft).")
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--dir", default=str(DEFAULT_DATA_DIR), help="data dir (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT_S, help="start timeout in seconds")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            began = time.monotonic()
            bootstrap = start(args.dir, timeout=args.timeout)
            print(bootstrap)
            print(f"kafka up at {bootstrap} ({time.monotonic() - began:.1f}s)", file=sys.stderr)
            return 0
        if args.command == "stop":
            stop(args.dir)
            print("kafka stopped")
            return 0
        current = status(args.dir)
        if current is None:
            print("kafka down")
            return 1
        print(f"kafka up {current}")
        return 0
    except ToolMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
