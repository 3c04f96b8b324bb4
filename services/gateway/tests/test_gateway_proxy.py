from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import uvicorn
from asgi_lifespan import LifespanManager

from evidence.main import create_app as create_evidence
from evidence.settings import EvidenceSettings
from gateway.main import create_app
from gateway.settings import GatewaySettings
from service_defaults.auth import issue_token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_proxy_mode_forwards_and_reports(tmp_path: Path) -> None:
    port = _free_port()
    evidence = create_evidence(
        EvidenceSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'e.db'}", env="test")
    )
    server = uvicorn.Server(
        uvicorn.Config(evidence, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        gateway = create_app(
            GatewaySettings(
                mode="proxy",
                env="test",
                evidence_url=f"http://127.0.0.1:{port}",
                sales_url="http://127.0.0.1:1",
                orders_url="http://127.0.0.1:1",
                proxy_connect_timeout=1.0,
            )
        )
        async with (
            LifespanManager(gateway) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://gw"
            ) as client,
        ):
            r = await client.get(
                "/api/evidence/health/ready?x=1", headers={"X-Request-ID": "proxy-1"}
            )
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "ok"
            assert r.headers["x-request-id"] == "proxy-1"
            token = issue_token(GatewaySettings(env="test"), "t", ["admin"])
            r = await client.get(
                "/api/evidence/no-such-route", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 404
            assert r.headers["content-type"] == "application/problem+json"
            r = await client.get("/api/sales/health/ready")
            assert r.status_code == 503
            assert r.json()["code"] == "service-unavailable"
            assert r.headers["content-type"] == "application/problem+json"
            r = await client.get("/health/ready")
            assert r.status_code == 503
            checks = r.json()["checks"]
            assert checks["evidence"]["status"] == "ok"
            assert checks["sales"]["status"] == "failing"
            spec = (await client.get("/openapi.json")).json()
            assert "/api/evidence/health/ready" in spec["paths"]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
