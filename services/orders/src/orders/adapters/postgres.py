"""The PostgreSQL `StockStore`: hand-written statements (LATERAL FEFO prefix read, scope totals
on a second pooled connection, ``unnest`` array updates and inserts).

Every eligibility condition is rendered from the domain's constants
(`orders.adapters.eligibility`), and the locked re-read hands the domain the rows' real states.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import QueuePool

from orders import domain as d
from orders.adapters.eligibility import existencia_elegible_sql, fefo_order_sql

FEFO_FILAS_PRIMERA_LECTURA = 12
"""Eligible stock rows the first FEFO read takes per product on PostgreSQL (fewer when the
requirement is smaller). A product those rows do not cover is read again with
`FEFO_FACTOR_LECTURA` times as many, up to ``LIMIT requerido``: every eligible row holds at
least one free unit, so that many rows either cover the requirement or are the product's whole
eligible scope. Exact for any demand; the usual case (dozens of units per row) is one read of a
handful of rows per product."""

FEFO_FACTOR_LECTURA = 4

_ELEGIBLE_PG = f"""u.almacen_id = :almacen AND l.fecha_caducidad > :umbral
          AND lu.cantidad > lu.cantidad_reservada
          AND {
    existencia_elegible_sql(
        lote="l",
        ubicacion="u",
        almacen_activo="(SELECT a.activo FROM almacenes AS a WHERE a.id = :almacen)",
    )
}"""
"""`domain.elegible_fefo` (+ free stock left) for the PostgreSQL statements below, rendered from
the domain's constants; the warehouse flag is one uncorrelated sub-select, evaluated once."""

_FEFO_ORDER_L = fefo_order_sql(
    {
        "fecha_caducidad": "l.fecha_caducidad",
        "numero_lote": "l.numero_lote",
        "lote_id": "l.id",
        "ubicacion_codigo": "u.codigo",
        "lote_ubicacion_id": "lu.id",
    }
)
_FEFO_ORDER_S = fefo_order_sql(
    {
        "fecha_caducidad": "s.fecha_caducidad",
        "numero_lote": "s.numero_lote",
        "lote_id": "s.lote_id",
        "ubicacion_codigo": "s.codigo",
        "lote_ubicacion_id": "s.lu_id",
    }
)

_SQL_CANDIDATOS_PG = f"""
SELECT r.producto_id, c.lu_id, c.lote_id, c.numero_lote, c.fecha_caducidad, c.codigo,
       c.cantidad, c.cantidad_reservada
FROM unnest(CAST(:prods AS integer[]), CAST(:reqs AS integer[]), CAST(:lims AS integer[]))
     AS r(producto_id, req, lim)
CROSS JOIN LATERAL (
    SELECT s.*,
           sum(s.cantidad - s.cantidad_reservada) OVER (
               ORDER BY {_FEFO_ORDER_S}
               ROWS UNBOUNDED PRECEDING) AS acumulado
    FROM (
        SELECT lu.id AS lu_id, l.id AS lote_id, l.numero_lote, l.fecha_caducidad, u.codigo,
               lu.cantidad, lu.cantidad_reservada
        FROM lotes AS l
        JOIN lote_ubicaciones AS lu ON lu.lote_id = l.id
        JOIN ubicaciones AS u ON u.id = lu.ubicacion_id
        WHERE l.producto_id = r.producto_id AND {_ELEGIBLE_PG}
        ORDER BY {_FEFO_ORDER_L}
        LIMIT r.lim
    ) AS s
) AS c
WHERE c.acumulado - (c.cantidad - c.cantidad_reservada) < r.req
"""
"""The FEFO prefix of each product in one statement: per product (LATERAL) its eligible rows in
full FEFO order — `ix_lotes_fefo` yields the lots in caducidad order and an incremental sort
orders each caducidad's few rows by the tie-breaks — up to `lim` rows, cut after the first row
that covers the requirement (Σ neto before the row < requerido)."""

