"""Fixtures of the orders tests: a pinned business clock, the database (SQLite and PostgreSQL)
and the DOMAIN §B.7 common world."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nexo_testing import migrated_engine
from orders.adapters.store import StockStore, stock_store_for_url
from orders.application import catalogue, clock
from orders.main import MIGRATIONS_DIR
from service_defaults.db import session_factory

# T = 2026-05-01 (business date), 12:00 in America/Mexico_City
T_NOW = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)
P_CLAVE = "010.000.0104.00"
Q_CLAVE = "010.000.0105.00"


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now_fn", lambda: T_NOW)


@dataclass
class World:
    sessionmaker: async_sessionmaker[AsyncSession]
    institucion: int
    central: int
    norte: int
    p: int
    q: int

    @property
    def store(self) -> StockStore:
        """The stock store `create_app` would choose for this world's database."""
        return stock_store_for_url(str(self.sessionmaker.kw["bind"].url))

    async def ubicacion(
        self, codigo: str, *, almacen: int | None = None, estado: str = "disponible"
    ) -> int:
        async with self.sessionmaker() as s, s.begin():
            ub = await catalogue.crear_ubicacion(s, almacen or self.central, codigo, estado=estado)
            return ub.id

    async def lote(
        self,
        numero: str,
        caducidad: date | None,
        ubicaciones: dict[str, int],
        *,
        producto: int | None = None,
        estado: int = 1,
        almacen: int | None = None,
        ubic_estado: str = "disponible",
    ) -> tuple[int, dict[str, int]]:
        """Create a lot with stock per location code (locations created on demand)."""
        lus: dict[str, int] = {}
        async with self.sessionmaker() as s, s.begin():
            from sqlalchemy import select

            from orders.models import LoteUbicacion, Ubicacion

            ub_ids: dict[int, int] = {}
            for codigo, cant in ubicaciones.items():
                alm = almacen or self.central
                ub = (
                    await s.execute(
                        select(Ubicacion).where(
                            Ubicacion.almacen_id == alm, Ubicacion.codigo == codigo
                        )
                    )
                ).scalar_one_or_none()
                if ub is None:
                    ub = await catalogue.crear_ubicacion(s, alm, codigo, estado=ubic_estado)
                ub_ids[ub.id] = cant
            lote = await catalogue.crear_lote(
                s,
                producto_id=producto or self.p,
                institucion_id=self.institucion,
                numero_lote=numero,
                fecha_caducidad=caducidad,
                ubicaciones=ub_ids,
                estado=estado,
                almacen_id=almacen or self.central,
            )
            rows = (
                await s.execute(
                    select(LoteUbicacion.id, Ubicacion.codigo)
                    .join(Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id)
                    .where(LoteUbicacion.lote_id == lote.id)
                )
            ).all()
            lus = {r[1]: r[0] for r in rows}
            return lote.id, lus


async def build_world(maker: async_sessionmaker[AsyncSession]) -> World:
    async with maker() as s, s.begin():
        inst = await catalogue.crear_institucion(s, "QA001", "Institucion QA")
        central = await catalogue.crear_almacen(
            s, inst.id, "Almacén Central", "CENTRAL", es_central=True
        )
        norte = await catalogue.crear_almacen(s, inst.id, "Almacén Norte", "NORTE")
        p = await catalogue.crear_producto(s, P_CLAVE, "Producto P")
        q = await catalogue.crear_producto(s, Q_CLAVE, "Producto Q")
        return World(maker, inst.id, central.id, norte.id, p.id, q.id)


VERSION_TABLE = "alembic_version_orders"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The migrated database of `database_url` (the schema the app runs on). Every test that
    uses the database runs on SQLite (the portable stock store) and on a fresh PostgreSQL
    database (the hand-written `PostgresStockStore`, chosen from the URL): ``database_url``
    is the `nexo_testing` parametrisation."""
    async with migrated_engine(database_url, MIGRATIONS_DIR, VERSION_TABLE) as eng:
        yield eng


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    return await build_world(session_factory(engine))
