"""The POS confirmation on a SQLite file (embedded mode) in ONE hop to a writer thread.

On aiosqlite every statement of the ORM session path
(`sales.application.pos.confirm_sale`, about ten) is a round trip to the connection's worker
thread and back through the event loop, plus SQLAlchemy's per-statement machinery. Here the whole
transaction runs as one plain function
on a dedicated ``sqlite3`` connection in a dedicated thread:

``BEGIN IMMEDIATE`` (takes SQLite's writer lock up front, waits up to the busy timeout like
the pooled connections), one read of the cart's materials and the client, the shared pure
rule (:func:`sales.application.pos.check_cart`, on stock − comprometido), the quantities held
in ``comprometido`` (available-to-promise), then sale, lines, abono, audit row and the
SaleConfirmed outbox row (:func:`sales.application.pos.sale_confirmed`,
:func:`nexo_messaging.outbox.outbox_row`) and ``COMMIT``; any error rolls back.

Values are bound through the SQLAlchemy column types' own SQLite bind processors, so the
rows are stored exactly as the session path stores them (Numeric as REAL, DateTime as text,
JSON as text). Validation and pricing run before the hop, on the event loop, with the same
functions and in the same order as the other two paths
(:func:`~sales.application.pos.check_cart_shape`,
:func:`~sales.application.pos.price_lines` from the catalogue cache).

Durability is the pooled connections': WAL + ``synchronous=NORMAL``
(:func:`service_defaults.db.sqlite_pragmas`): a commit is atomic and survives a process
crash; a power cut may lose the last commits not yet checkpointed, never corrupts the file.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import Response
from sqlalchemy import Table, event, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from nexo_messaging.outbox import outbox_row
from sales import domain as d
from sales.application.common import Actor, utcnow
from sales.application.pos import (
    ConfirmedSaleRows,
    PricedLineResult,
    VentaIn,
    VentaRef,
    VentaResult,
    check_cart,
    check_cart_shape,
    price_lines,
    sale_confirmed,
)
from sales.application.pricing import catalog_view
from sales.domain import MaterialStock, NotFound
from sales.models import Base, idempotency, outbox
from service_defaults import idempotency as keys
from service_defaults.db import sqlite_pragmas

_DIALECT = sqlite.dialect()
Render = Callable[[VentaResult], Response]


@dataclass(frozen=True)
class _Insert:
    """``INSERT INTO table (columns) VALUES (?, …)`` with each column type's bind processor."""

    sql: str
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(
        cls,
        table: Table,
        columns: Sequence[str],
        *,
        verbatim: frozenset[str] = frozenset(),
        dialect: Dialect = _DIALECT,
    ) -> _Insert:
        """`verbatim`: columns whose values are bound as given (already rendered)."""
        procs = tuple(
            None
            if name in verbatim
            else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in columns
        )
        marks = ", ".join("?" * len(columns))
        return cls(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", procs)

    def params(self, *values: Any) -> tuple[Any, ...]:
        return tuple(
            v if p is None or v is None else p(v)
            for v, p in zip(values, self.processors, strict=True)
        )


_T = Base.metadata.tables
_VENTA = _Insert.of(
    _T["ventas"],
    (
        "id_cotizacion",
        "id_cliente",
        "estatus",
        "total",
        "total_pagado",
        "permitir_backorder",
        "fecha_venta",
        "fecha_entrega",
        "creado_por",
        "creado_en",
        "version",
        "compromete_stock",
    ),
)
_DETALLE = _Insert.of(
    _T["detalle_venta"],
    (
        "id_venta",
        "id_producto",
        "id_material",
        "cantidad",
        "largo_pza",
        "ancho_pza",
        "espesor_mm",
        "porcentaje_utilidad",
        "minutos_laser",
        "precio_unitario",
        "subtotal",
        "parametros_precio",
    ),
)
_ABONO = _Insert.of(
    _T["abonos"],
    ("id_venta", "monto", "metodo", "referencia", "estado", "fecha", "fecha_negocio", "usuario"),
)
_AUDITORIA = _Insert.of(
    _T["auditoria"],
    ("entidad", "entidad_id", "accion", "desde", "hacia", "motivo", "usuario", "fecha", "payload"),
)
# payload: the event's JSON text stored verbatim (as `nexo_messaging.outbox.enqueue` does)
_OUTBOX = _Insert.of(
    outbox,
    ("id", "aggregatetype", "aggregateid", "type", "topic", "payload", "headers"),
    verbatim=frozenset({"payload"}),
)
_CLIENTE = "SELECT 1 FROM clientes WHERE id_cliente = ?"
_APLICADO = d.EstadoAbono.APLICADO.value
_KEY_COLUMNS = tuple(c.name for c in idempotency.c)
_KEY = _Insert.of(idempotency, _KEY_COLUMNS)
_KEY_READ = (
    "SELECT method, path, fingerprint, status, media_type, location, body, expires_at "
    "FROM idempotency_keys WHERE principal = ? AND key = ?"
)
_KEY_FORGET = "DELETE FROM idempotency_keys WHERE principal = ? AND key = ?"
_EXPIRES_AT = idempotency.c.expires_at.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)


