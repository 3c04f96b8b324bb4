"""The PostgreSQL `BulkWriter`: one statement per bulk operation whatever the row count — ids
bound as one array (``= ANY(:ids)``) and rows as a handful of array parameters
(``INSERT … SELECT FROM unnest(...)``, ``UPDATE … FROM unnest(...)``), so nothing is rendered
or bound per row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Integer, Table, any_, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from evidence.adapters import HISTORY_COLUMNS
from evidence.adapters.portable import GPU_T, HISTORIAL_T, PRODUCCION_T, PortableWriter, rowcount
from evidence.domain import PlannedChange


def _table(session: AsyncSession, table: Table) -> str:
    return str(session.get_bind().dialect.identifier_preparer.format_table(table))


class PostgresWriter(PortableWriter):
    """The portable writer's ``ON CONFLICT`` statements through PostgreSQL's insert; every bulk
    operation in one statement."""

    insert: Any = staticmethod(postgresql.insert)

    def id_chunks(self, ids: Sequence[int], size: int = 1000) -> list[list[int]]:
        return [list(ids)] if ids else []

    def id_match(self, column: Any, ids: list[int]) -> ColumnElement[bool]:
        return cast(
            ColumnElement[bool],
            column == any_(bindparam(None, ids, type_=postgresql.ARRAY(Integer))),
        )

    async def insert_productions(
        self,
        session: AsyncSession,
        id_reporte: int,
        changes: Sequence[PlannedChange],
        usuario: str,
        now: dt.datetime,
    ) -> list[int]:
        rows = await session.execute(
            text(
                f"INSERT INTO {_table(session, PRODUCCION_T)} (id_partida_anexo, "
                "id_reporte_mensual, fecha_produccion, "
                "tipo_tiempo, id_sitio_produccion, volumen_produccion, es_excedente, comentario, "
                "version, usuario_actualizacion, fecha_creacion, fecha_actualizacion) "
                "SELECT p, CAST(:reporte AS integer), f, t, s, v, false, '', 1, "
                "CAST(:usuario AS varchar), CAST(:now AS timestamptz), CAST(:now AS timestamptz) "
                "FROM unnest(CAST(:partidas AS integer[]), CAST(:fechas AS date[]), "
                "CAST(:tipos AS varchar[]), CAST(:sitios AS integer[]), "
                "CAST(:volumenes AS numeric[])) AS u(p, f, t, s, v) "
                "RETURNING id"
            ),
            {
                "reporte": id_reporte,
                "usuario": usuario,
                "now": now,
                "partidas": [c.key[0] for c in changes],
                "fechas": [c.key[1] for c in changes],
                "tipos": [c.key[2] for c in changes],
                "sitios": [c.key[3] for c in changes],
                "volumenes": [c.volumen for c in changes],
            },
        )
        return [int(r[0]) for r in rows]

    async def update_productions(
        self,
        session: AsyncSession,
        updates: Sequence[tuple[PlannedChange, int]],
        usuario: str,
        now: dt.datetime,
    ) -> int:
        res = await session.execute(
            text(
                f"UPDATE {_table(session, PRODUCCION_T)} AS p SET volumen_produccion = u.v, "
                "version = p.version + 1, "
                "usuario_actualizacion = CAST(:usuario AS varchar), "
                "fecha_actualizacion = CAST(:now AS timestamptz) "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:versions AS integer[]), "
                "CAST(:volumenes AS numeric[])) AS u(id, ver, v) "
                "WHERE p.id = u.id AND p.version = u.ver"
            ),
            {
                "usuario": usuario,
                "now": now,
                "ids": [c.id for c, _ in updates],
                "versions": [v for _, v in updates],
                "volumenes": [c.volumen for c, _ in updates],
            },
        )
        return rowcount(res)

    async def insert_gpus(
        self, session: AsyncSession, production_ids: Sequence[int], estatus: str, now: dt.datetime
    ) -> list[tuple[int, int]]:
        res = await session.execute(
            text(
                f"INSERT INTO {_table(session, GPU_T)} (id_produccion, estatus, version, "
                "fecha_creacion, fecha_actualizacion) "
                "SELECT p, CAST(:estatus AS varchar), 1, CAST(:now AS timestamptz), "
                "CAST(:now AS timestamptz) FROM unnest(CAST(:ids AS integer[])) AS u(p) "
                "RETURNING id, id_produccion"
            ),
            {"estatus": estatus, "now": now, "ids": list(production_ids)},
        )
        return [(int(r[0]), int(r[1])) for r in res]

    async def insert_history(self, session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
        batch = list(rows)
        table = _table(session, HISTORIAL_T)
        names = ", ".join(name for name, _ in HISTORY_COLUMNS)
        arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in HISTORY_COLUMNS)
        await session.execute(
            text(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"),
            {name: [r[name] for r in batch] for name, _ in HISTORY_COLUMNS},
        )
