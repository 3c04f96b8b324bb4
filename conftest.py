"""Root test fixtures: real PostgreSQL and Kafka for integration tests.

Each backing service is resolved once per session, lazily (only when a test asks for it), in
this order:

1. a URL from the environment (``DATABASE_URL`` — a server-level DSN — and
   ``KAFKA_BOOTSTRAP_SERVERS``);
2. testcontainers, only when a Docker engine answers a ping;
3. local processes from ``deploy.local`` (Kafka jars from Maven Central on the machine's Java,
   PostgreSQL from Debian's binaries);
4. otherwise the test is skipped — or FAILS when ``CI=true``.

Fixtures (other packages code against these names):

``postgres_url``  session, ``str``: server-level DSN ``postgresql+asyncpg://...``
``pg_database``   function, ``str``: DSN of a NEW empty database, dropped after the test
``kafka_bootstrap`` session, ``str`` ``host:port``
``kafka_broker``  session: ``.bootstrap_servers``, ``.can_restart``, ``.stop()``, ``.start()``
``unique_name``   function: ``unique_name(prefix) -> str`` for topics / groups / databases
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

INFRA_FIXTURES = frozenset({"postgres_url", "pg_database", "kafka_bootstrap", "kafka_broker"})
T = TypeVar("T")


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _unavailable(what: str, reasons: list[str]) -> None:
    msg = f"{what} is not available: " + "; ".join(reasons)
    if _ci():
        pytest.fail(f"{msg} (CI=true: integration tests must not skip)", pytrace=False)
    pytest.skip(msg)


def _run_coro(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if a loop runs in this thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --- Docker detection ------------------------------------------------------------------------


def docker_available(timeout: float = 1.0) -> bool:
    """True when a Docker engine answers ``GET /_ping`` (cheap; no docker SDK call)."""
    if os.environ.get("NEXO_TESTCONTAINERS", "").lower() in {"0", "false", "no", "off"}:
        return False
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            path = host.removeprefix("unix://")
            if not os.path.exists(path):
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        elif host.startswith("tcp://"):
            parts = urlsplit(host)
            sock = socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 2375), timeout=timeout
            )
            sock.settimeout(timeout)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(256)
        return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]
    except OSError:
        return False


# --- session bookkeeping (what ran against what, for the terminal summary) -------------------


@dataclass
class InfraRecord:
    kafka: str | None = None
    postgres: str | None = None
    nodeids: set[str] = field(default_factory=set)
    outcomes: dict[str, str] = field(default_factory=dict)


_RECORD = InfraRecord()


# --- PostgreSQL ------------------------------------------------------------------------------


def to_asyncpg_url(url: str) -> str:
    """Normalise ``postgres://``, ``postgresql://`` or ``postgresql+<driver>://`` to asyncpg."""
    return re.sub(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", "postgresql+asyncpg://", url)


def to_libpq_url(url: str) -> str:
    """The same DSN without the SQLAlchemy driver suffix (for asyncpg.connect)."""
    return re.sub(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", "postgresql://", url)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def _server_version(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(to_libpq_url(url), timeout=10)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Server-level SQLAlchemy DSN ``postgresql+asyncpg://...`` of a real PostgreSQL."""
    reasons: list[str] = []
    env = os.environ.get("DATABASE_URL", "").strip()
    if env:
        url = to_asyncpg_url(env)
        version = _run_coro(_server_version(url)).split()[0]
        _RECORD.postgres = f"PostgreSQL {version} (env DATABASE_URL @{_host_port(url)})"
        yield url
        return
    reasons.append("DATABASE_URL not set")

    if docker_available():
        from testcontainers.community.postgres import PostgresContainer

        container = PostgresContainer("postgres:15-alpine", driver="asyncpg")
        container.start()
        try:
            url = to_asyncpg_url(container.get_connection_url())
            version = _run_coro(_server_version(url)).split()[0]
            _RECORD.postgres = f"PostgreSQL {version} (testcontainers @{_host_port(url)})"
            yield url
        finally:
            container.stop()
        return
    reasons.append("no Docker engine")

    from deploy.local import InfraError, PostgresServer

    try:
        server = PostgresServer().start()
    except InfraError as exc:
        reasons.append(f"local PostgreSQL failed: {exc}")
    else:
        try:
            _RECORD.postgres = f"PostgreSQL {server.version} (local @{server.host}:{server.port})"
            yield server.dsn
        finally:
            server.close()
        return
    _unavailable("PostgreSQL", reasons)


@pytest.fixture
async def pg_database(postgres_url: str) -> AsyncIterator[str]:
    """DSN (``postgresql+asyncpg://``) of a new empty database, dropped after the test."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:20]}"
    conn = await asyncpg.connect(to_libpq_url(postgres_url), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield with_database(postgres_url, name)
    finally:
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(to_libpq_url(postgres_url), timeout=10)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()


# --- Kafka -----------------------------------------------------------------------------------


class BrokerHandle(Protocol):
    bootstrap_servers: str
    can_restart: bool

    def stop(self) -> None: ...

    def start(self) -> Any: ...


class ExternalKafka:
    """A broker we did not start (``KAFKA_BOOTSTRAP_SERVERS``): it cannot be restarted."""

    can_restart = False

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers

    def stop(self) -> None:
        pytest.skip("the Kafka broker comes from KAFKA_BOOTSTRAP_SERVERS: cannot stop it")

    def start(self) -> ExternalKafka:
        return self


class ContainerKafka:
    """A testcontainers broker; ``stop``/``start`` pause and unpause the container.

    A paused broker keeps its port but answers nothing — clients see timeouts, as with a
    broker that has gone away; unpausing brings it back with the same address.
    """

    can_restart = True

    def __init__(self, container: Any) -> None:
        self.container = container
        self.bootstrap_servers = str(container.get_bootstrap_server())

    def stop(self) -> None:
        self.container.get_wrapped_container().pause()

    def start(self) -> ContainerKafka:
        with contextlib.suppress(Exception):
            self.container.get_wrapped_container().unpause()
        return self


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Any]:
    """The session's real Kafka broker (``KafkaBroker`` or a stand-in with the same surface)."""
    reasons: list[str] = []
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if env:
        _RECORD.kafka = f"Kafka (env KAFKA_BOOTSTRAP_SERVERS @{env})"
        yield ExternalKafka(env)
        return
    reasons.append("KAFKA_BOOTSTRAP_SERVERS not set")

    if docker_available():
        from testcontainers.community.kafka import KafkaContainer

        container = KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft()
        container.start()
        handle = ContainerKafka(container)
        try:
            _RECORD.kafka = f"Kafka (KRaft, testcontainers @{handle.bootstrap_servers})"
            yield handle
        finally:
            with contextlib.suppress(Exception):
                handle.start()  # unpause before stopping
            container.stop()
        return
    reasons.append("no Docker engine")

    from deploy.local import InfraError, KafkaBroker

    broker = KafkaBroker()
    try:
        broker.start()
    except InfraError as exc:
        reasons.append(f"local Kafka failed: {exc}")
        broker.close()
    else:
        try:
            major_minor = ".".join(broker.version.split(".")[:2])
            _RECORD.kafka = (
                f"Kafka (KRaft {major_minor} local @{broker.bootstrap_servers}, "
                f"started in {broker.last_start_seconds:.1f} s)"
            )
            yield broker
        finally:
            broker.close()
        return
    _unavailable("Kafka", reasons)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: BrokerHandle) -> str:
    """``host:port`` of the session's real Kafka broker."""
    return kafka_broker.bootstrap_servers


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name("orders.requests")`` -> ``"orders.requests-3f9c0a1b2d"`` (topic/group-safe)."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


# --- hooks -----------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & INFRA_FIXTURES:
            _RECORD.nodeids.add(item.nodeid)
            if item.get_closest_marker("integration") is None:
                item.add_marker(pytest.mark.integration)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Also count tests that reach the fixtures through ``request.getfixturevalue``."""
    if item.nodeid in _RECORD.nodeids:
        return
    defs = getattr(getattr(item, "_request", None), "_fixture_defs", None) or {}
    if INFRA_FIXTURES & set(defs):
        _RECORD.nodeids.add(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid not in _RECORD.nodeids:
        return
    if report.when != "call" and report.outcome == "passed":
        return  # setup/teardown that passed decide nothing
    if _RECORD.outcomes.get(report.nodeid) == "failed":
        return  # a failure (e.g. call) is not undone by a later phase
    if getattr(report, "wasxfail", None) is not None:
        outcome = "xfailed" if report.skipped else "xpassed"
    else:
        outcome = report.outcome
    _RECORD.outcomes[report.nodeid] = outcome


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _RECORD.nodeids:
        return
    counts: dict[str, int] = {}
    for outcome in _RECORD.outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    backends = [
        f"real {_RECORD.kafka}" if _RECORD.kafka else None,
        f"real {_RECORD.postgres}" if _RECORD.postgres else None,
    ]
    against = " and ".join(b for b in backends if b) or "no real backend"
    extra = "".join(f", {counts[k]} {k}" for k in ("failed", "xfailed", "xpassed") if counts.get(k))
    line = (
        f"integration: {counts.get('passed', 0)} passed{extra} against {against}; "
        f"{counts.get('skipped', 0)} skipped"
    )
    markup = {"red": True} if counts.get("failed") or (_ci() and counts.get("skipped")) else {}
    terminalreporter.write_sep("-", "infrastructure")
    terminalreporter.write_line(line, **markup)
