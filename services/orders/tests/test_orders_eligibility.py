"""Stock eligibility has one definition (`orders.domain.existencia_elegible` / `elegible_fefo`)
and its SQL forms (`orders.adapters.eligibility`) agree with it — on SQLite and on PostgreSQL.

* exhaustively: every combination of lot estado × location state × location active × warehouse
  active, read with the SQLAlchemy where-clauses (both databases) and the PostgreSQL text
  fragment, selects exactly the rows the Python predicate accepts;
* proposal generation skips inactive locations, quarantined / blocked locations, lots that are
  not DISPONIBLE and inactive warehouses, on both databases (PostgreSQL runs the hand-written
  FEFO prefix read);
* the PostgreSQL candidate read returns the rows' real states (it used to fill them with
  constants, so the domain filter checked nothing there);
* differential (hypothesis, PostgreSQL): the PostgreSQL candidate read + pure FEFO gives the same
  lines as pure FEFO over all rows.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orders import domain as d
from orders.adapters import postgres
from orders.adapters.eligibility import (
    elegible_fefo_where,
    elegible_linea_manual_where,
    existencia_elegible_sql,
    existencia_elegible_where,
)
from orders.adapters.portable import PortableStockStore
from orders.adapters.postgres import PostgresStockStore
from orders.adapters.snapshots import snap_query, to_snap
from orders.adapters.store import stock_store_for
from orders.application import common, generation, requests
from orders.main import MIGRATIONS_DIR, create_app
from orders.models import (
    Almacen,
    Institucion,
    Lote,
    LoteAsignado,
    LoteUbicacion,
    Producto,
    PropuestaItem,
    Ubicacion,
)
from orders.settings import OrdersSettings
from service_defaults.db import create_engine, session_factory
from service_defaults.migrations import upgrade

from .conftest import World, build_world

VERSION_TABLE = "alembic_version_orders"
TODAY = date(2026, 5, 1)  # the pinned business date (conftest.T_NOW)
UMBRAL = d.umbral_caducidad(TODAY, d.DEFAULT_MIN_SHELF_LIFE_DAYS)
LOTE_ESTADOS = sorted(d.LOTE_ESTADOS)
UBICACION_ESTADOS = sorted(d.UBICACION_ESTADOS)


def _dialect(engine: AsyncEngine) -> str:
    return engine.dialect.name


# ------------------------------------------------------------------ the SQL forms, exhaustively


@dataclass(frozen=True)
class Combo:
    lote_estado: int
    ubicacion_estado: str
    ubicacion_activa: bool
    almacen_activo: bool


COMBOS = [
    Combo(le, ue, ua, aa)
    for le, ue, ua, aa in itertools.product(
        LOTE_ESTADOS, UBICACION_ESTADOS, [True, False], [True, False]
    )
]


async def _seed_combos(s: AsyncSession) -> dict[int, Combo]:
    """One stock row per combination, caducidad after the threshold; {lote_ubicacion id: combo}."""
    await s.execute(
        insert(Institucion),
        [{"id": i, "clue": f"C{i}", "denominacion": f"I{i}"} for i in (1, 2)],
    )
    await s.execute(insert(Producto).values(id=1, clave_cnis="P1", descripcion=""))
    for alm_id, activo in ((1, True), (2, False)):
        await s.execute(
            insert(Almacen).values(
                id=alm_id, institucion_id=1, nombre=f"A{alm_id}", codigo=f"A{alm_id}", activo=activo
            )
        )
    out: dict[int, Combo] = {}
    for n, c in enumerate(COMBOS, start=1):
        alm = 1 if c.almacen_activo else 2
        await s.execute(
            insert(Ubicacion).values(
                id=n,
                almacen_id=alm,
                codigo=f"U{n}",
                estado=c.ubicacion_estado,
                activo=c.ubicacion_activa,
            )
        )
        await s.execute(
            insert(Lote).values(
                id=n,
                uuid=uuid.uuid4(),
                numero_lote=f"L{n}",
                producto_id=1,
                institucion_id=1,
                almacen_id=alm,
                cantidad_inicial=5,
                fecha_caducidad=UMBRAL + timedelta(days=30),
                fecha_recepcion=TODAY,
                estado=c.lote_estado,
            )
        )
        await s.execute(
            insert(LoteUbicacion).values(
                id=n, lote_id=n, ubicacion_id=n, cantidad=5, cantidad_reservada=0
            )
        )
        out[n] = c
    return out


def _python_eligible(combos: dict[int, Combo]) -> set[int]:
    for c in combos.values():  # the flat predicate = its two named parts
        snap = d.LoteUbicacionSnap(
            1, 1, "L", 1, 1, None, c.lote_estado, "U", 1, 0,
            c.ubicacion_estado, c.ubicacion_activa, c.almacen_activo,
        )  # fmt: skip
        assert d.existencia_elegible(snap) == (
            snap.lote_disponible
            and d.ubicacion_elegible(c.ubicacion_estado, c.ubicacion_activa, c.almacen_activo)
        )
    return {
        n
        for n, c in combos.items()
        if d.existencia_elegible(
            d.LoteUbicacionSnap(
                lote_ubicacion_id=n,
                lote_id=n,
                numero_lote=f"L{n}",
                producto_id=1,
                almacen_id=1 if c.almacen_activo else 2,
                fecha_caducidad=UMBRAL + timedelta(days=30),
                lote_estado=c.lote_estado,
                ubicacion_codigo=f"U{n}",
                cantidad=5,
                ubicacion_estado=c.ubicacion_estado,
                ubicacion_activa=c.ubicacion_activa,
                almacen_activo=c.almacen_activo,
            )
        )
    }


async def test_sql_forms_select_exactly_what_the_predicate_accepts(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as s, s.begin():
        combos = await _seed_combos(s)
        expected = _python_eligible(combos)
        # the predicate is not trivial: some combinations pass, most do not
        assert 0 < len(expected) < len(combos)
        assert len(expected) == len(d.ELIGIBLE_LOCATION_STATES)  # active, DISPONIBLE only
        got = set(
            (
                await s.execute(
                    snap_query()
                    .where(*existencia_elegible_where())
                    .with_only_columns(LoteUbicacion.id)
                )
            ).scalars()
        )
        assert got == expected
        fefo = set(
            (
                await s.execute(
                    snap_query()
                    .where(*elegible_fefo_where(1, UMBRAL))
                    .with_only_columns(LoteUbicacion.id)
                )
            ).scalars()
        )
        assert fefo == expected  # every eligible row sits in warehouse 1 with free stock

        async def manual() -> set[int]:
            q = snap_query().where(*elegible_linea_manual_where(1, TODAY))
            return set((await s.execute(q.with_only_columns(LoteUbicacion.id))).scalars())

        assert await manual() == expected
        # `domain.vigente`: expired (or undated) lots drop out of the manual-line candidates
        caducado, sin_fecha = sorted(expected)[:2]
        await s.execute(
            update(Lote).where(Lote.id == caducado).values(fecha_caducidad=TODAY - timedelta(1))
        )
        await s.execute(update(Lote).where(Lote.id == sin_fecha).values(fecha_caducidad=None))
        assert await manual() == expected - {caducado, sin_fecha}
        assert not d.vigente(TODAY - timedelta(1), TODAY)
        assert not d.vigente(None, TODAY)
        if _dialect(engine) == "postgresql":
            cond = existencia_elegible_sql(lote="l", ubicacion="u", almacen_activo="a.activo")
            rows = await s.execute(
                text(
                    "SELECT lu.id FROM lote_ubicaciones AS lu JOIN lotes AS l ON l.id = lu.lote_id "
                    "JOIN ubicaciones AS u ON u.id = lu.ubicacion_id "
                    f"JOIN almacenes AS a ON a.id = u.almacen_id WHERE {cond}"
                )
            )
            assert set(rows.scalars()) == expected
        await s.rollback()


# ------------------------------------------------------------------ generation on both databases


async def _generar(w: World, cantidad: int, *, desactivar_almacen: bool = False) -> uuid.UUID:
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
    if desactivar_almacen:  # the warehouse closes after the validation
        async with w.sessionmaker() as s, s.begin():
            await s.execute(update(Almacen).where(Almacen.id == w.central).values(activo=False))
    async with w.sessionmaker() as s, s.begin():
        # the store create_app would choose for this database
        store = stock_store_for(s.get_bind().dialect.name)
        prop = await generation.generar_propuesta(
            s, c.solicitud.id, store=store, config=common.OrdersConfig()
        )
        assert prop is not None
        return prop.id


async def _lineas_e_item(
    w: World, propuesta_id: uuid.UUID
) -> tuple[list[tuple[str, int]], PropuestaItem]:
    async with w.sessionmaker() as s:
        rows = (
            await s.execute(
                select(Lote.numero_lote, LoteAsignado.cantidad_asignada)
                .join(LoteUbicacion, LoteUbicacion.id == LoteAsignado.lote_ubicacion_id)
                .join(Lote, Lote.id == LoteUbicacion.lote_id)
                .join(PropuestaItem, PropuestaItem.id == LoteAsignado.propuesta_item_id)
                .where(PropuestaItem.propuesta_id == propuesta_id)
            )
        ).all()
        item = (
            await s.execute(select(PropuestaItem).where(PropuestaItem.propuesta_id == propuesta_id))
        ).scalar_one()
    return sorted((r[0], r[1]) for r in rows), item


@pytest.mark.parametrize("primera_lectura", [1, postgres.FEFO_FILAS_PRIMERA_LECTURA])
async def test_generation_skips_ineligible_stock(
    engine: AsyncEngine, primera_lectura: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ineligible rows expire first (they would be chosen by FEFO order alone)."""
    monkeypatch.setattr(postgres, "FEFO_FILAS_PRIMERA_LECTURA", primera_lectura)
    w = await build_world(session_factory(engine))
    await w.lote("BLQ", date(2026, 7, 10), {"B-01": 50}, ubic_estado="bloqueada")
    await w.lote("CUA", date(2026, 7, 11), {"Q-01": 50}, ubic_estado="cuarentena")
    await w.lote("DEV", date(2026, 7, 12), {"D-01": 50}, ubic_estado="devoluciones")
    await w.lote("SUS", date(2026, 7, 13), {"S-01": 50}, estado=d.LOTE_SUSPENDIDO)
    await w.lote("DET", date(2026, 7, 14), {"T-01": 50}, estado=d.LOTE_DETERIORADO)
    await w.lote("INA", date(2026, 7, 15), {"I-01": 50})
    await w.lote("NOR", date(2026, 7, 16), {"N-01": 50}, almacen=w.norte)
    await w.lote("OCU", date(2026, 8, 1), {"O-01": 10}, ubic_estado="ocupada")
    await w.lote("DIS", date(2026, 8, 2), {"A-01": 10})
    async with w.sessionmaker() as s, s.begin():
        await s.execute(update(Ubicacion).where(Ubicacion.codigo == "I-01").values(activo=False))

    lineas, item = await _lineas_e_item(w, await _generar(w, 100))
    assert lineas == [("DIS", 10), ("OCU", 10)]
    assert (item.estado, item.cantidad_disponible, item.cantidad_propuesta) == ("PARCIAL", 20, 20)


