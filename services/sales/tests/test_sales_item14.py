"""Issue 15 item 14 (sales), through the HTTP API on SQLite and PostgreSQL: retiring and
re-activating a product or material, rescheduling a sale's delivery date, recording the refund
of a cancelled sale's abono."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nexo_testing import app_client, bearer, ok
from sales.main import create_app
from sales.models import Auditoria, DetalleVenta
from sales.settings import SalesSettings


@dataclass
class Ctx:
    client: httpx.AsyncClient
    sessionmaker: Any
    vend: dict[str, str]
    admin: dict[str, str]
    ids: dict[str, int]

    async def audit(self, entidad: str, entidad_id: int) -> list[tuple[str, Any, Any, Any]]:
        async with self.sessionmaker() as s:
            rows = await s.execute(
                select(Auditoria.accion, Auditoria.desde, Auditoria.hacia, Auditoria.motivo)
                .where(Auditoria.entidad == entidad, Auditoria.entidad_id == entidad_id)
                .order_by(Auditoria.id)
            )
            return [tuple(r) for r in rows.all()]


@pytest.fixture
async def ctx(database_url: str) -> AsyncIterator[Ctx]:
    settings = SalesSettings(env="test", database_url=database_url, transport="memory")
    app = create_app(settings)
    async with app_client(app, "http://sales", startup_timeout=30) as client:
        admin = bearer(settings, "admin1", "sales.admin")
        await ok(
            await client.put(
                "/configuracion/tarifa", json={"tarifa_laser_minuto": "15.00"}, headers=admin
            )
        )
        await ok(
            await client.put(
                "/configuracion/tabulador/3", json={"factor_costo": "450.0000"}, headers=admin
            )
        )
        p = await ok(
            await client.post("/productos", json={"nombre": "Letrero"}, headers=admin), 201
        )
        m = await ok(
            await client.post(
                "/materiales",
                json={"descripcion": "M", "stock_actual": 50, "stock_minimo": 3},
                headers=admin,
            ),
            201,
        )
        yield Ctx(
            client,
            app.state.sessionmaker,
            bearer(settings, "vendedor1", "sales.vendedor"),
            admin,
            {"p": p["id_producto"], "m": m["id_material"]},
        )


def line(c: Ctx) -> dict[str, Any]:
    return {
        "producto_id": c.ids["p"],
        "material_id": c.ids["m"],
        "largo": "30",
        "ancho": "20",
        "espesor_mm": 3,
        "porcentaje_utilidad": 40,
        "minutos_laser": 10,
        "cantidad": 1,
    }


async def sell(c: Ctx, **kw: Any) -> int:
    body = {"carrito": [line(c)], **kw}
    sale = await ok(await c.client.post("/ventas", json=body, headers=c.vend), 201)
    return int(sale["venta_id"])


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + code), body
    return body


# ------------------------------------------------------------------ retire / re-activate


@pytest.mark.spec("AC-D16")
async def test_retired_product_is_hidden_refused_in_carts_and_quotes_and_reactivated(
    ctx: Ctx,
) -> None:
    pid = ctx.ids["p"]
    vid = await sell(ctx)
    out = await ok(
        await ctx.client.patch(f"/productos/{pid}", json={"activo": False}, headers=ctx.admin)
    )
    assert out["activo"] is False
    listed = await ok(await ctx.client.get("/productos", headers=ctx.vend))
    assert pid not in [p["id_producto"] for p in listed]
    everything = await ok(
        await ctx.client.get("/productos?incluir_inactivos=true", headers=ctx.vend)
    )
    assert pid in [p["id_producto"] for p in everything]
    r = await ctx.client.post("/ventas", json={"carrito": [line(ctx)]}, headers=ctx.vend)
    assert problem(r, 422, "PRODUCTO_INACTIVO")["field"] == "carrito[0].producto_id"
    r = await ctx.client.post("/cotizaciones", json={"linea": line(ctx)}, headers=ctx.vend)
    assert problem(r, 422, "PRODUCTO_INACTIVO")["field"].endswith("producto_id")
    detail = await ok(await ctx.client.get(f"/ventas/{vid}", headers=ctx.vend))
    assert len(detail["lineas"]) == 1  # the sale made before the retirement keeps its line
    await ok(await ctx.client.patch(f"/productos/{pid}", json={"activo": True}, headers=ctx.admin))
    await sell(ctx)
    assert [a[0] for a in await ctx.audit("producto", pid)] == ["alta", "baja", "reactivacion"]


@pytest.mark.spec("AC-D16")
async def test_retired_material_used_by_a_sale_is_hidden_refused_and_reactivated(
    ctx: Ctx,
) -> None:
    mid = ctx.ids["m"]
    await sell(ctx)
    out = await ok(
        await ctx.client.patch(f"/materiales/{mid}", json={"activo": False}, headers=ctx.admin)
    )
    assert out["activo"] is False
    listed = await ok(await ctx.client.get("/materiales", headers=ctx.vend))
    assert mid not in [m["id_material"] for m in listed["items"]]
    r = await ctx.client.post("/ventas", json={"carrito": [line(ctx)]}, headers=ctx.vend)
    assert problem(r, 422, "MATERIAL_INACTIVO")["field"] == "carrito[0].material_id"
    r = await ctx.client.post("/cotizaciones", json={"linea": line(ctx)}, headers=ctx.vend)
    assert problem(r, 422, "MATERIAL_INACTIVO")["field"].endswith("material_id")
    async with ctx.sessionmaker() as s:
        kept = (await s.execute(select(DetalleVenta.id_material))).scalars().all()
    assert kept == [mid]
    back = await ok(
        await ctx.client.patch(f"/materiales/{mid}", json={"activo": True}, headers=ctx.admin)
    )
    assert back["activo"] is True
    await sell(ctx)
    assert [a[0] for a in await ctx.audit("material", mid)] == ["alta", "baja", "reactivacion"]


async def test_retiring_is_for_administrators_and_an_unchanged_flag_is_not_audited(
    ctx: Ctx,
) -> None:
    pid = ctx.ids["p"]
    r = await ctx.client.patch(f"/productos/{pid}", json={"activo": False}, headers=ctx.vend)
    assert r.status_code == 403
    await ok(await ctx.client.patch(f"/productos/{pid}", json={"activo": True}, headers=ctx.admin))
    assert [a[0] for a in await ctx.audit("producto", pid)] == ["alta"]


# ------------------------------------------------------------------ reschedule fecha_entrega


async def test_rescheduling_moves_the_delivery_date_and_is_audited(ctx: Ctx) -> None:
    vid = await sell(ctx, fecha_entrega=(date.today() + timedelta(days=5)).isoformat())
    sale = await ok(await ctx.client.get(f"/ventas/{vid}", headers=ctx.vend))
    old = sale["fecha_entrega"]
    new = (date.fromisoformat(sale["fecha_venta"][:10]) + timedelta(days=20)).isoformat()
    out = await ok(
        await ctx.client.post(
            f"/ventas/{vid}/fecha-entrega",
            json={"fecha_entrega": new, "motivo": "falta material"},
            headers=ctx.vend,
        )
    )
    assert out["fecha_entrega"] == new
    assert (await ctx.audit("venta", vid))[-1] == ("reprogramacion", old, new, "falta material")
    await ok(
        await ctx.client.post(
            f"/ventas/{vid}/estatus", json={"estatus": "en_produccion"}, headers=ctx.vend
        )
    )
    later = (date.fromisoformat(new) + timedelta(days=1)).isoformat()
    out = await ok(
        await ctx.client.post(
            f"/ventas/{vid}/fecha-entrega", json={"fecha_entrega": later}, headers=ctx.vend
        )
    )
    assert out["fecha_entrega"] == later


async def test_rescheduling_before_the_sale_date_names_the_field(ctx: Ctx) -> None:
    vid = await sell(ctx)
    sale = await ok(await ctx.client.get(f"/ventas/{vid}", headers=ctx.vend))
    before = (date.fromisoformat(sale["fecha_venta"][:10]) - timedelta(days=1)).isoformat()
    r = await ctx.client.post(
        f"/ventas/{vid}/fecha-entrega", json={"fecha_entrega": before}, headers=ctx.vend
    )
    assert problem(r, 422, "FECHA_ENTREGA_INVALIDA")["field"] == "fecha_entrega"


@pytest.mark.spec("A.3.2")
async def test_a_cancelled_or_delivered_sale_cannot_be_rescheduled(ctx: Ctx) -> None:
    new = (date.today() + timedelta(days=30)).isoformat()
    cancelled = await sell(ctx)
    await ok(
        await ctx.client.post(
            f"/ventas/{cancelled}/cancelar", json={"motivo": "duplicada"}, headers=ctx.admin
        )
    )
    delivered = await sell(ctx)
    for estatus in ("en_produccion", "entregada"):
        await ok(
            await ctx.client.post(
                f"/ventas/{delivered}/estatus",
                json={"estatus": estatus, "motivo": "cliente frecuente"},
                headers=ctx.admin,
            )
        )
    for vid, estatus in ((cancelled, "cancelada"), (delivered, "entregada")):
        r = await ctx.client.post(
            f"/ventas/{vid}/fecha-entrega", json={"fecha_entrega": new}, headers=ctx.vend
        )
        body = problem(r, 409, "VENTA_NO_REPROGRAMABLE")
        assert (body["field"], body["estatus_actual"]) == ("estatus", estatus)
    r = await ctx.client.post(
        "/ventas/999999/fecha-entrega", json={"fecha_entrega": new}, headers=ctx.vend
    )
    problem(r, 404, "VENTA_NO_EXISTE")


# ------------------------------------------------------------------ refund


@pytest.mark.spec("A.3.2", "DECIDE-A1")
async def test_a_cancelled_sales_abono_is_refunded_once_and_audited(ctx: Ctx) -> None:
    vid = await sell(ctx, monto_abonado="100.00")
    sale = await ok(await ctx.client.get(f"/ventas/{vid}", headers=ctx.vend))
    aid = sale["abonos"][0]["id_abono"]
    r = await ctx.client.post(f"/ventas/{vid}/abonos/{aid}/reembolso", json={}, headers=ctx.admin)
    body = problem(r, 409, "ABONO_NO_REEMBOLSABLE")
    assert (body["field"], body["estado_actual"]) == ("estado", "aplicado")
    await ok(
        await ctx.client.post(
            f"/ventas/{vid}/cancelar", json={"motivo": "cliente canceló"}, headers=ctx.admin
        )
    )
    r = await ctx.client.post(f"/ventas/{vid}/abonos/{aid}/reembolso", json={}, headers=ctx.vend)
    assert r.status_code == 403
    out = await ok(
        await ctx.client.post(
            f"/ventas/{vid}/abonos/{aid}/reembolso",
            json={"referencia": "SPEI 123"},
            headers=ctx.admin,
        )
    )
    assert (out["abono"]["id_abono"], out["abono"]["estado"]) == (aid, "reembolsado")
    detail = await ok(await ctx.client.get(f"/ventas/{vid}", headers=ctx.vend))
    assert [(a["monto"], a["estado"]) for a in detail["abonos"]] == [("100.00", "reembolsado")]
    assert (await ctx.audit("venta", vid))[-1][:3] == (
        "reembolso",
        "por_reembolsar",
        "reembolsado",
    )
    r = await ctx.client.post(f"/ventas/{vid}/abonos/{aid}/reembolso", json={}, headers=ctx.admin)
    assert problem(r, 409, "ABONO_NO_REEMBOLSABLE")["estado_actual"] == "reembolsado"
    other = await sell(ctx)
    r = await ctx.client.post(f"/ventas/{other}/abonos/{aid}/reembolso", json={}, headers=ctx.admin)
    problem(r, 404, "ABONO_NO_EXISTE")


# ------------------------------------------------------------------ client edit and merge


async def new_client(c: Ctx, **kw: Any) -> int:
    out = await ok(await c.client.post("/clientes", json=kw, headers=c.vend), 201)
    return int(out["id_cliente"])


async def test_editing_a_client_normalises_and_audits_the_changes(ctx: Ctx) -> None:
    cid = await new_client(ctx, nombre="Ana", telefono="5512345678")
    out = await ok(
        await ctx.client.patch(
            f"/clientes/{cid}",
            json={"nombre": "  Ana López ", "email": "ana@example.com", "telefono": None},
            headers=ctx.vend,
        )
    )
    assert (out["nombre"], out["email"], out["telefono"]) == ("Ana López", "ana@example.com", None)
    last = (await ctx.audit("cliente", cid))[-1]
    assert last[0] == "edicion"
    r = await ctx.client.patch(f"/clientes/{cid}", json={"email": "no-es-correo"}, headers=ctx.vend)
    assert r.status_code == 422
    assert r.json()["field"] == "email"
    r = await ctx.client.patch("/clientes/999999", json={"nombre": "X"}, headers=ctx.vend)
    problem(r, 404, "CLIENTE_NO_EXISTE")


async def test_merging_moves_the_duplicates_quotes_and_sales_and_is_audited(ctx: Ctx) -> None:
    kept = await new_client(ctx, nombre="Ana López")
    dup = await new_client(ctx, nombre="Ana Lopez", telefono="5512345678", email="ana@x.mx")
    v1 = await sell(ctx, cliente_id=dup, monto_abonado="50.00")
    v2 = await sell(ctx, cliente_id=kept)
    q = await ok(
        await ctx.client.post(
            "/cotizaciones", json={"linea": line(ctx), "cliente_id": dup}, headers=ctx.vend
        ),
        201,
    )
    before = await ok(await ctx.client.get(f"/ventas/{v1}", headers=ctx.vend))
    r = await ctx.client.post(
        f"/clientes/{kept}/fusion", json={"id_duplicado": dup}, headers=ctx.vend
    )
    assert r.status_code == 403
    out = await ok(
        await ctx.client.post(
            f"/clientes/{kept}/fusion", json={"id_duplicado": dup}, headers=ctx.admin
        )
    )
    assert (out["ventas_movidas"], out["cotizaciones_movidas"]) == (1, 1)
    assert out["cliente"]["id_cliente"] == kept
    assert (out["cliente"]["telefono"], out["cliente"]["email"]) == ("+525512345678", "ana@x.mx")
    after = await ok(await ctx.client.get(f"/ventas/{v1}", headers=ctx.vend))
    assert after["id_cliente"] == kept
    for key in ("total", "total_pagado", "estatus", "abonos", "lineas", "auditoria"):
        assert after[key] == before[key], key
    assert (await ok(await ctx.client.get(f"/ventas/{v2}", headers=ctx.vend)))["id_cliente"] == kept
    quote = await ok(await ctx.client.get(f"/cotizaciones/{q['id_cotizacion']}", headers=ctx.vend))
    assert quote["cliente_id"] == kept
    problem(await ctx.client.get(f"/clientes/{dup}", headers=ctx.vend), 404, "CLIENTE_NO_EXISTE")
    merged = (await ctx.audit("cliente", kept))[-1]
    assert merged[0] == "fusion"
    assert (await ctx.audit("cliente", dup))[-1][:3] == ("fusionado", None, str(kept))


async def test_merging_a_client_into_itself_or_an_unknown_one_is_refused(ctx: Ctx) -> None:
    cid = await new_client(ctx, nombre="Ana")
    r = await ctx.client.post(
        f"/clientes/{cid}/fusion", json={"id_duplicado": cid}, headers=ctx.admin
    )
    assert problem(r, 422, "FUSION_MISMO_CLIENTE")["field"] == "id_duplicado"
    r = await ctx.client.post(
        f"/clientes/{cid}/fusion", json={"id_duplicado": 999999}, headers=ctx.admin
    )
    assert problem(r, 404, "CLIENTE_NO_EXISTE")["field"] == "id_duplicado"
    r = await ctx.client.post(
        "/clientes/999999/fusion", json={"id_duplicado": cid}, headers=ctx.admin
    )
    problem(r, 404, "CLIENTE_NO_EXISTE")
    assert (await ok(await ctx.client.get(f"/clientes/{cid}", headers=ctx.vend)))["nombre"] == "Ana"


# ------------------------------------------------------------------ list totals


async def test_sales_list_totals_cover_every_matching_row_not_the_page(ctx: Ctx) -> None:
    cid = await new_client(ctx, nombre="Ana")
    first = await sell(ctx, cliente_id=cid, monto_abonado="100.00")
    await sell(ctx, cliente_id=cid, monto_abonado="0.10")
    await sell(ctx, cliente_id=cid)
    await sell(ctx)  # another client's: outside the cliente_id filter
    await ok(
        await ctx.client.post(
            f"/ventas/{first}/cancelar", json={"motivo": "duplicada"}, headers=ctx.admin
        )
    )
    page = await ok(await ctx.client.get(f"/ventas?cliente_id={cid}&limit=1", headers=ctx.vend))
    assert len(page["items"]) == 1
    assert page["resumen"] == {
        "total_filas": 3,
        "total_ventas": "375.60",  # two non-cancelled sales of 187.80
        "total_cobrado": "100.10",
        "pendientes": 2,
        "en_produccion": 0,
        "entregadas": 0,
        "canceladas": 1,
    }
    pend = await ok(
        await ctx.client.get("/ventas?estatus=pendiente&limit=1&offset=1", headers=ctx.vend)
    )
    assert (pend["resumen"]["total_filas"], pend["resumen"]["total_ventas"]) == (3, "563.40")


# ------------------------------------------------------------------ price history


async def test_price_history_lists_every_configuration_change_newest_first(ctx: Ctx) -> None:
    pid = ctx.ids["p"]
    h = ctx.admin
    await ok(
        await ctx.client.put(
            "/configuracion/tarifa", json={"tarifa_laser_minuto": "16.50"}, headers=h
        )
    )
    await ok(
        await ctx.client.put(
            "/configuracion/tabulador/3", json={"factor_costo": "500.0000"}, headers=h
        )
    )
    r = await ctx.client.delete("/configuracion/tabulador/3", headers=h)
    assert r.status_code == 204
    await ok(
        await ctx.client.patch(
            f"/productos/{pid}",
            json={"porcentaje_utilidad": 55, "precio_fijo": "99.00"},
            headers=h,
        )
    )
    r = await ctx.client.get("/configuracion/historial", headers=ctx.vend)
    assert r.status_code == 403
    rows = await ok(await ctx.client.get("/configuracion/historial", headers=h))
    got = [(x["entidad"], x["clave"], x["valor_anterior"], x["valor_nuevo"]) for x in rows]
    assert got[:5] == [
        ("producto", f"{pid}.precio_fijo", None, "99.00"),
        ("producto", f"{pid}.porcentaje_utilidad", "40", "55"),
        ("tabulador", "3", "500.0000", None),
        ("tabulador", "3", "450.0000", "500.0000"),
        ("configuracion", "tarifa_laser_minuto", "15.00", "16.50"),
    ]
    assert {x["usuario"] for x in rows} == {"admin1"}
    assert all(x["fecha"] for x in rows)
    tab = await ok(
        await ctx.client.get("/configuracion/historial?entidad=tabulador&clave=3", headers=h)
    )
    assert [(x["valor_anterior"], x["valor_nuevo"]) for x in tab] == [
        ("500.0000", None),
        ("450.0000", "500.0000"),
        (None, "450.0000"),
    ]
    page = await ok(await ctx.client.get("/configuracion/historial?limit=1&offset=1", headers=h))
    assert [x["id"] for x in page] == [rows[1]["id"]]
