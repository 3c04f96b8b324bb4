"""The embedded mode as a real process, killed with SIGKILL under load three times: POS sales,
production saves and request validations keep coming; after each restart the event log, the
relays and the inboxes converge to every effect exactly once (the auditor reads the SQLite files:
stock = start - sum of committed sales, one GPU per production, one proposal per validated
request, every outbox drained)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from .embedded_system import Load, System, converged, random_kill_points, seed

pytestmark = pytest.mark.e2e


async def test_embedded_survives_kill_9_under_load(tmp_path: Path) -> None:
    data = tmp_path / "var"
    system = System(data, tmp_path / "gateway.log")
    await system.start()
    load: Load | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        load = Load(system, await seed(system))
        tasks = load.tasks()
        for point in random_kill_points(3):
            await load.after(point)
            system.kill()
            await system.start()
        await load.after(60)
        load.running = False
        await asyncio.gather(*tasks)
        assert load.failed.total() > 0  # requests did die with the process
        result = await converged(data, load.seed["sales"]["material"])
        assert result["sold"] > 0
        assert result["productions"] > 0
        assert result["validated"] > 0
        assert {"sale", "prod", "val"} <= set(load.ok)
        assert (data / "events.db").exists()  # the durable log, not the in-memory broker
    finally:
        if load is not None:
            load.running = False
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        system.stop()