async def test_generation_in_an_inactive_warehouse_allocates_nothing(
    engine: AsyncEngine,
) -> None:
    w = await build_world(session_factory(engine))
    await w.lote("DIS", date(2026, 8, 2), {"A-01": 10})
    lineas, item = await _lineas_e_item(w, await _generar(w, 5, desactivar_almacen=True))
    assert lineas == []
    assert (item.estado, item.observaciones) == ("NO_DISPONIBLE", d.MSG_SIN_LOTES)


@pytest.mark.integration
async def test_postgres_candidate_read_carries_the_real_states(pg_database: str) -> None:
    """The snapshots the PostgreSQL read hands to the domain are the rows' states under lock,
    not constants (an ``ocupada`` location used to come back as ``disponible``)."""
    await upgrade(pg_database, MIGRATIONS_DIR, VERSION_TABLE)
    eng = create_engine(pg_database)
    try:
        w = await build_world(session_factory(eng))
        await w.lote("OCU", date(2026, 8, 1), {"O-01": 10}, ubic_estado="ocupada")
        await w.lote("NOR", date(2026, 8, 1), {"N-01": 10}, almacen=w.norte)
        async with w.sessionmaker() as s, s.begin():
            snaps = await postgres.candidatos_fefo_pg(s, {w.p: 5}, w.central, UMBRAL)
        assert [(x.numero_lote, x.ubicacion_estado, x.almacen_id) for x in snaps] == [
            ("OCU", "ocupada", w.central)
        ]
        assert all(x.ubicacion_activa and x.almacen_activo and x.lote_disponible for x in snaps)
    finally:
        await eng.dispose()


