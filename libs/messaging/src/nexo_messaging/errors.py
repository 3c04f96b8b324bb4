"""Errors of the messaging layer, and the one classifier of transient infrastructure failures
(:func:`is_transient`) that the consumer runner and every service app (``service_defaults.errors``
re-exports it) use."""

from __future__ import annotations

import errno
import socket
import sqlite3

import aiokafka.errors as kafka_errors
import asyncpg
import sqlalchemy.exc as sa_exc


class MessagingError(Exception):
    """Base class of nexo_messaging errors."""


class PermanentError(MessagingError):
    """Raised by a handler for a rule violation that retrying cannot fix: the event goes to the
    DLQ at once instead of being retried."""


class TransportUnavailable(MessagingError):
    """The broker cannot be reached (or the memory broker's fault switch is on)."""


class CommitFailed(MessagingError):
    """An offset commit was refused (partition no longer assigned / group rebalanced)."""


class PublishTimeout(MessagingError):
    """A broker call did not finish within its time bound."""


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
    if isinstance(exc, TransportUnavailable | PublishTimeout):
        return True
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
    TransportUnavailable,
    PublishTimeout,
)
