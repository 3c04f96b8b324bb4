"""State machines of requests and proposals (§B.3 required), line states (§B.4.3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orders.domain.errors import (
    Conflict,
    Forbidden,
)
from orders.domain.roles import (
    ROLE_ADMIN,
    ROLE_SOLICITANTE,
    ROLE_SUPERVISOR,
    Accion,
)
from orders.domain.vocab import (
    EstadoLinea,
    EstadoPropuesta,
    EstadoSolicitud,
)

S = EstadoSolicitud
P = EstadoPropuesta

ACTIVE_LINE_STATES = frozenset({EstadoLinea.RESERVADA, EstadoLinea.RECOGIDA})
"""Line states that hold a reservation (§B.4.3)."""

TRANSICIONES_SOLICITUD: Mapping[tuple[S, S], str] = {
    (S.PENDIENTE, S.RECHAZADA): "rechazar",
    (S.PENDIENTE, S.VALIDADA): "validar",
    (S.VALIDADA, S.EN_PREPARACION): "revisar",
    (S.EN_PREPARACION, S.PREPARADA): "recoger",
    (S.PREPARADA, S.EN_PREPARACION): "deshacer_recogida",
    (S.VALIDADA, S.ENTREGADA): "surtir",
    (S.EN_PREPARACION, S.ENTREGADA): "surtir",
    (S.PREPARADA, S.ENTREGADA): "surtir",
    (S.VALIDADA, S.PENDIENTE): "liberar",
    (S.EN_PREPARACION, S.PENDIENTE): "liberar",
    (S.PREPARADA, S.PENDIENTE): "liberar",
    (S.EN_PREPARACION, S.VALIDADA): "replanificar",
    (S.PREPARADA, S.VALIDADA): "replanificar",
    (S.PENDIENTE, S.CANCELADA): "cancelar",
    (S.VALIDADA, S.CANCELADA): "cancelar",
    (S.EN_PREPARACION, S.CANCELADA): "cancelar",
    (S.PREPARADA, S.CANCELADA): "cancelar",
    (S.VALIDADA, S.PROPUESTA_FALLIDA): "fallo_propuesta",
    (S.PROPUESTA_FALLIDA, S.VALIDADA): "reintentar_propuesta",
    (S.PROPUESTA_FALLIDA, S.CANCELADA): "cancelar",
}
SOLICITUD_TERMINAL = frozenset({S.RECHAZADA, S.CANCELADA, S.ENTREGADA})

TRANSICIONES_PROPUESTA: Mapping[tuple[P, P], str] = {
    (P.GENERADA, P.GENERADA): "editar",
    (P.GENERADA, P.REVISADA): "revisar",
    (P.NO_DISPONIBLE, P.GENERADA): "editar",
    (P.REVISADA, P.EN_SURTIMIENTO): "recoger",
    (P.REVISADA, P.SURTIDA): "surtir",
    (P.EN_SURTIMIENTO, P.SURTIDA): "surtir",
    (P.REVISADA, P.PARCIAL): "surtir",
    (P.EN_SURTIMIENTO, P.PARCIAL): "surtir",
    (P.REVISADA, P.GENERADA): "replanificar",
    (P.EN_SURTIMIENTO, P.GENERADA): "replanificar",
    (P.GENERADA, P.CANCELADA): "cancelar",
    (P.REVISADA, P.CANCELADA): "cancelar",
    (P.EN_SURTIMIENTO, P.CANCELADA): "cancelar",
    (P.NO_DISPONIBLE, P.CANCELADA): "cancelar",
}
PROPUESTA_DESPACHADA = frozenset({P.SURTIDA, P.PARCIAL})
PROPUESTA_ACTIVA = frozenset({P.GENERADA, P.REVISADA, P.EN_SURTIMIENTO, P.NO_DISPONIBLE})
PROPUESTA_EDITABLE = frozenset({P.GENERADA, P.NO_DISPONIBLE})
PROPUESTA_EN_PICKING = frozenset({P.REVISADA, P.EN_SURTIMIENTO})
"""States in which picking corrections are made (the legacy picking screens' states)."""


def transicion_solicitud(actual: S | str, nuevo: S | str) -> S:
    actual, nuevo = S(actual), S(nuevo)
    if (actual, nuevo) not in TRANSICIONES_SOLICITUD:
        raise Conflict(
            "ESTADO_INVALIDO",
            f"La solicitud no puede pasar de {actual.value} a {nuevo.value}.",
            estado_actual=actual.value,
            estado_solicitado=nuevo.value,
        )
    return nuevo


def transicion_propuesta(actual: P | str, nuevo: P | str) -> P:
    actual, nuevo = P(actual), P(nuevo)
    if actual in PROPUESTA_DESPACHADA:
        raise Conflict(
            "YA_SURTIDA",
            "La propuesta ya fue surtida; solo se corrige con documentos de devolución o ajuste.",
            estado_actual=actual.value,
        )
    if (actual, nuevo) not in TRANSICIONES_PROPUESTA:
        raise Conflict(
            "ESTADO_INVALIDO",
            f"La propuesta no puede pasar de {actual.value} a {nuevo.value}.",
            estado_actual=actual.value,
            estado_solicitado=nuevo.value,
        )
    return nuevo


def puede_cancelar_solicitud(
    estado: S | str, roles: Iterable[str], *, es_propietario: bool
) -> None:
    """Solicitante: own request while PENDIENTE; Supervisor: any non-dispatched request."""
    estado = S(estado)
    transicion_solicitud(estado, S.CANCELADA)
    owned = set(roles)
    if ROLE_ADMIN in owned or ROLE_SUPERVISOR in owned:
        return
    if ROLE_SOLICITANTE in owned and es_propietario and estado == S.PENDIENTE:
        return
    raise Forbidden(
        "ROL_NO_AUTORIZADO",
        "Solo el solicitante (su propia solicitud PENDIENTE) o un Supervisor pueden cancelar.",
        accion=Accion.CANCELAR_SOLICITUD.value,
    )


def puede_editar_solicitud(roles: Iterable[str], *, es_propietario: bool) -> None:
    """Edit = cancel for a Solicitante: only their own request (the state rule, PENDIENTE,
    is checked by the use case). The global admin may edit any."""
    if ROLE_ADMIN in set(roles) or es_propietario:
        return
    raise Forbidden(
        "NO_ES_PROPIETARIO",
        "Solo quien capturó la solicitud puede editarla.",
        accion=Accion.EDITAR_SOLICITUD.value,
    )
