"""Bounded input types and guards shared by the services' HTTP layers.

Every value a client sends must fit where it ends up: an integer in its column (a path id of
``2**63`` must be a 422, not an ``OverflowError`` in the driver), a date in the domain's
years, text without NUL (PostgreSQL rejects it), a search term matched literally by LIKE, a
JSON body of bounded nesting. The annotated types carry their bounds into the OpenAPI
document, so clients (and the schemathesis suite) see the same limits the server enforces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import Request, Response, params
from pydantic import StringConstraints

from service_defaults.errors import ProblemError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int32 = Annotated[int, Ge(INT32_MIN), Le(INT32_MAX)]
"""Any value stored in an ``INTEGER`` column."""
Id32 = Annotated[int, Ge(1), Le(INT32_MAX)]
"""A serial id of an ``INTEGER`` column (0 and negatives never exist)."""
Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX)]
Id64 = Annotated[int, Ge(1), Le(INT64_MAX)]

DATE_MIN = dt.date(2000, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)
DomainDate = Annotated[dt.date, Ge(DATE_MIN), Le(DATE_MAX)]
"""A business date: the years 2000–2100 every service's data lives in (evidence's monthly
reports have a CHECK on that range)."""

NO_NUL_PATTERN = r"^[^\x00]*$"
SafeText = Annotated[str, StringConstraints(pattern=NO_NUL_PATTERN)]
"""Text without NUL characters (PostgreSQL text cannot hold them)."""

LIKE_ESCAPE = "\\"


def like_contains(term: str) -> str:
    """A LIKE pattern matching `term` literally anywhere (``%`` and ``_`` escaped with
    :data:`LIKE_ESCAPE`); lower-cased by ``str.lower``, for
    :func:`service_defaults.text_search.contains_ci`."""
    escaped = (
        term.lower()
        .replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays/objects a JSON body may have; every real body nests < 6."""


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `raw` (JSON text) nests deeper than `limit`. O(n); the common case (fewer
    brackets than the limit in the whole body) is two C-level counts."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def too_deep_problem(limit: int = MAX_JSON_DEPTH) -> ProblemError:
    return ProblemError(
        400,
        "json-too-deep",
        "JSON nested too deeply",
        f"the request body nests arrays/objects deeper than {limit} levels",
        errors=[{"field": "body", "reason": f"nesting deeper than {limit}"}],
    )


def is_json_content_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/<x>+json`` (with parameters); absent counts as
    JSON, as FastAPI reads a body without a content type as JSON."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def unsupported_media_type(content_type: str) -> ProblemError:
    return ProblemError(
        415,
        "unsupported-media-type",
        "Unsupported Media Type",
        f"this operation takes application/json, not {content_type.split(';', 1)[0]!r}",
        errors=[{"field": "body", "reason": "Content-Type must be application/json"}],
    )


def check_json_body(content_type: str | None, raw: bytes) -> None:
    """Raise the 415 / 400 problem for a JSON route's body: a non-JSON content type (when
    there is a body) or nesting beyond :data:`MAX_JSON_DEPTH`."""
    if not raw:
        return
    if not is_json_content_type(content_type):
        raise unsupported_media_type(content_type or "")
    if json_depth_exceeds(raw):
        raise too_deep_problem()


def has_json_body(route: Any) -> bool:
    """Whether a FastAPI route reads a JSON body (a pydantic body field, not a form)."""
    body = getattr(route, "body_field", None)
    if body is None:
        return False
    info = getattr(body, "field_info", None)
    return not isinstance(info, params.Form)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def json_body_guard(route: Any, handler: Handler) -> Handler:
    """Wrap a route handler (in an ``APIRoute.get_route_handler``) so that a route with a JSON
    body answers 415 to another content type and 400 to a body nested too deeply, before
    anything parses it. Routes without a JSON body get `handler` back unchanged."""
    if not has_json_body(route):
        return handler

    async def guarded(request: Request) -> Response:
        check_json_body(request.headers.get("content-type"), await request.body())
        return await handler(request)

    return guarded
