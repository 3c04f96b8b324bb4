"""The GPU history row (``registro_gpu_historial``, GP-D15): built here once for every writer —
the transitions and billing (ORM rows) and the GPU sync (bulk rows through the BulkWriter)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def history_row(
    id_gpu: int, id_produccion: int, accion: str, regla: str,
    transition: tuple[str | None, str | None], usuario: str, fecha: dt.datetime, *,
    version: int | None = None, archivo: str | None = None,
    nota: str | None = None, motivo: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One history row: every key of :data:`evidence.adapters.HISTORY_COLUMNS`; ``transition``
    is (from status, to status), None where the GPU did not exist before or after."""
    de_estatus, a_estatus = transition
    return {
        "id_gpu": id_gpu,
        "id_produccion": id_produccion,
        "accion": accion,
        "regla": regla,
        "de_estatus": de_estatus,
        "a_estatus": a_estatus,
        "usuario": usuario,
        "fecha": fecha,
        "nota": nota,
        "motivo": motivo,
        "archivo": archivo,
        "version": version,
    }
