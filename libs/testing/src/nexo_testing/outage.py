"""A PostgreSQL cluster of a test module's own (``deploy.local``), which the module may stop
and start again (outage tests) without disturbing the session's shared PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


def private_postgres(max_connections: int) -> Iterator[Any]:
    """Body of a module-scoped fixture: a started ``deploy.local.PostgresServer`` (skipped —
    or failed under ``CI=true`` — when none can start), closed after the module."""
    from deploy.local import InfraError, PostgresServer

    try:
        server = PostgresServer(max_connections=max_connections).start()
    except InfraError as exc:
        msg = f"local PostgreSQL is not available: {exc}"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    try:
        yield server
    finally:
        server.close()


def stop_fast(server: Any) -> None:
    """What an operator's restart does (``pg_ctl stop -m fast``): active sessions are
    terminated (57P01), new connections refused; ``server.start()`` brings it back on the
    same data directory."""
    proc = server._run(
        str(server.bindir / "pg_ctl"), "stop", "-D", str(server.datadir), "-m", "fast"
    )
    assert proc.returncode == 0, proc.stderr
    server._started = False
