"""RFC 9457 problem details (`application/problem+json`) for every error a service answers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from nexo_messaging.errors import TRANSIENT_CANDIDATES as TRANSIENT_CANDIDATES
from nexo_messaging.errors import is_transient as is_transient
from nexo_messaging.errors import transient_cause as transient_cause
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


class DomainError(Exception):
    """The base of every service's business-rule violation: a DOMAIN `code` (the last segment
    of the problem `type`), a human `detail`, the HTTP `status` and `title` the API answers
    with, the offending input `field` (when there is one) and `extensions` (problem members).

    Services subclass it with their own constructor and vocabulary of codes; the one mapping
    to problem+json is :func:`domain_problem` (the route class and the app's handler use it).
    """

    status: int = 422
    code: str = "REGLA_DE_NEGOCIO"
    title: str = "Regla de negocio violada"
    field: str | None = None

    def __init__(
        self,
        code: str | None = None,
        detail: str | None = None,
        *,
        status: int | None = None,
        title: str | None = None,
        field: str | None = None,
        **extensions: Any,
    ) -> None:
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.detail = detail
        self.field = field
        self.extensions: dict[str, Any] = extensions
        super().__init__(f"{self.code}: {detail or self.title}")


def jsonable(value: Any) -> Any:
    """`value` with every Decimal as its string (problem members are plain JSON)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def domain_problem(exc: DomainError) -> ProblemError:
    """The problem+json answer of a domain error: its status, code, title and detail; its
    extensions as members; with a `field` (the attribute, else a ``field`` member among the
    extensions, which keeps its place), that member plus ``errors: [{field, reason}]``."""
    ext = {k: jsonable(v) for k, v in exc.extensions.items()}
    field = exc.field if exc.field is not None else ext.get("field")
    if field:
        ext["field"] = field
        ext.setdefault("errors", [{"field": field, "reason": exc.detail or exc.title}])
    return ProblemError(exc.status, exc.code, exc.title, exc.detail, **ext)


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


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A DomainError raised outside a domain route class (a dependency, middleware-free code)."""
    assert isinstance(exc, DomainError)
    return await problem_error_handler(request, domain_problem(exc))


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
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    for exc_type in TRANSIENT_CANDIDATES:
        app.add_exception_handler(exc_type, transient_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
