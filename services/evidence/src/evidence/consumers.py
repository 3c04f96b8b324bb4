"""Consumers of the evidence service: the explicit table event → handler.

``evidence.gpu-sync`` consumes ``ProductionSaved`` (topic ``evidence.production``) and creates,
deletes or flags the GPU of each production (DOMAIN §C.4.2, G1/G9/G10). The handler decides from
the production's CURRENT state in the database, not from the payload, so a redelivered,
reordered or replayed event converges to the same state; the runner's inbox row makes a
duplicate a no-op anyway. A chunk of events is handled in one transaction by the batch handler.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.evidence import ProductionSaved
from evidence import service
from evidence.models import Produccion
from nexo_messaging.consumer import EventMeta, Handler
from nexo_messaging.errors import PermanentError
from nexo_messaging.runtime import ConsumerSpec

GROUP_GPU_SYNC = "evidence.gpu-sync"

_config: service.EvidenceConfig | None = None


def configure(cfg: service.EvidenceConfig | None) -> None:
    """Override the annex set used by the sync (tests); ``None`` = read settings again."""
    global _config
    _config = cfg


def current_config() -> service.EvidenceConfig:
    """The sync configuration, read lazily from the environment (never at import time)."""
    global _config
    if _config is None:
        from evidence.settings import EvidenceSettings
        from service_defaults.settings import load_settings

        _config = service.config_from_settings(load_settings(EvidenceSettings))
    return _config


async def _check_known(session: AsyncSession, ids: list[int]) -> None:
    known = set((await session.scalars(select(Produccion.id).where(Produccion.id.in_(ids)))).all())
    unknown = sorted(set(ids) - known)
    if unknown:
        # Productions are never deleted here (volume goes to 0): an unknown id is not ours.
        raise PermanentError(f"ProductionSaved for unknown productions {unknown}")


async def handle_production_saved(
    session: AsyncSession, event: ProductionSaved, meta: EventMeta
) -> None:
    await _check_known(session, [event.id_produccion])
    await service.sync_gpus(session, [event.id_produccion], cfg=current_config())


async def handle_production_saved_batch(
    session: AsyncSession, items: list[tuple[Any, EventMeta]]
) -> None:
    ids = sorted({e.id_produccion for e, _ in items if isinstance(e, ProductionSaved)})
    if not ids:
        return
    await _check_known(session, ids)
    await service.sync_gpus(session, ids, cfg=current_config())


HANDLERS: dict[type[DomainEvent], Handler] = {
    ProductionSaved: handle_production_saved,
}

CONSUMERS: list[ConsumerSpec] = [
    ConsumerSpec(
        group_id=GROUP_GPU_SYNC,
        handlers=HANDLERS,
        batch_handler=handle_production_saved_batch,
        max_batch=1000,
    )
]
