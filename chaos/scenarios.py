"""The chaos scenarios: a write stream through the gateway, a fault in the middle of it, then the
auditor polls until the databases and topics agree with what the client was told."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from chaos import auditor
from chaos.auditor import Audit
from chaos.harness import System
from chaos.load import Outcome, bearer, send, stream
from contracts.events.sales import SaleConfirmed, SaleLine

SA, OR, EV = "/api/sales", "/api/orders", "/api/evidence"
START_STOCK = 1_000_000
RESTART_AFTER_S = 1.0
FAILOVER_S = 5.0


@dataclass
class Result:
    name: str
    outcomes: list[Outcome]
    audit: Audit
    convergence_s: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def ok2xx(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def retried(self) -> int:
        return sum(o.attempts > 1 for o in self.outcomes)

    @property
    def five_xx(self) -> int:
        """Final 5xx answers after the retries, plus any request that ever saw a 500."""
        return sum(o.final_5xx or o.saw_500 for o in self.outcomes)

    @property
    def passed(self) -> bool:
        return self.audit.ok and self.five_xx == 0 and self.convergence_s is not None


class SetupError(RuntimeError):
    pass


def ok(r: Outcome, what: str) -> Any:
    if not r.ok:
        raise SetupError(f"{what}: {r.final} {r.statuses} {str(r.body)[:300]}")
    return r.body


@dataclass
class Ctx:
    system: System
    client: httpx.AsyncClient
    cache: dict[str, Any] = field(default_factory=dict)

    async def write(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
        return ok(await send(self.client, method, path, json=body, headers=headers), path)


# --------------------------------------------------------------------------- faults


async def _after(seconds: float) -> None:
    await asyncio.sleep(seconds)


Fault = Callable[[], Coroutine[Any, Any, None]]
Make = Callable[[int], Coroutine[Any, Any, Outcome]]
BURST = 80
BURST_LEAD_S = 0.2


@dataclass
class Burst:
    """Requests fired all at once just before a kill, so that some are in flight (committed
    or not, answered or not) when the process dies — a steady stream alone rarely is."""

    make: Make | None = None
    size: int = BURST
    tasks: list[asyncio.Task[Outcome]] = field(default_factory=list)

    async def fire(self) -> None:
        assert self.make is not None
        base = 1_000_000 + len(self.tasks)
        self.tasks += [asyncio.create_task(self.make(base + i)) for i in range(self.size)]
        await asyncio.sleep(BURST_LEAD_S)

    async def outcomes(self) -> list[Outcome]:
        return list(await asyncio.gather(*self.tasks))


def kill_and_restart(ctx: Ctx, name: str, at: float, burst: Burst | None = None) -> Fault:
    async def fault() -> None:
        await _after(at)
        proc = ctx.system.services[name]
        if burst is not None:
            await burst.fire()
        proc.kill9()
        await asyncio.sleep(RESTART_AFTER_S)
        proc.start()
        await proc.wait_ready()

    return fault


# --------------------------------------------------------------------------- sales


async def _sales_catalogue(ctx: Ctx) -> int:
    if "producto" not in ctx.cache:
        adm = bearer("chaos-adm", "sales.admin")
        await ctx.write("PUT", f"{SA}/configuracion/tarifa", {"tarifa_laser_minuto": "1.00"}, adm)
        await ctx.write("PUT", f"{SA}/configuracion/tabulador/3", {"factor_costo": "100.0000"}, adm)
        prod = await ctx.write("POST", f"{SA}/productos", {"nombre": "Chaos"}, adm)
        ctx.cache["producto"] = prod["id_producto"]
    return int(ctx.cache["producto"])


async def _new_material(ctx: Ctx, name: str) -> int:
    adm = bearer("chaos-adm", "sales.admin")
    mat = await ctx.write(
        "POST",
        f"{SA}/materiales",
        {"descripcion": f"Chaos {name}", "stock_actual": START_STOCK, "stock_minimo": 0},
        adm,
    )
    return int(mat["id_material"])


async def sales_stream(
    ctx: Ctx,
    name: str,
    fault: Fault | None,
    *,
    rate: float,
    duration: float,
    base_urls: list[str] | None = None,
    extra: Callable[[], Awaitable[list[str]]] | None = None,
    burst: Burst | None = None,
) -> Result:
    """POS sales of 1 unit of a fresh material with a large stock; the idempotency key is also
    the payment reference, so each request is identifiable in the sales database."""
    producto = await _sales_catalogue(ctx)
    material = await _new_material(ctx, name)
    # several sellers: the gateway's rate limit is per token subject
    sellers = [bearer(f"chaos-vendedor-{n}", "sales.vendedor") for n in range(8)]
    dlq_before = await auditor.topic_size(ctx.system.bootstrap, "sales.sales.dlq")
    path = "/ventas" if base_urls else f"{SA}/ventas"

    async def one(i: int) -> Outcome:
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
        return await send(
            ctx.client,
            "POST",
            path,
            json=body,
            headers=sellers[i % len(sellers)],
            key=key,
            base_urls=base_urls,
        )

    if burst is not None:
        burst.make = one
    outcomes = await stream(one, rate=rate, duration=duration, during=fault)
    if burst is not None:
        outcomes += await burst.outcomes()
    dlq_expected = int(ctx.cache.pop("dlq_expected", 0))

    async def check() -> Audit:
        audit = await auditor.audit_sales(
            ctx.system.db_dsn("sales"), outcomes, material, START_STOCK
        )
        dlq = await auditor.topic_size(ctx.system.bootstrap, "sales.sales.dlq") - dlq_before
        if dlq != dlq_expected:
            audit.problems.append(f"sales.sales.dlq gained {dlq} records, expected {dlq_expected}")
        if extra is not None:
            audit.problems += await extra()
        return audit

    audit, took = await auditor.converge(check)
    return Result(name, outcomes, audit, took)


async def s1_kill_sales(ctx: Ctx) -> Result:
    burst = Burst()
    return await sales_stream(
        ctx,
        "kill-9 sales",
        kill_and_restart(ctx, "sales", 3.0, burst),
        rate=15,
        duration=10,
        burst=burst,
    )


async def s4_kafka_down(ctx: Ctx) -> Result:
    async def fault() -> None:
        await _after(3.0)
        ctx.system.kill_kafka()
        await asyncio.sleep(15.0)
        await asyncio.to_thread(ctx.system.start_kafka)

    return await sales_stream(ctx, "kafka SIGKILL 15 s", fault, rate=10, duration=22)


async def s5_postgres_restart(ctx: Ctx) -> Result:
    async def fault() -> None:
        await _after(3.0)
        await asyncio.to_thread(ctx.system.restart_postgres_immediate)

    return await sales_stream(ctx, "postgres restart -m immediate", fault, rate=15, duration=10)


# --------------------------------------------------------------------------- relay failover


def relay_lock_key(service: str) -> int:
    """The advisory lock key of `service`'s outbox relay (nexo_messaging.relay)."""
    return zlib.crc32(f"nexo-outbox-relay:{service}".encode()) - 2**31


