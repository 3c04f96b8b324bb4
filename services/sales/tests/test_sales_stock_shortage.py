"""Issue 15 item 13 (sales), through the HTTP API on SQLite and PostgreSQL: StockShortage.v2
names its origen — a consumed sale (``venta``), a manual adjustment (``ajuste``) or a physical
count (``conteo``) that leaves the balance below zero — and the ledger row of the change; it is
written to the outbox in the change's transaction. A change that leaves stock >= 0, or that
raises a negative balance, publishes none. v1 is no longer produced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nexo_testing import app_client, bearer, ok, until
from sales.main import create_app
from sales.models import outbox
from sales.settings import SalesSettings


@dataclass
class Ctx:
    client: httpx.AsyncClient
    sessionmaker: Any
    vend: dict[str, str]
    admin: dict[str, str]
    ids: dict[str, int]

    async def outbox_types(self, prefix: str) -> list[str]:
        async with self.sessionmaker() as s:
            rows = await s.execute(
                select(outbox.c.type).where(outbox.c.type.like(f"{prefix}%")).order_by(outbox.c.seq)
            )
            return [r[0] for r in rows.all()]

    async def shortages(self) -> list[dict[str, Any]]:
        async with self.sessionmaker() as s:
            rows = await s.execute(
                select(outbox.c.payload)
                .where(outbox.c.type == "nexo.sales.StockShortage.v2")
                .order_by(outbox.c.seq)
            )
            return [r[0] for r in rows.all()]

    async def ledger(self) -> list[dict[str, Any]]:
        """The material's ledger rows, oldest first."""
        rows = await ok(
            await self.client.get(f"/materiales/{self.ids['m']}/movimientos", headers=self.admin)
        )
        return list(reversed(rows))

    async def adjust(self, cantidad: int) -> dict[str, Any]:
        body = {"cantidad": cantidad, "nota": "merma"}
        url = f"/materiales/{self.ids['m']}/ajuste"
        out: dict[str, Any] = await ok(await self.client.post(url, json=body, headers=self.admin))
        return out

    async def count(self, contado: int) -> dict[str, Any]:
        url = f"/materiales/{self.ids['m']}/conteo"
        body = {"contado": contado, "nota": "inventario"}
        out: dict[str, Any] = await ok(await self.client.post(url, json=body, headers=self.admin))
        return out


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
                json={"descripcion": "Acrílico 3mm", "stock_actual": 5, "stock_minimo": 2},
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


def expected(c: Ctx, stock: int, origen: str, row: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "id_material": c.ids["m"],
        "nombre": "Acrílico 3mm",
        "stock_actual": stock,
        "faltante": -stock,
        "origen": origen,
        "id_venta": None,
        "id_movimiento": row["id"],
        "source_event_id": None,
        **kw,
    }


async def test_an_adjustment_below_zero_publishes_stock_shortage_v2_origen_ajuste(
    ctx: Ctx,
) -> None:
    out = await ctx.adjust(-8)
    assert (out["saldo_anterior"], out["stock_actual"]) == (5, -3)
    row = (await ctx.ledger())[-1]
    assert (row["motivo"], row["cantidad"], row["saldo_resultante"]) == ("ajuste", -8, -3)
    assert await ctx.shortages() == [expected(ctx, -3, "ajuste", row)]
    await ctx.adjust(-1)  # a further decrement below zero is another shortage
    row = (await ctx.ledger())[-1]
    assert (await ctx.shortages())[1:] == [expected(ctx, -4, "ajuste", row)]
    await ctx.adjust(2)  # an increment that stays negative is not a shortage
    assert len(await ctx.shortages()) == 2
    assert await ctx.outbox_types("nexo.sales.StockShortage.v1") == []


async def test_a_count_below_zero_publishes_stock_shortage_v2_origen_conteo(ctx: Ctx) -> None:
    out = await ctx.count(-2)
    assert (out["saldo_anterior"], out["stock_actual"]) == (5, -2)
    row = (await ctx.ledger())[-1]
    assert (row["motivo"], row["cantidad"]) == ("conteo", -7)
    assert await ctx.shortages() == [expected(ctx, -2, "conteo", row)]
    await ctx.count(-1)  # counted more than the (negative) balance: a rise, no shortage
    assert len(await ctx.shortages()) == 1
    await ctx.count(-1)  # no difference: no movement at all
    assert len(await ctx.shortages()) == 1


async def test_adjustments_and_counts_that_stay_at_or_above_zero_publish_no_shortage(
    ctx: Ctx,
) -> None:
    out = await ctx.adjust(-5)
    assert out["stock_actual"] == 0
    await ctx.count(3)
    await ctx.count(0)
    assert [r["saldo_resultante"] for r in await ctx.ledger()] == [5, 0, 3, 0]
    assert await ctx.outbox_types("nexo.sales.StockShortage") == []
    assert await ctx.outbox_types("nexo.sales.StockLow") == ["nexo.sales.StockLow.v1"] * 2


@pytest.mark.spec("A.4.4", "DECIDE-A2")
async def test_a_consumed_sale_below_zero_publishes_stock_shortage_v2_origen_venta(
    ctx: Ctx,
) -> None:
    line = {
        "producto_id": ctx.ids["p"],
        "material_id": ctx.ids["m"],
        "largo": "30",
        "ancho": "20",
        "espesor_mm": 3,
        "porcentaje_utilidad": 40,
        "minutos_laser": 10,
        "cantidad": 8,
    }
    body = {"carrito": [line], "permitir_backorder": True}
    sale = await ok(await ctx.client.post("/ventas", json=body, headers=ctx.vend), 201)

    async def published() -> bool:
        return bool(await ctx.shortages())

    await until(published, 15, "the stock consumer's StockShortage.v2")
    row = (await ctx.ledger())[-1]
    assert (row["motivo"], row["id_venta"], row["saldo_resultante"]) == (
        "venta",
        sale["venta_id"],
        -3,
    )
    assert await ctx.shortages() == [
        expected(
            ctx,
            -3,
            "venta",
            row,
            id_venta=sale["venta_id"],
            source_event_id=row["event_id"],
        )
    ]
    assert await ctx.outbox_types("nexo.sales.StockShortage.v1") == []
