"""Acceptance examples of DOMAIN Part A (AC-P*, AC-S*) and the AC-D* fixes, through the HTTP API
(`create_app` + lifespan, SQLite file, in-memory transport; asynchronous effects are polled)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from nexo_testing import app_client, bearer, ok, until
from sales import api
from sales.api import deps, schemas
from sales.main import create_app
from sales.models import Abono, DetalleVenta, MovimientoStock, Venta, outbox
from sales.settings import SalesSettings
from service_defaults.routing import hot_route

TABULADOR = {3: "450.0000", 4: "12.0000", 5: "720.0000", 6: "980.5000", 10: "125.0000"}


@dataclass
class Ctx:
    client: httpx.AsyncClient
    app: FastAPI
    settings: SalesSettings
    vend: dict[str, str]
    admin: dict[str, str]
    ids: dict[str, int]

    async def db(self, stmt: Any) -> Any:
        async with self.app.state.sessionmaker() as s:
            return (await s.execute(stmt)).all()

    async def count(self, model: Any) -> int:
        async with self.app.state.sessionmaker() as s:
            return int(await s.scalar(select(func.count()).select_from(model)))

    async def events(self, name: str) -> list[dict[str, Any]]:
        rows = await self.db(
            select(outbox.c.payload)
            .where(outbox.c.type.like(f"nexo.sales.{name}.v%"))  # any version
            .order_by(outbox.c.seq)
        )
        return [r[0] for r in rows]

    async def stock(self, id_material: int) -> int:
        r = await self.client.get(f"/materiales/{id_material}", headers=self.vend)
        assert r.status_code == 200, r.text
        return int(r.json()["stock_actual"])

    async def wait_stock(self, id_material: int, expected: int, deadline_s: float = 10.0) -> None:
        await until(lambda: self._stock_is(id_material, expected), deadline_s)

    async def _stock_is(self, id_material: int, expected: int) -> bool:
        return await self.stock(id_material) == expected

    async def wait_consumed(self, n_sales_events: int, deadline_s: float = 10.0) -> None:
        """Wait until the stock consumer has applied `n` sale events (ledger rows by event)."""

        async def done() -> bool:
            rows = await self.db(
                select(func.count(func.distinct(MovimientoStock.event_id))).where(
                    MovimientoStock.event_id.is_not(None)
                )
            )
            return int(rows[0][0]) >= n_sales_events

        await until(done, deadline_s)


@pytest.fixture
async def ctx(database_url: str) -> AsyncIterator[Ctx]:
    """Every acceptance example runs on SQLite (embedded mode: the ORM session path) and on
    PostgreSQL (the hand-written hot paths of `sales.adapters.postgres`): ``database_url`` is
    the `nexo_testing` parametrisation."""
    settings = SalesSettings(env="test", database_url=database_url, transport="memory")
    app = create_app(settings)
    async with app_client(app, "http://sales", startup_timeout=30) as client:
        c = Ctx(
            client,
            app,
            settings,
            bearer(settings, "vendedor1", "sales.vendedor"),
            bearer(settings, "admin1", "sales.admin"),
            {},
        )
        await seed(c)
        yield c


async def seed(c: Ctx) -> None:
    h = c.admin
    await ok(
        await c.client.put(
            "/configuracion/tarifa", json={"tarifa_laser_minuto": "15.00"}, headers=h
        )
    )
    for esp, factor in TABULADOR.items():
        await ok(
            await c.client.put(
                f"/configuracion/tabulador/{esp}", json={"factor_costo": factor}, headers=h
            )
        )
    p = await ok(await c.client.post("/productos", json={"nombre": "Letrero"}, headers=h), 201)
    pf = await ok(
        await c.client.post(
            "/productos", json={"nombre": "Llavero", "precio_fijo": "150.00"}, headers=h
        ),
        201,
    )
    m = await ok(
        await c.client.post(
            "/materiales",
            json={"descripcion": "M", "stock_actual": 10, "stock_minimo": 3},
            headers=h,
        ),
        201,
    )
    n = await ok(
        await c.client.post(
            "/materiales",
            json={"descripcion": "N", "stock_actual": 100, "stock_minimo": 5},
            headers=h,
        ),
        201,
    )
    c.ids = {
        "p": p["id_producto"],
        "pf": pf["id_producto"],
        "m": m["id_material"],
        "n": n["id_material"],
    }


def line(c: Ctx, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "producto_id": c.ids["p"],
        "material_id": c.ids["m"],
        "largo": "30",
        "ancho": "20",
        "espesor_mm": 3,
        "porcentaje_utilidad": 40,
        "minutos_laser": 10,
        "cantidad": 1,
    }
    base.update(kw)
    return base


async def sell(c: Ctx, *lines: dict[str, Any], status: int = 201, **kw: Any) -> Any:
    r = await c.client.post("/ventas", json={"carrito": list(lines), **kw}, headers=c.vend)
    assert r.status_code == status, r.text
    return r.json()


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/" + code), body
    return body


# ------------------------------------------------------------------ AC-P* pricing


@pytest.mark.parametrize(
    ("case", "largo", "ancho", "esp", "util", "mins", "tarifa", "unit"),
    [
        ("AC-P01", "30", "20", 3, 40, 10, None, "187.80"),
        ("AC-P02", "20", "20", 4, 40, 2, "6.00", "12.67"),
        ("AC-P03", "20", "20", 4, 20, 10, "6.00", "60.58"),
        ("AC-P04", "12.5", "7.25", 3, 70, 3, None, "51.93"),
        ("AC-P05", "120", "60", 5, 40, 45, None, "1400.76"),
        ("AC-P08", "30", "20", 3, 0, 10, None, "177.00"),
        ("AC-P09", "10", "10", 10, 30, 1, None, "16.63"),
        ("AC-P10", "12.5", "60", 6, 20, 1, None, "103.25"),
        ("AC-P11", "10", "20", 6, 50, 3, None, "74.42"),
        ("AC-P15", "5", "5", 3, 20, 1, None, "16.35"),
    ],
)
async def test_ac_pricing_preview(
    ctx: Ctx,
    case: str,
    largo: str,
    ancho: str,
    esp: int,
    util: int,
    mins: int,
    tarifa: str | None,
    unit: str,
) -> None:
    if tarifa:
        await ok(
            await ctx.client.put(
                "/configuracion/tarifa", json={"tarifa_laser_minuto": tarifa}, headers=ctx.admin
            )
        )
    body = line(
        ctx, largo=largo, ancho=ancho, espesor_mm=esp, porcentaje_utilidad=util, minutos_laser=mins
    )
    out = await ok(await ctx.client.post("/precios/preview", json=body, headers=ctx.vend))
    assert out["precio_unitario"] == unit, case
    assert out["subtotal"] == unit


@pytest.mark.spec("AC-P01", "AC-P10", "AC-P15")
async def test_price_breakdown(ctx: Ctx) -> None:
    out = await ok(await ctx.client.post("/precios/preview", json=line(ctx), headers=ctx.vend))
    assert (out["area_m2"], out["costo_material"], out["utilidad"], out["costo_laser"]) == (
        "0.06",
        "27.00",
        "10.80",
        "150.00",
    )
    p10 = line(ctx, largo="12.5", ancho="60", espesor_mm=6, porcentaje_utilidad=20, minutos_laser=1)
    out = await ok(await ctx.client.post("/precios/preview", json=p10, headers=ctx.vend))
    assert (out["costo_material"], out["utilidad"], out["costo_laser"]) == (
        "73.54",
        "14.71",
        "15.00",
    )
    p15 = line(ctx, largo="5", ancho="5", porcentaje_utilidad=20, minutos_laser=1)
    out = await ok(await ctx.client.post("/precios/preview", json=p15, headers=ctx.vend))
    assert (out["costo_material"], out["utilidad"], out["precio_unitario"]) == (
        "1.13",
        "0.23",
        "16.35",
    )


@pytest.mark.spec("AC-P06")
async def test_fixed_price_ignores_dimensions(ctx: Ctx) -> None:
    body = line(ctx, producto_id=ctx.ids["pf"], cantidad=3, largo="999", espesor_mm=77)
    out = await ok(await ctx.client.post("/precios/preview", json=body, headers=ctx.vend))
    assert (out["precio_unitario"], out["subtotal"]) == ("150.00", "450.00")
    sale = await sell(ctx, line(ctx, producto_id=ctx.ids["pf"], cantidad=3, subtotal="450.00"))
    assert sale["total"] == "450.00"  # AC-D29


@pytest.mark.spec("AC-P07")
async def test_missing_thickness(ctx: Ctx) -> None:
    r = await ctx.client.delete("/configuracion/tabulador/10", headers=ctx.admin)
    assert r.status_code == 204
    body = line(ctx, largo="25", ancho="25", espesor_mm=10, minutos_laser=5)
    p = problem(
        await ctx.client.post("/precios/preview", json=body, headers=ctx.vend),
        422,
        "ESPESOR_SIN_TABULADOR",
    )
    assert p["espesor_mm"] == 10
    p = problem(
        await ctx.client.post("/ventas", json={"carrito": [body]}, headers=ctx.vend),
        422,
        "ESPESOR_SIN_TABULADOR",
    )
    assert p["field"] == "carrito[0].espesor_mm"
    assert await ctx.count(Venta) == 0


@pytest.mark.spec("AC-P12")
async def test_quantity_after_rounding(ctx: Ctx) -> None:
    body = line(
        ctx,
        largo="12.5",
        ancho="60",
        espesor_mm=6,
        porcentaje_utilidad=20,
        minutos_laser=1,
        cantidad=4,
    )
    out = await ok(await ctx.client.post("/precios/preview", json=body, headers=ctx.vend))
    assert (out["precio_unitario"], out["subtotal"]) == ("103.25", "413.00")
    sale = await sell(ctx, {**body, "subtotal": "413.00"}, permitir_backorder=True)
    assert sale["total"] == "413.00"


@pytest.mark.spec("AC-P13")
async def test_zero_price_is_rejected(ctx: Ctx) -> None:
    body = line(ctx, largo="0", ancho="0", minutos_laser=0)
    problem(
        await ctx.client.post("/ventas", json={"carrito": [body]}, headers=ctx.vend),
        422,
        "PRECIO_CERO",
    )
    assert await ctx.count(Venta) == 0


@pytest.mark.spec("AC-P14")
async def test_tampered_subtotal(ctx: Ctx) -> None:
    r = await ctx.client.post(
        "/ventas", json={"carrito": [line(ctx, subtotal=1.00)]}, headers=ctx.vend
    )
    p = problem(r, 422, "PRECIO_DESACTUALIZADO")
    assert (p["precio_unitario"], p["subtotal"]) == ("187.80", "187.80")
    assert p["errors"][0]["field"] == "carrito[0].subtotal"
    assert await ctx.count(Venta) == 0
    assert await ctx.events("SaleConfirmed") == []
    await sell(ctx, line(ctx, subtotal="187.80"))  # exact match accepted


@pytest.mark.spec("AC-D13")
async def test_price_preview_answers_the_canonical_price(ctx: Ctx) -> None:
    # the legacy AJAX endpoint always failed; the preview answers with the canonical price
    body = {
        "producto_id": ctx.ids["p"],
        "largo": "30",
        "ancho": "20",
        "espesor": 3,
        "minutos_lazer": 10,
    }
    out = await ok(await ctx.client.post("/precios/preview", json=body, headers=ctx.vend))
    assert out["precio_unitario"] == "187.80"  # product default utility 40 (DECIDE-A3)


# ------------------------------------------------------------------ AC-S* stock and sales


@pytest.mark.spec("AC-S01")
async def test_decrement_and_alert(ctx: Ctx) -> None:
    m = ctx.ids["m"]
    r1 = await sell(ctx, line(ctx, cantidad=4))
    assert r1["alertas_stock"] == []
    await ctx.wait_stock(m, 6)
    assert await ctx.events("StockLow") == []
    r2 = await sell(ctx, line(ctx, cantidad=4))
    assert r2["alertas_stock"] == [{"nombre": "M", "actual": 2, "minimo": 3}]
    await ctx.wait_stock(m, 2)
    await until(lambda: _has_events(ctx, "StockLow", 1))
    lows = await ctx.events("StockLow")
    assert [(e["id_material"], e["nombre"], e["actual"], e["minimo"]) for e in lows] == [
        (m, "M", 2, 3)
    ]
    r3 = await sell(ctx, line(ctx, cantidad=1))
    assert r3["alertas_stock"] == [{"nombre": "M", "actual": 1, "minimo": 3}]
    await ctx.wait_stock(m, 1)
    await ctx.wait_consumed(3)
    assert len(await ctx.events("StockLow")) == 1


async def _has_events(ctx: Ctx, name: str, n: int) -> bool:
    return len(await ctx.events(name)) >= n


@pytest.mark.spec("AC-S02")
async def test_oversell_and_backorder(ctx: Ctx) -> None:
    m = ctx.ids["m"]
    await ok(
        await ctx.client.post(
            f"/materiales/{m}/ajuste", json={"cantidad": -8, "nota": "merma"}, headers=ctx.admin
        )
    )
    assert await ctx.stock(m) == 2
    lows_before = len(await ctx.events("StockLow"))
    r = await ctx.client.post(
        "/ventas", json={"carrito": [line(ctx, cantidad=5)]}, headers=ctx.vend
    )
    p = problem(r, 409, "STOCK_INSUFICIENTE")
    assert (p["material"], p["disponible"], p["solicitado"]) == ("M", 2, 5)
    assert await ctx.count(Venta) == 0
    assert await ctx.count(DetalleVenta) == 0
    assert await ctx.events("SaleConfirmed") == []
    assert await ctx.stock(m) == 2
    await sell(ctx, line(ctx, cantidad=5), permitir_backorder=True)
    await ctx.wait_stock(m, -3)
    await until(lambda: _has_events(ctx, "StockShortage", 1))
    short = await ctx.events("StockShortage")
    assert [(e["id_material"], e["stock_actual"]) for e in short] == [(m, -3)]
    assert len(await ctx.events("StockLow")) == lows_before


@pytest.mark.spec("AC-S03")
async def test_concurrent_sales_never_lose_an_update(ctx: Ctx) -> None:
    m = ctx.ids["m"]
    results = await asyncio.gather(
        sell(ctx, line(ctx, cantidad=4)), sell(ctx, line(ctx, cantidad=4))
    )
    assert len(results) == 2
    await ctx.wait_stock(m, 2)
    await ctx.wait_consumed(2)
    assert len(await ctx.events("StockLow")) == 1


@pytest.mark.spec("AC-S03")
async def test_overshoot_when_both_confirmed_first(ctx: Ctx) -> None:
    """Two sales of 6 on stock 10 before either is consumed: available-to-promise (issue 15
    item 12) refuses the second (6 are held: disponible 4) unless it allows a backorder; the
    backorder one drives the stock to −2 once both are applied: one StockShortage, one
    StockLow. (The consumer is paused so that both confirm first.)"""
    m = ctx.ids["m"]
    runtime = ctx.app.state.runtime
    runner = next(r for r in runtime.consumers if r.spec.group_id == "sales.stock")
    await runner.stop()
    await sell(ctx, line(ctx, cantidad=6))
    r = await ctx.client.post(
        "/ventas", json={"carrito": [line(ctx, cantidad=6)]}, headers=ctx.vend
    )
    assert problem(r, 409, "STOCK_INSUFICIENTE")["disponible"] == 4
    await sell(ctx, line(ctx, cantidad=6), permitir_backorder=True)
    await runner.start()
    await ctx.wait_stock(m, -2)
    await until(lambda: _has_events(ctx, "StockLow", 1))
    await until(lambda: _has_events(ctx, "StockShortage", 1))
    assert len(await ctx.events("StockShortage")) == 1
    lows = await ctx.events("StockLow")
    assert [(e["anterior"], e["actual"]) for e in lows] == [(4, -2)]


@pytest.mark.spec("AC-S03")
async def test_second_rejected_after_consumption(ctx: Ctx) -> None:
    m = ctx.ids["m"]
    await sell(ctx, line(ctx, cantidad=6))
    await ctx.wait_stock(m, 4)
    r = await ctx.client.post(
        "/ventas", json={"carrito": [line(ctx, cantidad=6)]}, headers=ctx.vend
    )
    problem(r, 409, "STOCK_INSUFICIENTE")
    assert await ctx.stock(m) == 4


@pytest.mark.spec("AC-S04")
async def test_same_material_two_lines(ctx: Ctx) -> None:
    m = ctx.ids["m"]
    await ok(
        await ctx.client.post(f"/materiales/{m}/conteo", json={"contado": 5}, headers=ctx.admin)
    )
    r = await ctx.client.post(
        "/ventas",
        json={"carrito": [line(ctx, cantidad=3), line(ctx, cantidad=3)]},
        headers=ctx.vend,
    )
    p = problem(r, 409, "STOCK_INSUFICIENTE")
    assert p["solicitado"] == 6
    assert await ctx.count(Venta) == 0
    assert await ctx.stock(m) == 5


@pytest.mark.spec("AC-S05")
async def test_unknown_material_writes_nothing(ctx: Ctx) -> None:
    lines = [line(ctx), line(ctx, material_id=ctx.ids["n"]), line(ctx, material_id=9999)]
    r = await ctx.client.post("/ventas", json={"carrito": lines}, headers=ctx.vend)
    p = problem(r, 404, "MATERIAL_NO_EXISTE")
    assert p["field"] == "carrito[2].material_id"
    assert p["errors"][0]["field"] == "carrito[2].material_id"
    assert await ctx.count(Venta) == 0
    assert await ctx.events("SaleConfirmed") == []
    assert await ctx.stock(ctx.ids["m"]) == 10
    assert await ctx.stock(ctx.ids["n"]) == 100


@pytest.mark.spec("AC-S06")
async def test_balance_and_abono_above_balance_refused(ctx: Ctx) -> None:
    sale = await sell(
        ctx, line(ctx), line(ctx, cantidad=4, subtotal="751.20"), monto_abonado="500.00"
    )
    assert (sale["total"], sale["saldo_restante"], sale["estado_pago"]) == (
        "939.00",
        "439.00",
        "parcial",
    )
    vid = sale["venta_id"]
    out = await ok(
        await ctx.client.post(
            f"/ventas/{vid}/abonos", json={"monto": "439.00", "metodo": "tarjeta"}, headers=ctx.vend
        ),
        201,
    )
    assert (out["saldo_restante"], out["estado_pago"]) == ("0.00", "pagada")
    r = await ctx.client.post(f"/ventas/{vid}/abonos", json={"monto": "0.01"}, headers=ctx.vend)
    problem(r, 422, "ABONO_EXCEDE_SALDO")
    detail = await ok(await ctx.client.get(f"/ventas/{vid}", headers=ctx.vend))
    assert [a["monto"] for a in detail["abonos"]] == ["500.00", "439.00"]
    assert detail["estatus_legacy"] == "pagada"
    assert len(detail["lineas"]) == 2  # AC-D18: POS lines rendered


@pytest.mark.spec("AC-S07")
async def test_delivering_with_balance_needs_admin_and_reason(ctx: Ctx) -> None:
    sale = await sell(ctx, line(ctx), line(ctx, cantidad=4), monto_abonado="500.00")
    vid = sale["venta_id"]
    await ok(
        await ctx.client.post(
            f"/ventas/{vid}/estatus", json={"estatus": "en_produccion"}, headers=ctx.vend
        )
    )
    r = await ctx.client.post(
        f"/ventas/{vid}/estatus", json={"estatus": "entregada"}, headers=ctx.vend
    )
    p = problem(r, 409, "SALDO_PENDIENTE")
    assert p["saldo_restante"] == "439.00"
    out = await ok(
        await ctx.client.post(
            f"/ventas/{vid}/estatus",
            json={"estatus": "entregada", "motivo": "cliente frecuente"},
            headers=ctx.admin,
        )
    )
    assert out["estatus"] == "entregada"
    detail = await ok(await ctx.client.get(f"/ventas/{vid}", headers=ctx.vend))
    last = detail["auditoria"][-1]
    assert (last["desde"], last["hacia"], last["motivo"], last["usuario"]) == (
        "en_produccion",
        "entregada",
        "cliente frecuente",
        "admin1",
    )


@pytest.mark.parametrize("consume_first", [True, False])
@pytest.mark.spec("AC-S08")
async def test_cancellation_returns_stock(ctx: Ctx, consume_first: bool) -> None:
    m = ctx.ids["m"]
    runner = next(r for r in ctx.app.state.runtime.consumers if r.spec.group_id == "sales.stock")
    if not consume_first:
        await runner.stop()
    sale = await sell(ctx, line(ctx, cantidad=4), monto_abonado="100.00")
    vid = sale["venta_id"]
    if consume_first:
        await ctx.wait_stock(m, 6)
    r = await ctx.client.post(f"/ventas/{vid}/cancelar", json={"motivo": "x"}, headers=ctx.vend)
    assert r.status_code == 403
    out = await ok(
        await ctx.client.post(
            f"/ventas/{vid}/cancelar", json={"motivo": "cliente canceló"}, headers=ctx.admin
        )
    )
    assert out["estatus"] == "cancelada"
    if not consume_first:
        await runner.start()
    await ctx.wait_consumed(2)
    await ctx.wait_stock(m, 10)
    detail = await ok(await ctx.client.get(f"/ventas/{vid}", headers=ctx.vend))
    assert [a["estado"] for a in detail["abonos"]] == ["por_reembolsar"]
    assert detail["auditoria"][-1]["motivo"] == "cliente canceló"


@pytest.mark.spec("AC-S09")
async def test_anonymous_is_401_and_seller_on_admin_routes_403(ctx: Ctx) -> None:
    r = await ctx.client.get("/dashboard")
    problem(r, 401, "unauthorized")
    r = await ctx.client.get("/configuracion", headers=ctx.vend)
    problem(r, 403, "forbidden")
    await ok(await ctx.client.get("/dashboard", headers=ctx.admin))


# ------------------------------------------------------------------ AC-D* and bad input


def _routes() -> list[APIRoute]:
    return [r for r in api.router.routes if isinstance(r, APIRoute)]


@pytest.mark.spec("AC-D01")
async def test_every_endpoint_requires_a_token(ctx: Ctx) -> None:
    for route in _routes():
        path = route.path.replace("{id_venta}", "1").replace("{id_cotizacion}", "1")
        path = path.replace("{id_material}", "1").replace("{id_producto}", "1")
        path = path.replace("{id_cliente}", "1").replace("{espesor_mm}", "3")
        for method in route.methods:
            r = await ctx.client.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.status_code)


ADMIN_ONLY = {
    ("POST", "/productos"),
    ("PATCH", "/productos/{id_producto}"),
    ("DELETE", "/productos/{id_producto}"),
    ("POST", "/materiales"),
    ("PATCH", "/materiales/{id_material}"),
    ("DELETE", "/materiales/{id_material}"),
    ("POST", "/materiales/{id_material}/reabasto"),
    ("POST", "/materiales/{id_material}/ajuste"),
    ("POST", "/materiales/{id_material}/conteo"),
    ("GET", "/configuracion"),
    ("PUT", "/configuracion/tarifa"),
    ("PUT", "/configuracion/tabulador/{espesor_mm}"),
    ("DELETE", "/configuracion/tabulador/{espesor_mm}"),
    ("POST", "/ventas/{id_venta}/cancelar"),
    ("GET", "/reportes/ventas"),
    ("GET", "/reportes/cuentas-por-cobrar"),
    ("GET", "/dashboard"),
}


@pytest.mark.spec("AC-D01")
async def test_admin_only_endpoints_refuse_a_seller(ctx: Ctx) -> None:
    seen = set()
    for route in _routes():
        for method in route.methods:
            if (method, route.path) not in ADMIN_ONLY:
                continue
            seen.add((method, route.path))
            path = route.path.replace("{id_venta}", "1").replace("{id_material}", "1")
            path = path.replace("{id_producto}", "1").replace("{espesor_mm}", "3")
            r = await ctx.client.request(method, path, json={}, headers=ctx.vend)
            assert r.status_code == 403, (method, path, r.status_code)
    assert seen == ADMIN_ONLY


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"largo": "-1"}, "largo"),
        ({"ancho": "-0.5"}, "ancho"),
        ({"porcentaje_utilidad": 5000}, "porcentaje_utilidad"),
        ({"porcentaje_utilidad": -1}, "porcentaje_utilidad"),
        ({"minutos_laser": 2.5}, "minutos_laser"),  # AC-D05
        ({"cantidad": 0}, "cantidad"),
        ({"espesor_mm": "abc"}, "espesor_mm"),
        ({"largo": "1.005"}, "largo"),
    ],
)
async def test_bad_line_input_names_field(ctx: Ctx, patch: dict[str, Any], field: str) -> None:
    r = await ctx.client.post("/ventas", json={"carrito": [line(ctx, **patch)]}, headers=ctx.vend)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = [e["field"] for e in r.json()["errors"]]
    assert any(f.endswith(field) for f in fields), fields
    assert await ctx.count(Venta) == 0


@pytest.mark.spec("AC-D09")
async def test_invalid_sale_payloads_are_rejected_and_write_nothing(ctx: Ctx) -> None:
    r = await ctx.client.post(
        "/ventas", json={"carrito": [line(ctx)], "estatus": "pagada"}, headers=ctx.vend
    )
    assert r.status_code == 422  # status is not settable on create
    r = await ctx.client.post(
        "/ventas", json={"carrito": [line(ctx)], "fecha_entrega": "2026-13-45"}, headers=ctx.vend
    )
    assert any(e["field"].endswith("fecha_entrega") for e in r.json()["errors"])
    r = await ctx.client.post(
        "/ventas", json={"carrito": [line(ctx)], "monto_abonado": "-5"}, headers=ctx.vend
    )
    assert r.status_code == 422
    r = await ctx.client.post(
        "/ventas", json={"carrito": [line(ctx)], "monto_abonado": "187.81"}, headers=ctx.vend
    )
    problem(r, 422, "ABONO_EXCEDE_SALDO")
    r = await ctx.client.post("/ventas", json={"carrito": []}, headers=ctx.vend)
    assert r.status_code == 422
    assert await ctx.count(Venta) == 0


async def test_illegal_state_change(ctx: Ctx) -> None:
    sale = await sell(ctx, line(ctx))
    vid = sale["venta_id"]
    r = await ctx.client.post(
        f"/ventas/{vid}/estatus", json={"estatus": "entregada"}, headers=ctx.admin
    )
    problem(r, 409, "TRANSICION_INVALIDA")
    r = await ctx.client.post(
        f"/ventas/{vid}/estatus", json={"estatus": "pagada"}, headers=ctx.vend
    )
    assert r.status_code == 422
    r = await ctx.client.post(
        f"/ventas/{vid}/estatus", json={"estatus": "en_produccion", "version": 9}, headers=ctx.vend
    )
    problem(r, 409, "VERSION_CONFLICTO")
    problem(await ctx.client.get("/ventas/999", headers=ctx.vend), 404, "VENTA_NO_EXISTE")


@pytest.mark.spec("AC-D27")
async def test_json_content_type_with_parameters_is_accepted(ctx: Ctx) -> None:
    import json

    r = await ctx.client.post(
        "/ventas",
        content=json.dumps({"carrito": [line(ctx)]}),
        headers={**ctx.vend, "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201, r.text


async def test_client_creation_and_eventual(ctx: Ctx) -> None:
    r = await ctx.client.post("/clientes", json={"nombre": "   "}, headers=ctx.vend)
    p = problem(r, 422, "NOMBRE_REQUERIDO")
    assert p["field"] == "nombre"
    assert p["detail"] == "El nombre es obligatorio"
    out = await ok(
        await ctx.client.post(
            "/clientes", json={"nombre": "Ana", "telefono": "55 1234 5678"}, headers=ctx.vend
        ),
        201,
    )
    assert out["ok"] is True
    assert out["telefono"] == "+525512345678"  # DECIDE-A6
    problem(
        await ctx.client.post("/clientes", json={"nombre": "B", "email": "nope"}, headers=ctx.vend),
        422,
        "EMAIL_INVALIDO",
    )
    sale = await sell(ctx, line(ctx), cliente_nuevo={"nombre": "Pasante", "es_eventual": True})
    assert sale["ok"] is True
    names = [c["nombre"] for c in await ok(await ctx.client.get("/clientes", headers=ctx.vend))]
    assert names == ["Ana"]  # AC-D19
    problem(
        await ctx.client.post(
            "/ventas", json={"carrito": [line(ctx)], "cliente_id": 999}, headers=ctx.vend
        ),
        404,
        "CLIENTE_NO_EXISTE",
    )


async def test_client_search_folds_every_letter_and_reads_phone_and_email(ctx: Ctx) -> None:
    for nombre, email in (("JOSÉ ÑÚÑEZ", "jn@example.com"), ("Jose Nunez", None)):
        body = {"nombre": nombre, "telefono": "55 1234 5678"} | ({"email": email} if email else {})
        await ok(await ctx.client.post("/clientes", json=body, headers=ctx.vend), 201)

    async def found(q: str) -> list[str]:
        r = await ctx.client.get("/clientes", params={"q": q}, headers=ctx.vend)
        return sorted(c["nombre"] for c in await ok(r))

    # "josé ñúñez" must match "JOSÉ ÑÚÑEZ": SQLite's and a C-locale PostgreSQL's lower() fold
    # ASCII only; accents are not ignored ("jose" is another name)
    assert await found("josé ñúñez") == ["JOSÉ ÑÚÑEZ"]
    assert await found("Ñúñ") == ["JOSÉ ÑÚÑEZ"]
    assert await found("jose") == ["Jose Nunez"]
    assert await found("JN@EXAMPLE") == ["JOSÉ ÑÚÑEZ"]
    assert await found("+52551234") == ["JOSÉ ÑÚÑEZ", "Jose Nunez"]
    assert await found("%") == []


async def test_catalog_rules(ctx: Ctx) -> None:
    r = await ctx.client.post(
        "/productos", json={"nombre": "X", "precio_fijo": "0.00"}, headers=ctx.admin
    )
    assert r.status_code == 422  # AC-D28
    r = await ctx.client.post(
        "/materiales",
        json={"descripcion": "Z", "stock_actual": -1, "stock_minimo": 1},
        headers=ctx.admin,
    )
    assert r.status_code == 422  # AC-D25
    r = await ctx.client.put(
        "/configuracion/tarifa", json={"tarifa_laser_minuto": "-1"}, headers=ctx.admin
    )
    assert r.status_code == 422
    # AC-D14: one factor per thickness (PUT upserts; no duplicates possible)
    await ok(
        await ctx.client.put(
            "/configuracion/tabulador/3", json={"factor_costo": "500"}, headers=ctx.admin
        )
    )
    cfg = await ok(await ctx.client.get("/configuracion", headers=ctx.admin))
    assert [t["espesor_mm"] for t in cfg["tabulador"]] == [3, 4, 5, 6, 10]
    # optimistic concurrency on the price configuration
    r = await ctx.client.put(
        "/configuracion/tarifa",
        json={"tarifa_laser_minuto": "16.00", "version": 1},
        headers=ctx.admin,
    )
    problem(r, 409, "VERSION_CONFLICTO")
    # material deletion refused while referenced; product soft-deleted (AC-D16)
    await sell(ctx, line(ctx))
    r = await ctx.client.delete(f"/materiales/{ctx.ids['m']}", headers=ctx.admin)
    p = problem(r, 409, "MATERIAL_REFERENCIADO")
    assert p["detail"] == 'No se puede eliminar "M": tiene 0 cotización(es) y 1 venta(s) asociadas.'
    assert (
        await ctx.client.delete(f"/productos/{ctx.ids['p']}", headers=ctx.admin)
    ).status_code == 204
    assert await ctx.count(DetalleVenta) == 1
    problem(
        await ctx.client.post("/precios/preview", json=line(ctx), headers=ctx.vend),
        422,
        "PRODUCTO_INACTIVO",
    )


async def test_quotes_flow(ctx: Ctx) -> None:
    q = await ok(
        await ctx.client.post(
            "/cotizaciones", json={"linea": line(ctx, cantidad=2)}, headers=ctx.vend
        ),
        201,
    )
    assert (q["estado"], q["monto_total"], q["folio"]) == (
        "borrador",
        "375.60",
        f"COT-{q['id_cotizacion']:04d}",
    )
    qid = q["id_cotizacion"]
    problem(
        await ctx.client.post(f"/cotizaciones/{qid}/venta", headers=ctx.vend),
        409,
        "COTIZACION_NO_ACEPTADA",
    )
    await ok(
        await ctx.client.put(
            "/configuracion/tarifa", json={"tarifa_laser_minuto": "99.00"}, headers=ctx.admin
        )
    )
    for estado in ("enviada", "aceptada"):
        await ok(
            await ctx.client.post(
                f"/cotizaciones/{qid}/estado", json={"estado": estado}, headers=ctx.vend
            )
        )
    sale = await ok(await ctx.client.post(f"/cotizaciones/{qid}/venta", headers=ctx.vend), 201)
    assert sale["total"] == "375.60"  # frozen price (AC-D15)
    problem(
        await ctx.client.post(f"/cotizaciones/{qid}/venta", headers=ctx.vend),
        409,
        "COTIZACION_YA_CONVERTIDA",
    )
    await ctx.wait_stock(ctx.ids["m"], 8)  # AC-D26: same stock rule as POS
    r = await ctx.client.post(
        "/cotizaciones", json={"linea": line(ctx), "vigencia_hasta": "2000-01-01"}, headers=ctx.vend
    )
    assert r.status_code == 422


async def test_reports_json_and_csv(ctx: Ctx) -> None:
    await sell(ctx, line(ctx), monto_abonado="100.00")
    sale = await sell(ctx, line(ctx, cantidad=8))
    await ctx.wait_stock(ctx.ids["m"], 1)
    today = (await ok(await ctx.client.get(f"/ventas/{sale['venta_id']}", headers=ctx.vend)))[
        "fecha_venta"
    ]
    rows = await ok(
        await ctx.client.get(
            f"/reportes/ventas?desde={today}&hasta={today}&periodo=dia", headers=ctx.admin
        )
    )
    assert rows == [
        {"periodo": today, "ventas": 2, "total_vendido": "1690.20", "ingresos": "100.00"}
    ]
    r = await ctx.client.get(
        f"/reportes/ventas?desde={today}&hasta={today}&formato=csv", headers=ctx.admin
    )
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0] == "periodo,ventas,total_vendido,ingresos"
    cxc = await ok(await ctx.client.get("/reportes/cuentas-por-cobrar", headers=ctx.admin))
    assert cxc[0]["saldo"] == "1590.20"
    low = await ok(await ctx.client.get("/reportes/bajo-stock", headers=ctx.vend))
    assert low == [
        {"id_material": ctx.ids["m"], "nombre": "M", "actual": 1, "minimo": 3, "faltante": 2}
    ]
    csv_low = await ctx.client.get("/reportes/bajo-stock?formato=csv", headers=ctx.vend)
    assert csv_low.text.splitlines()[1] == f"{ctx.ids['m']},M,1,3,2"
    dash = await ok(await ctx.client.get("/dashboard", headers=ctx.admin))
    assert (dash["ingresos_mes"], dash["materiales_bajos"]) == ("100.00", 1)
    r = await ctx.client.get(f"/reportes/ventas?desde={today}&hasta=2000-01-01", headers=ctx.admin)
    assert r.status_code == 422


async def test_stock_ledger_via_api(ctx: Ctx) -> None:
    m = ctx.ids["m"]
    await ok(
        await ctx.client.post(f"/materiales/{m}/reabasto", json={"cantidad": 5}, headers=ctx.admin)
    )
    problem(
        await ctx.client.post(f"/materiales/{m}/ajuste", json={"cantidad": -1}, headers=ctx.admin),
        422,
        "MOTIVO_REQUERIDO",
    )
    await sell(ctx, line(ctx, cantidad=2))
    await ctx.wait_stock(m, 13)
    ledger = await ok(await ctx.client.get(f"/materiales/{m}/movimientos", headers=ctx.vend))
    assert [(x["motivo"], x["cantidad"], x["saldo_resultante"]) for x in ledger] == [
        ("venta", -2, 13),
        ("reabasto", 5, 15),
        ("alta", 10, 10),
    ]


async def test_demo_seed_is_idempotent(tmp_path: Path) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from sales import demo
    from sales.models import Base, Material
    from service_defaults.db import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sm = async_sessionmaker(engine, expire_on_commit=False)
    await demo.seed(sm)
    await demo.seed(sm)
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Venta)) == 1
        assert await s.scalar(select(func.count()).select_from(Material)) == 3
    await engine.dispose()


@pytest.mark.spec("AC-D08")
async def test_one_stock_alert_per_material(ctx: Ctx) -> None:
    await ok(
        await ctx.client.post(
            f"/materiales/{ctx.ids['m']}/conteo", json={"contado": 6}, headers=ctx.admin
        )
    )
    sale = await sell(
        ctx, line(ctx, cantidad=2), line(ctx, cantidad=2), line(ctx, material_id=ctx.ids["n"])
    )
    assert sale["alertas_stock"] == [{"nombre": "M", "actual": 2, "minimo": 3}]
    await ctx.wait_stock(ctx.ids["m"], 2)
    await until(lambda: _has_events(ctx, "StockLow", 1))
    assert len(await ctx.events("StockLow")) == 1


JSON = "application/json"


async def test_hot_routes_answer_everything_else_like_the_regular_path(ctx: Ctx) -> None:
    body = json.dumps({"carrito": [line(ctx)]})
    other = bearer(ctx.settings, "x", "orders.solicitante")
    r = await ctx.client.post("/ventas", content=body, headers={**other, "Content-Type": JSON})
    problem(r, 403, "forbidden")
    r = await ctx.client.post(
        "/ventas", content=body[:-3], headers={**ctx.vend, "Content-Type": JSON}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"].startswith("body")
    r = await ctx.client.post("/ventas", content=body, headers=ctx.vend)  # no content type
    assert r.status_code == 422
    # a JSON subtype is not the hot path's case, but the regular path accepts it
    r = await ctx.client.post(
        "/ventas", content=body, headers={**ctx.vend, "Content-Type": "application/vnd.x+json"}
    )
    assert r.status_code == 201, r.text
    assert await ctx.count(Venta) == 1


def test_hot_route_needs_a_body_the_request_and_a_role_checked_user() -> None:
    async def with_session(
        body: schemas.VentaBody, request: Request, session: deps.Session
    ) -> Response:
        raise NotImplementedError

    async def without_user(body: schemas.VentaBody, request: Request) -> Response:
        raise NotImplementedError

    for endpoint in (with_session, without_user):
        with pytest.raises(TypeError):
            hot_route(endpoint)
    hot = {r.path for r in _routes() if getattr(r.endpoint, "__nexo_hot__", False)}
    assert hot == {"/ventas", "/precios/preview"}


# ------------------------------------------------------------------ Idempotency-Key


def keyed(c: Ctx, key: str, who: dict[str, str] | None = None) -> dict[str, str]:
    return {**(who or c.vend), "Idempotency-Key": key}


async def sales_with_reference(c: Ctx, ref: str) -> int:
    rows = await c.db(select(func.count()).select_from(Abono).where(Abono.referencia == ref))
    return int(rows[0][0])


async def test_retried_sale_with_the_same_key_is_replayed_not_repeated(ctx: Ctx) -> None:
    c = ctx
    body = {"carrito": [line(c, cantidad=2)], "monto_abonado": "10.00", "referencia_pago": "K1"}
    first = await c.client.post("/ventas", json=body, headers=keyed(c, "K1"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await c.client.post("/ventas", json=body, headers=keyed(c, "K1"))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await sales_with_reference(c, "K1") == 1
    assert len(await c.events("SaleConfirmed")) == 1
    await c.wait_stock(c.ids["m"], 8)
    # the same cart without a key is a new sale
    await sell(c, line(c, cantidad=2), monto_abonado="10.00", referencia_pago="K1")
    assert await sales_with_reference(c, "K1") == 2


async def test_key_reused_with_another_body_is_refused_with_422(ctx: Ctx) -> None:
    c = ctx
    await ok(
        await c.client.post("/ventas", json={"carrito": [line(c)]}, headers=keyed(c, "K2")), 201
    )
    r = await c.client.post(
        "/ventas", json={"carrito": [line(c, cantidad=2)]}, headers=keyed(c, "K2")
    )
    body = problem(r, 422, "idempotency-key-reused")
    assert body["field"] == "Idempotency-Key"
    # another route under the same key is another request too
    r = await c.client.post(
        "/materiales", json={"descripcion": "X", "stock_actual": 1}, headers=keyed(c, "K2", c.admin)
    )
    assert r.status_code == 201, "keys are scoped per principal: admin1 never used K2"
    assert await c.count(Venta) == 1


async def test_keys_are_scoped_per_principal(ctx: Ctx) -> None:
    c = ctx
    other = bearer(c.settings, "vendedor2", "sales.vendedor")
    for who in (c.vend, other):
        r = await c.client.post("/ventas", json={"carrito": [line(c)]}, headers=keyed(c, "K3", who))
        assert r.status_code == 201
        assert "idempotent-replayed" not in r.headers
    assert await c.count(Venta) == 2


async def test_a_refused_request_stores_nothing_and_its_retry_runs_again(ctx: Ctx) -> None:
    c = ctx
    body = {"carrito": [line(c, cantidad=11)]}  # stock 10
    problem(
        await c.client.post("/ventas", json=body, headers=keyed(c, "K4")), 409, "STOCK_INSUFICIENTE"
    )
    await ok(
        await c.client.post(
            f"/materiales/{c.ids['m']}/reabasto", json={"cantidad": 5}, headers=c.admin
        )
    )
    r = await c.client.post("/ventas", json=body, headers=keyed(c, "K4"))
    assert r.status_code == 201
    assert "idempotent-replayed" not in r.headers
    assert await c.count(Venta) == 1


async def test_concurrent_requests_with_one_key_make_one_sale(ctx: Ctx) -> None:
    c = ctx
    body = {"carrito": [line(c, material_id=c.ids["n"])]}
    answers = await asyncio.gather(
        *(c.client.post("/ventas", json=body, headers=keyed(c, "K5")) for _ in range(8))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes.count(201) >= 1, codes
    assert set(codes) <= {201, 409}, codes
    for r in answers:
        if r.status_code == 409:
            problem(r, 409, "idempotency-key-in-progress")
            assert r.headers["retry-after"] == "1"
    assert await c.count(Venta) == 1
    created = {r.text for r in answers if r.status_code == 201}
    assert len(created) == 1, "every 201 is the one sale's answer"


async def test_expired_key_is_forgotten_and_purged(ctx: Ctx) -> None:
    c = ctx
    from service_defaults.idempotency import IdempotencyStore

    body = {"carrito": [line(c)]}
    await ok(await c.client.post("/ventas", json=body, headers=keyed(c, "K6")), 201)
    store: IdempotencyStore = c.app.state.idempotency
    table = store.table
    async with c.app.state.sessionmaker() as s:
        await s.execute(table.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await s.commit()
    r = await c.client.post("/ventas", json=body, headers=keyed(c, "K6"))
    assert r.status_code == 201
    assert "idempotent-replayed" not in r.headers
    assert await c.count(Venta) == 2
    assert await store.purge_expired(datetime.now(UTC) + timedelta(days=2)) == 1
    assert await c.count(table) == 0


async def test_invalid_key_is_a_400_naming_the_header(ctx: Ctx) -> None:
    c = ctx
    r = await c.client.post("/ventas", json={"carrito": [line(c)]}, headers=keyed(c, "x" * 256))
    assert problem(r, 400, "idempotency-key-invalid")["field"] == "Idempotency-Key"
    assert await c.count(Venta) == 0
