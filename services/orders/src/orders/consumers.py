"""Consumers of the orders service: the explicit table event → handler.

`orders.proposals` consumes `RequestValidated` and generates the FEFO proposal (DOMAIN §B.4.1),
reserving stock under row locks. Idempotent under redelivery: the runner's inbox row skips an
exact duplicate, and `generar_propuesta` returns the request's active proposal if one exists
(at most one active proposal per request, also a partial unique index), or does nothing if the
request is no longer VALIDADA (a stale event after release or cancellation).

A generation that fails for good — a rule violation retrying cannot fix (`PermanentError`) or
the retries exhausted — is not silent: `on_generation_failed` (the runner's dead-letter hook,
in its own transaction just before the event goes to the DLQ) puts the request in
PROPUESTA_FALLIDA with the reason code and text, where the requester and the warehouse see it
and from where it is retried or cancelled.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.base import DomainEvent
from contracts.events.orders import RequestValidated
from nexo_messaging.consumer import ConsumerSpec, EventMeta, Handler
from nexo_messaging.errors import PermanentError
from orders import domain as d
from orders.adapters.store import PORTABLE, StockStore
from orders.application.common import DEFAULT_CONFIG, Actor, OrdersConfig
from orders.application.generation import generar_propuesta
from orders.application.requests import registrar_fallo_propuesta

GROUP_PROPOSALS = "orders.proposals"


async def handle_request_validated(
    session: AsyncSession,
    event: RequestValidated,
    meta: EventMeta,
    *,
    store: StockStore,
    cfg: OrdersConfig = DEFAULT_CONFIG,
) -> None:
    """`store` is the app's `StockStore` (bound by `build_consumers`; a caller outside an app
    picks it with `orders.adapters.store.stock_store_for_url`, as `create_app` does)."""
    try:
        await generar_propuesta(
            session,
            event.id_solicitud,
            store=store,
            config=cfg,
            evento_id=meta.event_id,
            actor=Actor.system(),
        )
    except d.Conflict:
        raise  # e.g. a reservation race lost: transient, retried with backoff
    except d.DomainError as exc:  # unknown request or another rule violation: DLQ
        raise PermanentError(f"{exc.code}: {exc.detail}") from exc


ERROR_GENERACION = "ERROR_GENERACION"
"""Reason code of a failure that is not a rule violation (retries exhausted on an error)."""


def motivo_de_fallo(exc: BaseException) -> tuple[str, str]:
    """(code, text) of a generation failure: the domain rule's code and detail when one caused
    it, else ERROR_GENERACION with the error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, d.DomainError):
            return seen.code, seen.detail or seen.code
        seen = seen.__cause__
    return ERROR_GENERACION, (
        f"La propuesta no pudo generarse tras varios intentos ({type(exc).__name__}: {exc})."
    )


async def on_generation_failed(
    session: AsyncSession, event: DomainEvent, meta: EventMeta, exc: BaseException
) -> None:
    """Dead-letter hook of the proposal consumer: the request shows why (PROPUESTA_FALLIDA)."""
    if not isinstance(event, RequestValidated):
        return
    codigo, motivo = motivo_de_fallo(exc)
    await registrar_fallo_propuesta(session, event.id_solicitud, codigo, motivo, Actor.system())


def build_consumers(
    cfg: OrdersConfig = DEFAULT_CONFIG, store: StockStore = PORTABLE
) -> list[ConsumerSpec]:
    """The explicit table event → handler, bound to this process's configuration and stock
    store."""
    handlers: dict[type[DomainEvent], Handler] = {
        RequestValidated: partial(handle_request_validated, cfg=cfg, store=store),
    }
    return [
        ConsumerSpec(
            group_id=GROUP_PROPOSALS, handlers=handlers, on_dead_letter=on_generation_failed
        )
    ]
