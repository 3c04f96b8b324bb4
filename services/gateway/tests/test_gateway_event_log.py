"""Embedded wiring of the durable event log: the three services and the ops views share ONE log
(one file, one writer) under the data dir; ``GATEWAY_TRANSPORT=memory`` keeps the in-memory
broker; ops views (topics, lag) read the log."""

from __future__ import annotations

from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from gateway.main import create_app
from gateway.settings import SERVICES, GatewaySettings
from nexo_messaging.locallog import LocalLogTransport
from nexo_messaging.memory import MemoryTransport
from service_defaults.auth import issue_token


async def test_services_and_ops_share_one_event_log(tmp_path: Path) -> None:
    settings = GatewaySettings(data_dir=tmp_path, env="test")
    assert settings.transport == "local"
    app = create_app(settings)
    ops_transport = app.state.ops.transport
    assert isinstance(ops_transport, LocalLogTransport)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transports = [app.state.services[s].state.runtime.transport for s in SERVICES]
        assert all(isinstance(t, LocalLogTransport) for t in transports)
        assert {id(t.log) for t in transports} == {id(ops_transport.log)}
        assert ops_transport.log.path == (tmp_path / "events.db").resolve()
        assert (tmp_path / "events.db").exists()
        token = issue_token(settings, "ops", ["ops"])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway"
        ) as client:
            r = await client.get("/ops/api/topics", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            assert "sales.sales" in r.text


async def test_memory_transport_stays_available(tmp_path: Path) -> None:
    app = create_app(GatewaySettings(data_dir=tmp_path, env="test", transport="memory"))
    assert isinstance(app.state.ops.transport, MemoryTransport)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transports = [app.state.services[s].state.runtime.transport for s in SERVICES]
        assert {id(t.broker) for t in transports} == {id(app.state.ops.transport.broker)}
    assert not (tmp_path / "events.db").exists()
