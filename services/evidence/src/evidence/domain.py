"""Pure rules of the GPU evidence domain (DOMAIN Part C). No I/O, no clock, no database.

Everything here is a function of its arguments so it can be unit- and property-tested
exhaustively: annex normalisation and eligibility (§C.4.1), the GPU state machine (§C.3.2),
what a saved production implies for its GPU (§C.4.2), evidence-link validation ([DECIDE-C3]),
production edit guards ([DECIDE-C2]), the chronological over-volume rule (§C.4.4), the grid
read model (§C.4.3), billing figures (§C.4.6) and completeness figures.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

ERROR_STATUS: dict[str, int] = {
    # 400
    "MES_INVALIDO": 400,
    # 403
    "ROL_NO_AUTORIZADO": 403,
    "REVISOR_IGUAL_CARGADOR": 403,
    # 404
    "OT_NO_ENCONTRADA": 404,
    "PARTIDA_NO_ENCONTRADA": 404,
    "PRODUCCION_NO_ENCONTRADA": 404,
    "GPU_NO_ENCONTRADO": 404,
    "ESTIMACION_NO_ENCONTRADA": 404,
    "REPORTE_NO_ENCONTRADO": 404,
    # 409
    "TRANSICION_INVALIDA": 409,
    "GPU_FACTURADO": 409,
    "GPU_EN_PROCESO": 409,
    "VERSION_OBSOLETA": 409,
    "MES_CERRADO": 409,
    "DIA_CERRADO": 409,
    "PRODUCCION_YA_ESTIMADA": 409,
    "OT_DUPLICADA": 409,
    # 412
    "PRECONDICION_FALLIDA": 412,
    # 422
    "ARCHIVO_REQUERIDO": 422,
    "NOTA_REQUERIDA": 422,
    "URL_INVALIDA": 422,
    "ESTATUS_NO_GPU": 422,
    "MOTIVO_INVALIDO": 422,
    "GPU_NO_VALIDADO": 422,
    "EXCEDENTE_NO_AUTORIZADO": 422,
    "PRODUCCION_NO_ELEGIBLE": 422,
    "PRODUCCION_FUERA_DE_PERIODO": 422,
    "VOLUMEN_INVALIDO": 422,
    "VOLUMEN_ESTIMADO_INVALIDO": 422,
    "PARTIDA_INVALIDA": 422,
    "PERIODO_INVALIDO": 422,
    "DIA_INVALIDO": 422,
    "OT_PRINCIPAL_INVALIDA": 422,
    "CHECKLIST_INVALIDO": 422,
    "ESTATUS_DIARIO_INVALIDO": 422,
    "REPORTE_DUPLICADO": 422,
}

ERROR_TITLES: dict[str, str] = {
    "MES_INVALIDO": "El mes debe estar entre 1 y 12",
    "ROL_NO_AUTORIZADO": "El rol del usuario no permite esta operación",
    "REVISOR_IGUAL_CARGADOR": "Quien revisa no puede ser quien cargó la evidencia",
    "OT_NO_ENCONTRADA": "OT no encontrada",
    "PARTIDA_NO_ENCONTRADA": "Partida no encontrada",
    "PRODUCCION_NO_ENCONTRADA": "Producción no encontrada",
    "GPU_NO_ENCONTRADO": "Registro GPU no encontrado",
    "ESTIMACION_NO_ENCONTRADA": "Estimación no encontrada",
    "REPORTE_NO_ENCONTRADO": "Reporte mensual no encontrado",
    "TRANSICION_INVALIDA": "Transición de estatus no permitida",
    "GPU_FACTURADO": "El GPU está vinculado a una estimación (facturado) y está bloqueado",
    "GPU_EN_PROCESO": "La producción tiene un GPU en revisión, validado o facturado",
    "VERSION_OBSOLETA": "El registro fue modificado por otra persona",
    "MES_CERRADO": "El reporte mensual está cerrado",
    "DIA_CERRADO": "El día está cerrado",
    "PRODUCCION_YA_ESTIMADA": "La producción ya está en una estimación",
    "OT_DUPLICADA": "Ya existe una OT con ese folio",
    "PRECONDICION_FALLIDA": "If-Match no coincide con la versión actual",
    "ARCHIVO_REQUERIDO": "Se requiere el link de evidencia",
    "NOTA_REQUERIDA": "Se requiere una nota o motivo",
    "URL_INVALIDA": "Link de evidencia inválido",
    "ESTATUS_NO_GPU": "El estatus no pertenece al catálogo GPU",
    "MOTIVO_INVALIDO": "Motivo de rechazo desconocido",
    "GPU_NO_VALIDADO": "Solo se pueden estimar GPUs validados",
    "EXCEDENTE_NO_AUTORIZADO": "El volumen excedente requiere autorización de un supervisor",
    "PRODUCCION_NO_ELEGIBLE": "La producción no requiere GPU",
    "PRODUCCION_FUERA_DE_PERIODO": "La producción no pertenece al periodo u OT de la estimación",
    "VOLUMEN_INVALIDO": "Volumen inválido",
    "VOLUMEN_ESTIMADO_INVALIDO": "El volumen estimado debe estar entre 0 y el volumen actual",
    "PARTIDA_INVALIDA": "La partida no pertenece a la OT",
    "PERIODO_INVALIDO": "Periodo inválido",
    "DIA_INVALIDO": "Día fuera del mes",
    "OT_PRINCIPAL_INVALIDA": "La OT principal no existe",
    "CHECKLIST_INVALIDO": "Checklist de evidencia inválido",
    "ESTATUS_DIARIO_INVALIDO": "El estatus no pertenece al catálogo de estatus operativos",
    "REPORTE_DUPLICADO": "La OT aparece más de una vez en la petición",
}


class DomainError(Exception):
    """A rule violation with a stable DOMAIN error code (the last segment of the problem type).

    ``field`` names the offending input when there is one; ``extensions`` become extension
    members of the problem body.
    """

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        field: str | None = None,
        **extensions: Any,
    ) -> None:
        self.code = code
        self.status = ERROR_STATUS.get(code, 422)
        self.title = ERROR_TITLES.get(code, code)
        self.detail = detail or self.title
        self.field = field
        self.extensions = extensions
        super().__init__(f"{code}: {self.detail}")


# --------------------------------------------------------------------------------------------
# Time, periods
# --------------------------------------------------------------------------------------------

BUSINESS_TZ = ZoneInfo("America/Mexico_City")


def business_date(now: dt.datetime) -> dt.date:
    """The business date of an aware instant (DOMAIN §0.3.3)."""
    if now.tzinfo is None:
        raise ValueError("naive datetime")
    return now.astimezone(BUSINESS_TZ).date()


def validate_month(mes: int, anio: int) -> None:
    if not 1 <= mes <= 12:
        raise DomainError("MES_INVALIDO", f"mes={mes} fuera de 1..12", field="mes")
    if not 2000 <= anio <= 2100:
        raise DomainError("PERIODO_INVALIDO", f"anio={anio} fuera de 2000..2100", field="anio")


def days_in_month(mes: int, anio: int) -> int:
    validate_month(mes, anio)
    return calendar.monthrange(anio, mes)[1]


# --------------------------------------------------------------------------------------------
# Annex eligibility (§C.4.1, DECIDE-C1)
# --------------------------------------------------------------------------------------------

DEFAULT_GPU_ANNEXES: frozenset[str] = frozenset({"C-2", "C-3", "C2EXT", "C3EXT"})


def normalize_annex(anexo: str | None) -> str:
    """``upper(trim(anexo))``; ``None`` becomes the empty string."""
    return (anexo or "").strip().upper()


def annex_requires_gpu(anexo: str | None, annexes: Iterable[str] = DEFAULT_GPU_ANNEXES) -> bool:
    allowed = {normalize_annex(a) for a in annexes}
    return normalize_annex(anexo) in allowed


def is_gpu_eligible(
    anexo: str | None,
    volumen: Decimal,
    *,
    importacion_activa: bool = True,
    annexes: Iterable[str] = DEFAULT_GPU_ANNEXES,
) -> bool:
    """§C.4.1: annex in the set after normalisation, volume > 0, active import.

    Both TE and CMA rows qualify [DECIDE-C5]; the monthly report is NOT NULL by schema.
    """
    return importacion_activa and volumen > 0 and annex_requires_gpu(anexo, annexes)


# --------------------------------------------------------------------------------------------
# GPU status catalogue (§C.2.1)
# --------------------------------------------------------------------------------------------


class GpuStatus(enum.StrEnum):
    PENDIENTE = "PENDIENTE"
    CARGADO = "CARGADO"
    EN_REVISION = "EN_REVISION"
    VALIDADO = "VALIDADO"
    RECHAZADO = "RECHAZADO"

    @property
    def legacy_id(self) -> int:
        return LEGACY_IDS[self]

    @property
    def descripcion(self) -> str:
        return DESCRIPCIONES[self]

    @classmethod
    def from_legacy_id(cls, legacy_id: int) -> GpuStatus:
        for status, value in LEGACY_IDS.items():
            if value == legacy_id:
                return status
        raise DomainError(
            "ESTATUS_NO_GPU",
            f"estatus_id={legacy_id} no es un estatus GPU (19-23)",
            field="estatus_id",
        )

    @classmethod
    def parse(cls, value: str, *, field: str = "a") -> GpuStatus:
        code = value.strip().upper().replace(" ", "_") if isinstance(value, str) else ""
        try:
            return cls(code)
        except ValueError:
            raise DomainError(
                "ESTATUS_NO_GPU", f"{value!r} no es un estatus GPU", field=field
            ) from None


LEGACY_IDS: dict[GpuStatus, int] = {
    GpuStatus.PENDIENTE: 19,
    GpuStatus.CARGADO: 20,
    GpuStatus.EN_REVISION: 21,
    GpuStatus.VALIDADO: 22,
    GpuStatus.RECHAZADO: 23,
}
DESCRIPCIONES: dict[GpuStatus, str] = {
    GpuStatus.PENDIENTE: "Pendiente",
    GpuStatus.CARGADO: "Cargado",
    GpuStatus.EN_REVISION: "En Revisión",
    GpuStatus.VALIDADO: "Validado",
    GpuStatus.RECHAZADO: "Rechazado",
}

#: Statuses in which the GPU may be deleted by the system (G9) if not billed.
DELETABLE_STATUSES: frozenset[GpuStatus] = frozenset(
    {GpuStatus.PENDIENTE, GpuStatus.CARGADO, GpuStatus.RECHAZADO}
)
#: Statuses that block production edits (G10, DECIDE-C2).
LOCKING_STATUSES: frozenset[GpuStatus] = frozenset({GpuStatus.EN_REVISION, GpuStatus.VALIDADO})
#: Statuses whose evidence is missing (completeness report).
MISSING_EVIDENCE_STATUSES: frozenset[GpuStatus] = frozenset(
    {GpuStatus.PENDIENTE, GpuStatus.RECHAZADO}
)

# --------------------------------------------------------------------------------------------
# Roles (CONTRIBUTING "Roles")
# --------------------------------------------------------------------------------------------

ROLE_RESIDENTE = "evidence.residente"  # Supervisor de sitio / capturista: production, links
ROLE_REVISOR = "evidence.revisor"  # Personal de oficina: review, validate, reject
ROLE_SUPERVISOR = "evidence.supervisor"  # reopen, authorise excedente, close months, OTs
ROLE_FACTURACION = "evidence.facturacion"  # estimates
ROLE_ADMIN = "admin"
ROLE_OPS = "ops"
SYSTEM_USER = "system"

ROLES: tuple[str, ...] = (
    ROLE_RESIDENTE,
    ROLE_REVISOR,
    ROLE_SUPERVISOR,
    ROLE_FACTURACION,
)


def has_any_role(roles: Iterable[str], allowed: Iterable[str]) -> bool:
    owned = set(roles)
    return ROLE_ADMIN in owned or bool(owned & set(allowed))


# --------------------------------------------------------------------------------------------
# State machine (§C.3.2)
# --------------------------------------------------------------------------------------------


class Action(enum.StrEnum):
    CARGAR = "CARGAR"  # G2 upload link (also re-upload after rejection)
    QUITAR_ARCHIVO = "QUITAR_ARCHIVO"  # G3 remove link before review
    TOMAR_REVISION = "TOMAR_REVISION"  # G4
    VALIDAR = "VALIDAR"  # G5
    RECHAZAR = "RECHAZAR"  # G6
    REABRIR = "REABRIR"  # G7


@dataclass(frozen=True)
class TransitionRule:
    rule: str
    action: Action
    roles: frozenset[str]
    reviewer_action: bool = False  # reviewer ≠ uploader [DECIDE-C6]
    blocked_by_closed_month: bool = False


TRANSITIONS: dict[tuple[GpuStatus, GpuStatus], TransitionRule] = {
    (GpuStatus.PENDIENTE, GpuStatus.CARGADO): TransitionRule(
        "G2", Action.CARGAR, frozenset({ROLE_RESIDENTE, ROLE_SUPERVISOR}), False, True
    ),
    (GpuStatus.RECHAZADO, GpuStatus.CARGADO): TransitionRule(
        "G2", Action.CARGAR, frozenset({ROLE_RESIDENTE, ROLE_SUPERVISOR}), False, True
    ),
    (GpuStatus.CARGADO, GpuStatus.PENDIENTE): TransitionRule(
        "G3", Action.QUITAR_ARCHIVO, frozenset({ROLE_RESIDENTE, ROLE_SUPERVISOR}), False, True
    ),
    (GpuStatus.CARGADO, GpuStatus.EN_REVISION): TransitionRule(
        "G4", Action.TOMAR_REVISION, frozenset({ROLE_REVISOR}), True
    ),
    (GpuStatus.EN_REVISION, GpuStatus.VALIDADO): TransitionRule(
        "G5", Action.VALIDAR, frozenset({ROLE_REVISOR}), True
    ),
    (GpuStatus.EN_REVISION, GpuStatus.RECHAZADO): TransitionRule(
        "G6", Action.RECHAZAR, frozenset({ROLE_REVISOR}), True
    ),
    (GpuStatus.VALIDADO, GpuStatus.EN_REVISION): TransitionRule(
        "G7", Action.REABRIR, frozenset({ROLE_SUPERVISOR})
    ),
}

REJECTION_REASONS: dict[str, str] = {
    "FALTA_ASISTENCIA": "Falta hoja de asistencia",
    "FALTA_EPP": "Equipo de seguridad no visible",
    "FALTA_PANORAMICA": "Falta vista general del área de trabajo",
    "FALTA_PLACA_EQUIPO": "Placa o número de equipo no visible",
    "FALTA_HOROMETRO": "Falta lectura de horómetro",
    "FECHA_INCORRECTA": "Fecha u hora de las fotos no coincide",
    "CALIDAD_INSUFICIENTE": "Fotos fuera de foco, editadas o de baja resolución",
    "ENLACE_INACCESIBLE": "El enlace no abre o no tiene permisos",
    "OTRO": "Otro",
}

#: Checklist items stored per GPU at review [DECIDE-C7] (§C.4.5).
CHECKLIST_ITEMS: dict[str, tuple[str, ...]] = {
    "C-2": ("personal_en_sitio", "epp_visible", "vista_general", "hoja_asistencia"),
    "C-3": ("equipo_en_sitio", "placa_visible", "lectura_horometro", "equipo_trabajando"),
}
CHECKLIST_ITEMS["C2EXT"] = CHECKLIST_ITEMS["C-2"]
CHECKLIST_ITEMS["C3EXT"] = CHECKLIST_ITEMS["C-3"]

MAX_LINK_LENGTH = 500
DEFAULT_ALLOWED_HOSTS: frozenset[str] = frozenset({"drive.google.com", "docs.google.com"})


def validate_evidence_link(
    url: str, allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS, *, field: str = "archivo"
) -> str:
    """[DECIDE-C3]: absolute ``https://`` URL ≤ 500 chars on an allowed host; returns it trimmed."""
    value = url.strip()
    if not value:
        raise DomainError("ARCHIVO_REQUERIDO", field=field)
    if len(value) > MAX_LINK_LENGTH:
        raise DomainError("URL_INVALIDA", f"más de {MAX_LINK_LENGTH} caracteres", field=field)
    if any(ch.isspace() for ch in value):
        raise DomainError("URL_INVALIDA", "el link contiene espacios", field=field)
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError:
        raise DomainError("URL_INVALIDA", "link mal formado", field=field) from None
    if parts.scheme.lower() != "https":
        raise DomainError("URL_INVALIDA", "solo se aceptan links https://", field=field)
    if not host or parts.username is not None or parts.password is not None:
        raise DomainError("URL_INVALIDA", "link sin host válido", field=field)
    allowed = {h.strip().lower() for h in allowed_hosts}
    if host not in allowed:
        raise DomainError(
            "URL_INVALIDA",
            f"host {host!r} no permitido (permitidos: {', '.join(sorted(allowed))})",
            field=field,
        )
    return value


