"""Search (issue 15 item 11) through the API on SQLite and PostgreSQL: the cross-OT GPU search
(delivered or not, frente, site, client, OT, production dates, status; paginated) and the OT
list/search (text, client, active flag, period). Each filter is checked on a dataset in which
it excludes something the others keep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nexo_testing import ok, problem
from services.evidence.tests.test_evidence_api import LINK, Ctx, make_ctx

C2 = {"id_partida": "C-2.1.1", "anexo": "C-2", "unidad": "JOR", "volumen_proyectado": "100"}


async def new_ot(c: Ctx, folio: str, **fields: Any) -> int:
    ot = await ok(
        await c.client.post("/ots", json={"orden_trabajo": folio, **fields}, headers=c.sup), 201
    )
    return int(ot["id"])


async def c2_line(c: Ctx, id_ot: int) -> int:
    imp = await ok(
        await c.client.post(f"/ots/{id_ot}/importaciones", json={"partidas": [C2]}, headers=c.sup),
        201,
    )
    return int(imp["partidas"][0]["id"])


async def gpu_for(c: Ctx, id_partida: int, fecha: str, *, link: bool = False) -> int:
    body = {"id_partida_anexo": id_partida, "fecha": fecha, "tipo_tiempo": "TE", "volumen": "8"}
    prod = await ok(await c.client.put("/producciones", json=body, headers=c.res))
    gid = await c.wait_gpu(prod["id"])
    assert gid is not None
    if link:
        await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))
    return gid


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Ctx, dict[str, int]]]:
    """OT A: frente 2 (embarcación 7), client 100, GPUs on 03-02 (link) and 03-03 (none);
    OT B: frente 4 (plataforma 8), client 200, a GPU on 04-10 (none);
    OT C: frente 1 (patio 7), client 300, a GPU on 03-05 (link)."""
    async for c in make_ctx(tmp_path, database_url=database_url):
        a = await new_ot(c, "OTE-A", id_frente=2, id_embarcacion=7, id_cliente=100)
        b = await new_ot(c, "OTE-B", id_frente=4, id_plataforma=8, id_cliente=200)
        cc = await new_ot(c, "OTE-C", id_frente=1, id_patio=7, id_cliente=300)
        la, lb, lc = [await c2_line(c, o) for o in (a, b, cc)]
        ids = {
            "a": a,
            "b": b,
            "c": cc,
            "a1": await gpu_for(c, la, "2025-03-02", link=True),
            "a2": await gpu_for(c, la, "2025-03-03"),
            "b1": await gpu_for(c, lb, "2025-04-10"),
            "c1": await gpu_for(c, lc, "2025-03-05", link=True),
        }
        yield c, ids


async def search(c: Ctx, query: str) -> list[int]:
    out = await ok(await c.client.get(f"/gpus/busqueda?{query}", headers=c.rev))
    assert out["total"] == len(out["data"])
    return [row["id_gpu"] for row in out["data"]]


@pytest.mark.spec("C.2.2")
async def test_gpu_search_filters_each_exclude_what_they_should(
    world: tuple[Ctx, dict[str, int]],
) -> None:
    c, g = world
    everything = [g["b1"], g["c1"], g["a2"], g["a1"]]  # newest production first
    assert await search(c, "") == everything
    assert await search(c, "entregado=true") == [g["c1"], g["a1"]]
    assert await search(c, "entregado=false") == [g["b1"], g["a2"]]
    assert await search(c, "id_frente=2") == [g["a2"], g["a1"]]
    # site 7 is A's embarcación (frente 2) and C's patio (frente 1), not B's plataforma 8
    assert await search(c, "id_sitio=7") == [g["c1"], g["a2"], g["a1"]]
    assert await search(c, "id_sitio=8") == [g["b1"]]
    assert await search(c, "id_cliente=300") == [g["c1"]]
    assert await search(c, f"id_ot={g['b']}") == [g["b1"]]
    assert await search(c, "desde=2025-03-03&hasta=2025-03-31") == [g["c1"], g["a2"]]
    assert await search(c, "estatus=CARGADO") == [g["c1"], g["a1"]]
    assert await search(c, "estatus=pendiente&id_cliente=100") == [g["a2"]]
    assert await search(c, "entregado=false&id_sitio=7&desde=2025-03-01") == [g["a2"]]


async def test_gpu_search_rows_carry_the_ot_site_and_delivery(
    world: tuple[Ctx, dict[str, int]],
) -> None:
    c, g = world
    out = await ok(await c.client.get("/gpus/busqueda?id_ot=" + str(g["c"]), headers=c.sup))
    [row] = out["data"]
    assert row["id_gpu"] == g["c1"]
    assert (row["orden_trabajo"], row["id_cliente"], row["id_frente"], row["id_sitio"]) == (
        "OTE-C",
        300,
        1,
        7,
    )
    assert (row["fecha"], row["codigo"], row["anexo"], row["volumen"]) == (
        "2025-03-05",
        "C-2.1.1",
        "C-2",
        "8.000000",
    )
    assert (row["estatus"], row["estatus_id"], row["archivo"], row["entregado"]) == (
        "CARGADO",
        20,
        LINK,
        True,
    )
    assert row["facturado"] is False


async def test_gpu_search_pages_are_bounded_and_count_every_match(
    world: tuple[Ctx, dict[str, int]],
) -> None:
    c, g = world
    first = await ok(await c.client.get("/gpus/busqueda?limit=3", headers=c.rev))
    rest = await ok(await c.client.get("/gpus/busqueda?limit=3&offset=3", headers=c.rev))
    assert (first["total"], rest["total"]) == (4, 4)
    assert [r["id_gpu"] for r in first["data"] + rest["data"]] == [
        g["b1"],
        g["c1"],
        g["a2"],
        g["a1"],
    ]
    assert (await c.client.get("/gpus/busqueda?limit=201", headers=c.rev)).status_code == 422
    problem(
        await c.client.get("/gpus/busqueda?desde=2025-04-01&hasta=2025-03-01", headers=c.rev),
        422,
        "PERIODO_INVALIDO",
        "desde",
    )
    problem(
        await c.client.get("/gpus/busqueda?estatus=ENTREGADO", headers=c.rev),
        422,
        "ESTATUS_NO_GPU",
        "estatus",
    )
    assert (await c.client.get("/gpus/busqueda")).status_code == 401


# --- OT list / search ---------------------------------------------------------------------


@pytest.fixture
async def c(tmp_path: Path, database_url: str) -> AsyncIterator[Ctx]:
    async for ctx in make_ctx(tmp_path, database_url=database_url):
        yield ctx


async def ot_folios(c: Ctx, query: str) -> list[str]:
    out = await ok(await c.client.get(f"/ots?{query}", headers=c.res))
    assert out["total"] == len(out["data"])
    return [o["orden_trabajo"] for o in out["data"]]


@pytest.mark.spec("C.2.2")
async def test_ot_list_filters_text_client_active_flag_and_period(c: Ctx) -> None:
    a = await new_ot(
        c,
        "OTE-A",
        id_cliente=100,
        fecha_inicio_programado="2025-03-01",
        fecha_termino_programado="2025-03-31",
    )
    await new_ot(
        c,
        "OTE-B",
        id_cliente=200,
        fecha_inicio_programado="2025-04-01",
        fecha_termino_programado="2025-04-30",
    )
    await new_ot(c, "OTE-C", descripcion_trabajo="Mantenimiento 100% de grúa PLATAFORMA ÑAPA")
    reprog = await ok(
        await c.client.post(
            "/ots",
            json={
                "orden_trabajo": "OTE-A-R1",
                "ot_principal": a,
                "fecha_termino_programado": "2025-05-31",
            },
            headers=c.sup,
        ),
        201,
    )
    assert (reprog["id_tipo"], reprog["num_reprogramacion"], reprog["activo"]) == (5, 1, True)
    b = (await ok(await c.client.get("/ots?q=ote-b", headers=c.res)))["data"][0]
    await ok(await c.client.patch(f"/ots/{b['id']}", json={"activo": False}, headers=c.sup))

    assert await ot_folios(c, "") == ["OTE-A", "OTE-A-R1", "OTE-B", "OTE-C"]
    assert await ot_folios(c, "q=MANTENIMIENTO") == ["OTE-C"]
    # every letter folds, accented ones and ñ included (SQLite's and a C-locale lower() don't)
    assert await ot_folios(c, "q=GRÚA") == ["OTE-C"]
    assert await ot_folios(c, "q=ñapa") == ["OTE-C"]
    assert await ot_folios(c, "q=100%25") == ["OTE-C"]  # % is literal, not a wildcard
    assert await ot_folios(c, "q=%25") == ["OTE-C"]
    assert await ot_folios(c, "q=ote-a") == ["OTE-A", "OTE-A-R1"]
    assert await ot_folios(c, "id_cliente=100") == ["OTE-A"]
    assert await ot_folios(c, "activo=false") == ["OTE-B"]
    assert await ot_folios(c, "activo=true") == ["OTE-A", "OTE-A-R1", "OTE-C"]
    # A's end is extended to 05-31 by its active reprogramación; B ends 04-30; C and the
    # reprogramación itself have no start and are not placed in a period.
    assert await ot_folios(c, "desde=2025-05-01") == ["OTE-A"]
    assert await ot_folios(c, "hasta=2025-03-15") == ["OTE-A"]
    assert await ot_folios(c, "desde=2025-04-15&hasta=2025-04-20") == ["OTE-A", "OTE-B"]
    page = await ok(await c.client.get("/ots?limit=1&offset=1", headers=c.res))
    assert (page["total"], [o["orden_trabajo"] for o in page["data"]]) == (4, ["OTE-A-R1"])
    problem(
        await c.client.get("/ots?desde=2025-05-01&hasta=2025-04-01", headers=c.res),
        422,
        "PERIODO_INVALIDO",
        "desde",
    )