_SQL_TOTALES_PG = f"""
SELECT l.producto_id, sum(lu.cantidad - lu.cantidad_reservada)
FROM lotes AS l
JOIN lote_ubicaciones AS lu ON lu.lote_id = l.id
JOIN ubicaciones AS u ON u.id = lu.ubicacion_id
WHERE l.producto_id = ANY(CAST(:prods AS integer[])) AND {_ELEGIBLE_PG}
GROUP BY l.producto_id
"""

_SQL_LOCK_PG = (
    "SELECT lu.id, lu.cantidad, lu.cantidad_reservada, l.estado, u.estado, u.activo, a.activo, "
    "u.almacen_id FROM lote_ubicaciones AS lu JOIN lotes AS l ON l.id = lu.lote_id "
    "JOIN ubicaciones AS u ON u.id = lu.ubicacion_id JOIN almacenes AS a ON a.id = u.almacen_id "
    "WHERE lu.id = ANY(CAST(:ids AS integer[])) ORDER BY lu.id FOR UPDATE OF lu"
)
"""Lock the prefix rows and read, under the lock, everything eligibility needs: the snapshots
carry the real lot / location / warehouse states, which the domain rule then checks."""


_TOTALES_ESPERA_S = 0.05
"""How long the scope-total aggregate may wait for its pooled connection before it runs in the
generation's own transaction instead."""


