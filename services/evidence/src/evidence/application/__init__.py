"""Use cases of the evidence service, one module per aggregate or use-case group; this package
re-exports their public names (``from evidence import application as uc; uc.sync_gpus(...)``).

Each use case runs inside the caller's transaction on ``session`` (the route or the consumer
runner commits once): domain checks + rows + outbox rows of its events, all or nothing
(DOMAIN §0.3.4). Concurrency (§0.3.5): the monthly report row is locked (``FOR UPDATE``) by
every production save of that month; GPU rows are locked in ascending id order and written
with conditional updates (``WHERE version = :v`` / ``WHERE estatus IN (...)``) whose row count
is checked. ``FOR UPDATE`` is a no-op on SQLite, where writes are serialised anyway.
Database-specific statements come from the ``writer`` argument (:mod:`evidence.adapters`).

Rule violations raise :class:`evidence.domain.DomainError` (mapped to problem+json by the API).
"""

from __future__ import annotations

from evidence.application.billing import (
    DetalleInput,
    EstimacionResult,
    agregar_detalle,
    crear_estimacion,
    get_estimacion,
)
from evidence.application.common import (
    DEFAULT_CONFIG,
    SYSTEM,
    EvidenceConfig,
    aware,
    bump_grid,
    config_from_settings,
    enqueue_many,
    family_ids,
    get_ot,
    utcnow,
)
from evidence.application.daily import DailySaveResult, ReporteDiasInput, guardar_reportes_diarios
from evidence.application.gpu_sync import (
    SyncResult,
    existing_gpu,
    gpu_event,
    lock_gpu_rows,
    lock_gpus_by_production,
    sync_gpus,
)
from evidence.application.gpus import (
    BulkItem,
    GpuContext,
    get_gpu,
    gpu_ctx_query,
    guardar_estatus_legacy,
    transicionar_gpu,
    transicionar_gpus,
)
from evidence.application.ots import (
    PartidaInput,
    cambiar_importacion_activa,
    crear_ot,
    importar_anexo,
)
from evidence.application.production import (
    PartidaValores,
    SaveResult,
    announce,
    autorizar_excedente,
    editar_produccion,
    guardar_produccion,
    guardar_produccion_masiva,
    recompute_excedentes,
)
from evidence.application.reports import cerrar_dia, cerrar_mes, find_report, get_or_create_report

__all__ = [
    "DEFAULT_CONFIG",
    "SYSTEM",
    "BulkItem",
    "DailySaveResult",
    "DetalleInput",
    "EstimacionResult",
    "EvidenceConfig",
    "GpuContext",
    "PartidaInput",
    "PartidaValores",
    "ReporteDiasInput",
    "SaveResult",
    "SyncResult",
    "agregar_detalle",
    "announce",
    "autorizar_excedente",
    "aware",
    "bump_grid",
    "cambiar_importacion_activa",
    "cerrar_dia",
    "cerrar_mes",
    "config_from_settings",
    "crear_estimacion",
    "crear_ot",
    "editar_produccion",
    "enqueue_many",
    "existing_gpu",
    "family_ids",
    "find_report",
    "get_estimacion",
    "get_gpu",
    "get_or_create_report",
    "get_ot",
    "gpu_ctx_query",
    "gpu_event",
    "guardar_estatus_legacy",
    "guardar_produccion",
    "guardar_produccion_masiva",
    "guardar_reportes_diarios",
    "importar_anexo",
    "lock_gpu_rows",
    "lock_gpus_by_production",
    "recompute_excedentes",
    "sync_gpus",
    "transicionar_gpu",
    "transicionar_gpus",
    "utcnow",
]
