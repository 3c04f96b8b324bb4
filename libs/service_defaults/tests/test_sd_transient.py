"""Transient infrastructure failures: the one classifier (`errors.is_transient`) and the
answers every service app gives for them (503 ``unavailable`` + ``Retry-After``, never 500),
plus a client that disconnects mid-body (no answer, nothing logged as an error)."""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiokafka.errors as kafka_errors
import asyncpg
import httpx
import pytest
import sqlalchemy.exc as sa_exc
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Request
from pydantic_settings import SettingsConfigDict
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message

from nexo_messaging import errors as messaging_errors
from nexo_messaging.errors import CommitFailed, PermanentError, PublishTimeout, TransportUnavailable
from service_defaults.app import build_service_app
from service_defaults.errors import RETRY_AFTER_S, is_transient
from service_defaults.middleware import CLIENT_CLOSED_REQUEST
from service_defaults.settings import ServiceSettings


def _dbapi(orig: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    return sa_exc.OperationalError("SELECT 1", None, orig, connection_invalidated=invalidated)


def _chained(outer: Exception, cause: BaseException) -> Exception:
    try:
        raise outer from cause
    except Exception as exc:
        return exc


TRANSIENT: list[BaseException] = [
    ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
    ConnectionResetError(errno.ECONNRESET, "reset by peer"),
    OSError("Multiple exceptions: [Errno 111] Connect call failed"),  # create_connection
    OSError(errno.EHOSTUNREACH, "No route to host"),
    TimeoutError(),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.CannotConnectNowError("the database system is shutting down"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("crash"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.PostgresConnectionError("08000"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    sa_exc.TimeoutError("QueuePool limit of size 5 overflow 0 reached"),
    sa_exc.DisconnectionError("connection closed by the server"),
    _dbapi(RuntimeError("server closed the connection"), invalidated=True),
    _dbapi(asyncpg.AdminShutdownError("terminating connection")),
    _dbapi(sqlite3.OperationalError("database is locked")),
    _chained(RuntimeError("response already started"), asyncpg.CannotConnectNowError("57P03")),
    ExceptionGroup("tasks", [ValueError("x"), ConnectionResetError()]),
    kafka_errors.KafkaTimeoutError(),
    kafka_errors.KafkaConnectionError("no broker"),
    kafka_errors.NodeNotReadyError(),
    TransportUnavailable("memory broker unavailable"),
    PublishTimeout("send_many did not finish"),
]
PERMANENT: list[BaseException] = [
    ValueError("bad input"),
    RuntimeError("bug"),
    FileNotFoundError(errno.ENOENT, "no such file"),
    PermissionError(errno.EACCES, "denied"),
    asyncpg.UniqueViolationError("duplicate key"),
    asyncpg.UndefinedTableError("relation does not exist"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    sa_exc.IntegrityError("INSERT", None, asyncpg.UniqueViolationError("duplicate key")),
    _dbapi(asyncpg.SyntaxOrAccessError("syntax error")),
    _dbapi(sqlite3.OperationalError("no such table: x")),
    _chained(RuntimeError("wrapper"), ValueError("cause")),
    kafka_errors.RecordTooLargeError(),
    PermanentError("rule violated"),
    CommitFailed("rebalanced"),
]


def test_one_definition_shared_with_messaging() -> None:
    """The consumer runner (nexo_messaging) and the apps classify with the same function."""
    assert is_transient is messaging_errors.is_transient


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", PERMANENT, ids=lambda e: type(e).__name__)
def test_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


# ------------------------------------------------------------------------------ the answers


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SDTRANSIENT_", extra="ignore", frozen=True)
    service_name: str = "sdtransient"


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")

    @router.get("/pool")
    async def pool() -> None:
        raise sa_exc.TimeoutError("QueuePool limit reached, connection timed out")

    @router.get("/shutdown")
    async def shutdown() -> None:  # as SQLAlchemy re-raises a driver error
        raise _dbapi(asyncpg.AdminShutdownError("terminating connection"))

    @router.get("/driver")
    async def driver() -> None:  # as the hot path's raw asyncpg connection raises it
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")

    @router.get("/kafka")
    async def kafka() -> None:
        raise kafka_errors.KafkaTimeoutError()

    @router.get("/missing-file")
    async def missing_file() -> None:
        raise FileNotFoundError(errno.ENOENT, "no such file")

    @router.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"n": len(await request.body())}

    return router


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[ASGIApp]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}", env="test")
    app = build_service_app(settings, title="transient", routers=[_router()])
    async with LifespanManager(app) as manager:
        yield manager.app


@pytest.fixture
async def client(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@pytest.mark.parametrize("path", ["/refused", "/pool", "/shutdown", "/driver", "/kafka"])
async def test_transient_failure_is_503_with_retry_after(
    client: httpx.AsyncClient, path: str, error_logs: list[logging.LogRecord]
) -> None:
    r = await client.get(path)
    assert r.status_code == 503
    assert r.headers["retry-after"] == str(RETRY_AFTER_S)
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "unavailable"
    assert body["type"] == "https://nexo.dev/problems/unavailable"
    assert body["instance"] == path
    assert error_logs == []


async def test_other_os_errors_stay_500(client: httpx.AsyncClient) -> None:
    r = await client.get("/missing-file")
    assert r.status_code == 500
    assert r.json()["code"] == "internal-error"


async def test_client_gone_mid_body_is_no_error(
    app: ASGIApp, error_logs: list[logging.LogRecord]
) -> None:
    """A request whose body never completes: the route's body read raises ClientDisconnect;
    no answer goes out, nothing is logged as an error, the access line says 499."""
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    access: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            access.append(record)

    handler = Collect(logging.INFO)
    logging.getLogger("nexo.access").addHandler(handler)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
        "state": {},
    }
    try:
        await app(scope, receive, send)
    finally:
        logging.getLogger("nexo.access").removeHandler(handler)
    assert error_logs == []
    assert [m for m in sent if m["type"] == "http.response.start" and m["status"] >= 500] == []
    statuses = [getattr(r, "msg", {}) for r in access]
    assert any(
        isinstance(m, dict) and m.get("status") == CLIENT_CLOSED_REQUEST for m in statuses
    ), statuses


def test_client_disconnect_is_not_transient() -> None:
    assert not is_transient(ClientDisconnect())