# ------------------------------------------------------------------ differential, PostgreSQL

NOMBRES = ["A1", "A10", "A2", "a1", "B-01", "B-1", "Ñ1", "b"]  # byte-wise ties and collation traps


@st.composite
def escenarios(draw: st.DrawFn) -> dict[str, Any]:
    ubicaciones = []
    for alm in (1, 2):
        for codigo in draw(st.lists(st.sampled_from(NOMBRES), min_size=1, max_size=4, unique=True)):
            ubicaciones.append(
                (alm, codigo, draw(st.sampled_from(UBICACION_ESTADOS)), draw(st.booleans()))
            )
    lotes = []
    # lot numbers are unique per (product, institution): two institutions' lots may share number
    # and expiry, and the walk must still take them whole (§B.4.1 step 4)
    for producto, institucion in itertools.product((1, 2), (1, 2)):
        for numero in draw(st.lists(st.sampled_from(NOMBRES), max_size=3, unique=True)):
            dias = draw(st.one_of(st.none(), st.sampled_from([61, 90]), st.integers(-5, 150)))
            lotes.append(
                {
                    "producto": producto,
                    "institucion": institucion,
                    "numero": numero,
                    "caducidad": None if dias is None else TODAY + timedelta(days=dias),
                    "estado": draw(st.sampled_from(LOTE_ESTADOS)),
                    "stock": [
                        (u, c, draw(st.integers(0, c)))
                        for u, c in draw(
                            st.lists(
                                st.tuples(st.integers(0, len(ubicaciones) - 1), st.integers(0, 30)),
                                min_size=1,
                                max_size=3,
                                unique_by=lambda t: t[0],
                            )
                        )
                    ],
                }
            )
    return {
        "ubicaciones": ubicaciones,
        "lotes": lotes,
        "almacen_activo": draw(st.sampled_from([True, True, True, False])),
        "requeridos": {p: draw(st.integers(1, 80)) for p in (1, 2)},
        "primera_lectura": draw(st.sampled_from([1, 2, postgres.FEFO_FILAS_PRIMERA_LECTURA])),
    }


