"""The POS confirmation on PostgreSQL in two statements on the driver connection.

`sales.application.pos.confirm_sale` (ORM session, any database) costs about a dozen
SQLAlchemy executions and round trips per sale. Here the same use case runs as:

1. one read: the stored answer of the request's ``Idempotency-Key`` if any (then nothing else
   happens: the route replays it), the cart's materials (stock, minimum, activity), the
   client's existence, and — only when the cart will pass (same rule as
   :func:`sales.application.pos.check_cart`, evaluated on the same snapshot) — the new sale id and
   line ids drawn from their sequences, so that the SaleConfirmed payload can be rendered
   before the write. A rejected cart draws no ids;
2. one write: the admission (available-to-promise: the cart's materials locked, the stock rule
   on their latest rows, the quantities held in ``comprometido``), sale, lines, abono, audit
   row, the outbox row and — for a request with an ``Idempotency-Key`` — the key row with the
   rendered answer, in ONE statement (data-modifying CTEs, committed on its own, so all or
   nothing) plus ``pg_notify`` that wakes the relay at commit. A cart the admission refuses
   writes nothing (409 with the figures it locked).

Validation, pricing and the stock rule are the shared pure functions of `sales.application.pos`
(:func:`~sales.application.pos.price_lines`, :func:`~sales.application.pos.check_cart`), raised
in the same order and with the same errors as the session path. Folios come from the sequence
as before (gaps allowed, DOMAIN §A.4.3).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi import Response
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from nexo_messaging.outbox import outbox_row
from nexo_messaging.relay import notify_channel
from sales import domain as d
from sales.application.common import Actor, utcnow
from sales.application.pos import (
    CheckedCart,
    ConfirmedSaleRows,
    VentaIn,
    VentaRef,
    VentaResult,
    cart_prices_pass,
    check_cart,
    check_cart_shape,
    price_lines,
    sale_confirmed,
)
from sales.application.pricing import catalog_view
from sales.domain import (
    DomainError,
    EstadoAbono,
    EstatusVenta,
    MaterialStock,
    NotFound,
    admits_sql,
    available_sql,
    covered_sql,
)
from service_defaults import idempotency
from service_defaults.db import driver_connection

# The SQL pre-check of the cart and the write's atomic admission are the domain's stock rule
# rendered (`sales.domain.stock`: covered by stock_actual - comprometido, or backorder).
_COVERED = covered_sql("r.qty", available_sql("r.stock_actual", "r.comprometido"))
_ADMITS = admits_sql("l.qty", "l.stock_actual", "l.comprometido", "$5::boolean")
READ = f"""
WITH q AS (
  SELECT * FROM unnest($1::integer[], $2::integer[]) AS q(id, qty)
), r AS (
  SELECT m.id_material, m.descripcion, m.stock_actual, m.stock_minimo, m.activo,
         m.comprometido, q.qty
  FROM q JOIN materiales m ON m.id_material = q.id
), g AS MATERIALIZED (
  SELECT (SELECT c.id_cliente FROM clientes c WHERE c.id_cliente = $4::integer) AS cliente
), k AS MATERIALIZED (
  SELECT method, path, fingerprint, status, media_type, location, body, expires_at
  FROM idempotency_keys WHERE principal = $7::varchar AND key = $8::varchar
), x AS MATERIALIZED (
  SELECT g.cliente,
         CASE WHEN $3::boolean
                   AND NOT EXISTS (SELECT 1 FROM k)
                   AND ($4::integer IS NULL OR g.cliente IS NOT NULL)
                   AND (SELECT count(*) FROM r
                        WHERE r.activo AND ($5::boolean OR {_COVERED}))
                       = cardinality($1::integer[])
              THEN nextval(pg_get_serial_sequence('ventas', 'id_venta')) END AS id_venta
  FROM g
), y AS MATERIALIZED (
  SELECT x.cliente, x.id_venta,
         CASE WHEN x.id_venta IS NOT NULL THEN
           ARRAY(SELECT nextval(pg_get_serial_sequence('detalle_venta', 'id_detalle'))
                 FROM generate_series(1, $6::integer)) END AS ids
  FROM x
)
SELECT y.cliente, y.id_venta, y.ids,
       r.id_material, r.descripcion, r.stock_actual, r.stock_minimo, r.activo, r.comprometido,
       k.method, k.path, k.fingerprint, k.status, k.media_type, k.location, k.body, k.expires_at
