"""RFC 9457 problem details (`application/problem+json`) for every error a service answers."""

from __future__ import annotations

import errno
import re
import socket
import sqlite3
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import aiokafka.errors as kafka_errors
import asyncpg
import sqlalchemy.exc as sa_exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from service_defaults import context
from service_defaults.logging import get_logger

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://nexo.dev/problems/"
UNAVAILABLE = "unavailable"
RETRY_AFTER_S = 2
"""Seconds a client is asked to wait after a transient infrastructure failure (503)."""

log = get_logger("service_defaults.errors")


class ProblemError(Exception):
    """Raise from a route or use case to answer with a problem+json body.

    ``ProblemError(409, "sale-cancelled", "Sale already cancelled", detail=..., sale_id=...)``
    Extra keyword arguments become members of the body. Set ``headers`` for response headers.
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "error"


def status_code_slug(status: int) -> str:
    try:
        return _slug(HTTPStatus(status).phrase)
    except ValueError:
        return "error"


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    for key, value in (extensions or {}).items():
        if key not in body:
            body[key] = value
    rid = context.request_id.get()
    if rid is not None:
        body.setdefault("request_id", rid)
    return body


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, title, detail, instance, extensions),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_CONTENT_TYPE,
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def problem_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        request.url.path,
        exc.extensions,
        exc.headers,
    )


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(err.get("loc", ())), "reason": str(err.get("msg", "invalid"))}
        for err in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors[:5])
    return problem_response(
        422,
        "validation-error",
        "Request validation failed",
        f"invalid input: {fields}" if fields else None,
        request.url.path,
        {"errors": errors},
    )


async def http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    default_title = status_title(status)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != default_title else None
    extensions: dict[str, Any] = {}
    if exc.detail is not None and not isinstance(exc.detail, str):
        extensions["errors"] = exc.detail
    return problem_response(
        status,
        status_code_slug(status),
        default_title,
        detail,
        request.url.path,
        extensions,
        getattr(exc, "headers", None),
    )


# ---------------------------------------------------------------- transient infrastructure

# SQLSTATE classes/codes that mean "the database is (momentarily) not there", not "your
# statement is wrong": connection exceptions (08xxx), admin/crash shutdown and "cannot
# connect now" (57P01-57P03), too many connections (53300).
_TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ENOTCONN,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EADDRNOTAVAIL,
    }
)
# asyncpg's client-side errors that only a broken or closed connection produces ("another
# operation is in progress" is a programming error, so InterfaceError as such is not listed)
_BROKEN_CONNECTION_MESSAGES = ("connection is closed", "closed in the middle", "is cancelling")
_KAFKA_TRANSIENT = (kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError)


def _transient_one(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        return bool(exc.connection_invalidated)  # the driver error itself is in .orig
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # pool checkout timed out / connection found dead
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate in _TRANSIENT_SQLSTATES
    ):
        return True
    if isinstance(exc, asyncpg.InternalClientError):
        # asyncpg's protocol state machine is off (e.g. "cannot switch to state 15"): the
        # connection is unusable, see db.install_disconnect_detection
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        message = str(exc)
        return any(m in message for m in _BROKEN_CONNECTION_MESSAGES)
    if isinstance(exc, OSError):
        # connect() to several addresses raises a bare OSError("Multiple exceptions: ...");
        # file-system errors (FileNotFoundError, PermissionError, ...) are not transient
        return (
            type(exc) is OSError
            or isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)
            or exc.errno in _NETWORK_ERRNOS
        )
    if isinstance(exc, kafka_errors.KafkaError):
        return isinstance(exc, _KAFKA_TRANSIENT) or bool(exc.retriable)
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc)  # SQLite's busy timeout ran out
    return False


def is_transient(exc: BaseException) -> bool:
    """True when `exc` is a passing infrastructure failure — the database or broker is
    unreachable, restarting or overloaded, a connection broke mid-statement, the pool had no
    connection in time — so the request may succeed when retried later (answer 503), rather
    than a fault of the request or of the code (400/409/500).

    Follows SQLAlchemy's wrapping (``.orig``), explicit chaining (``__cause__``) and
    exception groups, so a driver error is recognised however it was re-raised."""
    return transient_cause(exc) is not None


def transient_cause(exc: BaseException) -> BaseException | None:
    """The exception in `exc`'s chain that makes it transient (see :func:`is_transient`)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _transient_one(current):
            return current
        for inner in (getattr(current, "orig", None), current.__cause__):
            if isinstance(inner, BaseException):
                stack.append(inner)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
    return None


def unavailable_response(path: str | None) -> JSONResponse:
    return problem_response(
        503,
        UNAVAILABLE,
        "Service Unavailable",
        "A database or broker the service needs is unreachable for the moment; retry later.",
        path,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def log_transient(path: str | None, exc: BaseException) -> None:
    """One warning line naming the failure (no stack trace: nothing here is a code fault)."""
    cause = transient_cause(exc) or exc
    reason = f"{type(cause).__name__}: {cause}".strip().splitlines()[0][:300]
    log.warning("transient infrastructure failure", path=path, error=reason)


async def transient_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if not is_transient(exc):
        raise exc  # the last-resort handler answers 500 and logs it
    log_transient(request.url.path, exc)
    return unavailable_response(request.url.path)


# exception types that may carry a transient failure (the handler checks each instance)
TRANSIENT_CANDIDATES: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    kafka_errors.KafkaError,
    sqlite3.OperationalError,
)


def internal_error_response(path: str | None) -> JSONResponse:
    return problem_response(
        500,
        "internal-error",
        "Internal Server Error",
        "An unexpected error occurred; it has been logged.",
        path,
    )


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ClientDisconnect):  # nobody is listening; not a fault of the service
        log.debug("client disconnected before the request body was complete")
        return JSONResponse(None, status_code=400)
    if is_transient(exc):
        log_transient(request.url.path, exc)
        return unavailable_response(request.url.path)
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return internal_error_response(request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, problem_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    for exc_type in TRANSIENT_CANDIDATES:
        app.add_exception_handler(exc_type, transient_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
