"""Domain errors carrying the DOMAIN error code (last segment of the problem `type`)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule violation, carrying the DOMAIN error code (last segment of the problem `type`)."""

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
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.detail = detail
        self.extensions: dict[str, Any] = extensions
        super().__init__(f"{self.code}: {detail or self.title}")


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
