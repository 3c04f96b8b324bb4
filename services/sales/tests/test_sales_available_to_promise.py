"""Available-to-promise (issue 15 item 12) through the API: a sale without `permitir_backorder`
is admitted only while ``stock_actual − comprometido ≥ requested``, where `comprometido` is what
confirmed sales hold until the SaleConfirmed consumer applies them (decrement and release in
one UPDATE). Exact under concurrency on PostgreSQL; the same rule on SQLite (serialised)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from contracts.events.sales import SaleConfirmed
from nexo_messaging.consumer import ConsumerRunner
from nexo_testing import app_client, bearer, ok, problem, until
from sales import consumers
from sales.main import create_app
from sales.models import Material, MovimientoStock, Venta, outbox
from sales.settings import SalesSettings

from .conftest import meta_for


@dataclass
class Shop:
    client: httpx.AsyncClient
    app: FastAPI
    vend: dict[str, str]
    admin: dict[str, str]
    producto: int

    def line(self, material: int, cantidad: int = 1) -> dict[str, Any]:
        return {
            "producto_id": self.producto,
            "material_id": material,
            "largo": "30",
            "ancho": "20",
            "espesor_mm": 3,
            "minutos_laser": 10,
            "cantidad": cantidad,
        }

    async def material(self, nombre: str, stock: int, minimo: int = 1) -> int:
        body = {"descripcion": nombre, "stock_actual": stock, "stock_minimo": minimo}
        r = await self.client.post("/materiales", json=body, headers=self.admin)
        return int((await ok(r, 201))["id_material"])

    async def post_sale(self, *lines: dict[str, Any], **kw: Any) -> httpx.Response:
        return await self.client.post(
            "/ventas", json={"carrito": list(lines), **kw}, headers=self.vend
        )

    async def sell(self, *lines: dict[str, Any], **kw: Any) -> int:
        return int((await ok(await self.post_sale(*lines, **kw), 201))["venta_id"])

    async def stock(self, id_material: int) -> dict[str, Any]:
        r = await self.client.get(f"/materiales/{id_material}", headers=self.vend)
        body: dict[str, Any] = await ok(r)
        return {k: body[k] for k in ("stock_actual", "comprometido", "disponible")}

    async def settled(self, id_material: int, stock_actual: int) -> bool:
        """The consumer applied everything: nothing held, the stock as expected."""
        figures = await self.stock(id_material)
        return figures == {
            "stock_actual": stock_actual,
            "comprometido": 0,
            "disponible": stock_actual,
        }

    def stock_consumer(self) -> ConsumerRunner:
        runtime = self.app.state.runtime
        runner: ConsumerRunner = next(
            r for r in runtime.consumers if r.spec.group_id == consumers.GROUP_STOCK
        )
        return runner

    async def scalar(self, stmt: Any) -> Any:
        async with self.app.state.sessionmaker() as s:
            return await s.scalar(stmt)


IN_FLIGHT = 40
"""Requests of a burst in flight at once (the PostgreSQL pool's size in these tests: every
in-flight sale holds a connection and races the others in the database; the rest wait in the
client instead of in the pool, whose 10 s checkout timeout a loaded CI host could reach)."""


async def _shop(database_url: str) -> AsyncIterator[Shop]:
    settings = SalesSettings(
        env="test", database_url=database_url, transport="memory", db_pool_size=IN_FLIGHT
    )
    app = create_app(settings)
    async with app_client(app, "http://sales", startup_timeout=30, timeout=120) as client:
        admin = bearer(settings, "admin1", "sales.admin")
        await ok(
            await client.put(
                "/configuracion/tabulador/3", json={"factor_costo": "450"}, headers=admin
            )
        )
        r = await client.post("/productos", json={"nombre": "Letrero"}, headers=admin)
        producto = int((await ok(r, 201))["id_producto"])
        yield Shop(client, app, bearer(settings, "vendedor1", "sales.vendedor"), admin, producto)


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[Shop]:
    """On SQLite (embedded mode) and on PostgreSQL (`nexo_testing` parametrisation)."""
    async for s in _shop(database_url):
        yield s


@pytest.fixture
async def pg_shop(pg_database: str) -> AsyncIterator[Shop]:
    async for s in _shop(pg_database):
        yield s


def _refused(r: httpx.Response, nombre: str, disponible: int, solicitado: int) -> None:
    body = problem(r, 409, "STOCK_INSUFICIENTE")
    assert (body["material"], body["disponible"], body["solicitado"]) == (
        nombre,
        disponible,
        solicitado,
    ), body


async def test_a_sale_is_admitted_against_stock_minus_what_confirmed_sales_hold(
    shop: Shop,
) -> None:
    m = await shop.material("Acrílico", 5)
    runner = shop.stock_consumer()
    await runner.stop()  # nothing is applied until the end: every sale still holds its units
    first = await shop.sell(shop.line(m, 3))
    assert await shop.stock(m) == {"stock_actual": 5, "comprometido": 3, "disponible": 2}
    _refused(await shop.post_sale(shop.line(m, 3)), "Acrílico", 2, 3)
    await shop.sell(shop.line(m, 2))
    _refused(await shop.post_sale(shop.line(m, 1)), "Acrílico", 0, 1)
    # a backorder sale is admitted anyway, and holds its units like any other
    await shop.sell(shop.line(m, 4), permitir_backorder=True)
    assert await shop.stock(m) == {"stock_actual": 5, "comprometido": 9, "disponible": -4}
    # cancelling a sale not applied yet releases its hold at once
    r = await shop.client.post(
        f"/ventas/{first}/cancelar", json={"motivo": "cliente desiste"}, headers=shop.admin
    )
    await ok(r)
    assert await shop.stock(m) == {"stock_actual": 5, "comprometido": 6, "disponible": -1}
    assert await shop.scalar(select(func.count()).select_from(Venta)) == 3
    await runner.start()
    # 5 − (3 + 2 + 4) + 3 returned by the cancellation; the cancelled sale released nothing twice
    await until(lambda: shop.settled(m, -1), 20, "stock consumer applied every sale")


async def test_redelivered_sale_confirmed_releases_its_hold_once(shop: Shop) -> None:
    m = await shop.material("MDF", 5)
    await shop.stock_consumer().stop()
    await shop.sell(shop.line(m, 2))
    async with shop.app.state.sessionmaker() as s:
        row = (await s.execute(select(outbox.c.id, outbox.c.type, outbox.c.payload))).one()
    event = SaleConfirmed.model_validate(row.payload)
    meta = meta_for(row.id, row.type)
    for batch in ([(event, meta), (event, meta)], [(event, meta)]):  # within and across batches
        async with shop.app.state.sessionmaker() as s, s.begin():
            await consumers.handle_batch(s, list(batch))
    assert await shop.stock(m) == {"stock_actual": 3, "comprometido": 0, "disponible": 3}
    ledger = await shop.scalar(
        select(func.count()).select_from(MovimientoStock).where(MovimientoStock.event_id == row.id)
    )
    assert ledger == 1


async def test_a_sale_confirmed_before_available_to_promise_releases_nothing(
    shop: Shop,
) -> None:
    """A sale written before migration 0004 (`compromete_stock` false) held nothing: applying
    it decrements the stock and leaves `comprometido` alone (never below zero)."""
    m = await shop.material("PVC", 5)
    await shop.stock_consumer().stop()
    venta = await shop.sell(shop.line(m, 2))
    async with shop.app.state.sessionmaker() as s, s.begin():  # as the migration left it
        await s.execute(update(Venta).values(compromete_stock=False))
        await s.execute(update(Material).values(comprometido=0))
    async with shop.app.state.sessionmaker() as s:
        row = (await s.execute(select(outbox.c.id, outbox.c.type, outbox.c.payload))).one()
    async with shop.app.state.sessionmaker() as s, s.begin():
        await consumers.handle_sale_confirmed(
            s, SaleConfirmed.model_validate(row.payload), meta_for(row.id, row.type)
        )
    assert await shop.stock(m) == {"stock_actual": 3, "comprometido": 0, "disponible": 3}
    assert await shop.scalar(select(Venta.compromete_stock).where(Venta.id_venta == venta)) is False


@pytest.mark.integration
async def test_300_concurrent_one_unit_sales_admit_exactly_the_stock(pg_shop: Shop) -> None:
    """Stock 100, 300 one-unit sales racing on PostgreSQL (IN_FLIGHT at a time, each on its
    own pooled connection): exactly 100 × 201 and 200 × 409 naming the material, while the
    stock consumer applies sales meanwhile and is restarted mid-burst; once it has applied
    everything, stock 0 and nothing held."""
    shop = pg_shop
    m = await shop.material("Acrílico 3mm", 100)
    runner = shop.stock_consumer()
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def sale() -> httpx.Response:
        async with gate:
            return await shop.post_sale(shop.line(m))

    tasks = [asyncio.create_task(sale()) for _ in range(300)]

    def finished(n: int) -> bool:
        return sum(t.done() for t in tasks) >= n

    await until(lambda: finished(60), 60, "60 answers")
    await runner.stop()
    await until(lambda: finished(150), 60, "150 answers")
    await runner.start()
    answers = await asyncio.gather(*tasks)
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) == 100, statuses
    assert statuses.count(409) == 200, statuses
    for r in answers:
        if r.status_code == 409:
            body = problem(r, 409, "STOCK_INSUFICIENTE")
            assert (body["material"], body["id_material"], body["solicitado"]) == (
                "Acrílico 3mm",
                m,
                1,
            )
            assert body["disponible"] <= 0
    assert await shop.scalar(select(func.count()).select_from(Venta)) == 100
    await until(lambda: shop.settled(m, 0), 60, "stock consumer applied the 100 sales")
    applied = await shop.scalar(
        select(func.count())
        .select_from(MovimientoStock)
        .where(MovimientoStock.id_material == m, MovimientoStock.motivo == "venta")
    )
    assert applied == 100


@pytest.mark.integration
async def test_concurrent_two_material_carts_hold_all_or_nothing(pg_shop: Shop) -> None:
    """A cart whose second material is short holds nothing of the first: 40 concurrent carts
    (plenty of A, 5 of B) → exactly 5 accepted, and A keeps 95 once they are applied."""
    assert IN_FLIGHT == 40
    shop = pg_shop
    a = await shop.material("A", 100)
    b = await shop.material("B", 5)
    answers = await asyncio.gather(*(shop.post_sale(shop.line(a), shop.line(b)) for _ in range(40)))
    statuses = [r.status_code for r in answers]
    assert statuses.count(201) == 5, statuses
    assert statuses.count(409) == IN_FLIGHT - 5, statuses
    for r in answers:
        if r.status_code == 409:
            assert problem(r, 409, "STOCK_INSUFICIENTE")["id_material"] == b
    await until(lambda: shop.settled(b, 0), 60, "B applied")
    await until(lambda: shop.settled(a, 95), 60, "A applied, nothing of A held")
