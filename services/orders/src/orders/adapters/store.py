"""The `StockStore` port: the database-specific part of proposal generation (read the FEFO
prefix under row locks, reserve, insert the proposal rows), and its choice from the database.

`orders.main.create_app` chooses the implementation ONCE (`stock_store_for`) and hands it to the
consumer that generates proposals; the use case never looks at the dialect.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from orders import domain as d
from orders.adapters.portable import PortableStockStore
from orders.adapters.postgres import PostgresStockStore


class LecturaFefo(Protocol):
    """The locked FEFO prefix of each product, and the scope-wide eligible net stock per product
    (the item's `cantidad_disponible`, §B.4.1 g), which may still be computing."""

    snaps: list[d.LoteUbicacionSnap]

    async def totales(self) -> dict[int, int]: ...

    async def cancelar(self) -> None: ...


class StockStore(Protocol):
    async def leer_fefo(
        self,
        session: AsyncSession,
        requeridos: Mapping[int, int],
        almacen_id: int,
        umbral: date,
    ) -> LecturaFefo:
        """Eligible stock rows (`domain.elegible_fefo`) that can cover each product's
        requirement in FEFO order, locked (``FOR UPDATE``, ascending id) and read under the lock,
        with their real states."""
        ...

    async def reservar_varios(
        self, session: AsyncSession, deltas: Sequence[tuple[int, int]]
    ) -> None:
        """Add reservations (lote_ubicacion id, cantidad) atomically; 409 STOCK_INSUFICIENTE if
        any row no longer has the free stock."""
        ...

    async def insertar_propuesta(
        self,
        session: AsyncSession,
        filas_items: list[dict[str, Any]],
        lineas: list[tuple[uuid.UUID, uuid.UUID, int, int]],
        at: datetime,
    ) -> None:
        """Proposal items, then their lines (id, item, lote_ubicacion, cantidad) as RESERVADA."""
        ...


PORTABLE: StockStore = PortableStockStore()


def stock_store_for(backend: str) -> StockStore:
    """The store for a database backend name (``postgresql``, ``sqlite``, ...)."""
    return PostgresStockStore() if backend == "postgresql" else PortableStockStore()


def stock_store_for_url(database_url: str) -> StockStore:
    """The store for a SQLAlchemy database URL (what `create_app` knows before any I/O)."""
    return stock_store_for(make_url(database_url).get_backend_name())
