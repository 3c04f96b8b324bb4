"""The GPU grid read model (§C.4.3)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NamedTuple

from evidence.domain.production import Q6
from evidence.domain.vocab import LEGACY_IDS, TIPO_TIEMPO_ORDER, GpuStatus


def format_volume(value: Decimal) -> str:
    return format(value.quantize(Q6), "f")


_VOLUME_TEXT: dict[Decimal, str] = {}


def _volume_text(value: Decimal) -> str:
    """``format_volume`` memoised (a month's grid repeats few distinct values)."""
    text = _VOLUME_TEXT.get(value)
    if text is None:
        text = format_volume(value)
        if len(_VOLUME_TEXT) < 10_000:
            _VOLUME_TEXT[value] = text
    return text


class GridRow(NamedTuple):
    """One eligible production of the month with its line and GPU — the flat query row, in
    column order (``GridRow._make(row)``). ``estatus`` is a code or None (no GPU yet);
    ``id_sitio`` None or 0 means no site."""

    id_partida_anexo: int
    codigo: str
    descripcion: str
    unidad: str
    anexo: str | None
    orden_fila: int
    id_produccion: int
    fecha: dt.date
    tipo_tiempo: str
    id_sitio: int | None
    volumen: Decimal
    id_gpu: int | None
    estatus: str | None
    archivo: str | None


_CELL_STATUS: dict[str | None, tuple[int, str]] = {
    None: (LEGACY_IDS[GpuStatus.PENDIENTE], str(GpuStatus.PENDIENTE)),
    **{str(s): (LEGACY_IDS[s], str(s)) for s in GpuStatus},
}


def grid_cell(row: GridRow) -> dict[str, Any]:
    estatus_id, estatus_texto = _CELL_STATUS[None if row.estatus is None else str(row.estatus)]
    archivo = row.archivo if row.archivo and row.archivo.strip() else ""
    cell: dict[str, Any] = {
        "id_produccion": row.id_produccion,
        "volumen": _volume_text(row.volumen),
        "tipo_tiempo": row.tipo_tiempo,
        "estatus_id": estatus_id,
        "estatus_texto": estatus_texto,
        "archivos_count": 1 if archivo else 0,
        "archivo": archivo,
    }
    if row.id_gpu is not None:
        cell["id_gpu"] = row.id_gpu
    return cell


def _cell_order(r: GridRow) -> tuple[int, int, int]:
    return (TIPO_TIEMPO_ORDER.get(r.tipo_tiempo, 9), r.id_sitio or 0, r.id_produccion)


_EMPTY_DAYS: dict[str, None] = {f"dia_{d}": None for d in range(1, 32)}


def build_grid(rows: Iterable[GridRow]) -> list[dict[str, Any]]:
    """Seed shape: one dict per line; ``dia_N`` is null or a list of cells sorted by
    (tipo_tiempo TE first, site) — several productions per day are kept (GP-D07)."""
    lines: dict[int, dict[str, Any]] = {}
    order: dict[int, tuple[int, str, int]] = {}
    cells: dict[tuple[int, int], list[GridRow]] = defaultdict(list)
    for row in rows:
        pid = row.id_partida_anexo
        if pid not in lines:
            lines[pid] = {
                "id_partida_anexo": pid,
                "codigo": row.codigo,
                "descripcion": row.descripcion,
                "unidad": row.unidad,
                "anexo": row.anexo or "",
                **_EMPTY_DAYS,
            }
            order[pid] = (row.orden_fila, row.codigo, pid)
        cells[(pid, row.fecha.day)].append(row)
    for (pid, day), items in cells.items():
        if len(items) > 1:
            items.sort(
                key=lambda r: (
                    TIPO_TIEMPO_ORDER.get(r.tipo_tiempo, 9),
                    r.id_sitio or 0,
                    r.id_produccion,
                )
            )
        lines[pid][f"dia_{day}"] = [grid_cell(r) for r in items]
    return [lines[pid] for pid in sorted(lines, key=lambda p: order[p])]
