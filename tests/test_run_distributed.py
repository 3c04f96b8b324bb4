"""``python -m deploy.local run`` (``make run-distributed``): every service and the gateway as its
own process on real Kafka + PostgreSQL; a sale through the gateway flows to the stock consumer,
and the ops board shows the real broker's topics and lag; Ctrl-C's stop is clean."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local._util import port_open
from deploy.local.distributed import (
    SERVICES,
    Infra,
    Supervisor,
    create_databases,
    describe_exit,
    gateway_port,
    service_port,
)
from deploy.local.provision import asyncpg_dsn
from gateway.settings import GatewaySettings
from service_defaults.auth import issue_token

pytestmark = pytest.mark.timeout(420)


def _base_port() -> int:
    for base in range(41000, 60000, 89):
        ports = [gateway_port(base, 0), *(service_port(base, s, 0) for s in SERVICES)]
        if not any(port_open("127.0.0.1", p, 0.1) for p in ports):
            return base
    raise RuntimeError("no free ports")


async def test_distributed_mode_end_to_end(
    postgres_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    infra = Infra(
        kafka=kafka_bootstrap,
        dsn=asyncpg_dsn(postgres_url),
        db_prefix=f"rd_{uuid.uuid4().hex[:8]}_",
    )
    created = await asyncio.to_thread(
        create_databases, infra.dsn, [infra.database(s) for s in SERVICES]
    )
    assert sorted(created) == sorted(infra.database(s) for s in SERVICES)
    # a second call keeps what exists
    assert await asyncio.to_thread(create_databases, infra.dsn, list(created)) == []

    sup = Supervisor(infra, base_port=_base_port(), log_dir=tmp_path)
    try:
        await asyncio.to_thread(sup.start)
        assert [p.name for p in sup.procs] == [*(f"{s}-1" for s in SERVICES), "gateway-1"]
        for proc in sup.procs:
            assert proc.log_path.parent == tmp_path
            assert proc.log_path.stat().st_size > 0
        banner = sup.banner()
        gw = sup.procs[-1].url
        assert gw in banner
        assert "Development JWT" in banner

        token = issue_token(GatewaySettings(_env_file=None), "e2e", ["admin", "ops"])
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=gw, headers=auth, timeout=30) as client:

            async def write(path: str, body: dict[str, Any], method: str = "POST") -> Any:
                r = await client.request(
                    method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
                )
                assert r.status_code in (200, 201), (path, r.status_code, r.text)
                return r.json()

            await write("/api/sales/configuracion/tarifa", {"tarifa_laser_minuto": "1.00"}, "PUT")
            await write("/api/sales/configuracion/tabulador/3", {"factor_costo": "100.0000"}, "PUT")
            producto = (await write("/api/sales/productos", {"nombre": "E2E"}))["id_producto"]
            material = (
                await write(
                    "/api/sales/materiales",
                    {"descripcion": "E2E", "stock_actual": 50, "stock_minimo": 0},
                )
            )["id_material"]
            line = {
                "producto_id": producto,
                "material_id": material,
                "largo": "10",
                "ancho": "10",
                "espesor_mm": 3,
                "cantidad": 2,
            }
            await write(
                "/api/sales/ventas",
                {
                    "carrito": [line],
                    "monto_abonado": "1.00",
                    "metodo_pago": "efectivo",
                    "referencia_pago": "e2e",
                },
            )

            # the sale crossed Kafka: the stock consumer decremented the material
            deadline = time.monotonic() + 60
            stock = None
            while time.monotonic() < deadline:
                r = await client.get(f"/api/sales/materiales/{material}")
                stock = r.json().get("stock_actual") if r.status_code == 200 else None
                if stock == 48:
                    break
                await asyncio.sleep(0.3)
            assert stock == 48

            # the ops board reads the real broker: topics with offsets and the group's lag
            deadline = time.monotonic() + 30
            while True:
                board = (await client.get("/ops/api/topics")).json()
                topics = {t["topic"]: t for t in board["topics"]}
                sales = topics.get("sales.sales", {})
                lag = sales.get("groups", {}).get("sales.stock", {}).get("lag")
                if sales.get("end_offset_total", 0) >= 1 and lag == 0:
                    break
                assert time.monotonic() < deadline, sales
                await asyncio.sleep(0.5)
            assert "sales.sales.dlq" in topics
            assert len(sales["partitions"]) == 3
    finally:
        codes = await asyncio.to_thread(sup.stop)
    assert codes
    assert {n: describe_exit(c) for n, c in codes.items()} == dict.fromkeys(codes, "clean")
    assert next(iter(codes)) == "gateway-1"  # the gateway stops before the services
