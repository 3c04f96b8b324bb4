"""``python -m deploy.local up`` never deletes data: with Kafka or PostgreSQL down it restarts
that one on the same data directory (real processes, its own ``NEXO_INFRA_DIR``); only
``down`` deletes, and says so."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.local._util import REPO_ROOT, pid_alive

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


def _cli(infra_dir: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEXO_INFRA_DIR": str(infra_dir)}
    return subprocess.run(
        [sys.executable, "-m", "deploy.local", command],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _env(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _libpq(dsn: str) -> str:
    return dsn.replace("postgresql+asyncpg://", "postgresql://", 1)


def _wait_dead(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still alive"
        time.sleep(0.05)


@contextlib.contextmanager
def _squat(port: int) -> Iterator[socket.socket]:
    """Listen on `port` (once the dead broker's connections have left it)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while True:
            try:
                sock.bind(("127.0.0.1", port))
                break
            except OSError:
                assert time.monotonic() < deadline, f"port {port} never freed"
                time.sleep(0.2)
        sock.listen()
        yield sock
    finally:
        sock.close()


@pytest.fixture
def infra_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: as root the cluster belongs to `postgres`, which must be able
    # to enter every parent directory.
    base = Path(tempfile.mkdtemp(prefix="nexo-infra-up-"))
    base.chmod(0o755)
    path = base / "infra"
    yield path
    if (path / "state.json").exists():
        _cli(path, "down")
    shutil.rmtree(base, ignore_errors=True)


async def _write_marks(env: dict[str, str], topic: str) -> None:
    conn = await asyncpg.connect(_libpq(env["DATABASE_URL"]), timeout=10)
    try:
        await conn.execute("CREATE TABLE marks (v text)")
        await conn.execute("INSERT INTO marks VALUES ('before')")
    finally:
        await conn.close()
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"before"), 30)
    finally:
        await producer.stop()


async def _read_marks(env: dict[str, str], topic: str) -> tuple[list[str], list[bytes]]:
    conn = await asyncpg.connect(_libpq(env["DATABASE_URL"]), timeout=10)
    try:
        rows = [r["v"] for r in await conn.fetch("SELECT v FROM marks")]
    finally:
        await conn.close()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], auto_offset_reset="earliest"
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not values:
            assert time.monotonic() < deadline, f"nothing read back from {topic}"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return rows, values


async def test_up_restarts_what_is_down_on_the_same_data(infra_dir: Path) -> None:
    first = await asyncio.to_thread(_cli, infra_dir, "up")
    assert first.returncode == 0, first.stderr
    env = _env(first.stdout)
    topic = f"infra.up.{uuid.uuid4().hex[:8]}"
    await _write_marks(env, topic)
    state: dict[str, Any] = json.loads((infra_dir / "state.json").read_text())

    # Kafka dies hard (what left the stale state behind in issue 11).
    os.kill(state["kafka"]["pid"], signal.SIGKILL)
    await asyncio.to_thread(_wait_dead, state["kafka"]["pid"])
    # ...and something else took its port meanwhile: a new port, printed.
    with _squat(state["kafka"]["port"]):
        again = await asyncio.to_thread(_cli, infra_dir, "up")
    assert again.returncode == 0, again.stderr
    assert "cleaning" not in again.stderr
    assert "Kafka was down: restarted on its data" in again.stderr
    assert f"port {state['kafka']['port']} taken: now" in again.stderr
    assert "PostgreSQL was down" not in again.stderr
    env = _env(again.stdout)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] != state["kafka"]["bootstrap_servers"]
    assert await _read_marks(env, topic) == (["before"], [b"before"])

    # PostgreSQL dies hard too.
    state = json.loads((infra_dir / "state.json").read_text())
    pg_pid = state["postgres"]["pid"]
    os.kill(pg_pid, signal.SIGKILL)
    await asyncio.to_thread(_wait_dead, pg_pid)
    third = await asyncio.to_thread(_cli, infra_dir, "up")
    assert third.returncode == 0, third.stderr
    assert "PostgreSQL was down: restarted on its data" in third.stderr
    assert "Kafka was down" not in third.stderr
    env = _env(third.stdout)
    assert await _read_marks(env, topic) == (["before"], [b"before"])

    # Only `down` deletes, and it says so.
    workdirs = [Path(state["kafka"]["workdir"]), Path(state["postgres"]["workdir"])]
    assert all(p.exists() for p in workdirs)
    down = await asyncio.to_thread(_cli, infra_dir, "down")
    assert down.returncode == 0, down.stderr
    assert "DELETED their data" in down.stderr
    assert not any(p.exists() for p in workdirs)
    assert not (infra_dir / "state.json").exists()
