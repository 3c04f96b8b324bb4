"""Database-specific code of the evidence service behind one small interface, `BulkWriter`.

`writer_for(dialect_name)` picks the implementation ONCE per engine (`evidence.main.create_app`
from the configured URL; a test from its engine): the PostgreSQL statement builder
(`adapters.postgres`: array parameters, ``unnest`` bulk statements) or the portable writer
(`adapters.portable`: SQLite and anything else). Use cases receive it as an argument and never
test the dialect themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from evidence.domain import PlannedChange

HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id_gpu", "integer"),
    ("id_produccion", "integer"),
    ("accion", "varchar"),
    ("regla", "varchar"),
    ("de_estatus", "varchar"),
    ("a_estatus", "varchar"),
    ("usuario", "varchar"),
    ("fecha", "timestamptz"),
    ("nota", "text"),
    ("motivo", "varchar"),
    ("archivo", "varchar"),
    ("version", "integer"),
)
"""Every key of a GPU history row given to :meth:`BulkWriter.insert_history` (with its
PostgreSQL array type)."""


class BulkWriter(Protocol):
    """The bulk reads and writes whose best statement depends on the database."""

    def id_chunks(self, ids: Sequence[int], size: int = 1000) -> list[list[int]]:
        """Split ids into the lists :meth:`id_match` takes (one list where arrays bind)."""
        ...

    def id_match(self, column: Any, ids: list[int]) -> ColumnElement[bool]:
        """``column`` is one of ``ids``."""
        ...

    async def insert_ignore(
        self, session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]
    ) -> None:
        """Insert each row unless it collides with a unique key (``ON CONFLICT DO NOTHING``)."""
        ...

    async def upsert(
        self,
        session: AsyncSession,
        table: Table,
        rows: Sequence[dict[str, Any]],
        keys: Sequence[str],
    ) -> None:
        """Insert each row, or overwrite the other columns of the row with the same ``keys``
        (``ON CONFLICT (keys) DO UPDATE``): a concurrent writer of the same key never loses."""
        ...

    async def bump_grid(self, session: AsyncSession, report_ids: Sequence[int]) -> None:
        """Increment (or start at 1) the grid version of these monthly reports."""
        ...

    async def insert_productions(
        self,
        session: AsyncSession,
        id_reporte: int,
        changes: Sequence[PlannedChange],
        usuario: str,
        now: dt.datetime,
    ) -> list[int]:
        """Insert new production rows (volume 0 flags off, version 1); their ids, in order."""
        ...

    async def update_productions(
        self,
        session: AsyncSession,
        updates: Sequence[tuple[PlannedChange, int]],
        usuario: str,
        now: dt.datetime,
    ) -> int:
        """Set new volumes, each row guarded by its expected version; how many rows matched."""
        ...

    async def insert_gpus(
        self, session: AsyncSession, production_ids: Sequence[int], estatus: str, now: dt.datetime
    ) -> list[tuple[int, int]]:
        """New GPUs in ``estatus`` for these productions; their (id, id_produccion)."""
        ...

    async def insert_history(self, session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
        """Append GPU history rows (the keys of :data:`HISTORY_COLUMNS`)."""
        ...


def writer_for(dialect_name: str) -> BulkWriter:
    """The writer for a database of this SQLAlchemy dialect name."""
    if dialect_name == "postgresql":
        from evidence.adapters.postgres import PostgresWriter

        return PostgresWriter()
    from evidence.adapters.portable import PortableWriter

    return PortableWriter()


def writer_for_url(url: str) -> BulkWriter:
    """The writer for the database at this SQLAlchemy URL (no connection is made)."""
    return writer_for(make_url(url).get_backend_name())


def writer_for_engine(engine: AsyncEngine) -> BulkWriter:
    return writer_for(engine.dialect.name)
