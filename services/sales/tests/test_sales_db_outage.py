"""PostgreSQL stopped (``pg_ctl stop -m fast``) under a stream of POS sales: every answer is a
2xx or an honest 503 ``unavailable`` with ``Retry-After`` (never a 500), readiness names the
failing database check, nothing is logged as an unhandled error (no asyncpg protocol-state
errors), and once the server is back the same app serves every request again, no restart;
the stock consumer dead-letters nothing for the outage and the stock ends at start - sold.

Runs on a throwaway cluster of its own (``deploy.local``), so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from contracts.events.sales import SaleConfirmed
from nexo_messaging.dlq import dlq_topic
from nexo_testing import app_client, bearer, until
from nexo_testing.outage import private_postgres, stop_fast
from sales.consumers import GROUP_STOCK
from sales.main import create_app
from sales.models import DetalleVenta, Material
from sales.settings import SalesSettings

pytestmark = pytest.mark.integration

START_STOCK = 100_000


@pytest.fixture(scope="module")
def pg_server() -> Iterator[Any]:
    """A cluster of this module's own: stopping it disturbs no other test."""
    yield from private_postgres(max_connections=100)


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        """Errors of the request path and the pool. The messaging runtime's own retry and
        dead-letter logging during an outage is a separate matter (not judged here)."""
        out = []
        for r in self.records:
            if r.name.startswith("nexo_messaging"):
                continue
            text = f"{r.name}: {r.getMessage()}"
            if r.exc_info and r.exc_info[1] is not None:
                text += f" [{type(r.exc_info[1]).__name__}: {r.exc_info[1]}]"
            if r.levelno >= logging.ERROR:
                out.append(text)
        return out


@dataclass
class Answers:
    by_path: dict[str, Counter[int]] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)

    def add(self, path: str, r: httpx.Response) -> None:
        self.by_path.setdefault(path, Counter())[r.status_code] += 1
        if 200 <= r.status_code < 300:
            return
        body = r.json() if r.headers.get("content-type", "").endswith("json") else {}
        if not (
            r.status_code == 503
            and r.headers.get("retry-after", "").isdigit()
            and r.headers["content-type"] == "application/problem+json"
            and body.get("code") == "unavailable"
            and body.get("type") == "https://nexo.dev/problems/unavailable"
        ):
            self.bad.append(f"{path}: {r.status_code} {r.headers.get('retry-after')} {r.text}")

    def count(self, status: int) -> int:
        return sum(c[status] for c in self.by_path.values())


@pytest.fixture
async def sales_app(pg_server: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = SalesSettings(
        env="test", database_url=pg_server.dsn, transport="memory", db_pool_size=6
    )
    app = create_app(settings)
    async with app_client(app, "http://sales", raise_app_exceptions=False, timeout=30) as client:
        yield app, client


async def test_postgres_stopped_under_load_answers_503_then_recovers(
    pg_server: Any, sales_app: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, client = sales_app
    settings = app.state.settings
    admin = bearer(settings, "a1", "sales.admin")
    vend = bearer(settings, "v1", "sales.vendedor")
    r = await client.put("/configuracion/tabulador/3", json={"factor_costo": "450"}, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.post("/productos", json={"nombre": "Letrero"}, headers=admin)
    producto = r.json()["id_producto"]
    r = await client.post(
        "/materiales",
        json={"descripcion": "M", "stock_actual": START_STOCK, "stock_minimo": 1},
        headers=admin,
    )
    material = r.json()["id_material"]
    line = {
        "producto_id": producto,
        "material_id": material,
        "largo": "30",
        "ancho": "20",
        "espesor_mm": 3,
        "minutos_laser": 10,
        "cantidad": 1,
    }
    hot = {"carrito": [line]}  # the driver-connection hot path
    session = {"carrito": [line], "cliente_nuevo": {"nombre": "Eventual", "es_eventual": True}}

    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    answers = Answers()
    phase = {"stop": False}

    async def worker(kind: str) -> None:
        while not phase["stop"]:
            if kind == "hot":
                r = await client.post("/ventas", json=hot, headers=vend)
            elif kind == "session":
                r = await client.post("/ventas", json=session, headers=vend)
            else:
                r = await client.get("/materiales", headers=vend)
            answers.add(kind, r)
            await asyncio.sleep(0)

    kinds = ["hot"] * 6 + ["session"] * 3 + ["read"] * 2
    tasks = [asyncio.create_task(worker(k)) for k in kinds]
    try:
        await until(lambda: answers.count(201) >= 30, 30, "sales before the outage")
        stop_fast(pg_server)
        outage_started = time.monotonic()
        await until(lambda: answers.count(503) >= 60, 30, "503 answers during the outage")
        ready = await client.get("/health/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"]["database"]["status"] == "failing"
        # a few seconds down, as in the reported incident (the pool's liveness and the
        # reconnect paths all get exercised meanwhile)
        await until(lambda: time.monotonic() - outage_started > 4, 10, "outage")
        pg_server.start()
        await until(
            lambda: all(
                answers.by_path.get(k, Counter())[s] > 0
                for k, s in (("hot", 201), ("session", 201), ("read", 200))
            ),
            30,
            "answers of every kind",
        )
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
    finally:
        phase["stop"] = True
        await asyncio.gather(*tasks, return_exceptions=True)
        logging.getLogger().removeHandler(recorder)

    print("answers:", {k: dict(v) for k, v in answers.by_path.items()})
    assert answers.bad == [], answers.bad[:5]
    assert answers.count(500) == 0
    assert recorder.errors() == [], "\n".join(recorder.errors())

    # recovered: every kind of request succeeds again on the same app
    for _ in range(10):
        assert (await client.post("/ventas", json=hot, headers=vend)).status_code == 201
        assert (await client.post("/ventas", json=session, headers=vend)).status_code == 201
        assert (await client.get("/materiales", headers=vend)).status_code == 200

    # no SaleConfirmed was lost to the outage: the stock consumer retried in place (no DLQ),
    # so the stock converges to start - sum of what every committed sale sold
    runtime = app.state.runtime
    engine = app.state.engine

    async def sold() -> int:
        async with engine.connect() as conn:
            total = await conn.scalar(
                select(func.coalesce(func.sum(DetalleVenta.cantidad), 0)).where(
                    DetalleVenta.id_material == material
                )
            )
        return int(total)

    async def stock() -> int:
        async with engine.connect() as conn:
            value = await conn.scalar(
                select(Material.stock_actual).where(Material.id_material == material)
            )
        return int(value)

    async def converged() -> bool:
        return await stock() == START_STOCK - await sold()

    await until(converged, 60, "stock == start - sum sold")
    assert await sold() >= answers.by_path["hot"][201] + answers.by_path["session"][201] + 20
    consumer = runtime.health()["consumers"][GROUP_STOCK]
    assert consumer["dead_lettered"] == 0, consumer
    assert consumer["retrying_transient"] is False, consumer
    assert await runtime.transport.read_records(dlq_topic(SaleConfirmed.topic)) == []
