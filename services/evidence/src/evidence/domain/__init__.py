"""Pure rules of the GPU evidence domain (DOMAIN Part C). No I/O, no clock, no database.

One module per rule group; this package re-exports their public names (``from evidence import
domain as d; d.is_gpu_eligible(...)``).
"""

from evidence.domain.billing import (
    BillingCandidate as BillingCandidate,
)
from evidence.domain.billing import (
    EstimateLine as EstimateLine,
)
from evidence.domain.billing import (
    EstimateTotals as EstimateTotals,
)
from evidence.domain.billing import (
    billing_skip_reason as billing_skip_reason,
)
from evidence.domain.billing import (
    check_billable as check_billable,
)
from evidence.domain.billing import (
    completeness as completeness,
)
from evidence.domain.billing import (
    estimate_totals as estimate_totals,
)
from evidence.domain.billing import (
    money as money,
)
from evidence.domain.billing import (
    percentage as percentage,
)
from evidence.domain.billing import (
    sort_ids as sort_ids,
)
from evidence.domain.billing import (
    validate_period as validate_period,
)
from evidence.domain.billing import (
    validate_volumen_estimado as validate_volumen_estimado,
)
from evidence.domain.billing import (
    volumen_actual as volumen_actual,
)
from evidence.domain.daily import (
    SITE_COLUMN_BY_FRENTE as SITE_COLUMN_BY_FRENTE,
)
from evidence.domain.daily import (
    DailyStatus as DailyStatus,
)
from evidence.domain.daily import (
    DayChange as DayChange,
)
from evidence.domain.daily import (
    PlanLine as PlanLine,
)
from evidence.domain.daily import (
    line_key as line_key,
)
from evidence.domain.daily import (
    ot_period as ot_period,
)
from evidence.domain.daily import (
    ot_valid_in_month as ot_valid_in_month,
)
from evidence.domain.daily import (
    plan_daily_statuses as plan_daily_statuses,
)
from evidence.domain.daily import (
    production_grid as production_grid,
)
from evidence.domain.daily import (
    resolve_daily_status as resolve_daily_status,
)
from evidence.domain.eligibility import (
    ANNEX_PAD as ANNEX_PAD,
)
from evidence.domain.eligibility import (
    DEFAULT_GPU_ANNEXES as DEFAULT_GPU_ANNEXES,
)
from evidence.domain.eligibility import (
    MIN_VOLUME as MIN_VOLUME,
)
from evidence.domain.eligibility import (
    annex_requires_gpu as annex_requires_gpu,
)
from evidence.domain.eligibility import (
    gpu_annex_set as gpu_annex_set,
)
from evidence.domain.eligibility import (
    gpu_eligible_sql as gpu_eligible_sql,
)
from evidence.domain.eligibility import (
    is_gpu_eligible as is_gpu_eligible,
)
from evidence.domain.eligibility import (
    normalize_annex as normalize_annex,
)
from evidence.domain.errors import (
    ERROR_STATUS as ERROR_STATUS,
)
from evidence.domain.errors import (
    ERROR_TITLES as ERROR_TITLES,
)
from evidence.domain.errors import (
    DomainError as DomainError,
)
from evidence.domain.gpu import (
    CHECKLIST_ITEMS as CHECKLIST_ITEMS,
)
from evidence.domain.gpu import (
    DEFAULT_ALLOWED_HOSTS as DEFAULT_ALLOWED_HOSTS,
)
from evidence.domain.gpu import (
    MAX_LINK_LENGTH as MAX_LINK_LENGTH,
)
from evidence.domain.gpu import (
    REJECTION_REASONS as REJECTION_REASONS,
)
from evidence.domain.gpu import (
    TRANSITIONS as TRANSITIONS,
)
from evidence.domain.gpu import (
    Action as Action,
)
from evidence.domain.gpu import (
    Actor as Actor,
)
from evidence.domain.gpu import (
    ExistingGpu as ExistingGpu,
)
from evidence.domain.gpu import (
    GpuState as GpuState,
)
from evidence.domain.gpu import (
    SyncAction as SyncAction,
)
from evidence.domain.gpu import (
    TransitionOutcome as TransitionOutcome,
)
from evidence.domain.gpu import (
    TransitionRequest as TransitionRequest,
)
from evidence.domain.gpu import (
    TransitionRule as TransitionRule,
)
from evidence.domain.gpu import (
    check_version as check_version,
)
from evidence.domain.gpu import (
    decide_transition as decide_transition,
)
from evidence.domain.gpu import (
    etag as etag,
)
from evidence.domain.gpu import (
    gpu_blocks_edit as gpu_blocks_edit,
)
from evidence.domain.gpu import (
    has_evidence as has_evidence,
)
from evidence.domain.gpu import (
    merge_link as merge_link,
)
from evidence.domain.gpu import (
    parse_etag as parse_etag,
)
from evidence.domain.gpu import (
    plan_gpu_sync as plan_gpu_sync,
)
from evidence.domain.gpu import (
    validate_checklist as validate_checklist,
)
from evidence.domain.gpu import (
    validate_evidence_link as validate_evidence_link,
)
from evidence.domain.grid import (
    GridRow as GridRow,
)
from evidence.domain.grid import (
    build_grid as build_grid,
)
from evidence.domain.grid import (
    format_volume as format_volume,
)
from evidence.domain.grid import (
    grid_cell as grid_cell,
)
from evidence.domain.periods import (
    BUSINESS_TZ as BUSINESS_TZ,
)
from evidence.domain.periods import (
    business_date as business_date,
)
from evidence.domain.periods import (
    days_in_month as days_in_month,
)
from evidence.domain.periods import (
    validate_month as validate_month,
)
from evidence.domain.production import (
    Q2 as Q2,
)
from evidence.domain.production import (
    Q4 as Q4,
)
from evidence.domain.production import (
    Q6 as Q6,
)
from evidence.domain.production import (
    VOLUME_MAX as VOLUME_MAX,
)
from evidence.domain.production import (
    VOLUME_SCALE as VOLUME_SCALE,
)
from evidence.domain.production import (
    ExistingProduction as ExistingProduction,
)
from evidence.domain.production import (
    PlannedChange as PlannedChange,
)
from evidence.domain.production import (
    ProdKey as ProdKey,
)
from evidence.domain.production import (
    SavePlan as SavePlan,
)
from evidence.domain.production import (
    VolumeRow as VolumeRow,
)
from evidence.domain.production import (
    authorised_volumes as authorised_volumes,
)
from evidence.domain.production import (
    compute_excedentes as compute_excedentes,
)
from evidence.domain.production import (
    estatus_volumen as estatus_volumen,
)
from evidence.domain.production import (
    normalize_code as normalize_code,
)
from evidence.domain.production import (
    plan_production_save as plan_production_save,
)
from evidence.domain.production import (
    validate_volume as validate_volume,
)
from evidence.domain.roles import (
    ROLE_ADMIN as ROLE_ADMIN,
)
from evidence.domain.roles import (
    ROLE_FACTURACION as ROLE_FACTURACION,
)
from evidence.domain.roles import (
    ROLE_OPS as ROLE_OPS,
)
from evidence.domain.roles import (
    ROLE_RESIDENTE as ROLE_RESIDENTE,
)
from evidence.domain.roles import (
    ROLE_REVISOR as ROLE_REVISOR,
)
from evidence.domain.roles import (
    ROLE_SUPERVISOR as ROLE_SUPERVISOR,
)
from evidence.domain.roles import (
    ROLES as ROLES,
)
from evidence.domain.roles import (
    SYSTEM_USER as SYSTEM_USER,
)
from evidence.domain.roles import (
    has_any_role as has_any_role,
)
from evidence.domain.vocab import (
    BULK_REVIEW_TARGETS as BULK_REVIEW_TARGETS,
)
from evidence.domain.vocab import (
    COLORS as COLORS,
)
from evidence.domain.vocab import (
    DELETABLE_STATUSES as DELETABLE_STATUSES,
)
from evidence.domain.vocab import (
    DESCRIPCIONES as DESCRIPCIONES,
)
from evidence.domain.vocab import (
    LEGACY_IDS as LEGACY_IDS,
)
from evidence.domain.vocab import (
    LOCKING_STATUSES as LOCKING_STATUSES,
)
from evidence.domain.vocab import (
    MISSING_EVIDENCE_STATUSES as MISSING_EVIDENCE_STATUSES,
)
from evidence.domain.vocab import (
    TIPO_TIEMPO_ORDER as TIPO_TIEMPO_ORDER,
)
from evidence.domain.vocab import (
    EstatusCobro as EstatusCobro,
)
from evidence.domain.vocab import (
    EstatusOperativo as EstatusOperativo,
)
from evidence.domain.vocab import (
    GpuStatus as GpuStatus,
)
from evidence.domain.vocab import (
    TipoTiempo as TipoTiempo,
)
from evidence.domain.vocab import (
    values as values,
)
