"""Pure rules of hospital supply orders (DOMAIN Part B). No I/O.

Everything here works on plain values (snapshots) so it can be tested exhaustively:

* FEFO allocation (§B.4.1 with the required changes a-j, [DECIDE-B1], [DECIDE-B2], [DECIDE-B7]);
* request and proposal state machines with the per-action permission matrix (§B.3, §B.4.8);
* validation rules (approved ≤ requested, coded justification whenever approved ≠ requested);
* manual edit rules (§B.4.4) and dispatch rules (§B.4.5);
* folios (§B.4.6) on the business date in America/Mexico_City (§0.3-3).
"""

from __future__ import annotations

import heapq
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("America/Mexico_City")
DEFAULT_MIN_SHELF_LIFE_DAYS = 60


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------


class EstadoSolicitud(StrEnum):
    PENDIENTE = "PENDIENTE"
    VALIDADA = "VALIDADA"
    RECHAZADA = "RECHAZADA"
    EN_PREPARACION = "EN_PREPARACION"
    PREPARADA = "PREPARADA"
    ENTREGADA = "ENTREGADA"
    CANCELADA = "CANCELADA"


class EstadoPropuesta(StrEnum):
    GENERADA = "GENERADA"
    REVISADA = "REVISADA"
    EN_SURTIMIENTO = "EN_SURTIMIENTO"
    SURTIDA = "SURTIDA"
    PARCIAL = "PARCIAL"
    NO_DISPONIBLE = "NO_DISPONIBLE"
    CANCELADA = "CANCELADA"


class EstadoItemPropuesta(StrEnum):
    DISPONIBLE = "DISPONIBLE"
    PARCIAL = "PARCIAL"
    NO_DISPONIBLE = "NO_DISPONIBLE"
    SURTIDO = "SURTIDO"


class EstadoLinea(StrEnum):
    RESERVADA = "RESERVADA"
    RECOGIDA = "RECOGIDA"
    SURTIDA = "SURTIDA"
    LIBERADA = "LIBERADA"


ACTIVE_LINE_STATES = frozenset({EstadoLinea.RESERVADA, EstadoLinea.RECOGIDA})
"""Line states that hold a reservation (§B.4.3)."""


# Lot estado codes (§B.2.1)
LOTE_DISPONIBLE = 1
LOTE_SUSPENDIDO = 4
LOTE_DETERIORADO = 5
LOTE_CADUCADO = 6
LOTE_ESTADOS = frozenset({LOTE_DISPONIBLE, LOTE_SUSPENDIDO, LOTE_DETERIORADO, LOTE_CADUCADO})

UBICACION_ESTADOS = frozenset(
    {"disponible", "ocupada", "bloqueada", "cuarentena", "caducados", "devoluciones"}
)
ELIGIBLE_LOCATION_STATES: tuple[str, ...] = ("disponible", "ocupada")
"""Location states whose stock may be allocated or dispatched (§B.4.1)."""
UBICACION_ESTADOS_ELEGIBLES = frozenset(ELIGIBLE_LOCATION_STATES)
ELIGIBLE_LOT_STATE = LOTE_DISPONIBLE
"""The only lot estado whose stock may be allocated or dispatched (§B.4.1)."""


class MotivoAjuste(StrEnum):
    """Reason catalogue for approved ≠ requested and for rejections (Part D.2)."""

    SIN_EXISTENCIA = "SIN_EXISTENCIA"
    CONSUMO_HISTORICO = "CONSUMO_HISTORICO"
    PRESUPUESTO = "PRESUPUESTO"
    DUPLICADO = "DUPLICADO"
    CLAVE_NO_AUTORIZADA = "CLAVE_NO_AUTORIZADA"
    OTRO = "OTRO"


TIPOS_MOVIMIENTO = (
    "ENTRADA",
    "SALIDA",
    "AJUSTE_POSITIVO",
    "AJUSTE_NEGATIVO",
    "TRANSFERENCIA_ENTRADA",
    "TRANSFERENCIA_SALIDA",
    "CADUCIDAD",
    "DETERIORO",
    "AJUSTE_DATOS_LOTE",
)