def merge_link(new: str | None, existing: str | None) -> str | None:
    """An empty or missing link never overwrites an existing one (GP-D03)."""
    if new is not None and new.strip():
        return new.strip()
    return existing


def has_evidence(archivo: str | None) -> bool:
    """Legacy "Entregado": ``archivo IS NOT NULL AND length(trim(archivo)) > 5``."""
    return archivo is not None and len(archivo.strip()) > 5


@dataclass(frozen=True)
class GpuState:
    """What the state machine needs to know about a GPU."""

    status: GpuStatus
    archivo: str | None = None
    facturado: bool = False
    usuario_carga: str | None = None
    mes_cerrado: bool = False
    version: int = 1
    anexo: str | None = None


@dataclass(frozen=True)
class Actor:
    sub: str
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TransitionRequest:
    to: GpuStatus
    archivo: str | None = None
    nota: str | None = None
    motivo: str | None = None
    checklist: Mapping[str, bool] | None = None


@dataclass(frozen=True)
class TransitionOutcome:
    rule: str
    action: Action
    from_status: GpuStatus
    to_status: GpuStatus
    archivo: str | None
    nota: str | None  # history note (reason) of this transition
    nota_bloqueo: str | None  # new value of RegistroGPU.nota_bloqueo
    motivo: str | None
    checklist: dict[str, bool] | None
    sets_carga: bool = False  # fecha_carga / usuario_carga
    sets_revision: bool = False  # fecha_revision / usuario_revision
    clears_revision: bool = False


