"""Case-insensitive "contains" search that folds every letter, not only ASCII, on both databases.

SQLite's ``lower()`` folds ASCII only, and PostgreSQL's follows the database's ``LC_CTYPE``
(``C`` in the clusters Nexo provisions, and CloudNativePG's default: ASCII only too), so
``lower('ÁCIDO')`` is ``'Ácido'`` and a search for "ácido" or "ÁCIDO" missed "Ácido nítrico".
:class:`unicode_lower` compiles to ICU's lower-casing on PostgreSQL (``COLLATE "und-x-icu"``,
whatever the database's locale) and to Python's ``str.lower`` on SQLite, registered on every
connection as ``nexo_lower`` (:func:`register_sqlite_functions`); the search term is lowered by the
same ``str.lower`` (:func:`service_defaults.bounds.like_contains`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from service_defaults.bounds import LIKE_ESCAPE, like_contains

SQLITE_LOWER = "nexo_lower"


class unicode_lower(FunctionElement[str]):
    """``lower(x)`` folding every Unicode letter on every database."""

    type = String()
    name = "unicode_lower"
    inherit_cache = True


@compiles(unicode_lower)
def _lower_default(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "postgresql")
def _lower_postgresql(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f'lower(({compiler.process(element.clauses, **kw)}) COLLATE "und-x-icu")'


@compiles(unicode_lower, "sqlite")
def _lower_sqlite(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


def _sqlite_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Define ``nexo_lower`` on a SQLite connection (``sqlite3`` or SQLAlchemy's aiosqlite)."""
    dbapi_conn.create_function(SQLITE_LOWER, 1, _sqlite_lower, deterministic=True)


def contains_ci(column: Any, term: str) -> ColumnElement[bool]:
    """`column` contains `term` literally (``%``/``_`` are not wildcards), ignoring case."""
    return unicode_lower(column).like(like_contains(term), escape=LIKE_ESCAPE)


def any_contains_ci(term: str, *columns: Any) -> ColumnElement[bool]:
    """One of `columns` contains `term` (see :func:`contains_ci`)."""
    conds = [contains_ci(c, term) for c in columns]
    cond = conds[0]
    for c in conds[1:]:
        cond = cond | c
    return cond
