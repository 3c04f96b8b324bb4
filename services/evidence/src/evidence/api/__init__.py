"""HTTP routes of the evidence service (thin: validate input, call one use case, commit).

One router per resource group (`ots`, `search`, `production`, `gpus`, `daily`, `billing`, `plan`),
request bodies in `schemas` (`schemas_search` for the searches and OT edits, `plan_schemas` for the
monthly link and the daily plan), shared dependencies in `common`; :data:`router` includes them all,
in this order (the order of the OpenAPI paths; `search` before `gpus`, whose `/gpus/{id_gpu}` would
take `/gpus/busqueda`), for `evidence.main.create_app`.

Domain errors (:class:`evidence.domain.DomainError`) become RFC 9457 problem+json through
:class:`evidence.api.common.DomainRoute`: ``type = https://nexo.dev/problems/<CODE>``, the
offending field in ``field`` and ``errors: [{field, reason}]``. Volumes are decimal strings with
6 decimals, money with 2. Optimistic concurrency on GPUs and productions: ``ETag: "<version>"``
on reads, ``If-Match`` (412 when stale) or a body ``version`` (409 ``VERSION_OBSOLETA`` when
stale).
"""

from __future__ import annotations

from fastapi import APIRouter

from evidence.api import billing, daily, gpus, ots, plan, production, search
from evidence.api.common import ROLES as ROLES
from evidence.api.common import DomainRoute

ROUTERS: tuple[APIRouter, ...] = (
    ots.router,
    search.router,
    production.router,
    gpus.router,
    daily.router,
    billing.router,
    plan.router,
)

router = APIRouter(route_class=DomainRoute, tags=["evidence"])
"""The routes of every router in :data:`ROUTERS`, in one flat list: FastAPI re-walks each level
of included routers on every request, which measurably slowed the cached grid read (~0.5 ms)."""
for _part in ROUTERS:
    router.routes.extend(_part.routes)