def decide_transition(
    state: GpuState,
    req: TransitionRequest,
    actor: Actor,
    *,
    allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
) -> TransitionOutcome:
    """Check a requested transition against §C.3.2 and the caller's role; return its effects.

    Order of checks: billing lock (409 GPU_FACTURADO), table (409 TRANSICION_INVALIDA),
    role (403), reviewer ≠ uploader (403), closed month (409 MES_CERRADO), then payload (422).
    """
    if state.facturado:
        raise DomainError("GPU_FACTURADO", "el GPU está vinculado a una estimación")
    rule = TRANSITIONS.get((state.status, req.to))
    if rule is None:
        raise DomainError(
            "TRANSICION_INVALIDA",
            f"{state.status} → {req.to} no está permitida",
            field="a",
            de=str(state.status),
            a=str(req.to),
            permitidas=sorted(str(t) for (f, t) in TRANSITIONS if f == state.status),
        )
    if not has_any_role(actor.roles, rule.roles):
        raise DomainError(
            "ROL_NO_AUTORIZADO",
            f"{rule.rule} requiere uno de {sorted(rule.roles)}",
            roles_requeridos=sorted(rule.roles),
        )
    if (
        rule.reviewer_action
        and state.usuario_carga is not None
        and state.usuario_carga == actor.sub
    ):
        raise DomainError("REVISOR_IGUAL_CARGADOR")
    if rule.blocked_by_closed_month and state.mes_cerrado:
        raise DomainError("MES_CERRADO")

    nota = (req.nota or "").strip() or None
    archivo = state.archivo
    nota_bloqueo: str | None = None
    checklist = validate_checklist(req.checklist, state.anexo) if rule.reviewer_action else None
    motivo: str | None = None
    out = {"sets_carga": False, "sets_revision": False, "clears_revision": False}

    if rule.action is Action.CARGAR:
        candidate = merge_link(req.archivo, state.archivo)
        if candidate is None:
            raise DomainError("ARCHIVO_REQUERIDO", field="archivo")
        archivo = validate_evidence_link(candidate, allowed_hosts)
        nota_bloqueo = None
        out["sets_carga"] = True
    elif rule.action is Action.QUITAR_ARCHIVO:
        archivo = None
        nota_bloqueo = None
    elif rule.action is Action.TOMAR_REVISION:
        nota_bloqueo = None
    elif rule.action is Action.VALIDAR:
        if not has_evidence(archivo):
            raise DomainError("ARCHIVO_REQUERIDO", "no hay link de evidencia", field="archivo")
        nota_bloqueo = None
        out["sets_revision"] = True
    elif rule.action is Action.RECHAZAR:
        if nota is None:
            raise DomainError("NOTA_REQUERIDA", "el rechazo requiere una nota", field="nota")
        motivo = (req.motivo or "OTRO").strip().upper()
        if motivo not in REJECTION_REASONS:
            raise DomainError(
                "MOTIVO_INVALIDO",
                f"motivo {req.motivo!r} desconocido",
                field="motivo",
                motivos=sorted(REJECTION_REASONS),
            )
        nota_bloqueo = nota
        out["sets_revision"] = True
    elif rule.action is Action.REABRIR:
        if nota is None:
            raise DomainError("NOTA_REQUERIDA", "reabrir requiere un motivo", field="nota")
        nota_bloqueo = nota
        out["clears_revision"] = True

    return TransitionOutcome(
        rule=rule.rule,
        action=rule.action,
        from_status=state.status,
        to_status=req.to,
        archivo=archivo,
        nota=nota,
        nota_bloqueo=nota_bloqueo,
        motivo=motivo,
        checklist=checklist,
        **out,
    )


