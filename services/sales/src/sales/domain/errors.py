"""Domain errors carrying the DOMAIN error code (last segment of the problem `type`); the base
and its problem+json mapping are `service_defaults.errors`."""

from __future__ import annotations

from typing import Any

from service_defaults import errors


class DomainError(errors.DomainError):
    """A rule violation, carrying the DOMAIN error code (last segment of the problem `type`).

    ``DomainError(detail, code=..., field=..., **members)``: a `field` keeps its place among the
    members of the problem body."""

    status: int = 422
    code: str = "REGLA_DE_NEGOCIO"
    title: str = "Regla de negocio violada"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(code, detail, status=status, title=title)
        self.extensions = extensions


class NotFound(DomainError):
    status = 404
    code = "NO_ENCONTRADO"
    title = "Recurso no encontrado"


class Conflict(DomainError):
    status = 409
    code = "CONFLICTO"
    title = "Conflicto con el estado actual"


class Invalid(DomainError):
    status = 422
    code = "DATOS_INVALIDOS"
    title = "Datos inválidos"
