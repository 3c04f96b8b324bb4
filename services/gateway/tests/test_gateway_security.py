"""Security findings of issue 14 (part 1), each reproduced: dev login / banner token only in dev
mode with the built-in secret, prod secret length and token lifetime, authentication before the
body on every route (a 50 MB anonymous body), rate limits for anonymous requests, failed auth,
health/metrics and dev login with ``RateLimit-*`` headers, GET bodies in proxy mode, security
headers on ``/ops``."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from gateway.__main__ import banner
from gateway.main import create_app
from gateway.settings import GatewaySettings
from nexo_testing import app_client
from service_defaults.auth import Unauthorized, clear_token_cache, decode_token, issue_token
from service_defaults.settings import DEV_JWT_SECRET, CommonSettings

from .gateway_testkit import bearer, free_port, serve

PROBLEM = "application/problem+json"
REAL_SECRET = "k7Qd9wV2mX4pL8sR1tY6uZ3aB5cN0eF7gH2jK9"  # 40 bytes, not the dev one
SERVICE_ROLES = ["admin"]


@asynccontextmanager
async def gateway(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, Any] = {"data_dir": tmp_path / "var", "env": "test", "transport": "memory"}
    values.update(settings)
    app = create_app(GatewaySettings(**values))
    async with app_client(app, "http://gateway") as client:
        yield client


# ------------------------------------------------------------------ 1: dev login and banner


async def test_dev_login_is_gone_with_a_custom_secret(tmp_path: Path) -> None:
    async with gateway(tmp_path, env="dev", jwt_secret=REAL_SECRET) as client:
        assert (await client.get("/ops/dev-login")).json() == {"available": False}
        r = await client.post("/ops/dev-login")
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM
        assert "access_token" not in r.text


def test_banner_token_only_with_dev_env_and_dev_secret() -> None:
    token = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
    dev = banner(GatewaySettings(env="dev"))
    assert "Development JWT" in dev
    assert token.search(dev)
    for settings in (
        GatewaySettings(env="dev", jwt_secret=REAL_SECRET),  # the finding: ENV left at dev
        GatewaySettings(env="test"),
        GatewaySettings(env="prod", jwt_secret=REAL_SECRET),
    ):
        text = banner(settings)
        assert "Development JWT" not in text
        assert token.search(text) is None, text
        assert "dev login" not in text


# ------------------------------------------------------------------ 9: prod secret and lifetime


def test_prod_with_a_short_secret_does_not_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GATEWAY_ENV": "prod",
        "GATEWAY_JWT_SECRET": "abc",
        "GATEWAY_DATA_DIR": str(tmp_path / "var"),
        "GATEWAY_PORT": str(free_port()),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "GATEWAY_JWT_SECRET" in lines[0]
    assert "32 bytes" in lines[0]
    assert "Development JWT" not in proc.stdout
    # 32 bytes is enough; RS256 needs no secret
    GatewaySettings(env="prod", jwt_secret="x" * 32)
    with pytest.raises(ValueError, match="GATEWAY_JWT_SECRET"):
        GatewaySettings(env="prod", jwt_secret="x" * 31)


def _forged(secret: str, **claims: Any) -> str:
    return jwt.encode({"sub": "mallory", "roles": ["admin"], **claims}, secret, algorithm="HS256")


def test_prod_refuses_long_lived_tokens_in_every_service() -> None:
    clear_token_cache()
    prod = CommonSettings(env="prod", jwt_secret=REAL_SECRET)
    now = int(time.time())
    century = issue_token(prod, "mallory", ["admin"], ttl=timedelta(days=36500))
    with pytest.raises(Unauthorized, match="lifetime"):
        decode_token(prod, century)
    with pytest.raises(Unauthorized, match="lifetime"):  # no iat: exp - now counts
        decode_token(prod, _forged(REAL_SECRET, exp=now + 13 * 3600))
    assert decode_token(prod, issue_token(prod, "ok", ["admin"], ttl=timedelta(hours=12))).sub
    assert decode_token(prod, _forged(REAL_SECRET, exp=now + 3600)).sub == "mallory"
    shorter = CommonSettings(env="prod", jwt_secret=REAL_SECRET, jwt_max_lifetime_seconds=600)
    with pytest.raises(Unauthorized, match="lifetime"):
        decode_token(shorter, issue_token(prod, "ok", ["admin"], ttl=timedelta(hours=1)))


async def test_prod_gateway_answers_401_to_a_long_lived_token(tmp_path: Path) -> None:
    settings = GatewaySettings(env="prod", jwt_secret=REAL_SECRET)
    century = issue_token(settings, "mallory", ["admin", "ops"], ttl=timedelta(days=36500))
    hour = issue_token(settings, "alice", ["admin", "ops"], ttl=timedelta(hours=1))
    async with gateway(tmp_path, env="prod", jwt_secret=REAL_SECRET) as client:
        for path in ("/api/sales/clientes", "/ops/api/config"):
            r = await client.get(path, headers={"Authorization": f"Bearer {century}"})
            assert r.status_code == 401, (path, r.text)
            assert r.headers["content-type"] == PROBLEM
            assert "lifetime" in r.json()["detail"]
            ok = await client.get(path, headers={"Authorization": f"Bearer {hour}"})
            assert ok.status_code == 200, (path, ok.text)
        r = await client.post("/ops/dev-login")
        assert r.status_code == 404


# ------------------------------------------------------------------ 2: auth before the body

BIG = 50 * 1024 * 1024
CHUNK = b"[" + b"0," * (512 * 1024 - 1) + b"0"  # 1 MiB of a JSON array


def _anonymous_big_post(port: int, path: str) -> tuple[int, float]:
    """POST a 50 MB JSON array without a token on a raw socket, pushing the body until the
    gateway answers (or closes); the status and the seconds from the end of the headers to
    the first byte of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                f"Content-Length: {BIG}\r\n\r\n"
            ).encode()
        )
        started = time.perf_counter()
        sock.setblocking(False)
        answer = b""
        sent = 0
        first: float | None = None
        deadline = started + 30
        while time.perf_counter() < deadline:
            try:
                data = sock.recv(65536)
                if data:
                    first = first or time.perf_counter()
                    answer += data
                    if b"\r\n\r\n" in answer:
                        break
                else:
                    break
            except BlockingIOError:
                pass
            if sent < BIG:
                try:
                    sent += sock.send(CHUNK[: min(len(CHUNK), BIG - sent)])
                except BlockingIOError:
                    time.sleep(0.0005)
                except OSError:
                    sent = BIG  # the gateway closed its side: keep reading the answer
            else:
                time.sleep(0.0005)
        assert first is not None, f"no answer (sent {sent} bytes)"
        status = int(answer.split(b" ", 2)[1])
        return status, first - started


