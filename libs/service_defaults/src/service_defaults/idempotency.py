"""``Idempotency-Key`` inside each service, stored atomically with the effect.

Semantics follow the IETF httpapi idempotency-key draft:

* A state-changing request (POST, PUT, PATCH, DELETE) may carry ``Idempotency-Key``. Keys are
  scoped per principal (the token's ``sub``).
* The first request runs. If it commits an effect, the key, principal, method, path, the
  request fingerprint (SHA-256 of method, path, query and body) and the answer (status, media
  type, ``Location``, body) are written **in the same database transaction as the effect**:
  either both are committed or neither is. A crash after the commit therefore can never make
  the effect repeatable — the retry finds the stored answer.
* A retry with the same key and the same request gets the stored answer with
  ``Idempotent-Replayed: true``; with another request (body, method or path) → 422
  ``idempotency-key-reused``; while the first is still running in this process → 409
  ``idempotency-key-in-progress`` with ``Retry-After``. Across processes, two concurrent
  first requests race on the table's primary key: the loser's transaction is rolled back and
  it answers the winner's stored response.
* A request that commits nothing (validation error, rule violation, read-only POST) stores
  nothing: retrying it is harmless and runs again.
* Keys expire after ``<SVC>_IDEMPOTENCY_TTL_SECONDS`` (default 24 h); a background job
  deletes expired rows; an expired key is treated as unknown.

How a route's commit joins the key: routes commit through :func:`commit`. While a keyed
request is running, :func:`commit` only flushes and hands the session to the request; the
route wrapper (:func:`idempotent`) inserts the key row once the response exists, then
commits, then runs the after-commit hooks (relay wake-up, cache invalidation). A writer that
commits on its own connection (the PostgreSQL POS hot path) writes the row itself through
:meth:`Pending.row` in its one statement and marks the pending request recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service_defaults.auth import bearer_user
from service_defaults.db import driver_connection
from service_defaults.errors import ProblemError
from service_defaults.logging import get_logger

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_TTL_SECONDS = 24 * 3600.0
TABLE_NAME = "idempotency_keys"
PRIMARY_KEY_NAME = "pk_idempotency_keys"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

log = get_logger("service_defaults.idempotency")


def idempotency_table(metadata: MetaData) -> Table:
    """The service's key table (one per service database)."""
    table = Table(
        TABLE_NAME,
        metadata,
        Column("principal", String(255), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("method", String(10), nullable=False),
        Column("path", String(2048), nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("status", Integer, nullable=False),
        Column("media_type", String(255), nullable=True),
        Column("location", String(2048), nullable=True),
        Column("body", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
    )
    table.primary_key.name = PRIMARY_KEY_NAME
    Index("ix_idempotency_keys_expires_at", table.c.expires_at)
    return table


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(part)
        digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Stored:
    """A stored answer."""

    method: str
    path: str
    fingerprint: str
    status: int
    media_type: str | None
    location: str | None
    body: bytes
    expires_at: datetime

    def response(self) -> Response:
        headers = {REPLAYED_HEADER: "true"}
        if self.location:
            headers["Location"] = self.location
        return Response(
            self.body, status_code=self.status, media_type=self.media_type, headers=headers
        )


class Replay(Exception):
    """Raised by a route that found the key's stored answer itself (:func:`replay_if_stored`,
    or a hot writer reading it in its first statement); the wrapper answers it."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(stored.path)
        self.stored = stored


class KeyAlreadyRecorded(Exception):
    """A writer's insert of the key row hit the primary key: another request with the same
    key committed first. Raised by writers that commit on their own connection; the route
    wrapper answers the stored response."""


@dataclass
class Pending:
    """A keyed request being served (the context of :func:`commit` and of hot writers)."""

    principal: str
    key: str
    method: str
    path: str
    fingerprint: str
    ttl: float
    store: IdempotencyStore | None = None
    session: AsyncSession | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    recorded: bool = False
    looked_up: bool = True
    """False while the route still has to look the key up (:func:`looks_up_itself`)."""

    def row(self, response: Response, now: datetime | None = None) -> dict[str, Any]:
        """The key row for `response` (columns of :func:`idempotency_table`)."""
        now = now or datetime.now(UTC)
        body = getattr(response, "body", None)
        if not isinstance(body, bytes | memoryview):
            raise TypeError("only responses with a body in memory can be stored")
        media_type = response.headers.get("content-type")
        return {
            "principal": self.principal,
            "key": self.key,
            "method": self.method,
            "path": self.path,
            "fingerprint": self.fingerprint,
            "status": response.status_code,
            "media_type": media_type,
            "location": response.headers.get("location"),
            "body": bytes(body),
            "created_at": now,
            "expires_at": now + timedelta(seconds=self.ttl),
        }


_pending: ContextVar[Pending | None] = ContextVar("nexo_idempotency_pending", default=None)


def current() -> Pending | None:
    """The keyed request this task serves, if any."""
    return _pending.get()


def looks_up_itself(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint that looks its key up itself — a hot writer folds the lookup into the
    statement it runs anyway (no extra pool checkout and round trip); its other paths call
    :func:`replay_if_stored` before doing anything."""
    endpoint.__nexo_key_lookup__ = True  # type: ignore[attr-defined]
    return endpoint


async def replay_if_stored() -> None:
    """In a keyed request whose route looks up itself: raise :class:`Replay` when the key has
    a stored answer (no-op otherwise, and when the wrapper already looked it up)."""
    pending = _pending.get()
    if pending is None or pending.looked_up or pending.store is None:
        return
    pending.looked_up = True
    stored = await pending.store.lookup(pending.principal, pending.key)
    if stored is not None:
        raise Replay(stored)


def stored_from_row(values: Any) -> Stored:
    """A :class:`Stored` from a row of the lookup columns (method … expires_at, in order)."""
    method, path, fp, status, media_type, location, body, expires_at = values
    return Stored(method, path, fp, status, media_type, location, bytes(body), _utc(expires_at))


async def commit(session: AsyncSession, *after: Callable[[], None]) -> None:
    """Commit a route's transaction, then run `after` (relay wake-up, cache invalidation).

    Inside a keyed request the commit is deferred to the route wrapper, which adds the key
    row to the same transaction first; `after` then runs after that commit."""
    pending = _pending.get()
    if pending is not None and pending.session in (None, session):
        await session.flush()
        pending.session = session
        session.info["nexo_deferred_commit"] = True
        pending.after_commit.extend(after)
        return
    await session.commit()
    for fn in after:
        fn()


def commit_deferred(session: AsyncSession) -> bool:
    """Whether the session's commit was handed to a keyed request (do not close it)."""
    return bool(session.info.get("nexo_deferred_commit"))


@asynccontextmanager
async def open_session(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session closed on exit unless its commit was deferred to a keyed request."""
    session = maker()
    try:
        yield session
    finally:
        if not commit_deferred(session):
            await session.close()


class IdempotencyStore:
    """Reads and purges one service's key table; tracks the keys running in this process."""

    def __init__(self, engine: AsyncEngine, table: Table, ttl: float) -> None:
        self.engine = engine
        self.table = table
        self.ttl = ttl
        self.running: set[tuple[str, str]] = set()
        self._pg = engine.dialect.name == "postgresql"
        cols = table.c
        self._columns = (
            cols.method,
            cols.path,
            cols.fingerprint,
            cols.status,
            cols.media_type,
            cols.location,
            cols.body,
            cols.expires_at,
        )
        self._pg_lookup = (
            f"SELECT {', '.join(c.name for c in self._columns)} FROM {table.name} "
            "WHERE principal = $1 AND key = $2"
        )

    async def lookup(self, principal: str, key: str) -> Stored | None:
        """The stored answer of an unexpired key."""
        if self._pg:  # one prepared statement: keyed POS sales stay within 10 % of unkeyed
            async with driver_connection(self.engine) as conn:
                row = await conn.fetchrow(self._pg_lookup, principal, key)
        else:
            async with self.engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(*self._columns).where(
                            self.table.c.principal == principal, self.table.c.key == key
                        )
                    )
                ).first()
        if row is None:
            return None
        stored = stored_from_row(row)
        if stored.expires_at <= datetime.now(UTC):
            await self.forget_expired(principal, key)
            return None
        return stored

    async def purge_expired(self, now: datetime | None = None) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(self.table).where(self.table.c.expires_at <= (now or datetime.now(UTC)))
            )
        return int(result.rowcount or 0)

    async def forget_expired(self, principal: str, key: str) -> None:
        """Delete the key's row if it expired: the new request reuses its slot."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(self.table).where(
                    self.table.c.principal == principal,
                    self.table.c.key == key,
                    self.table.c.expires_at <= datetime.now(UTC),
                )
            )


def _in_progress(detail: str) -> ProblemError:
    problem = ProblemError(
        409,
        "idempotency-key-in-progress",
        "Request with this Idempotency-Key still running",
        detail,
    )
    problem.headers = {"Retry-After": "1"}
    return problem


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ProblemError(
            400,
            "idempotency-key-invalid",
            "Invalid Idempotency-Key",
            f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable characters.",
            field="Idempotency-Key",
        )


def _replay(stored: Stored, pending: Pending) -> Response:
    if (stored.method, stored.path, stored.fingerprint) != (
        pending.method,
        pending.path,
        pending.fingerprint,
    ):
        raise ProblemError(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused with a different request",
            "This Idempotency-Key was used for another request (method, path or body); "
            "use a new key for a new request.",
            field="Idempotency-Key",
        )
    return stored.response()


def idempotent(handler: Handler, *, lookup_in_route: bool = False) -> Handler:
    """Wrap a route handler (an ``APIRoute.get_route_handler()`` result) with the key rules.
    Requests without a key, safe methods, unauthenticated requests (the route answers 401)
    and apps without a store (``app.state.idempotency``) pass straight through.
    `lookup_in_route`: the endpoint is :func:`looks_up_itself` (no lookup here)."""

    async def route(request: Request) -> Response:
        key = request.headers.get(HEADER)
        store: IdempotencyStore | None = getattr(request.app.state, "idempotency", None)
        if key is None or request.method not in UNSAFE_METHODS or store is None:
            return await handler(request)
        _check_key(key)
        user = bearer_user(request)
        if user is None:
            return await handler(request)
        ident = (user.sub, key)
        if ident in store.running:
            raise _in_progress("A request with this Idempotency-Key is being processed.")
        store.running.add(ident)
        try:
            path = request.url.path
            pending = Pending(
                principal=user.sub,
                key=key,
                method=request.method,
                path=path,
                fingerprint=fingerprint(
                    request.method, path, request.url.query, await request.body()
                ),
                ttl=store.ttl,
                store=store,
                looked_up=not lookup_in_route,
            )
            if not lookup_in_route:
                stored = await store.lookup(user.sub, key)
                if stored is not None:
                    return _replay(stored, pending)
            token = _pending.set(pending)
            try:
                response = await handler(request)
            except Replay as found:
                await _discard(pending)
                return _replay(found.stored, pending)
            except KeyAlreadyRecorded:
                response = None
            except BaseException:
                await _discard(pending)
                raise
            finally:
                _pending.reset(token)
            if response is not None:
                done = await _finish(store, pending, response)
                if done is not None:
                    return done
            # another process committed this key first: answer what it stored
            stored = await store.lookup(user.sub, key)
            if stored is None:
                raise _in_progress("Another request with this Idempotency-Key is being processed.")
            return _replay(stored, pending)
        finally:
            store.running.discard(ident)

    return route


async def _discard(pending: Pending) -> None:
    if pending.session is not None:
        try:
            await pending.session.rollback()
        finally:
            await pending.session.close()


async def _finish(store: IdempotencyStore, pending: Pending, response: Response) -> Response | None:
    """Commit the deferred transaction with the key row; ``None`` when another request with
    the key won the race (the caller replays the winner's answer)."""
    session = pending.session
    if session is None:  # nothing committed, or the writer recorded the key itself
        return response
    try:
        try:
            row = pending.row(response)
        except TypeError:  # a streamed answer cannot be replayed: commit without the key
            log.warning("unstorable idempotent response", path=pending.path)
            await session.commit()
        else:
            await session.execute(insert(store.table).values(row))
            await session.commit()
    except IntegrityError:
        await session.rollback()
        return None
    finally:
        await session.close()
    for fn in pending.after_commit:
        fn()
    return response


@asynccontextmanager
async def idempotency_store(
    app: FastAPI, table: Table, ttl: float, purge_every: float = 600.0
) -> AsyncIterator[IdempotencyStore]:
    """Lifespan hook body: ``app.state.idempotency`` plus the expired-key cleanup job."""
    store = IdempotencyStore(app.state.engine, table, ttl)
    app.state.idempotency = store

    async def purge_forever() -> None:
        while True:
            try:
                removed = await store.purge_expired()
                if removed:
                    log.info("expired idempotency keys removed", count=removed)
            except Exception as exc:  # the next round retries; the table only grows meanwhile
                log.warning("idempotency key cleanup failed", error=f"{type(exc).__name__}")
            await asyncio.sleep(min(purge_every, ttl))

    task = asyncio.create_task(purge_forever(), name="idempotency-cleanup")
    try:
        yield store
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        app.state.idempotency = None
