"""The system under test as real processes: Kafka + PostgreSQL (deploy.local, data under the run
directory), the three services (``python -m <svc>``, Kafka transport, own database each) and the
gateway in proxy mode. Every process logs to a file of the run directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from deploy.local._util import REPO_ROOT, free_port, free_ports, tail
from deploy.local.kafka import KafkaBroker, _parent_death_signal
from deploy.local.postgres import PostgresServer

SERVICES = ("evidence", "sales", "orders")
READY_TIMEOUT_S = 90.0


class HarnessError(RuntimeError):
    """A process of the system under test did not come up (the message names its log)."""


@dataclass
class Proc:
    """One service or gateway process started with ``python -m <module>``."""

    name: str
    module: str
    port: int
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.alive():
            return
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start #{self.starts} at {time.strftime('%X')} =====\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=REPO_ROOT,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # SIGTERM when the suite dies (even by SIGKILL): no orphaned services
                preexec_fn=_parent_death_signal,
            )

    async def wait_ready(self, within: float = READY_TIMEOUT_S) -> float:
        """Poll ``/health/ready`` until 200; return the seconds it took."""
        started = time.monotonic()
        deadline = started + within
        last = "no answer"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if not self.alive():
                    raise HarnessError(
                        f"{self.name} exited while starting; log {self.log}:\n{tail(self.log)}"
                    )
                try:
                    r = await client.get(f"{self.url}/health/ready")
                    if r.status_code == 200:
                        return time.monotonic() - started
                    last = f"{r.status_code} {r.text[:300]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                if time.monotonic() > deadline:
                    raise HarnessError(
                        f"{self.name} not ready after {within:.0f} s ({last}); log {self.log}:\n"
                        f"{tail(self.log)}"
                    )
                await asyncio.sleep(0.1)

    def kill9(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()


def libpq(dsn: str) -> str:
    return dsn.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_db(server_dsn: str, database: str) -> str:
    return server_dsn.rsplit("/", 1)[0] + "/" + database


@dataclass
class System:
    """Everything a scenario pokes at. Build with :meth:`start`, end with :meth:`stop`."""

    run_dir: Path
    pg: PostgresServer
    kafka: KafkaBroker
    services: dict[str, Proc] = field(default_factory=dict)
    extra: dict[str, Proc] = field(default_factory=dict)
    gateway: Proc | None = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    async def start(cls, run_dir: Path) -> System:
        """`run_dir`: an existing absolute directory (pg_ctl runs in its own directory)."""
        pg = PostgresServer(workdir=run_dir / "postgres")
        kafka = KafkaBroker(workdir=run_dir / "kafka")
        system = cls(run_dir=run_dir, pg=pg, kafka=kafka)
        pg_started = asyncio.create_task(asyncio.to_thread(pg.start))
        # In the main thread: the broker then dies with us (parent-death signal) if we are killed.
        kafka.start()
        await pg_started
        conn = await asyncpg.connect(libpq(pg.dsn), timeout=10)
        try:
            for svc in SERVICES:
                await conn.execute(f'CREATE DATABASE "{svc}"')
                # deploy.local runs PostgreSQL with synchronous_commit=off (fast tests): an
                # immediate restart then loses commits already acknowledged to the client.
                # The services' databases get the production default back (it overrides the
                # server's command line for every session).
                await conn.execute(f'ALTER DATABASE "{svc}" SET synchronous_commit = on')
        finally:
            await conn.close()
        for svc in SERVICES:
            system.services[svc] = system._service_proc(svc, svc)
        ports = {svc: p.url for svc, p in system.services.items()}
        gw_port = free_port()
        system.gateway = Proc(
            name="gateway",
            module="gateway",
            port=gw_port,
            log=run_dir / "gateway.log",
            env={
                "GATEWAY_MODE": "proxy",
                "GATEWAY_ENV": "test",
                "GATEWAY_PORT": str(gw_port),
                "GATEWAY_DATA_DIR": str(run_dir / "gateway"),
                **{f"GATEWAY_{svc.upper()}_URL": url for svc, url in ports.items()},
            },
        )
        for p in system.services.values():
            p.start()
        await asyncio.gather(*(p.wait_ready() for p in system.services.values()))
        system.gateway.start()
        await system.gateway.wait_ready()
        return system

    def _service_proc(self, svc: str, name: str) -> Proc:
        prefix = svc.upper()
        port = free_port()
        return Proc(
            name=name,
            module=svc,
            port=port,
            log=self.run_dir / f"{name}.log",
            env={
                f"{prefix}_ENV": "test",
                f"{prefix}_PORT": str(port),
                f"{prefix}_TRANSPORT": "kafka",
                f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
                f"{prefix}_DATABASE_URL": with_db(self.pg.dsn, svc),
                f"{prefix}_DB_POOL_SIZE": "10",
                f"{prefix}_LOG_LEVEL": "INFO",
            },
        )

    async def add_instance(self, svc: str, name: str) -> Proc:
        """A second process of `svc` on the same database (not behind the gateway)."""
        proc = self._service_proc(svc, name)
        self.extra[name] = proc
        proc.start()
        await proc.wait_ready()
        return proc

    def db_dsn(self, svc: str) -> str:
        return libpq(with_db(self.pg.dsn, svc))

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def logs(self) -> list[Path]:
        procs = [*self.services.values(), *self.extra.values()]
        if self.gateway is not None:
            procs.append(self.gateway)
        return [p.log for p in procs] + [self.kafka.log_file, self.pg.log_file]

    # -- faults ---------------------------------------------------------------------------------
    def kill_kafka(self) -> None:
        """SIGKILL the broker (no controlled shutdown); :meth:`start_kafka` restarts it on the
        same ports and data directory."""
        pid = self.kafka.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc = self.kafka._proc
        if proc is not None:
            proc.wait(timeout=10)

    def start_kafka(self) -> None:
        self.kafka.start()

    def restart_postgres_immediate(self) -> None:
        """``pg_ctl restart -m immediate``: every connection dropped, crash recovery on start."""
        proc = self.pg._run(
            str(self.pg.bindir / "pg_ctl"),
            "restart",
            "-D",
            str(self.pg.datadir),
            "-m",
            "immediate",
            "-w",
            "-t",
            "60",
            "-l",
            str(self.pg.log_file),
            timeout=90,
        )
        if proc.returncode != 0:
            raise HarnessError(f"pg_ctl restart failed: {proc.stdout}\n{proc.stderr}")

    # -- teardown -------------------------------------------------------------------------------
    def stop(self) -> None:
        procs = [*self.extra.values(), *self.services.values()]
        if self.gateway is not None:
            procs.insert(0, self.gateway)
        for p in procs:
            with contextlib.suppress(Exception):
                p.stop(timeout=10)
        with contextlib.suppress(Exception):
            self.kafka.stop()
        with contextlib.suppress(Exception):
            self.pg.stop()


__all__ = ["SERVICES", "HarnessError", "Proc", "System", "free_ports", "libpq", "with_db"]