class _TotalesPg:
    """The eligible net stock of each requested product in the destination warehouse (the
    item's `cantidad_disponible`, §B.4.1 g), which the FEFO prefix alone does not give: one
    aggregate over the request's products only, started on a second pooled connection so that
    PostgreSQL computes it while this transaction reads, locks, allocates and reserves; run in
    this transaction instead when the session is not bound to an engine or the pool has no
    spare connection within its base size (never waits long for one). An unlocked read, like
    any read of other transactions' stock: the allocation itself uses locked rows only.
    """

    def __init__(
        self, session: AsyncSession, productos: Sequence[int], almacen_id: int, umbral: date
    ) -> None:
        self._session = session
        self._params = {"prods": list(productos), "almacen": almacen_id, "umbral": umbral}
        self._task: asyncio.Task[Sequence[Any] | None] | None = None
        if not productos:
            return
        engine = session.bind
        if not isinstance(engine, AsyncEngine):
            return
        pool = engine.sync_engine.pool
        if not isinstance(pool, QueuePool) or pool.checkedout() >= pool.size() - 1:
            return

        async def run() -> Sequence[Any] | None:
            conn = engine.connect()
            try:
                await asyncio.wait_for(conn.start(), _TOTALES_ESPERA_S)
            except TimeoutError:
                # the spare connection was taken meanwhile: never wait for one while this
                # transaction holds row locks the holders may be waiting for
                return None
            try:  # the transaction it opens rolls back on close
                await conn.execute(text("SET LOCAL jit = off"))
                return (await conn.execute(text(_SQL_TOTALES_PG), self._params)).all()
            finally:
                await conn.close()

        self._task = asyncio.create_task(run())

    async def resultado(self) -> dict[int, int]:
        if not self._params["prods"]:
            return {}
        filas = await self._task if self._task is not None else None
        if filas is None:
            filas = (await self._session.execute(text(_SQL_TOTALES_PG), self._params)).all()
        return {int(r[0]): int(r[1]) for r in filas}

    async def cancelar(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def candidatos_fefo_pg(
    session: AsyncSession, requeridos: Mapping[int, int], almacen_id: int, umbral: date
) -> list[d.LoteUbicacionSnap]:
    """PostgreSQL: the eligible FEFO prefix each product needs, locked and re-read.

    One statement reads every product's prefix (`_SQL_CANDIDATOS_PG`); the rare product its
    first rows do not cover is read again with more (`FEFO_FILAS_PRIMERA_LECTURA`).
    The rows are then locked (``FOR UPDATE``, ascending id) and their locked values are the ones
    allocated; if a concurrent reservation committed in between, the prefix is read again (rows
    already locked stay locked and stable). Ordering is byte-wise (``COLLATE "C"``) [DECIDE-B7].
    """
    base = {"umbral": umbral, "almacen": almacen_id}
    # the planner's cost for 200 LATERAL loops crosses jit_above_cost: compiling the plan costs
    # more (30-200 ms) than the few thousand index probes it runs (this transaction only)
    await session.execute(text("SET LOCAL jit = off"))
    leidas: dict[int, tuple[Any, ...]] = {}
    bloqueadas: dict[int, tuple[Any, ...]] = {}
    for _attempt in range(5):
        leidas = {}
        pendientes = sorted(requeridos)
        filas_max = FEFO_FILAS_PRIMERA_LECTURA
        while pendientes:
            lims = [min(requeridos[p], filas_max) for p in pendientes]
            filas = (
                await session.execute(
                    text(_SQL_CANDIDATOS_PG),
                    {
                        **base,
                        "prods": pendientes,
                        "reqs": [requeridos[p] for p in pendientes],
                        "lims": lims,
                    },
                )
            ).all()
            leidos: dict[int, int] = defaultdict(int)
            cubierto: dict[int, int] = defaultdict(int)
            for r in filas:
                leidas[r[1]] = tuple(r)
                leidos[r[0]] += 1
                cubierto[r[0]] += r[6] - r[7]
            siguientes = []
            for p, lim in zip(pendientes, lims, strict=True):
                if cubierto[p] >= requeridos[p]:
                    continue
                # not covered, so nothing was cut: fewer rows than the limit are the whole
                # eligible scope (the limit reaches `requerido` at the latest)
                if leidos[p] == lim:
                    siguientes.append(p)
            pendientes = siguientes
            filas_max *= FEFO_FACTOR_LECTURA
        nuevas = sorted(i for i in leidas if i not in bloqueadas)
        if nuevas:
            for r in (await session.execute(text(_SQL_LOCK_PG), {"ids": nuevas})).all():
                bloqueadas[r[0]] = tuple(r)
        # a concurrent reservation committed between the read and the lock: read again
        if all(i in bloqueadas and bloqueadas[i][1:3] == (r[6], r[7]) for i, r in leidas.items()):
            break
    return [
        d.LoteUbicacionSnap(
            lote_ubicacion_id=lu_id,
            lote_id=r[2],
            numero_lote=r[3],
            producto_id=r[0],
            almacen_id=b[7],
            fecha_caducidad=r[4],
            lote_estado=b[3],
            ubicacion_codigo=r[5],
            cantidad=b[1],
            reservado=b[2],
            ubicacion_estado=b[4],
            ubicacion_activa=b[5],
            almacen_activo=b[6],
        )
        for lu_id, r in leidas.items()
        if (b := bloqueadas.get(lu_id)) is not None
    ]


_SQL_ITEMS_PG = (
    "INSERT INTO propuesta_items (id, propuesta_id, solicitud_item_id, producto_id, "
    "cantidad_aprobada, cantidad_disponible, cantidad_propuesta, cantidad_surtida, "
    "cantidad_pendiente, estado, observaciones) "
    "SELECT v.id, :propuesta_id, v.si, v.prod, v.apr, v.disp, v.prop, 0, v.pend, v.est, v.obs "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:sis AS uuid[]), CAST(:prods AS integer[]), "
    "CAST(:aprs AS integer[]), CAST(:disps AS integer[]), CAST(:props AS integer[]), "
    "CAST(:pends AS integer[]), CAST(:ests AS varchar[]), CAST(:obss AS text[])) "
    "AS v(id, si, prod, apr, disp, prop, pend, est, obs)"
)
_SQL_LINEAS_PG = (
    "INSERT INTO lotes_asignados (id, propuesta_item_id, lote_ubicacion_id, cantidad_asignada, "
    "estado_linea, override_caducidad, fecha_asignacion) "
    "SELECT v.id, v.pi, v.lu, v.n, 'RESERVADA', false, :at "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:pis AS uuid[]), CAST(:lus AS integer[]), "
    "CAST(:ns AS integer[])) AS v(id, pi, lu, n)"
)


