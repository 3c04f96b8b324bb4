"""End to end on real PostgreSQL + Kafka (issue 4 acceptance):

bulk-save a month (200 lines × 31 days) through the API → every eligible GPU exists within
seconds, exactly once, announced by a handful of ``ProductionSaved.v2`` events (parts of at most
1,000 productions, keyed by the OT); reduce volumes to 0 → the right GPUs disappear, protected
ones stay (the edit touching them is refused with 409 GPU_EN_PROCESO naming them); redeliver
the whole topic to a fresh consumer group → no change.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from contracts.events.evidence import MAX_PRODUCTIONS_PER_EVENT, ProductionSavedV2
from evidence import application as uc
from evidence import consumers
from evidence import domain as d
from evidence.adapters import writer_for
from evidence.domain import DomainError, GpuStatus, TransitionRequest
from evidence.main import create_app
from evidence.models import (
    GpuConflicto,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
    inbox,
    outbox,
)
from evidence.settings import EvidenceSettings
from nexo_messaging.consumer import EventMeta
from nexo_messaging.runtime import ConsumerSpec, MessagingRuntime, build_transport
from service_defaults.auth import issue_token
from service_defaults.db import create_engine, session_factory
from service_defaults.migrations import upgrade

pytestmark = pytest.mark.integration
PG = writer_for("postgresql")  # what create_app picks for a PostgreSQL URL

LINES = 200
ELIGIBLE = 150  # C-2 / C-3; the other 50 are C-1
DAYS = 31
LINK = "https://drive.google.com/drive/folders/x"
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
META = EventMeta(
    event_id="e",
    type=ProductionSavedV2.ce_type(),
    source="/services/evidence",
    subject=None,
    time=datetime.now(UTC),
    correlationid=None,
    causationid=None,
    traceparent=None,
    topic="evidence.production",
    partition=0,
    offset=0,
)


async def until(
    cond: Callable[[], Awaitable[bool]], deadline_s: float, what: str = "condition"
) -> float:
    start = time.monotonic()
    while True:
        if await cond():
            return time.monotonic() - start
        if time.monotonic() - start > deadline_s:
            raise AssertionError(f"{what} not met within {deadline_s} s")
        await asyncio.sleep(0.05)


async def test_month_bulk_save_on_postgres_and_kafka(
    pg_database: str, kafka_bootstrap: str
) -> None:
    settings = EvidenceSettings(
        env="test",
        database_url=pg_database,
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
    )
    res_h = {"Authorization": f"Bearer {issue_token(settings, 'ana', ['evidence.residente'])}"}
    rev_h = {"Authorization": f"Bearer {issue_token(settings, 'rita', ['evidence.revisor'])}"}
    sup_h = {"Authorization": f"Bearer {issue_token(settings, 'sam', ['evidence.supervisor'])}"}
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://evidence", timeout=60
        ) as client:
            maker = app.state.sessionmaker

            async def scalar(stmt: Any) -> Any:
                async with maker() as s:
                    return await s.scalar(stmt)

            async def n_gpus() -> int:
                return int(await scalar(select(func.count()).select_from(RegistroGpu)))

            ot = (
                await client.post(
                    "/ots", json={"orden_trabajo": f"OTE-{uuid.uuid4().hex[:6]}"}, headers=sup_h
                )
            ).json()
            partidas = [
                {
                    "id_partida": f"C-{2 + i % 2 if i < ELIGIBLE else 1}.{i}",
                    "anexo": ("C-2" if i % 2 == 0 else "C-3") if i < ELIGIBLE else "C-1",
                    "unidad": "JOR",
                    "volumen_proyectado": "100000",
                }
                for i in range(LINES)
            ]
            r = await client.post(
                f"/ots/{ot['id']}/importaciones", json={"partidas": partidas}, headers=sup_h
            )
            assert r.status_code == 201, r.text
            ids = [p["id"] for p in r.json()["partidas"]]
            body = {
                "id_ot": ot["id"],
                "mes": 3,
                "anio": 2025,
                "tipo_tiempo": "TE",
                "partidas": [{"id_partida_imp": pid, "valores": ["8.5"] * DAYS} for pid in ids],
            }
            t0 = time.monotonic()
            r = await client.post("/produccion/masiva", json=body, headers=res_h)
            assert r.status_code == 200, r.text
            assert r.json()["creadas"] == LINES * DAYS
            parts = -(-LINES * DAYS // MAX_PRODUCTIONS_PER_EVENT)
            assert (r.json()["eventos"], r.json()["mensajes"]) == (LINES * DAYS, parts)

            async def all_created() -> bool:
                return await n_gpus() >= ELIGIBLE * DAYS

            await until(all_created, 60, "GPU creation")
            elapsed = time.monotonic() - t0
            print(f"\nsave-to-GPUs-complete: {elapsed:.2f} s for {ELIGIBLE * DAYS} GPUs")
            await asyncio.sleep(0.5)  # let any duplicate delivery land before counting
            assert await n_gpus() == ELIGIBLE * DAYS  # exactly once
            created_hist = await scalar(
                select(func.count())
                .select_from(RegistroGpuHistorial)
                .where(RegistroGpuHistorial.accion == "CREADO")
            )
            assert created_hist == ELIGIBLE * DAYS

            # protect two GPUs of line 0 (days 1, 2): take them into review / validate
            grid = (
                await client.get(f"/gpus/grid?id_ot={ot['id']}&mes=3&anio=2025", headers=rev_h)
            ).json()["data"]
            assert len(grid) == ELIGIBLE
            line0 = next(row for row in grid if row["id_partida_anexo"] == ids[0])
            protected = [line0["dia_1"][0]["id_gpu"], line0["dia_2"][0]["id_gpu"]]
            for gid in protected:
                r = await client.post(
                    f"/gpus/{gid}/transiciones",
                    json={"a": "CARGADO", "archivo": LINK},
                    headers=res_h,
                )
                assert r.status_code == 200, r.text
                r = await client.post(
                    f"/gpus/{gid}/transiciones", json={"a": "EN_REVISION"}, headers=rev_h
                )
                assert r.status_code == 200, r.text
            r = await client.post(
                f"/gpus/{protected[1]}/transiciones", json={"a": "VALIDADO"}, headers=rev_h
            )
            assert r.status_code == 200, r.text

            # reducing everything to 0 is refused as a whole: nothing half-written
            zero = {
                **body,
                "partidas": [{"id_partida_imp": p, "valores": ["0"] * DAYS} for p in ids],
            }
            r = await client.post("/produccion/masiva", json=zero, headers=res_h)
            assert r.status_code == 409, r.text
            assert r.json()["type"].endswith("/GPU_EN_PROCESO")
            assert len(r.json()["producciones"]) == 2
            assert await n_gpus() == ELIGIBLE * DAYS

            # reduce lines 0..9 to 0 except the protected days → their other GPUs disappear
            keep = [None, None] + ["0"] * (DAYS - 2)
            partial = {
                **body,
                "partidas": [
                    {"id_partida_imp": p, "valores": keep if p == ids[0] else ["0"] * DAYS}
                    for p in ids[:10]
                ],
            }
            r = await client.post("/produccion/masiva", json=partial, headers=res_h)
            assert r.status_code == 200, r.text
            assert (r.json()["eventos"], r.json()["mensajes"]) == (10 * DAYS - 2, 1)
            expected_after = ELIGIBLE * DAYS - 10 * DAYS + 2

            async def deleted() -> bool:
                return await n_gpus() == expected_after

            await until(deleted, 60, "GPU deletion")
            for gid in protected:
                assert await scalar(select(RegistroGpu.estatus).where(RegistroGpu.id == gid))

            async def snapshot() -> list[tuple[int, int, str, int]]:
                async with maker() as s:
                    rows = (
                        await s.execute(
                            select(
                                RegistroGpu.id,
                                RegistroGpu.id_produccion,
                                RegistroGpu.estatus,
                                RegistroGpu.version,
                            ).order_by(RegistroGpu.id)
                        )
                    ).all()
                return [tuple(r) for r in rows]  # type: ignore[misc]

            before = await snapshot()
            n_conflicts = await scalar(select(func.count()).select_from(GpuConflicto))

            # redeliver the whole topic to a fresh consumer group → no change
            group = f"evidence.gpu-sync-replay-{uuid.uuid4().hex[:8]}"
            replay = MessagingRuntime(
                service="evidence",
                transport=build_transport("kafka", bootstrap_servers=kafka_bootstrap),
                engine=app.state.engine,
                outbox=None,
                inbox=inbox,
                consumers=[
                    ConsumerSpec(
                        group_id=group,
                        handlers=consumers.handlers(PG),
                        batch_handler=consumers.batch_handler(PG),
                    )
                ],
            )
            await replay.start()
            try:
                published = await scalar(
                    select(func.count())
                    .select_from(outbox)
                    .where(outbox.c.type == ProductionSavedV2.ce_type())
                )
                total_events = parts + 1
                assert published == total_events

                async def replayed() -> bool:
                    n = await scalar(
                        select(func.count())
                        .select_from(inbox)
                        .where(inbox.c.consumer_group == group)
                    )
                    return int(n) >= total_events

                await until(replayed, 120, "replay")
            finally:
                await replay.stop()
            assert await snapshot() == before
            assert await scalar(select(func.count()).select_from(GpuConflicto)) == n_conflicts


async def test_concurrency_on_postgres(pg_database: str) -> None:
    """DOMAIN §0.3.5 on a real server: concurrent transitions of one GPU (same version) → exactly
    one wins; concurrent saves of one month serialise on the report lock (no duplicate rows,
    no lost update); a transition racing a production edit never deadlocks."""
    await upgrade(pg_database, MIGRATIONS, "alembic_version_evidence")
    engine = create_engine(pg_database)
    maker = session_factory(engine)
    sup = d.Actor("sam", frozenset({d.ROLE_SUPERVISOR, d.ROLE_RESIDENTE}))
    try:
        async with maker() as s:
            ot = await uc.crear_ot(s, orden_trabajo="OTE-CONC")
            _, lines = await uc.importar_anexo(
                s,
                sup,
                id_ot=ot.id,
                partidas=[
                    uc.PartidaInput(f"C-2.{i}", "x", "C-2", "JOR", Decimal(10**6)) for i in range(5)
                ],
            )
            await s.commit()

        async def bulk(value: str) -> None:
            async with maker() as s:
                await uc.guardar_produccion_masiva(
                    s,
                    PG,
                    sup,
                    id_ot=ot.id,
                    mes=3,
                    anio=2025,
                    tipo_tiempo="TE",
                    partidas=[uc.PartidaValores(p.id, [Decimal(value)] * 31) for p in lines],
                )
                await s.commit()

        await asyncio.gather(*(bulk(str(v)) for v in (1, 2, 3, 4)))
        async with maker() as s:
            rows = (await s.scalars(select(Produccion))).all()
            ids = sorted(p.id for p in rows)
            await uc.sync_gpus(s, PG, ids)
            await s.commit()
        assert len(rows) == 5 * 31
        assert len({p.volumen_produccion for p in rows}) == 1  # one save won each row

        async with maker() as s:
            gid = await s.scalar(select(RegistroGpu.id).order_by(RegistroGpu.id))
        assert gid is not None

        async def upload(n: int) -> str:
            async with maker() as s:
                try:
                    await uc.transicionar_gpu(
                        s,
                        PG,
                        d.Actor(f"u{n}", frozenset({d.ROLE_RESIDENTE})),
                        gid,
                        TransitionRequest(GpuStatus.CARGADO, archivo=f"{LINK}/{n}"),
                        expected_version=1,
                    )
                    await s.commit()
                    return "ok"
                except DomainError as exc:
                    return exc.code

        results = await asyncio.gather(*(upload(n) for n in range(8)))
        assert results.count("ok") == 1, results
        assert set(results) - {"ok"} <= {"VERSION_OBSOLETA", "TRANSICION_INVALIDA"}

        async def review() -> str:
            async with maker() as s:
                try:
                    await uc.transicionar_gpu(
                        s,
                        PG,
                        d.Actor("rita", frozenset({d.ROLE_REVISOR})),
                        gid,
                        TransitionRequest(GpuStatus.EN_REVISION),
                    )
                    await s.commit()
                    return "ok"
                except DomainError as exc:
                    return exc.code

        async def edit() -> str:
            async with maker() as s:
                prod = await s.scalar(
                    select(RegistroGpu.id_produccion).where(RegistroGpu.id == gid)
                )
                assert prod is not None
                try:
                    await uc.editar_produccion(s, PG, sup, prod, Decimal(0))
                    await s.commit()
                    return "ok"
                except DomainError as exc:
                    return exc.code

        r_review, r_edit = await asyncio.wait_for(asyncio.gather(review(), edit()), 30)
        assert r_review == "ok"
        # the edit either ran first (then the consumer would retire or flag the GPU) or saw the
        # GPU in review and was refused — never both half-applied, never a deadlock
        assert r_edit in {"ok", "GPU_EN_PROCESO"}
        async with maker() as s:
            estatus = await s.scalar(select(RegistroGpu.estatus).where(RegistroGpu.id == gid))
        assert estatus == "EN_REVISION"
    finally:
        await engine.dispose()


async def test_bulk_save_update_and_gpu_sync_on_postgres(pg_database: str) -> None:
    """The PostgreSQL bulk statements (unnest insert/update, ANY() reads, bulk GPU delete and
    history) give the same behaviour as the generic path: updates bump versions, drops to 0
    delete PENDIENTE/CARGADO GPUs and record + publish one conflict for a GPU taken into review
    before the consumer ran; redelivery and replay change nothing."""
    await upgrade(pg_database, MIGRATIONS, "alembic_version_evidence")
    engine = create_engine(pg_database)
    maker = session_factory(engine)
    res = d.Actor("ana", frozenset({d.ROLE_RESIDENTE, d.ROLE_SUPERVISOR}))
    rev = d.Actor("rita", frozenset({d.ROLE_REVISOR}))
    try:
        async with maker() as s:
            ot = await uc.crear_ot(s, orden_trabajo="OTE-BULK")
            _, lines = await uc.importar_anexo(
                s,
                res,
                id_ot=ot.id,
                partidas=[
                    uc.PartidaInput(f"{a}.{i}", "x", a, "JOR", Decimal(10**6))
                    for i, a in enumerate(("C-2", "C-3", "C-1"))
                ],
            )
            await s.commit()

        async def month(values: dict[int, list[Decimal | None]]) -> uc.SaveResult:
            async with maker() as s:
                out = await uc.guardar_produccion_masiva(
                    s,
                    PG,
                    res,
                    id_ot=ot.id,
                    mes=3,
                    anio=2025,
                    tipo_tiempo="TE",
                    partidas=[uc.PartidaValores(p, v) for p, v in values.items()],
                )
                await s.commit()
                return out

        seen = 0

        async def drain(*, replay: bool = False) -> None:
            nonlocal seen
            async with maker() as s:
                rows = (
                    await s.execute(
                        select(outbox.c.seq, outbox.c.payload)
                        .where(
                            outbox.c.type == ProductionSavedV2.ce_type(),
                            outbox.c.seq > (0 if replay else seen),
                        )
                        .order_by(outbox.c.seq)
                    )
                ).all()
            if not rows:
                return
            seen = max(seen, rows[-1][0])
            events = [ProductionSavedV2.model_validate(p) for _, p in rows]
            async with maker() as s:
                await consumers.handle_production_saved_batch(
                    s, [(e, META) for e in events], writer=PG
                )
                await s.commit()

        async def gpus() -> dict[int, tuple[int, str]]:
            async with maker() as s:
                rows = (
                    await s.execute(
                        select(
                            Produccion.id_partida_anexo,
                            Produccion.fecha_produccion,
                            RegistroGpu.id,
                            RegistroGpu.estatus,
                        ).join(RegistroGpu, RegistroGpu.id_produccion == Produccion.id)
                    )
                ).all()
            return {(p * 100 + f.day): (g, e) for p, f, g, e in rows}

        first = await month({p.id: [Decimal("8.5")] * DAYS for p in lines})
        assert (first.creadas, first.eventos, first.mensajes) == (3 * DAYS, 3 * DAYS, 1)
        await drain()
        created = await gpus()
        assert len(created) == 2 * DAYS  # C-2 and C-3 lines
        line0 = lines[0].id
        day = {n: created[line0 * 100 + n][0] for n in (1, 2, 3)}
        async with maker() as s:
            for n in (1, 2):
                await uc.transicionar_gpu(
                    s, PG, res, day[n], TransitionRequest(GpuStatus.CARGADO, archivo=LINK)
                )
            await s.commit()

        second = await month({line0: [Decimal(0)] * 3, lines[1].id: [Decimal(5)]})
        assert (second.creadas, second.actualizadas, second.mensajes) == (0, 4, 1)
        async with maker() as s:
            versions = dict(
                (
                    await s.execute(
                        select(Produccion.fecha_produccion, Produccion.version).where(
                            Produccion.id_partida_anexo == line0
                        )
                    )
                ).all()
            )
            await uc.transicionar_gpu(s, PG, rev, day[2], TransitionRequest(GpuStatus.EN_REVISION))
            await s.commit()
        assert [versions[f] for f in sorted(versions)][:4] == [2, 2, 2, 1]
        await drain()
        after = await gpus()
        assert len(after) == 2 * DAYS - 2
        assert line0 * 100 + 1 not in after  # CARGADO → deleted
        assert line0 * 100 + 3 not in after  # PENDIENTE → deleted
        assert after[line0 * 100 + 2] == (day[2], "EN_REVISION")  # protected, kept
        async with maker() as s:
            hist = (
                await s.execute(
                    select(RegistroGpuHistorial.id_gpu, RegistroGpuHistorial.de_estatus).where(
                        RegistroGpuHistorial.accion == "ELIMINADO"
                    )
                )
            ).all()
            conflicts = (await s.scalars(select(GpuConflicto.id_gpu))).all()
            published = (
                await s.scalars(
                    select(outbox.c.payload).where(
                        outbox.c.type == "nexo.evidence.GpuStatusChanged.v1"
                    )
                )
            ).all()
        assert sorted(tuple(h) for h in hist) == sorted(
            [(day[1], "CARGADO"), (day[3], "PENDIENTE")]
        )
        assert list(conflicts) == [day[2]]
        assert [p["id_registro_gpu"] for p in published if p["change"] == "conflict"] == [day[2]]
        assert sorted(
            p["id_registro_gpu"] for p in published if p["change"] == "deleted"
        ) == sorted([day[1], day[3]])

        await drain(replay=True)  # the whole topic again
        assert await gpus() == after
        async with maker() as s:
            assert await s.scalar(select(func.count()).select_from(GpuConflicto)) == 1
    finally:
        await engine.dispose()
