"""Sales benchmark: POS confirmations per second through the service API with the stock consumer
keeping up, and price-preview latency.

    uv run python bench/sales/run.py [--sales 2000] [--concurrency 32] [--previews 2000]
                                     [--pg | --database-url URL] [--kafka BOOTSTRAP]

Default: SQLite file in a temp dir + in-memory transport (the embedded mode). With ``--pg``
(a throw-away local PostgreSQL) or ``--database-url postgresql+asyncpg://...`` (and optionally
``--kafka host:port``) it runs the distributed shape. The app is driven in-process through its
ASGI interface (httpx), so the figures include routing, validation, auth, pricing, the DB
transaction, the outbox relay and the stock consumer (all in one process), but no network stack.
Targets: ≥ 300 confirmed sales/s (consumer caught up), preview p99 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
import structlog
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from sales.main import MIGRATIONS_DIR, create_app
from sales.models import Material, MovimientoStock
from sales.settings import SalesSettings
from service_defaults.auth import issue_token
from service_defaults.db import create_engine, session_factory
from service_defaults.migrations import upgrade, version_table_for

TARGET_SALES_PER_S = 300.0
TARGET_PREVIEW_P99_MS = 20.0


async def wait_for(count: Any, target: int, deadline_s: float = 600.0) -> None:
    """Poll `count()` until it reaches `target` (the consumer's progress has no event to await)."""
    deadline = time.monotonic() + deadline_s
    while (await count()) < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"stock consumer did not catch up ({await count()}/{target})")
        await asyncio.sleep(0.005)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.asynccontextmanager