FROM y LEFT JOIN r ON true LEFT JOIN k ON true
"""

_ALLOCATE = """
SELECT nextval(pg_get_serial_sequence('ventas', 'id_venta')),
       ARRAY(SELECT nextval(pg_get_serial_sequence('detalle_venta', 'id_detalle'))
             FROM generate_series(1, $1::integer))
"""

# State literals rendered from the vocabulary (`sales.domain.vocab`).
_PENDIENTE = EstatusVenta.PENDIENTE.value
_APLICADO = EstadoAbono.APLICADO.value

# FK checks run at the end of the statement, after every CTE inserted its rows.
# Available-to-promise, exact under concurrency in this one statement: `l` locks the cart's
# materials in ascending id order and (READ COMMITTED) reads their LATEST committed rows; `ok`
# admits the cart when every material passes the domain's rule on them; only then `c` holds the
# quantities in `comprometido` (the UPDATE applies to the row version `l` locked) and the sale
# is inserted. A refused cart writes nothing and returns the locked figures for the 409.
_WRITE = f"""
WITH q AS (
  SELECT * FROM unnest($44::integer[], $45::integer[]) AS q(id, qty)
), l AS MATERIALIZED (
  SELECT m.id_material, m.descripcion, m.stock_actual, m.stock_minimo, m.comprometido, q.qty
  FROM materiales m JOIN q ON q.id = m.id_material
  ORDER BY m.id_material
  FOR UPDATE OF m
), ok AS MATERIALIZED (
  SELECT count(*) = cardinality($44::integer[]) AND coalesce(bool_and({_ADMITS}), false)
         AS admitted
  FROM l
), c AS (
  UPDATE materiales m SET comprometido = m.comprometido + l.qty
  FROM l, ok WHERE ok.admitted AND m.id_material = l.id_material
), v AS (
  INSERT INTO ventas (id_venta, id_cotizacion, id_cliente, estatus, total, total_pagado,
                      permitir_backorder, fecha_venta, fecha_entrega, creado_por, creado_en,
                      version, compromete_stock)
  SELECT $1::integer, NULL, $2::integer, '{_PENDIENTE}', $3::numeric, $4::numeric,
         $5::boolean, $6::date, $7::date, $8::varchar, $9::timestamptz, 1, true
  FROM ok WHERE ok.admitted
  RETURNING id_venta
), d AS (
  INSERT INTO detalle_venta (id_detalle, id_venta, id_producto, id_material, cantidad, largo_pza,
                             ancho_pza, espesor_mm, porcentaje_utilidad, minutos_laser,
                             precio_unitario, subtotal, parametros_precio)
  SELECT x.id, v.id_venta, x.pr, x.ma, x.ca, x.la, x.an, x.es, x.ut, x.mi, x.pu, x.st, x.pp::json
  FROM v, unnest($10::integer[], $11::integer[], $12::integer[], $13::integer[],
                 $14::numeric[], $15::numeric[], $16::integer[], $17::integer[],
                 $18::integer[], $19::numeric[], $20::numeric[], $21::text[])
       AS x(id, pr, ma, ca, la, an, es, ut, mi, pu, st, pp)
), ab AS (
  INSERT INTO abonos (id_venta, monto, metodo, referencia, estado, fecha, fecha_negocio, usuario)
  SELECT v.id_venta, $22::numeric, $23::varchar, $24::varchar, '{_APLICADO}', $9::timestamptz,
         $6::date, $8::varchar
  FROM v WHERE $22::numeric > 0
), au AS (
  INSERT INTO auditoria (entidad, entidad_id, accion, desde, hacia, motivo, usuario, fecha,
                         payload)
  SELECT 'venta', v.id_venta, 'confirmar', NULL, '{_PENDIENTE}', NULL, $8::varchar,
         $9::timestamptz, $25::text::json
  FROM v
), o AS (
  INSERT INTO outbox (id, aggregatetype, aggregateid, type, topic, payload, headers)
  SELECT $26::varchar, $27::varchar, $28::varchar, $29::varchar, $30::varchar,
         $31::text::json, $32::text::json
  FROM v
), k AS (
  INSERT INTO idempotency_keys (principal, key, method, path, fingerprint, status, media_type,
                                location, body, created_at, expires_at)
  SELECT $34::varchar, $35::varchar, $36::varchar, $37::varchar, $38::varchar, $39::integer,
         $40::varchar, $41::varchar, $42::bytea, $9::timestamptz, $43::timestamptz
  FROM v WHERE $34::varchar IS NOT NULL
)
SELECT ok.admitted, CASE WHEN ok.admitted THEN pg_notify($33::text, '') END AS notified,
       l.id_material, l.descripcion, l.stock_actual, l.stock_minimo, l.comprometido