@dataclass
class LecturaPg:
    """The locked FEFO prefix; the scope totals still running beside it (`_TotalesPg`)."""

    snaps: list[d.LoteUbicacionSnap]
    _totales: _TotalesPg

    async def totales(self) -> dict[int, int]:
        return await self._totales.resultado()

    async def cancelar(self) -> None:
        await self._totales.cancelar()


class PostgresStockStore:
    """`StockStore` for PostgreSQL (chosen in `orders.main.create_app` from the database URL)."""

    async def leer_fefo(
        self,
        session: AsyncSession,
        requeridos: Mapping[int, int],
        almacen_id: int,
        umbral: date,
    ) -> LecturaPg:
        """Only the FEFO prefix is read: the scope totals come from one aggregate, started first
        so that it runs while this transaction reads, locks, allocates and reserves."""
        totales = _TotalesPg(session, sorted(requeridos), almacen_id, umbral)
        try:
            snaps = await candidatos_fefo_pg(session, requeridos, almacen_id, umbral)
        except BaseException:
            await totales.cancelar()
            raise
        return LecturaPg(snaps, totales)

    async def reservar_varios(
        self, session: AsyncSession, deltas: Sequence[tuple[int, int]]
    ) -> None:
        """Add many reservations with one ``UPDATE … FROM unnest(…)``; the row count proves
        every row still had enough free stock, else 409 (the transaction rolls back)."""
        merged: dict[int, int] = defaultdict(int)
        for lu_id, n in deltas:
            merged[lu_id] += n
        ids = sorted(merged)
        if ids:
            res = await session.execute(
                text(
                    "UPDATE lote_ubicaciones AS lu "
                    "SET cantidad_reservada = lu.cantidad_reservada + v.n "
                    "FROM unnest(CAST(:ids AS integer[]), CAST(:ns AS integer[])) AS v(id, n) "
                    "WHERE lu.id = ANY(CAST(:ids AS integer[])) AND lu.id = v.id "
                    "AND lu.cantidad - lu.cantidad_reservada >= v.n"
                ),
                {"ids": ids, "ns": [merged[i] for i in ids]},
            )
            if getattr(res, "rowcount", 0) != len(ids):
                raise d.Conflict(
                    "STOCK_INSUFICIENTE", "La existencia cambió durante la reserva; se reintentará."
                )

    async def insertar_propuesta(
        self,
        session: AsyncSession,
        filas_items: list[dict[str, Any]],
        lineas: list[tuple[uuid.UUID, uuid.UUID, int, int]],
        at: datetime,
    ) -> None:
        """Proposal items, then their lines as RESERVADA: one ``INSERT … SELECT FROM unnest(…)``
        each (a handful of array parameters, whatever the row count)."""
        if filas_items:
            await session.execute(
                text(_SQL_ITEMS_PG),
                {
                    "propuesta_id": filas_items[0]["propuesta_id"],
                    "ids": [f["id"] for f in filas_items],
                    "sis": [f["solicitud_item_id"] for f in filas_items],
                    "prods": [f["producto_id"] for f in filas_items],
                    "aprs": [f["cantidad_aprobada"] for f in filas_items],
                    "disps": [f["cantidad_disponible"] for f in filas_items],
                    "props": [f["cantidad_propuesta"] for f in filas_items],
                    "pends": [f["cantidad_pendiente"] for f in filas_items],
                    "ests": [f["estado"] for f in filas_items],
                    "obss": [f["observaciones"] for f in filas_items],
                },
            )
        if lineas:
            ids, pis, lus, ns = (list(col) for col in zip(*lineas, strict=True))
            await session.execute(
                text(_SQL_LINEAS_PG), {"at": at, "ids": ids, "pis": pis, "lus": lus, "ns": ns}
            )