def validate_checklist(
    checklist: Mapping[str, bool] | None, anexo: str | None
) -> dict[str, bool] | None:
    """[DECIDE-C7]: the review checklist of the GPU's annex (§C.4.5); unknown items → 422."""
    if checklist is None:
        return None
    allowed = CHECKLIST_ITEMS.get(normalize_annex(anexo))
    if allowed is not None:
        unknown = sorted(set(checklist) - set(allowed))
        if unknown:
            raise DomainError(
                "CHECKLIST_INVALIDO",
                f"elementos desconocidos: {', '.join(unknown)}",
                field="checklist",
                permitidos=list(allowed),
            )
    return {k: bool(v) for k, v in checklist.items()}


def check_version(current: int, expected: int | None) -> None:
    """Optimistic concurrency: a stale ``version`` is 409 VERSION_OBSOLETA."""
    if expected is not None and expected != current:
        raise DomainError(
            "VERSION_OBSOLETA",
            f"versión {expected} obsoleta; la actual es {current}",
            field="version",
            version_actual=current,
        )


def parse_etag(value: str) -> int | None:
    """``W/"3"`` / ``"3"`` / ``3`` → 3; ``*`` → None (any)."""
    text = value.strip()
    if text == "*":
        return None
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise DomainError("PRECONDICION_FALLIDA", f"If-Match inválido: {value!r}")
    return int(text)


