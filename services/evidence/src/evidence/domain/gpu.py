"""The GPU state machine (§C.3.2), evidence links (DECIDE-C3) and GPU sync (§C.4.2)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from evidence.domain.eligibility import normalize_annex
from evidence.domain.errors import DomainError
from evidence.domain.roles import ROLE_RESIDENTE, ROLE_REVISOR, ROLE_SUPERVISOR, has_any_role
from evidence.domain.vocab import DELETABLE_STATUSES, LOCKING_STATUSES, GpuStatus


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