async def _seed(s: AsyncSession, esc: dict[str, Any]) -> None:
    await s.execute(
        insert(Institucion),
        [{"id": i, "clue": f"C{i}", "denominacion": f"I{i}"} for i in (1, 2)],
    )
    for p in (1, 2):
        await s.execute(insert(Producto).values(id=p, clave_cnis=f"P{p}", descripcion=""))
    await s.execute(
        insert(Almacen),
        [
            {
                "id": 1,
                "institucion_id": 1,
                "nombre": "D",
                "codigo": "D",
                "activo": esc["almacen_activo"],
            },
            {"id": 2, "institucion_id": 1, "nombre": "O", "codigo": "O", "activo": True},
        ],
    )
    await s.execute(
        insert(Ubicacion),
        [
            {"id": i + 1, "almacen_id": alm, "codigo": codigo, "estado": estado, "activo": activo}
            for i, (alm, codigo, estado, activo) in enumerate(esc["ubicaciones"])
        ],
    )
    lu_id = 0
    for n, lote in enumerate(esc["lotes"], start=1):
        await s.execute(
            insert(Lote).values(
                id=n,
                uuid=uuid.uuid4(),
                numero_lote=lote["numero"],
                producto_id=lote["producto"],
                institucion_id=lote["institucion"],
                cantidad_inicial=0,
                fecha_caducidad=lote["caducidad"],
                fecha_recepcion=TODAY,
                estado=lote["estado"],
            )
        )
        for u, cantidad, reservada in lote["stock"]:
            lu_id += 1
            await s.execute(
                insert(LoteUbicacion).values(
                    id=lu_id,
                    lote_id=n,
                    ubicacion_id=u + 1,
                    cantidad=cantidad,
                    cantidad_reservada=reservada,
                )
            )


