"""Alembic, run programmatically and async-safely, one version table per service.

- :func:`upgrade` (async) migrates a database to ``head`` sharing one async connection
  (alembic's "connection sharing" async pattern: ``connection.run_sync``; no threads, no
  ``asyncio.run`` inside the running loop).
- :func:`run_env` is what every service's ``migrations/env.py`` calls.
- ``python -m service_defaults.migrations revision <svc> -m "msg" --autogenerate`` writes a new
  revision for a service (against a throw-away SQLite database upgraded to head unless
  ``--url`` / ``<SVC>_DATABASE_URL`` is given); ``... upgrade <svc>`` migrates a database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service_defaults.db import create_engine


def version_table_for(service: str) -> str:
    return f"alembic_version_{service}"


def make_config(
    database_url: str, migrations_dir: str | Path, version_table: str = "alembic_version"
) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations_dir).resolve()))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.set_main_option("version_table", version_table)
    cfg.attributes["version_table"] = version_table
    return cfg


def migration_lock_key(cfg: Config) -> int:
    """The advisory lock key of a service's migrations (from its version table name)."""
    return zlib.crc32(str(cfg.get_main_option("version_table")).encode()) - 2**31


def has_revisions(migrations_dir: str | Path) -> bool:
    versions = Path(migrations_dir) / "versions"
    return versions.is_dir() and any(versions.glob("*.py"))


def _upgrade_on(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(
    database_url: str,
    migrations_dir: str | Path,
    version_table: str = "alembic_version",
    *,
    engine: AsyncEngine | None = None,
    revision: str = "head",
) -> None:
    """Migrate the database at `database_url` (or reached through `engine`) to `revision`."""
    cfg = make_config(database_url, migrations_dir, version_table)
    own = engine is None
    eng = engine if engine is not None else create_engine(database_url)
    try:
        async with eng.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Replicas (and the chart's migration Job) starting together: one migrates,
                # the others wait here and then find the schema at head.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": migration_lock_key(cfg)}
                )
            await conn.run_sync(_upgrade_on, cfg, revision)
    finally:
        if own:
            await eng.dispose()


async def prepare_schema(
    engine: AsyncEngine,
    database_url: str,
    migrations_dir: str | Path,
    version_table: str,
    metadata: MetaData,
) -> str:
    """Run migrations, or ``metadata.create_all`` while a service has no revisions yet.

    Returns ``"migrated"`` or ``"create_all"``.
    """
    if has_revisions(migrations_dir):
        await upgrade(database_url, migrations_dir, version_table, engine=engine)
        return "migrated"
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return "create_all"


def run_env(target_metadata: MetaData, version_table: str | None = None) -> None:
    """Body of a service's ``migrations/env.py`` (online async mode, or offline SQL)."""
    from alembic import context

    config = context.config
    table = version_table or config.get_main_option("version_table") or "alembic_version"
    url = config.get_main_option("sqlalchemy.url") or ""
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "version_table": table,
        "compare_type": True,
        "render_as_batch": url.startswith("sqlite"),
    }

    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        options["render_as_batch"] = connection.dialect.name == "sqlite"
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        do_run(connection)
        return

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # pragma: no cover - misuse guard
        raise RuntimeError(
            "alembic called from a running event loop without a connection; "
            "use service_defaults.migrations.upgrade()"
        )

    async def run_async() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(do_run)
        finally:
            await engine.dispose()

    asyncio.run(run_async())


# --------------------------------------------------------------------------------------- CLI


def find_migrations_dir(service: str, start: Path | None = None) -> Path:
    """``services/<service>/migrations`` found from `start` (default cwd) upwards."""
    here = (start or Path.cwd()).resolve()
    for base in (here, *here.parents):
        candidate = base / "services" / service / "migrations"
        if candidate.is_dir():
            return candidate
    raise SystemExit(f"cannot find services/{service}/migrations from {here}")


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service_defaults.migrations")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rev = sub.add_parser("revision", help="create a new revision for a service")
    rev.add_argument("service")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true")
    rev.add_argument("--url", help="database to compare against (default: temp SQLite at head)")
    up = sub.add_parser("upgrade", help="migrate a service's database to head")
    up.add_argument("service")
    up.add_argument("--url", help="default: <SVC>_DATABASE_URL")
    up.add_argument("--revision", default="head")
    args = parser.parse_args(argv)

    service: str = args.service
    migrations_dir = find_migrations_dir(service)
    (migrations_dir / "versions").mkdir(exist_ok=True)
    table = version_table_for(service)
    env_url = os.environ.get(f"{service.upper()}_DATABASE_URL")

    if args.cmd == "upgrade":
        url = args.url or env_url or f"sqlite+aiosqlite:///./var/{service}.db"
        asyncio.run(upgrade(url, migrations_dir, table, revision=args.revision))
        print(f"{service}: upgraded to {args.revision}")
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite+aiosqlite:///{Path(tmp) / 'autogen.db'}"
        if args.autogenerate and not args.url and has_revisions(migrations_dir):
            asyncio.run(upgrade(url, migrations_dir, table))
        cfg = make_config(url, migrations_dir, table)
        command.revision(cfg, message=args.message, autogenerate=args.autogenerate)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