def etag(version: int) -> str:
    return f'"{version}"'


# --------------------------------------------------------------------------------------------
# Synchronisation of GPUs with production (§C.4.2, G1, G9, G10)
# --------------------------------------------------------------------------------------------


class SyncAction(enum.StrEnum):
    CREATE = "CREATE"
    DELETE = "DELETE"
    CONFLICT = "CONFLICT"
    NOTHING = "NOTHING"


@dataclass(frozen=True)
class ExistingGpu:
    status: GpuStatus
    facturado: bool = False


def plan_gpu_sync(eligible: bool, gpu: ExistingGpu | None) -> SyncAction:
    """What the current production state implies for its GPU.

    Eligible and no GPU → create (PENDIENTE). Not eligible (volume 0, annex changed, import
    inactive, production deleted) and a deletable, unbilled GPU → delete. Not eligible and a GPU
    in review/validated/billed → conflict (never deleted, GP-D05). Otherwise nothing. A pure
    function of the current state, so redelivery and replay converge.
    """
    if eligible:
        return SyncAction.CREATE if gpu is None else SyncAction.NOTHING
    if gpu is None:
        return SyncAction.NOTHING
    if gpu.status in DELETABLE_STATUSES and not gpu.facturado:
        return SyncAction.DELETE
    return SyncAction.CONFLICT


