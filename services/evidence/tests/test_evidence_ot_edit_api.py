"""OT edit and reprogramming through the API (issue 15 item 11), SQLite and PostgreSQL: dates
stay ordered, a period change never leaves captured production of the OT family outside an
OT's period (a reprogramación extends its principal's period), every change is audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nexo_testing import ok, problem
from services.evidence.tests.test_evidence_api import Ctx, make_ctx
from services.evidence.tests.test_evidence_search_api import C2, c2_line

MARCH = {"fecha_inicio_programado": "2025-03-01", "fecha_termino_programado": "2025-03-31"}


@pytest.fixture
async def c(tmp_path: Path, database_url: str) -> AsyncIterator[Ctx]:
    async for ctx in make_ctx(tmp_path, database_url=database_url):
        yield ctx


async def create(c: Ctx, **body: Any) -> dict[str, Any]:
    out: dict[str, Any] = await ok(await c.client.post("/ots", json=body, headers=c.sup), 201)
    return out


async def patch(c: Ctx, id_ot: int, **body: Any) -> Any:
    return await c.client.patch(f"/ots/{id_ot}", json=body, headers=c.sup)


async def history(c: Ctx, id_ot: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = (
        await ok(await c.client.get(f"/ots/{id_ot}/historial", headers=c.rev))
    )["data"]
    return out


async def produce(c: Ctx, id_partida: int, fecha: str) -> None:
    body = {"id_partida_anexo": id_partida, "fecha": fecha, "tipo_tiempo": "TE", "volumen": "8"}
    await ok(await c.client.put("/producciones", json=body, headers=c.res))


@pytest.mark.spec("C.2.2")
async def test_editing_ot_dates_is_audited_and_a_noop_is_not(c: Ctx) -> None:
    ot = await create(c, orden_trabajo="OTE-E", **MARCH)
    out = await ok(
        await patch(
            c,
            ot["id"],
            fecha_termino_programado="2025-04-15",
            fecha_inicio_real="2025-03-03",
            id_cliente=77,
            motivo="Ampliación de alcance",
        )
    )
    assert (out["fecha_termino_programado"], out["fecha_inicio_real"], out["id_cliente"]) == (
        "2025-04-15",
        "2025-03-03",
        77,
    )
    assert (await ok(await c.client.get(f"/ots/{ot['id']}", headers=c.rev)))["id_cliente"] == 77
    [h] = await history(c, ot["id"])
    assert h["cambios"] == {
        "fecha_termino_programado": ["2025-03-31", "2025-04-15"],
        "fecha_inicio_real": [None, "2025-03-03"],
        "id_cliente": [None, 77],
    }
    assert (h["usuario"], h["motivo"]) == ("sam", "Ampliación de alcance")
    await ok(await patch(c, ot["id"], fecha_termino_programado="2025-04-15", id_cliente=77))
    assert len(await history(c, ot["id"])) == 1  # nothing changed, nothing audited
    await ok(await patch(c, ot["id"], fecha_inicio_real=None))  # null clears a date
    assert (await history(c, ot["id"]))[-1]["cambios"] == {
        "fecha_inicio_real": ["2025-03-03", None]
    }


async def test_an_end_before_its_start_is_refused(c: Ctx) -> None:
    ot = await create(c, orden_trabajo="OTE-E", **MARCH)
    problem(
        await patch(c, ot["id"], fecha_termino_programado="2025-02-28"),
        422,
        "PERIODO_INVALIDO",
        "fecha_termino_programado",
    )
    problem(
        await patch(c, ot["id"], fecha_inicio_real="2025-03-10", fecha_termino_real="2025-03-09"),
        422,
        "PERIODO_INVALIDO",
        "fecha_termino_real",
    )
    bad = {"orden_trabajo": "OTE-F", "fecha_inicio_programado": "2025-03-10",
           "fecha_termino_programado": "2025-03-01"}  # fmt: skip
    problem(
        await c.client.post("/ots", json=bad, headers=c.sup),
        422,
        "PERIODO_INVALIDO",
        "fecha_termino_programado",
    )
    assert await history(c, ot["id"]) == []


async def test_only_a_supervisor_edits_an_ot(c: Ctx) -> None:
    ot = await create(c, orden_trabajo="OTE-E", **MARCH)
    body = {"fecha_termino_programado": "2025-04-30"}
    for who in (c.res, c.rev, c.fac):
        assert (await c.client.patch(f"/ots/{ot['id']}", json=body, headers=who)).status_code == 403
    problem(await patch(c, 999_999, **body), 404, "OT_NO_ENCONTRADA")
    assert (await patch(c, ot["id"], orden_trabajo="OTE-X")).status_code == 422  # not editable


@pytest.mark.spec("C.2.2")
async def test_reprogramming_never_leaves_production_outside_the_period(c: Ctx) -> None:
    principal = await create(c, orden_trabajo="OTE-P", **MARCH)
    line = await c2_line(c, principal["id"])
    await produce(c, line, "2025-03-05")
    await produce(c, line, "2025-03-20")

    refused = await patch(c, principal["id"], fecha_termino_programado="2025-03-15")
    body = problem(refused, 409, "OT_PRODUCCION_FUERA_DE_PERIODO", "fecha_termino_programado")
    assert (body["primera_produccion"], body["ultima_produccion"]) == ("2025-03-05", "2025-03-20")
    problem(
        await patch(c, principal["id"], fecha_inicio_programado="2025-03-10"),
        409,
        "OT_PRODUCCION_FUERA_DE_PERIODO",
        "fecha_inicio_programado",
    )
    assert await history(c, principal["id"]) == []  # refused edits change nothing

    # A reprogramación extends the principal's period: its own end may now move back.
    r1 = await create(
        c, orden_trabajo="OTE-P-R1", ot_principal=principal["id"],
        fecha_termino_programado="2025-04-30",
    )  # fmt: skip
    r2 = await create(c, orden_trabajo="OTE-P-R2", ot_principal=r1["id"])
    assert (r1["id_tipo"], r1["ot_principal"], r1["num_reprogramacion"]) == (
        5,
        principal["id"],
        1,
    )
    assert (r2["ot_principal"], r2["num_reprogramacion"]) == (principal["id"], 2)
    await ok(await patch(c, principal["id"], fecha_termino_programado="2025-03-15"))

    # ... and neither deactivating it nor pulling its end in may strand that production.
    problem(
        await patch(c, r1["id"], activo=False),
        409,
        "OT_PRODUCCION_FUERA_DE_PERIODO",
        "fecha_termino_programado",
    )
    problem(
        await patch(c, r1["id"], fecha_termino_programado="2025-03-18"),
        409,
        "OT_PRODUCCION_FUERA_DE_PERIODO",
    )
    await ok(await patch(c, r1["id"], fecha_termino_programado="2025-03-20"))  # still covered
    # an OT without production may be moved freely
    await ok(await patch(c, r2["id"], fecha_inicio_programado="2026-01-01"))
    assert [list(h["cambios"]) for h in await history(c, principal["id"])] == [
        ["fecha_termino_programado"]
    ]


async def test_a_volume_set_to_zero_no_longer_binds_the_period(c: Ctx) -> None:
    ot = await create(c, orden_trabajo="OTE-Z", **MARCH)
    imp = await ok(
        await c.client.post(
            f"/ots/{ot['id']}/importaciones",
            json={"partidas": [{**C2, "anexo": "C-1"}]},
            headers=c.sup,
        ),
        201,
    )
    line = imp["partidas"][0]["id"]
    await produce(c, line, "2025-03-25")
    problem(
        await patch(c, ot["id"], fecha_termino_programado="2025-03-20"),
        409,
        "OT_PRODUCCION_FUERA_DE_PERIODO",
    )
    body = {"id_partida_anexo": line, "fecha": "2025-03-25", "tipo_tiempo": "TE", "volumen": "0"}
    await ok(await c.client.put("/producciones", json=body, headers=c.res))
    await ok(await patch(c, ot["id"], fecha_termino_programado="2025-03-20"))
