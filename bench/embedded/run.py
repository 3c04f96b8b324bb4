"""Embedded mode vs distributed: POS sales through the gateway, and the other embedded flows.

    uv run python bench/embedded/run.py [--duration 15] [--concurrency 16]
                                        [--skip-distributed] [--skip-flows]

One run prints, for both deployments, POS sales/s and the process CPU per sale:

- **embedded**: ``python -m gateway`` (what ``make run`` starts) as a real process: gateway +
  evidence + sales + orders in one process on SQLite files under a temp ``GATEWAY_DATA_DIR``,
  the embedded default transport, access log at INFO to a file (as ``make run`` logs);
- **distributed**: the sales service (``uvicorn sales.main:app_from_env``) on a real PostgreSQL
  + Kafka (``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` when set, else ``deploy.local``),
  behind the gateway in proxy mode (another process); both processes' CPU is counted.

Both get the same catalogue and 64 pre-priced carts (1-3 lines, 8 materials; the same scenario
as bench/sales), seeded through the gateway, then ``wrk`` (C, one thread) posts
``/api/sales/ventas`` for ``--duration`` s at ``--concurrency`` connections (after a 2 s
warm-up). The gateway's per-client rate limit is switched off (``GATEWAY_RATE_LIMIT_PER_SECOND=0``:
one token stands for a shop's many tills). Figures per deployment:

- API sales/s: sales committed (rows in ``ventas``) / wrk duration; sustained: the same sales /
  time from load start until the stock consumer has applied every (sale, material) movement;
- CPU ms per sale: utime + stime (``/proc/<pid>/stat``) of the server processes over that whole
  interval (so the consumer's catch-up is counted), / sales;
- stock exact: every material's ``stock_actual`` = initial − Σ sold, one ledger row per (sale,
  material), Σ lines = total and one abono + one audit row per sale. A failed check or failed
  requests make the run exit non-zero.

Then the other embedded flows, by their own benches in embedded mode (SQLite + the embedded
transport, app in-process): a month's save → GPUs (``bench/evidence/run.py --embedded``) and a
proposal over 10,000 lots (``bench/orders/run.py --embedded --lots 10000``).

Targets (issue 12): embedded POS ≥ 190 sales/s at ≤ 5 ms process CPU per sale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from deploy.local.provision import database_and_kafka  # noqa: E402
from gateway.settings import GatewaySettings  # noqa: E402
from sales.main import MIGRATIONS_DIR  # noqa: E402
from service_defaults.auth import issue_token  # noqa: E402
from service_defaults.db import create_engine, session_factory  # noqa: E402
from service_defaults.migrations import upgrade, version_table_for  # noqa: E402

TARGET_SALES_PER_S = 190.0
TARGET_CPU_MS = 5.0


def _sales_bench() -> ModuleType:
    """bench/sales/run.py (wrk driver, carts, stock checks), loaded by path."""
    spec = importlib.util.spec_from_file_location("bench_sales_run", ROOT / "bench/sales/run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sb = _sales_bench()


class Checks(sb.Bench):  # type: ignore[name-defined,misc]
    """bench/sales' seed, catch-up wait and checks on one deployment's database; Σ lines =
    total compared at cents (SQLite stores NUMERIC as REAL, on either write path)."""

    async def check_stock(self) -> bool:
        async with self.sm() as s:
            sold = dict(
                (
                    await s.execute(
                        text(
                            "SELECT id_material, sum(cantidad) FROM detalle_venta "
                            "GROUP BY id_material"
                        )
                    )
                ).all()
            )
            stock = dict(
                (await s.execute(text("SELECT id_material, stock_actual FROM materiales"))).all()
            )
            bad = await s.scalar(
                text(
                    "SELECT count(*) FROM ventas v WHERE round(v.total, 2) <> round((SELECT "
                    "sum(subtotal) FROM detalle_venta d WHERE d.id_venta = v.id_venta), 2) OR "
                    "(SELECT count(*) FROM abonos a WHERE a.id_venta = v.id_venta) <> 1 OR "
                    "(SELECT count(*) FROM auditoria u WHERE u.entidad = 'venta' AND "
                    "u.entidad_id = v.id_venta) <> 1"
                )
            )
            ledger_dupes = await s.scalar(
                text(
                    "SELECT count(*) FROM (SELECT id_venta, id_material FROM movimientos_stock "
                    "WHERE motivo = 'venta' GROUP BY id_venta, id_material "
                    "HAVING count(*) <> 1) x"
                )
            )
        off = {
            m: stock[m] - (sb.INITIAL_STOCK - int(sold.get(m, 0)))
            for m in self.mats
            if stock[m] != sb.INITIAL_STOCK - int(sold.get(m, 0))
        }
        if bad or ledger_dupes or off:
            print(f"    CHECK FAILED: {bad} bad sales, {ledger_dupes} doubled movements, off {off}")
        return bad == 0 and ledger_dupes == 0 and not off


def cpu_s(pids: list[int]) -> float:
    return sum(sb.tree_cpu_s(p) for p in pids)


async def wait_ready(
    url: str, procs: list[subprocess.Popen[bytes]], deadline_s: float = 120
) -> None:
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"not ready: {url}")
            await asyncio.sleep(0.2)


class Deployment:
    """The server processes of one deployment and the database holding its sales."""

    def __init__(
        self,
        name: str,
        port: int,
        db_url: str,
        procs: list[subprocess.Popen[bytes]],
        log: Path,
    ) -> None:
        self.name, self.port, self.db_url, self.procs, self.log = name, port, db_url, procs, log

    async def measure(self, args: argparse.Namespace) -> dict[str, Any]:
        settings = GatewaySettings(env="test")
        admin = {"Authorization": f"Bearer {issue_token(settings, 'bench-admin', ['admin'])}"}
        vend = f"Bearer {issue_token(settings, 'bench-pos', ['sales.vendedor'])}"
        try:
            await wait_ready(f"http://127.0.0.1:{self.port}/api/sales/health/ready", self.procs)
        except SystemExit:
            print(self.log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        engine = create_engine(self.db_url)
        ns = Checks.__new__(Checks)  # no __init__: this deployment's URL and tokens
        ns.vend, ns.sm, ns.mats = vend, session_factory(engine), []
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.port}/api/sales", timeout=60, headers=admin
            ) as client:
                bodies = await ns.seed(client)
            path = "/api/sales/ventas"
            await asyncio.to_thread(sb.run_wrk, self.port, path, bodies, vend, args.concurrency, 2)
            ventas0, _ = await ns.wait_caught_up()
            pids = [p.pid for p in self.procs]
            cpu0 = cpu_s(pids)
            idle0, tot0 = sb.machine_idle()
            t0 = time.perf_counter()
            w = await asyncio.to_thread(
                sb.run_wrk, self.port, path, bodies, vend, args.concurrency, args.duration
            )
            t_load = time.perf_counter()
            ventas, t_done = await ns.wait_caught_up()
            cpu1 = cpu_s(pids)
            idle1, tot1 = sb.machine_idle()
            n = ventas - ventas0
            return {
                "sales": n,
                "api_per_s": n / (t_load - t0),
                "sustained_per_s": n / (t_done - t0),
                "lag_s": t_done - t_load,
                "cpu_ms": 1000 * (cpu1 - cpu0) / max(n, 1),
                "idle": (idle1 - idle0) / max(tot1 - tot0, 1),
                "p50_ms": w["p50"] / 1000,
                "p99_ms": w["p99"] / 1000,
                "failures": w["status"] + w["connect"] + w["read"] + w["write"] + w["timeout"],
                "stock_ok": await ns.check_stock(),
            }
        finally:
            await engine.dispose()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


@contextlib.contextmanager
def embedded(tmp: Path) -> Iterator[Deployment]:
    port = sb.free_port()
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp / "var"),
        "GATEWAY_PORT": str(port),
        "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
    }
    with open(tmp / "embedded.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"], env=env, stdout=log, stderr=log, cwd=tmp
        )
    try:
        url = f"sqlite+aiosqlite:///{tmp / 'var' / 'sales.db'}"
        yield Deployment("embedded (1 process, SQLite)", port, url, [proc], tmp / "embedded.log")
    finally:
        stop([proc])


@contextlib.contextmanager
def distributed(tmp: Path) -> Iterator[Deployment]:
    with database_and_kafka() as (server_dsn, kafka):
        db_url = asyncio.run(sb.fresh_database(server_dsn))
        asyncio.run(upgrade(db_url, MIGRATIONS_DIR, version_table_for("sales")))
        sales_port, gw_port = sb.free_port(), sb.free_port()
        base = {**os.environ, "SALES_ENV": "test", "GATEWAY_ENV": "test"}
        sales_env = {
            **base,
            "SALES_DATABASE_URL": db_url,
            "SALES_TRANSPORT": "kafka",
            "SALES_KAFKA_BOOTSTRAP_SERVERS": kafka,
        }
        gw_env = {
            **base,
            "GATEWAY_MODE": "proxy",
            "GATEWAY_PORT": str(gw_port),
            "GATEWAY_SALES_URL": f"http://127.0.0.1:{sales_port}",
            "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
            "GATEWAY_TRANSPORT": "kafka",
            "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka,
        }
        uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "--host", "127.0.0.1"]
        uvicorn += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        with open(tmp / "distributed.log", "wb") as log:
            procs = [
                subprocess.Popen(
                    [*uvicorn, "--port", str(sales_port), "sales.main:app_from_env"],
                    env=sales_env,
                    stdout=log,
                    stderr=log,
                ),
                subprocess.Popen(
                    [*uvicorn, "--port", str(gw_port), "gateway.main:app_from_env"],
                    env=gw_env,
                    stdout=log,
                    stderr=log,
                ),
            ]
        try:
            yield Deployment(
                "distributed (sales + gateway, PostgreSQL + Kafka)",
                gw_port,
                db_url,
                procs,
                tmp / "distributed.log",
            )
        finally:
            stop(procs)


def report(name: str, r: dict[str, Any]) -> None:
    print(
        f"  {name}\n"
        f"    {r['sales']} sales: API {r['api_per_s']:.1f}/s, sustained (stock applied) "
        f"{r['sustained_per_s']:.1f}/s, consumer lag after load {r['lag_s']:.2f} s\n"
        f"    process CPU {r['cpu_ms']:.2f} ms/sale, confirm p50 {r['p50_ms']:.1f} ms "
        f"p99 {r['p99_ms']:.1f} ms, machine idle {100 * r['idle']:.0f}%, failed requests "
        f"{r['failures']}, stock exact {r['stock_ok']}",
        flush=True,
    )


def run_flow(script: str, *extra: str) -> int:
    print(f"\n== {script} --embedded {' '.join(extra)}".rstrip(), flush=True)
    cmd = [sys.executable, str(ROOT / script), "--embedded", *extra]
    return subprocess.run(cmd, cwd=ROOT, check=False).returncode


def machine_speed_s(n: int = 10_000_000) -> float:
    """CPU seconds of a fixed pure-Python loop: this machine's speed right now (a shared or
    throttled host can be 2x slower an hour later; compare figures of runs with similar
    values, or A/B in one sitting)."""
    t = time.process_time()
    x = 0
    for i in range(n):
        x += i
    return time.process_time() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--skip-distributed", action="store_true")
    parser.add_argument("--skip-flows", action="store_true", help="POS only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    print(
        f"POS sales through the gateway: wrk -c{args.concurrency} {args.duration:g}s, 64 carts "
        f"of 1-3 lines (targets, embedded: >= {TARGET_SALES_PER_S:.0f} sales/s at <= "
        f"{TARGET_CPU_MS:g} ms CPU/sale)",
        flush=True,
    )
    print(f"  machine speed: 10M-addition Python loop {machine_speed_s():.2f} s CPU", flush=True)
    ok = True
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nexo-embedded-bench-") as tmp_s:
        tmp = Path(tmp_s)
        if not args.skip_embedded:
            with embedded(tmp) as dep:
                results["embedded"] = r = asyncio.run(dep.measure(args))
                report(dep.name, r)
        if not args.skip_distributed:
            with distributed(tmp) as dep:
                results["distributed"] = r = asyncio.run(dep.measure(args))
                report(dep.name, r)
    for r in results.values():
        ok = ok and r["failures"] == 0 and r["stock_ok"]
    e = results.get("embedded")
    if e is not None:
        verdict = (
            "OK"
            if e["sustained_per_s"] >= TARGET_SALES_PER_S and e["cpu_ms"] <= TARGET_CPU_MS
            else "MISS"
        )
        print(
            f"  embedded: {e['sustained_per_s']:.1f} sales/s at {e['cpu_ms']:.2f} ms CPU/sale "
            f"{verdict}",
            flush=True,
        )
    if not args.skip_flows:
        ok = run_flow("bench/evidence/run.py") == 0 and ok
        ok = (
            run_flow("bench/orders/run.py", "--lots", "10000", "--runs", "3", "--latency", "30")
            == 0
            and ok
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