def gpu_blocks_edit(gpu: ExistingGpu | None) -> bool:
    """[DECIDE-C2] / G10: a production with a GPU in review, validated or billed cannot change."""
    return gpu is not None and (gpu.facturado or gpu.status in LOCKING_STATUSES)


# --------------------------------------------------------------------------------------------
# Production save planning (bulk + single)
# --------------------------------------------------------------------------------------------

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


_TIPO_ORDER = {"TE": 0, "CMA": 1}


def compute_excedentes(
    rows: Iterable[VolumeRow], autorizado: Mapping[str, Decimal]
) -> dict[int, bool]:
    """Chronological rule: order by (fecha, TE before CMA, id); cumulative volume per code;
    ``es_excedente = round(cumulative, 4) > autorizado`` (a code without authorisation: 0)."""
    ordered = sorted(rows, key=lambda r: (r.fecha, _TIPO_ORDER.get(r.tipo_tiempo, 9), r.id))
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


# --------------------------------------------------------------------------------------------
# Grid read model (§C.4.3)
# --------------------------------------------------------------------------------------------


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
                key=lambda r: (_TIPO_ORDER.get(r.tipo_tiempo, 9), r.id_sitio or 0, r.id_produccion)
            )
        lines[pid][f"dia_{day}"] = [grid_cell(r) for r in items]
    return [lines[pid] for pid in sorted(lines, key=lambda p: order[p])]