async def relay_holder_port(dsn: str, service: str) -> int | None:
    """The client port of the connection holding the relay's advisory lock, if any."""
    key = relay_lock_key(service)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        port = await conn.fetchval(
            """SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                 AND l.objid::text::bigint = $1 AND a.datname = current_database()""",
            key & 0xFFFFFFFF,
        )
        return int(port) if port is not None else None
    finally:
        await conn.close()


def _socket_inode(local_port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            for line in fh.readlines()[1:]:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == local_port:
                    return cols[9]
    return None


def pid_owning_port(local_port: int, pids: list[int]) -> int | None:
    """Which of `pids` owns the TCP socket bound to `local_port` (via /proc fds)."""
    inode = _socket_inode(local_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if str(fd.readlink()) == target:
                        return pid
    return None


async def s6_relay_failover(ctx: Ctx) -> Result:
    system = ctx.system
    a = system.services["sales"]
    b = system.extra.get("sales-b") or await system.add_instance("sales", "sales-b")
    dsn = system.db_dsn("sales")
    notes: list[str] = []
    failover: dict[str, float | None] = {}
    burst = Burst()

    async def fault() -> None:
        await _after(3.0)
        port = await relay_holder_port(dsn, "sales")
        pids = [p for p in (a.pid, b.pid) if p is not None]
        holder_pid = pid_owning_port(port, pids) if port is not None else None
        holder = a if holder_pid == a.pid else b if holder_pid == b.pid else None
        if holder is None:
            notes.append(f"relay holder not found (port {port}); killing {a.name}")
            holder = a
        notes.append(f"relay held by {holder.name} (pid {holder.pid})")
        await burst.fire()
        holder.kill9()
        killed_at = time.monotonic()
        failover["s"] = None
        while time.monotonic() - killed_at < 30:
            port = await relay_holder_port(dsn, "sales")
            if port is not None:
                failover["s"] = time.monotonic() - killed_at
                break
            await asyncio.sleep(0.1)
        taken = failover["s"]
        notes.append("relay taken over in " + (f"{taken:.1f} s" if taken is not None else "> 30 s"))
        await asyncio.sleep(RESTART_AFTER_S)
        holder.start()
        await holder.wait_ready()

    async def extra() -> list[str]:
        taken = failover.get("s")
        if taken is None or taken > FAILOVER_S:
            return [f"relay failover {taken} s (> {FAILOVER_S:.0f} s)"]
        return []

    result = await sales_stream(
        ctx,
        "2x sales, kill-9 relay holder",
        fault,
        rate=15,
        duration=10,
        base_urls=[a.url, b.url],
        extra=extra,
        burst=burst,
    )
    result.notes += notes
    # the load ran ≥ 6 s past the kill: whatever the failover left behind must be gone soon
    if result.convergence_s is not None and result.convergence_s > FAILOVER_S:
        result.audit.problems.append(
            f"converged {result.convergence_s:.1f} s after the load (> {FAILOVER_S:.0f} s)"
        )
    return result


# --------------------------------------------------------------------------- poison records


async def s7_poison(ctx: Ctx) -> Result:

    def ce_headers(event_id: str) -> list[tuple[str, bytes]]:
        return [
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_source", b"/services/sales"),
            ("ce_type", SaleConfirmed.ce_type().encode()),
            ("content-type", b"application/json"),
        ]

    poison: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = [
        # not an event at all
        (b"poison-1", b"\x00\xffnot json at all", []),
        # a well-formed CloudEvent whose data does not match the contract
        (b"poison-2", json.dumps({"id_venta": "x"}).encode(), ce_headers(str(uuid.uuid4()))),
        # a valid SaleConfirmed of a sale this database never had (another environment's)
        (
            b"poison-3",
            SaleConfirmed(
                id_venta=987_654_321,
                folio="VTA-X",
                lineas=[
                    SaleLine(
                        id_material=1,
                        cantidad=1,
                        id_producto=1,
                        precio_unitario="1.00",
                        subtotal="1.00",
                    )
                ],
                total="1.00",
                confirmed_at=datetime(2020, 1, 1, tzinfo=UTC),
                confirmed_by="chaos",
            )
            .model_dump_json()
            .encode(),
            ce_headers(str(uuid.uuid4())),
        ),
    ]

    async def fault() -> None:
        await _after(2.0)
        producer = AIOKafkaProducer(bootstrap_servers=ctx.system.bootstrap, acks="all")
        await producer.start()
        try:
            for key, value, headers in poison:
                await producer.send_and_wait("sales.sales", value, key=key, headers=headers)
        finally:
            await producer.stop()

    ctx.cache["dlq_expected"] = len(poison)
    result = await sales_stream(ctx, "poison records", fault, rate=10, duration=6)
    result.notes.append(f"{len(poison)} malformed records published to sales.sales")
    return result


# --------------------------------------------------------------------------- orders


async def _orders_setup(ctx: Ctx) -> dict[str, int]:
    sup = bearer("chaos-super", "orders.supervisor")
    inst = await ctx.write(
        "POST", f"{OR}/instituciones", {"clue": "CHAOS1", "denominacion": "Chaos"}, sup
    )
    alm = await ctx.write(
        "POST",
        f"{OR}/almacenes",
        {"id_institucion": inst["id"], "nombre": "Central", "codigo": "C1", "es_central": True},
        sup,
    )
    prod = await ctx.write("POST", f"{OR}/productos", {"clave_cnis": "010.000.0104.00"}, sup)
    ub = await ctx.write(
        "POST",
        f"{OR}/ubicaciones",
        {"id_almacen": alm["id"], "codigo": "A-01", "estado": "disponible"},
        sup,
    )
    today = datetime.now(UTC).date()
    for n in range(3):  # FEFO across several lots
        await ctx.write(
            "POST",
            f"{OR}/lotes",
            {
                "id_producto": prod["id"],
                "id_institucion": inst["id"],
                "numero_lote": f"L-CHAOS-{n}",
                "fecha_caducidad": (today + timedelta(days=400 + 100 * n)).isoformat(),
                "estado": 1,
                "ubicaciones": [{"id_ubicacion": ub["id"], "cantidad": 400}],
            },
            sup,
        )
    return {"inst": inst["id"], "alm": alm["id"], "prod": prod["id"]}


async def s2_kill_orders(ctx: Ctx) -> Result:
    ids = await _orders_setup(ctx)
    sol_h = bearer("chaos-sol", "orders.solicitante")
    val_h = bearer("chaos-val", "orders.validador")
    entrega = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    created: list[Outcome] = []
    validated: list[Outcome] = []

    async def one(i: int) -> Outcome:
        key = f"PED-CHAOS-{uuid.uuid4().hex[:12]}"
        body = {
            "id_institucion": ids["inst"],
            "id_almacen_destino": ids["alm"],
            "fecha_entrega_programada": entrega,
            "folio_pedido": key,
            "items": [{"id_producto": ids["prod"], "cantidad_solicitada": 1 + i % 3}],
        }
        c = await send(ctx.client, "POST", f"{OR}/solicitudes", json=body, headers=sol_h, key=key)
        created.append(c)
        if not c.ok:
            return c
        v = await send(
            ctx.client,
            "POST",
            f"{OR}/solicitudes/{c.body['id']}/validar",
            json={"items": []},
            headers=val_h,
            key=f"{key}:validar",
        )
        validated.append(v)
        return v

    burst = Burst(make=one, size=BURST // 2)  # heavier requests than a sale
    await stream(one, rate=6, duration=10, during=kill_and_restart(ctx, "orders", 3.5, burst))
    await burst.outcomes()  # `one` records into created / validated itself
    dsn = ctx.system.db_dsn("orders")
    audit, took = await auditor.converge(
        lambda: auditor.audit_orders(dsn, created, validated, ids["prod"])
    )
    return Result("kill-9 orders (proposals)", created + validated, audit, took)


# --------------------------------------------------------------------------- evidence


async def s3_kill_evidence(ctx: Ctx) -> Result:
    sup = bearer("chaos-sup", "evidence.supervisor")
    res = bearer("chaos-res", "evidence.residente")
    ot = await ctx.write("POST", f"{EV}/ots", {"orden_trabajo": "OT-CHAOS-1"}, sup)
    n_partidas = 20
    partidas = [
        {
            "id_partida": f"C-2.9.{n}",
            "descripcion": f"Partida {n}",
            "anexo": "C-2",  # an annex whose productions need a GPU (DEFAULT_GPU_ANNEXES)
            "unidad": "JOR",
            "volumen_proyectado": "100000",
            "precio_unitario_mn": "10.0000",
        }
        for n in range(n_partidas)
    ]
    imp = await ctx.write("POST", f"{EV}/ots/{ot['id']}/importaciones", {"partidas": partidas}, sup)
    ids = [p["id"] for p in sorted(imp["partidas"], key=lambda p: p["codigo"])]
    cells: dict[str, tuple[int, date]] = {}

    async def one(i: int) -> Outcome:
        key = str(uuid.uuid4())
        j = i if i < 1_000_000 else 400 + i - 1_000_000  # burst requests: days 20 and on
        partida, fecha = ids[j % n_partidas], date(2025, 3, 1) + timedelta(days=j // n_partidas)
        cells[key] = (partida, fecha)
        body = {
            "id_partida_anexo": partida,
            "fecha": fecha.isoformat(),
            "tipo_tiempo": "TE",
            "volumen": "1",
        }
        return await send(ctx.client, "PUT", f"{EV}/producciones", json=body, headers=res, key=key)

    burst = Burst(make=one, size=BURST // 2)  # heavier requests than a sale
    outcomes = await stream(
        one, rate=10, duration=10, during=kill_and_restart(ctx, "evidence", 3.0, burst)
    )
    outcomes += await burst.outcomes()
    dsn = ctx.system.db_dsn("evidence")
    audit, took = await auditor.converge(lambda: auditor.audit_evidence(dsn, outcomes, cells))
    return Result("kill-9 evidence (GPU sync)", outcomes, audit, took)


SCENARIOS: dict[str, Callable[[Ctx], Awaitable[Result]]] = {
    "kill-sales": s1_kill_sales,
    "kill-orders": s2_kill_orders,
    "kill-evidence": s3_kill_evidence,
    "kafka-down": s4_kafka_down,
    "postgres-restart": s5_postgres_restart,
    "relay-failover": s6_relay_failover,
    "poison": s7_poison,
}
