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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from chaos import auditor
from chaos.auditor import Audit
from chaos.harness import System
from chaos.load import Outcome, stream
from chaos.workloads import EvidenceWorkload, OrdersWorkload, Route, SalesWorkload
from contracts.events.sales import SaleConfirmed, SaleLine

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


@dataclass
class Ctx:
    system: System
    client: httpx.AsyncClient
    cache: dict[str, Any] = field(default_factory=dict)

    def route(self, service: str) -> Route:
        """Through the gateway."""
        return Route(self.client, prefix=f"/api/{service}")


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
    """POS sales (:class:`SalesWorkload`) through the gateway, or to `base_urls` directly."""
    sales = SalesWorkload(START_STOCK, name, producto=ctx.cache.get("producto"))
    await sales.setup(ctx.route("sales"))
    ctx.cache["producto"] = sales.producto
    route = Route(ctx.client, base_urls=base_urls) if base_urls else ctx.route("sales")
    dlq_before = await auditor.topic_size(ctx.system.bootstrap, "sales.sales.dlq")

    async def one(i: int) -> Outcome:
        return await sales.one(i, route)

    if burst is not None:
        burst.make = one
    outcomes = await stream(one, rate=rate, duration=duration, during=fault)
    if burst is not None:
        outcomes += await burst.outcomes()
    dlq_expected = int(ctx.cache.pop("dlq_expected", 0))

    async def check() -> Audit:
        audit = await sales.audit(ctx.system.db_dsn("sales"))
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


async def s2_kill_orders(ctx: Ctx) -> Result:
    orders = OrdersWorkload()
    route = ctx.route("orders")
    await orders.setup(route)

    async def one(i: int) -> Outcome:
        return await orders.one(i, route)

    burst = Burst(make=one, size=BURST // 2)  # heavier requests than a sale
    await stream(one, rate=6, duration=10, during=kill_and_restart(ctx, "orders", 3.5, burst))
    await burst.outcomes()  # the workload records creations and validations itself
    dsn = ctx.system.db_dsn("orders")
    audit, took = await auditor.converge(lambda: orders.audit(dsn))
    return Result("kill-9 orders (proposals)", orders.outcomes, audit, took)


# --------------------------------------------------------------------------- evidence


async def s3_kill_evidence(ctx: Ctx) -> Result:
    evidence = EvidenceWorkload()
    route = ctx.route("evidence")
    await evidence.setup(route)

    async def one(i: int) -> Outcome:
        return await evidence.one(i, route)

    burst = Burst(make=one, size=BURST // 2)  # heavier requests than a sale
    outcomes = await stream(
        one, rate=10, duration=10, during=kill_and_restart(ctx, "evidence", 3.0, burst)
    )
    outcomes += await burst.outcomes()
    dsn = ctx.system.db_dsn("evidence")
    audit, took = await auditor.converge(lambda: evidence.audit(dsn))
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