# --------------------------------------------------------------------------------------------
# Billing (§C.4.6, DECIDE-C4, DECIDE-C8)
# --------------------------------------------------------------------------------------------


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
    if c.volumen <= 0:
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


# --------------------------------------------------------------------------------------------
# Daily reports and the production grid (§C.2.2, §C.2.5, §C.5 related production endpoints)
# --------------------------------------------------------------------------------------------

SITE_COLUMN_BY_FRENTE: Mapping[int, str] = {
    1: "id_patio",
    3: "id_patio",
    2: "id_embarcacion",
    6: "id_embarcacion",
    4: "id_plataforma",
    7: "id_plataforma",
    5: "id_intercom",
}
"""Which site column of an OT its frente selects (§C.2.2; the full map, not GP-D20's)."""


def ot_period(
    inicio_real: dt.date | None,
    inicio_programado: dt.date | None,
    termino_real: dt.date | None,
    termino_programado: dt.date | None,
    reprogramaciones: Iterable[tuple[dt.date | None, dt.date | None]] = (),
) -> tuple[dt.date | None, dt.date | None]:
    """(inicio, fin) of an OT: real over programmed; ``fin`` is extended by the latest end
    (real over programmed) of its active reprogramaciones."""
    inicio = inicio_real or inicio_programado
    ends = [termino_real or termino_programado, *(r or p for r, p in reprogramaciones)]
    known = [e for e in ends if e is not None]
    return inicio, max(known) if known else None


def ot_valid_in_month(inicio: dt.date | None, fin: dt.date | None, mes: int, anio: int) -> bool:
    """Shown in a month's grid when inicio ≤ last day and fin ≥ first day. An OT without a
    start cannot be placed (not shown); one without an end is still running."""
    if inicio is None:
        return False
    first = dt.date(anio, mes, 1)
    last = dt.date(anio, mes, days_in_month(mes, anio))
    return inicio <= last and (fin is None or fin >= first)


@dataclass(frozen=True)
class DailyStatus:
    codigo: str
    descripcion: str
    cierra_dia: bool


def resolve_daily_status(
    value: str | None, catalogue: Iterable[DailyStatus], *, field: str
) -> DailyStatus | None:
    """A day's value of the mass save: its description (or code), case- and accent-exact but
    trimmed and case-insensitive; empty or null clears the day (``None``). Only the daily
    catalogue is searched, never GPU statuses (GP-D02)."""
    if value is None or not value.strip():
        return None
    wanted = value.strip().casefold()
    for status in catalogue:
        if wanted in (status.descripcion.casefold(), status.codigo.casefold()):
            return status
    raise DomainError(
        "ESTATUS_DIARIO_INVALIDO", f"{value!r} no es un estatus operativo", field=field
    )


@dataclass(frozen=True)
class DayChange:
    fecha: dt.date
    estatus: DailyStatus | None
    """``None`` deletes the day (GP-D14: clearing a day removes its row)."""


def plan_daily_statuses(
    existing: Mapping[dt.date, str],
    requested: Mapping[dt.date, DailyStatus | None],
    catalogue: Mapping[str, DailyStatus],
    *,
    may_close: bool,
    field: str,
) -> list[DayChange]:
    """Changes for one OT's month: unchanged days are skipped, a cleared day that has no row is
    a no-op. Setting, changing away from or clearing a closed day (a status with
    ``cierra_dia``) needs ``may_close`` (the same role as closing a day directly)."""
    changes: list[DayChange] = []
    for fecha, status in sorted(requested.items()):
        current = existing.get(fecha)
        if (status.codigo if status else None) == current:
            continue
        if status is None and current is None:
            continue
        was_closed = current is not None and catalogue[current].cierra_dia
        if (was_closed or (status is not None and status.cierra_dia)) and not may_close:
            raise DomainError(
                "ROL_NO_AUTORIZADO",
                f"abrir o cerrar el día {fecha.isoformat()} requiere supervisor",
                field=field,
            )
        changes.append(DayChange(fecha, status))
    return changes