async def test_anonymous_50mb_body_refused_at_once_without_memory_growth(tmp_path: Path) -> None:
    app = create_app(GatewaySettings(data_dir=tmp_path / "var", env="test", transport="memory"))
    port = free_port()
    paths = ("/ops/api/dlq/replay", "/ops/api/dlq/discard", "/api/sales/ventas")
    async with serve(app, port):
        for path in paths:
            timings = []
            for _ in range(3):
                status, elapsed = await asyncio.to_thread(_anonymous_big_post, port, path)
                assert status == 401, path
                timings.append(elapsed)
            assert min(timings) < 0.1, (path, timings)

        tracemalloc.start()
        try:
            baseline, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for path in paths:
                status, _ = await asyncio.to_thread(_anonymous_big_post, port, path)
                assert status == 401
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak - baseline < 4 * 1024 * 1024, f"grew by {(peak - baseline) / 2**20:.1f} MiB"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/health/live")).status_code == 200


async def test_body_limit_on_every_route_and_auth_before_it(tmp_path: Path) -> None:
    async with gateway(tmp_path, max_body_bytes=1024) as client:
        big = b"[" + b"0," * 2000 + b"0]"
        ops = bearer(["ops"])
        r = await client.post("/ops/api/dlq/replay", content=big, headers=ops)
        assert r.status_code == 413
        assert r.headers["content-type"] == PROBLEM

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 512

        r = await client.post("/ops/api/dlq/replay", content=chunks(), headers=ops)
        assert r.status_code == 413
        r = await client.post("/", content=big)  # not even a route that takes a body
        assert r.status_code == 413
        # no token or the wrong role: refused before any size or body question
        assert (await client.post("/ops/api/dlq/replay", content=big)).status_code == 401
        r = await client.post("/ops/api/dlq/replay", content=big, headers=bearer(["x"]))
        assert r.status_code == 403
        # a body within the limit still reaches the route
        r = await client.post(
            "/ops/api/dlq/replay",
            json={"dlq_topic": "sales.sales.dlq", "partition": 0, "offset": 0},
            headers=ops,
        )
        assert r.status_code == 404, r.text


