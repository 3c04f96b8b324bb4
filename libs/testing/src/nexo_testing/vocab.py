"""Vocabulary checks shared by the services: the CHECK constraints of the MIGRATED database
(SQLite keeps the model's ``col IN (...)``, PostgreSQL rewrites it as ``= ANY (ARRAY[...])``)
and the literals they list."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from nexo_testing.databases import migrated_engine


def listed(sqltext: str, column: str, *, integers: bool = False) -> list[Any]:
    """The literals of `column IN (...)` (or PostgreSQL's `= ANY (ARRAY[...])`)."""
    assert re.search(rf"\b{column}\b", sqltext), sqltext
    if integers:
        inside = sqltext[sqltext.index("(", sqltext.index(column)) :]
        return [int(n) for n in re.findall(r"\b(\d+)\b", inside)]
    return re.findall(r"'([^']*)'", sqltext)


async def migrated_check_constraints(
    url: str, migrations: Path, version_table: str, tables: Iterable[str]
) -> dict[str, str]:
    """``{constraint name: SQL text}`` of the CHECK constraints on `tables` after upgrading
    `url` to the head of `migrations`."""
    names = set(tables)

    def read(conn: Any) -> dict[str, str]:
        insp = inspect(conn)
        return {
            str(ck["name"]): str(ck["sqltext"])
            for table in sorted(names)
            for ck in insp.get_check_constraints(table)
        }

    async with (
        migrated_engine(url, migrations, version_table) as engine,
        engine.connect() as conn,
    ):
        return await conn.run_sync(read)