@dataclass(frozen=True)
class PlanLine:
    """A budget line of the family (active import), the unit of consolidation."""

    id: int
    anexo: str | None
    codigo: str
    concepto: str
    unidad: str
    volumen_proyectado: Decimal


def line_key(line: PlanLine) -> tuple[str, str, str]:
    """(anexo, code, description), normalised: the same line re-imported for a reprogramación
    is one row of the production grid."""
    return (normalize_annex(line.anexo), normalize_code(line.codigo), line.concepto.strip())


@dataclass
class _DayAcc:
    te: Decimal = Decimal(0)
    cma: Decimal = Decimal(0)
    programado: Decimal = Decimal(0)
    excedente: bool = False
    has_production: bool = False
    has_plan: bool = False


def production_grid(
    lines: Sequence[PlanLine],
    productions: Iterable[tuple[int, dt.date, str, Decimal, bool]],
    plan: Iterable[tuple[int, dt.date, Decimal]],
    *,
    mes: int,
    anio: int,
    tipo_tiempo: str,
    archivo: str | None,
) -> list[dict[str, Any]]:
    """Rows of ``obtener_partidas_produccion``: lines consolidated by :func:`line_key` (the row
    id is the lowest line id of the group), one cell per day with the requested time type's
    ``valor`` (summed over sites and lines), both types' totals, the plan and the over-volume
    flag. ``productions`` are (line id, date, tipo, volume, es_excedente); ``plan`` (line id,
    date, volume). Always ``dia1``…``dia31`` (days past the month's end are null)."""
    validate_month(mes, anio)
    groups: dict[tuple[str, str, str], list[PlanLine]] = {}
    for line in sorted(lines, key=lambda ln: ln.id):
        groups.setdefault(line_key(line), []).append(line)
    group_of = {ln.id: key for key, members in groups.items() for ln in members}
    acc: dict[tuple[str, str, str], dict[int, _DayAcc]] = {k: {} for k in groups}
    for pid, fecha, tipo, volume, excedente in productions:
        key = group_of.get(pid)
        if key is None or fecha.month != mes or fecha.year != anio:
            continue
        cell = acc[key].setdefault(fecha.day, _DayAcc())
        cell.has_production = True
        if tipo == "TE":
            cell.te += volume
        else:
            cell.cma += volume
        if tipo == tipo_tiempo and excedente:
            cell.excedente = True
    for pid, fecha, volume in plan:
        key = group_of.get(pid)
        if key is None or fecha.month != mes or fecha.year != anio:
            continue
        cell = acc[key].setdefault(fecha.day, _DayAcc())
        cell.has_plan = True
        cell.programado += volume
    rows: list[dict[str, Any]] = []
    for key, members in groups.items():
        first = members[0]
        cells = acc[key]
        valor_of = (lambda c: c.te) if tipo_tiempo == "TE" else (lambda c: c.cma)
        row: dict[str, Any] = {
            "id_partida_imp": first.id,
            "ids_partida": [ln.id for ln in members],
            "codigo": first.codigo.strip(),
            "concepto": first.concepto,
            "unidad": first.unidad,
            "anexo": first.anexo.strip() if first.anexo else first.anexo,
            "vol_total_proyectado": format_volume(
                sum((m.volumen_proyectado for m in members), Decimal(0))
            ),
            "acumulado_mes": format_volume(sum((valor_of(c) for c in cells.values()), Decimal(0))),
            "acumulado_programado": format_volume(
                sum((c.programado for c in cells.values()), Decimal(0))
            ),
            "archivo": archivo,
        }
        for day in range(1, 32):
            c = cells.get(day)
            row[f"dia{day}"] = (
                None
                if c is None
                else {
                    "valor": format_volume(valor_of(c)) if c.has_production else None,
                    "programado": format_volume(c.programado) if c.has_plan else None,
                    "es_excedente": c.excedente,
                    "te_dia": format_volume(c.te),
                    "cma_dia": format_volume(c.cma),
                }
            )
        flag = estatus_volumen(c.excedente for c in cells.values())
        row["estatus_gpu"] = flag  # seed name
        row["estatus_volumen"] = flag  # §C.4.4 name
        rows.append(row)
    return rows
