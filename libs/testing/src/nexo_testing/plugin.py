"""The pytest plugin (entry point ``pytest11: nexo_testing``): the ``spec`` marker, the
database parametrisation fixture and the ``error_logs`` recorder. The real PostgreSQL behind
the ``postgres`` variant is the root conftest's ``pg_database`` (never a mock)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexo_testing.databases import DATABASES, database_url_for

SPEC_MARKER = "spec"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SPEC_MARKER}(*ids): the rule ids (docs/rules.md, e.g. AC-D23) the test checks",
    )


def spec_ids(item: pytest.Item) -> list[str]:
    """The rule ids of `item`'s ``spec`` markers."""
    return [str(a) for m in item.iter_markers(SPEC_MARKER) for a in m.args]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test that uses the database runs on a SQLite file (embedded mode, the portable
    adapters) and on a new database of a real PostgreSQL (the PostgreSQL adapters; an
    integration test)."""
    return database_url_for(request, tmp_path)


@pytest.fixture
def error_logs() -> Iterator[list[logging.LogRecord]]:
    """The records logged at ERROR or above (root logger) while the test runs."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    logging.getLogger().addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger().removeHandler(handler)