# --------------------------------------------------------------------------------------------
# Roles and the permission matrix (§B.4.8): deny by default
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Business date and folios (§0.3-3, §B.4.6)
# --------------------------------------------------------------------------------------------


def business_date(now: datetime) -> date:
    """`now` (timezone-aware) as a date in America/Mexico_City."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: business time needs a timezone-aware instant")
    return now.astimezone(BUSINESS_TZ).date()


FOLIO_RE = re.compile(r"^SOL-\d{8}-[0-9A-F]{6}$")


def generar_folio(now: datetime, token: Callable[[], str] | None = None) -> str:
    """``SOL-{YYYYMMDD}-{6 upper-case hex}`` on the business date of `now`."""
    suffix = (token or (lambda: secrets.token_hex(3)))().upper()
    if not re.fullmatch(r"[0-9A-F]{6}", suffix):
        raise ValueError(f"folio suffix must be 6 hex characters: {suffix!r}")
    return f"SOL-{business_date(now):%Y%m%d}-{suffix}"


def clave_folio_pedido(folio_pedido: str | None) -> str | None:
    """Case- and blank-insensitive key of the external order folio (duplicate detection)."""
    if folio_pedido is None:
        return None
    key = " ".join(folio_pedido.split()).upper()
    return key or None


def rango_fecha_entrega(today: date, *, atrasados_hasta: date | None = None) -> tuple[date, date]:
    """Allowed `fecha_entrega_programada` at creation (§B.4.7, HO-D17 fixed).

    ``[today−30, today+7]``; while `today ≤ atrasados_hasta` (an explicit configured date, not an
    import-time value) the lower bound is 1 January of the current year.
    """
    lower = today - timedelta(days=30)
    if atrasados_hasta is not None and today <= atrasados_hasta:
        lower = date(today.year, 1, 1)
    return lower, today + timedelta(days=7)


# --------------------------------------------------------------------------------------------
# State machines (§B.3 required)
# --------------------------------------------------------------------------------------------

S = EstadoSolicitud
P = EstadoPropuesta

TRANSICIONES_SOLICITUD: Mapping[tuple[S, S], str] = {
    (S.PENDIENTE, S.RECHAZADA): "rechazar",
    (S.PENDIENTE, S.VALIDADA): "validar",
    (S.VALIDADA, S.EN_PREPARACION): "revisar",
    (S.EN_PREPARACION, S.PREPARADA): "recoger",
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


# --------------------------------------------------------------------------------------------
# Request items and validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemCaptura:
    producto_id: int
    cantidad_solicitada: int


def validar_items_captura(items: Sequence[ItemCaptura]) -> None:
    """≥ 1 item, quantities ≥ 1 (HO-D25), one line per product."""
    if not items:
        raise DomainError("SIN_ITEMS", "La solicitud debe tener al menos un item.", field="items")
    seen: set[int] = set()
    for idx, item in enumerate(items):
        if item.cantidad_solicitada < 1:
            raise DomainError(
                "CANTIDAD_INVALIDA",
                "cantidad_solicitada debe ser ≥ 1.",
                field=f"items.{idx}.cantidad_solicitada",
            )
        if item.producto_id in seen:
            raise DomainError(
                "PRODUCTO_DUPLICADO",
                f"El producto {item.producto_id} aparece más de una vez.",
                field=f"items.{idx}.id_producto",
                id_producto=item.producto_id,
            )
        seen.add(item.producto_id)


@dataclass(frozen=True)
class Aprobacion:
    cantidad_aprobada: int
    justificacion_codigo: str | None = None
    justificacion: str | None = None


@dataclass(frozen=True)
class ResultadoValidacion:
    estado: S
    aprobadas: dict[Any, Aprobacion]


def validar_aprobaciones(
    solicitadas: Mapping[Any, int], aprobaciones: Mapping[Any, Aprobacion]
) -> ResultadoValidacion:
    """Per item `0 ≤ aprobada ≤ solicitada`; a coded justification + text whenever they differ.

    Items without an explicit approval are approved in full (the form's initial value).
    Σ aprobada = 0 → RECHAZADA, otherwise VALIDADA.
    """
    unknown = [k for k in aprobaciones if k not in solicitadas]
    if unknown:
        raise DomainError(
            "ITEM_DESCONOCIDO",
            f"Item(s) que no pertenecen a la solicitud: {', '.join(map(str, unknown))}.",
            field="items",
            items=[str(k) for k in unknown],
        )
    result: dict[Any, Aprobacion] = {}
    for key, solicitada in solicitadas.items():
        ap = aprobaciones.get(key, Aprobacion(solicitada))
        if ap.cantidad_aprobada < 0:
            raise DomainError(
                "CANTIDAD_INVALIDA",
                "cantidad_aprobada no puede ser negativa.",
                field=f"items.{key}.cantidad_aprobada",
            )
        if ap.cantidad_aprobada > solicitada:
            raise DomainError(
                "APROBADA_EXCEDE_SOLICITADA",
                f"cantidad_aprobada debe ser ≤ {solicitada}.",
                field=f"items.{key}.cantidad_aprobada",
                solicitado=solicitada,
                aprobado=ap.cantidad_aprobada,
            )
        if ap.cantidad_aprobada != solicitada:
            if not ap.justificacion_codigo or ap.justificacion_codigo not in set(MotivoAjuste):
                raise DomainError(
                    "JUSTIFICACION_REQUERIDA",
                    "Se requiere un motivo codificado cuando la cantidad aprobada difiere "
                    "de la solicitada.",
                    field=f"items.{key}.justificacion_codigo",
                    motivos=[m.value for m in MotivoAjuste],
                )
            if not (ap.justificacion or "").strip():
                raise DomainError(
                    "JUSTIFICACION_REQUERIDA",
                    "Se requiere el texto de la justificación cuando la cantidad aprobada "
                    "difiere de la solicitada.",
                    field=f"items.{key}.justificacion",
                )
        result[key] = ap
    total = sum(a.cantidad_aprobada for a in result.values())
    return ResultadoValidacion(S.VALIDADA if total > 0 else S.RECHAZADA, result)


# --------------------------------------------------------------------------------------------
# FEFO allocation (§B.4.1 required)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoteUbicacionSnap:
    """One (lot, location) stock row with everything eligibility and ordering need."""

    lote_ubicacion_id: int
    lote_id: int
    numero_lote: str
    producto_id: int
    almacen_id: int
    fecha_caducidad: date | None
    lote_estado: int
    ubicacion_codigo: str
    cantidad: int
    reservado: int = 0
    ubicacion_estado: str = "disponible"
    ubicacion_activa: bool = True
    almacen_activo: bool = True

    @property
    def neto(self) -> int:
        """disponible(lu) = physical − active reservations, never negative (§B.4.3)."""
        return max(0, self.cantidad - self.reservado)

    @property
    def ubicacion_elegible(self) -> bool:
        return ubicacion_elegible(self.ubicacion_estado, self.ubicacion_activa, self.almacen_activo)

    @property
    def lote_disponible(self) -> bool:
        return self.lote_estado == ELIGIBLE_LOT_STATE

    @property
    def existencia_elegible(self) -> bool:
        """Stock eligibility (§B.4.1): see `existencia_elegible`."""
        return existencia_elegible(self)


# ---- stock eligibility: the ONE definition (its SQL form: `orders.adapters.eligibility`) ----


def ubicacion_elegible(estado: str, activa: bool, almacen_activo: bool) -> bool:
    """A location whose stock may be used: state in `ELIGIBLE_LOCATION_STATES`, active, in an
    active warehouse."""
    return estado in UBICACION_ESTADOS_ELEGIBLES and activa and almacen_activo


def existencia_elegible(snap: LoteUbicacionSnap) -> bool:
    """Stock of this (lot, location) may be allocated or dispatched, expiry aside: lot estado
    `ELIGIBLE_LOT_STATE` (DISPONIBLE) in an eligible location (`ubicacion_elegible`)."""
    return snap.lote_estado == ELIGIBLE_LOT_STATE and ubicacion_elegible(
        snap.ubicacion_estado, snap.ubicacion_activa, snap.almacen_activo
    )


def vigente(fecha_caducidad: date | None, today: date) -> bool:
    """Not expired: a caducidad on or after `today` (a lot without one is never usable)."""
    return fecha_caducidad is not None and fecha_caducidad >= today


def elegible_fefo(snap: LoteUbicacionSnap, almacen_destino_id: int, umbral: date) -> bool:
    """Automatic allocation (§B.4.1): eligible stock of the destination warehouse whose
    caducidad is strictly after `umbral` (= `umbral_caducidad(today, min days)`)."""
    return (
        snap.almacen_id == almacen_destino_id
        and existencia_elegible(snap)
        and snap.fecha_caducidad is not None
        and snap.fecha_caducidad > umbral
    )


def umbral_caducidad(today: date, min_shelf_life_days: int = DEFAULT_MIN_SHELF_LIFE_DAYS) -> date:
    """A lot is eligible only if its caducidad is strictly after this date [DECIDE-B1]."""
    return today + timedelta(days=min_shelf_life_days)


def cumple_caducidad(fecha_caducidad: date | None, today: date, min_shelf_life_days: int) -> bool:
    return fecha_caducidad is not None and fecha_caducidad > umbral_caducidad(
        today, min_shelf_life_days
    )


_NAT_RE = re.compile(r"(\d+)")


def _natural_key(text: str) -> tuple[tuple[int, int | bytes], ...]:
    parts = _NAT_RE.split(text)
    return tuple(
        (0, int(p)) if i % 2 == 1 else (1, p.encode()) for i, p in enumerate(parts) if p != ""
    )


def orden_fefo(snap: LoteUbicacionSnap, *, natural: bool = False) -> tuple[date, Any, Any, int]:
    """(caducidad, numero_lote, ubicacion.codigo) byte-wise [DECIDE-B7]; id as the last key."""
    assert snap.fecha_caducidad is not None
    if natural:
        return (
            snap.fecha_caducidad,
            _natural_key(snap.numero_lote),
            _natural_key(snap.ubicacion_codigo),
            snap.lote_ubicacion_id,
        )
    return (
        snap.fecha_caducidad,
        snap.numero_lote.encode(),
        snap.ubicacion_codigo.encode(),
        snap.lote_ubicacion_id,
    )


MSG_PARCIAL = "Solo se encontraron {asignado} de {requerido} unidades."
MSG_SIN_LOTES = "No hay lotes en estado disponible para este producto."
MSG_CADUCIDAD = (
    "No hay lotes que cumplan la regla mínima de caducidad (fecha de caducidad más de "
    "{dias} días posterior a la fecha actual)."
)
MSG_SIN_NETO = (
    "No hay existencia neta disponible para asignar: el inventario visible puede estar "
    "totalmente reservado en otras propuestas pendientes de surtir, o las cantidades por "
    "ubicación no dejan saldo utilizable."
)


@dataclass(frozen=True)
class Asignacion:
    lote_ubicacion_id: int
    lote_id: int
    cantidad: int


@dataclass(frozen=True)
class ResultadoItem:
    producto_id: int
    cantidad_aprobada: int
    cantidad_disponible: int
    asignaciones: tuple[Asignacion, ...]
    estado: EstadoItemPropuesta
    observaciones: str

    @property
    def cantidad_propuesta(self) -> int:
        return sum(a.cantidad for a in self.asignaciones)

    @property
    def cantidad_pendiente(self) -> int:
        return self.cantidad_aprobada - self.cantidad_propuesta


def asignar_fefo(
    producto_id: int,
    almacen_destino_id: int,
    requerido: int,
    snapshots: Iterable[LoteUbicacionSnap],
    today: date,
    *,
    min_shelf_life_days: int = DEFAULT_MIN_SHELF_LIFE_DAYS,
    natural: bool = False,
) -> ResultadoItem:
    """Allocate `requerido` units of a product from the destination warehouse, FEFO.

    Scope: same product, locations of `almacen_destino_id` that are `disponible`/`ocupada`,
    active, in an active warehouse. Eligible: lot estado DISPONIBLE and caducidad strictly
    after today + min shelf life. Order: caducidad, numero_lote, ubicacion codigo (byte-wise).
    Availability is location-level net (physical − active reservations). Pure: the caller locks
    and persists. One product of `asignar_fefo_varios`.
    """
    return asignar_fefo_varios(
        {producto_id: requerido},
        almacen_destino_id,
        snapshots,
        today,
        min_shelf_life_days=min_shelf_life_days,
        natural=natural,
    )[producto_id]


def asignar_fefo_varios(
    requeridos: Mapping[int, int],
    almacen_destino_id: int,
    snapshots: Iterable[LoteUbicacionSnap],
    today: date,
    *,
    min_shelf_life_days: int = DEFAULT_MIN_SHELF_LIFE_DAYS,
    natural: bool = False,
) -> dict[int, ResultadoItem]:
    """`asignar_fefo` for many products at once: {producto_id: requerido} → results.

    One pass over `snapshots` groups the eligible rows by product as plain tuples whose first
    elements are the FEFO key; then each product's candidates are walked in key order only as
    far as its requirement needs (a heap: O(n) to build, O(log n) per row taken), so a small
    demand over a large scope never pays for a full sort. Strings compare by code point, which
    is exactly the byte-wise (UTF-8, C collation) order of [DECIDE-B7].
    """
    for req in requeridos.values():
        if req < 0:
            raise ValueError("requerido must be ≥ 0")
    umbral = umbral_caducidad(today, min_shelf_life_days)
    # per product: [hay_disponibles, hay_elegibles, cantidad_disponible, candidates]
    acc: dict[int, list[Any]] = {p: [False, False, 0, []] for p in requeridos}
    get = acc.get
    elegible = existencia_elegible
    for s in snapshots:
        st = get(s.producto_id)
        if st is None or s.almacen_id != almacen_destino_id or not elegible(s):
            continue
        st[0] = True
        cad = s.fecha_caducidad
        if cad is None or cad <= umbral:  # = not elegible_fefo(s, almacen_destino_id, umbral)
            continue
        st[1] = True
        neto = s.cantidad - s.reservado
        if neto > 0:
            st[2] += neto
            if natural:
                st[3].append(
                    (
                        cad,
                        _natural_key(s.numero_lote),
                        _natural_key(s.ubicacion_codigo),
                        s.lote_ubicacion_id,
                        neto,
                        s.lote_id,
                    )
                )
            else:
                st[3].append(
                    (cad, s.numero_lote, s.ubicacion_codigo, s.lote_ubicacion_id, neto, s.lote_id)
                )

    out: dict[int, ResultadoItem] = {}
    for producto_id, requerido in requeridos.items():
        hay_disponibles, hay_elegibles, cantidad_disponible, candidatos = acc[producto_id]
        asignaciones: list[Asignacion] = []
        pendiente = requerido
        if pendiente > 0 and candidatos:
            if cantidad_disponible <= pendiente:  # everything is taken: order it once
                candidatos.sort()
                asignaciones = [Asignacion(c[3], c[5], c[4]) for c in candidatos]
                pendiente -= cantidad_disponible
            else:
                heapq.heapify(candidatos)
                pop = heapq.heappop
                while pendiente > 0:
                    c = pop(candidatos)
                    take = c[4] if c[4] < pendiente else pendiente
                    asignaciones.append(Asignacion(c[3], c[5], take))
                    pendiente -= take
        asignado = requerido - pendiente
        if requerido == 0 or asignado == requerido:
            estado, obs = EstadoItemPropuesta.DISPONIBLE, ""
        elif asignado > 0:
            estado = EstadoItemPropuesta.PARCIAL
            obs = MSG_PARCIAL.format(asignado=asignado, requerido=requerido)
        else:
            estado = EstadoItemPropuesta.NO_DISPONIBLE
            if not hay_disponibles:
                obs = MSG_SIN_LOTES
            elif not hay_elegibles:
                obs = MSG_CADUCIDAD.format(dias=min_shelf_life_days)
            else:
                obs = MSG_SIN_NETO
        out[producto_id] = ResultadoItem(
            producto_id=producto_id,
            cantidad_aprobada=requerido,
            cantidad_disponible=cantidad_disponible,
            asignaciones=tuple(asignaciones),
            estado=estado,
            observaciones=obs,
        )
    return out


def estado_propuesta_generada(items: Sequence[ResultadoItem]) -> EstadoPropuesta:
    """GENERADA if anything was allocated, NO_DISPONIBLE if no line at all."""
    if any(i.asignaciones for i in items):
        return EstadoPropuesta.GENERADA
    return EstadoPropuesta.NO_DISPONIBLE


def cobertura(pares: Iterable[tuple[int, int]]) -> Decimal:
    """Coverage % = Σ min(disponible, requerido) / Σ requerido × 100, HALF_UP to 0.01 (HO-D24).

    `pares` = (cantidad_disponible, cantidad_requerida) per item. 0 when nothing is required.
    """
    num = 0
    den = 0
    for disp, req in pares:
        num += min(max(disp, 0), req)
        den += req
    if den == 0:
        return Decimal("0.00")
    return (Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def porcentaje(num: int, den: int) -> Decimal:
    if den == 0:
        return Decimal("0.00")
    return (Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.01"), ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------
# Manual edit rules (§B.4.4)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """A Supervisor override of the minimum-shelf-life rule, with its reason [DECIDE-B1]."""

    roles: frozenset[str]
    motivo: str | None

    @property
    def valido(self) -> bool:
        return bool(self.roles & {ROLE_SUPERVISOR, ROLE_ADMIN}) and bool(
            (self.motivo or "").strip()
        )


def verificar_linea_manual(
    *,
    producto_item_id: int,
    almacen_destino_id: int,
    snap: LoteUbicacionSnap,
    today: date,
    min_shelf_life_days: int = DEFAULT_MIN_SHELF_LIFE_DAYS,
    override: Override | None = None,
) -> bool:
    """Check a manually assigned (lot, location); return True if it needed the override.

    PRODUCTO_NO_COINCIDE, LOTE_NO_ELEGIBLE (warehouse, lot estado, location state, expired or
    no expiry), CADUCIDAD_MINIMA (caducidad ≤ T + min days without a valid Supervisor override).
    """
    if snap.producto_id != producto_item_id:
        raise DomainError(
            "PRODUCTO_NO_COINCIDE",
            f"El lote {snap.numero_lote} es de otro producto.",
            field="id_lote_ubicacion",
            id_lote_ubicacion=snap.lote_ubicacion_id,
        )
    motivos = []
    if snap.almacen_id != almacen_destino_id:
        motivos.append("almacén distinto al destino")
    if not snap.lote_disponible:
        motivos.append(f"lote en estado {snap.lote_estado}")
    if not snap.ubicacion_elegible:
        motivos.append(f"ubicación {snap.ubicacion_codigo} no elegible ({snap.ubicacion_estado})")
    if snap.fecha_caducidad is None:
        motivos.append("lote sin fecha de caducidad")
    elif not vigente(snap.fecha_caducidad, today):
        motivos.append("lote caducado")
    if motivos:
        raise DomainError(
            "LOTE_NO_ELEGIBLE",
            f"El lote {snap.numero_lote} no es elegible: {'; '.join(motivos)}.",
            field="id_lote_ubicacion",
            lotes=[snap.numero_lote],
        )
    if cumple_caducidad(snap.fecha_caducidad, today, min_shelf_life_days):
        return False
    if override is not None and override.valido:
        return True
    raise DomainError(
        "CADUCIDAD_MINIMA",
        f"El lote {snap.numero_lote} caduca el {snap.fecha_caducidad}; se requiere caducidad "
        f"posterior a {umbral_caducidad(today, min_shelf_life_days)} o una autorización de "
        "Supervisor con motivo.",
        field="id_lote_ubicacion",
        umbral=umbral_caducidad(today, min_shelf_life_days).isoformat(),
        fecha_caducidad=str(snap.fecha_caducidad),
    )


def verificar_total_item(total_lineas: int, cantidad_aprobada: int) -> None:
    if total_lineas > cantidad_aprobada:
        raise DomainError(
            "EXCEDE_APROBADO",
            f"Σ cantidad asignada ({total_lineas}) excede la aprobada ({cantidad_aprobada}).",
            field="lineas",
            aprobado=cantidad_aprobada,
            asignado=total_lineas,
        )


def verificar_reserva(
    snap: LoteUbicacionSnap, cantidad_nueva: int, cantidad_actual_linea: int
) -> None:
    """`cantidad_nueva ≤ disponible(lu) + cantidad_actual_de_esta_linea` (§B.4.3)."""
    maximo = snap.cantidad - snap.reservado + cantidad_actual_linea
    if cantidad_nueva > maximo:
        raise Conflict(
            "STOCK_INSUFICIENTE",
            f"Lote {snap.numero_lote} ubicación {snap.ubicacion_codigo}: disponible {maximo}, "
            f"solicitado {cantidad_nueva}.",
            disponible=max(0, maximo),
            solicitado=cantidad_nueva,
            id_lote_ubicacion=snap.lote_ubicacion_id,
        )


def estado_item_por_asignado(asignado: int, aprobado: int) -> EstadoItemPropuesta:
    if aprobado > 0 and asignado >= aprobado:
        return EstadoItemPropuesta.DISPONIBLE
    if asignado > 0:
        return EstadoItemPropuesta.PARCIAL
    return EstadoItemPropuesta.NO_DISPONIBLE if aprobado > 0 else EstadoItemPropuesta.DISPONIBLE


# --------------------------------------------------------------------------------------------
# Dispatch (§B.4.5 required)
# --------------------------------------------------------------------------------------------


def verificar_estado_para_surtir(estado: P | str) -> None:
    estado = P(estado)
    if estado in PROPUESTA_DESPACHADA:
        raise Conflict("YA_SURTIDA", "La propuesta ya fue surtida.", estado_actual=estado.value)
    if estado not in (P.REVISADA, P.EN_SURTIMIENTO):
        raise Conflict(
            "PROPUESTA_NO_REVISADA",
            f"Solo se surte una propuesta REVISADA o EN_SURTIMIENTO (estado {estado.value}).",
            estado_actual=estado.value,
        )


@dataclass(frozen=True)
class LineaSurtido:
    snap: LoteUbicacionSnap
    cantidad: int
    override_caducidad: bool = False


def lotes_no_elegibles_al_surtir(
    lineas: Iterable[LineaSurtido], today: date, min_shelf_life_days: int
) -> list[str]:
    """Lot numbers that may not be dispatched any more (§B.4.5 b, [DECIDE-B8]).

    Lot estado must still be DISPONIBLE, the location eligible, caducidad ≥ today, and a lot at
    or inside the shelf-life threshold only if it was assigned with a Supervisor override.
    """
    bad: list[str] = []
    for ln in lineas:
        s = ln.snap
        ok = (
            existencia_elegible(s)
            and vigente(s.fecha_caducidad, today)
            and (
                ln.override_caducidad
                or cumple_caducidad(s.fecha_caducidad, today, min_shelf_life_days)
            )
        )
        if not ok and s.numero_lote not in bad:
            bad.append(s.numero_lote)
    return sorted(bad, key=str.encode)


def verificar_existencia_fisica(snap: LoteUbicacionSnap, cantidad: int) -> None:
    """Physical check; never clamp (§B.4.5 c)."""
    if snap.cantidad < cantidad:
        raise Conflict(
            "STOCK_INSUFICIENTE",
            f"Cantidad insuficiente en lote {snap.numero_lote} ubicación "
            f"{snap.ubicacion_codigo}. Disponible: {snap.cantidad}, Solicitado: {cantidad}",
            disponible=snap.cantidad,
            solicitado=cantidad,
        )


def estado_item_surtido(
    surtida: int, propuesta: int, actual: EstadoItemPropuesta | str
) -> EstadoItemPropuesta:
    """§B.3.3: SURTIDO if Σ ≥ propuesta, PARCIAL if 0 < Σ < propuesta, unchanged if 0."""
    if surtida <= 0:
        return EstadoItemPropuesta(actual)
    if surtida >= propuesta:
        return EstadoItemPropuesta.SURTIDO
    return EstadoItemPropuesta.PARCIAL


def estado_propuesta_surtida(total_surtido: int, total_aprobado: int) -> P:
    return P.PARCIAL if total_surtido < total_aprobado else P.SURTIDA


def motivo_salida(folio_pedido: str, clue: str, denominacion: str) -> str:
    return f"Suministro de Pedido — Pedido: {folio_pedido}. Destino: {clue} — {denominacion}."


def folio_pedido_kardex(folio_pedido: str | None, folio: str) -> str:
    """The external folio (first line, ≤ 255 chars), else the internal SOL folio."""
    first = (folio_pedido or "").strip().splitlines()
    return first[0][:255] if first and first[0].strip() else folio


@dataclass(frozen=True)
class Movimiento:
    lote_id: int
    lote_ubicacion_id: int
    cantidad: int
    cantidad_anterior: int
    cantidad_nueva: int


def calcular_salidas(
    lineas: Sequence[tuple[int, int, int]], totales_lote: Mapping[int, int]
) -> list[Movimiento]:
    """SALIDA movements for lines (lote_ubicacion_id, lote_id, cantidad), in ascending lu id.

    `anterior` / `nueva` are lot totals (Σ locations) before and after each movement.
    """
    totals = dict(totales_lote)
    out: list[Movimiento] = []
    for lu_id, lote_id, cant in sorted(lineas):
        antes = totals[lote_id]
        despues = antes - cant
        if despues < 0:
            raise Conflict(
                "STOCK_INSUFICIENTE",
                f"El lote {lote_id} quedaría negativo ({despues}).",
                disponible=antes,
                solicitado=cant,
            )
        totals[lote_id] = despues
        out.append(Movimiento(lote_id, lu_id, cant, antes, despues))
    return out


# --------------------------------------------------------------------------------------------
# Expiry job (§B.4.3, [DECIDE-B8])
# --------------------------------------------------------------------------------------------


def reserva_no_elegible(snap: LoteUbicacionSnap, today: date) -> bool:
    """A reservation that must be flagged: lot estado ≠ DISPONIBLE or caducidad < today."""
    return not (existencia_elegible(snap) and vigente(snap.fecha_caducidad, today))


@dataclass
class Totales:
    solicitado: int = 0
    disponible: int = 0
    propuesto: int = 0
    items: list[ResultadoItem] = field(default_factory=list)


def totales_propuesta(total_solicitado: int, items: Sequence[ResultadoItem]) -> Totales:
    return Totales(
        solicitado=total_solicitado,
        disponible=sum(i.cantidad_disponible for i in items),
        propuesto=sum(i.cantidad_propuesta for i in items),
        items=list(items),
    )


def utcnow() -> datetime:
    return datetime.now(UTC)
