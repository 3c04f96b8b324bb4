"""Roles and the permission matrix (§B.4.8): deny by default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from orders.domain.errors import (
    Forbidden,
)

ROLE_SOLICITANTE = "orders.solicitante"
ROLE_VALIDADOR = "orders.validador"
ROLE_ALMACENISTA = "orders.almacenista"
ROLE_SUPERVISOR = "orders.supervisor"
ROLE_ADMIN = "admin"
ROLE_OPS = "ops"
ROLES = (ROLE_SOLICITANTE, ROLE_VALIDADOR, ROLE_ALMACENISTA, ROLE_SUPERVISOR)
ADMINISTRADOR_LOCAL = "orders.administrador_local"
"""May create a request whose external folio duplicates an active one (§B.4.6)."""


class Accion(StrEnum):
    CREAR_SOLICITUD = "crear_solicitud"
    EDITAR_SOLICITUD = "editar_solicitud"
    CANCELAR_SOLICITUD = "cancelar_solicitud"
    VALIDAR = "validar"
    RECHAZAR = "rechazar"
    EDITAR_PROPUESTA = "editar_propuesta"
    REVISAR_PROPUESTA = "revisar_propuesta"
    RECOGER = "recoger"
    CORREGIR_PICKING = "corregir_picking"
    REINTENTAR_PROPUESTA = "reintentar_propuesta"
    SURTIR = "surtir"
    LIBERAR_PROPUESTA = "liberar_propuesta"
    CANCELAR_PROPUESTA = "cancelar_propuesta"
    OVERRIDE_CADUCIDAD = "override_caducidad"
    CONFIRMAR_SURTIDO_SIN_PICKING = "confirmar_surtido_sin_picking"
    REPORTES = "reportes"
    CATALOGO = "catalogo"
    JOB_CADUCIDAD = "job_caducidad"


PERMISOS: Mapping[Accion, frozenset[str]] = {
    Accion.CREAR_SOLICITUD: frozenset({ROLE_SOLICITANTE}),
    Accion.EDITAR_SOLICITUD: frozenset({ROLE_SOLICITANTE}),
    # own PENDIENTE request by the Solicitante, any non-dispatched one by the Supervisor
    Accion.CANCELAR_SOLICITUD: frozenset({ROLE_SOLICITANTE, ROLE_SUPERVISOR}),
    Accion.VALIDAR: frozenset({ROLE_VALIDADOR}),
    Accion.RECHAZAR: frozenset({ROLE_VALIDADOR}),
    Accion.EDITAR_PROPUESTA: frozenset({ROLE_ALMACENISTA, ROLE_SUPERVISOR}),
    Accion.REVISAR_PROPUESTA: frozenset({ROLE_ALMACENISTA, ROLE_SUPERVISOR}),
    Accion.RECOGER: frozenset({ROLE_ALMACENISTA}),
    Accion.CORREGIR_PICKING: frozenset({ROLE_ALMACENISTA, ROLE_SUPERVISOR}),
    Accion.REINTENTAR_PROPUESTA: frozenset({ROLE_VALIDADOR, ROLE_SUPERVISOR}),
    Accion.SURTIR: frozenset({ROLE_ALMACENISTA, ROLE_SUPERVISOR}),
    Accion.LIBERAR_PROPUESTA: frozenset({ROLE_SUPERVISOR}),
    Accion.CANCELAR_PROPUESTA: frozenset({ROLE_SUPERVISOR}),
    Accion.OVERRIDE_CADUCIDAD: frozenset({ROLE_SUPERVISOR}),
    Accion.CONFIRMAR_SURTIDO_SIN_PICKING: frozenset({ROLE_SUPERVISOR}),
    Accion.REPORTES: frozenset(
        {ROLE_SOLICITANTE, ROLE_VALIDADOR, ROLE_ALMACENISTA, ROLE_SUPERVISOR, ROLE_OPS}
    ),
    Accion.CATALOGO: frozenset({ROLE_SUPERVISOR}),
    Accion.JOB_CADUCIDAD: frozenset({ROLE_SUPERVISOR, ROLE_OPS}),
}


def puede(roles: Iterable[str], accion: Accion) -> bool:
    """Deny by default: True only if one of `roles` is allowed `accion` (``admin`` always)."""
    owned = set(roles)
    if ROLE_ADMIN in owned:
        return True
    return bool(owned & PERMISOS.get(accion, frozenset()))


def exigir(roles: Iterable[str], accion: Accion) -> None:
    if not puede(roles, accion):
        raise Forbidden(
            "ROL_NO_AUTORIZADO", f"El rol no permite la acción {accion.value}.", accion=accion.value
        )
