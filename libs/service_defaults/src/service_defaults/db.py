"""Async SQLAlchemy engine and sessions (PostgreSQL via asyncpg, SQLite via aiosqlite)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import StaticPool

from service_defaults.errors import is_transient
from service_defaults.settings import mask_url
from service_defaults.text_search import register_sqlite_functions

SQLITE_BUSY_TIMEOUT_MS = 5000
DEFAULT_POOL_SIZE = 15
"""Server connections a process keeps (and its maximum: no overflow). Overflow connections
are closed when returned, so a pool smaller than the steady concurrency opens and closes a
PostgreSQL connection (a forked backend, authentication, codec setup) per request; with the
former 5 + 10 overflow that churn cost more CPU than the requests themselves under load."""
PING_AFTER_IDLE_S = 10.0
"""A pooled server connection idle for longer than this is pinged before it is handed out."""


class DatabaseUnreachable(RuntimeError):
    """Raised at start-up when the database cannot be reached; str() is one clear line."""


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    sqlite_pragmas(dbapi_conn)


def sqlite_pragmas(dbapi_conn: Any) -> None:
    """The settings of every SQLite connection (pooled, or a hot path's own ``sqlite3``
    connection). Durability: WAL with ``synchronous=NORMAL`` — a commit is atomic and survives
    a process crash; a power cut or OS crash may lose the last commits written to the WAL
    since the last checkpoint, but never leaves the database corrupt. The SQL functions Nexo
    defines (:mod:`service_defaults.text_search`) are registered here too."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
    register_sqlite_functions(dbapi_conn)


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = DEFAULT_POOL_SIZE,
    ping_after_idle_s: float = PING_AFTER_IDLE_S,
) -> AsyncEngine:
    """Create an AsyncEngine with sensible settings for the URL's backend. No I/O happens here
    except creating the parent directory of a SQLite file. `pool_size` (server databases): the
    connections kept open, also the most open at once (no overflow; see DEFAULT_POOL_SIZE)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        kwargs: dict[str, Any] = {"echo": echo}
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            kwargs["poolclass"] = StaticPool  # one shared in-memory database
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = _create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    engine = _create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        pool_recycle=1800,
        connect_args={"timeout": 10, "command_timeout": 60},
    )
    install_liveness_check(engine, ping_after_idle_s)
    install_disconnect_detection(engine)
    return engine


def install_disconnect_detection(engine: AsyncEngine) -> None:
    """Have SQLAlchemy treat every transient failure (:func:`~service_defaults.errors.
    is_transient`) as a disconnect: the connection is discarded, not reset and pooled again,
    and the pool drops its other connections opened before (a server restart killed them too).

    SQLAlchemy's asyncpg dialect only recognises a disconnect once asyncpg has seen the socket
    closed. When PostgreSQL shuts down it first sends each idle session a FATAL error (57P01);
    asyncpg, not expecting a message while idle, marks the protocol failed
    (``ERROR_CONSUME``) while the socket still looks open until the EOF is read on a later
    loop iteration. A connection checked out in that window fails its next statement with
    ``InternalClientError: cannot switch to state 12/15; another operation (2) is in
    progress``; unrecognised, that connection went back through the pool's reset (a
    ``ROLLBACK`` failing the same way, logged by the pool) and the request answered 500."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _handle_error(context: ExceptionContext) -> None:
        if not context.is_disconnect and is_transient(context.original_exception):
            context.is_disconnect = True


def install_liveness_check(engine: AsyncEngine, idle_s: float = PING_AFTER_IDLE_S) -> None:
    """Disconnect handling without a round trip per checkout (``pool_pre_ping`` costs one
    ping — three round trips on asyncpg — for every checkout, i.e. every request).

    On checkout a connection whose socket the driver already saw closed (server restart,
    idle kill) is replaced at once; one that sat in the pool longer than ``idle_s`` is pinged
    first and replaced if the ping fails. A connection that dies while busy fails that one
    statement; SQLAlchemy then invalidates it (and the pool, for a disconnect error) so the
    next checkouts reconnect."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        is_closed = getattr(getattr(dbapi_conn, "driver_connection", None), "is_closed", None)
        if is_closed is not None and is_closed():
            raise DisconnectionError("connection closed by the server")
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"ping failed: {exc}") from exc


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pooled connection's driver object (``asyncpg.Connection`` on PostgreSQL) for
    hand-written statements on a hot path, without SQLAlchemy's per-statement machinery.

    No transaction is open: every statement commits on its own, so a write that must be atomic
    has to be ONE statement (data-modifying CTEs). Any exception escaping the block discards
    the connection instead of returning it to the pool (it may be mid-command), so keep
    expected errors (validation, domain rules) outside the block."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        try:
            yield raw.driver_connection
        except BaseException:
            await conn.invalidate()
            raise


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_database(engine: AsyncEngine, *, limit: float = 2.0) -> None:
    """`SELECT 1` bounded by `limit` seconds; raises on failure (readiness check)."""
    async with asyncio.timeout(limit), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def wait_for_database(
    engine: AsyncEngine,
    *,
    env_var: str = "DATABASE_URL",
    deadline: float = 10.0,
    attempt_timeout: float = 3.0,
) -> None:
    """Start-up check: retry `SELECT 1` until `deadline` seconds; then raise
    :class:`DatabaseUnreachable` with one line naming the (masked) URL and the reason."""
    end = time.monotonic() + deadline
    delay = 0.2
    while True:
        try:
            await check_database(engine, limit=attempt_timeout)
            return
        except Exception as exc:  # the reason goes into the message
            if time.monotonic() + delay >= end:
                url = mask_url(engine.url.render_as_string(hide_password=False))
                reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
                raise DatabaseUnreachable(
                    f"database unreachable: {env_var}={url} ({reason})"
                ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