# ------------------------------------------------------------------ 7: rate limits


async def test_anonymous_and_failed_auth_floods_get_429(tmp_path: Path) -> None:
    async with gateway(
        tmp_path, anonymous_rate_limit_per_second=0.01, anonymous_rate_limit_burst=6
    ) as client:
        bad = {"Authorization": "Bearer not-a-jwt"}
        statuses = [
            (await client.get("/api/sales/clientes")).status_code,
            (await client.get("/api/sales/clientes", headers=bad)).status_code,
            (await client.post("/ops/api/dlq/replay", json={})).status_code,
            (await client.get("/ops/api/summary", headers=bad)).status_code,
            (await client.get("/ops")).status_code,
            (await client.get("/openapi.json")).status_code,
        ]
        assert statuses == [401, 401, 401, 401, 200, 200]
        for path in ("/api/sales/clientes", "/ops/api/summary", "/ops", "/"):
            r = await client.get(path)
            assert r.status_code == 429, path
            assert r.headers["content-type"] == PROBLEM
            assert r.json()["code"] == "rate-limited"
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["ratelimit-remaining"] == "0"
        # a valid token has its own bucket
        ok = await client.get("/api/sales/clientes", headers=bearer(SERVICE_ROLES))
        assert ok.status_code == 200


async def test_forbidden_requests_count_against_the_principal(tmp_path: Path) -> None:
    async with gateway(tmp_path, rate_limit_per_second=0.01, rate_limit_burst=3) as client:
        wrong = bearer(["orders.solicitante"], sub="nosy")
        statuses = [(await client.get("/api/sales/clientes", headers=wrong)).status_code]
        statuses.append((await client.get("/ops/api/config", headers=wrong)).status_code)
        statuses.append((await client.get("/api/sales/clientes", headers=wrong)).status_code)
        statuses.append((await client.get("/ops/api/config", headers=wrong)).status_code)
        assert statuses == [403, 403, 403, 429]


async def test_dev_login_is_rate_limited(tmp_path: Path) -> None:
    async with gateway(tmp_path, env="dev") as client:
        statuses = [(await client.post("/ops/dev-login")).status_code for _ in range(8)]
        assert statuses[:5] == [200] * 5
        assert set(statuses[5:]) == {429}
        r = await client.post("/ops/dev-login")
        assert r.headers["content-type"] == PROBLEM
        assert int(r.headers["retry-after"]) >= 1


