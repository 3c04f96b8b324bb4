"""Manual edit rules of proposal lines (§B.4.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from orders.domain.errors import (
    Conflict,
    DomainError,
)
from orders.domain.roles import (
    ROLE_ADMIN,
    ROLE_SUPERVISOR,
)
from orders.domain.stock import (
    DEFAULT_MIN_SHELF_LIFE_DAYS,
    LoteUbicacionSnap,
    cumple_caducidad,
    umbral_caducidad,
    vigente,
)
from orders.domain.vocab import (
    EstadoItemPropuesta,
)


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
