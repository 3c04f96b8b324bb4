"""Concurrency acceptance on real PostgreSQL (+ Kafka): issue #6.

20 requests for the same product validated at once against lots that can satisfy only some:
total reserved never exceeds available, every unit is accounted for, shortfalls are correct;
a dispatch sent twice moves stock once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from orders import domain as d
from orders.adapters import postgres
from orders.adapters.postgres import PostgresStockStore
from orders.application import common, generation, requests
from orders.main import MIGRATIONS_DIR, create_app
from orders.models import LoteAsignado, LoteUbicacion, MovimientoInventario, PropuestaItem
from orders.settings import OrdersSettings
from service_defaults.auth import issue_token
from service_defaults.db import create_engine, session_factory
from service_defaults.migrations import upgrade

from .conftest import World, build_world

pytestmark = pytest.mark.integration

N_REQUESTS = 20
PER_REQUEST = 25
STOCK = {"L1": ("2026-08-01", 90), "L2": ("2026-09-01", 120), "L3": ("2026-10-01", 80)}
TOTAL_STOCK = sum(q for _, q in STOCK.values())  # 290 < 20 x 25 = 500


@pytest.fixture
async def pg_engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    await upgrade(pg_database, MIGRATIONS_DIR, "alembic_version_orders")
    eng = create_engine(pg_database)
    yield eng
    await eng.dispose()


async def _check_accounting(engine: AsyncEngine) -> tuple[int, int]:
    """Invariants; returns (Σ reserved, Σ pendiente)."""
    maker = session_factory(engine)
    async with maker() as s:
        lus = list((await s.execute(select(LoteUbicacion))).scalars())
        for lu in lus:
            assert 0 <= lu.cantidad_reservada <= lu.cantidad
            active = await s.scalar(
                select(func.coalesce(func.sum(LoteAsignado.cantidad_asignada), 0)).where(
                    LoteAsignado.lote_ubicacion_id == lu.id,
                    LoteAsignado.estado_linea.in_(["RESERVADA", "RECOGIDA"]),
                )
            )
            assert active == lu.cantidad_reservada  # the counter never drifts (HO-D03)
        items = list((await s.execute(select(PropuestaItem))).scalars())
    assert len(items) == N_REQUESTS
    propuesto = sum(i.cantidad_propuesta for i in items)
    pendiente = sum(i.cantidad_pendiente for i in items)
    reserved = sum(lu.cantidad_reservada for lu in lus)
    assert propuesto == reserved == min(TOTAL_STOCK, N_REQUESTS * PER_REQUEST)
    assert propuesto + pendiente == N_REQUESTS * PER_REQUEST
    for i in items:
        assert i.cantidad_propuesta + i.cantidad_pendiente == PER_REQUEST
        expected = d.estado_item_por_asignado(i.cantidad_propuesta, PER_REQUEST).value
        assert i.estado == expected
    return reserved, pendiente


async def test_concurrent_generation_on_postgres(pg_engine: AsyncEngine) -> None:
    """20 proposal generations racing on one product, in 20 concurrent transactions."""
    w: World = await build_world(session_factory(pg_engine))
    for numero, (cad, qty) in STOCK.items():
        await w.lote(numero, date.fromisoformat(cad), {f"{numero}-01": qty})
    sol = common.Actor("ana", frozenset({d.ROLE_SOLICITANTE}))
    val = common.Actor("vale", frozenset({d.ROLE_VALIDADOR}))
    ids: list[uuid.UUID] = []
    for _ in range(N_REQUESTS):
        async with w.sessionmaker() as s, s.begin():
            c = await requests.crear_solicitud(
                s,
                requests.NuevaSolicitud(
                    w.institucion, w.central, date(2026, 5, 3), [d.ItemCaptura(w.p, PER_REQUEST)]
                ),
                sol,
                common.OrdersConfig(),
            )
            await requests.validar_solicitud(s, c.solicitud.id, {}, val)
            ids.append(c.solicitud.id)

    async def generate(sol_id: uuid.UUID) -> None:
        async with w.sessionmaker() as s, s.begin():
            await generation.generar_propuesta(
                s, sol_id, store=PostgresStockStore(), config=common.OrdersConfig()
            )

    await asyncio.gather(*(generate(i) for i in ids))
    # redelivery: every event handled again changes nothing
    await asyncio.gather(*(generate(i) for i in ids))
    reserved, pendiente = await _check_accounting(pg_engine)
    assert (reserved, pendiente) == (TOTAL_STOCK, N_REQUESTS * PER_REQUEST - TOTAL_STOCK)


async def test_concurrent_generation_prefix_read_on_postgres(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same race with the smallest first read (one row per product, then the exact-bound
    second read): locks, re-reads and conditional reservations never oversubscribe."""
    monkeypatch.setattr(postgres, "FEFO_FILAS_PRIMERA_LECTURA", 1)
    await test_concurrent_generation_on_postgres(pg_engine)


