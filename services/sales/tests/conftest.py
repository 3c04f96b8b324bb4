"""Fixtures of the sales tests: a SQLite database per test and a seeded catalog (DOMAIN §A.7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts.registry import REGISTRY
from nexo_messaging.consumer import EventMeta
from nexo_testing import sqlite_url
from sales.adapters import PortableSaleWriter
from sales.application.common import Actor
from sales.models import Base, ConfiguracionPrecios, Material, Producto, TabuladorCosto, outbox
from service_defaults.db import create_engine

TABULADOR = {3: "450.0000", 4: "12.0000", 5: "720.0000", 6: "980.5000", 10: "125.0000"}
WRITER = PortableSaleWriter()
"""The app's sale writer on SQLite (the session-path tests pass it to the use cases)."""
VENDEDOR = Actor("vendedor1", is_admin=False)
ADMIN = Actor("admin1", is_admin=True)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(sqlite_url(tmp_path, "sales.db"))
    async with eng.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
def sm(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def seed_catalog(s: AsyncSession) -> dict[str, int]:
    s.add(ConfiguracionPrecios(id=1, tarifa_laser_minuto=Decimal("15.00"), version=1))
    for esp, factor in TABULADOR.items():
        s.add(TabuladorCosto(espesor_mm=esp, factor_costo=Decimal(factor)))
    p = Producto(nombre="Letrero", porcentaje_utilidad=40, activo=True)
    pf = Producto(nombre="Llavero", precio_fijo=Decimal("150.00"), porcentaje_utilidad=40)
    m = Material(descripcion="M", stock_actual=10, stock_minimo=3, activo=True)
    n = Material(descripcion="N", stock_actual=100, stock_minimo=5, activo=True)
    s.add_all([p, pf, m, n])
    await s.flush()
    return {"p": p.id_producto, "pf": pf.id_producto, "m": m.id_material, "n": n.id_material}


@pytest.fixture
async def ids(sm: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sm() as s, s.begin():
        return await seed_catalog(s)


async def outbox_events(
    s: AsyncSession, type_suffix: str | None = None
) -> list[tuple[Any, EventMeta]]:
    rows = (await s.execute(select(outbox).order_by(outbox.c.seq))).mappings().all()
    out = []
    for r in rows:
        if type_suffix and f".{type_suffix}." not in r["type"]:
            continue
        cls = REGISTRY[r["type"]]
        out.append((cls.model_validate(r["payload"]), meta_for(r["id"], r["type"])))
    return out


def meta_for(event_id: str, type_: str = "t", offset: int = 0) -> EventMeta:
    return EventMeta(
        event_id=event_id,
        type=type_,
        source="/services/sales",
        subject=None,
        time=datetime.now(UTC),
        correlationid=None,
        causationid=None,
        traceparent=None,
        topic="sales.sales",
        partition=0,
        offset=offset,
    )
