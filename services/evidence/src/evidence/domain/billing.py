"""Billing figures (§C.4.6, DECIDE-C4, DECIDE-C8) and the completeness report."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from evidence.domain.eligibility import (
    DEFAULT_GPU_ANNEXES,
    MIN_VOLUME,
    annex_requires_gpu,
    normalize_annex,
)
from evidence.domain.errors import DomainError
from evidence.domain.gpu import ExistingGpu
from evidence.domain.production import Q2
from evidence.domain.vocab import EstatusCobro, GpuStatus


def money(value: Decimal) -> Decimal:
    return value.quantize(Q2, ROUND_HALF_UP)


def volumen_actual(volumen_produccion: Decimal) -> Decimal:
    """[DECIDE-C8] ROUND_HALF_UP(6-decimal volume, 2)."""
    return volumen_produccion.quantize(Q2, ROUND_HALF_UP)


@dataclass(frozen=True)
class BillingCandidate:
    id_produccion: int
    anexo: str
    importacion_activa: bool
    volumen: Decimal
    es_excedente: bool
    excedente_autorizado: bool
    gpu: ExistingGpu | None
    ya_estimada: bool = False


def check_billable(c: BillingCandidate, *, annexes: Iterable[str] = DEFAULT_GPU_ANNEXES) -> None:
    """Raise unless the production may get an estimate line (G8)."""
    if c.ya_estimada:
        raise DomainError("PRODUCCION_YA_ESTIMADA", field="id_produccion")
    if not c.volumen > MIN_VOLUME:
        raise DomainError(
            "VOLUMEN_INVALIDO", "la producción no tiene volumen", field="id_produccion"
        )
    if annex_requires_gpu(c.anexo, annexes):
        if c.gpu is None or c.gpu.status is not GpuStatus.VALIDADO:
            estado = str(c.gpu.status) if c.gpu else None
            raise DomainError(
                "GPU_NO_VALIDADO",
                f"el GPU de la producción {c.id_produccion} está en {estado or 'sin GPU'}",
                field="id_produccion",
                estatus=estado,
            )
        if c.gpu.facturado:
            raise DomainError("PRODUCCION_YA_ESTIMADA", field="id_produccion")
    if c.es_excedente and not c.excedente_autorizado:
        raise DomainError(
            "EXCEDENTE_NO_AUTORIZADO",
            f"la producción {c.id_produccion} es excedente y no está autorizada",
            field="id_produccion",
        )


def billing_skip_reason(
    c: BillingCandidate, *, annexes: Iterable[str] = DEFAULT_GPU_ANNEXES
) -> str | None:
    """None if billable, else the error code (used when assembling an estimate automatically)."""
    try:
        check_billable(c, annexes=annexes)
    except DomainError as exc:
        return exc.code
    return None


def validate_volumen_estimado(estimado: Decimal | None, actual: Decimal) -> Decimal:
    value = actual if estimado is None else estimado
    if value < 0 or value > actual or value != money(value):
        raise DomainError(
            "VOLUMEN_ESTIMADO_INVALIDO",
            f"volumen_estimado={value} debe estar entre 0 y {actual} con 2 decimales",
            field="volumen_estimado",
        )
    return value


@dataclass(frozen=True)
class EstimateLine:
    volumen_actual: Decimal
    volumen_estimado: Decimal
    precio_unitario_mn: Decimal
    precio_unitario_usd: Decimal


@dataclass(frozen=True)
class EstimateTotals:
    total_volumen_producido: Decimal
    total_volumen_estimado: Decimal
    total_importe_mn: Decimal
    total_importe_usd: Decimal


def estimate_totals(lines: Iterable[EstimateLine]) -> EstimateTotals:
    vp = ve = mn = usd = Decimal("0.00")
    for line in lines:
        vp += line.volumen_actual
        ve += line.volumen_estimado
        mn += money(line.volumen_estimado * line.precio_unitario_mn)
        usd += money(line.volumen_estimado * line.precio_unitario_usd)
    return EstimateTotals(money(vp), money(ve), money(mn), money(usd))


def validate_period(desde: dt.date, hasta: dt.date) -> None:
    if desde > hasta:
        raise DomainError(
            "PERIODO_INVALIDO", "fecha_desde debe ser ≤ fecha_hasta", field="fecha_desde"
        )


# --------------------------------------------------------------------------------------------
# Completeness report
# --------------------------------------------------------------------------------------------


def percentage(part: int, total: int) -> Decimal:
    if total == 0:
        return Decimal("0.00")
    return money(Decimal(part) * 100 / Decimal(total))


def completeness(items: Iterable[tuple[str, GpuStatus | None]]) -> dict[str, Any]:
    """Counts and % per status, overall and per annex. ``None`` (no GPU yet) counts as
    PENDIENTE. Percentages are Decimal, ROUND_HALF_UP to 0.01."""
    per_annex: dict[str, dict[GpuStatus, int]] = defaultdict(lambda: dict.fromkeys(GpuStatus, 0))
    overall = dict.fromkeys(GpuStatus, 0)
    for anexo, status in items:
        st = status or GpuStatus.PENDIENTE
        per_annex[normalize_annex(anexo)][st] += 1
        overall[st] += 1

    def summary(counts: Mapping[GpuStatus, int]) -> dict[str, Any]:
        total = sum(counts.values())
        return {
            "total": total,
            "por_estatus": {
                str(s): {"cantidad": counts[s], "porcentaje": percentage(counts[s], total)}
                for s in GpuStatus
            },
        }

    return {
        **summary(overall),
        "por_anexo": {a: summary(c) for a, c in sorted(per_annex.items())},
    }


def sort_ids(ids: Sequence[int]) -> list[int]:
    """Ascending, de-duplicated: the lock order (DOMAIN §0.3.5)."""
    return sorted(set(ids))


#: Estimate lifecycle (issue 15; DOMAIN is silent): action → (states it starts from, target).
ESTIMATE_TRANSITIONS: dict[str, tuple[frozenset[EstatusCobro], EstatusCobro]] = {
    "enviar": (frozenset({EstatusCobro.BORRADOR}), EstatusCobro.ENVIADA),
    "aprobar": (frozenset({EstatusCobro.ENVIADA}), EstatusCobro.APROBADA),
    "cancelar": (
        frozenset({EstatusCobro.BORRADOR, EstatusCobro.ENVIADA, EstatusCobro.APROBADA}),
        EstatusCobro.CANCELADA,
    ),
}


def decide_estimate_transition(
    current: str, action: str, *, lines: int, motivo: str | None = None
) -> EstatusCobro:
    """The new ``estatus_cobro`` of an estimate; 409 ESTIMACION_ESTATUS_INVALIDO when the
    action does not start from its state, 422 ESTIMACION_VACIA (submit without lines),
    422 NOTA_REQUERIDA (cancel without a reason)."""
    sources, target = ESTIMATE_TRANSITIONS[action]
    if current not in sources:
        raise DomainError(
            "ESTIMACION_ESTATUS_INVALIDO",
            f"{action} no es posible en {current}",
            field="estatus_cobro",
            estatus_cobro=current,
        )
    if action == "enviar" and lines == 0:
        raise DomainError("ESTIMACION_VACIA", field="detalles")
    if action == "cancelar" and not (motivo or "").strip():
        raise DomainError("NOTA_REQUERIDA", "cancelar requiere un motivo", field="motivo")
    return target


def check_estimate_editable(current: str) -> None:
    """Lines are added or removed only while the estimate is BORRADOR."""
    if current != EstatusCobro.BORRADOR:
        raise DomainError(
            "ESTIMACION_ESTATUS_INVALIDO",
            f"las líneas solo cambian en BORRADOR (estatus {current})",
            field="estatus_cobro",
            estatus_cobro=current,
        )
