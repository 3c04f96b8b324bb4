"""``python -m deploy.local run [--replicas N]`` — the distributed mode on one machine.

Real Kafka + PostgreSQL (``deploy.local up``: reused when running, restarted on their data when
down, never deleted), one database per service, each service and the gateway (proxy mode, ops
views on Kafka) as its own process with its log in ``var/log/<name>.log``. Replica *i* of a
service listens on ``base_port + 10*i + {1,2,3}`` (evidence, sales, orders) and gateway *i* on
``base_port + 10*i``, forwarding to the replicas *i*; all replicas of a service share its
database, its consumer groups and its relay election. Replica 0 of every service starts (and
migrates, and in dev seeds its demo data) before the others, so replicas never race the
schema.

Ctrl-C / SIGTERM: gateways first, then services, each sent SIGTERM (readiness turns 503, requests
in flight finish, consumers commit and leave their groups, the relay releases its claims), and
reaped; SIGKILL only after ``STOP_TIMEOUT_S``. Kafka and PostgreSQL are stopped too when this
command started them (data kept: the next ``run`` or ``up`` restarts them on it); ``--keep-infra``
leaves them running. ``KAFKA_BOOTSTRAP_SERVERS`` + ``DATABASE_URL`` in the environment select
an existing broker and server instead (then they are never stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import IO

from deploy.local._util import REPO_ROOT, InfraError, port_open
from deploy.local.provision import asyncpg_dsn

SERVICES: tuple[str, ...] = ("evidence", "sales", "orders")
SERVICE_OFFSET = {"evidence": 1, "sales": 2, "orders": 3}
STOP_TIMEOUT_S = 25.0
READY_TIMEOUT_S = 180.0
DRAIN_SECONDS = 1.0
"""Readiness 503 before the shutdown (see service_defaults.runner.DrainingServer)."""


@dataclass(frozen=True)
class Infra:
    kafka: str
    dsn: str
    """Server-level ``postgresql+asyncpg://user[:pw]@host:port/postgres``."""
    started_here: bool = False
    db_prefix: str = ""
    """Database of service ``s``: ``<db_prefix><s>`` (tests use a unique prefix)."""

    def database(self, service: str) -> str:
        return f"{self.db_prefix}{service}"


def service_port(base_port: int, service: str, replica: int) -> int:
    return base_port + 10 * replica + SERVICE_OFFSET[service]


def gateway_port(base_port: int, replica: int) -> int:
    return base_port + 10 * replica


def database_url(dsn: str, database: str) -> str:
    head, _, _ = asyncpg_dsn(dsn).rpartition("/")
    return f"{head}/{database}"


def service_env(service: str, infra: Infra, port: int, env: str = "dev") -> dict[str, str]:
    """The environment of one service process (the same settings the chart and compose set)."""
    p = service.upper() + "_"
    return {
        f"{p}ENV": env,
        f"{p}HOST": "127.0.0.1",
        f"{p}PORT": str(port),
        f"{p}DATABASE_URL": database_url(infra.dsn, infra.database(service)),
        f"{p}TRANSPORT": "kafka",
        f"{p}KAFKA_BOOTSTRAP_SERVERS": infra.kafka,
        f"{p}LOG_LEVEL": "INFO",
        f"{p}SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
    }


def gateway_env(infra: Infra, port: int, service_ports: Mapping[str, int]) -> dict[str, str]:
    env = {
        "GATEWAY_ENV": "dev",
        "GATEWAY_MODE": "proxy",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_TRANSPORT": "kafka",
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": infra.kafka,
        "GATEWAY_LOG_LEVEL": "INFO",
        "GATEWAY_SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
    }
    for service, sport in service_ports.items():
        env[f"GATEWAY_{service.upper()}_URL"] = f"http://127.0.0.1:{sport}"
    return env


async def _create_databases(dsn: str, names: Sequence[str]) -> list[str]:
    import asyncpg

    url = asyncpg_dsn(dsn).replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(url, timeout=10)
    created: list[str] = []
    try:
        for name in names:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
    finally:
        await conn.close()
    return created


