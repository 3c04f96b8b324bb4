"""Issue acceptance on real PostgreSQL + Kafka: 50 concurrent POS confirmations of one material
through the API; the asynchronous stock consumer applies every sale exactly once, also when
the whole topic is delivered again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from sales import consumers, models
from sales.main import create_app
from sales.models import MovimientoStock, outbox
from sales.settings import SalesSettings
from service_defaults.auth import issue_token

N_SALES = 50
INITIAL = 60
MINIMO = 20

pytestmark = pytest.mark.integration


async def until(cond: Callable[[], Awaitable[bool]], deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.05)


async def test_concurrent_sales_postgres_kafka(pg_database: str, kafka_bootstrap: str) -> None:
    from nexo_messaging.consumer import ConsumerRunner, ConsumerSpec
    from nexo_messaging.runtime import build_transport

    settings = SalesSettings(
        env="test",
        database_url=pg_database,
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
    )
    app = create_app(settings)
    admin = {"Authorization": f"Bearer {issue_token(settings, 'admin', ['sales.admin'])}"}
    vend = {"Authorization": f"Bearer {issue_token(settings, 'v', ['sales.vendedor'])}"}
    async with (
        LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://sales", timeout=60
        ) as client,
    ):
        for esp, factor in ((3, "450.0000"),):
            r = await client.put(
                f"/configuracion/tabulador/{esp}", json={"factor_costo": factor}, headers=admin
            )
            assert r.status_code == 200, r.text
        p = (await client.post("/productos", json={"nombre": "Letrero"}, headers=admin)).json()
        m = (
            await client.post(
                "/materiales",
                json={"descripcion": "M", "stock_actual": INITIAL, "stock_minimo": MINIMO},
                headers=admin,
            )
        ).json()
        mid = m["id_material"]
        cart = [
            {
                "producto_id": p["id_producto"],
                "material_id": mid,
                "largo": "30",
                "ancho": "20",
                "espesor_mm": 3,
                "minutos_laser": 10,
                "cantidad": 1,
            }
        ]

        async def one() -> int:
            r = await client.post("/ventas", json={"carrito": cart}, headers=vend)
            assert r.status_code == 201, r.text
            return 1

        results = await asyncio.gather(*(one() for _ in range(N_SALES)))
        expected = INITIAL - sum(results)
        sm = app.state.sessionmaker

        async def stock() -> int:
            async with sm() as s:
                return int(
                    await s.scalar(
                        select(models.Material.stock_actual).where(
                            models.Material.id_material == mid
                        )
                    )
                )

        async def ledger_rows() -> int:
            async with sm() as s:
                return int(
                    await s.scalar(
                        select(func.count())
                        .select_from(MovimientoStock)
                        .where(
                            MovimientoStock.id_material == mid, MovimientoStock.motivo == "venta"
                        )
                    )
                )

        async def stock_low_rows() -> list[dict]:
            async with sm() as s:
                rows = await s.execute(
                    select(outbox.c.payload, outbox.c.published_at).where(
                        outbox.c.type == "nexo.sales.StockLow.v1"
                    )
                )
                return [dict(r[0]) | {"published": r[1] is not None} for r in rows.all()]

        async def consumed() -> bool:
            return await ledger_rows() == N_SALES

        await until(consumed)
        assert await stock() == expected == INITIAL - N_SALES
        await until(lambda: _published(stock_low_rows))
        lows = await stock_low_rows()
        assert len(lows) == 1
        assert (lows[0]["anterior"], lows[0]["actual"]) == (MINIMO + 1, MINIMO)

        # Redelivery: a second consumer group reads the whole topic again from the start.
        replay = ConsumerRunner(
            ConsumerSpec(
                group_id=f"sales.stock.replay-{uuid.uuid4().hex[:8]}",
                handlers=consumers.HANDLERS,
                batch_handler=consumers.handle_batch,
            ),
            service="sales",
            transport=build_transport("kafka", bootstrap_servers=kafka_bootstrap),
            engine=app.state.engine,
            inbox=models.inbox,
        )
        await replay.start()
        try:

            async def replayed() -> bool:
                return replay.processed + replay.dead_lettered >= N_SALES

            await until(replayed)
        finally:
            await replay.stop()
        assert await stock() == expected
        assert await ledger_rows() == N_SALES
        assert len(await stock_low_rows()) == 1


async def _published(rows: Callable[[], Awaitable[list[dict]]]) -> bool:
    got = await rows()
    return bool(got) and all(r["published"] for r in got)
