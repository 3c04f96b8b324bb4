"""``python -m gateway.backup`` (``make backup`` / ``make restore``): an online backup taken under
load restores to a state the system converges from — the auditor's rules hold on the restored
copy once it runs (every outbox row marked published is in the copied log; consumer offsets are
set back so that what the copied databases lack is delivered again)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest

from .embedded_system import Load, System, converged, seed

pytestmark = pytest.mark.e2e


async def _backup_cli(data_dir: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.backup",
        *args,
        env={**os.environ, "GATEWAY_DATA_DIR": str(data_dir)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_backup_under_load_restores_to_a_consistent_state(tmp_path: Path) -> None:
    data, restored, backup = tmp_path / "var", tmp_path / "restored", tmp_path / "backup"
    system = System(data, tmp_path / "gateway.log")
    await system.start()
    load: Load | None = None
    tasks: list[asyncio.Task[None]] = []
    copy: System | None = None
    try:
        load = Load(system, await seed(system))
        tasks = load.tasks()
        await load.after(80)
        code, out = await _backup_cli(data, "create", str(backup))
        assert code == 0, out
        await load.after(40)  # the original keeps going past the backup
        assert {p.name for p in backup.iterdir()} == {
            "evidence.db",
            "events.db",
            "manifest.json",
            "orders.db",
            "sales.db",
        }
        code, out = await _backup_cli(data, "restore", str(backup))  # onto the running system
        assert code != 0
        assert "stop it first" in out
        load.running = False
        await asyncio.gather(*tasks)
        original = await converged(data, load.seed["sales"]["material"])
        system.stop()

        code, out = await _backup_cli(restored, "restore", str(backup))
        assert code == 0, out
        copy = System(restored, tmp_path / "restored.log")
        await copy.start()
        result = await converged(restored, load.seed["sales"]["material"])
        assert 0 < result["sold"] < original["sold"]  # a snapshot from the middle of the load
        assert 0 < result["validated"] <= original["validated"]
        assert 0 < result["productions"] <= original["productions"]
    finally:
        if load is not None:
            load.running = False
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        system.stop()
        if copy is not None:
            copy.stop()
