"""Issue 15 item 14: a quote as PDF and its share text, through the API on SQLite and
PostgreSQL. The PDF is read back with pypdf and its content checked (folio, client, product,
material, measures, quantity, unit price, total, validity); the share text is checked word for
word and its WhatsApp link decoded; plus 404, 409 (closed quote) and the role rule."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from pypdf import PdfReader

from nexo_testing import app_client, bearer, ok
from sales.main import create_app
from sales.settings import SalesSettings


@dataclass
class Ctx:
    client: httpx.AsyncClient
    settings: SalesSettings
    vend: dict[str, str]
    ids: dict[str, int]

    async def quote(self, cliente: int | None = None) -> dict[str, Any]:
        linea = {
            "producto_id": self.ids["p"],
            "material_id": self.ids["m"],
            "largo": "30",
            "ancho": "20",
            "espesor_mm": 3,
            "porcentaje_utilidad": 40,
            "minutos_laser": 10,
            "cantidad": 2,
        }
        body: dict[str, Any] = {"linea": linea, "cliente_id": cliente}
        r = await self.client.post("/cotizaciones", json=body, headers=self.vend)
        return dict(await ok(r, 201))


@pytest.fixture
async def ctx(database_url: str) -> AsyncIterator[Ctx]:
    settings = SalesSettings(env="test", database_url=database_url, transport="memory")
    async with app_client(create_app(settings), "http://sales", startup_timeout=30) as client:
        admin = bearer(settings, "admin1", "sales.admin")
        tarifa = {"tarifa_laser_minuto": "15.00"}
        await ok(await client.put("/configuracion/tarifa", json=tarifa, headers=admin))
        factor = {"factor_costo": "450.0000"}
        await ok(await client.put("/configuracion/tabulador/3", json=factor, headers=admin))
        producto = {"nombre": "Letrero", "detalle": "Señalética luminosa"}
        p = await ok(await client.post("/productos", json=producto, headers=admin), 201)
        material = {"descripcion": "Acrílico cristal", "stock_actual": 10, "stock_minimo": 3}
        m = await ok(await client.post("/materiales", json=material, headers=admin), 201)
        ids = {"p": p["id_producto"], "m": m["id_material"]}
        yield Ctx(client, settings, bearer(settings, "vendedor1", "sales.vendedor"), ids)


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/" + code)


def dmy(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y")


async def test_quote_pdf_carries_the_quote(ctx: Ctx) -> None:
    cliente = {"nombre": "José Núñez", "telefono": "55 1234 5678", "email": "jose@example.mx"}
    cli = await ok(await ctx.client.post("/clientes", json=cliente, headers=ctx.vend), 201)
    q = await ctx.quote(cli["id_cliente"])
    assert (q["precio_unitario"], q["monto_total"]) == ("187.80", "375.60")
    folio = q["folio"]

    r = await ctx.client.get(f"/cotizaciones/{q['id_cotizacion']}/pdf", headers=ctx.vend)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="cotizacion_{folio}.pdf"'
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    for expected in (
        f"Cotización {folio}",
        "Acrylitec",
        f"Fecha: {dmy(q['fecha'])}",
        "Estado: borrador",
        "José Núñez",
        "+525512345678",
        "jose@example.mx",
        "Letrero",
        "Señalética luminosa",
        "Acrílico cristal",
        "30.00 cm × 20.00 cm, 3 mm",
        "Área por pieza",
        "600.00 cm²",
        "10 min",
        "$187.80",
        "$375.60 MXN",
        f"Vigencia: hasta el {dmy(q['vigencia_hasta'])}",
    ):
        assert expected in text, (expected, text)

    # a closed quote is still printable, with its state on the page
    r = await ctx.client.post(
        f"/cotizaciones/{q['id_cotizacion']}/estado", json={"estado": "rechazada"}, headers=ctx.vend
    )
    await ok(r)
    r = await ctx.client.get(f"/cotizaciones/{q['id_cotizacion']}/pdf", headers=ctx.vend)
    assert r.status_code == 200, r.text
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "Estado: rechazada" in text


async def test_share_text_and_whatsapp_link(ctx: Ctx) -> None:
    cliente = {"nombre": "José Núñez", "telefono": "55 1234 5678"}
    cli = await ok(await ctx.client.post("/clientes", json=cliente, headers=ctx.vend), 201)
    q = await ctx.quote(cli["id_cliente"])
    url = f"/cotizaciones/{q['id_cotizacion']}/compartir"
    body = await ok(await ctx.client.get(url, headers=ctx.vend))
    expected = "\n".join(
        [
            "Hola José Núñez, te compartimos tu cotización de Acrylitec.",
            "",
            f"*Cotización {q['folio']}* — {dmy(q['fecha'])}",
            "Producto: Letrero (Señalética luminosa)",
            "Material: Acrílico cristal",
            "Medidas: 30.00 cm × 20.00 cm, 3 mm",
            "Corte / grabado láser: 10 min",
            "Cantidad: 2 × $187.80",
            "*Total: $375.60 MXN*",
            f"Vigencia: hasta el {dmy(q['vigencia_hasta'])}",
        ]
    )
    assert body["texto"] == expected
    assert (body["folio"], body["estado"]) == (q["folio"], "borrador")
    prefix = "https://wa.me/525512345678?text="
    assert body["whatsapp_url"].startswith(prefix)
    assert unquote(body["whatsapp_url"][len(prefix) :]) == expected

    # without a client: a generic greeting and a link that lets the seller pick the chat
    anon = await ctx.quote()
    body = await ok(
        await ctx.client.get(f"/cotizaciones/{anon['id_cotizacion']}/compartir", headers=ctx.vend)
    )
    assert body["texto"].startswith("Hola, te compartimos tu cotización de Acrylitec.")
    assert body["whatsapp_url"].startswith("https://wa.me/?text=")

    # a closed quote is not shared any more
    r = await ctx.client.post(
        f"/cotizaciones/{q['id_cotizacion']}/estado", json={"estado": "rechazada"}, headers=ctx.vend
    )
    await ok(r)
    r = await ctx.client.get(url, headers=ctx.vend)
    problem(r, 409, "COTIZACION_NO_VIGENTE")
    assert r.json()["estado"] == "rechazada"


@pytest.mark.parametrize("doc", ["pdf", "compartir"])
async def test_unknown_quote_and_foreign_role(ctx: Ctx, doc: str) -> None:
    problem(
        await ctx.client.get(f"/cotizaciones/999999/{doc}", headers=ctx.vend),
        404,
        "COTIZACION_NO_EXISTE",
    )
    q = await ctx.quote()
    foreign = bearer(ctx.settings, "otro", "orders.supervisor")
    r = await ctx.client.get(f"/cotizaciones/{q['id_cotizacion']}/{doc}", headers=foreign)
    assert r.status_code == 403, r.text
