"""Errors of the orders domain: a business rule violation identified by a DOMAIN code (the base
and its problem+json mapping are `service_defaults.errors`)."""

from __future__ import annotations

from typing import Any

from service_defaults import errors

TITLES = {
    "FOLIO_DUPLICADO": "Folio de pedido duplicado",
    "YA_SURTIDA": "La propuesta ya fue surtida",
    "LOTE_NO_ELEGIBLE": "Lote no elegible",
    "CADUCIDAD_MINIMA": "Caducidad mínima no cumplida",
    "PRODUCTO_NO_COINCIDE": "El lote es de otro producto",
    "EXCEDE_APROBADO": "Excede la cantidad aprobada",
    "STOCK_INSUFICIENTE": "Existencia insuficiente",
    "APROBADA_EXCEDE_SOLICITADA": "Aprobada mayor que solicitada",
    "JUSTIFICACION_REQUERIDA": "Justificación requerida",
    "PROPUESTA_NO_REVISADA": "Propuesta no revisada",
}
"""Problem titles of the codes that have one; any other code's title is the code in words."""


def title_of(code: str) -> str:
    return TITLES.get(code, code.replace("_", " ").capitalize())


class DomainError(errors.DomainError):
    """A business rule violation, identified by a DOMAIN error code.

    `status` is the HTTP status the API answers with; `extensions` become problem members
    (a `field` keeps its place among them)."""

    status: int = 422

    def __init__(
        self, code: str, detail: str, *, status: int | None = None, **extensions: Any
    ) -> None:
        super().__init__(code, detail, status=status, title=title_of(code))
        self.extensions = extensions

    def __str__(self) -> str:
        return self.detail or ""


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403
