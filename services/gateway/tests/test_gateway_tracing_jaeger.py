"""One POS sale through the proxy gateway, on real Kafka and PostgreSQL, exported over OTLP to a
real Jaeger (built from the Go module proxy) and read back through Jaeger's query API: ONE
trace holding every hop — gateway server + proxy client span, sales request, outbox insert
(``create``), relay ``send``, stock consumer ``process``, the StockLow ``create``/``send`` — and
the /ops trace view shows it from Jaeger."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from deploy.local import gotools
from deploy.local.jaeger import JaegerHandle, start_jaeger
from gateway.main import create_app as create_gateway
from gateway.settings import GatewaySettings
from nexo_testing import ok
from sales.main import create_app as create_sales
from sales.settings import SalesSettings
from service_defaults import tracing

from .gateway_testkit import bearer, free_port, seed_sales_catalogue, serve, wait_for

pytestmark = pytest.mark.integration

ADMIN = bearer(["sales.admin"], sub="admin1")
VEND = bearer(["sales.vendedor"], sub="vendedor1")
OPS = bearer(["ops"], sub="op")


@pytest.fixture(scope="module")
def jaeger() -> Iterator[JaegerHandle]:
    if not gotools.tool_path("jaeger").exists():
        message = "jaeger not built: python -m deploy.local.gotools jaeger"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    handle = start_jaeger(free_port(), free_port(), free_port(), free_port())
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def otel_env(jaeger: JaegerHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.otlp_endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    try:
        yield
    finally:
        tracing.shutdown_tracing()


async def test_one_sale_is_one_trace_in_jaeger(
    otel_env: None, jaeger: JaegerHandle, pg_database: str, kafka_bootstrap: str
) -> None:
    port = free_port()
    sales = create_sales(
        SalesSettings(
            env="test",
            database_url=pg_database,
            transport="kafka",
            kafka_bootstrap_servers=kafka_bootstrap,
        )
    )
    gw_settings = GatewaySettings(
        env="test",
        mode="proxy",
        sales_url=f"http://127.0.0.1:{port}",
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        traces_query_url=jaeger.query_url,
    )
    async with (
        serve(sales, port),
        LifespanManager(create_gateway(gw_settings), startup_timeout=60) as gw,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gw.app), base_url="http://gw", timeout=30
        ) as client,
        httpx.AsyncClient(base_url=jaeger.query_url, timeout=10) as query,
    ):
        # one sale line takes the material to its minimum: StockLow
        ids = await seed_sales_catalogue(client, ADMIN, stock_actual=2)
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
            "referencia_pago": "T",
        }
        r = await client.post("/api/sales/ventas", json=cart, headers=VEND)
        assert r.status_code == 201, r.text
        trace_id = r.headers["traceparent"].split("-")[1]

        async def complete_trace() -> dict[str, Any] | None:
            tracing.force_flush(2000)
            found = await query.get(f"/api/traces/{trace_id}")
            if found.status_code != 200:
                return None
            data = found.json()["data"]
            if not data:
                return None
            names = {s["operationName"] for s in data[0]["spans"]}
            if not any(n.startswith("send sales.stock") for n in names):
                return None
            return dict(data[0])

        trace = await wait_for(complete_trace, "the whole sale trace in Jaeger", 60)
        services = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
        spans = [(services[s["processID"]], s["operationName"]) for s in trace["spans"]]
        assert len({s["traceID"] for s in trace["spans"]}) == 1
        for expected in [
            ("gateway", "POST /api/sales"),  # the gateway's server span
            ("gateway", "POST /ventas"),  # its proxy client span
            ("sales", "POST /ventas"),  # the service's server span
            ("sales", "create sales.sales"),  # the outbox insert
            ("sales", "send sales.sales"),  # the relay's publish
            ("sales", "process sales.sales"),  # the stock consumer
            ("sales", "create sales.stock"),  # StockLow into the outbox
            ("sales", "send sales.stock"),  # StockLow published
        ]:
            assert expected in spans, (expected, sorted(spans))
        # the SQL of the consumer's transaction (asyncpg through SQLAlchemy) is in it too
        assert any(svc == "sales" and name.startswith(("INSERT", "UPDATE")) for svc, name in spans)
        kinds = {
            s["operationName"]: {t["key"]: t["value"] for t in s["tags"]}.get("span.kind")
            for s in trace["spans"]
        }
        assert kinds["process sales.sales"] == "consumer"
        assert kinds["send sales.stock"] == "producer"

        # the ops trace view reads it from Jaeger by the request's correlation id
        correlation = r.headers["x-correlation-id"]

        async def ops_trace() -> dict[str, Any] | None:
            view = await ok(
                await client.get("/ops/api/trace", params={"q": correlation}, headers=OPS)
            )
            return view if view["source"] == "jaeger" else None

        view = await wait_for(ops_trace, "the /ops trace view from Jaeger", 30)
        assert trace_id in view["trace_ids"]
        assert {"gateway", "sales"} <= {s["service"] for s in view["spans"]}
        assert any(s["name"] == "process sales.sales" and s["depth"] > 0 for s in view["spans"])
