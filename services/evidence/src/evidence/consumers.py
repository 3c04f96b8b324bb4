"""Consumers of the evidence service: the explicit table event → handler.

``evidence.gpu-sync`` consumes ``ProductionSaved`` (topic ``evidence.production``) and creates,
deletes or flags the GPU of each production (DOMAIN §C.4.2, G1/G9/G10). The handler decides from
the production's CURRENT state in the database, not from the payload, so a redelivered,
reordered or replayed event converges to the same state; the runner's inbox row makes a
duplicate a no-op anyway. A chunk of events is handled in one transaction by the batch handler.
"""

from __future__ import annotations

from functools import partial
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


async def _check_known(session: AsyncSession, ids: list[int]) -> None:
    known = set((await session.scalars(select(Produccion.id).where(Produccion.id.in_(ids)))).all())
    unknown = sorted(set(ids) - known)
    if unknown:
        # Productions are never deleted here (volume goes to 0): an unknown id is not ours.
        raise PermanentError(f"ProductionSaved for unknown productions {unknown}")


async def handle_production_saved(
    session: AsyncSession,
    event: ProductionSaved,
    meta: EventMeta,
    *,
    cfg: service.EvidenceConfig = service.DEFAULT_CONFIG,
) -> None:
    await _check_known(session, [event.id_produccion])
    await service.sync_gpus(session, [event.id_produccion], cfg=cfg)


async def handle_production_saved_batch(
    session: AsyncSession,
    items: list[tuple[Any, EventMeta]],
    *,
    cfg: service.EvidenceConfig = service.DEFAULT_CONFIG,
) -> None:
    ids = sorted({e.id_produccion for e, _ in items if isinstance(e, ProductionSaved)})
    if not ids:
        return
    await _check_known(session, ids)
    await service.sync_gpus(session, ids, cfg=cfg)


def build_consumers(cfg: service.EvidenceConfig = service.DEFAULT_CONFIG) -> list[ConsumerSpec]:
    """The explicit table event → handler, bound to this process's configuration."""
    handlers: dict[type[DomainEvent], Handler] = {
        ProductionSaved: partial(handle_production_saved, cfg=cfg),
    }
    return [
        ConsumerSpec(
            group_id=GROUP_GPU_SYNC,
            handlers=handlers,
            batch_handler=partial(handle_production_saved_batch, cfg=cfg),
            max_batch=1000,
        )
    ]


HANDLERS: dict[type[DomainEvent], Handler] = {ProductionSaved: handle_production_saved}
