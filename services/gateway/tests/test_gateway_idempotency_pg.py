"""The exactly-once reproduction at the edge, on real PostgreSQL through the proxy gateway.

The sale commits after the gateway gave up (504); the client's retry with the same
``Idempotency-Key`` must get the first sale's answer, not a second sale. Before keys were
stored by the service with the effect, the gateway forgot the key on the 5xx and the retry
created a second sale."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.main import create_app as create_gateway
from gateway.settings import GatewaySettings
from sales.main import create_app as create_sales
from sales.settings import SalesSettings

from .gateway_testkit import bearer, free_port, seed_sales_catalogue, serve, wait_for

pytestmark = pytest.mark.integration

ADMIN = bearer(["sales.admin"], sub="admin1")
VEND = bearer(["sales.vendedor"], sub="vendedor1")


async def test_sale_committed_after_a_gateway_timeout_is_replayed_on_retry(
    pg_database: str,
) -> None:
    port = free_port()
    sales = create_sales(SalesSettings(env="test", database_url=pg_database, transport="memory"))
    gw_settings = GatewaySettings(
        env="test", mode="proxy", sales_url=f"http://127.0.0.1:{port}", proxy_timeout=1.0
    )
    dsn = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    async with (
        serve(sales, port),
        LifespanManager(create_gateway(gw_settings), startup_timeout=60) as gw,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gw.app), base_url="http://gw", timeout=30
        ) as client,
    ):
        ids = await seed_sales_catalogue(client, ADMIN, stock_actual=1000)
        cart = {
            "carrito": [
                {
                    "producto_id": ids["p"],
                    "material_id": ids["m"],
                    "largo": "30",
                    "ancho": "20",
                    "espesor_mm": 3,
                    "porcentaje_utilidad": 40,
                    "minutos_laser": 10,
                }
            ],
            "monto_abonado": "5.00",
            "referencia_pago": "K",
        }
        headers = {**VEND, "Idempotency-Key": "K"}
        locker = await asyncpg.connect(dsn)
        try:
            tx = locker.transaction()
            await tx.start()
            await locker.execute("LOCK TABLE abonos IN EXCLUSIVE MODE")
            first = await client.post("/api/sales/ventas", json=cart, headers=headers)
            assert first.status_code == 504, first.text
            await tx.commit()  # the held sale now commits in the service

            async def sale_committed() -> bool:
                n = await locker.fetchval("SELECT count(*) FROM abonos WHERE referencia = 'K'")
                return bool(n)

            await wait_for(sale_committed, "the timed-out sale to commit")
            retry = await client.post("/api/sales/ventas", json=cart, headers=headers)
            assert retry.status_code == 201, retry.text
            assert retry.headers["idempotent-replayed"] == "true"
            assert await locker.fetchval("SELECT count(*) FROM ventas") == 1
            assert await locker.fetchval("SELECT count(*) FROM abonos WHERE referencia='K'") == 1
            stored = await locker.fetchrow(
                "SELECT principal, status, body FROM idempotency_keys WHERE key = 'K'"
            )
            assert stored["principal"] == "vendedor1"
            assert stored["status"] == 201
            assert json.loads(stored["body"]) == retry.json()
        finally:
            await locker.close()


@pytest.mark.parametrize(
    ("service", "path", "body", "role", "table"),
    [
        (
            "orders",
            "/instituciones",
            {"clue": "IDEM-1", "denominacion": "Hospital K"},
            "orders.supervisor",
            "instituciones",
        ),
        ("evidence", "/ots", {"orden_trabajo": "OT-IDEM-1"}, "evidence.supervisor", "ot"),
    ],
)
async def test_orders_and_evidence_writes_committed_after_a_timeout_are_replayed(
    pg_database: str, service: str, path: str, body: dict[str, Any], role: str, table: str
) -> None:
    """The same trick on an orders and an evidence write: one row, the retry replayed."""
    port = free_port()
    if service == "orders":
        from orders.main import create_app as create_orders
        from orders.settings import OrdersSettings

        app = create_orders(
            OrdersSettings(env="test", database_url=pg_database, transport="memory")
        )
    else:
        from evidence.main import create_app as create_evidence
        from evidence.settings import EvidenceSettings

        app = create_evidence(
            EvidenceSettings(env="test", database_url=pg_database, transport="memory")
        )
    gw_settings = GatewaySettings(
        env="test",
        mode="proxy",
        proxy_timeout=1.0,
        **{f"{service}_url": f"http://127.0.0.1:{port}"},
    )
    headers = {**bearer([role], sub="boss"), "Idempotency-Key": "K-" + service}
    dsn = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    async with (
        serve(app, port),
        LifespanManager(create_gateway(gw_settings), startup_timeout=60) as gw,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gw.app), base_url="http://gw", timeout=30
        ) as client,
    ):
        locker = await asyncpg.connect(dsn)
        try:
            before = await locker.fetchval(f"SELECT count(*) FROM {table}")
            tx = locker.transaction()
            await tx.start()
            await locker.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            first = await client.post(f"/api/{service}{path}", json=body, headers=headers)
            assert first.status_code == 504, first.text
            await tx.commit()

            async def committed() -> bool:
                return bool(await locker.fetchval(f"SELECT count(*) FROM {table}") > before)

            await wait_for(committed, f"the timed-out {service} write to commit")
            retry = await client.post(f"/api/{service}{path}", json=body, headers=headers)
            assert retry.status_code == 201, retry.text
            assert retry.headers["idempotent-replayed"] == "true"
            assert await locker.fetchval(f"SELECT count(*) FROM {table}") == before + 1
        finally:
            await locker.close()
