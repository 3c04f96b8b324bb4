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

from evidence.application.billing import (
    DetalleInput as DetalleInput,
)
from evidence.application.billing import (
    EstimacionResult as EstimacionResult,
)
from evidence.application.billing import (
    agregar_detalle as agregar_detalle,
)
from evidence.application.billing import (
    crear_estimacion as crear_estimacion,
)
from evidence.application.billing import (
    get_estimacion as get_estimacion,
)
from evidence.application.common import (
    DEFAULT_CONFIG as DEFAULT_CONFIG,
)
from evidence.application.common import (
    DIARIO_T as DIARIO_T,
)
from evidence.application.common import (
    GPU_T as GPU_T,
)
from evidence.application.common import (
    HISTORIAL_T as HISTORIAL_T,
)
from evidence.application.common import (
    PRODUCCION_T as PRODUCCION_T,
)
from evidence.application.common import (
    REPORTE_T as REPORTE_T,
)
from evidence.application.common import (
    SYSTEM as SYSTEM,
)
from evidence.application.common import (
    EvidenceConfig as EvidenceConfig,
)
from evidence.application.common import (
    aware as aware,
)
from evidence.application.common import (
    bump_grid as bump_grid,
)
from evidence.application.common import (
    config_from_settings as config_from_settings,
)
from evidence.application.common import (
    enqueue_many as enqueue_many,
)
from evidence.application.common import (
    family_ids as family_ids,
)
from evidence.application.common import (
    get_ot as get_ot,
)
from evidence.application.common import (
    group_by as group_by,
)
from evidence.application.common import (
    month_bounds as month_bounds,
)
from evidence.application.common import (
    rowcount as rowcount,
)
from evidence.application.common import (
    utcnow as utcnow,
)
from evidence.application.daily import (
    DailySaveResult as DailySaveResult,
)
from evidence.application.daily import (
    ReporteDiasInput as ReporteDiasInput,
)
from evidence.application.daily import (
    guardar_reportes_diarios as guardar_reportes_diarios,
)
from evidence.application.gpu_sync import (
    SyncResult as SyncResult,
)
from evidence.application.gpu_sync import (
    existing_gpu as existing_gpu,
)
from evidence.application.gpu_sync import (
    gpu_event as gpu_event,
)
from evidence.application.gpu_sync import (
    lock_gpu_rows as lock_gpu_rows,
)
from evidence.application.gpu_sync import (
    lock_gpus_by_production as lock_gpus_by_production,
)
from evidence.application.gpu_sync import (
    sync_gpus as sync_gpus,
)
from evidence.application.gpus import (
    BulkItem as BulkItem,
)
from evidence.application.gpus import (
    GpuContext as GpuContext,
)
from evidence.application.gpus import (
    get_gpu as get_gpu,
)
from evidence.application.gpus import (
    gpu_ctx_query as gpu_ctx_query,
)
from evidence.application.gpus import (
    guardar_estatus_legacy as guardar_estatus_legacy,
)
from evidence.application.gpus import (
    transicionar_gpu as transicionar_gpu,
)
from evidence.application.gpus import (
    transicionar_gpus as transicionar_gpus,
)
from evidence.application.ots import (
    PartidaInput as PartidaInput,
)
from evidence.application.ots import (
    cambiar_importacion_activa as cambiar_importacion_activa,
)
from evidence.application.ots import (
    crear_ot as crear_ot,
)
from evidence.application.ots import (
    importar_anexo as importar_anexo,
)
from evidence.application.production import (
    PartidaValores as PartidaValores,
)
from evidence.application.production import (
    SaveResult as SaveResult,
)
from evidence.application.production import (
    announce as announce,
)
from evidence.application.production import (
    autorizar_excedente as autorizar_excedente,
)
from evidence.application.production import (
    editar_produccion as editar_produccion,
)
from evidence.application.production import (
    guardar_produccion as guardar_produccion,
)
from evidence.application.production import (
    guardar_produccion_masiva as guardar_produccion_masiva,
)
from evidence.application.production import (
    recompute_excedentes as recompute_excedentes,
)
from evidence.application.reports import (
    cerrar_dia as cerrar_dia,
)
from evidence.application.reports import (
    cerrar_mes as cerrar_mes,
)
from evidence.application.reports import (
    find_report as find_report,
)
from evidence.application.reports import (
    get_or_create_report as get_or_create_report,
)
