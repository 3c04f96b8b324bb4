"""Cost of the OpenTelemetry tracing per POS sale, off vs on (issue 17).

Each mode runs in its own process (a tracer provider is process-wide): the embedded gateway
(every service in the process: HTTP, SQLite, relay and stock consumer on the in-memory
transport), ``--sales`` POS sales through it (ASGI, no network), after a warm-up. Reported per
sale: process CPU time (what tracing adds; robust on a shared machine) and wall time; for the
"on" mode also the spans recorded per sale. "on" exports with a BatchSpanProcessor to OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (e.g. the Jaeger of ``TRACING=1 make infra-up``), else
to an in-memory exporter (the SDK's own cost without the network).

    uv run python bench/tracing/run.py [--sales 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SALE = {
    "carrito": [{"producto_id": 2, "material_id": 1, "largo": "10", "ancho": "5", "espesor_mm": 3}],
    "permitir_backorder": True,
}


async def measure(mode: str, sales: int) -> dict[str, float]:
    import httpx
    from asgi_lifespan import LifespanManager

    from gateway.main import create_app
    from gateway.settings import GatewaySettings
    from sales.api import VENDEDOR
    from service_defaults.auth import issue_token

    memory = None
    if mode == "on":
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from service_defaults import tracing

        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            memory = InMemorySpanExporter()
            tracing.extra_span_processors.append(BatchSpanProcessor(memory))
    else:
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER"):
            os.environ.pop(name, None)
    settings = GatewaySettings(
        data_dir=Path(tempfile.mkdtemp()) / "var",
        env="dev",
        rate_limit_per_second=100_000,
        rate_limit_burst=100_000,
    )
    headers = {"Authorization": "Bearer " + issue_token(settings, "bench", [VENDEDOR])}
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=60) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gw"
        ) as c,
    ):
        for _ in range(30):  # warm-up
            assert (
                await c.post("/api/sales/ventas", json=SALE, headers=headers)
            ).status_code == 201
        await asyncio.sleep(1)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(sales):
            r = await c.post("/api/sales/ventas", json=SALE, headers=headers)
            assert r.status_code == 201, r.text
        runtime = app.state.services["sales"].state.runtime
        target = sales + 30 + 1  # the demo's sale too

        def consumed() -> int:
            return sum(r.processed for r in runtime.consumers)

        deadline = time.monotonic() + 120  # until the relay and the stock consumer caught up
        while time.monotonic() < deadline and consumed() < target:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        assert consumed() >= target, (consumed(), target)
        await asyncio.sleep(0.5)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    spans = float("nan")
    if mode == "on":  # "off" imports nothing of the tracing (it also measures older trees)
        tracing.force_flush()
        if memory is not None:
            spans = len(memory.get_finished_spans())
        tracing.shutdown_tracing()
    return {
        "cpu_ms": cpu * 1000 / sales,
        "wall_ms": wall * 1000 / sales,
        "spans": spans / (sales + 30),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", choices=["off", "on"])
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(asyncio.run(measure(args.mode, args.sales))))
        return
    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--mode", mode, "--sales", str(args.sales)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            results[mode].append(json.loads(out))
            print(mode, results[mode][-1], flush=True)
    off = statistics.median(r["cpu_ms"] for r in results["off"])
    on = statistics.median(r["cpu_ms"] for r in results["on"])
    print(
        f"tracing off: {off:.2f} ms CPU/sale; on: {on:.2f} ms CPU/sale "
        f"(+{on - off:.2f} ms, +{(on / off - 1) * 100:.0f} %), "
        f"{statistics.median(r['spans'] for r in results['on']):.1f} spans/sale"
    )


if __name__ == "__main__":
    main()
