"""Nexo's shared test harness (a pytest plugin, `nexo_testing.plugin`, loaded through the
``pytest11`` entry point): what the service suites used to copy.

- :mod:`nexo_testing.apps` — an httpx client over a FastAPI app inside its lifespan
  (:func:`app_client`), bearer tokens (:func:`bearer`), answer checks (:func:`ok`) and
  polling with a deadline (:func:`until`);
- :mod:`nexo_testing.databases` — the SQLite + PostgreSQL parametrisation (the
  ``database_url`` fixture; PostgreSQL is the root conftest's real ``pg_database``), engines
  and the alembic upgrade of a service's migrations;
- :mod:`nexo_testing.migrations` — "the migrations yield exactly the models" checks;
- :mod:`nexo_testing.vocab` — the migrated CHECK constraints and the literals they list;
- the ``spec(*ids)`` marker: the rule ids (``docs/rules.md``) a test checks.
"""

from nexo_testing.apps import app_client, bearer, ok, problem, until
from nexo_testing.databases import (
    DATABASES,
    engine_for,
    hypothesis_runner,
    migrated_engine,
    sqlite_url,
    upgrade,
)
from nexo_testing.migrations import assert_outbox_autovacuum, migrate_and_diff
from nexo_testing.vocab import listed, migrated_check_constraints

__all__ = [
    "DATABASES",
    "app_client",
    "assert_outbox_autovacuum",
    "bearer",
    "engine_for",
    "hypothesis_runner",
    "listed",
    "migrate_and_diff",
    "migrated_check_constraints",
    "migrated_engine",
    "ok",
    "problem",
    "sqlite_url",
    "until",
    "upgrade",
]
