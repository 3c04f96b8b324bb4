"""Gateway overhead: GPU grid GET directly on the evidence service vs. through the gateway
(proxy mode), in the same run.

Both are real uvicorn processes on 127.0.0.1 (one worker each, uvloop + httptools, access log
off, a temp data dir). The load generator is ``wrk`` (C, one thread, a Lua script adds the
``Authorization`` header and reports exact percentiles): a Python load loop costs more CPU
than the server it measures and, on a small machine, shares its cores, so it measures itself.
Without ``wrk`` on PATH the bench falls back to an httpx loop and says so.

Phases, each run for ``--duration`` seconds on direct and on gateway, repeated ``--rounds``
times (alternating, and which of the two goes first alternates too; the table shows the median
of the rounds):

- latency at fixed moderate concurrency (``--latency-conns``, default 1 and 4 connections);
- throughput at saturation (``--saturation-conns``, default 32 connections).

Next to the load figures the table shows the CPU time per request of each server process
(from ``/proc``; ``svc`` = the evidence service, ``gw`` = the gateway): on a small shared
machine latency moves with whatever else runs, CPU per request much less, and the gateway's
is what its overhead is made of. To see where it goes, profile the gateway process while the
bench runs: ``uv run --with py-spy py-spy record -p <pid> -f raw -o gw.raw``.

    uv run python bench/gateway/run.py [--duration 4] [--rounds 3]

Targets: gateway p50 overhead <= 2 ms (at every latency concurrency) and saturated
throughput >= 80 % of direct.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
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

OVERHEAD_TARGET_MS = 2.0
RATIO_TARGET = 0.80

# wrk script: the bearer header on every request; at the end one JSON line with the totals,
# errors and latency percentiles (microseconds).
WRK_LUA = """
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"mean":%f,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


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
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
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


Result = dict[str, float]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of `pid` so far (None where /proc is not available)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(wrk: str, script: Path, url: str, auth: str, conns: int, duration: float) -> Result:
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{conns}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        env={**os.environ, "BENCH_AUTH": auth},
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed on {url}: {out.stdout}\n{out.stderr}")
    r = json.loads(line[len("BENCH ") :])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    if errors or not r["requests"]:
        raise SystemExit(f"{url}: {errors} errors (non-2xx {r['status']}) in {r}")
    return {
        "requests": r["requests"],
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50"] / 1000,
        "p90_ms": r["p90"] / 1000,
        "p99_ms": r["p99"] / 1000,
    }


async def _httpx_load(url: str, headers: dict[str, str], conns: int, duration: float) -> Result:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(timeout=10, limits=limits, headers=headers) as client:
        stop = time.perf_counter() + duration

        async def worker() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.get(url)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
    }


def median_result(results: list[Result]) -> Result:
    return {m: statistics.median(r[m] for r in results) for m in results[0]}


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating direct/gateway rounds")
    parser.add_argument("--latency-conns", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--saturation-conns", type=int, default=32)
    parser.add_argument("--httpx", action="store_true", help="use the httpx loop, not wrk")
    args = parser.parse_args()

    wrk = None if args.httpx else shutil.which("wrk")
    tmp = Path(tempfile.mkdtemp(prefix="nexo-bench-gw-"))
    script = tmp / "auth.lua"
    script.write_text(WRK_LUA)
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
        auth = f"Bearer {token}"
        headers = {"Authorization": auth}
        today = date.today()
        query = f"/gpus/grid?id_ot=1&mes={today.month}&anio={today.year}"
        targets = {
            "direct": f"http://127.0.0.1:{ev_port}{query}",
            "gateway": f"http://127.0.0.1:{gw_port}/api/evidence{query}",
        }
        first = httpx.get(targets["direct"], headers=headers)
        via = httpx.get(targets["gateway"], headers=headers)
        if first.status_code != 200 or via.content != first.content:
            raise SystemExit(f"grid answers differ: {first.status_code} / {via.status_code}")
        print(f"grid: {len(first.json()['data'])} lines, {len(first.content)} bytes")

        servers = {"svc": evidence.pid, "gw": gateway.pid}

        def measure(url: str, conns: int, duration: float) -> Result:
            before = {name: cpu_seconds(pid) for name, pid in servers.items()}
            if wrk is not None:
                result = run_wrk(wrk, script, url, auth, conns, duration)
            else:
                result = asyncio.run(_httpx_load(url, headers, conns, duration))
            for name, pid in servers.items():
                start, end = before[name], cpu_seconds(pid)
                if start is not None and end is not None:
                    result[f"{name}_cpu_us"] = (end - start) / result["requests"] * 1e6
            return result

        conns_list = [*args.latency_conns, args.saturation_conns]
        for url in targets.values():  # warm-up (caches, connection pools, JIT-free but lazy)
            measure(url, args.saturation_conns, 1.0)
        samples: dict[tuple[str, int], list[Result]] = {}
        for round_no in range(args.rounds):
            order = list(targets.items())
            if round_no % 2:  # neither side always runs right after the other's load
                order.reverse()
            for conns in conns_list:
                for name, url in order:
                    samples.setdefault((name, conns), []).append(measure(url, conns, args.duration))
        table = {key: median_result(v) for key, v in samples.items()}

        tool = "wrk -t1" if wrk else "httpx loop (wrk not found: figures include its CPU)"
        print(
            f"\nload: {tool}; {args.rounds} rounds x {args.duration:g} s per cell, "
            f"median of rounds; {os.cpu_count()} cores"
        )
        print(
            f"{'':8} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
            f" {'svc us/req':>10} {'gw us/req':>10}  (CPU)"
        )

        def cpu(r: Result, key: str) -> str:
            return f"{r[key]:10.0f}" if key in r else f"{'-':>10}"

        for conns in conns_list:
            for name in targets:
                r = table[(name, conns)]
                print(
                    f"{name:8} {conns:5d} {r['rps']:8.0f} {r['p50_ms']:8.2f} "
                    f"{r['p90_ms']:8.2f} {r['p99_ms']:8.2f} {cpu(r, 'svc_cpu_us')} "
                    + (cpu(r, "gw_cpu_us") if name == "gateway" else f"{'-':>10}")
                )
        print()
        ok = True
        for conns in args.latency_conns:
            overhead = table[("gateway", conns)]["p50_ms"] - table[("direct", conns)]["p50_ms"]
            hit = overhead <= OVERHEAD_TARGET_MS
            ok &= hit
            print(
                f"gateway p50 overhead at {conns} conn: {overhead:.2f} ms "
                f"(target <= {OVERHEAD_TARGET_MS:g} ms): " + ("OK" if hit else "MISSED")
            )
        sat = args.saturation_conns
        ratio = table[("gateway", sat)]["rps"] / table[("direct", sat)]["rps"]
        hit = ratio >= RATIO_TARGET
        ok &= hit
        print(
            f"gateway throughput at {sat} conns: {ratio:.0%} of direct "
            f"(target >= {RATIO_TARGET:.0%}): " + ("OK" if hit else "MISSED")
        )
        print("all targets met" if ok else "targets missed")
    finally:
        for proc in (gateway, evidence):
            proc.terminate()
        for proc in (gateway, evidence):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