@pytest.fixture
async def kafka_app(pg_database: str, kafka_bootstrap: str) -> AsyncIterator[tuple[Any, Any]]:
    settings = OrdersSettings(
        env="test",
        database_url=pg_database,
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            yield client, settings


async def test_concurrent_validations_through_kafka(
    kafka_app: tuple[httpx.AsyncClient, OrdersSettings], pg_database: str
) -> None:
    client, settings = kafka_app

    def h(*roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(settings, 'u', roles)}"}

    sup = h("orders.supervisor")

    async def post(url: str, headers: dict[str, str], body: Any = None) -> Any:
        r = await client.post(url, headers=headers, json=body)
        assert r.status_code < 300, r.text
        return r.json()

    inst = await post("/instituciones", sup, {"clue": "QA001", "denominacion": "Institucion QA"})
    alm = await post(
        "/almacenes",
        sup,
        {"id_institucion": inst["id"], "nombre": "Central", "codigo": "C", "es_central": True},
    )
    prod = await post("/productos", sup, {"clave_cnis": "010.000.0104.00"})
    for numero, (cad, qty) in STOCK.items():
        ub = await post("/ubicaciones", sup, {"id_almacen": alm["id"], "codigo": f"{numero}-01"})
        await post(
            "/lotes",
            sup,
            {
                "id_producto": prod["id"],
                "id_institucion": inst["id"],
                "numero_lote": numero,
                "fecha_caducidad": cad,
                "ubicaciones": [{"id_ubicacion": ub["id"], "cantidad": qty}],
            },
        )
    sols = [
        await post(
            "/solicitudes",
            h("orders.solicitante"),
            {
                "id_institucion": inst["id"],
                "id_almacen_destino": alm["id"],
                "fecha_entrega_programada": "2026-05-03",
                "items": [{"id_producto": prod["id"], "cantidad_solicitada": PER_REQUEST}],
            },
        )
        for _ in range(N_REQUESTS)
    ]
    res = await asyncio.gather(
        *(
            client.post(
                f"/solicitudes/{s['id']}/validar", headers=h("orders.validador"), json={"items": []}
            )
            for s in sols
        )
    )
    assert [r.status_code for r in res] == [200] * N_REQUESTS

    props: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(props) < N_REQUESTS:
        for s in sols:
            if s["id"] in props:
                continue
            r = await client.get(f"/solicitudes/{s['id']}/propuesta", headers=sup)
            if r.status_code == 200:
                props[s["id"]] = r.json()
        assert time.monotonic() < deadline, f"only {len(props)} proposals after 60 s"
        await asyncio.sleep(0.05)

    engine = create_engine(pg_database)
    try:
        await _check_accounting(engine)
        # dispatch a full proposal twice, concurrently: stock moves once
        full = next(p for p in props.values() if p["items"][0]["estado"] == "DISPONIBLE")
        await post(f"/propuestas/{full['id']}/revisar", h("orders.almacenista"))
        url = f"/propuestas/{full['id']}/surtir"
        r1, r2 = await asyncio.gather(client.post(url, headers=sup), client.post(url, headers=sup))
        assert sorted([r1.status_code, r2.status_code]) == [200, 409]
        maker = session_factory(engine)
        async with maker() as s:
            salidas = await s.scalar(
                select(func.coalesce(func.sum(MovimientoInventario.cantidad), 0)).where(
                    MovimientoInventario.tipo_movimiento == "SALIDA"
                )
            )
            physical = await s.scalar(select(func.sum(LoteUbicacion.cantidad)))
        assert salidas == PER_REQUEST
        assert physical == TOTAL_STOCK - PER_REQUEST
    finally:
        await engine.dispose()


@pytest.mark.spec("HO-F04")
async def test_bytewise_order_on_postgres(pg_engine: AsyncEngine) -> None:
    """[DECIDE-B7] on PostgreSQL: COLLATE "C" whatever the database collation."""
    w: World = await build_world(session_factory(pg_engine))
    await w.lote("L9", date(2026, 10, 1), {"X-01": 40})
    await w.lote("L10", date(2026, 10, 1), {"B-01": 5, "A-10": 10, "A-2": 20})
    async with w.sessionmaker() as s, s.begin():
        c = await requests.crear_solicitud(
            s,
            requests.NuevaSolicitud(
                w.institucion, w.central, date(2026, 5, 3), [d.ItemCaptura(w.p, 30)]
            ),
            common.Actor("ana", frozenset({d.ROLE_SOLICITANTE})),
            common.OrdersConfig(),
        )
        await requests.validar_solicitud(
            s, c.solicitud.id, {}, common.Actor("v", frozenset({d.ROLE_VALIDADOR}))
        )
        prop = await generation.generar_propuesta(
            s, c.solicitud.id, store=PostgresStockStore(), config=common.OrdersConfig()
        )
        assert prop is not None
        from orders.models import Lote, Ubicacion

        rows = (
            await s.execute(
                select(Lote.numero_lote, Ubicacion.codigo, LoteAsignado.cantidad_asignada)
                .join(LoteUbicacion, LoteUbicacion.id == LoteAsignado.lote_ubicacion_id)
                .join(Lote, Lote.id == LoteUbicacion.lote_id)
                .join(Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id)
                .order_by(Ubicacion.codigo.collate("C"))
            )
        ).all()
    assert [tuple(r) for r in rows] == [("L10", "A-10", 10), ("L10", "A-2", 20)]


async def _generar(w: World, cantidad: int) -> uuid.UUID:
    async with w.sessionmaker() as s, s.begin():
        c = await requests.crear_solicitud(
            s,
            requests.NuevaSolicitud(
                w.institucion, w.central, date(2026, 5, 3), [d.ItemCaptura(w.p, cantidad)]
            ),
            common.Actor("ana", frozenset({d.ROLE_SOLICITANTE})),
            common.OrdersConfig(),
        )
        await requests.validar_solicitud(
            s, c.solicitud.id, {}, common.Actor("v", frozenset({d.ROLE_VALIDADOR}))
        )
        prop = await generation.generar_propuesta(
            s, c.solicitud.id, store=PostgresStockStore(), config=common.OrdersConfig()
        )
        assert prop is not None
        return prop.id


async def _lineas(engine: AsyncEngine, propuesta_id: uuid.UUID) -> list[tuple[str, str, int]]:
    from orders.models import Lote, Ubicacion

    async with session_factory(engine)() as s:
        lineas = await common.lineas_activas(s, propuesta_id)
        rows = (
            await s.execute(
                select(LoteUbicacion.id, Lote.numero_lote, Ubicacion.codigo)
                .join(Lote, Lote.id == LoteUbicacion.lote_id)
                .join(Ubicacion, Ubicacion.id == LoteUbicacion.ubicacion_id)
            )
        ).all()
    names = {r[0]: (r[1], r[2]) for r in rows}
    out = [(*names[ln.lote_ubicacion_id], ln.cantidad_asignada) for ln, _ in lineas]
    return sorted(out, key=lambda t: [x.encode() if isinstance(x, str) else x for x in t])


@pytest.mark.parametrize("pool_size", [1, 5], ids=["totals-in-transaction", "totals-aside"])
async def test_fefo_prefix_rounds_on_postgres(
    pg_database: str, pool_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bounded FEFO read (one row per product, then at most `requerido` rows) allocates
    exactly as the rule over the whole scope: ineligible stock skipped, byte-wise ties, drained
    rows skipped, shortfall and scope-wide `cantidad_disponible` exact — whether the scope total
    runs in the generation's transaction (no spare pooled connection) or beside it."""
    monkeypatch.setattr(postgres, "FEFO_FILAS_PRIMERA_LECTURA", 1)
    await upgrade(pg_database, MIGRATIONS_DIR, "alembic_version_orders")
    pg_engine = create_engine(pg_database, pool_size=pool_size)
    try:
        await _prefix_rounds(pg_engine)
    finally:
        await pg_engine.dispose()


async def _prefix_rounds(pg_engine: AsyncEngine) -> None:
    w: World = await build_world(session_factory(pg_engine))
    await w.lote("A1", date(2026, 9, 1), {"A-01": 10, "A-02": 5})
    await w.lote("A2", date(2026, 9, 1), {"B-01": 7})
    await w.lote("A10", date(2026, 9, 1), {"C-01": 6})  # "A10" < "A2" byte-wise
    await w.lote("B1", date(2026, 8, 1), {"D-01": 4})
    await w.lote("C1", date(2026, 6, 1), {"E-01": 50})  # inside the shelf-life threshold
    await w.lote("D1", date(2026, 7, 15), {"F-01": 50}, estado=4)  # not DISPONIBLE
    await w.lote("E1", date(2026, 7, 20), {"G-01": 50}, ubic_estado="bloqueada")
    await w.lote("N1", date(2026, 7, 10), {"N-01": 50}, almacen=w.norte)  # other warehouse
    await w.lote("F1", date(2026, 10, 1), {"H-01": 30})

    primera = await _generar(w, 40)
    assert await _lineas(pg_engine, primera) == [
        ("A1", "A-01", 10),
        ("A1", "A-02", 5),
        ("A10", "C-01", 6),
        ("A2", "B-01", 7),
        ("B1", "D-01", 4),
        ("F1", "H-01", 8),
    ]
    segunda = await _generar(w, 100)  # front lots drained; only F1's remainder is left
    assert await _lineas(pg_engine, segunda) == [("F1", "H-01", 22)]
    async with session_factory(pg_engine)() as s:
        items = {
            i.propuesta_id: i
            for i in (await s.execute(select(PropuestaItem))).scalars()
            if i.propuesta_id in (primera, segunda)
        }
    assert (items[primera].cantidad_disponible, items[primera].estado) == (62, "DISPONIBLE")
    assert (items[segunda].cantidad_disponible, items[segunda].cantidad_pendiente) == (22, 78)
    assert items[segunda].estado == "PARCIAL"
