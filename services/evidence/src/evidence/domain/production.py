"""Production save planning and the chronological over-volume flag (§C.4.4)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from evidence.domain.errors import DomainError
from evidence.domain.gpu import ExistingGpu, gpu_blocks_edit
from evidence.domain.vocab import TIPO_TIEMPO_ORDER

VOLUME_SCALE = 6
VOLUME_MAX = Decimal("999999999.999999")  # Decimal(15,6)
Q6 = Decimal("0.000001")
Q4 = Decimal("0.0001")
Q2 = Decimal("0.01")


def validate_volume(value: Decimal, *, field: str = "volumen") -> Decimal:
    """Non-negative, finite, at most 6 decimals, fits Decimal(15,6). Returns it at scale 6."""
    if not value.is_finite():
        raise DomainError("VOLUMEN_INVALIDO", "volumen no finito", field=field)
    if value < 0:
        raise DomainError("VOLUMEN_INVALIDO", "el volumen no puede ser negativo", field=field)
    if value > VOLUME_MAX:
        raise DomainError("VOLUMEN_INVALIDO", "el volumen excede Decimal(15,6)", field=field)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -VOLUME_SCALE:
        raise DomainError("VOLUMEN_INVALIDO", "más de 6 decimales", field=field)
    return value.quantize(Q6)


ProdKey = tuple[
    int, dt.date, str, int
]  # (id_partida_anexo, fecha, tipo_tiempo, id_sitio; 0 = none)


@dataclass(frozen=True)
class ExistingProduction:
    id: int
    volumen: Decimal
    gpu: ExistingGpu | None = None


@dataclass(frozen=True)
class PlannedChange:
    key: ProdKey
    id: int | None  # None → create
    volumen: Decimal
    volumen_anterior: Decimal | None


@dataclass
class SavePlan:
    changes: list[PlannedChange] = field(default_factory=list)
    unchanged: int = 0


def plan_production_save(
    requested: Mapping[ProdKey, Decimal],
    existing: Mapping[ProdKey, ExistingProduction],
    *,
    mes_cerrado: bool,
    dias_cerrados: Iterable[dt.date] = (),
    fields: Mapping[ProdKey, str] | None = None,
) -> SavePlan:
    """Diff requested volumes against stored rows and apply the edit guards.

    Unchanged values are no-ops (no event). New rows are created only for volume > 0 (legacy
    mass save). A change is rejected with 409 when the month is closed (MES_CERRADO), the day is
    closed (DIA_CERRADO) or the production's GPU is in review/validated/billed (GPU_EN_PROCESO,
    [DECIDE-C2]); all offending productions are listed and nothing is written.
    """
    closed = set(dias_cerrados)
    plan = SavePlan()
    blocked_days: list[str] = []
    blocked_gpu: list[int] = []
    for key, raw in requested.items():
        volumen = raw.quantize(Q6)
        current = existing.get(key)
        if current is None:
            if volumen == 0:
                plan.unchanged += 1
                continue
            change = PlannedChange(key, None, volumen, None)
        else:
            if current.volumen.quantize(Q6) == volumen:
                plan.unchanged += 1
                continue
            if gpu_blocks_edit(current.gpu):
                blocked_gpu.append(current.id)
                continue
            change = PlannedChange(key, current.id, volumen, current.volumen.quantize(Q6))
        if key[1] in closed:
            blocked_days.append(key[1].isoformat())
            continue
        plan.changes.append(change)
    if (plan.changes or blocked_days or blocked_gpu) and mes_cerrado:
        raise DomainError("MES_CERRADO", "el reporte mensual está cerrado")
    if blocked_gpu:
        raise DomainError(
            "GPU_EN_PROCESO",
            f"{len(blocked_gpu)} producción(es) con GPU en revisión, validado o facturado",
            producciones=sorted(blocked_gpu),
        )
    if blocked_days:
        raise DomainError(
            "DIA_CERRADO",
            f"días cerrados: {', '.join(sorted(set(blocked_days)))}",
            dias=sorted(set(blocked_days)),
        )
    return plan


# --------------------------------------------------------------------------------------------
# Over-volume flag (§C.4.4, GP-D12: chronological only)
# --------------------------------------------------------------------------------------------


def normalize_code(code: str) -> str:
    """Canonical line code: ``variants(c) = {c, trim(c), trim(c) without '.', trim(c) + '.'}``
    all map to ``trim(c)`` without trailing dots."""
    return code.strip().rstrip(".").strip()


@dataclass(frozen=True)
class VolumeRow:
    id: int
    codigo: str
    fecha: dt.date
    tipo_tiempo: str
    volumen: Decimal


def authorised_volumes(lines: Iterable[tuple[str, Decimal | None]]) -> dict[str, Decimal]:
    """Σ volumen_proyectado per normalised code (lines of active imports of the family), 4 dp."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for code, vol in lines:
        totals[normalize_code(code)] += vol or Decimal(0)
    return {k: v.quantize(Q4, ROUND_HALF_UP) for k, v in totals.items()}


def compute_excedentes(
    rows: Iterable[VolumeRow], autorizado: Mapping[str, Decimal]
) -> dict[int, bool]:
    """Chronological rule: order by (fecha, TE before CMA, id); cumulative volume per code;
    ``es_excedente = round(cumulative, 4) > autorizado`` (a code without authorisation: 0)."""
    ordered = sorted(rows, key=lambda r: (r.fecha, TIPO_TIEMPO_ORDER.get(r.tipo_tiempo, 9), r.id))
    running: dict[str, Decimal] = defaultdict(Decimal)
    out: dict[int, bool] = {}
    for row in ordered:
        code = normalize_code(row.codigo)
        running[code] += row.volumen
        limit = autorizado.get(code, Decimal(0))
        out[row.id] = running[code].quantize(Q4, ROUND_HALF_UP) > limit
    return out


def estatus_volumen(flags: Iterable[bool]) -> str:
    """Production grid row flag (legacy ``estatus_gpu``, renamed)."""
    return "BLOQUEADO" if any(flags) else "AUTORIZADO"
