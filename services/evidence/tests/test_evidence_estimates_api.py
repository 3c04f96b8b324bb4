"""The estimate lifecycle through the API (issue 15 item 8): list, remove a line, submit,
approve, cancel; cancelling (or removing a line) is the documented way to unlock a billed GPU,
audited in its history. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nexo_testing import ok, problem
from services.evidence.tests.test_evidence_api import Ctx, make_ctx, seed


@pytest.fixture
async def c(tmp_path: Path, database_url: str) -> AsyncIterator[Ctx]:
    async for ctx in make_ctx(tmp_path, database_url=database_url):
        await seed(ctx)
        yield ctx


async def estimate(c: Ctx, *productions: int) -> dict[str, Any]:
    body = {
        "id_ot": c.ids["ot"],
        "fecha_desde": "2025-03-01",
        "fecha_hasta": "2025-03-31",
        "detalles": [{"id_produccion": p} for p in productions],
    }
    out: dict[str, Any] = await ok(
        await c.client.post("/estimaciones", json=body, headers=c.fac), 201
    )
    return out


async def history(c: Ctx, gid: int) -> list[tuple[str, str | None, str | None]]:
    data = (await ok(await c.client.get(f"/gpus/{gid}/historial", headers=c.sup)))["data"]
    return [(h["accion"], h["regla"], h["motivo"]) for h in data]


@pytest.mark.spec("G8")
async def test_estimate_goes_from_draft_to_approved_and_lists_by_status(c: Ctx) -> None:
    p1, _ = await c.validated()
    est = await estimate(c, p1)
    base = f"/estimaciones/{est['id']}"
    problem(
        await c.client.post(f"{base}/aprobar", headers=c.fac), 409, "ESTIMACION_ESTATUS_INVALIDO"
    )
    assert (await c.client.post(f"{base}/enviar", headers=c.res)).status_code == 403
    sent = await ok(await c.client.post(f"{base}/enviar", headers=c.fac))
    assert sent["estatus_cobro"] == "ENVIADA"
    line = sent["detalles"][0]["id"]
    problem(await c.client.delete(f"{base}/detalles/{line}", headers=c.fac), 409,
            "ESTIMACION_ESTATUS_INVALIDO")  # fmt: skip
    approved = await ok(await c.client.post(f"{base}/aprobar", headers=c.fac))
    assert approved["estatus_cobro"] == "APROBADA"
    listed = await ok(await c.client.get("/estimaciones?estatus_cobro=APROBADA", headers=c.sup))
    assert [(e["id"], e["total_importe_mn"]) for e in listed["data"]] == [(est["id"], "9876.54")]
    none = await ok(await c.client.get("/estimaciones?estatus_cobro=BORRADOR", headers=c.sup))
    assert none["data"] == []


async def test_an_empty_draft_cannot_be_submitted(c: Ctx) -> None:
    est = await estimate(c)
    r = await c.client.post(f"/estimaciones/{est['id']}/enviar", headers=c.fac)
    problem(r, 422, "ESTIMACION_VACIA")


@pytest.mark.spec("G8")
async def test_removing_a_draft_line_unlocks_its_gpu(c: Ctx) -> None:
    p1, g1 = await c.validated()
    p2, g2 = await c.validated("C-2.1.1", "2025-03-03")
    est = await estimate(c, p1, p2)
    line = next(x["id"] for x in est["detalles"] if x["id_produccion"] == p1)
    out = await ok(
        await c.client.delete(f"/estimaciones/{est['id']}/detalles/{line}", headers=c.fac)
    )
    assert [x["id_produccion"] for x in out["detalles"]] == [p2]
    assert out["total_importe_mn"] == "9876.54"
    assert (await ok(await c.client.get(f"/gpus/{g1}", headers=c.sup)))["facturado"] is False
    assert (await ok(await c.client.get(f"/gpus/{g2}", headers=c.sup)))["facturado"] is True
    assert (await history(c, g1))[-1] == ("DESFACTURADO", "G8", "LINEA_QUITADA")
    problem(await c.client.delete(f"/estimaciones/{est['id']}/detalles/{line}", headers=c.fac),
            404, "DETALLE_NO_ENCONTRADO")  # fmt: skip


@pytest.mark.spec("G8")
async def test_cancelling_an_approved_estimate_unlocks_its_gpus_for_a_new_estimate(c: Ctx) -> None:
    p1, g1 = await c.validated()
    est = await estimate(c, p1)
    base = f"/estimaciones/{est['id']}"
    await ok(await c.client.post(f"{base}/enviar", headers=c.fac))
    await ok(await c.client.post(f"{base}/aprobar", headers=c.fac))
    problem(await c.tr(g1, c.sup, "EN_REVISION", nota="reabrir"), 409, "GPU_FACTURADO")
    r = await c.client.post(f"{base}/cancelar", json={"motivo": " "}, headers=c.fac)
    problem(r, 422, "NOTA_REQUERIDA", "motivo")
    body = {"motivo": "Nota de crédito NC-12"}
    cancelled = await ok(await c.client.post(f"{base}/cancelar", json=body, headers=c.fac))
    assert cancelled["estatus_cobro"] == "CANCELADA"
    assert cancelled["detalles"] == []  # the productions are billable again
    assert cancelled["total_importe_mn"] == "9876.54"  # the header keeps what was billed
    problem(await c.client.post(f"{base}/cancelar", json=body, headers=c.fac), 409,
            "ESTIMACION_ESTATUS_INVALIDO")  # fmt: skip
    gpu = await ok(await c.client.get(f"/gpus/{g1}", headers=c.sup))
    assert (gpu["facturado"], gpu["estatus"]) == (False, "VALIDADO")
    assert (await history(c, g1))[-1] == ("DESFACTURADO", "G8", "ESTIMACION_CANCELADA")
    again = await estimate(c, p1)  # billable again
    assert (await ok(await c.client.get(f"/gpus/{g1}", headers=c.sup)))[
        "id_estimacion_detalle"
    ] == (again["detalles"][0]["id"])
