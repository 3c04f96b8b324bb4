"""The portable `BulkWriter` (SQLite, and any database without the PostgreSQL builder):
Core statements with bound ``IN`` lists and executemany in chunks of 1,000 rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, insert, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from evidence.domain import PlannedChange
from evidence.models import GridVersion, Produccion, RegistroGpu, RegistroGpuHistorial

CHUNK = 1000
PRODUCCION_T = cast(Table, Produccion.__table__)
GPU_T = cast(Table, RegistroGpu.__table__)
HISTORIAL_T = cast(Table, RegistroGpuHistorial.__table__)
GRID_T = cast(Table, GridVersion.__table__)


def rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", -1))


class PortableWriter:
    """Core statements any database runs; ``ON CONFLICT`` clauses through the dialect's
    :attr:`insert` (SQLite's here)."""

    insert: Any = staticmethod(sqlite.insert)

    def id_chunks(self, ids: Sequence[int], size: int = CHUNK) -> list[list[int]]:
        return [list(ids[i : i + size]) for i in range(0, len(ids), size)]

    def id_match(self, column: Any, ids: list[int]) -> ColumnElement[bool]:
        return cast(ColumnElement[bool], column.in_(ids))

    async def insert_ignore(
        self, session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]
    ) -> None:
        await session.execute(self.insert(table).on_conflict_do_nothing(), list(rows))

    async def upsert(
        self,
        session: AsyncSession,
        table: Table,
        rows: Sequence[dict[str, Any]],
        keys: Sequence[str],
    ) -> None:
        stmt = self.insert(table)
        changed = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
        await session.execute(
            stmt.on_conflict_do_update(index_elements=keys, set_=changed), list(rows)
        )

    async def bump_grid(self, session: AsyncSession, report_ids: Sequence[int]) -> None:
        stmt = self.insert(GRID_T).values(
            [{"id_reporte_mensual": i, "version": 1} for i in report_ids]
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["id_reporte_mensual"], set_={"version": GRID_T.c.version + 1}
            )
        )

    async def insert_productions(
        self,
        session: AsyncSession,
        id_reporte: int,
        changes: Sequence[PlannedChange],
        usuario: str,
        now: dt.datetime,
    ) -> list[int]:
        new_rows = [
            {
                "id_partida_anexo": c.key[0],
                "id_reporte_mensual": id_reporte,
                "fecha_produccion": c.key[1],
                "tipo_tiempo": c.key[2],
                "id_sitio_produccion": c.key[3],
                "volumen_produccion": c.volumen,
                "es_excedente": False,
                "comentario": "",
                "version": 1,
                "usuario_actualizacion": usuario,
                "fecha_creacion": now,
                "fecha_actualizacion": now,
            }
            for c in changes
        ]
        conn = await session.connection()
        created: list[int] = []
        for start in range(0, len(new_rows), CHUNK):
            res = await conn.execute(
                insert(PRODUCCION_T).returning(PRODUCCION_T.c.id),
                new_rows[start : start + CHUNK],
            )
            created.extend(int(i) for i in res.scalars())
        return created

    async def update_productions(
        self,
        session: AsyncSession,
        updates: Sequence[tuple[PlannedChange, int]],
        usuario: str,
        now: dt.datetime,
    ) -> int:
        conn = await session.connection()
        res = await conn.execute(
            update(PRODUCCION_T)
            .where(
                PRODUCCION_T.c.id == bindparam("b_id"),
                PRODUCCION_T.c.version == bindparam("b_version"),
            )
            .values(
                volumen_produccion=bindparam("b_volumen"),
                version=PRODUCCION_T.c.version + 1,
                usuario_actualizacion=usuario,
                fecha_actualizacion=now,
            ),
            [{"b_id": c.id, "b_version": v, "b_volumen": c.volumen} for c, v in updates],
        )
        return rowcount(res)

    async def insert_gpus(
        self, session: AsyncSession, production_ids: Sequence[int], estatus: str, now: dt.datetime
    ) -> list[tuple[int, int]]:
        conn = await session.connection()
        rows = [
            {
                "id_produccion": pid,
                "estatus": estatus,
                "version": 1,
                "fecha_creacion": now,
                "fecha_actualizacion": now,
            }
            for pid in production_ids
        ]
        created: list[tuple[int, int]] = []
        for start in range(0, len(rows), CHUNK):
            res = await conn.execute(
                insert(GPU_T).returning(GPU_T.c.id, GPU_T.c.id_produccion),
                rows[start : start + CHUNK],
            )
            created.extend((int(r[0]), int(r[1])) for r in res)
        return created

    async def insert_history(self, session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
        batch = list(rows)
        conn = await session.connection()
        for start in range(0, len(batch), CHUNK):
            await conn.execute(insert(HISTORIAL_T), batch[start : start + CHUNK])