def _materials_sql(n: int) -> str:
    marks = ", ".join("?" * n)
    return (
        "SELECT id_material, descripcion, stock_actual, stock_minimo, activo, comprometido "
        f"FROM materiales WHERE id_material IN ({marks})"
    )


# Available-to-promise: the sale holds its quantities (the domain's admission rule rendered;
# under BEGIN IMMEDIATE the materials just read cannot have changed, so it always passes here
# after `check_cart` — the guard keeps the write exact on its own).
_COMMIT = (
    "UPDATE materiales SET comprometido = comprometido + :q WHERE id_material = :id AND "
    + d.admits_sql(":q", "stock_actual", "comprometido", ":backorder")
)


RELAY_WAKE_DELAY_S = 0.1
"""Committed sales wake the outbox relay once per this interval, not once each: under load the
relay then claims, publishes and marks a batch per pass (and the stock consumer receives
batches) instead of doing all of it per sale. It bounds the added publish latency."""


class SqliteSaleWriter:
    """One ``sqlite3`` connection to the engine's database file and the one thread that uses
    it (transactions take turns; SQLite has a single writer anyway). Closed with the engine."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sales-sqlite-writer")
        self._conn: sqlite3.Connection | None = None
        self._wake: asyncio.TimerHandle | None = None

    def wake_relay_soon(self, wake: Callable[[], None]) -> None:
        """Call `wake` (the relay's) within RELAY_WAKE_DELAY_S, once for every sale committed
        meanwhile."""
        if self._wake is not None:
            return

        def fire() -> None:
            self._wake = None
            wake()

        self._wake = asyncio.get_running_loop().call_later(RELAY_WAKE_DELAY_S, fire)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # isolation_level=None: no implicit BEGIN; the transaction is ours (BEGIN IMMEDIATE)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            sqlite_pragmas(conn)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        conn, self._conn = self._conn, None
        if conn is not None:
            self._executor.submit(conn.close)  # after any transaction still running
        self._executor.shutdown(wait=True)

    async def confirm_sale(
        self,
        engine: AsyncEngine,
        data: VentaIn,
        actor: Actor,
        render: Render | None = None,
    ) -> VentaResult:
        """§A.4.6 for a cart without `cliente_nuevo` (that one needs the session path, which
        creates the client in the same transaction). In a keyed request
        (:func:`service_defaults.idempotency.current`) the key is looked up first in the
        transaction (``Replay`` when it has an answer) and the answer `render` gives is stored
        with the sale."""
        if data.cliente_nuevo is not None:
            raise ValueError("the SQLite hot path does not create clients")
        check_cart_shape(data)
        view = await catalog_view(engine, {x.producto_id for x in data.carrito})
        lines = price_lines(data, view.productos, view.tabulador, view.tarifa)
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()  # trace headers of the outbox row
        call = functools.partial(ctx.run, self._confirm, data, actor, lines, render)
        try:
            return await loop.run_in_executor(self._executor, call)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError("confirm sale", None, exc) from exc
        except sqlite3.OperationalError as exc:  # e.g. "database is locked" → the API's 503
            raise OperationalError("confirm sale", None, exc) from exc

    def _confirm(
        self,
        data: VentaIn,
        actor: Actor,
        lines: list[PricedLineResult],
        render: Render | None,
    ) -> VentaResult:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            pending = keys.current()
            if pending is not None:
                _replay_stored(conn, pending)
            result = _write(conn, data, actor, lines)
            if pending is not None and render is not None:
                conn.execute(_KEY.sql, _KEY.params(*_key_values(pending, render(result))))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # a failed COMMIT (I/O error) leaves it open too
                conn.execute("ROLLBACK")
            raise
        if pending is not None and render is not None:
            pending.recorded = True
        return result


def _replay_stored(conn: sqlite3.Connection, pending: keys.Pending) -> None:
    """Raise ``Replay`` with the key's stored answer; forget an expired one."""
    pending.looked_up = True
    row = conn.execute(_KEY_READ, (pending.principal, pending.key)).fetchone()
    if row is None:
        return
    stored = keys.stored_from_row((*row[:7], _EXPIRES_AT(row[7]) if _EXPIRES_AT else row[7]))
    if stored.expires_at > utcnow():
        raise keys.Replay(stored)
    conn.execute(_KEY_FORGET, (pending.principal, pending.key))


def _key_values(pending: keys.Pending, response: Response) -> list[Any]:
    row = pending.row(response)
    return [row[name] for name in _KEY_COLUMNS]


def _write(
    conn: sqlite3.Connection,
    data: VentaIn,
    actor: Actor,
    lines: list[PricedLineResult],
) -> VentaResult:
    if (
        data.cliente_id is not None
        and conn.execute(_CLIENTE, (data.cliente_id,)).fetchone() is None
    ):
        raise NotFound(
            f"Cliente {data.cliente_id} no existe", code="CLIENTE_NO_EXISTE", field="cliente_id"
        )
    ids = sorted({x.material_id for x in data.carrito})
    materials: dict[int, MaterialStock] = {}
    inactive: set[int] = set()
    for mid, nombre, actual, minimo, activo, held in conn.execute(_materials_sql(len(ids)), ids):
        materials[mid] = MaterialStock(mid, nombre, actual, minimo, held)
        if not activo:
            inactive.add(mid)
    cart = check_cart(data, lines, materials, inactive)
    for mid, qty in cart.requested.items():  # ascending id order
        params = {"q": qty, "id": mid, "backorder": data.permitir_backorder}
        if conn.execute(_COMMIT, params).rowcount != 1:
            raise d.stock_conflict(d.shortfalls(materials, {mid: qty}))
    prices, total = cart.prices, cart.total
    now = utcnow()
    hoy = d.business_date(now)
    total_pagado = data.monto_abonado if data.monto_abonado > 0 else Decimal("0.00")
    cur = conn.execute(
        _VENTA.sql,
        _VENTA.params(
            None,
            data.cliente_id,
            d.EstatusVenta.PENDIENTE.value,
            total,
            total_pagado,
            data.permitir_backorder,
            hoy,
            data.fecha_entrega,
            actor.sub,
            now,
            1,
            True,  # every confirmed sale holds its quantities (backorder too, docs/rules.md)
        ),
    )
    id_venta = int(cur.lastrowid or 0)
    line_ids: list[int] = []
    for linea, price in zip(data.carrito, prices, strict=True):
        cur = conn.execute(
            _DETALLE.sql,
            _DETALLE.params(
                id_venta,
                linea.producto_id,
                linea.material_id,
                linea.cantidad,
                linea.largo,
                linea.ancho,
                linea.espesor_mm,
                price.porcentaje_utilidad,
                linea.minutos_laser,
                price.precio_unitario,
                price.subtotal,
                price.snapshot(),
            ),
        )
        line_ids.append(int(cur.lastrowid or 0))
    if data.monto_abonado > 0:
        conn.execute(
            _ABONO.sql,
            _ABONO.params(
                id_venta,
                data.monto_abonado,
                data.metodo_pago,
                data.referencia_pago,
                _APLICADO,
                now,
                hoy,
                actor.sub,
            ),
        )
    audit = {"total": str(total), "permitir_backorder": data.permitir_backorder}
    conn.execute(
        _AUDITORIA.sql,
        _AUDITORIA.params(
            "venta",
            id_venta,
            "confirmar",
            None,
            d.EstatusVenta.PENDIENTE.value,
            None,
            actor.sub,
            now,
            audit,
        ),
    )
    folio = d.folio_venta(id_venta)
    event_ = sale_confirmed(
        id_venta, folio, data.cliente_id, line_ids, data, prices, total, now, actor
    )
    row = outbox_row(event_)
    conn.execute(
        _OUTBOX.sql,
        _OUTBOX.params(
            row.id,
            row.aggregatetype,
            row.aggregateid,
            row.type,
            row.topic,
            row.payload_text,
            row.headers,
        ),
    )
    return VentaResult(
        venta=VentaRef(id_venta),
        folio=folio,
        total=total,
        saldo_restante=d.saldo_restante(total, total_pagado),
        alertas_stock=cart.alertas,
        event_id=row.id,
    )


_writers: weakref.WeakKeyDictionary[AsyncEngine, SqliteSaleWriter | None] = (
    weakref.WeakKeyDictionary()
)


def database_file(engine: AsyncEngine) -> str | None:
    """The file of a SQLite engine; None for an in-memory database (one shared connection,
    which a second connection would not see) or another database."""
    if engine.dialect.name != "sqlite":
        return None
    database = make_url(str(engine.url)).database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return database


def writer_for(engine: AsyncEngine) -> SqliteSaleWriter | None:
    """The engine's writer, chosen once per engine: None unless it is a SQLite file (made on
    first use, closed when the engine is disposed)."""
    if engine in _writers:
        return _writers[engine]
    path = database_file(engine)
    writer = SqliteSaleWriter(path) if path is not None else None
    _writers[engine] = writer
    if writer is not None:

        def _disposed(_engine: Any) -> None:
            _writers.pop(engine, None)
            writer.close()

        event.listen(engine.sync_engine, "engine_disposed", _disposed)
    return writer


# Core statements of the session path, built once: parameters are passed at execution, so the
# compiled form is reused from SQLAlchemy's cache (inline `.values(...)` would compile on every
# call). Executemany with RETURNING = one multi-row INSERT (insertmanyvalues).
_CORE_VENTA = insert(_T["ventas"]).returning(_T["ventas"].c.id_venta)
_CORE_DETALLE = insert(_T["detalle_venta"]).returning(_T["detalle_venta"].c.id_detalle)
_CORE_ABONO = insert(_T["abonos"])
_CORE_AUDITORIA = insert(_T["auditoria"])


class PortableSaleWriter:
    """The `SaleWriter` of SQLite (and any other database): the POS confirmation on the
    engine's file in one hop to its writer thread (:class:`SqliteSaleWriter`) when the engine
    is a SQLite file, and a session's sale rows as cached Core inserts."""

    def __init__(self) -> None:
        self.write_lock: asyncio.Lock | None = asyncio.Lock()

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
        writer = writer_for(engine)
        if writer is None:
            return None
        result = await writer.confirm_sale(engine, data, actor, render)
        if wake is not None:
            writer.wake_relay_soon(wake)
        return result

    async def insert_sale(self, s: AsyncSession, rows: ConfirmedSaleRows) -> tuple[int, list[int]]:
        data, hoy, now, usuario = rows.data, rows.hoy, rows.now, rows.usuario
        venta_row = {
            "id_cotizacion": rows.id_cotizacion,
            "id_cliente": rows.id_cliente,
            "estatus": d.EstatusVenta.PENDIENTE.value,
            "total": rows.total,
            "total_pagado": rows.total_pagado,
            "permitir_backorder": data.permitir_backorder,
            "fecha_venta": hoy,
            "fecha_entrega": data.fecha_entrega,
            "creado_por": usuario,
            "creado_en": now,
            "version": 1,
            "compromete_stock": True,  # held by `commit_stock` (every sale, docs/rules.md)
        }
        id_venta = int((await s.execute(_CORE_VENTA, venta_row)).scalar_one())
        # Executemany with RETURNING = one multi-row INSERT (insertmanyvalues) from a cached
        # compiled statement; ids are drawn in VALUES order, so sorted ids match the lines.
        line_ids = sorted(
            (
                await s.execute(
                    _CORE_DETALLE,
                    [
                        {
                            "id_venta": id_venta,
                            "id_producto": linea.producto_id,
                            "id_material": linea.material_id,
                            "cantidad": linea.cantidad,
                            "largo_pza": linea.largo,
                            "ancho_pza": linea.ancho,
                            "espesor_mm": linea.espesor_mm,
                            "porcentaje_utilidad": price.porcentaje_utilidad,
                            "minutos_laser": linea.minutos_laser,
                            "precio_unitario": price.precio_unitario,
                            "subtotal": price.subtotal,
                            "parametros_precio": price.snapshot(),
                        }
                        for linea, price in zip(data.carrito, rows.prices, strict=True)
                    ],
                )
            ).scalars()
        )
        if data.monto_abonado > 0:
            await s.execute(
                _CORE_ABONO,
                {
                    "id_venta": id_venta,
                    "monto": data.monto_abonado,
                    "metodo": data.metodo_pago,
                    "referencia": data.referencia_pago,
                    "estado": d.EstadoAbono.APLICADO.value,
                    "fecha": now,
                    "fecha_negocio": hoy,
                    "usuario": usuario,
                },
            )
        await s.execute(
            _CORE_AUDITORIA,
            {
                "entidad": "venta",
                "entidad_id": id_venta,
                "accion": "confirmar",
                "desde": None,
                "hacia": d.EstatusVenta.PENDIENTE.value,
                "motivo": None,
                "usuario": usuario,
                "fecha": now,
                "payload": rows.audit_payload,
            },
        )
        return id_venta, line_ids