async def test_health_and_metrics_have_a_generous_limit(tmp_path: Path) -> None:
    async with gateway(tmp_path, public_rate_limit_per_second=0.01, public_rate_limit_burst=4) as c:
        paths = ["/health/live", "/metrics", "/api/sales/health/live", "/health/ready"]
        assert [(await c.get(p)).status_code for p in paths] == [200, 200, 200, 200]
        r = await c.get("/metrics")
        assert r.status_code == 429
        assert "retry-after" in r.headers
    assert (
        GatewaySettings().public_rate_limit_burst
        >= 10 * GatewaySettings().anonymous_rate_limit_burst
    )


async def test_ratelimit_headers_on_successful_responses(tmp_path: Path) -> None:
    async with gateway(tmp_path, rate_limit_per_second=0.1, rate_limit_burst=20) as client:
        admin = bearer(["admin", "ops"], sub="counted")
        remaining = []
        for path in ("/api/sales/clientes", "/ops/api/config", "/api/sales/clientes"):
            r = await client.get(path, headers=admin)
            assert r.status_code == 200
            assert r.headers["ratelimit-limit"] == "20"
            assert 1 <= int(r.headers["ratelimit-reset"]) <= 60
            remaining.append(int(r.headers["ratelimit-remaining"]))
        assert remaining[0] > remaining[1] > remaining[2]
        anon = await client.get("/health/live")
        assert "ratelimit-limit" in anon.headers
        assert "ratelimit-remaining" in anon.headers


# ------------------------------------------------------------------ 6: proxy GET bodies


async def test_proxy_refuses_get_head_bodies_and_bounds_delete_bodies(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: a forwarded request is 503
    async with gateway(
        tmp_path,
        mode="proxy",
        evidence_url=down,
        sales_url=down,
        orders_url=down,
        proxy_connect_timeout=0.2,
        circuit_open_seconds=0.0,
    ) as client:
        admin = bearer(SERVICE_ROLES)

        async def stream() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 1024

        for method, content in (("GET", b"x" * 4096), ("HEAD", b"{}"), ("GET", stream())):
            r = await client.request(
                method, "/api/sales/materiales/1", content=content, headers=admin
            )
            assert r.status_code == 400, (method, r.text)
            if method == "GET":
                assert r.headers["content-type"] == PROBLEM
                assert r.json()["code"] == "body-not-allowed"
        # beyond the body limit: refused from the declared length, never read
        r = await client.request(
            "GET",
            "/api/sales/materiales",
            headers={**admin, "Content-Length": str(200 * 1024 * 1024)},
            content=b"",
        )
        assert r.status_code in (400, 413)
        # a DELETE body is read within the same limit, never beyond it

        async def endless() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * (256 * 1024)

        r = await client.request(
            "DELETE", "/api/sales/materiales/1", content=endless(), headers=admin
        )
        assert r.status_code == 413
        assert r.headers["content-type"] == PROBLEM
        # without a body the request is forwarded (and fails upstream)
        r = await client.get("/api/sales/materiales", headers=admin)
        assert r.status_code == 503


# ------------------------------------------------------------------ 9: security headers


async def test_ops_security_headers_and_no_inline_script(tmp_path: Path) -> None:
    async with gateway(tmp_path) as client:
        for path, headers in (
            ("/ops", {}),
            ("/ops/static/ops.js", {}),
            ("/ops/api/config", bearer(["ops"])),
            ("/ops/api/config", {}),
        ):
            r = await client.get(path, headers=headers)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp, path
            assert "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
        html = (await client.get("/ops")).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, tag
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), "inline script"
        assert "<style" not in html
        assert not re.search(r"\s(style|on[a-z]+)\s*=", html), "inline style or handler"


def test_dev_secret_is_what_dev_login_checks() -> None:
    assert GatewaySettings(env="dev").dev_tokens_allowed()
    assert GatewaySettings(env="dev", jwt_secret=DEV_JWT_SECRET).dev_tokens_allowed()
    assert not GatewaySettings(env="dev", jwt_secret=REAL_SECRET).dev_tokens_allowed()
    assert not GatewaySettings(env="test").dev_tokens_allowed()
