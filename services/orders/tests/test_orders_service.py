"""Use cases and the proposal consumer on SQLite (no HTTP): transactions, outbox, idempotence."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.events.orders import RequestValidated
from nexo_messaging.consumer import EventMeta
from nexo_messaging.errors import PermanentError
from orders import consumers, queries
from orders import domain as d
from orders.application import catalogue, clock, common, dispatch, expiry, proposals, requests
from orders.models import (
    HistorialEstado,
    LoteAsignado,
    LoteUbicacion,
    MovimientoInventario,
    Propuesta,
    PropuestaItem,
    Solicitud,
    SolicitudItem,
    outbox,
)

from .conftest import World

SOL = common.Actor("ana", frozenset({d.ROLE_SOLICITANTE}))
VAL = common.Actor("vale", frozenset({d.ROLE_VALIDADOR}))
ALM = common.Actor("alma", frozenset({d.ROLE_ALMACENISTA}))
SUP = common.Actor("super", frozenset({d.ROLE_SUPERVISOR}))
CFG = common.OrdersConfig()
J = {"justificacion_codigo": "SIN_EXISTENCIA", "justificacion": "ajuste"}


async def crear(
    w: World, items: dict[int, int], folio_pedido: str | None = None, actor: common.Actor = SOL
) -> uuid.UUID:
    async with w.sessionmaker() as s, s.begin():
        c = await requests.crear_solicitud(
            s,
            requests.NuevaSolicitud(
                institucion_id=w.institucion,
                almacen_destino_id=w.central,
                fecha_entrega_programada=date(2026, 5, 5),
                items=[d.ItemCaptura(p, q) for p, q in items.items()],
                folio_pedido=folio_pedido,
            ),
            actor,
            CFG,
        )
        return c.solicitud.id


async def item_ids(w: World, sol_id: uuid.UUID) -> dict[int, uuid.UUID]:
    async with w.sessionmaker() as s:
        return {i.producto_id: i.id for i in await common.items_de(s, sol_id)}


async def validar(
    w: World, sol_id: uuid.UUID, aprob: dict[int, d.Aprobacion] | None = None
) -> None:
    ids = await item_ids(w, sol_id)
    async with w.sessionmaker() as s, s.begin():
        await requests.validar_solicitud(
            s, sol_id, {ids[p]: a for p, a in (aprob or {}).items()}, VAL
        )


async def events(w: World, type_suffix: str) -> list[tuple[str, dict[str, Any]]]:
    async with w.sessionmaker() as s:
        rows = (
            await s.execute(
                select(outbox.c.id, outbox.c.type, outbox.c.payload).order_by(outbox.c.seq)
            )
        ).all()
    return [(r[0], r[2]) for r in rows if r[1].endswith(type_suffix)]


def meta(event_id: str) -> EventMeta:
    return EventMeta(
        event_id=event_id,
        type=RequestValidated.ce_type(),
        source="/services/orders",
        subject=None,
        time=datetime.now(UTC),
        correlationid=None,
        causationid=None,
        traceparent=None,
        topic="orders.requests",
        partition=0,
        offset=0,
    )


async def consume_all(w: World) -> None:
    """Deliver every RequestValidated in the outbox to the handler (as the runner would)."""
    for event_id, payload in await events(w, "RequestValidated.v1"):
        async with w.sessionmaker() as s, s.begin():
            await consumers.handle_request_validated(
                s, RequestValidated.model_validate(payload), meta(event_id), store=w.store
            )


async def propuesta_de(w: World, sol_id: uuid.UUID) -> Propuesta:
    async with w.sessionmaker() as s:
        p = await common.propuesta_activa(s, sol_id)
        assert p is not None
        return p


async def lineas(w: World, prop_id: uuid.UUID) -> list[tuple[int, int, str]]:
    async with w.sessionmaker() as s:
        rows = (
            await s.execute(
                select(
                    LoteAsignado.lote_ubicacion_id,
                    LoteAsignado.cantidad_asignada,
                    LoteAsignado.estado_linea,
                )
                .join(PropuestaItem, PropuestaItem.id == LoteAsignado.propuesta_item_id)
                .where(PropuestaItem.propuesta_id == prop_id)
                .order_by(LoteAsignado.fecha_asignacion, LoteAsignado.lote_ubicacion_id)
            )
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


async def stock(w: World, lu_id: int) -> tuple[int, int]:
    async with w.sessionmaker() as s:
        lu = await s.get(LoteUbicacion, lu_id)
        assert lu is not None
        return lu.cantidad, lu.cantidad_reservada


async def f01(w: World) -> tuple[uuid.UUID, dict[str, int]]:
    _, a = await w.lote("A100", date(2026, 9, 30), {"A-01": 60})
    _, b = await w.lote("B200", date(2026, 7, 15), {"B-01": 50})
    _, c = await w.lote("C300", date(2026, 6, 15), {"C-01": 500})
    sol = await crear(w, {w.p: 100}, folio_pedido="PED-QA-0001")
    await validar(w, sol)
    await consume_all(w)
    return sol, {**a, **b, **c}


# ----------------------------------------------------------------------------- creation


async def test_create_request_folio_items_and_audit(world: World) -> None:
    sol_id = await crear(world, {world.p: 10, world.q: 5})
    async with world.sessionmaker() as s:
        sol = await s.get(Solicitud, sol_id)
        assert sol is not None
        assert d.FOLIO_RE.match(sol.folio)
        assert sol.folio.startswith("SOL-20260501-")
        assert sol.estado == "PENDIENTE"
        n = await s.scalar(select(func.count()).select_from(SolicitudItem))
        assert n == 2
        audit = await s.scalar(select(func.count()).select_from(HistorialEstado))
        assert audit == 1


async def test_folio_collision_is_retried(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = iter(["AAAAAA", "AAAAAA", "BBBBBB"])
    monkeypatch.setattr(clock, "folio_token", lambda: next(tokens))
    a = await crear(world, {world.p: 1})
    b = await crear(world, {world.p: 1})
    async with world.sessionmaker() as s:
        fa = (await s.get(Solicitud, a)).folio  # type: ignore[union-attr]
        fb = (await s.get(Solicitud, b)).folio  # type: ignore[union-attr]
    assert fa.endswith("AAAAAA")
    assert fb.endswith("BBBBBB")


@pytest.mark.spec("HO-L08")
async def test_duplicate_external_folio(world: World) -> None:
    first = await crear(world, {world.p: 1}, folio_pedido="PED-77")
    await validar(world, first)
    with pytest.raises(d.DomainError) as e:
        await crear(world, {world.p: 1}, folio_pedido="ped-77")
    assert e.value.code == "FOLIO_DUPLICADO"
    admin_local = common.Actor("loc", frozenset({d.ROLE_SOLICITANTE, d.ADMINISTRADOR_LOCAL}))
    dup = await crear(world, {world.p: 1}, folio_pedido="PED-77", actor=admin_local)
    async with world.sessionmaker() as s, s.begin():
        await requests.cancelar_solicitud(s, dup, admin_local)  # own PENDIENTE
        await requests.cancelar_solicitud(s, first, SUP)
    # only CANCELADA duplicates remain → created, with a warning
    async with world.sessionmaker() as s, s.begin():
        c = await requests.crear_solicitud(
            s,
            requests.NuevaSolicitud(
                world.institucion,
                world.central,
                date(2026, 5, 2),
                [d.ItemCaptura(world.p, 1)],
                folio_pedido="Ped-77",
            ),
            SOL,
            CFG,
        )
    assert len(c.advertencias) == 1
    assert "CANCELADA" in c.advertencias[0]


async def test_bad_creation_inputs(world: World) -> None:
    with pytest.raises(d.DomainError) as e:
        await crear(world, {world.p: 0})
    assert e.value.code == "CANTIDAD_INVALIDA"
    with pytest.raises(d.DomainError) as e:
        await crear(world, {999: 1})
    assert e.value.code == "PRODUCTO_DESCONOCIDO"
    with pytest.raises(d.Forbidden):
        await crear(world, {world.p: 1}, actor=VAL)
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.DomainError) as e:
            await requests.crear_solicitud(
                s,
                requests.NuevaSolicitud(
                    world.institucion, world.central, date(2026, 6, 1), [d.ItemCaptura(world.p, 1)]
                ),
                SOL,
                CFG,
            )
        assert e.value.code == "FECHA_ENTREGA_FUERA_DE_RANGO"


# ----------------------------------------------------------------------------- validation


@pytest.mark.spec("HO-L01")
async def test_validation_outcomes(world: World) -> None:
    sol = await crear(world, {world.p: 10, world.q: 5})
    await validar(world, sol, {world.p: d.Aprobacion(0, **J), world.q: d.Aprobacion(0, **J)})
    async with world.sessionmaker() as s:
        assert (await s.get(Solicitud, sol)).estado == "RECHAZADA"  # type: ignore[union-attr]
    assert await events(world, "RequestValidated.v1") == []

    sol2 = await crear(world, {world.p: 10, world.q: 5})
    with pytest.raises(d.DomainError) as e:
        await validar(world, sol2, {world.p: d.Aprobacion(12, **J), world.q: d.Aprobacion(5)})
    assert e.value.code == "APROBADA_EXCEDE_SOLICITADA"
    async with world.sessionmaker() as s:
        assert (await s.get(Solicitud, sol2)).estado == "PENDIENTE"  # type: ignore[union-attr]

    await world.lote("X1", date(2026, 12, 31), {"X-01": 100})
    await validar(world, sol2, {world.p: d.Aprobacion(10), world.q: d.Aprobacion(0, **J)})
    evs = await events(world, "RequestValidated.v1")
    assert len(evs) == 1
    await consume_all(world)
    prop = await propuesta_de(world, sol2)
    async with world.sessionmaker() as s:
        items = list(
            (
                await s.execute(select(PropuestaItem).where(PropuestaItem.propuesta_id == prop.id))
            ).scalars()
        )
    assert [(i.producto_id, i.cantidad_propuesta) for i in items] == [(world.p, 10)]


# ----------------------------------------------------------------------------- generation


@pytest.mark.spec("HO-F01")
async def test_generation_reserves_and_publishes(world: World) -> None:
    sol, lus = await f01(world)
    prop = await propuesta_de(world, sol)
    assert prop.estado == "GENERADA"
    assert (prop.total_solicitado, prop.total_disponible, prop.total_propuesto) == (100, 110, 100)
    assert await lineas(world, prop.id) in (
        [(lus["B-01"], 50, "RESERVADA"), (lus["A-01"], 50, "RESERVADA")],
        [(lus["A-01"], 50, "RESERVADA"), (lus["B-01"], 50, "RESERVADA")],
    )
    assert await stock(world, lus["B-01"]) == (50, 50)
    assert await stock(world, lus["A-01"]) == (60, 50)
    assert await stock(world, lus["C-01"]) == (500, 0)
    gen = await events(world, "ProposalGenerated.v1")
    assert len(gen) == 1
    payload = gen[0][1]
    assert payload["items"][0]["estado"] == "COMPLETO"
    assert [lt["numero_lote"] for lt in payload["items"][0]["lotes"]] == ["B200", "A100"]
    # reservations are not kardex movements (HO-D14): only the ENTRADA rows exist
    async with world.sessionmaker() as s:
        tipos = set((await s.execute(select(MovimientoInventario.tipo_movimiento))).scalars())
    assert tipos == {"ENTRADA"}


async def test_redelivery_is_idempotent(world: World) -> None:
    _sol, lus = await f01(world)
    await consume_all(world)  # same events again (inbox bypassed on purpose)
    # a brand-new event id for the same validation too
    ((_, payload),) = await events(world, "RequestValidated.v1")
    async with world.sessionmaker() as s, s.begin():
        await consumers.handle_request_validated(
            s, RequestValidated.model_validate(payload), meta(str(uuid.uuid4())), store=world.store
        )
    async with world.sessionmaker() as s:
        n = await s.scalar(select(func.count()).select_from(Propuesta))
    assert n == 1
    assert await stock(world, lus["B-01"]) == (50, 50)
    assert len(await events(world, "ProposalGenerated.v1")) == 1


async def test_unknown_request_goes_to_dlq(world: World) -> None:
    ev = RequestValidated(
        id_solicitud=uuid.uuid4(),
        folio="SOL-20260501-000000",
        id_institucion=1,
        id_almacen_destino=1,
        items=[
            {
                "id_item": uuid.uuid4(),
                "id_producto": 1,
                "clave_cnis": "x",  # type: ignore[list-item]
                "cantidad_solicitada": 1,
                "cantidad_aprobada": 1,
            }
        ],
        validated_by="v",
        validated_at=datetime.now(UTC),
    )
    async with world.sessionmaker() as s:
        with pytest.raises(PermanentError):
            await consumers.handle_request_validated(s, ev, meta("x"), store=world.store)


@pytest.mark.spec("HO-F03", "HO-L05")
async def test_partial_proposal_then_release(world: World) -> None:
    _, b = await world.lote("B200", date(2026, 7, 15), {"B-01": 50})
    _, a = await world.lote("A100", date(2026, 9, 30), {"A-01": 60})
    other = await crear(world, {world.p: 30})
    await validar(world, other)
    await consume_all(world)
    sol = await crear(world, {world.p: 100})
    await validar(world, sol)
    await consume_all(world)
    prop = await propuesta_de(world, sol)
    async with world.sessionmaker() as s:
        (ip,) = (
            await s.execute(select(PropuestaItem).where(PropuestaItem.propuesta_id == prop.id))
        ).scalars()
    assert (ip.cantidad_propuesta, ip.cantidad_pendiente, ip.estado) == (80, 20, "PARCIAL")
    assert ip.observaciones == "Solo se encontraron 80 de 100 unidades."
    assert ip.cantidad_disponible == 80
    assert await stock(world, b["B-01"]) == (50, 50)
    # HO-L05: release
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.Forbidden):
            await proposals.liberar_propuesta(s, prop.id, ALM)
    async with world.sessionmaker() as s, s.begin():
        await proposals.liberar_propuesta(s, prop.id, SUP, "replanear")
    assert {e for _, _, e in await lineas(world, prop.id)} == {"LIBERADA"}
    assert await stock(world, b["B-01"]) == (50, 30)  # the other proposal's 30 untouched
    assert await stock(world, a["A-01"]) == (60, 0)
    async with world.sessionmaker() as s:
        assert (await s.get(Solicitud, sol)).estado == "PENDIENTE"  # type: ignore[union-attr]
        assert (await s.get(Propuesta, prop.id)).estado == "CANCELADA"  # type: ignore[union-attr]
        kardex = await s.scalar(
            select(func.count())
            .select_from(MovimientoInventario)
            .where(MovimientoInventario.tipo_movimiento != "ENTRADA")
        )
    assert kardex == 0
    # re-validation creates a new active proposal; the old one stays archived
    await validar(world, sol)
    await consume_all(world)
    new = await propuesta_de(world, sol)
    assert new.id != prop.id
    async with world.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Propuesta)) == 3


@pytest.mark.spec("HO-F07")
async def test_sequential_validations_never_oversubscribe(world: World) -> None:
    _, n = await world.lote("N1", date(2026, 12, 31), {"N-01": 50})
    r1 = await crear(world, {world.p: 50})
    r2 = await crear(world, {world.p: 50})
    await validar(world, r1)
    await validar(world, r2)
    await consume_all(world)
    p1, p2 = await propuesta_de(world, r1), await propuesta_de(world, r2)
    assert sorted([p1.estado, p2.estado]) == ["GENERADA", "NO_DISPONIBLE"]
    assert await stock(world, n["N-01"]) == (50, 50)


# ----------------------------------------------------------------------------- dispatch


async def _revisar(w: World, prop_id: uuid.UUID) -> None:
    async with w.sessionmaker() as s, s.begin():
        await proposals.revisar_propuesta(s, prop_id, ALM)


@pytest.mark.spec("HO-L02", "HO-L03")
async def test_dispatch_issues_stock_once(world: World) -> None:
    sol, lus = await f01(world)
    prop = await propuesta_de(world, sol)
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.Conflict) as e:
            await dispatch.surtir_propuesta(s, prop.id, SUP, CFG)
        assert e.value.code == "PROPUESTA_NO_REVISADA"
    await _revisar(world, prop.id)
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.Forbidden) as e2:  # unpicked lines need a Supervisor (DECIDE-B6)
            await dispatch.surtir_propuesta(s, prop.id, ALM, CFG)
        assert e2.value.code == "CONFIRMACION_SUPERVISOR_REQUERIDA"
    async with world.sessionmaker() as s, s.begin():
        await dispatch.surtir_propuesta(s, prop.id, SUP, CFG)
    assert await stock(world, lus["B-01"]) == (0, 0)
    assert await stock(world, lus["A-01"]) == (10, 0)
    async with world.sessionmaker() as s:
        movs = list(
            (
                await s.execute(
                    select(MovimientoInventario).where(
                        MovimientoInventario.tipo_movimiento == "SALIDA"
                    )
                )
            ).scalars()
        )
        sol_row = await s.get(Solicitud, sol)
        prop_row = await s.get(Propuesta, prop.id)
    assert sol_row is not None
    assert prop_row is not None
    assert sorted((m.cantidad, m.cantidad_anterior, m.cantidad_nueva) for m in movs) == [
        (50, 50, 0),
        (50, 60, 10),
    ]
    assert {m.motivo for m in movs} == {
        "Suministro de Pedido — Pedido: PED-QA-0001. Destino: QA001 — Institucion QA."
    }
    assert {m.documento_referencia for m in movs} == {sol_row.folio}
    assert {(m.pedido, m.folio) for m in movs} == {("PED-QA-0001", "PED-QA-0001")}
    assert sol_row.estado == "ENTREGADA"
    assert prop_row.estado == "SURTIDA"
    # HO-L03: a second dispatch is rejected and moves nothing
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.Conflict) as e:
            await dispatch.surtir_propuesta(s, prop.id, SUP, CFG)
        assert e.value.code == "YA_SURTIDA"
    assert await stock(world, lus["A-01"]) == (10, 0)
    assert len(await events(world, "ProposalDispatched.v1")) == 1


@pytest.mark.spec("HO-L04")
async def test_lot_expired_before_dispatch(world: World) -> None:
    sol, lus = await f01(world)
    prop = await propuesta_de(world, sol)
    await _revisar(world, prop.id)
    async with world.sessionmaker() as s, s.begin():
        lote = (
            await s.execute(select(LoteUbicacion).where(LoteUbicacion.id == lus["B-01"]))
        ).scalar_one()
        await catalogue.cambiar_estado_lote(s, lote.lote_id, d.LOTE_CADUCADO, SUP, "caducado")
    async with world.sessionmaker() as s, s.begin():  # the caller commits the re-planning
        res = await dispatch.surtir_propuesta(s, prop.id, SUP, CFG)
    assert res.rechazo is not None
    assert res.rechazo.code == "LOTE_NO_ELEGIBLE"
    assert res.rechazo.extensions["lotes"] == ["B200"]
    async with world.sessionmaker() as s:
        p = await s.get(Propuesta, prop.id)
        assert p is not None
        assert p.estado == "GENERADA"
        assert p.requiere_replanificacion
        assert (await s.get(Solicitud, sol)).estado == "VALIDADA"  # type: ignore[union-attr]
    assert await stock(world, lus["B-01"]) == (50, 50)  # nothing moved


async def test_expiry_job_flags_reservations(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    sol, _lus = await f01(world)
    prop = await propuesta_de(world, sol)
    await _revisar(world, prop.id)
    monkeypatch.setattr(clock, "now_fn", lambda: datetime(2026, 7, 20, 18, tzinfo=UTC))
    async with world.sessionmaker() as s, s.begin():
        res = await expiry.job_caducidad(s)
    assert res.lotes_caducados == ["C300", "B200"] or set(res.lotes_caducados) == {"C300", "B200"}
    assert res.lineas_marcadas == 1
    async with world.sessionmaker() as s:
        p = await s.get(Propuesta, prop.id)
        assert p is not None
        assert p.estado == "GENERADA"
    # the flagged line must be re-planned before review
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.DomainError) as e:
            await proposals.revisar_propuesta(s, prop.id, ALM)
        assert e.value.code == "LOTE_NO_ELEGIBLE"


@pytest.mark.spec("HO-L06")
async def test_picking_keeps_reservation(world: World) -> None:
    _, n = await world.lote("N1", date(2026, 12, 31), {"N-01": 50})
    r1 = await crear(world, {world.p: 50})
    await validar(world, r1)
    await consume_all(world)
    prop = await propuesta_de(world, r1)
    await _revisar(world, prop.id)
    async with world.sessionmaker() as s:
        (linea,) = (await s.execute(select(LoteAsignado))).scalars()
    async with world.sessionmaker() as s, s.begin():
        await proposals.recoger_linea(s, prop.id, linea.id, ALM)
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.Conflict):
            await proposals.recoger_linea(s, prop.id, linea.id, ALM)
    r2 = await crear(world, {world.p: 10})
    await validar(world, r2)
    await consume_all(world)
    p2 = await propuesta_de(world, r2)
    assert p2.estado == "NO_DISPONIBLE"
    async with world.sessionmaker() as s:
        assert (await s.get(Solicitud, r1)).estado == "PREPARADA"  # type: ignore[union-attr]
    # all lines picked: an Almacenista may dispatch without a Supervisor
    async with world.sessionmaker() as s, s.begin():
        await dispatch.surtir_propuesta(s, prop.id, ALM, CFG)
    assert await stock(world, n["N-01"]) == (0, 0)


# ----------------------------------------------------------------------------- manual edit


@pytest.mark.spec("HO-L09")
async def test_edit_guards_and_supervisor_override(world: World) -> None:
    sol, lus = await f01(world)
    prop = await propuesta_de(world, sol)
    _, qlu = await world.lote("QX", date(2026, 12, 1), {"Q-01": 10}, producto=world.q)
    _, short = await world.lote("S30", date(2026, 5, 31), {"S-01": 10})
    _, edge = await world.lote("S60", date(2026, 6, 30), {"S-02": 10})
    async with world.sessionmaker() as s:
        (ip,) = (
            await s.execute(select(PropuestaItem).where(PropuestaItem.propuesta_id == prop.id))
        ).scalars()

    async def edit(
        lines: list[tuple[int, int]], actor: common.Actor = ALM, motivo: str | None = None
    ) -> None:
        async with world.sessionmaker() as s, s.begin():
            await proposals.editar_item_propuesta(
                s,
                prop.id,
                ip.id,
                [proposals.LineaDeseada(a, b) for a, b in lines],
                actor,
                CFG,
                motivo_override=motivo,
            )

    for bad, code in (
        ([(qlu["Q-01"], 5)], "PRODUCTO_NO_COINCIDE"),
        ([(short["S-01"], 5)], "CADUCIDAD_MINIMA"),
        ([(edge["S-02"], 5)], "CADUCIDAD_MINIMA"),
        ([(lus["B-01"], 50), (lus["A-01"], 51)], "EXCEDE_APROBADO"),
        ([(987654, 1)], "LOTE_DESCONOCIDO"),
        ([(lus["C-01"], 5)], "CADUCIDAD_MINIMA"),
    ):
        with pytest.raises(d.DomainError) as e:
            await edit(bad)
        assert e.value.code == code
    # supervisor override with a reason: allowed and recorded
    await edit([(lus["B-01"], 50), (lus["A-01"], 40), (edge["S-02"], 10)], SUP, "urgencia")
    assert await stock(world, lus["A-01"]) == (60, 40)
    assert await stock(world, edge["S-02"]) == (10, 10)
    async with world.sessionmaker() as s:
        ln = (
            await s.execute(
                select(LoteAsignado).where(LoteAsignado.lote_ubicacion_id == edge["S-02"])
            )
        ).scalar_one()
        assert ln.override_caducidad
        assert ln.motivo_override == "urgencia"
    # reduce: reservation released, shortfall recorded
    await edit([(lus["B-01"], 50)])
    assert await stock(world, lus["A-01"]) == (60, 0)
    assert await stock(world, edge["S-02"]) == (10, 0)
    async with world.sessionmaker() as s:
        ip2 = await s.get(PropuestaItem, ip.id)
        assert ip2 is not None
        assert (ip2.cantidad_propuesta, ip2.cantidad_pendiente, ip2.estado) == (50, 50, "PARCIAL")
    # no edits after dispatch (HO-D28)
    await _revisar(world, prop.id)
    async with world.sessionmaker() as s, s.begin():
        await dispatch.surtir_propuesta(s, prop.id, SUP, CFG)
    with pytest.raises(d.Conflict) as e:
        await edit([(lus["B-01"], 10)])
    assert e.value.code == "YA_SURTIDA"
    async with world.sessionmaker() as s:
        p = await s.get(Propuesta, prop.id)
        assert p is not None
        assert p.estado == "PARCIAL"  # 50 of 100 dispatched
        ip3 = await s.get(PropuestaItem, ip.id)
        assert ip3 is not None
        assert (ip3.cantidad_surtida, ip3.cantidad_pendiente) == (50, 50)
        assert (await s.get(Solicitud, sol)).estado == "ENTREGADA"  # type: ignore[union-attr]


async def test_cancel_request_releases_reservations(world: World) -> None:
    sol, lus = await f01(world)
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.Forbidden):
            await requests.cancelar_solicitud(s, sol, SOL)  # VALIDADA: supervisor only
    async with world.sessionmaker() as s, s.begin():
        await requests.cancelar_solicitud(s, sol, SUP, "ya no se requiere")
    assert await stock(world, lus["B-01"]) == (50, 0)
    assert await stock(world, lus["A-01"]) == (60, 0)


async def test_reports(world: World) -> None:
    sol, _ = await f01(world)
    await crear(world, {world.q: 3})
    async with world.sessionmaker() as s:
        pend = await queries.reporte_pendientes(s)
        cad = await queries.reporte_lotes_por_caducar(s, 90)
    assert {p["estado"] for p in pend} == {"PENDIENTE", "VALIDADA"}
    assert [c["numero_lote"] for c in cad] == ["C300", "B200"]
    assert cad[1]["cantidad_reservada"] == 50
    prop = await propuesta_de(world, sol)
    await _revisar(world, prop.id)
    async with world.sessionmaker() as s, s.begin():
        await dispatch.surtir_propuesta(s, prop.id, SUP, CFG)
    async with world.sessionmaker() as s:
        fr = await queries.reporte_fill_rate(s)
    assert fr["fill_rate"] == "100.00"
    assert fr["cantidad_surtida"] == 100


# ----------------------------------------------------------------------------- DB-level rules


async def test_db_constraints_enforce_rules(world: World) -> None:
    """HO-D13 (aprobada ≤ solicitada), HO-D25 (solicitada ≥ 1), HO-D23 (active external folio
    unique even if two writers race past the application check), reservations ≤ stock."""
    from sqlalchemy import insert, update
    from sqlalchemy.exc import IntegrityError

    sol = await crear(world, {world.p: 10}, folio_pedido="PED-RACE")
    _, lus = await world.lote("Z1", date(2027, 1, 1), {"Z-01": 5})
    async with world.sessionmaker() as s:
        with pytest.raises(IntegrityError):
            await s.execute(
                update(SolicitudItem)
                .where(SolicitudItem.solicitud_id == sol)
                .values(cantidad_aprobada=11)
            )
        await s.rollback()
        with pytest.raises(IntegrityError):
            await s.execute(
                update(SolicitudItem)
                .where(SolicitudItem.solicitud_id == sol)
                .values(cantidad_solicitada=0, cantidad_aprobada=None)
            )
        await s.rollback()
        with pytest.raises(IntegrityError):
            await s.execute(
                update(LoteUbicacion)
                .where(LoteUbicacion.id == lus["Z-01"])
                .values(cantidad_reservada=6)
            )
        await s.rollback()
        with pytest.raises(IntegrityError):
            await s.execute(
                insert(Solicitud).values(
                    id=uuid.uuid4(),
                    folio="SOL-20260501-ABCDEF",
                    folio_pedido="ped-race",
                    folio_pedido_clave="PED-RACE",
                    duplicado_autorizado=False,
                    institucion_id=world.institucion,
                    almacen_destino_id=world.central,
                    usuario_solicitante="x",
                    fecha_solicitud=datetime.now(UTC),
                    fecha_entrega_programada=date(2026, 5, 2),
                    estado="PENDIENTE",
                    observaciones="",
                    observaciones_validacion="",
                    version=1,
                )
            )
        await s.rollback()


@pytest.mark.spec("HO-D06")
async def test_validated_request_is_not_edited_in_place(world: World) -> None:
    sol, _ = await f01(world)
    async with world.sessionmaker() as s, s.begin():
        with pytest.raises(d.Conflict) as e:
            await requests.editar_solicitud(
                s,
                sol,
                requests.NuevaSolicitud(
                    world.institucion, world.central, date(2026, 5, 2), [d.ItemCaptura(world.p, 5)]
                ),
                SOL,
                CFG,
            )
        assert e.value.code == "ESTADO_INVALIDO"
