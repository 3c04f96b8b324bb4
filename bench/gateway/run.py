"""Gateway overhead: GPU grid GET directly on the evidence service vs. through the gateway
(proxy mode), in the same run. Both are real uvicorn processes on 127.0.0.1; the load is a
bounded httpx loop (fixed concurrency and request count).

    uv run python bench/gateway/run.py [--requests 2000] [--concurrency 8]

Targets: gateway p50 overhead <= 2 ms and throughput >= 80 % of direct.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

from gateway.settings import GatewaySettings
from service_defaults.auth import issue_token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(module: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"{module}.main:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_ready(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{url}: process exited ({proc.returncode})")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise SystemExit(f"{url} not ready")


async def load(url: str, headers: dict[str, str], total: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    remaining = total
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits, headers=headers) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                r = await client.get(url)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="alternating direct/gateway rounds")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="nexo-bench-gw-"))
    ev_port, gw_port = free_port(), free_port()
    evidence = start(
        "evidence",
        ev_port,
        {
            "EVIDENCE_ENV": "dev",
            "EVIDENCE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/e.db",
            "EVIDENCE_LOG_LEVEL": "WARNING",
        },
        tmp / "evidence.log",
    )
    gateway = start(
        "gateway",
        gw_port,
        {
            "GATEWAY_MODE": "proxy",
            "GATEWAY_ENV": "test",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_EVIDENCE_URL": f"http://127.0.0.1:{ev_port}",
            "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        },
        tmp / "gateway.log",
    )
    try:
        wait_ready(f"http://127.0.0.1:{ev_port}/health/ready", evidence)
        wait_ready(f"http://127.0.0.1:{gw_port}/api/evidence/health/ready", gateway)
        token = issue_token(GatewaySettings(env="test"), "bench", ["admin"])
        headers = {"Authorization": f"Bearer {token}"}
        today = date.today()
        query = f"/gpus/grid?id_ot=1&mes={today.month}&anio={today.year}"
        direct = f"http://127.0.0.1:{ev_port}{query}"
        via = f"http://127.0.0.1:{gw_port}/api/evidence{query}"
        body = httpx.get(direct, headers=headers).json()
        print(
            f"grid: {len(body['data'])} lines, "
            f"{len(httpx.get(direct, headers=headers).content)} bytes"
        )
        asyncio.run(load(direct, headers, 200, args.concurrency))  # warm-up
        asyncio.run(load(via, headers, 200, args.concurrency))
        results: dict[str, list[dict[str, float]]] = {"direct": [], "gateway": []}
        for _ in range(args.rounds):
            results["direct"].append(
                asyncio.run(load(direct, headers, args.requests, args.concurrency))
            )
            results["gateway"].append(
                asyncio.run(load(via, headers, args.requests, args.concurrency))
            )
        best = {
            k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in results.items()
        }
        print(
            f"{'':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}   ({args.requests} requests x "
            f"{args.rounds} rounds, concurrency {args.concurrency}, {os.cpu_count()} cores)"
        )
        for name, r in best.items():
            print(f"{name:8} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
        overhead = best["gateway"]["p50_ms"] - best["direct"]["p50_ms"]
        ratio = best["gateway"]["rps"] / best["direct"]["rps"]
        print(
            f"gateway p50 overhead {overhead:.2f} ms (target <= 2 ms): "
            + ("OK" if overhead <= 2 else "MISSED")
        )
        print(
            f"gateway throughput {ratio:.0%} of direct (target >= 80%): "
            + ("OK" if ratio >= 0.8 else "MISSED")
        )
    finally:
        for proc in (gateway, evidence):
            proc.terminate()
        for proc in (gateway, evidence):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