async def in_process(settings: SalesSettings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The app in this process, driven through ASGI (client and server share one CPU)."""
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://sales", timeout=60
        ) as client,
    ):
        yield client, app.state.sessionmaker


@contextlib.asynccontextmanager
async def server(
    settings: SalesSettings, args: argparse.Namespace
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """`uvicorn sales.main:app_from_env --workers N` in a subprocess, driven over loopback HTTP.
    The schema is migrated first so that workers do not race on alembic."""
    url = settings.database_url
    await upgrade(url, MIGRATIONS_DIR, version_table_for("sales"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SALES_ENV": "test",
        "SALES_DATABASE_URL": url,
        "SALES_TRANSPORT": settings.transport,
        "SALES_LOG_LEVEL": "WARNING",
    }
    if settings.kafka_bootstrap_servers:
        env["SALES_KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "sales.main:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.server),
        "--log-level",
        "warning",
        "--no-access-log",
        env=env,
    )
    engine = create_engine(url)
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits
        ) as client:
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise SystemExit("the sales server did not become ready")
                await asyncio.sleep(0.2)
            yield client, session_factory(engine)
    finally:
        proc.terminate()
        await proc.wait()
        await engine.dispose()


async def run(args: argparse.Namespace) -> int:
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp.name) / 'sales-bench.db'}"
    settings = SalesSettings(
        env="test",
        database_url=url,
        transport="kafka" if args.kafka else "memory",
        kafka_bootstrap_servers=args.kafka,
        log_level="WARNING",
    )
    admin = {"Authorization": f"Bearer {issue_token(settings, 'admin', ['sales.admin'])}"}
    vend = {"Authorization": f"Bearer {issue_token(settings, 'v', ['sales.vendedor'])}"}
    target = server(settings, args) if args.server else in_process(settings)
    async with target as (client, sm):
        await client.put("/configuracion/tabulador/3", json={"factor_costo": "450"}, headers=admin)
        p = (await client.post("/productos", json={"nombre": "P"}, headers=admin)).json()
        mats = []
        for i in range(4):
            r = await client.post(
                "/materiales",
                json={"descripcion": f"M{i}", "stock_actual": 10 * args.sales, "stock_minimo": 5},
                headers=admin,
            )
            mats.append(r.json()["id_material"])

        def cart(i: int) -> dict[str, Any]:
            return {
                "carrito": [
                    {
                        "producto_id": p["id_producto"],
                        "material_id": mats[i % len(mats)],
                        "largo": "30",
                        "ancho": "20",
                        "espesor_mm": 3,
                        "minutos_laser": 10,
                        "cantidad": 1 + i % 3,
                        "subtotal": str(Decimal("187.80") * (1 + i % 3)),
                    }
                ],
                "monto_abonado": "100.00",
            }

        # warm-up
        for i in range(20):
            assert (await client.post("/ventas", json=cart(i), headers=vend)).status_code == 201

        async def ledger() -> int:
            async with sm() as s:
                n = await s.scalar(
                    select(func.count())
                    .select_from(MovimientoStock)
                    .where(MovimientoStock.motivo == "venta")
                )
                return int(n or 0)

        await wait_for(ledger, 20)

        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(args.sales):
            queue.put_nowait(i)
        latencies: list[float] = []
        failures = 0

        async def worker() -> None:
            nonlocal failures
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                r = await client.post("/ventas", json=cart(i), headers=vend)
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 201:
                    failures += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        t_api = time.perf_counter() - t0
        await wait_for(ledger, 20 + args.sales)
        t_all = time.perf_counter() - t0
        async with sm() as s:
            stock = dict(
                (await s.execute(select(Material.id_material, Material.stock_actual))).all()
            )
        expected = dict.fromkeys(mats, 10 * args.sales)
        for i in list(range(20)) + list(range(args.sales)):
            expected[mats[i % len(mats)]] -= 1 + i % 3
        stock_ok = all(stock[m] == expected[m] for m in mats)

        # price preview latency (sequential)
        body = cart(0)["carrito"][0]
        for _ in range(50):
            await client.post("/precios/preview", json=body, headers=vend)
        prev: list[float] = []
        for _ in range(args.previews):
            t = time.perf_counter()
            r = await client.post("/precios/preview", json=body, headers=vend)
            prev.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200

    tmp.cleanup()
    confirmed_per_s = args.sales / t_all
    p99 = pct(prev, 0.99)
    mode = ("postgresql" if args.database_url else "sqlite") + (
        "+kafka" if args.kafka else "+memory"
    )
    mode += f", uvicorn x{args.server} over HTTP" if args.server else ", in-process ASGI"
    print(f"sales bench ({mode}); {args.sales} sales, concurrency {args.concurrency}")
    print(f"  API confirmations:          {args.sales / t_api:8.1f} sales/s  (failures {failures})")
    verdict_sales = "OK" if confirmed_per_s >= TARGET_SALES_PER_S else "MISS"
    verdict_prev = "OK" if p99 <= TARGET_PREVIEW_P99_MS else "MISS"
    print(
        f"  confirmed + stock consumed: {confirmed_per_s:8.1f} sales/s  "
        f"(target >= {TARGET_SALES_PER_S:.0f}) {verdict_sales}"
    )
    lat50, lat99 = pct(latencies, 0.5), pct(latencies, 0.99)
    print(f"  confirm latency ms:         p50 {lat50:.1f}  p99 {lat99:.1f}")
    print(f"  final stock exact:          {stock_ok}")
    print(
        f"  preview latency ms:         p50 {statistics.median(prev):.2f}  p99 {p99:.2f}  "
        f"(target <= {TARGET_PREVIEW_P99_MS:.0f}) {verdict_prev}"
    )
    ok = confirmed_per_s >= TARGET_SALES_PER_S and p99 <= TARGET_PREVIEW_P99_MS and stock_ok
    return 0 if ok and failures == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--pg", action="store_true", help="start a throw-away PostgreSQL (deploy.local) for the run"
    )
    parser.add_argument("--sales", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--previews", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--kafka", default=None)
    parser.add_argument(
        "--server",
        type=int,
        default=0,
        metavar="WORKERS",
        help="run the service under uvicorn with WORKERS processes and drive it over HTTP",
    )
    args = parser.parse_args()
    if args.pg and not args.database_url:
        from deploy.local.postgres import PostgresServer

        with PostgresServer() as pg:
            args.database_url = pg.dsn
            return asyncio.run(run(args))
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
