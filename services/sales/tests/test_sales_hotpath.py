"""The PostgreSQL hot path of the POS confirmation (`sales.adapters.postgres`) beyond the acceptance
examples (which run on both backends in test_sales_api): ids drawn only for carts that pass,
the one-statement write is all or nothing, and its outbox row is the usual SaleConfirmed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from contracts.events.sales import SaleConfirmed
from nexo_testing import app_client
from sales.adapters import postgres
from sales.main import create_app
from sales.models import Abono, Auditoria, DetalleVenta, Venta, outbox
from sales.settings import SalesSettings
from service_defaults.auth import issue_token

pytestmark = pytest.mark.integration


@dataclass
class Pos:
    client: httpx.AsyncClient
    app: FastAPI
    vend: dict[str, str]
    admin: dict[str, str]
    producto: int
    materiales: list[int]

    def line(self, i: int = 0, **kw: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "producto_id": self.producto,
            "material_id": self.materiales[i],
            "largo": "30",
            "ancho": "20",
            "espesor_mm": 3,
            "minutos_laser": 10,
            "cantidad": 1,
        }
        return base | kw

    async def sell(self, *lines: dict[str, Any], status: int = 201, **kw: Any) -> Any:
        r = await self.client.post(
            "/ventas", json={"carrito": list(lines), **kw}, headers=self.vend
        )
        assert r.status_code == status, r.text
        return r.json()

    async def rows(self, stmt: Any) -> list[Any]:
        async with self.app.state.sessionmaker() as s:
            return list((await s.execute(stmt)).all())

    async def count(self, table: Any) -> int:
        return int((await self.rows(select(func.count()).select_from(table)))[0][0])


async def until(cond: Callable[[], Awaitable[bool]], deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


@pytest.fixture
async def pos(pg_database: str) -> AsyncIterator[Pos]:
    settings = SalesSettings(env="test", database_url=pg_database, transport="memory")
    app = create_app(settings)
    vend = {"Authorization": f"Bearer {issue_token(settings, 'v1', ['sales.vendedor'])}"}
    admin = {"Authorization": f"Bearer {issue_token(settings, 'a1', ['sales.admin'])}"}
    # a 500 is an answer here, not an exception
    async with app_client(app, "http://sales", raise_app_exceptions=False) as client:
        r = await client.put(
            "/configuracion/tabulador/3", json={"factor_costo": "450"}, headers=admin
        )
        assert r.status_code == 200, r.text
        r = await client.post("/productos", json={"nombre": "Letrero"}, headers=admin)
        producto = r.json()["id_producto"]
        mats = []
        for name, stock in (("M", 10), ("N", 100)):
            r = await client.post(
                "/materiales",
                json={"descripcion": name, "stock_actual": stock, "stock_minimo": 3},
                headers=admin,
            )
            mats.append(r.json()["id_material"])
        yield Pos(client, app, vend, admin, producto, mats)


async def test_rejected_carts_draw_no_ids(pos: Pos) -> None:
    first = await pos.sell(pos.line(0), pos.line(1))
    r = await pos.client.post(
        "/ventas", json={"carrito": [pos.line(0, cantidad=50)]}, headers=pos.vend
    )
    assert r.status_code == 409, r.text  # stock
    r = await pos.client.post(
        "/ventas", json={"carrito": [pos.line(0, material_id=9999)]}, headers=pos.vend
    )
    assert r.status_code == 404, r.text  # material
    r = await pos.client.post(
        "/ventas", json={"carrito": [pos.line(0, subtotal="1.00")]}, headers=pos.vend
    )
    assert r.status_code == 422, r.text  # price
    r = await pos.client.post(
        "/ventas", json={"carrito": [pos.line(0)], "cliente_id": 4242}, headers=pos.vend
    )
    assert r.status_code == 404, r.text  # client
    second = await pos.sell(pos.line(1), pos.line(0), pos.line(1, cantidad=2))
    assert second["venta_id"] == first["venta_id"] + 1
    assert second["folio"] == f"VTA-{second['venta_id']:04d}"
    lines = await pos.rows(
        select(DetalleVenta.id_detalle, DetalleVenta.id_material, DetalleVenta.cantidad)
        .where(DetalleVenta.id_venta == second["venta_id"])
        .order_by(DetalleVenta.id_detalle)
    )
    first_lines = await pos.rows(
        select(func.max(DetalleVenta.id_detalle)).where(DetalleVenta.id_venta == first["venta_id"])
    )
    ids = [x[0] for x in lines]
    assert ids == list(range(first_lines[0][0] + 1, first_lines[0][0] + 4))
    m, n = pos.materiales
    assert [(x[1], x[2]) for x in lines] == [(n, 1), (m, 1), (n, 2)]  # cart order


async def test_sale_write_is_all_or_nothing(pos: Pos, monkeypatch: pytest.MonkeyPatch) -> None:
    # the NOTIFY at the end of the one statement fails (channel names are at most 63 bytes)
    monkeypatch.setattr(postgres, "CHANNEL", "x" * 100)
    r = await pos.client.post(
        "/ventas",
        json={"carrito": [pos.line(0)], "monto_abonado": "10.00"},
        headers=pos.vend,
    )
    assert r.status_code == 500
    assert await written(pos) == [0, 0, 0, 0, 0]
    monkeypatch.undo()
    sale = await pos.sell(pos.line(0), monto_abonado="10.00")
    assert sale["saldo_restante"] == "177.80"
    assert await written(pos) == [1, 1, 1, 1, 1]


async def written(pos: Pos) -> list[int]:
    """Rows a sale writes: sale, lines, abonos, its audit rows, SaleConfirmed outbox rows."""
    counts = [await pos.count(t) for t in (Venta, DetalleVenta, Abono)]
    for stmt in (
        select(func.count()).where(Auditoria.entidad == "venta"),
        select(func.count()).where(outbox.c.type == "nexo.sales.SaleConfirmed.v1"),
    ):
        counts.append(int((await pos.rows(stmt))[0][0]))
    return counts


async def test_outbox_row_is_the_usual_sale_confirmed(pos: Pos) -> None:
    r = await pos.client.post(
        "/clientes", json={"nombre": "Cliente Uno", "telefono": "5512345678"}, headers=pos.vend
    )
    cliente = r.json()["id_cliente"]
    r = await pos.client.post(
        "/ventas",
        json={
            "carrito": [pos.line(0, cantidad=2), pos.line(1, ancho="20.5")],
            "cliente_id": cliente,
            "monto_abonado": "50.00",
            "metodo_pago": "tarjeta",
            "referencia_pago": "op-77",
        },
        headers={**pos.vend, "X-Correlation-ID": "corr-hot-1"},
    )
    assert r.status_code == 201, r.text
    sale = r.json()
    vid = sale["venta_id"]
    (row,) = await pos.rows(
        select(
            outbox.c.aggregatetype,
            outbox.c.aggregateid,
            outbox.c.type,
            outbox.c.topic,
            outbox.c.payload,
            outbox.c.headers,
        ).where(outbox.c.type == "nexo.sales.SaleConfirmed.v1")
    )
    assert row[:4] == ("venta", str(vid), "nexo.sales.SaleConfirmed.v1", "sales.sales")
    assert row[5]["correlationid"] == "corr-hot-1"
    event = SaleConfirmed.model_validate(row[4])
    detalle = await pos.rows(
        select(
            DetalleVenta.id_detalle,
            DetalleVenta.id_material,
            DetalleVenta.cantidad,
            DetalleVenta.subtotal,
        )
        .where(DetalleVenta.id_venta == vid)
        .order_by(DetalleVenta.id_detalle)
    )
    assert (event.id_venta, event.folio, event.id_cliente) == (vid, sale["folio"], cliente)
    assert [(x.id_detalle, x.id_material, x.cantidad, x.subtotal) for x in event.lineas] == [
        tuple(d) for d in detalle
    ]
    assert str(event.total) == sale["total"]
    assert str(event.lineas[1].ancho) == "20.5"
    (venta,) = await pos.rows(
        select(Venta.id_cliente, Venta.total, Venta.total_pagado, Venta.creado_en).where(
            Venta.id_venta == vid
        )
    )
    assert venta[:3] == (cliente, event.total, Decimal("50.00"))
    assert venta[3] == event.confirmed_at
    (abono,) = await pos.rows(
        select(Abono.monto, Abono.metodo, Abono.referencia, Abono.usuario).where(
            Abono.id_venta == vid
        )
    )
    assert (str(abono[0]), abono[1], abono[2], abono[3]) == ("50.00", "tarjeta", "op-77", "v1")
    (audit,) = await pos.rows(
        select(Auditoria.accion, Auditoria.hacia, Auditoria.usuario, Auditoria.payload).where(
            Auditoria.entidad == "venta", Auditoria.entidad_id == vid
        )
    )
    assert audit == (
        "confirmar",
        "pendiente",
        "v1",
        {"total": sale["total"], "permitir_backorder": False},
    )

    # the relay publishes it and the stock consumer applies it
    async def consumed() -> bool:
        r = await pos.client.get(f"/materiales/{pos.materiales[0]}", headers=pos.vend)
        return bool(r.json()["stock_actual"] == 8)

    await until(consumed)


async def test_preview_cache_follows_this_process_writes(pos: Pos) -> None:
    m = pos.materiales[1]
    body = pos.line(1)
    r = await pos.client.post("/precios/preview", json=body, headers=pos.vend)
    assert r.status_code == 200, r.text
    # deactivated (soft delete) → the next preview of this process sees it at once
    r = await pos.client.delete(f"/materiales/{m}", headers=pos.admin)
    assert r.status_code == 204
    r = await pos.client.post("/precios/preview", json=body, headers=pos.vend)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "MATERIAL_INACTIVO"
    # a new factor is priced at once
    r = await pos.client.put(
        "/configuracion/tabulador/3", json={"factor_costo": "900"}, headers=pos.admin
    )
    assert r.status_code == 200
    r = await pos.client.post("/precios/preview", json=pos.line(0), headers=pos.vend)
    assert r.json()["costo_material"] == "54.00", r.text
