"""Two replicas of each service as real processes (``deploy.local.distributed``) on real Kafka and
PostgreSQL; one gets SIGTERM. Measured for every service: readiness turns 503 while the process
still serves, it exits cleanly (requests in flight answered, consumers committed and left, relay
claims released), the survivor owns every partition of the group within 3 s of the exit. For
sales, under a load of POS sales spread over both replicas: the audit finds no sale lost or
doubled and the stock decremented exactly once per sale."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.auditor import audit_sales
from chaos.load import Outcome, bearer, send
from deploy.local._util import port_open
from deploy.local.distributed import (
    Infra,
    Proc,
    Supervisor,
    create_databases,
    database_url,
    describe_exit,
    service_port,
)
from deploy.local.provision import asyncpg_dsn

pytestmark = pytest.mark.timeout(420)

GROUPS = {"evidence": "evidence.gpu-sync", "sales": "sales.stock", "orders": "orders.proposals"}
PARTITIONS = 3  # contracts: every consumed topic has 3
START_STOCK = 100_000
TAKEOVER_LIMIT_S = 3.0


def _base_port(service: str) -> int:
    for base in range(31000, 60000, 97):
        if not any(port_open("127.0.0.1", service_port(base, service, r), 0.1) for r in range(2)):
            return base
    raise RuntimeError("no free ports")


async def _ready_body(client: httpx.AsyncClient, proc: Proc) -> tuple[int, dict[str, Any]]:
    r = await client.get(f"{proc.url}/health/ready", timeout=5)
    return r.status_code, r.json()


async def _assigned(client: httpx.AsyncClient, proc: Proc, group: str) -> int:
    try:
        _, body = await _ready_body(client, proc)
    except (httpx.HTTPError, ValueError):
        return -1
    consumer = body.get("checks", {}).get("messaging", {}).get("consumers", {}).get(group, {})
    return int(consumer.get("assigned_partitions", -1))


async def _setup_catalogue(client: httpx.AsyncClient, url: str) -> tuple[int, int]:
    adm = bearer("handover-adm", "sales.admin")

    async def write(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await client.request(method, url + path, json=body, headers=adm, timeout=30)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        data: dict[str, Any] = r.json()
        return data

    await write("PUT", "/configuracion/tarifa", {"tarifa_laser_minuto": "1.00"})
    await write("PUT", "/configuracion/tabulador/3", {"factor_costo": "100.0000"})
    producto = await write("POST", "/productos", {"nombre": "Handover"})
    material = await write(
        "POST",
        "/materiales",
        {"descripcion": "Handover", "stock_actual": START_STOCK, "stock_minimo": 0},
    )
    return int(producto["id_producto"]), int(material["id_material"])


def test_the_groups_are_the_contracts_consumer_groups() -> None:
    from contracts.topics import TOPICS, consumer_groups

    groups = consumer_groups()
    for service, group in GROUPS.items():
        assert group in groups
        assert all(TOPICS[t].partitions == PARTITIONS for t in groups[group]), service


@pytest.mark.parametrize("service", ["sales", "evidence", "orders"])
async def test_sigterm_hands_over_to_the_other_replica(
    postgres_url: str, kafka_bootstrap: str, tmp_path: Path, service: str
) -> None:
    group = GROUPS[service]
    with_load = service == "sales"
    infra = Infra(
        kafka=kafka_bootstrap,
        dsn=asyncpg_dsn(postgres_url),
        db_prefix=f"ho_{uuid.uuid4().hex[:8]}_",
    )
    await asyncio.to_thread(create_databases, infra.dsn, [infra.database(service)])
    sup = Supervisor(
        infra,
        replicas=2,
        base_port=_base_port(service),
        services=(service,),
        gateway=False,
        log_dir=tmp_path,
    )
    try:
        await asyncio.to_thread(sup.start)
        victim, survivor = sup.procs
        async with httpx.AsyncClient() as client:
            producto, material = (
                await _setup_catalogue(client, survivor.url) if with_load else (0, 0)
            )

            # both members hold partitions before the fault
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                a = await _assigned(client, victim, group)
                b = await _assigned(client, survivor, group)
                if a > 0 and b > 0 and a + b == PARTITIONS:
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail(f"group never settled over both replicas: {a} + {b}")

            sellers = [bearer(f"handover-seller-{n}", "sales.vendedor") for n in range(8)]

            async def sale(i: int, first: Proc) -> Outcome:
                key = str(uuid.uuid4())
                body = {
                    "carrito": [
                        {
                            "producto_id": producto,
                            "material_id": material,
                            "largo": "10",
                            "ancho": "10",
                            "espesor_mm": 3,
                            "cantidad": 1,
                        }
                    ],
                    "monto_abonado": "1.00",
                    "metodo_pago": "efectivo",
                    "referencia_pago": key,
                }
                # like a load balancer: the first try on one replica, retries rotate
                other = survivor if first is victim else victim
                return await send(
                    client,
                    "POST",
                    "/ventas",
                    json=body,
                    headers=sellers[i % len(sellers)],
                    key=key,
                    base_urls=[first.url, other.url],
                )

            stop_load = asyncio.Event()
            tasks: list[asyncio.Task[Outcome]] = []

            async def load() -> None:
                i = 0
                while not stop_load.is_set():
                    target = victim if i % 2 == 0 else survivor
                    tasks.append(asyncio.create_task(sale(i, target)))
                    i += 1
                    await asyncio.sleep(0.05)

            if with_load:
                loader = asyncio.create_task(load())
                await asyncio.sleep(1.0)  # load running on both replicas before the signal
            burst = (
                [asyncio.create_task(sale(10_000 + n, victim)) for n in range(20)]
                if with_load
                else []
            )
            t_signal = time.monotonic()
            victim.signal(signal.SIGTERM)

            # readiness says 503 (draining) while the victim still serves
            saw_draining = False
            while victim.alive() and time.monotonic() - t_signal < 5:
                try:
                    status, body = await _ready_body(client, victim)
                    live = await client.get(f"{victim.url}/health/live", timeout=2)
                except httpx.HTTPError:
                    break
                if status == 503 and "shutdown" in body.get("checks", {}):
                    assert live.status_code == 200
                    saw_draining = True
                    break
                await asyncio.sleep(0.05)
            assert saw_draining, "readiness never answered 503 (draining) after SIGTERM"

            code = await asyncio.to_thread(victim.wait, 40)
            t_exit = time.monotonic()
            assert describe_exit(code) == "clean", f"victim exit {code}"

            # the survivor takes over every partition
            t_takeover = None
            while time.monotonic() - t_exit < 15:
                if await _assigned(client, survivor, group) == PARTITIONS:
                    t_takeover = time.monotonic()
                    break
                await asyncio.sleep(0.05)
            assert t_takeover is not None, "the survivor never owned all partitions"
            takeover_s = t_takeover - t_exit

            outcomes: list[Outcome] = []
            if with_load:
                await asyncio.sleep(1.0)  # more load on the survivor alone
                stop_load.set()
                await loader
                outcomes = list(await asyncio.gather(*tasks, *burst))
                await _audit(infra, outcomes, material)

        log = victim.log_path.read_text()
        assert "messaging stopped" in log
        record = {
            "service": service,
            "sales": len(outcomes),
            "drain_seen": saw_draining,
            "exit_after_signal_s": round(t_exit - t_signal, 2),
            "takeover_after_exit_s": round(takeover_s, 2),
        }
        print("handover", json.dumps(record))
        assert takeover_s <= TAKEOVER_LIMIT_S, record
    finally:
        await asyncio.to_thread(sup.stop)


async def _audit(infra: Infra, outcomes: list[Outcome], material: int) -> None:
    """Every sale answered; one sale per key; stock consumed exactly once per sale."""
    failed = [o for o in outcomes if not o.ok]
    assert not failed, [(o.key, o.statuses) for o in failed[:5]]
    dsn = database_url(infra.dsn, infra.database("sales")).replace(
        "postgresql+asyncpg://", "postgresql://"
    )
    deadline = time.monotonic() + 60
    while True:
        audit = await audit_sales(dsn, outcomes, material, START_STOCK)
        if audit.ok or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert audit.ok, (audit.duplicates, audit.lost, audit.problems)