def create_databases(dsn: str, names: Sequence[str] = SERVICES) -> list[str]:
    """Create the missing databases among `names` (existing ones are kept); returns the new."""
    return asyncio.run(_create_databases(dsn, names))


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if port_open("127.0.0.1", self.port, timeout=0.2):
            raise InfraError(
                f"{self.name}: port {self.port} is taken (another run? --base-port moves them)"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(
            f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode()
        )
        self._log.flush()
        # Own session: a terminal Ctrl-C reaches only the supervisor, which stops the children
        # in order (gateways before the services they forward to).
        self.popen = subprocess.Popen(
            self.args,
            env={**os.environ, **self.env},
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health/ready", timeout=2) as resp:
                return int(resp.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def describe_exit(code: int | None) -> str:
    """uvicorn re-raises the stop signal after its graceful shutdown: -SIGTERM is a clean stop."""
    if code in (0, -signal.SIGTERM, -signal.SIGINT):
        return "clean"
    return "still running" if code is None else f"exit {code}"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Supervisor:
    """Starts, watches and stops the processes of the distributed mode."""

    def __init__(
        self,
        infra: Infra,
        *,
        replicas: int = 1,
        base_port: int = 8000,
        services: Sequence[str] = SERVICES,
        gateway: bool = True,
        log_dir: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.infra = infra
        self.replicas = replicas
        self.base_port = base_port
        self.services = tuple(services)
        self.with_gateway = gateway
        self.log_dir = log_dir or REPO_ROOT / "var" / "log"
        self.python = python
        self.procs: list[Proc] = []
        self._stop = threading.Event()

    # ---------------------------------------------------------------- building the processes

    def service_proc(self, service: str, replica: int) -> Proc:
        port = service_port(self.base_port, service, replica)
        return Proc(
            name=f"{service}-{replica + 1}",
            args=[self.python, "-m", service],
            env=service_env(service, self.infra, port),
            port=port,
            log_path=self.log_dir / f"{service}-{replica + 1}.log",
        )

    def gateway_proc(self, replica: int) -> Proc:
        port = gateway_port(self.base_port, replica)
        ports = {s: service_port(self.base_port, s, replica) for s in SERVICES}
        return Proc(
            name=f"gateway-{replica + 1}",
            args=[self.python, "-m", "gateway"],
            env=gateway_env(self.infra, port, ports),
            port=port,
            log_path=self.log_dir / f"gateway-{replica + 1}.log",
        )

    # ---------------------------------------------------------------- lifecycle

    def _wait_ready(self, procs: Sequence[Proc], timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        pending = list(procs)
        while pending:
            for proc in list(pending):
                if not proc.alive():
                    raise InfraError(
                        f"{proc.name} exited (code {proc.popen.returncode if proc.popen else '?'})"
                        f"; last lines of {proc.log_path}:\n{_tail(proc.log_path)}"
                    )
                if proc.ready():
                    pending.remove(proc)
            if not pending:
                return
            if self._stop.is_set():
                raise InfraError("stopped while starting")
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise InfraError(f"not ready within {timeout:.0f} s: {names} (see {self.log_dir})")
            self._stop.wait(0.3)

    def start_batch(self, procs: Sequence[Proc]) -> None:
        for proc in procs:
            self.procs.append(proc)
            proc.start()
        self._wait_ready(procs)

    def start(self) -> None:
        for replica in range(self.replicas):
            self.start_batch([self.service_proc(s, replica) for s in self.services])
        if self.with_gateway:
            self.start_batch([self.gateway_proc(r) for r in range(self.replicas)])

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> dict[str, int | None]:
        """SIGTERM the gateways, reap them, then the services; SIGKILL what outlives
        `timeout`. Returns each process's exit code."""
        codes: dict[str, int | None] = {}
        gateways = [p for p in self.procs if p.name.startswith("gateway-")]
        services = [p for p in self.procs if p not in gateways]
        for group in (gateways, services):
            for proc in group:
                proc.signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for proc in group:
                code = proc.wait(deadline - time.monotonic())
                if code is None and proc.alive():
                    proc.signal(signal.SIGKILL)
                    code = proc.wait(5)
                codes[proc.name] = code
                proc.close()
        self.procs.clear()
        return codes

    def request_stop(self) -> None:
        self._stop.set()

    def watch(self) -> Proc | None:
        """Block until a stop is requested (returns None) or a child dies (returns it)."""
        while not self._stop.wait(0.5):
            for proc in self.procs:
                if not proc.alive():
                    return proc
        return None

    def banner(self) -> str:
        from gateway.settings import GatewaySettings
        from service_defaults.auth import issue_token

        lines = ["", f"Nexo distributed: {self.replicas} replica(s) of each service, on Kafka"]
        lines.append(f"  kafka        {self.infra.kafka}")
        lines.append(f"  postgresql   {self.infra.dsn.rpartition('/')[0]}/{{{','.join(SERVICES)}}}")
        for proc in self.procs:
            suffix = "   (ops board: /ops, API docs: /docs)" if proc.name.startswith("g") else ""
            lines.append(f"  {proc.name:<12} {proc.url}{suffix}   log {proc.log_path}")
        settings = GatewaySettings(_env_file=None)
        if settings.dev_tokens_allowed():
            token = issue_token(settings, "dev", ("admin", "ops"), ttl=timedelta(hours=12))
            first = gateway_port(self.base_port, 0)
            lines += [
                "",
                "Development JWT (roles: admin, ops; valid 12 h):",
                f"  {token}",
                f'  curl -H "Authorization: Bearer {token}" '
                f"http://127.0.0.1:{first}/api/sales/materiales",
            ]
        lines += ["", "Ctrl-C stops everything.", ""]
        return "\n".join(lines)


@contextlib.contextmanager
def infrastructure(keep: bool = False) -> Iterator[Infra]:
    """Kafka + PostgreSQL: from the environment, else ``deploy.local up`` (stopped on exit,
    data kept, when this started them and `keep` is false)."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    dsn = os.environ.get("DATABASE_URL", "").strip()
    if kafka and dsn:
        yield Infra(kafka=kafka, dsn=asyncpg_dsn(dsn))
        return
    from deploy.local import __main__ as infra_cli

    before = infra_cli._load()
    was_running = before is not None and all(infra_cli._status(before))
    if infra_cli.cmd_up() != 0:
        raise InfraError("deploy.local up failed")
    state = infra_cli._load()
    assert state is not None
    started = not was_running
    try:
        yield Infra(
            kafka=state["kafka"]["bootstrap_servers"],
            dsn=state["postgres"]["dsn"],
            started_here=started,
        )
    finally:
        if started and not keep:
            infra_cli.stop_keeping_data(state)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local run", description=__doc__)
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS", "1") or 1))
    parser.add_argument(
        "--base-port", type=int, default=int(os.environ.get("BASE_PORT", "8000") or 8000)
    )
    parser.add_argument("--keep-infra", action="store_true", help="leave Kafka/PostgreSQL up")
    parser.add_argument(
        "--db-prefix", default="", help="databases <prefix>evidence, ... (default: no prefix)"
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="default: var/log")
    args = parser.parse_args(argv)

    stopping = threading.Event()
    sup: Supervisor | None = None

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()
        if sup is not None:
            sup.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        with infrastructure(keep=args.keep_infra) as base_infra:
            infra = replace(base_infra, db_prefix=args.db_prefix)
            created = create_databases(infra.dsn, [infra.database(s) for s in SERVICES])
            if created:
                print(f"created databases: {', '.join(created)}", file=sys.stderr)
            sup = Supervisor(
                infra, replicas=args.replicas, base_port=args.base_port, log_dir=args.log_dir
            )
            try:
                if stopping.is_set():
                    return 130
                sup.start()
                print(sup.banner(), flush=True)
                dead = sup.watch()
                if dead is not None:
                    print(
                        f"{dead.name} exited; stopping everything. Last lines of "
                        f"{dead.log_path}:\n{_tail(dead.log_path)}",
                        file=sys.stderr,
                    )
            finally:
                print("stopping ...", file=sys.stderr, flush=True)
                codes = sup.stop()
                print(
                    "stopped: " + ", ".join(f"{n} ({describe_exit(c)})" for n, c in codes.items()),
                    file=sys.stderr,
                )
            return 1 if dead is not None else 0
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
