"""Shared pieces of the evidence use cases: configuration, clock, outbox and grid-version helpers,
OT lookups.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Table,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.domain import Actor, DomainError
from evidence.models import (
    Ot,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
    ReporteDiario,
    ReporteMensual,
    outbox,
)
from nexo_messaging.outbox import enqueue_many as _enqueue_many
from service_defaults.clock import utcnow as utcnow

PRODUCCION_T = cast(Table, Produccion.__table__)


GPU_T = cast(Table, RegistroGpu.__table__)


HISTORIAL_T = cast(Table, RegistroGpuHistorial.__table__)


REPORTE_T = cast(Table, ReporteMensual.__table__)


DIARIO_T = cast(Table, ReporteDiario.__table__)


SYSTEM = Actor(d.SYSTEM_USER, frozenset({d.ROLE_ADMIN}))


@dataclass(frozen=True)
class EvidenceConfig:
    gpu_annexes: frozenset[str] = d.DEFAULT_GPU_ANNEXES
    allowed_hosts: frozenset[str] = d.DEFAULT_ALLOWED_HOSTS


DEFAULT_CONFIG = EvidenceConfig()


def config_from_settings(settings: Any) -> EvidenceConfig:
    return EvidenceConfig(
        gpu_annexes=frozenset(
            d.normalize_annex(a) for a in getattr(settings, "gpu_annexes", d.DEFAULT_GPU_ANNEXES)
        ),
        allowed_hosts=frozenset(
            h.strip().lower()
            for h in getattr(settings, "evidence_allowed_hosts", d.DEFAULT_ALLOWED_HOSTS)
        ),
    )


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


async def enqueue_many(session: AsyncSession, events: Sequence[DomainEvent]) -> int:
    """Outbox rows for many events in one statement (``nexo_messaging.outbox.enqueue_many``)."""
    if not events:
        return 0
    await _enqueue_many(session, outbox, list(events))
    return len(events)


def rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", -1))


async def bump_grid(session: AsyncSession, writer: BulkWriter, report_ids: Iterable[int]) -> None:
    """Increment the grid version of these monthly reports (same transaction as the write)."""
    ids = sorted(set(report_ids))
    if ids:
        await writer.bump_grid(session, ids)


async def get_ot(session: AsyncSession, id_ot: int, *, field: str = "id_ot") -> Ot:
    ot = await session.get(Ot, id_ot)
    if ot is None:
        raise DomainError("OT_NO_ENCONTRADA", f"OT {id_ot} no existe", field=field, id_ot=id_ot)
    return ot


async def family_ids(session: AsyncSession, ot: Ot) -> list[int]:
    """The OT family: principal plus every OT whose ``ot_principal`` is the principal."""
    principal = ot.ot_principal or ot.id
    rows = await session.scalars(
        select(Ot.id).where(or_(Ot.id == principal, Ot.ot_principal == principal))
    )
    return sorted(rows)


def group_by(items: Iterable[Any], key: Any) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for item in items:
        out[key(item)].append(item)
    return out
