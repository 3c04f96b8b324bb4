"""Evidence benchmark (issue 4): bulk save of a month (200 lines × 31 days) → all GPUs created,
and grid read latency p50/p99 for that month.

    uv run python bench/evidence/run.py [--lines 200] [--reads 300] [--embedded]

Default: real PostgreSQL + Kafka (``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` if set, else
started from ``deploy.local``). ``--embedded``: SQLite file + the durable local event log
(``make run``'s transport).
The app runs in-process (``create_app`` + ASGI transport), so the figures are the service's own.
Targets: save-to-GPUs-complete ≤ 3 s, grid p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
import structlog
from asgi_lifespan import LifespanManager
from sqlalchemy import Text, cast, func, select

from contracts.events.evidence import ProductionSavedV2
from deploy.local.provision import database_and_kafka
from evidence.main import create_app
from evidence.models import RegistroGpu, inbox, outbox
from evidence.settings import EvidenceSettings
from service_defaults.auth import issue_token

TARGET_SAVE_S = 3.0
TARGET_GRID_P99_MS = 50.0


@contextlib.contextmanager
def infrastructure(embedded: bool, tmp: Path) -> Iterator[tuple[str, str | None]]:
    if embedded:
        yield f"sqlite+aiosqlite:///{tmp / 'bench.db'}", None
        return
    with database_and_kafka() as (db, kafka):
        yield db, kafka


def _secs(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None
    if a.tzinfo is None:
        a = a.replace(tzinfo=dt.UTC)
    if b.tzinfo is None:
        b = b.replace(tzinfo=dt.UTC)
    return round((a - b).total_seconds(), 3)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, db: str, kafka: str | None) -> dict[str, Any]:
    settings = EvidenceSettings(
        env="test",
        database_url=db,
        # embedded: the durable event log next to the SQLite file, as `make run` runs it
        transport="kafka" if kafka else "local",
        kafka_bootstrap_servers=kafka,
        local_log_path=Path(db.removeprefix("sqlite+aiosqlite:///")).with_name("events.db"),
        log_level="WARNING",
    )
    sup = {"Authorization": f"Bearer {issue_token(settings, 'sam', ['evidence.supervisor'])}"}
    res = {"Authorization": f"Bearer {issue_token(settings, 'ana', ['evidence.residente'])}"}
    app = create_app(settings, freeze_gc=True)  # as `app_from_env` (the process entry point)
    out: dict[str, Any] = {}
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://evidence", timeout=120
        ) as client:
            ot = (
                await client.post(
                    "/ots", json={"orden_trabajo": f"BENCH-{uuid.uuid4().hex[:6]}"}, headers=sup
                )
            ).json()
            eligible = args.lines * 3 // 4
            partidas = [
                {
                    "id_partida": f"C-{2 + i % 2}.{i}" if i < eligible else f"C-1.{i}",
                    "anexo": ("C-2" if i % 2 == 0 else "C-3") if i < eligible else "C-1",
                    "unidad": "JOR",
                    "volumen_proyectado": "1000000",
                }
                for i in range(args.lines)
            ]
            r = await client.post(
                f"/ots/{ot['id']}/importaciones", json={"partidas": partidas}, headers=sup
            )
            r.raise_for_status()
            ids = [p["id"] for p in r.json()["partidas"]]
            body = {
                "id_ot": ot["id"],
                "mes": 3,
                "anio": 2025,
                "tipo_tiempo": "TE",
                "partidas": [{"id_partida_imp": pid, "valores": ["8.5"] * 31} for pid in ids],
            }
            expected = eligible * 31
            maker = app.state.sessionmaker

            async def n_gpus() -> int:
                async with maker() as s:
                    return int(await s.scalar(select(func.count()).select_from(RegistroGpu)))

            # warm-up: one production through the whole pipeline (consumer group joined,
            # topics created, connections open) on the last eligible line, another month
            warm = {
                "id_partida_anexo": ids[0],
                "fecha": "2025-01-15",
                "tipo_tiempo": "TE",
                "volumen": "1",
            }
            (await client.put("/producciones", json=warm, headers=res)).raise_for_status()
            t_warm = time.perf_counter()
            while await n_gpus() < 1:
                if time.perf_counter() - t_warm > 120:
                    raise SystemExit("warm-up GPU not created within 120 s")
                await asyncio.sleep(0.01)
            out["warmup_s"] = time.perf_counter() - t_warm
            expected += 1

            async with maker() as s:  # SQLite's created_at has whole seconds: select by seq
                seq_before = int(await s.scalar(select(func.coalesce(func.max(outbox.c.seq), 0))))
            saved_after = dt.datetime.now(dt.UTC)
            t0 = time.perf_counter()
            r = await client.post("/produccion/masiva", json=body, headers=res)
            r.raise_for_status()
            t_saved = time.perf_counter() - t0
            while await n_gpus() < expected:
                if time.perf_counter() - t0 > 300:
                    raise SystemExit("GPUs not created within 300 s")
                await asyncio.sleep(0.01)
            t_done = time.perf_counter() - t0

            async def unmarked() -> int:  # the relay marks rows after the log/broker has them
                async with maker() as s:
                    q = select(func.count()).where(
                        outbox.c.seq > seq_before, outbox.c.published_at.is_(None)
                    )
                    return int(await s.scalar(q))

            while await unmarked():
                if time.perf_counter() - t0 > 300:
                    raise SystemExit("outbox rows not marked published within 300 s")
                await asyncio.sleep(0.01)
            async with maker() as s:
                stamps = (
                    await s.execute(
                        select(
                            func.min(outbox.c.created_at),
                            func.max(outbox.c.published_at),
                            func.count(),
                            func.max(func.length(cast(outbox.c.payload, Text))),
                        ).where(
                            outbox.c.type == ProductionSavedV2.ce_type(),
                            outbox.c.seq > seq_before,
                        )
                    )
                ).one()
                sync_tx = (
                    await s.execute(
                        select(
                            func.count(func.distinct(inbox.c.processed_at)),
                            func.min(inbox.c.processed_at),
                            func.max(inbox.c.processed_at),
                        ).where(inbox.c.processed_at >= saved_after)
                    )
                ).one()
            # A timeline from the save request. created_at / processed_at are server defaults:
            # transaction start on PostgreSQL, whole seconds on SQLite (left out there).
            precise = not args.embedded
            stages = {
                "save transaction started (outbox created_at)": (
                    _secs(stamps[0], saved_after) if precise else None
                ),
                "save committed (response received)": round(t_saved, 3),
                "last ProductionSaved.v2 published": _secs(stamps[1], saved_after),
                "first GPU-sync transaction started": (
                    _secs(sync_tx[1], saved_after) if precise else None
                ),
                "last GPU-sync transaction started": (
                    _secs(sync_tx[2], saved_after) if precise else None
                ),
                "all GPUs visible": round(t_done, 3),
            }
            out["stages"] = {k: v for k, v in stages.items() if v is not None}
            out["sync_transactions"] = int(sync_tx[0]) if precise else "?"
            out |= {
                "events": int(stamps[2]),
                "largest_event_bytes": int(stamps[3] or 0),
                "productions": args.lines * 31,
                "gpus": expected - 1,
                "save_request_s": t_saved,
                "save_to_gpus_s": t_done,
            }

            url = f"/gpus/grid?id_ot={ot['id']}&mes=3&anio=2025"
            for _ in range(10):  # warm-up
                (await client.get(url, headers=res)).raise_for_status()
            miss: list[float] = []
            for _ in range(20):  # the read model rebuilt from the database every time
                app.state.evidence_grid_cache.clear()
                t = time.perf_counter()
                (await client.get(url, headers=res)).raise_for_status()
                miss.append((time.perf_counter() - t) * 1000)
            out |= {
                "grid_miss": miss,
                "grid_miss_p50_ms": statistics.median(miss),
                "grid_miss_max_ms": max(miss),
            }
            lat: list[float] = []
            for _ in range(args.reads):
                t = time.perf_counter()
                r = await client.get(url, headers=res)
                lat.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
            cells = sum(
                len(row[f"dia_{d}"] or []) for row in r.json()["data"] for d in range(1, 32)
            )
            out |= {
                "grid_rows": len(r.json()["data"]),
                "grid_cells": cells,
                "grid_p50_ms": statistics.median(lat),
                "grid_p99_ms": pct(lat, 99),
                "grid_bytes": len(r.content),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument(
        "--embedded", action="store_true", help="SQLite + the durable local event log"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with (
        tempfile.TemporaryDirectory() as tmp,
        infrastructure(args.embedded, Path(tmp)) as (
            db,
            kafka,
        ),
    ):
        mode = "embedded (SQLite + local event log)" if args.embedded else "PostgreSQL + Kafka"
        res = asyncio.run(run(args, db, kafka))
    ok_save = res["save_to_gpus_s"] <= TARGET_SAVE_S
    ok_grid = res["grid_p99_ms"] <= TARGET_GRID_P99_MS
    print(f"evidence bench — {mode}, {args.lines} lines × 31 days")
    print(f"  warm-up (first event e2e)  {res['warmup_s']:.2f} s")
    print(f"  productions saved          {res['productions']}")
    print(
        f"  ProductionSaved.v2 events  {res['events']} "
        f"(largest payload {res['largest_event_bytes'] / 1024:.0f} KiB)"
    )
    print(f"  GPUs created               {res['gpus']}")
    print(f"  save request               {res['save_request_s']:.2f} s")
    print(
        f"  save-to-GPUs-complete      {res['save_to_gpus_s']:.2f} s "
        f"(target ≤ {TARGET_SAVE_S:.0f} s: {'OK' if ok_save else 'MISSED'})"
    )
    print(f"    timeline (s after the save request; {res['sync_transactions']} GPU-sync tx)")
    for name, value in res["stages"].items():
        print(f"      {name:<46} {value}")
    print(
        f"  grid ({res['grid_rows']} rows, {res['grid_cells']} cells, "
        f"{res['grid_bytes'] // 1024} KiB)"
    )
    print(
        f"  grid uncached (cache miss) p50 {res['grid_miss_p50_ms']:.1f} ms, "
        f"max {res['grid_miss_max_ms']:.1f} ms over {len(res['grid_miss'])} reads"
    )
    print(f"  grid p50                   {res['grid_p50_ms']:.1f} ms")
    print(
        f"  grid p99                   {res['grid_p99_ms']:.1f} ms "
        f"(target ≤ {TARGET_GRID_P99_MS:.0f} ms: {'OK' if ok_grid else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
