"""The FEFO walk takes whole lots (§B.4.1 step 4): lots in (caducidad, numero_lote, lot id)
order and, within a lot, its locations by codigo — never the rows sorted one by one, which
interleaves two lots that share caducidad and numero_lote (lots of two institutions).

The scenario: lot 1 (institution A) at B-01 and Z-09, lot 2 (institution B, same numero_lote and
caducidad) at A-05. Sorting rows by (caducidad, numero_lote, codigo) would take A-05 (lot 2),
then B-01 (lot 1); the walk takes lot 1's B-01 and Z-09 first. Checked on the pure domain and on
proposal generation on SQLite and PostgreSQL (both stock stores, both read paths).
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from orders import domain as d
from orders.adapters import postgres
from orders.adapters.store import stock_store_for
from orders.application import catalogue, common, generation, requests
from orders.models import Propuesta
from orders.queries import propuesta_out
from service_defaults.db import session_factory

from .conftest import World, build_world

TODAY = date(2026, 5, 1)  # the pinned business date (conftest.T_NOW)
CADUCIDAD = date(2026, 9, 1)


def _snap(lu: int, lote: int, codigo: str, cantidad: int) -> d.LoteUbicacionSnap:
    return d.LoteUbicacionSnap(
        lote_ubicacion_id=lu,
        lote_id=lote,
        numero_lote="L-7",
        producto_id=1,
        almacen_id=1,
        fecha_caducidad=CADUCIDAD,
        lote_estado=d.LOTE_DISPONIBLE,
        ubicacion_codigo=codigo,
        cantidad=cantidad,
    )


@pytest.mark.parametrize("natural", [False, True])
@pytest.mark.parametrize("requerido", [10, 15])
def test_the_walk_takes_a_whole_lot_before_the_next_lot_with_the_same_number(
    natural: bool, requerido: int
) -> None:
    snaps = [_snap(30, 2, "A-05", 5), _snap(10, 1, "Z-09", 5), _snap(20, 1, "B-01", 5)]
    r = d.asignar_fefo(1, 1, requerido, snaps, TODAY, natural=natural)
    walk = [(a.lote_id, a.lote_ubicacion_id) for a in r.asignaciones]
    assert walk == [(1, 20), (1, 10), (2, 30)][: requerido // 5]
    assert sorted(snaps, key=lambda s: d.orden_fefo(s, natural=natural))[0].lote_id == 1


async def _lote(w: World, institucion: int, codigos: dict[str, int]) -> int:
    async with w.sessionmaker() as s, s.begin():
        ubicaciones = {}
        for codigo, cantidad in codigos.items():
            ub = await catalogue.crear_ubicacion(s, w.central, codigo)
            ubicaciones[ub.id] = cantidad
        lote = await catalogue.crear_lote(
            s,
            producto_id=w.p,
            institucion_id=institucion,
            numero_lote="L-7",
            fecha_caducidad=CADUCIDAD,
            ubicaciones=ubicaciones,
            almacen_id=w.central,
        )
        return lote.id


async def _proponer(w: World, cantidad: int) -> uuid.UUID:
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
    async with w.sessionmaker() as s, s.begin():
        store = stock_store_for(s.get_bind().dialect.name)
        prop = await generation.generar_propuesta(
            s, c.solicitud.id, store=store, config=common.OrdersConfig()
        )
        assert prop is not None
        return prop.id


@pytest.mark.parametrize("primera_lectura", [1, postgres.FEFO_FILAS_PRIMERA_LECTURA])
async def test_generation_walks_whole_lots_that_share_number_and_expiry(
    engine: AsyncEngine, primera_lectura: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "FEFO_FILAS_PRIMERA_LECTURA", primera_lectura)
    w = await build_world(session_factory(engine))
    async with w.sessionmaker() as s, s.begin():
        otra = (await catalogue.crear_institucion(s, "QA002", "Otra institución")).id
    lote_1 = await _lote(w, w.institucion, {"B-01": 5, "Z-09": 5})
    lote_2 = await _lote(w, otra, {"A-05": 5})
    assert lote_1 < lote_2

    propuesta = await _proponer(w, 10)
    async with w.sessionmaker() as s:
        prop = await s.get(Propuesta, propuesta)
        assert prop is not None
        out = await propuesta_out(s, prop)
    (item,) = out["items"]
    lineas = [(ln["id_lote"], ln["ubicacion"], ln["cantidad_asignada"]) for ln in item["lotes"]]
    assert lineas == [(lote_1, "B-01", 5), (lote_1, "Z-09", 5)]
