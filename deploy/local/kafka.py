"""A real single-node Apache Kafka broker (KRaft, combined mode) without Docker.

The broker's jars come from Maven Central (``deploy/local/pom.xml``) and run on the machine's
Java 17+. Used by the root ``conftest.py`` and by ``python -m deploy.local up``::

    broker = KafkaBroker().start()
    broker.bootstrap_servers      # "127.0.0.1:<port>"
    broker.restart()              # same ports, same data directory
    broker.close()                # stop and remove the data directory
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from deploy.local._util import (
    HOST,
    REPO_ROOT,
    InfraError,
    free_ports,
    pid_alive,
    port_open,
    tail,
    terminate_pid,
    wait_until,
)

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J2_CONFIG = HERE / "log4j2.xml"
DEFAULT_LIBS = HERE / ".cache" / "kafka-libs"
MARKER = ".complete"

DEFAULT_JVM_OPTS = (
    "-Xmx512m",
    "-Xms128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


def libs_dir() -> Path:
    """Where the broker's jars live (env ``NEXO_KAFKA_LIBS`` overrides)."""
    env = os.environ.get("NEXO_KAFKA_LIBS")
    return Path(env).expanduser().resolve() if env else DEFAULT_LIBS


def _pom_fingerprint() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def fetch_jars(target: Path | None = None, *, quiet: bool = True) -> Path:
    """Collect the broker's runtime jars with Maven once; later calls return at once.

    A marker file (holding the POM's hash) records a complete copy, so an interrupted
    download or a changed POM is fetched again.
    """
    target = target or libs_dir()
    marker = target / MARKER
    fingerprint = _pom_fingerprint()
    if marker.exists() and marker.read_text().strip() == fingerprint:
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("Maven (mvn) is not installed: cannot fetch the Kafka jars")
    if shutil.which("java") is None:
        raise InfraError("java is not installed: cannot run Kafka")
    target.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={target}",
    ]
    if quiet:
        cmd.insert(1, "-q")
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise InfraError(
            f"mvn dependency:copy-dependencies failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    if not any(target.glob("kafka_2.13-*.jar")):
        raise InfraError(f"no kafka_2.13 jar in {target} after mvn")
    marker.write_text(fingerprint + "\n")
    print(
        f"[deploy.local] Kafka jars in {target} ({time.monotonic() - started:.1f} s)",
        file=sys.stderr,
    )
    return target


def kafka_version(libs: Path | None = None) -> str:
    for jar in sorted((libs or libs_dir()).glob("kafka_2.13-*.jar")):
        return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
    return "unknown"


def new_cluster_id() -> str:
    """22-char URL-safe base64 of 16 random bytes, never starting with ``-``."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


# --- readiness probe over the Kafka wire protocol (no client library needed) -----------------


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    client_id = b"nexo-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    data = _recv_exact(sock, size)
    (got,) = struct.unpack(">i", data[:4])
    if got != corr:
        raise ConnectionError(f"correlation id {got} != {corr}")
    return data[4:]  # response header v0 is just the correlation id


def probe_metadata(host: str, port: int, timeout: float = 2.0) -> int:
    """Ask the broker for cluster metadata; return the number of (unfenced) brokers listed.

    ApiVersions v0 first (always supported) to learn the Metadata range, then a
    non-flexible Metadata request (v4..v8) for all topics.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        data = _request(sock, 18, 0, 1, b"")
        (error,) = struct.unpack(">h", data[:2])
        if error:
            raise ConnectionError(f"ApiVersions error {error}")
        (count,) = struct.unpack(">i", data[2:6])
        meta_range: tuple[int, int] | None = None
        for i in range(count):
            key, low, high = struct.unpack(">hhh", data[6 + 6 * i : 12 + 6 * i])
            if key == 3:
                meta_range = (low, high)
        if meta_range is None:
            raise ConnectionError("broker does not offer Metadata")
        version = max(4, meta_range[0])
        if version > min(8, meta_range[1]):
            raise ConnectionError(f"no usable Metadata version in {meta_range}")
        body = struct.pack(">ib", -1, 0)  # all topics, no auto-creation
        if version >= 8:
            body += struct.pack(">bb", 0, 0)
        data = _request(sock, 3, version, 2, body)
        # v3+: throttle_time_ms, then brokers [node_id, host, port, rack]
        (n_brokers,) = struct.unpack(">i", data[4:8])
        return int(n_brokers)


def broker_ready(host: str, port: int) -> bool:
    if not port_open(host, port):
        return False
    try:
        return probe_metadata(host, port) >= 1
    except (OSError, ConnectionError, struct.error):
        return False


# --- the broker --------------------------------------------------------------------------------


def _parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: SIGTERM the broker when the process that started it dies (e.g. pytest killed)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class KafkaBroker:
    """One KRaft node (``process.roles=broker,controller``) on 127.0.0.1 with free ports."""

    can_restart = True

    def __init__(
        self,
        *,
        workdir: Path | str | None = None,
        port: int | None = None,
        controller_port: int | None = None,
        libs: Path | str | None = None,
        overrides: Mapping[str, str] | None = None,
        jvm_opts: tuple[str, ...] | None = None,
        detached: bool = False,
        start_timeout: float = 120.0,
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="nexo-kafka-"))
        if port is None or controller_port is None:
            port, controller_port = free_ports(2)
        self.port = port
        self.controller_port = controller_port
        self.host = HOST
        self.libs = Path(libs) if libs else libs_dir()
        self.overrides = dict(overrides or {})
        env_opts = os.environ.get("NEXO_KAFKA_JVM_OPTS")
        self.jvm_opts = jvm_opts or (tuple(env_opts.split()) if env_opts else DEFAULT_JVM_OPTS)
        self.detached = detached
        self.start_timeout = start_timeout
        self.cluster_id = new_cluster_id()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._formatted = False
        self.last_start_seconds: float | None = None

    # -- properties ----------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def version(self) -> str:
        return kafka_version(self.libs)

    @property
    def properties_file(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.workdir / "kafka.log"

    def is_running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._pid is not None and pid_alive(self._pid)

    def config(self) -> dict[str, str]:
        cfg = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "3000",  # nexo consumers: 3 s session (README)
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.replica.fetchers": "1",
            "num.recovery.threads.per.data.dir": "1",
            "background.threads": "2",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.retention.hours": "24",
            "controlled.shutdown.enable": "true",
        }
        cfg.update(self.overrides)
        return cfg

    # -- lifecycle -----------------------------------------------------------------------------
    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise InfraError("java is not installed (Kafka 4.x needs Java 17+)")
        return java

    def _classpath_cmd(self, main: str, *args: str) -> list[str]:
        return [
            self._java(),
            *self.jvm_opts,
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            f"-Dkafka.logs.dir={self.workdir / 'logs'}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _write_properties(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [f"{k}={v}" for k, v in self.config().items()]
        self.properties_file.write_text("\n".join(lines) + "\n")

    def _format(self) -> None:
        cmd = self._classpath_cmd(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(self.properties_file),
            "--ignore-formatted",
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise InfraError(f"kafka StorageTool format failed:\n{proc.stdout}\n{proc.stderr}")
        self._formatted = True

    def start(self, timeout: float | None = None) -> KafkaBroker:
        """Start the broker (formatting storage the first time) and wait until it serves."""
        if self.is_running():
            return self
        timeout = timeout or self.start_timeout
        started = time.monotonic()
        fetch_jars(self.libs)
        self._write_properties()
        # A data directory formatted before (another run, another cluster id) is kept as is:
        # formatting it again with a new id fails, and it must never be wiped here.
        if not self._formatted and not (self.workdir / "data" / "meta.properties").exists():
            self._format()
        cmd = self._classpath_cmd("kafka.Kafka", str(self.properties_file))
        log = self.log_file.open("ab")
        try:
            in_main_thread = threading.current_thread() is threading.main_thread()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
                # Tie the broker's life to ours unless it must outlive us (CLI ``up``).
                # PDEATHSIG fires when the creating *thread* exits: main thread only.
                preexec_fn=None if self.detached or not in_main_thread else _parent_death_signal,
            )
        finally:
            log.close()
        self._pid = self._proc.pid
        try:
            wait_until(
                lambda: broker_ready(self.host, self.port),
                timeout=timeout,
                what=f"Kafka on {self.bootstrap_servers}",
                interval=0.2,
                alive=self.is_running,
            )
        except InfraError as exc:
            self.stop()
            raise InfraError(f"{exc}\n--- {self.log_file} ---\n{tail(self.log_file)}") from exc
        self.last_start_seconds = time.monotonic() - started
        print(
            f"[deploy.local] Kafka {self.version} (KRaft) listening on {self.bootstrap_servers} "
            f"(controller :{self.controller_port}, pid {self._pid}, "
            f"ready in {self.last_start_seconds:.1f} s, dir {self.workdir})",
            file=sys.stderr,
        )
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL after ``timeout`` seconds."""
        proc, pid = self._proc, self._pid
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        elif pid is not None:
            terminate_pid(pid, timeout)
        self._proc = None
        self._pid = None
        # The port must be free again before a restart can bind it.
        with contextlib.suppress(InfraError):
            wait_until(
                lambda: not port_open(self.host, self.port, timeout=0.2),
                timeout=10,
                what="Kafka port release",
            )

    def restart(self, timeout: float | None = None) -> KafkaBroker:
        """Stop and start again on the same ports with the same data directory."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop and, if this object created it, delete the working directory."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @classmethod
    def attach(cls, *, workdir: Path, port: int, controller_port: int, pid: int) -> KafkaBroker:
        """A handle on a broker started earlier by another process (``deploy.local up``)."""
        broker = cls(workdir=workdir, port=port, controller_port=controller_port, detached=True)
        broker._pid = pid
        broker._formatted = True
        broker._owns_workdir = False
        return broker

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KafkaBroker({self.bootstrap_servers}, running={self.is_running()})"


__all__ = [
    "REPO_ROOT",
    "KafkaBroker",
    "broker_ready",
    "fetch_jars",
    "kafka_version",
    "libs_dir",
    "probe_metadata",
]
