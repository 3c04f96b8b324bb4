"""Consumers of the evidence service: the explicit table event → handler.

``evidence.gpu-sync`` consumes ``ProductionSaved`` (topic ``evidence.production``) and creates,
deletes or flags the GPU of each production it names (DOMAIN §C.4.2, G1/G9/G10). The service
publishes ``ProductionSaved.v2`` (the changed productions of one save and monthly report);
``ProductionSaved.v1`` (one production per event) is still accepted for records already on the
topic. The handler decides from the productions' CURRENT state in the database, not from the
payload, so a redelivered, reordered or replayed event (of either version) converges to the
same state; the runner's inbox row makes a duplicate a no-op anyway. A fetched chunk of events
is handled in one transaction by the batch handler (one bulk sync of all the productions).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.evidence import ProductionSaved, ProductionSavedV2
from evidence.adapters import BulkWriter
from evidence.application import common, gpu_sync
from evidence.models import Produccion
from nexo_messaging.consumer import EventMeta, Handler
from nexo_messaging.errors import PermanentError
from nexo_messaging.runtime import ConsumerSpec

GROUP_GPU_SYNC = "evidence.gpu-sync"


def production_ids(event: Any) -> list[int]:
    """The productions an event asks to re-sync (both versions of ProductionSaved)."""
    if isinstance(event, ProductionSavedV2):
        return [p.id_produccion for p in event.producciones]
    if isinstance(event, ProductionSaved):
        return [event.id_produccion]
    return []


async def _check_known(session: AsyncSession, writer: BulkWriter, ids: list[int]) -> None:
    known: set[int] = set()
    for chunk in writer.id_chunks(ids):
        known.update(
            (
                await session.scalars(
                    select(Produccion.id).where(writer.id_match(Produccion.id, chunk))
                )
            ).all()
        )
    unknown = sorted(set(ids) - known)
    if unknown:
        # Productions are never deleted here (volume goes to 0): an unknown id is not ours.
        raise PermanentError(f"ProductionSaved for unknown productions {unknown[:20]}")


async def _sync(
    session: AsyncSession, writer: BulkWriter, ids: list[int], cfg: common.EvidenceConfig
) -> None:
    if not ids:
        return
    await _check_known(session, writer, ids)
    await gpu_sync.sync_gpus(session, writer, ids, cfg=cfg)


async def handle_production_saved(
    session: AsyncSession,
    event: ProductionSaved | ProductionSavedV2,
    meta: EventMeta,
    *,
    writer: BulkWriter,
    cfg: common.EvidenceConfig = common.DEFAULT_CONFIG,
) -> None:
    await _sync(session, writer, sorted(set(production_ids(event))), cfg)


async def handle_production_saved_batch(
    session: AsyncSession,
    items: list[tuple[Any, EventMeta]],
    *,
    writer: BulkWriter,
    cfg: common.EvidenceConfig = common.DEFAULT_CONFIG,
) -> None:
    await _sync(session, writer, sorted({pid for e, _ in items for pid in production_ids(e)}), cfg)


def handlers(
    writer: BulkWriter, cfg: common.EvidenceConfig = common.DEFAULT_CONFIG
) -> dict[type[DomainEvent], Handler]:
    """The explicit table event → handler, bound to this database's writer and configuration
    (both versions of ProductionSaved go to one handler)."""
    handler: Handler = partial(handle_production_saved, writer=writer, cfg=cfg)
    return {ProductionSaved: handler, ProductionSavedV2: handler}


def batch_handler(writer: BulkWriter, cfg: common.EvidenceConfig = common.DEFAULT_CONFIG) -> Any:
    """The chunk handler (one transaction, one bulk sync), bound like :func:`handlers`."""
    return partial(handle_production_saved_batch, writer=writer, cfg=cfg)


def build_consumers(
    writer: BulkWriter, cfg: common.EvidenceConfig = common.DEFAULT_CONFIG
) -> list[ConsumerSpec]:
    """The consumer groups of this process."""
    return [
        ConsumerSpec(
            group_id=GROUP_GPU_SYNC,
            handlers=handlers(writer, cfg),
            batch_handler=batch_handler(writer, cfg),
            max_batch=50,  # records; a v2 record names up to 1,000 productions
        )
    ]