def _lineas(res: dict[int, d.ResultadoItem]) -> dict[int, tuple[d.Asignacion, ...]]:
    return {p: r.asignaciones for p, r in res.items()}


@pytest.fixture
def pg_runner(pg_database: str) -> Iterator[tuple[asyncio.Runner, AsyncEngine]]:
    """A migrated PostgreSQL database and an event loop of its own for the hypothesis examples."""
    with asyncio.Runner() as runner:
        runner.run(upgrade(pg_database, MIGRATIONS_DIR, VERSION_TABLE))
        eng = create_engine(pg_database)
        try:
            yield runner, eng
        finally:
            runner.run(eng.dispose())


@pytest.mark.integration
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(esc=escenarios())
def test_postgres_candidates_then_fefo_equal_fefo_over_all_rows(
    pg_runner: tuple[asyncio.Runner, AsyncEngine], esc: dict[str, Any]
) -> None:
    runner, eng = pg_runner

    async def example() -> None:
        async with session_factory(eng)() as s, s.begin():
            await _seed(s, esc)
            todas = [to_snap(r) for r in (await s.execute(snap_query())).all()]
            esperado = d.asignar_fefo_varios(esc["requeridos"], 1, todas, TODAY)
            previo = postgres.FEFO_FILAS_PRIMERA_LECTURA
            postgres.FEFO_FILAS_PRIMERA_LECTURA = esc["primera_lectura"]
            try:
                leidas = await postgres.candidatos_fefo_pg(s, esc["requeridos"], 1, UMBRAL)
            finally:
                postgres.FEFO_FILAS_PRIMERA_LECTURA = previo
            obtenido = d.asignar_fefo_varios(esc["requeridos"], 1, leidas, TODAY)
            assert _lineas(obtenido) == _lineas(esperado)
            # what the read returns is eligible stock of the destination, in its real state
            assert all(d.elegible_fefo(x, 1, UMBRAL) for x in leidas)
            await s.rollback()

    runner.run(example())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///./x.db", PortableStockStore),
        ("postgresql+asyncpg://u:p@db:5432/orders", PostgresStockStore),
    ],
)
def test_create_app_chooses_the_stock_store_once(url: str, expected: type) -> None:
    """The database-specific code is chosen by `create_app` from the URL (no I/O), and the
    consumer generating proposals is bound to it."""
    app = create_app(OrdersSettings(env="test", database_url=url, transport="memory"))
    assert isinstance(app.state.stock_store, expected)
