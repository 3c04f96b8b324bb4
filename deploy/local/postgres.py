"""A throwaway PostgreSQL server from the machine's Debian binaries, without Docker.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(``runuser -u postgres -- ...``); as any other user it runs directly::

    server = PostgresServer().start()
    server.dsn     # postgresql+asyncpg://postgres@127.0.0.1:<port>/postgres
    server.close() # stop -m immediate and remove the directory
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from deploy.local._util import HOST, InfraError, free_port, tail, wait_until

PG_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with ``initdb`` (env ``NEXO_PG_BINDIR``)."""
    env = os.environ.get("NEXO_PG_BINDIR")
    if env:
        path = Path(env)
        if (path / "initdb").exists():
            return path
        raise InfraError(f"NEXO_PG_BINDIR={env} has no initdb")
    candidates: list[tuple[int, Path]] = []
    if PG_ROOT.is_dir():
        for child in PG_ROOT.iterdir():
            if child.name.isdigit() and (child / "bin" / "initdb").exists():
                candidates.append((int(child.name), child / "bin"))
    if not candidates:
        found = shutil.which("initdb")
        if found:
            return Path(found).parent
        raise InfraError("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    return max(candidates)[1]


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory on a free 127.0.0.1 port."""

    def __init__(
        self,
        *,
        workdir: Path | str | None = None,
        port: int | None = None,
        bindir: Path | None = None,
        max_connections: int = 300,
    ) -> None:
        self.bindir = bindir or find_bindir()
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="nexo-pg-"))
        self.port = port or free_port()
        self.host = HOST
        self.max_connections = max_connections
        self.last_start_seconds: float | None = None
        self._started = False

    # -- properties ----------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_file(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/postgres"

    @property
    def libpq_dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    @property
    def version(self) -> str:
        out = subprocess.run(
            [str(self.bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        match = re.search(r"(\d+(?:\.\d+)?)", out)
        return match.group(1) if match else "unknown"

    @property
    def pid(self) -> int | None:
        pidfile = self.datadir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pidfile.read_text().splitlines()[0])
        return None

    # -- helpers -------------------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if _as_root():
            cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.workdir,  # the service user may not be able to enter our cwd
            stdin=subprocess.DEVNULL,
        )

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            raise InfraError(
                f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                f"--- {self.log_file} ---\n{tail(self.log_file)}"
            )

    def is_ready(self) -> bool:
        proc = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return proc.returncode == 0

    def is_running(self) -> bool:
        return self._started and self.is_ready()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> PostgresServer:
        if self._started:
            return self
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            shutil.chown(self.workdir, SERVICE_USER, SERVICE_USER)
            self.workdir.chmod(0o700)
        if not (self.datadir / "PG_VERSION").exists():
            proc = self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
                timeout=120,
            )
            self._check(proc, "initdb")
        options = " ".join(
            [
                f"-p {self.port}",
                f"-c listen_addresses={self.host}",
                f"-c unix_socket_directories={self.workdir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                f"-c max_connections={self.max_connections}",
                "-c shared_buffers=128MB",
            ]
        )
        proc = self._run(
            str(self.bindir / "pg_ctl"),
            "start",
            "-D",
            str(self.datadir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(timeout)),
            "-o",
            options,
            timeout=timeout + 10,
        )
        self._check(proc, "pg_ctl start")
        self._started = True
        try:
            wait_until(
                self.is_ready, timeout=timeout, what=f"PostgreSQL on {self.host}:{self.port}"
            )
        except InfraError:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - started
        print(
            f"[deploy.local] PostgreSQL {self.version} listening on {self.host}:{self.port} "
            f"(ready in {self.last_start_seconds:.1f} s, dir {self.workdir})",
            file=sys.stderr,
        )
        return self

    def stop(self) -> None:
        if not (self.datadir / "postmaster.pid").exists():
            self._started = False
            return
        self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "immediate")
        self._started = False

    def close(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @classmethod
    def attach(cls, *, workdir: Path, port: int) -> PostgresServer:
        server = cls(workdir=workdir, port=port)
        server._started = True
        server._owns_workdir = False
        return server

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresServer({self.host}:{self.port}, dir={self.workdir})"


__all__ = ["PostgresServer", "find_bindir"]
