from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.main import create_app
from gateway.settings import SERVICES, GatewaySettings
from nexo_testing import app_client
from service_defaults.auth import issue_token


@pytest.fixture(scope="module")
async def gateway_client(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[httpx.AsyncClient]:
    data_dir = tmp_path_factory.mktemp("gateway-var")
    app = create_app(GatewaySettings(data_dir=data_dir, env="test"))
    async with app_client(app, "http://gateway") as client:
        yield client


async def test_ready_aggregates_all_services(gateway_client: httpx.AsyncClient) -> None:
    r = await gateway_client.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    for service in SERVICES:
        assert body["checks"][service]["status"] == "ok"
        assert body["checks"][service]["checks"]["database"] == "ok"


async def test_service_health_through_mount(gateway_client: httpx.AsyncClient) -> None:
    for service in SERVICES:
        r = await gateway_client.get(f"/api/{service}/health/ready")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok"
    assert (await gateway_client.get("/health/live")).json() == {"status": "ok"}


async def test_unknown_path_is_problem_json(gateway_client: httpx.AsyncClient) -> None:
    r = await gateway_client.get("/api/sales/definitely-not-a-route")
    assert r.status_code == 401  # the gateway does not reveal which routes exist
    assert r.headers["content-type"] == "application/problem+json"
    token = issue_token(GatewaySettings(env="test"), "t", ["admin"])
    r = await gateway_client.get(
        "/api/sales/definitely-not-a-route", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_merged_openapi(gateway_client: httpx.AsyncClient) -> None:
    r = await gateway_client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    paths = spec["paths"]
    for service in SERVICES:
        assert f"/api/{service}/health/ready" in paths
    assert "/health/ready" in paths
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for name in spec["components"].get("schemas", {}):
        assert name.split(".")[0] in {*SERVICES} or "." not in name
    docs = await gateway_client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_metrics(gateway_client: httpx.AsyncClient) -> None:
    await gateway_client.get("/api/orders/health/live")
    r = await gateway_client.get("/metrics")
    assert r.status_code == 200
    assert 'service="orders"' in r.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_python_m_gateway_serves_ready(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_DATA_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            last: str = "no answer"
            ready = False
            with httpx.Client(timeout=2.0) as client:
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        r = client.get(f"http://127.0.0.1:{port}/health/ready")
                        last = f"{r.status_code} {r.text[:300]}"
                        if r.status_code == 200:
                            ready = True
                            break
                    except httpx.HTTPError as exc:
                        last = repr(exc)
                    # poll: wait for the child to exit or for the next attempt
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=0.2)
            output = log_path.read_text(errors="replace")
            assert ready, f"gateway not ready: {last}\n{output[-3000:]}"
            assert "Development JWT" in output
            assert f"http://127.0.0.1:{port}/docs" in output
            assert 'curl -H "Authorization: Bearer ' in output
            assert (tmp_path / "var" / "evidence.db").exists()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode is not None


def test_proxy_mode_builds_without_io() -> None:
    app = create_app(GatewaySettings(mode="proxy"))
    paths = {getattr(r, "path", "") for r in app.routes}
    assert {"/api/evidence", "/api/sales", "/api/orders"} <= paths
