"""Use cases and the GPU-sync consumer on SQLite (DOMAIN §C.7 acceptance examples)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events.evidence import GpuStatusChanged, ProductionSaved, ProductionSavedV2
from evidence import application as uc
from evidence import consumers, queries
from evidence import domain as d
from evidence.adapters import BulkWriter, writer_for
from evidence.application import production as save_module
from evidence.domain import Actor, DomainError, GpuStatus, TransitionRequest
from evidence.models import (
    GpuConflicto,
    PartidaAnexo,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
    outbox,
)
from nexo_messaging.consumer import EventMeta
from nexo_messaging.errors import PermanentError

T = TypeVar("T")
Maker = async_sessionmaker[AsyncSession]

RES = Actor("ana", frozenset({d.ROLE_RESIDENTE}))
REV = Actor("rita", frozenset({d.ROLE_REVISOR}))
SUP = Actor("sam", frozenset({d.ROLE_SUPERVISOR}))
FAC = Actor("fede", frozenset({d.ROLE_FACTURACION}))
LINK = "https://drive.google.com/drive/folders/abc123"


def w(session: AsyncSession) -> BulkWriter:
    """The writer for this session's database (what `create_app` picks for its URL)."""
    return writer_for(session.get_bind().dialect.name)


async def tx(maker: Maker, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with maker() as session:
        result = await fn(session)
        await session.commit()
        return result


def meta(event_id: str = "e1") -> EventMeta:
    return EventMeta(
        event_id=event_id,
        type=ProductionSavedV2.ce_type(),
        source="/services/evidence",
        subject=None,
        time=dt.datetime.now(dt.UTC),
        correlationid=None,
        causationid=None,
        traceparent=None,
        topic="evidence.production",
        partition=0,
        offset=0,
    )


async def outbox_events(maker: Maker, cls: type[Any], after: int = 0) -> list[tuple[int, Any]]:
    async with maker() as s:
        rows = (
            await s.execute(
                select(outbox.c.seq, outbox.c.payload)
                .where(outbox.c.type == cls.ce_type(), outbox.c.seq > after)
                .order_by(outbox.c.seq)
            )
        ).all()
    return [(seq, cls.model_validate(p)) for seq, p in rows]


def items(events: list[ProductionSavedV2]) -> list[Any]:
    """Every production listed by these events, in order."""
    return [p for e in events for p in e.producciones]


class Consumer:
    """Feeds outbox ProductionSaved events to the real handler, like the runner would."""

    def __init__(self, maker: Maker) -> None:
        self.maker = maker
        self.seen = 0

    async def drain(self, *, batch: bool = False) -> int:
        """Deliver the new events; return how many production changes they carried."""
        events = await outbox_events(self.maker, ProductionSavedV2, self.seen)
        if not events:
            return 0
        self.seen = events[-1][0]
        await self.deliver([e for _, e in events], batch=batch)
        return len(items([e for _, e in events]))

    async def deliver(
        self, events: list[ProductionSaved] | list[ProductionSavedV2], *, batch: bool = False
    ) -> None:
        async with self.maker() as s:
            if batch:
                await consumers.handle_production_saved_batch(
                    s, [(e, meta(str(i))) for i, e in enumerate(events)], writer=w(s)
                )
            else:
                for e in events:
                    await consumers.handle_production_saved(s, e, meta(), writer=w(s))
            await s.commit()

    async def replay_all(self) -> None:
        await self.deliver([e for _, e in await outbox_events(self.maker, ProductionSavedV2)])


async def save(maker: Maker, partida: int, day: int, vol: str, tipo: str = "TE") -> int:
    res = await tx(
        maker,
        lambda s: uc.guardar_produccion(
            s,
            w(s),
            RES,
            id_partida_anexo=partida,
            fecha=dt.date(2025, 3, day),
            tipo_tiempo=tipo,
            volumen=Decimal(vol),
        ),
    )
    async with maker() as s:
        pid = await s.scalar(
            select(Produccion.id).where(
                Produccion.id_partida_anexo == partida,
                Produccion.fecha_produccion == dt.date(2025, 3, day),
                Produccion.tipo_tiempo == tipo,
            )
        )
    assert res.id_reporte_mensual
    return pid or 0


async def gpu_of(maker: Maker, pid: int) -> RegistroGpu | None:
    async with maker() as s:
        return await s.scalar(select(RegistroGpu).where(RegistroGpu.id_produccion == pid))


async def transition(maker: Maker, gpu_id: int, actor: Actor, to: GpuStatus, **kw: Any) -> None:
    version = kw.pop("version", None)
    await tx(
        maker,
        lambda s: uc.transicionar_gpu(
            s, w(s), actor, gpu_id, TransitionRequest(to=to, **kw), expected_version=version
        ),
    )


async def validated_gpu(maker: Maker, consumer: Consumer, partida: int = 456, day: int = 2) -> int:
    pid = await save(maker, partida, day, "8")
    await consumer.drain()
    gpu = await gpu_of(maker, pid)
    assert gpu is not None
    await transition(maker, gpu.id, RES, GpuStatus.CARGADO, archivo=LINK)
    await transition(maker, gpu.id, REV, GpuStatus.EN_REVISION)
    await transition(maker, gpu.id, REV, GpuStatus.VALIDADO)
    return pid


# ------------------------------------------------------------------------------------------


@pytest.mark.spec("GP-E01")
async def test_eligible_production_creates_a_pending_gpu(maker: Maker) -> None:
    consumer = Consumer(maker)
    pid = await save(maker, 456, 2, "8.000000")
    assert await gpu_of(maker, pid) is None  # asynchronous
    events = await outbox_events(maker, ProductionSavedV2)
    assert len(events) == 1
    ev = events[0][1]
    assert (ev.id_ot, ev.mes, ev.anio, ev.parte, ev.partes) == (10, 3, 2025, 1, 1)
    assert [(p.id_produccion, p.anexo, p.volumen, p.change) for p in ev.producciones] == [
        (pid, "C-2", Decimal("8.000000"), "created")
    ]
    await consumer.drain()
    gpu = await gpu_of(maker, pid)
    assert gpu is not None
    assert (gpu.estatus, gpu.archivo, gpu.id_estimacion_detalle) == ("PENDIENTE", None, None)
    async with maker() as s:
        hist = (await s.scalars(select(RegistroGpuHistorial))).all()
    assert [(h.accion, h.a_estatus) for h in hist] == [("CREADO", "PENDIENTE")]
    created = await outbox_events(maker, GpuStatusChanged)
    assert [(e.change, e.to_status, e.to_status_id) for _, e in created] == [
        ("created", "PENDIENTE", 19)
    ]
    async with maker() as s:
        data = await queries.grid(s, id_ot=10, mes=3, anio=2025)
    assert len(data) == 1
    assert data[0]["dia_2"] == [
        {
            "id_produccion": pid,
            "volumen": "8.000000",
            "tipo_tiempo": "TE",
            "estatus_id": 19,
            "estatus_texto": "PENDIENTE",
            "archivos_count": 0,
            "archivo": "",
            "id_gpu": gpu.id,
        }
    ]


@pytest.mark.spec("GP-E02")
async def test_non_eligible_productions_get_no_gpu(maker: Maker) -> None:
    consumer = Consumer(maker)
    p458 = await save(maker, 458, 2, "5")
    p0 = await save(maker, 456, 3, "0")
    p459 = await save(maker, 459, 2, "4")
    p460 = await save(maker, 460, 2, "4")
    assert p0 == 0  # no production row created for volume 0
    await consumer.drain()
    assert await gpu_of(maker, p458) is None
    assert await gpu_of(maker, p459) is None
    assert await gpu_of(maker, p460) is not None  # " c-2 " normalised


async def test_unchanged_rows_publish_nothing(maker: Maker) -> None:
    await save(maker, 456, 2, "8")
    await save(maker, 456, 2, "8.000000")
    events = await outbox_events(maker, ProductionSavedV2)
    assert len(items([e for _, e in events])) == 1


@pytest.mark.spec("GP-E03", "GP-E04")
async def test_review_workflow_and_history_rows(maker: Maker) -> None:
    consumer = Consumer(maker)
    pid = await save(maker, 456, 2, "8")
    await consumer.drain()
    gpu = await gpu_of(maker, pid)
    assert gpu is not None
    await transition(maker, gpu.id, RES, GpuStatus.CARGADO, archivo=LINK, version=1)
    g = await gpu_of(maker, pid)
    assert g is not None
    assert g.fecha_carga is not None
    assert g.usuario_carga == "ana"
    await transition(maker, gpu.id, REV, GpuStatus.EN_REVISION)
    with pytest.raises(DomainError) as exc:
        await transition(maker, gpu.id, REV, GpuStatus.RECHAZADO)
    assert exc.value.code == "NOTA_REQUERIDA"
    nota = "Falta hoja de asistencia del 02/03"
    await transition(maker, gpu.id, REV, GpuStatus.RECHAZADO, nota=nota, motivo="FALTA_ASISTENCIA")
    g = await gpu_of(maker, pid)
    assert g is not None
    assert (g.nota_bloqueo, g.motivo_rechazo) == (nota, "FALTA_ASISTENCIA")
    await transition(maker, gpu.id, RES, GpuStatus.CARGADO, archivo=LINK + "/v2")
    await transition(maker, gpu.id, REV, GpuStatus.EN_REVISION)
    await transition(maker, gpu.id, REV, GpuStatus.VALIDADO)
    async with maker() as s:
        hist = await queries.historial(s, gpu.id)
    assert [h.a_estatus for h in hist] == [
        "PENDIENTE",
        "CARGADO",
        "EN_REVISION",
        "RECHAZADO",
        "CARGADO",
        "EN_REVISION",
        "VALIDADO",
    ]
    assert hist[3].nota == nota  # nota kept in history
    g = await gpu_of(maker, pid)
    assert g is not None
    assert g.version == 7
    assert g.usuario_revision == "rita"


async def test_stale_version_and_failed_transition_write_nothing(maker: Maker) -> None:
    consumer = Consumer(maker)
    pid = await save(maker, 456, 2, "8")
    await consumer.drain()
    gpu = await gpu_of(maker, pid)
    assert gpu is not None
    before = len(await outbox_events(maker, GpuStatusChanged))
    with pytest.raises(DomainError) as exc:
        await transition(maker, gpu.id, RES, GpuStatus.CARGADO, archivo=LINK, version=7)
    assert exc.value.code == "VERSION_OBSOLETA"
    with pytest.raises(DomainError) as exc:
        await transition(maker, gpu.id, RES, GpuStatus.VALIDADO)
    assert exc.value.code == "TRANSICION_INVALIDA"
    g = await gpu_of(maker, pid)
    assert g is not None
    assert (g.estatus, g.version) == ("PENDIENTE", 1)
    assert len(await outbox_events(maker, GpuStatusChanged)) == before


@pytest.mark.spec("GP-E06")
async def test_volume_to_zero_deletes_a_pending_gpu_not_a_validated_one(maker: Maker) -> None:
    consumer = Consumer(maker)
    p790 = await save(maker, 457, 5, "12.0")
    await consumer.drain()
    g790 = await gpu_of(maker, p790)
    assert g790 is not None
    await save(maker, 457, 5, "0")
    await consumer.drain()
    assert await gpu_of(maker, p790) is None
    async with maker() as s:
        hist = await queries.historial(s, g790.id)  # history kept
    assert [h.accion for h in hist] == ["CREADO", "ELIMINADO"]
    assert hist[-1].motivo == "VOLUMEN_CERO"

    p789 = await validated_gpu(maker, consumer)
    with pytest.raises(DomainError) as exc:
        await save(maker, 456, 2, "0")
    assert (exc.value.code, exc.value.status) == ("GPU_EN_PROCESO", 409)
    assert exc.value.extensions["producciones"] == [p789]
    async with maker() as s:
        prod = await s.get(Produccion, p789)
    assert prod is not None
    assert prod.volumen_produccion == Decimal("8")


async def test_conflict_when_gpu_moved_to_review_after_save(maker: Maker) -> None:
    """Race: production set to 0 while its GPU was PENDIENTE; before the consumer runs the GPU
    is taken into review → the GPU is kept, a conflict recorded once and published."""
    consumer = Consumer(maker)
    pid = await save(maker, 456, 2, "8")
    await consumer.drain()
    gpu = await gpu_of(maker, pid)
    assert gpu is not None
    await transition(maker, gpu.id, RES, GpuStatus.CARGADO, archivo=LINK)
    await save(maker, 456, 2, "0")  # allowed: GPU is CARGADO
    await transition(maker, gpu.id, REV, GpuStatus.EN_REVISION)  # before the consumer runs
    await consumer.drain()
    await consumer.replay_all()  # redelivery: no second conflict
    g = await gpu_of(maker, pid)
    assert g is not None
    assert g.estatus == "EN_REVISION"
    async with maker() as s:
        confl = (await s.scalars(select(GpuConflicto))).all()
    assert [(c.id_gpu, c.motivo, c.estatus_gpu) for c in confl] == [
        (gpu.id, "VOLUMEN_CERO", "EN_REVISION")
    ]
    published = [
        e for _, e in await outbox_events(maker, GpuStatusChanged) if e.change == "conflict"
    ]
    assert len(published) == 1
    assert published[0].reason_code == "GPU_EN_PROCESO"


async def test_redelivery_and_replay_converge(maker: Maker) -> None:
    consumer = Consumer(maker)
    await tx(
        maker,
        lambda s: uc.guardar_produccion_masiva(
            s,
            w(s),
            RES,
            id_ot=10,
            mes=3,
            anio=2025,
            tipo_tiempo="TE",
            partidas=[
                uc.PartidaValores(456, [Decimal(1)] * 31),
                uc.PartidaValores(457, [Decimal(2)] * 10),
                uc.PartidaValores(458, [Decimal(3)] * 5),
            ],
        ),
    )
    assert len(await outbox_events(maker, ProductionSavedV2)) == 1  # one event for the save
    assert await consumer.drain(batch=True) == 46

    async def snapshot() -> list[tuple[int, str]]:
        async with maker() as s:
            return [
                (g.id_produccion, g.estatus)
                for g in (await s.scalars(select(RegistroGpu).order_by(RegistroGpu.id))).all()
            ]

    first = await snapshot()
    assert len(first) == 41
    await consumer.replay_all()  # redeliver the whole topic, one by one
    await consumer.deliver(
        [e for _, e in await outbox_events(maker, ProductionSavedV2)], batch=True
    )
    assert await snapshot() == first
    # drop some to zero, replay: converges to the same state
    await tx(
        maker,
        lambda s: uc.guardar_produccion_masiva(
            s,
            w(s),
            RES,
            id_ot=10,
            mes=3,
            anio=2025,
            tipo_tiempo="TE",
            partidas=[uc.PartidaValores(456, [Decimal(0)] * 5)],
        ),
    )
    await consumer.drain()
    after = await snapshot()
    assert len(after) == 36
    await consumer.replay_all()
    assert await snapshot() == after
    async with maker() as s:
        n = await s.scalar(select(func.count()).select_from(RegistroGpuHistorial))
    assert n == 41 + 5


async def test_unknown_production_is_permanent_error(maker: Maker) -> None:
    event = ProductionSaved(
        id_produccion=999999,
        id_ot=10,
        id_partida_anexo=456,
        anexo="C-2",
        importacion_activa=True,
        fecha=dt.date(2025, 3, 1),
        tipo_tiempo="TE",
        volumen=Decimal(1),
        id_reporte_mensual=1,
        mes=3,
        anio=2025,
        change="created",
        saved_by="x",
        saved_at=dt.datetime.now(dt.UTC),
    )
    async with maker() as s:
        with pytest.raises(PermanentError):
            await consumers.handle_production_saved(s, event, meta(), writer=w(s))


async def test_unknown_production_in_v2_event_is_permanent_error(maker: Maker) -> None:
    pid = await save(maker, 456, 2, "8")
    [(_, event)] = await outbox_events(maker, ProductionSavedV2)
    ghost = event.producciones[0].model_copy(update={"id_produccion": 999999})
    bad = event.model_copy(update={"producciones": [*event.producciones, ghost]})
    async with maker() as s:
        with pytest.raises(PermanentError, match="999999"):
            await consumers.handle_production_saved(s, bad, meta(), writer=w(s))
    async with maker() as s:
        with pytest.raises(PermanentError):
            await consumers.handle_production_saved_batch(s, [(bad, meta())], writer=w(s))
    assert await gpu_of(maker, pid) is None  # nothing half-applied


async def month(maker: Maker, values: dict[int, list[Decimal | None]]) -> uc.SaveResult:
    return await tx(
        maker,
        lambda s: uc.guardar_produccion_masiva(
            s,
            w(s),
            RES,
            id_ot=10,
            mes=3,
            anio=2025,
            tipo_tiempo="TE",
            partidas=[uc.PartidaValores(p, v) for p, v in values.items()],
        ),
    )


async def test_bulk_save_is_split_into_numbered_parts(
    maker: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(save_module, "MAX_PRODUCTIONS_PER_EVENT", 20)
    res = await month(
        maker, {456: [Decimal(1)] * 31, 457: [Decimal(2)] * 10, 458: [Decimal(3)] * 5}
    )
    assert (res.creadas, res.eventos, res.mensajes) == (46, 46, 3)
    events = [e for _, e in await outbox_events(maker, ProductionSavedV2)]
    assert [(e.parte, e.partes, len(e.producciones)) for e in events] == [
        (1, 3, 20),
        (2, 3, 20),
        (3, 3, 6),
    ]
    assert {(e.id_ot, e.id_reporte_mensual, e.mes, e.anio) for e in events} == {
        (10, res.id_reporte_mensual, 3, 2025)
    }
    async with maker() as s:
        stored = sorted((await s.scalars(select(Produccion.id))).all())
    assert sorted(p.id_produccion for p in items(events)) == stored  # each exactly once
    assert {p.change for p in items(events)} == {"created"}
    consumer = Consumer(maker)
    assert await consumer.drain() == 46
    async with maker() as s:
        assert await s.scalar(select(func.count()).select_from(RegistroGpu)) == 41


async def test_single_edit_and_bulk_save_share_the_ordering_key(maker: Maker) -> None:
    """Every event about a production is keyed by its report's OT: a single-row edit and a bulk
    save of the same production go to one partition, in outbox (= commit) order."""
    await month(maker, {456: [Decimal(1)] * 3})
    pid = await save(maker, 456, 2, "4")
    await month(maker, {456: [None, Decimal(0)]})
    async with maker() as s:
        rows = (
            await s.execute(
                select(outbox.c.aggregatetype, outbox.c.aggregateid, outbox.c.type)
                .where(outbox.c.topic == "evidence.production")
                .order_by(outbox.c.seq)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("ot", "10", ProductionSavedV2.ce_type())] * 3
    events = [e for _, e in await outbox_events(maker, ProductionSavedV2)]
    mine = [
        (p.change, p.volumen_anterior, p.volumen) for p in items(events) if p.id_produccion == pid
    ]
    assert mine == [
        ("created", None, Decimal("1.000000")),
        ("updated", Decimal("1.000000"), Decimal("4.000000")),
        ("updated", Decimal("4.000000"), Decimal("0.000000")),
    ]
    consumer = Consumer(maker)
    await consumer.drain()
    assert await gpu_of(maker, pid) is None  # last state wins: volume 0, no GPU
    others = [p.id_produccion for p in events[0].producciones if p.id_produccion != pid]
    assert [await gpu_of(maker, p) is not None for p in others] == [True, True]


async def test_bulk_update_of_existing_rows_checks_versions(
    maker: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    await month(maker, {456: [Decimal(1)] * 5, 457: [Decimal(2)] * 5})
    res = await month(maker, {456: [Decimal(3)] * 5, 457: [Decimal(2), Decimal(7)]})
    assert (res.creadas, res.actualizadas, res.sin_cambio, res.mensajes) == (0, 6, 1, 1)
    async with maker() as s:
        rows = (
            await s.execute(
                select(
                    Produccion.id_partida_anexo,
                    Produccion.fecha_produccion,
                    Produccion.volumen_produccion,
                    Produccion.version,
                ).order_by(Produccion.id_partida_anexo, Produccion.fecha_produccion)
            )
        ).all()
    assert [(p, f.day, Decimal(v), ver) for p, f, v, ver in rows] == [
        *[(456, day, Decimal(3), 2) for day in range(1, 6)],
        (457, 1, Decimal(2), 1),
        (457, 2, Decimal(7), 2),
        *[(457, day, Decimal(2), 1) for day in range(3, 6)],
    ]
    # a version bump between reading the rows and writing them (autorizar_excedente does not
    # take the report lock) refuses the whole save: nothing is written
    real_lock = save_module.lock_gpu_rows

    async def lock_then_bump(session: AsyncSession, writer: Any, ids: Any) -> Any:
        found = await real_lock(session, writer, ids)
        await session.execute(
            update(Produccion)
            .where(
                Produccion.id_partida_anexo == 457,
                Produccion.fecha_produccion == dt.date(2025, 3, 2),
            )
            .values(version=Produccion.version + 1)
        )
        return found

    monkeypatch.setattr(save_module, "lock_gpu_rows", lock_then_bump)
    with pytest.raises(DomainError) as exc:
        await month(maker, {456: [Decimal(5)] * 5, 457: [None, Decimal(9)]})
    assert exc.value.code == "VERSION_OBSOLETA"
    async with maker() as s:
        assert {Decimal(v) for v in (await s.scalars(select(Produccion.volumen_produccion)))} == {
            Decimal(2),
            Decimal(3),
            Decimal(7),
        }
    assert len(await outbox_events(maker, ProductionSavedV2)) == 2


async def test_legacy_v1_events_still_converge(maker: Maker) -> None:
    """ProductionSaved.v1 records already on the topic (one production each) are still
    consumed: replaying them gives the same GPUs as the v2 events."""
    await month(maker, {456: [Decimal(1)] * 4, 457: [Decimal(2)] * 3, 458: [Decimal(3)] * 2})
    [(_, v2)] = await outbox_events(maker, ProductionSavedV2)
    legacy = [
        ProductionSaved(
            id_produccion=p.id_produccion,
            id_ot=v2.id_ot,
            id_partida_anexo=p.id_partida_anexo,
            anexo=p.anexo,
            importacion_activa=p.importacion_activa,
            fecha=p.fecha,
            tipo_tiempo=p.tipo_tiempo,
            volumen=p.volumen,
            id_reporte_mensual=v2.id_reporte_mensual,
            mes=v2.mes,
            anio=v2.anio,
            change=p.change,
            saved_by=v2.saved_by,
            saved_at=v2.saved_at,
        )
        for p in v2.producciones
    ]
    consumer = Consumer(maker)
    await consumer.deliver(legacy[:4])  # one by one, per-event handler
    await consumer.deliver(legacy[4:], batch=True)

    async def snapshot() -> list[tuple[int, str]]:
        async with maker() as s:
            return [
                (g.id_produccion, g.estatus)
                for g in (await s.scalars(select(RegistroGpu).order_by(RegistroGpu.id_produccion)))
            ]

    from_v1 = await snapshot()
    assert len(from_v1) == 7  # C-2 and C-3 only
    await consumer.deliver([v2])  # the v2 event of the same save: no change
    await consumer.deliver(legacy, batch=True)  # replay of v1: no change
    assert await snapshot() == from_v1
    async with maker() as s:
        assert await s.scalar(select(func.count()).select_from(RegistroGpuHistorial)) == 7


@pytest.mark.spec("GP-E07")
async def test_billed_gpu_is_locked(maker: Maker) -> None:
    consumer = Consumer(maker)
    p789 = await validated_gpu(maker, consumer)
    p_cargado = await save(maker, 457, 3, "4")
    await consumer.drain()
    gc = await gpu_of(maker, p_cargado)
    assert gc is not None
    await transition(maker, gc.id, RES, GpuStatus.CARGADO, archivo=LINK)
    res = await tx(
        maker,
        lambda s: uc.crear_estimacion(
            s,
            w(s),
            FAC,
            id_ot=10,
            fecha_desde=dt.date(2025, 3, 1),
            fecha_hasta=dt.date(2025, 3, 31),
            fecha_estimacion=dt.date(2025, 4, 1),
            detalles=[uc.DetalleInput(p789)],
        ),
    )
    line = res.detalles[0]
    assert (line.volumen_actual, line.volumen_estimado) == (Decimal("8.00"), Decimal("8.00"))
    assert res.header.total_importe_mn == Decimal("9876.54")
    g = await gpu_of(maker, p789)
    assert g is not None
    assert g.id_estimacion_detalle == line.id
    for to, actor in ((GpuStatus.EN_REVISION, SUP), (GpuStatus.RECHAZADO, REV)):
        with pytest.raises(DomainError) as exc:
            await transition(maker, g.id, actor, to, nota="x")
        assert exc.value.code == "GPU_FACTURADO"
    with pytest.raises(DomainError) as exc:
        await tx(
            maker,
            lambda s: uc.agregar_detalle(s, w(s), FAC, res.header.id, uc.DetalleInput(p_cargado)),
        )
    assert (exc.value.code, exc.value.status) == ("GPU_NO_VALIDADO", 422)
    # a billed production cannot be edited
    with pytest.raises(DomainError) as exc:
        await save(maker, 456, 2, "9")
    assert exc.value.code == "GPU_EN_PROCESO"


async def test_auto_estimate_skips_and_excedente_authorisation(maker: Maker) -> None:
    consumer = Consumer(maker)
    p_valid = await validated_gpu(maker, consumer)
    p_pend = await save(maker, 457, 3, "4")
    p_c1 = await save(maker, 458, 3, "2.345")
    await consumer.drain()
    res = await tx(
        maker,
        lambda s: uc.crear_estimacion(
            s,
            w(s),
            FAC,
            id_ot=10,
            fecha_desde=dt.date(2025, 3, 1),
            fecha_hasta=dt.date(2025, 3, 31),
            fecha_estimacion=dt.date(2025, 4, 1),
        ),
    )
    assert sorted(x.id_produccion for x in res.detalles) == sorted([p_valid, p_c1])
    assert res.omitidas == [{"id_produccion": p_pend, "motivo": "GPU_NO_VALIDADO"}]
    c1 = next(x for x in res.detalles if x.id_produccion == p_c1)
    assert c1.volumen_actual == Decimal("2.35")  # DECIDE-C8
    assert res.header.total_volumen_producido == Decimal("10.35")


@pytest.mark.spec("GP-E08")
async def test_excedente_chronological(maker: Maker) -> None:
    consumer = Consumer(maker)
    # OT 11 (reprogramación of 10) authorises 20 more of C-2.1.1 → 80 + 20 = 100
    async with maker() as s:
        row = await s.get(PartidaAnexo, 456)
        assert row is not None
        row.volumen_proyectado = Decimal(80)
        await s.commit()
    await tx(
        maker,
        lambda s: uc.importar_anexo(
            s,
            SUP,
            id_ot=11,
            partidas=[uc.PartidaInput("C-2.1.1.", "Técnico (reprog)", "C-2", "JOR", Decimal(20))],
        ),
    )
    # April production entered earlier
    await tx(
        maker,
        lambda s: uc.guardar_produccion(
            s,
            w(s),
            RES,
            id_partida_anexo=456,
            fecha=dt.date(2025, 4, 1),
            tipo_tiempo="TE",
            volumen=Decimal(50),
        ),
    )
    # family production before March = 90
    await tx(
        maker,
        lambda s: uc.guardar_produccion(
            s,
            w(s),
            RES,
            id_partida_anexo=456,
            fecha=dt.date(2025, 2, 10),
            tipo_tiempo="TE",
            volumen=Decimal(90),
        ),
    )
    p1 = await save(maker, 456, 1, "5")
    p2 = await save(maker, 456, 2, "8")
    async with maker() as s:
        flags = {
            p.fecha_produccion: p.es_excedente for p in (await s.scalars(select(Produccion))).all()
        }
    assert flags[dt.date(2025, 3, 1)] is False
    assert flags[dt.date(2025, 3, 2)] is True
    assert flags[dt.date(2025, 4, 1)] is True
    assert flags[dt.date(2025, 2, 10)] is False
    await consumer.drain()
    g2 = await gpu_of(maker, p2)
    assert g2 is not None
    assert g2.estatus == "PENDIENTE"
    assert await gpu_of(maker, p1) is not None
    # billing the excedente day requires authorisation [DECIDE-C4]
    await transition(maker, g2.id, RES, GpuStatus.CARGADO, archivo=LINK)
    await transition(maker, g2.id, REV, GpuStatus.EN_REVISION)
    await transition(maker, g2.id, REV, GpuStatus.VALIDADO)

    async def bill(s: AsyncSession) -> Any:
        return await uc.crear_estimacion(
            s,
            w(s),
            FAC,
            id_ot=10,
            fecha_desde=dt.date(2025, 3, 1),
            fecha_hasta=dt.date(2025, 3, 31),
            fecha_estimacion=dt.date(2025, 4, 1),
            detalles=[uc.DetalleInput(p2)],
        )

    with pytest.raises(DomainError) as exc:
        await tx(maker, bill)
    assert exc.value.code == "EXCEDENTE_NO_AUTORIZADO"
    await tx(maker, lambda s: uc.autorizar_excedente(s, SUP, p2))
    res = await tx(maker, bill)
    assert res.detalles[0].es_excedente is True


@pytest.mark.spec("GP-E09")
async def test_two_time_types_make_two_gpus(maker: Maker) -> None:
    consumer = Consumer(maker)
    te = await save(maker, 456, 5, "4.0", "TE")
    cma = await save(maker, 456, 5, "2.0", "CMA")
    await consumer.drain()
    assert (await gpu_of(maker, te)) is not None
    assert (await gpu_of(maker, cma)) is not None
    async with maker() as s:
        data = await queries.grid(s, id_ot=10, mes=3, anio=2025)
    assert [c["tipo_tiempo"] for c in data[0]["dia_5"]] == ["TE", "CMA"]


@pytest.mark.spec("GP-E10")
async def test_grid_guards_missing_year_and_month_13(maker: Maker) -> None:
    async with maker() as s:
        assert await queries.grid(s, id_ot=10, mes=3, anio=None) == []
        assert await queries.grid(s, id_ot=10, mes=4, anio=2025) == []
        with pytest.raises(DomainError) as exc:
            await queries.grid(s, id_ot=10, mes=13, anio=2025)
    assert (exc.value.code, exc.value.status) == ("MES_INVALIDO", 400)


async def test_closed_month_and_day_block_edits(maker: Maker) -> None:
    await save(maker, 456, 2, "8")
    await tx(
        maker, lambda s: uc.cerrar_dia(s, w(s), id_ot=10, fecha=dt.date(2025, 3, 2), cerrado=True)
    )
    with pytest.raises(DomainError) as exc:
        await save(maker, 456, 2, "9")
    assert exc.value.code == "DIA_CERRADO"
    await save(maker, 456, 3, "1")  # another day is fine
    await tx(maker, lambda s: uc.cerrar_mes(s, w(s), id_ot=10, mes=3, anio=2025, cerrado=True))
    with pytest.raises(DomainError) as exc:
        await save(maker, 456, 4, "1")
    assert exc.value.code == "MES_CERRADO"


async def test_bulk_input_validation_writes_nothing(maker: Maker) -> None:
    async def bad(partidas: list[uc.PartidaValores], mes: int = 3) -> DomainError:
        with pytest.raises(DomainError) as exc:
            await tx(
                maker,
                lambda s: uc.guardar_produccion_masiva(
                    s, w(s), RES, id_ot=10, mes=mes, anio=2025, tipo_tiempo="TE", partidas=partidas
                ),
            )
        return exc.value

    err = await bad([uc.PartidaValores(456, [Decimal(1), Decimal(-1)])])
    assert (err.code, err.field) == ("VOLUMEN_INVALIDO", "partidas[0].valores[1]")
    err = await bad([uc.PartidaValores(456, [Decimal(1)] * 31)], mes=2)
    assert (err.code, err.field) == ("DIA_INVALIDO", "partidas[0].valores")
    err = await bad([uc.PartidaValores(9999, [Decimal(1)])])
    assert (err.code, err.field) == ("PARTIDA_INVALIDA", "partidas")
    err = await bad([uc.PartidaValores(456, [Decimal(1)])], mes=13)
    assert err.code == "MES_INVALIDO"
    async with maker() as s:
        assert await s.scalar(select(func.count()).select_from(Produccion)) == 0
        assert await s.scalar(select(func.count()).select_from(outbox)) == 0


async def test_bulk_transitions_all_or_nothing(maker: Maker) -> None:
    consumer = Consumer(maker)
    ids = []
    for day in (1, 2, 3):
        pid = await save(maker, 456, day, "1")
        ids.append(pid)
    await consumer.drain()
    gpus = [await gpu_of(maker, p) for p in ids]
    gids = [g.id for g in gpus if g is not None]
    for gid in gids:
        await transition(maker, gid, RES, GpuStatus.CARGADO, archivo=LINK)
    for gid in gids[:2]:
        await transition(maker, gid, REV, GpuStatus.EN_REVISION)
    items = [uc.BulkItem(g) for g in gids]
    with pytest.raises(DomainError) as exc:
        await tx(
            maker,
            lambda s: uc.transicionar_gpus(
                s, w(s), REV, items, TransitionRequest(GpuStatus.VALIDADO)
            ),
        )
    assert exc.value.extensions["errores"][0]["id_gpu"] == gids[2]
    assert [(await gpu_of(maker, p)).estatus for p in ids] == [  # type: ignore[union-attr]
        "EN_REVISION",
        "EN_REVISION",
        "CARGADO",
    ]
    await tx(
        maker,
        lambda s: uc.transicionar_gpus(
            s, w(s), REV, items[:2], TransitionRequest(GpuStatus.VALIDADO)
        ),
    )
    assert [(await gpu_of(maker, p)).estatus for p in ids[:2]] == ["VALIDADO", "VALIDADO"]  # type: ignore[union-attr]


async def test_legacy_save_status(maker: Maker) -> None:
    consumer = Consumer(maker)
    pid = await save(maker, 456, 2, "8")
    p458 = await save(maker, 458, 2, "5")
    await consumer.drain()
    await tx(
        maker,
        lambda s: uc.guardar_estatus_legacy(
            s, w(s), RES, id_produccion=pid, estatus_id=20, archivo=LINK
        ),
    )
    g = await gpu_of(maker, pid)
    assert g is not None
    assert (g.estatus, g.archivo) == ("CARGADO", LINK)
    for kwargs, code in (
        ({"id_produccion": pid, "estatus_id": 17, "archivo": None}, "ESTATUS_NO_GPU"),
        ({"id_produccion": 424242, "estatus_id": 21, "archivo": None}, "PRODUCCION_NO_ENCONTRADA"),
        ({"id_produccion": p458, "estatus_id": 20, "archivo": LINK}, "PRODUCCION_NO_ELEGIBLE"),
    ):
        with pytest.raises(DomainError) as exc:
            await tx(maker, lambda s, kw=kwargs: uc.guardar_estatus_legacy(s, w(s), RES, **kw))
        assert exc.value.code == code
    # archivo omitted on CARGADO → PENDIENTE is G3 (clears), never a silent NULL overwrite
    g = await gpu_of(maker, pid)
    assert g is not None
    assert g.archivo == LINK


async def test_import_deactivation_retires_gpus(maker: Maker) -> None:
    consumer = Consumer(maker)
    pid = await save(maker, 456, 2, "8")
    await consumer.drain()
    assert await gpu_of(maker, pid) is not None
    await tx(maker, lambda s: uc.cambiar_importacion_activa(s, w(s), SUP, 1, False))
    await consumer.drain()
    assert await gpu_of(maker, pid) is None


async def test_completeness(maker: Maker) -> None:
    consumer = Consumer(maker)
    await validated_gpu(maker, consumer)
    await save(maker, 457, 3, "4")
    await save(maker, 458, 3, "4")  # not GPU annex: not counted
    await consumer.drain()
    async with maker() as s:
        rep = await queries.completitud(s, id_ot=10, mes=3, anio=2025)
    assert rep["total"] == 2
    assert rep["por_estatus"]["VALIDADO"]["porcentaje"] == Decimal("50.00")
    assert [f["codigo"] for f in rep["faltantes"]] == ["C-3.4.2"]
    assert set(rep["por_anexo"]) == {"C-2", "C-3"}


@pytest.mark.spec("GP-D19")
async def test_produccion_str_names_partida_date_and_time_type(maker: Maker) -> None:
    pid = await save(maker, 456, 2, "8")
    async with maker() as s:
        prod = await s.get(Produccion, pid)
    assert str(prod) == f"Produccion {pid} partida 456 2025-03-02 TE"


async def test_history_is_append_only_and_outlives_gpu(maker: Maker) -> None:
    consumer = Consumer(maker)
    pid = await save(maker, 456, 2, "8")
    await consumer.drain()
    gpu = await gpu_of(maker, pid)
    assert gpu is not None
    await transition(maker, gpu.id, RES, GpuStatus.CARGADO, archivo=LINK)
    await save(maker, 456, 2, "0")
    await consumer.drain()
    assert await gpu_of(maker, pid) is None
    async with maker() as s:
        hist = await queries.historial(s, gpu.id)
    assert [(h.accion, h.de_estatus, h.a_estatus, h.archivo) for h in hist] == [
        ("CREADO", None, "PENDIENTE", None),
        ("TRANSICION", "PENDIENTE", "CARGADO", LINK),
        ("ELIMINADO", "CARGADO", None, LINK),
    ]
    deleted = [e for _, e in await outbox_events(maker, GpuStatusChanged) if e.change == "deleted"]
    assert [(e.from_status, e.reason_code) for e in deleted] == [("CARGADO", "VOLUMEN_CERO")]


@pytest.mark.spec("GP-D09", "GP-D10", "GP-D21")
async def test_schema_rules(maker: Maker) -> None:
    """Uniqueness with "no site" (sentinel, GP-D09), RESTRICT instead of CASCADE (GP-D10),
    NOT NULL report OT and CHECK mes (GP-D21, GP-D17), billed GPU must be VALIDADO."""
    from sqlalchemy import delete, insert
    from sqlalchemy.exc import IntegrityError

    from evidence.models import ReporteMensual

    pid = await save(maker, 456, 2, "8")
    await Consumer(maker).drain()
    async with maker() as s:
        prod = await s.get(Produccion, pid)
        assert prod is not None
        row = {
            "id_partida_anexo": 456,
            "id_reporte_mensual": prod.id_reporte_mensual,
            "fecha_produccion": dt.date(2025, 3, 2),
            "tipo_tiempo": "TE",
            "volumen_produccion": Decimal(1),
            "fecha_creacion": dt.datetime.now(dt.UTC),
            "fecha_actualizacion": dt.datetime.now(dt.UTC),
        }
        report_id = prod.id_reporte_mensual
    bad_statements: list[Any] = [
        insert(Produccion).values(**row),  # duplicate (no site == sentinel 0)
        insert(Produccion).values(
            **{**row, "fecha_produccion": dt.date(2025, 3, 9), "tipo_tiempo": "XX"}
        ),
        insert(Produccion).values(
            **{**row, "fecha_produccion": dt.date(2025, 3, 9), "volumen_produccion": Decimal(-1)}
        ),
        delete(ReporteMensual).where(ReporteMensual.id == report_id),  # RESTRICT
        delete(Produccion).where(Produccion.id == pid),  # GPU references it: RESTRICT
        insert(ReporteMensual).values(
            id_ot=10,
            mes=13,
            anio=2025,
            fecha_creacion=dt.datetime.now(dt.UTC),
            fecha_actualizacion=dt.datetime.now(dt.UTC),
        ),
        insert(ReporteMensual).values(
            id_ot=None,
            mes=4,
            anio=2025,
            fecha_creacion=dt.datetime.now(dt.UTC),
            fecha_actualizacion=dt.datetime.now(dt.UTC),
        ),
        update(RegistroGpu).where(RegistroGpu.id_produccion == pid).values(estatus="NO_EXISTE"),
    ]

    async def attempt(stmt: Any) -> None:
        async with maker() as s:
            await s.execute(stmt)
            await s.commit()

    for stmt in bad_statements:
        with pytest.raises(IntegrityError):
            await attempt(stmt)