FROM ok LEFT JOIN l ON NOT ok.admitted
"""

# PostgreSQL: sale, lines, abono and audit row in ONE statement (data-modifying CTEs; the FK
# checks run at the end of the statement). Lines come in as arrays, inserted in ordinality
# order so that sorted ids match the cart order.
INSERT_SALE = text(
    f"""
WITH v AS (
  INSERT INTO ventas (id_cotizacion, id_cliente, estatus, total, total_pagado,
                      permitir_backorder, fecha_venta, fecha_entrega, creado_por, creado_en,
                      version, compromete_stock)
  VALUES (CAST(:id_cotizacion AS integer), CAST(:id_cliente AS integer), '{_PENDIENTE}',
          CAST(:total AS numeric), CAST(:total_pagado AS numeric), CAST(:backorder AS boolean),
          CAST(:hoy AS date), CAST(:fecha_entrega AS date), CAST(:usuario AS varchar),
          CAST(:now AS timestamptz), 1, true)
  RETURNING id_venta
), d AS (
  INSERT INTO detalle_venta (id_venta, id_producto, id_material, cantidad, largo_pza, ancho_pza,
                             espesor_mm, porcentaje_utilidad, minutos_laser, precio_unitario,
                             subtotal, parametros_precio)
  SELECT v.id_venta, x.pr, x.ma, x.ca, x.la, x.an, x.es, x.ut, x.mi, x.pu, x.st, x.pp::json
  FROM v, unnest(CAST(:l_producto AS integer[]), CAST(:l_material AS integer[]),
                 CAST(:l_cantidad AS integer[]), CAST(:l_largo AS numeric[]),
                 CAST(:l_ancho AS numeric[]), CAST(:l_espesor AS integer[]),
                 CAST(:l_utilidad AS integer[]), CAST(:l_minutos AS integer[]),
                 CAST(:l_precio AS numeric[]), CAST(:l_subtotal AS numeric[]),
                 CAST(:l_params AS text[]))
       WITH ORDINALITY AS x(pr, ma, ca, la, an, es, ut, mi, pu, st, pp, ord)
  ORDER BY x.ord
  RETURNING id_detalle
), ab AS (
  INSERT INTO abonos (id_venta, monto, metodo, referencia, estado, fecha, fecha_negocio, usuario)
  SELECT v.id_venta, CAST(:monto AS numeric), CAST(:metodo AS varchar),
         CAST(:referencia AS varchar), '{_APLICADO}', CAST(:now AS timestamptz),
         CAST(:hoy AS date), CAST(:usuario AS varchar)
  FROM v WHERE CAST(:monto AS numeric) > 0
), au AS (
  INSERT INTO auditoria (entidad, entidad_id, accion, desde, hacia, motivo, usuario, fecha,
                         payload)
  SELECT 'venta', v.id_venta, 'confirmar', NULL, '{_PENDIENTE}', NULL, CAST(:usuario AS varchar),
         CAST(:now AS timestamptz), CAST(:audit AS json)
  FROM v
)
SELECT v.id_venta, ARRAY(SELECT id_detalle FROM d ORDER BY id_detalle) AS ids FROM v
"""
)


CHANNEL = notify_channel("sales")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


Render = Callable[[VentaResult], Response]


async def confirm_sale(
    engine: AsyncEngine,
    data: VentaIn,
    actor: Actor,
    render: Render | None = None,
) -> VentaResult:
    """§A.4.6 on PostgreSQL for a cart without `cliente_nuevo` (that one needs the ORM
    session path, which creates the client in the same transaction). In a keyed request
    (:func:`service_defaults.idempotency.current`) the answer `render` gives is stored with the
    sale; a key another request committed first raises ``KeyAlreadyRecorded``."""
    if data.cliente_nuevo is not None:
        raise ValueError("confirm_sale on the hot path does not create clients")
    check_cart_shape(data)
    view = await catalog_view(engine, {x.producto_id for x in data.carrito})
    lines = price_lines(data, view.productos, view.tabulador, view.tarifa)
    requested = d.requested_per_material((x.material_id, x.cantidad) for x in data.carrito)
    error: DomainError | idempotency.Replay | None = None  # raised once the connection is back
    result: VentaResult | None = None
    pending = idempotency.current()
    async with driver_connection(engine) as conn:
        rows = await conn.fetch(
            READ,
            list(requested),
            list(requested.values()),
            cart_prices_pass(data, lines),
            data.cliente_id,
            data.permitir_backorder,
            len(data.carrito),
            pending.principal if pending else None,
            pending.key if pending else None,
        )
        head = rows[0]
        try:
            if pending is not None:
                await _stored_answer(conn, pending, head)
            if data.cliente_id is not None and head["cliente"] is None:
                raise NotFound(
                    f"Cliente {data.cliente_id} no existe",
                    code="CLIENTE_NO_EXISTE",
                    field="cliente_id",
                )
            materials: dict[int, MaterialStock] = {}
            inactive: set[int] = set()
            for r in rows:
                mid = r["id_material"]
                if mid is None:
                    continue
                materials[mid] = MaterialStock(
                    mid, r["descripcion"], r["stock_actual"], r["stock_minimo"], r["comprometido"]
                )
                if not r["activo"]:
                    inactive.add(mid)
            cart = check_cart(data, lines, materials, inactive)
        except (DomainError, idempotency.Replay) as exc:
            error = exc
        else:
            id_venta, ids = head["id_venta"], head["ids"]
            if id_venta is None:  # the SQL pre-check disagreed with the rule: draw them now
                id_venta, ids = await conn.fetchrow(_ALLOCATE, len(data.carrito))
            outcome = await _write(
                conn, data, actor, cart, int(id_venta), [int(i) for i in ids], render
            )
            if isinstance(outcome, DomainError):
                error = outcome
            else:
                result = outcome
    if error is not None:
        raise error
    assert result is not None
    return result


async def _write(
    conn: Any,
    data: VentaIn,
    actor: Actor,
    cart: CheckedCart,
    id_venta: int,
    line_ids: list[int],
    render: Render | None,
) -> VentaResult | DomainError:
    """Write the sale in ONE statement; the 409 of a cart its admission refused is returned."""
    now = utcnow()
    hoy = d.business_date(now)
    total = cart.total
    total_pagado = data.monto_abonado if data.monto_abonado > 0 else Decimal("0.00")
    folio = d.folio_venta(id_venta)
    carrito, prices = data.carrito, cart.prices
    event = sale_confirmed(
        id_venta, folio, data.cliente_id, line_ids, data, prices, total, now, actor
    )
    row = outbox_row(event)
    result = VentaResult(
        venta=VentaRef(id_venta),
        folio=folio,
        total=total,
        saldo_restante=d.saldo_restante(total, total_pagado),
        alertas_stock=cart.alertas,
        event_id=row.id,
    )
    pending = idempotency.current()
    key: dict[str, Any] = {}
    if pending is not None and render is not None:
        key = pending.row(render(result), now)
    try:
        written = await conn.fetch(
            _WRITE,
            id_venta,
            data.cliente_id,
            total,
            total_pagado,
            data.permitir_backorder,
            hoy,
            data.fecha_entrega,
            actor.sub,
            now,
            line_ids,
            [x.producto_id for x in carrito],
            [x.material_id for x in carrito],
            [x.cantidad for x in carrito],
            [x.largo for x in carrito],
            [x.ancho for x in carrito],
            [x.espesor_mm for x in carrito],
            [p.porcentaje_utilidad for p in prices],
            [x.minutos_laser for x in carrito],
            [p.precio_unitario for p in prices],
            [p.subtotal for p in prices],
            [_compact(p.snapshot()) for p in prices],
            data.monto_abonado,
            data.metodo_pago,
            data.referencia_pago,
            _compact({"total": str(total), "permitir_backorder": data.permitir_backorder}),
            row.id,
            row.aggregatetype,
            row.aggregateid,
            row.type,
            row.topic,
            row.payload_text,
            _compact(row.headers),
            CHANNEL,
            key.get("principal"),
            key.get("key"),
            key.get("method"),
            key.get("path"),
            key.get("fingerprint"),
            key.get("status"),
            key.get("media_type"),
            key.get("location"),
            key.get("body"),
            key.get("expires_at"),
            list(cart.requested),
            list(cart.requested.values()),
        )
    except Exception as exc:
        if getattr(exc, "constraint_name", None) == idempotency.PRIMARY_KEY_NAME:
            raise idempotency.KeyAlreadyRecorded from exc
        if _is_integrity_error(exc):
            raise IntegrityError("confirm sale", None, exc) from exc
        raise
    if not written[0]["admitted"]:
        return _refused(written, cart.requested)  # raised once the connection is back
    if pending is not None and key:
        pending.recorded = True
    return result


class PostgresSaleWriter:
    """The PostgreSQL `SaleWriter`: the POS confirmation in two statements on the driver
    connection (:func:`confirm_sale`), and a session's sale rows in one statement
    (`INSERT_SALE`, for a POS sale that creates its client and for quote conversion)."""

    write_lock: asyncio.Lock | None = None  # PostgreSQL's writers need no turn-taking

    async def confirm_direct(
        self,
        engine: AsyncEngine,
        data: VentaIn,
        actor: Actor,
        render: Render | None,
        wake: Callable[[], None] | None,
    ) -> VentaResult | None:
        if data.cliente_nuevo is not None:
            return None
        # one statement with the key row; its NOTIFY wakes the relay (`wake` not needed)
        return await confirm_sale(engine, data, actor, render)

    async def insert_sale(self, s: AsyncSession, rows: ConfirmedSaleRows) -> tuple[int, list[int]]:
        data, prices, lines = rows.data, rows.prices, rows.data.carrito
        row = (
            await s.execute(
                INSERT_SALE,
                {
                    "id_cotizacion": rows.id_cotizacion,
                    "id_cliente": rows.id_cliente,
                    "total": rows.total,
                    "total_pagado": rows.total_pagado,
                    "backorder": data.permitir_backorder,
                    "hoy": rows.hoy,
                    "fecha_entrega": data.fecha_entrega,
                    "usuario": rows.usuario,
                    "now": rows.now,
                    "l_producto": [x.producto_id for x in lines],
                    "l_material": [x.material_id for x in lines],
                    "l_cantidad": [x.cantidad for x in lines],
                    "l_largo": [x.largo for x in lines],
                    "l_ancho": [x.ancho for x in lines],
                    "l_espesor": [x.espesor_mm for x in lines],
                    "l_utilidad": [p.porcentaje_utilidad for p in prices],
                    "l_minutos": [x.minutos_laser for x in lines],
                    "l_precio": [p.precio_unitario for p in prices],
                    "l_subtotal": [p.subtotal for p in prices],
                    "l_params": [json.dumps(p.snapshot(), separators=(",", ":")) for p in prices],
                    "monto": data.monto_abonado,
                    "metodo": data.metodo_pago,
                    "referencia": data.referencia_pago,
                    "audit": json.dumps(rows.audit_payload, separators=(",", ":")),
                },
            )
        ).one()
        return int(row[0]), sorted(int(i) for i in row[1])


async def _stored_answer(conn: Any, pending: idempotency.Pending, head: Any) -> None:
    """Replay the key's stored answer; an expired one is deleted (the key starts afresh)."""
    pending.looked_up = True
    if head["method"] is None:
        return
    stored = idempotency.stored_from_row(
        [head[c] for c in ("method", "path", "fingerprint", "status", "media_type", "location")]
        + [head["body"], head["expires_at"]]
    )
    if stored.expires_at > utcnow():
        raise idempotency.Replay(stored)
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND expires_at <= $3",
        pending.principal,
        pending.key,
        stored.expires_at,
    )


def _refused(rows: list[Any], requested: dict[int, int]) -> DomainError:
    """The 409 of a cart the write's admission refused, from the rows it locked (what was free
    when this sale's turn came; another sale took the rest since the read)."""
    locked = {
        r["id_material"]: MaterialStock(
            r["id_material"],
            r["descripcion"],
            r["stock_actual"],
            r["stock_minimo"],
            r["comprometido"],
        )
        for r in rows
        if r["id_material"] is not None
    }
    missing = [mid for mid in requested if mid not in locked]
    if missing:
        return NotFound(f"Material {missing[0]} no existe", code="MATERIAL_NO_EXISTE")
    return d.stock_conflict(d.shortfalls(locked, requested))


def _is_integrity_error(exc: BaseException) -> bool:
    """asyncpg's constraint violations (SQLSTATE class 23) → the API's 409, as on the ORM path."""
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("23")
