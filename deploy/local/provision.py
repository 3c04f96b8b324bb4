"""Kafka and PostgreSQL for a tool run (benchmarks, manual checks): the ones the environment
names, else throw-away local processes that stop when the block ends."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from deploy.local.kafka import KafkaBroker
from deploy.local.postgres import PostgresServer


def asyncpg_dsn(url: str) -> str:
    """`postgresql://…` → `postgresql+asyncpg://…` (other URLs unchanged)."""
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return url


@contextlib.contextmanager
def database_and_kafka() -> Iterator[tuple[str, str]]:
    """(server-level SQLAlchemy DSN, Kafka bootstrap servers) from `DATABASE_URL` and
    `KAFKA_BOOTSTRAP_SERVERS`, each started locally when unset."""
    with contextlib.ExitStack() as stack:
        dsn = os.environ.get("DATABASE_URL", "").strip()
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        dsn = asyncpg_dsn(dsn) if dsn else stack.enter_context(PostgresServer()).dsn
        if not kafka:
            kafka = stack.enter_context(KafkaBroker()).bootstrap_servers
        yield dsn, kafka
