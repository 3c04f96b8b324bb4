"""Auditor: reads the services' databases (asyncpg) and the topics (aiokafka) and states what
"nothing lost, nothing done twice" means for each flow. Every check is a query whose answer
could be wrong; :func:`converge` polls them until all hold or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from chaos.load import Outcome
from contracts.events.evidence import ProductionSaved, ProductionSavedV2
from contracts.events.orders import RequestValidated
from contracts.events.sales import SaleCancelled, SaleConfirmed


@dataclass
class Audit:
    duplicates: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.duplicates == 0 and self.lost == 0


def effects_by_key(outcomes: Sequence[Outcome], counts: dict[str, int], what: str) -> Audit:
    """One effect per idempotency key. A key without effect is lost when the client was told
    yes (2xx) or never got a final answer; a final 4xx (every request is valid) is a problem."""
    audit = Audit()
    for o in outcomes:
        n = counts.get(o.key, 0)
        audit.duplicates += max(0, n - 1)
        if n == 0 and (o.ok or o.final is None):
            audit.lost += 1
    rejected = [o for o in outcomes if o.final is not None and not o.ok and o.final < 500]
    if rejected:
        sample = rejected[0]
        audit.problems.append(
            f"{len(rejected)} {what} answered {sorted({o.final or 0 for o in rejected})} "
            f"(e.g. key {sample.key}: {str(sample.body)[:200]})"
        )
    if audit.duplicates:
        audit.problems.append(f"{audit.duplicates} duplicate {what}")
    if audit.lost:
        audit.problems.append(f"{audit.lost} lost {what}")
    return audit


async def outbox_and_inbox(
    conn: asyncpg.Connection, group: str, types: Sequence[str], audit: Audit
) -> None:
    """Outbox drained (no unpublished row) and every event of `types` in the inbox of
    `group` (the inbox key (group, event id) makes a second application impossible)."""
    unpublished = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    if unpublished:
        audit.problems.append(f"outbox: {unpublished} unpublished rows")
    missing = await conn.fetchval(
        """SELECT count(*) FROM outbox o WHERE o.type = ANY($1::text[]) AND NOT EXISTS
           (SELECT 1 FROM inbox i WHERE i.consumer_group = $2 AND i.event_id = o.id)""",
        list(types),
        group,
    )
    if missing:
        audit.problems.append(f"inbox {group}: {missing} events not applied")


# --------------------------------------------------------------------------- sales


async def audit_sales(
    dsn: str, outcomes: Sequence[Outcome], material_id: int, start_stock: int
) -> Audit:
    """POS sales whose ``referencia_pago`` is the request's idempotency key (it lands in the
    abono row): one sale per key, stock = start − Σ sold and nothing held in `comprometido`,
    one ledger row per sale."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            """SELECT a.referencia, count(DISTINCT a.id_venta) AS n FROM abonos a
               WHERE a.referencia = ANY($1::text[]) GROUP BY a.referencia""",
            [o.key for o in outcomes],
        )
        audit = effects_by_key(outcomes, {r["referencia"]: r["n"] for r in rows}, "sales")
        stock, held = await conn.fetchrow(
            "SELECT stock_actual, comprometido FROM materiales WHERE id_material = $1",
            material_id,
        )
        sold = await conn.fetchval(
            """SELECT coalesce(sum(dv.cantidad), 0) FROM detalle_venta dv
               JOIN ventas v ON v.id_venta = dv.id_venta
               WHERE dv.id_material = $1 AND v.estatus <> 'cancelada'""",
            material_id,
        )
        if stock != start_stock - sold:
            audit.problems.append(
                f"stock {stock} != start {start_stock} - sold {sold} = {start_stock - sold}"
            )
        if held:  # every sale applied or cancelled: nothing is still held (available-to-promise)
            audit.problems.append(f"comprometido {held} != 0 with every sale applied")
        bad_ledger = await conn.fetchval(
            """SELECT count(*) FROM (
                 SELECT v.id_venta, (SELECT count(*) FROM movimientos_stock m
                    WHERE m.id_venta = v.id_venta AND m.id_material = $1
                      AND m.motivo = 'venta') AS n
                 FROM ventas v WHERE EXISTS (SELECT 1 FROM detalle_venta dv
                    WHERE dv.id_venta = v.id_venta AND dv.id_material = $1)) s
               WHERE n <> 1""",
            material_id,
        )
        if bad_ledger:
            audit.problems.append(f"{bad_ledger} sales without exactly one stock-ledger row")
        await outbox_and_inbox(
            conn, "sales.stock", [SaleConfirmed.ce_type(), SaleCancelled.ce_type()], audit
        )
        return audit
    finally:
        await conn.close()


# --------------------------------------------------------------------------- orders


async def audit_orders(
    dsn: str, created: Sequence[Outcome], validated: Sequence[Outcome], product_id: int
) -> Audit:
    """Supply requests whose ``folio_pedido`` is the creation's idempotency key: one request
    per key, one validation effect (state) per validation key, exactly one proposal per
    validated request, reservations = Σ active lines ≤ lot quantity, all requested reserved."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            """SELECT folio_pedido, count(*) AS n FROM solicitudes
               WHERE folio_pedido = ANY($1::text[]) GROUP BY folio_pedido""",
            [o.key for o in created],
        )
        audit = effects_by_key(created, {r["folio_pedido"]: r["n"] for r in rows}, "requests")
        # a validation's effect: its request left PENDIENTE (keyed by the creation key)
        vrows = await conn.fetch(
            """SELECT s.folio_pedido, count(*) AS n FROM solicitudes s
               WHERE s.folio_pedido = ANY($1::text[]) AND s.estado <> 'PENDIENTE'
               GROUP BY s.folio_pedido""",
            [o.key.removesuffix(":validar") for o in validated],
        )
        vcounts = {r["folio_pedido"] + ":validar": r["n"] for r in vrows}
        v = effects_by_key(validated, vcounts, "validations")
        audit.duplicates += v.duplicates
        audit.lost += v.lost
        audit.problems += [p for p in v.problems if "duplicate" not in p and "lost" not in p]
        bad_proposals = await conn.fetch(
            """SELECT s.id, s.estado, (SELECT count(*) FROM propuestas p
                   WHERE p.solicitud_id = s.id) AS n
               FROM solicitudes s WHERE s.folio_pedido = ANY($1::text[])
                 AND s.estado <> 'PENDIENTE'""",
            [o.key for o in created],
        )
        wrong = [r for r in bad_proposals if r["n"] != 1]
        if wrong:
            audit.problems.append(
                f"{len(wrong)} validated requests without exactly one proposal "
                f"(counts {sorted({r['n'] for r in wrong})})"
            )
        over = await conn.fetchval(
            """SELECT count(*) FROM lote_ubicaciones lu
               WHERE lu.cantidad_reservada > lu.cantidad OR lu.cantidad_reservada <>
                 (SELECT coalesce(sum(la.cantidad_asignada), 0) FROM lotes_asignados la
                  WHERE la.lote_ubicacion_id = lu.id
                    AND la.estado_linea IN ('RESERVADA', 'RECOGIDA'))"""
        )
        if over:
            audit.problems.append(f"{over} lot locations over-allocated or out of sync")
        requested, reserved = await conn.fetchrow(
            """SELECT
                 (SELECT coalesce(sum(si.cantidad_solicitada), 0) FROM solicitud_items si
                  JOIN solicitudes s ON s.id = si.solicitud_id
                  WHERE s.folio_pedido = ANY($1::text[]) AND s.estado <> 'PENDIENTE'
                    AND si.producto_id = $2),
                 (SELECT coalesce(sum(la.cantidad_asignada), 0) FROM lotes_asignados la
                  JOIN propuesta_items pi ON pi.id = la.propuesta_item_id
                  JOIN propuestas p ON p.id = pi.propuesta_id
                  JOIN solicitudes s ON s.id = p.solicitud_id
                  WHERE s.folio_pedido = ANY($1::text[]) AND pi.producto_id = $2)""",
            [o.key for o in created],
            product_id,
        )
        if requested != reserved:
            audit.problems.append(f"reserved {reserved} != requested {requested}")
        await outbox_and_inbox(conn, "orders.proposals", [RequestValidated.ce_type()], audit)
        return audit
    finally:
        await conn.close()


# --------------------------------------------------------------------------- evidence


async def audit_evidence(
    dsn: str, outcomes: Sequence[Outcome], cells: dict[str, tuple[int, date]]
) -> Audit:
    """Production saves, one (partida, date) cell per key: one production row per cell and
    exactly one GPU per production (the GPU sync consumer)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        partidas = [cells[o.key][0] for o in outcomes]
        fechas = [cells[o.key][1] for o in outcomes]
        rows = await conn.fetch(
            """SELECT c.k, count(p.id) AS n, count(g.id) AS gpus, count(DISTINCT g.id) AS dg
               FROM unnest($1::text[], $2::int[], $3::date[]) AS c(k, partida, fecha)
               LEFT JOIN produccion p ON p.id_partida_anexo = c.partida
                                     AND p.fecha_produccion = c.fecha
               LEFT JOIN registro_generadores_pu g ON g.id_produccion = p.id
               GROUP BY c.k""",
            [o.key for o in outcomes],
            partidas,
            fechas,
        )
        audit = effects_by_key(outcomes, {r["k"]: r["n"] for r in rows}, "productions")
        no_gpu = sum(1 for r in rows if r["n"] and r["dg"] != r["n"])
        if no_gpu:
            audit.problems.append(f"{no_gpu} productions without exactly one GPU")
        await outbox_and_inbox(
            conn,
            "evidence.gpu-sync",
            [ProductionSaved.ce_type(), ProductionSavedV2.ce_type()],
            audit,
        )
        return audit
    finally:
        await conn.close()


# --------------------------------------------------------------------------- topics


async def topic_size(bootstrap: str, topic: str) -> int:
    """Records in `topic` (end − beginning offsets over its partitions; 0 if it is absent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not described or described[0].get("error_code", 0):
        return 0
    tps = [TopicPartition(topic, p["partition"]) for p in described[0].get("partitions", [])]
    if not tps:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await consumer.start()
    try:
        end = await consumer.end_offsets(tps)
        begin = await consumer.beginning_offsets(tps)
        return sum(end[tp] - begin[tp] for tp in tps)
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- convergence


async def converge(
    check: Callable[[], Awaitable[Audit]], deadline_s: float = 60.0
) -> tuple[Audit, float | None]:
    """Poll `check` until it holds; (last audit, seconds it took or None at the deadline).
    A query error (e.g. the database still restarting) counts as not converged yet."""
    started = time.monotonic()
    last = Audit(problems=["not audited"])
    while True:
        try:
            last = await check()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            last = Audit(problems=[f"audit query failed: {exc!r}"])
        if last.ok:
            return last, time.monotonic() - started
        if time.monotonic() - started > deadline_s:
            return last, None
        await asyncio.sleep(0.5)
