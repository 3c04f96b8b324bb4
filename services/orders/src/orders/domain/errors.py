"""Errors of the orders domain: a business rule violation identified by a DOMAIN code."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule violation, identified by a DOMAIN error code.

    `status` is the HTTP status the API answers with; `extensions` become problem members.
    """

    status: int = 422

    def __init__(
        self, code: str, detail: str, *, status: int | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status
        self.extensions = extensions


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403
