"""The seed's related production endpoints (DOMAIN §C.5) through the HTTP API:
``obtener_partidas_produccion``, ``ots_por_sitio_grid``, ``guardar_reportes_diarios_masiva``,
with the fixes GP-D02 (daily statuses are their own catalogue) and GP-D14 (login required;
clearing a day deletes it). SQLite file + in-memory transport; the PostgreSQL run is at the end
(``integration``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, insert, select

from evidence import queries
from evidence.main import create_app
from evidence.models import PartidaProyectada, ReporteDiario, ReporteMensual
from evidence.settings import EvidenceSettings
from nexo_testing import app_client, bearer, ok, problem

PROBLEM = "application/problem+json"
SAVE = "/guardar_reportes_diarios_masiva"
SITE_GRID = "/ots_por_sitio_grid"
PROD_GRID = "/obtener_partidas_produccion"


@dataclass
class Ctx:
    client: httpx.AsyncClient
    app: FastAPI
    res: dict[str, str]
    sup: dict[str, str]
    rev: dict[str, str]
    fac: dict[str, str]
    ops: dict[str, str]
    ids: dict[str, int] = field(default_factory=dict)

    async def scalar(self, stmt: Any) -> Any:
        async with self.app.state.sessionmaker() as s:
            return await s.scalar(stmt)

    async def ot(self, folio: str, **kw: Any) -> int:
        body = await ok(
            await self.client.post("/ots", json={"orden_trabajo": folio, **kw}, headers=self.sup),
            201,
        )
        self.ids[folio] = int(body["id"])
        return int(body["id"])

    async def save(self, headers: dict[str, str], *reportes: tuple[int, list[Any]]) -> Any:
        body = {
            "mes": 3,
            "anio": 2025,
            "reportes": [{"id_ot": oid, "valores": vals} for oid, vals in reportes],
        }
        return await self.client.post(SAVE, json=body, headers=headers)

    async def site_grid(self, id_sitio: int = 7) -> dict[int, dict[str, Any]]:
        body = await ok(
            await self.client.get(
                SITE_GRID, params={"id_sitio": id_sitio, "mes": 3, "anio": 2025}, headers=self.rev
            )
        )
        return {row["id_ot"]: row for row in body["reportes_diarios"]}

    async def days(self, id_ot: int) -> int:
        return int(
            await self.scalar(
                select(func.count())
                .select_from(ReporteDiario)
                .join(ReporteMensual, ReporteMensual.id == ReporteDiario.id_reporte_mensual)
                .where(ReporteMensual.id_ot == id_ot)
            )
        )


async def make_ctx(settings: EvidenceSettings) -> AsyncIterator[Ctx]:
    app = create_app(settings)
    async with app_client(app, "http://evidence", shutdown_timeout=60) as client:
        yield Ctx(
            client,
            app,
            bearer(settings, "ana", "evidence.residente"),
            bearer(settings, "sam", "evidence.supervisor"),
            bearer(settings, "rita", "evidence.revisor"),
            bearer(settings, "fede", "evidence.facturacion"),
            bearer(settings, "olga", "ops"),
        )


async def seed_sites(c: Ctx) -> None:
    """Site 7: A (frente 2 → embarcación 7), B (frente 1 → patio 7), D (ended in February,
    extended into March by an active reprogramación). Not shown: C (frente 2 but only its
    patio is 7), E (starts in April), F (ended in February, no reprogramación)."""
    march = {"fecha_inicio_programado": "2025-01-01", "fecha_termino_programado": "2025-12-31"}
    await c.ot("A", id_frente=2, id_embarcacion=7, **march)
    await c.ot("B", id_frente=1, id_patio=7, fecha_inicio_real="2025-03-10")
    await c.ot("C", id_frente=2, id_embarcacion=8, id_patio=7, **march)
    await c.ot(
        "D",
        id_frente=4,
        id_plataforma=7,
        fecha_inicio_programado="2025-01-01",
        fecha_termino_programado="2025-02-28",
    )
    await c.ot("D-R1", ot_principal=c.ids["D"], fecha_termino_programado="2025-03-10")
    await c.ot("E", id_frente=2, id_embarcacion=7, fecha_inicio_programado="2025-04-01")
    await c.ot(
        "F",
        id_frente=2,
        id_embarcacion=7,
        fecha_inicio_programado="2025-01-01",
        fecha_termino_real="2025-02-28",
        fecha_termino_programado="2025-12-31",
    )


@pytest.fixture
async def c(database_url: str) -> AsyncIterator[Ctx]:
    settings = EvidenceSettings(
        env="test",
        database_url=database_url,
        transport="memory",
    )
    async for ctx in make_ctx(settings):
        await seed_sites(ctx)
        yield ctx


# ------------------------------------------------------------------------------------------


async def test_site_grid_lists_valid_ots_of_the_site(c: Ctx) -> None:
    grid = await c.site_grid()
    assert sorted(grid) == sorted([c.ids["A"], c.ids["B"], c.ids["D"]])
    d_row = grid[c.ids["D"]]
    assert (d_row["ot"], d_row["inicio_v"], d_row["fin_v"]) == ("D", "2025-01-01", "2025-03-10")
    assert grid[c.ids["B"]]["inicio_v"] == "2025-03-10"  # real over programmed
    assert grid[c.ids["B"]]["fin_v"] is None  # no end yet: still running
    assert all(grid[c.ids["A"]][f"dia{n}"] is None for n in range(1, 32))
    assert await c.site_grid(8) == {c.ids["C"]: await _row(c, 8, "C")}


async def _row(c: Ctx, site: int, folio: str) -> dict[str, Any]:
    return (await c.site_grid(site))[c.ids[folio]]


async def test_mass_save_then_grid(c: Ctx) -> None:
    a, b = c.ids["A"], c.ids["B"]
    r = await ok(await c.save(c.res, (a, ["Operativo", None, " operativo "]), (b, ["OPERATIVO"])))
    assert (r["exito"], r["guardados"], r["eliminados"]) == (True, 3, 0)
    assert "mensaje" in r
    grid = await c.site_grid()
    assert [grid[a][f"dia{n}"] for n in (1, 2, 3, 4)] == ["Operativo", None, "Operativo", None]
    assert grid[b]["dia1"] == "Operativo"
    r = await ok(await c.save(c.res, (a, ["Operativo", None, "Operativo"])))
    assert (r["guardados"], r["eliminados"], r["sin_cambio"]) == (0, 0, 3)  # idempotent


@pytest.mark.spec("GP-D14")
async def test_clearing_a_day_deletes_it_and_login_is_required(c: Ctx) -> None:
    a = c.ids["A"]
    await ok(await c.save(c.res, (a, ["Operativo", "Operativo", "Operativo"])))
    assert await c.days(a) == 3
    r = await ok(await c.save(c.res, (a, ["", None])))  # day 3 is past the list: kept
    assert (r["guardados"], r["eliminados"]) == (0, 2)
    assert await c.days(a) == 1
    grid = await c.site_grid()
    assert [grid[a][f"dia{n}"] for n in (1, 2, 3)] == [None, None, "Operativo"]
    # GP-D14: no anonymous writes (nor reads)
    body = {"mes": 3, "anio": 2025, "reportes": [{"id_ot": a, "valores": [""] * 3}]}
    r401 = await c.client.post(SAVE, json=body)
    assert r401.status_code == 401
    assert r401.headers["content-type"].startswith(PROBLEM)
    assert await c.days(a) == 1
    for path in (SITE_GRID, PROD_GRID):
        assert (await c.client.get(path, params={"mes": 3, "anio": 2025})).status_code == 401


@pytest.mark.spec("GP-D02")
async def test_gpu_statuses_are_not_daily_statuses(c: Ctx) -> None:
    a = c.ids["A"]
    for gpu_status in ("Validado", "PENDIENTE", "En Revisión", "19"):
        body = problem(
            await c.save(c.res, (a, ["Operativo", gpu_status])),
            422,
            "ESTATUS_DIARIO_INVALIDO",
            "reportes[0].valores[1]",
        )
        assert body["exito"] is False  # the seed shape's members ride along
        assert gpu_status in body["mensaje"]
    assert await c.days(a) == 0  # nothing of the rejected request was written


async def test_closed_days_need_a_supervisor_and_block_production(c: Ctx) -> None:
    a = c.ids["A"]
    problem(await c.save(c.res, (a, [None, "Cerrado"])), 403, "ROL_NO_AUTORIZADO")
    assert await c.days(a) == 0
    await ok(await c.save(c.sup, (a, [None, "Cerrado", "Operativo"])))
    prod = await ok(
        await c.client.get(PROD_GRID, params={"id_ot": a, "mes": 3, "anio": 2025}, headers=c.res)
    )
    assert prod["dias_bloqueados"] == [2]
    # the closed day is the one production saves respect (existing rule, same flag)
    imp = await ok(
        await c.client.post(
            f"/ots/{a}/importaciones",
            json={
                "partidas": [{"id_partida": "C-2.1.1", "anexo": "C-2", "volumen_proyectado": "9"}]
            },
            headers=c.sup,
        ),
        201,
    )
    pid = imp["partidas"][0]["id"]
    body = {
        "id_ot": a,
        "mes": 3,
        "anio": 2025,
        "partidas": [{"id_partida_imp": pid, "valores": [None, "1"]}],
    }
    problem(await c.client.post("/produccion/masiva", json=body, headers=c.res), 409, "DIA_CERRADO")
    # a residente can neither lift nor clear it; a supervisor can (the row is deleted)
    problem(await c.save(c.res, (a, [None, "Operativo"])), 403, "ROL_NO_AUTORIZADO")
    problem(await c.save(c.res, (a, [None, ""])), 403, "ROL_NO_AUTORIZADO")
    # resending the closed day unchanged is fine: other days stay the residente's
    r = await ok(await c.save(c.res, (a, [None, "Cerrado", "", "Operativo"])))
    assert (r["guardados"], r["eliminados"]) == (1, 1)
    r = await ok(await c.save(c.sup, (a, [None, ""])))
    assert r["eliminados"] == 1
    prod = await ok(
        await c.client.get(PROD_GRID, params={"id_ot": a, "mes": 3, "anio": 2025}, headers=c.rev)
    )
    assert prod["dias_bloqueados"] == []
    await ok(await c.client.post("/produccion/masiva", json=body, headers=c.res))
    # closing through the dedicated endpoint shows as the closed status in the site grid
    await ok(
        await c.client.post(
            "/reportes-diarios/cierre", json={"id_ot": a, "fecha": "2025-03-05"}, headers=c.sup
        )
    )
    assert (await c.site_grid())[a]["dia5"] == "Cerrado"


async def test_closed_month_rejects_daily_changes(c: Ctx) -> None:
    a = c.ids["A"]
    await ok(await c.save(c.res, (a, ["Operativo"])))
    await ok(
        await c.client.post(
            "/reportes-mensuales/cierre", json={"id_ot": a, "mes": 3, "anio": 2025}, headers=c.sup
        )
    )
    problem(await c.save(c.sup, (a, [""])), 409, "MES_CERRADO", "reportes[0]")
    problem(await c.save(c.res, (a, [None, "Operativo"])), 409, "MES_CERRADO")
    assert await c.days(a) == 1
    r = await ok(await c.save(c.res, (a, ["Operativo"])))  # no change → nothing to refuse
    assert r["sin_cambio"] == 1


async def test_roles(c: Ctx) -> None:
    a = c.ids["A"]
    for headers in (c.rev, c.fac, c.ops):  # writers: residente, supervisor (and admin)
        r = await c.save(headers, (a, ["Operativo"]))
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
    assert await c.days(a) == 0
    for headers in (c.res, c.sup, c.rev, c.fac, c.ops):  # readers: every role, as the GPU grid
        await ok(
            await c.client.get(
                SITE_GRID, params={"id_sitio": 7, "mes": 3, "anio": 2025}, headers=headers
            )
        )
        await ok(
            await c.client.get(
                PROD_GRID, params={"id_ot": a, "mes": 3, "anio": 2025}, headers=headers
            )
        )


async def test_bad_input_is_422_problem_naming_the_field(c: Ctx) -> None:
    a = c.ids["A"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mes": 13, "anio": 2025, "reportes": []}, "mes"),
        ({"mes": 3, "anio": 1999, "reportes": []}, "anio"),
        ({"mes": 3, "anio": 2025, "reportes": [{"id_ot": a, "valores": ["x"] * 32}]}, "valores"),
        ({"mes": 3, "anio": 2025, "reportes": [{"id_ot": 0, "valores": []}]}, "id_ot"),
        ({"mes": 3, "anio": 2025, "reportes": [{"id_ot": a, "valores": [1]}]}, "valores"),
        ({"mes": 3, "anio": 2025, "reportes": [], "ids_borrar": [1]}, "ids_borrar"),
        ({"anio": 2025, "reportes": []}, "mes"),
    ]
    for body, name in cases:
        r = await c.client.post(SAVE, json=body, headers=c.res)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert any(name in e["field"] for e in r.json()["errors"]), r.json()
    # rule-level input errors, also before anything is written
    feb = {"mes": 2, "anio": 2025, "reportes": [{"id_ot": a, "valores": ["Operativo"] * 29}]}
    problem(await c.client.post(SAVE, json=feb, headers=c.res), 422, "DIA_INVALIDO", "valores")
    problem(
        await c.save(c.res, (a, ["Operativo"]), (a, [""])), 422, "REPORTE_DUPLICADO", "reportes[1]"
    )
    problem(
        await c.save(c.res, (a, ["Operativo"]), (987654, ["Operativo"])),
        404,
        "OT_NO_ENCONTRADA",
        "reportes[1].id_ot",
    )
    assert await c.days(a) == 0
    site_params: list[dict[str, str | int]] = [
        {"mes": 3, "anio": 2025},
        {"id_sitio": 7, "mes": 0, "anio": 2025},
        {"id_sitio": "x", "mes": 3, "anio": 2025},
    ]
    for params in site_params:
        r = await c.client.get(SITE_GRID, params=params, headers=c.rev)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
    prod_params: list[dict[str, str | int]] = [
        {"mes": 3, "anio": 2025},
        {"id_ot": a, "mes": 3, "anio": 2025, "tipo_tiempo": "XX"},
        {"id_ot": a, "mes": 13, "anio": 2025},
    ]
    for params in prod_params:
        r = await c.client.get(PROD_GRID, params=params, headers=c.rev)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
    problem(
        await c.client.get(
            PROD_GRID, params={"id_ot": 987654, "mes": 3, "anio": 2025}, headers=c.rev
        ),
        404,
        "OT_NO_ENCONTRADA",
        "id_ot",
    )


async def _production_family(c: Ctx) -> dict[str, int]:
    """OT P (principal) + P-R1 (reprogramación), each importing the same line C-2.1.1 (the
    reprogramación's with a trailing dot and a trimmed annex), plus C-3.4.2 in P only."""
    p = await c.ot("P")
    r1 = await c.ot("P-R1", ot_principal=p)
    line = {"id_partida": "C-2.1.1", "descripcion": "Técnico", "anexo": "C-2", "unidad": "JOR"}
    imp = await ok(
        await c.client.post(
            f"/ots/{p}/importaciones",
            json={
                "partidas": [
                    {**line, "volumen_proyectado": "80"},
                    {"id_partida": "C-3.4.2", "anexo": "C-3", "volumen_proyectado": "5"},
                ]
            },
            headers=c.sup,
        ),
        201,
    )
    imp2 = await ok(
        await c.client.post(
            f"/ots/{r1}/importaciones",
            json={
                "partidas": [
                    {**line, "id_partida": "C-2.1.1.", "anexo": " c-2", "volumen_proyectado": "20"}
                ]
            },
            headers=c.sup,
        ),
        201,
    )
    ids = {
        "p": p,
        "r1": r1,
        "line_p": imp["partidas"][0]["id"],
        "crane": imp["partidas"][1]["id"],
        "line_r1": imp2["partidas"][0]["id"],
    }
    return ids


async def _put(c: Ctx, partida: int, fecha: str, vol: str, tipo: str = "TE") -> None:
    body = {"id_partida_anexo": partida, "fecha": fecha, "tipo_tiempo": tipo, "volumen": vol}
    await ok(await c.client.put("/producciones", json=body, headers=c.res))


async def test_production_grid_consolidates_the_family(c: Ctx) -> None:
    ids = await _production_family(c)
    await _put(c, ids["line_p"], "2025-03-02", "8")
    await _put(c, ids["line_r1"], "2025-03-02", "1.5")
    await _put(c, ids["line_p"], "2025-03-02", "2", tipo="CMA")
    await _put(c, ids["line_r1"], "2025-03-04", "3")
    await _put(c, ids["line_p"], "2025-04-01", "50")  # another month: not in March's figures
    async with c.app.state.sessionmaker() as s:
        await s.execute(
            insert(PartidaProyectada),
            [
                {
                    "id_ot": ids["p"],
                    "id_partida_anexo": ids["line_p"],
                    "fecha": dt.date(2025, 3, day),
                    "volumen_programado": Decimal("4"),
                }
                for day in (2, 3)
            ],
        )
        await s.commit()

    body = await ok(
        await c.client.get(
            PROD_GRID, params={"id_ot": ids["r1"], "mes": 3, "anio": 2025}, headers=c.rev
        )
    )
    rows = {row["codigo"]: row for row in body["partidas"]}
    assert sorted(rows) == ["C-2.1.1", "C-3.4.2"]  # one row for the line of both imports
    row = rows["C-2.1.1"]
    assert row["id_partida_imp"] == ids["line_p"]
    assert (row["anexo"], row["unidad"], row["concepto"]) == ("C-2", "JOR", "Técnico")
    assert row["vol_total_proyectado"] == "100.000000"
    assert row["acumulado_mes"] == "12.500000"  # TE of March only: 8 + 1.5 + 3
    assert row["acumulado_programado"] == "8.000000"
    assert row["dia2"] == {
        "valor": "9.500000",
        "programado": "4.000000",
        "es_excedente": False,
        "te_dia": "9.500000",
        "cma_dia": "2.000000",
    }
    assert row["dia3"] == {
        "valor": None,
        "programado": "4.000000",
        "es_excedente": False,
        "te_dia": "0.000000",
        "cma_dia": "0.000000",
    }
    assert row["dia4"]["valor"] == "3.000000"
    assert row["dia1"] is None
    assert row["dia31"] is None
    assert row["estatus_gpu"] == row["estatus_volumen"] == "AUTORIZADO"
    assert rows["C-3.4.2"]["acumulado_mes"] == "0.000000"
    assert body["dias_bloqueados"] == []

    cma = await ok(
        await c.client.get(
            PROD_GRID,
            params={"id_ot": ids["p"], "mes": 3, "anio": 2025, "tipo_tiempo": "CMA"},
            headers=c.rev,
        )
    )
    row = {r["codigo"]: r for r in cma["partidas"]}["C-2.1.1"]
    assert (row["dia2"]["valor"], row["dia4"]["valor"], row["acumulado_mes"]) == (
        "2.000000",
        "0.000000",
        "2.000000",
    )


async def test_production_grid_flags_over_volume(c: Ctx) -> None:
    ids = await _production_family(c)
    await _put(c, ids["crane"], "2025-03-01", "4")
    await _put(c, ids["crane"], "2025-03-02", "4")  # cumulative 8 > 5 authorised
    await ok(
        await c.client.post(
            "/reportes-mensuales/cierre",
            json={"id_ot": ids["p"], "mes": 3, "anio": 2025},
            headers=c.sup,
        )
    )
    body = await ok(
        await c.client.get(
            PROD_GRID, params={"id_ot": ids["p"], "mes": 3, "anio": 2025}, headers=c.res
        )
    )
    row = {r["codigo"]: r for r in body["partidas"]}["C-3.4.2"]
    assert (row["dia1"]["es_excedente"], row["dia2"]["es_excedente"]) == (False, True)
    assert row["estatus_gpu"] == "BLOQUEADO"


async def test_reads_run_a_fixed_number_of_queries(c: Ctx) -> None:
    """No N+1: the same statement count for 1 and for 40 lines / OTs. Counted on the use
    case's own connection (the relay and consumers share the engine)."""

    async def statements_of(path: str, params: dict[str, Any]) -> int:
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        async with c.app.state.sessionmaker() as s:
            conn = (await s.connection()).sync_connection
            assert conn is not None
            event.listen(conn, "before_cursor_execute", count)
            if path == PROD_GRID:
                res = await queries.partidas_produccion(s, **params, tipo_tiempo="TE")
                assert res.partidas
            else:
                assert await queries.ots_por_sitio(s, **params)
        return len(statements)

    ids = await _production_family(c)
    prod_params = {"id_ot": ids["p"], "mes": 3, "anio": 2025}
    await _put(c, ids["line_p"], "2025-03-02", "1")
    few = await statements_of(PROD_GRID, prod_params)
    site_few = await statements_of(SITE_GRID, {"id_sitio": 7, "mes": 3, "anio": 2025})
    partidas = [
        {"id_partida": f"X-{i}", "anexo": "C-2", "volumen_proyectado": "10"} for i in range(40)
    ]
    imp = await ok(
        await c.client.post(
            f"/ots/{ids['p']}/importaciones", json={"partidas": partidas}, headers=c.sup
        ),
        201,
    )
    body = {
        "id_ot": ids["p"],
        "mes": 3,
        "anio": 2025,
        "partidas": [{"id_partida_imp": p["id"], "valores": ["1"] * 5} for p in imp["partidas"]],
    }
    await ok(await c.client.post("/produccion/masiva", json=body, headers=c.res))
    for i in range(40):
        oid = await c.ot(
            f"S-{i}", id_frente=2, id_embarcacion=7, fecha_inicio_programado="2025-03-01"
        )
        await ok(await c.save(c.res, (oid, ["Operativo"] * 3)))
    many = await statements_of(PROD_GRID, prod_params)
    assert many == few <= 4
    assert await statements_of(SITE_GRID, {"id_sitio": 7, "mes": 3, "anio": 2025}) == site_few <= 2
    assert len(await c.site_grid()) == 43


# ------------------------------------------------------------------------------------------


@pytest.mark.integration
async def test_daily_endpoints_on_postgres(pg_database: str) -> None:
    """The dialect-specific parts on PostgreSQL: the reports' INSERT … ON CONFLICT DO NOTHING
    with many rows, the UNION of production and plan (typed dates / numerics), the correlated
    reprogramación end."""
    settings = EvidenceSettings(env="test", database_url=pg_database, transport="memory")
    async for c in make_ctx(settings):
        await seed_sites(c)
        a, b = c.ids["A"], c.ids["B"]
        r = await ok(await c.save(c.sup, (a, ["Operativo", "Cerrado"]), (b, ["Operativo"])))
        assert r["guardados"] == 3
        r = await ok(await c.save(c.sup, (a, ["", "Cerrado"]), (b, ["Operativo", "Operativo"])))
        assert (r["guardados"], r["eliminados"]) == (1, 1)
        grid = await c.site_grid()
        assert sorted(grid) == sorted([a, b, c.ids["D"]])
        assert grid[c.ids["D"]]["fin_v"] == "2025-03-10"
        assert [grid[a]["dia1"], grid[a]["dia2"], grid[b]["dia2"]] == [None, "Cerrado", "Operativo"]
        ids = await _production_family(c)
        await _put(c, ids["line_p"], "2025-03-02", "8")
        await _put(c, ids["line_r1"], "2025-03-02", "1.5")
        body = await ok(
            await c.client.get(
                PROD_GRID, params={"id_ot": ids["p"], "mes": 3, "anio": 2025}, headers=c.rev
            )
        )
        row = {r["codigo"]: r for r in body["partidas"]}["C-2.1.1"]
        assert row["dia2"]["valor"] == "9.500000"
        closed = await ok(
            await c.client.get(
                PROD_GRID, params={"id_ot": a, "mes": 3, "anio": 2025}, headers=c.rev
            )
        )
        assert closed["dias_bloqueados"] == [2]
