"""Resolving G10 conflicts through the API (issue 15 item 10): a supervisor keeps a GPU with a
justification or annuls it; deactivating an import with GPUs in review opens conflicts that
close by themselves when the import is active again. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contracts.events.evidence import GpuStatusChanged
from evidence.models import PartidaAnexo, outbox
from nexo_testing import ok, problem, until
from services.evidence.tests.test_evidence_api import LINK, Ctx, make_ctx, seed


@pytest.fixture
async def c(tmp_path: Path, database_url: str) -> AsyncIterator[Ctx]:
    async for ctx in make_ctx(tmp_path, database_url=database_url):
        await seed(ctx)
        yield ctx


async def events(c: Ctx, id_gpu: int) -> list[GpuStatusChanged]:
    async with c.app.state.sessionmaker() as s:
        rows = (
            await s.execute(
                select(outbox.c.payload)
                .where(outbox.c.type == GpuStatusChanged.ce_type())
                .order_by(outbox.c.seq)
            )
        ).all()
    found = [GpuStatusChanged.model_validate(p) for (p,) in rows]
    return [e for e in found if e.id_registro_gpu == id_gpu]


async def open_conflicts(c: Ctx) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (
        await ok(await c.client.get("/gpus/conflictos?resuelto=false", headers=c.sup))
    )["data"]
    return data


async def wait_open(c: Ctx, count: int) -> list[dict[str, Any]]:
    async def cond() -> bool:
        return len(await open_conflicts(c)) == count

    await until(cond)
    return await open_conflicts(c)


async def conflict_in_review(c: Ctx) -> tuple[int, int]:
    """A GPU taken into review, then its production set to 0 → one open conflict."""
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    assert gid is not None
    await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))
    await ok(await c.tr(gid, c.rev, "EN_REVISION"))
    problem(
        await c.client.patch(f"/producciones/{prod['id']}", json={"volumen": "0"}, headers=c.res),
        409,
        "GPU_EN_PROCESO",
    )
    imp = await c.scalar(
        select(PartidaAnexo.id_importacion_anexo).where(PartidaAnexo.id == c.ids["C-2.1.1"])
    )
    await ok(
        await c.client.patch(f"/importaciones/{imp}", json={"es_activo": False}, headers=c.sup)
    )
    [conflict] = await wait_open(c, 1)
    assert (conflict["id_gpu"], conflict["motivo"], conflict["estatus_gpu"]) == (
        gid,
        "IMPORTACION_INACTIVA",
        "EN_REVISION",
    )
    return conflict["id"], gid


@pytest.mark.spec("G10")
async def test_supervisor_keeps_a_conflicted_gpu_with_a_justification(c: Ctx) -> None:
    cid, gid = await conflict_in_review(c)
    url = f"/gpus/conflictos/{cid}/resolucion"
    body = {"decision": "CONSERVAR", "justificacion": "Trabajo ejecutado; se factura aparte"}
    assert (await c.client.post(url, json=body, headers=c.rev)).status_code == 403
    blank = await c.client.post(url, json={**body, "justificacion": "  "}, headers=c.sup)
    problem(blank, 422, "NOTA_REQUERIDA", "justificacion")
    problem(await c.client.post("/gpus/conflictos/9999/resolucion", json=body, headers=c.sup),
            404, "CONFLICTO_NO_ENCONTRADO")  # fmt: skip

    out = await ok(await c.client.post(url, json=body, headers=c.sup))
    assert (out["resuelto"], out["resolucion"], out["resuelto_por"]) == (True, "CONSERVAR", "sam")
    assert out["justificacion"] == body["justificacion"]
    assert out["fecha_resolucion"] is not None
    assert await open_conflicts(c) == []
    problem(await c.client.post(url, json=body, headers=c.sup), 409, "CONFLICTO_RESUELTO")

    gpu = await ok(await c.client.get(f"/gpus/{gid}", headers=c.sup))
    assert gpu["estatus"] == "EN_REVISION"
    hist = (await ok(await c.client.get(f"/gpus/{gid}/historial", headers=c.sup)))["data"]
    last = [h for h in hist if h["accion"] == "CONFLICTO_RESUELTO"]
    assert [(h["regla"], h["usuario"], h["nota"], h["motivo"]) for h in last] == [
        ("G10", "sam", body["justificacion"], "CONSERVAR")
    ]
    published = [e for e in await events(c, gid) if e.reason_code == "CONFLICTO_CONSERVADO"]
    assert [(e.change, e.to_status, e.changed_by) for e in published] == [
        ("conflict", "EN_REVISION", "sam")
    ]


@pytest.mark.spec("G10")
async def test_annulling_a_conflict_removes_the_gpu_and_keeps_its_history(c: Ctx) -> None:
    cid, gid = await conflict_in_review(c)
    out = await ok(
        await c.client.post(
            f"/gpus/conflictos/{cid}/resolucion",
            json={"decision": "ANULAR", "justificacion": "Partida cancelada por el cliente"},
            headers=c.sup,
        )
    )
    assert (out["resuelto"], out["resolucion"]) == (True, "ANULAR")
    problem(await c.client.get(f"/gpus/{gid}", headers=c.sup), 404, "GPU_NO_ENCONTRADO")
    hist = (await ok(await c.client.get(f"/gpus/{gid}/historial", headers=c.sup)))["data"]
    assert [(h["accion"], h["regla"], h["de_estatus"], h["a_estatus"], h["motivo"]) for h in
            hist][-1] == ("ELIMINADO", "G10", "EN_REVISION", None, "CONFLICTO_ANULADO")  # fmt: skip
    [deleted] = [e for e in await events(c, gid) if e.change == "deleted"]
    assert (deleted.from_status, deleted.reason_code, deleted.reason_text) == (
        "EN_REVISION",
        "CONFLICTO_ANULADO",
        "Partida cancelada por el cliente",
    )


@pytest.mark.spec("G10")
async def test_reactivating_the_import_closes_its_open_conflicts(c: Ctx) -> None:
    _, gid = await conflict_in_review(c)
    imp = await c.scalar(
        select(PartidaAnexo.id_importacion_anexo).where(PartidaAnexo.id == c.ids["C-2.1.1"])
    )
    await ok(await c.client.patch(f"/importaciones/{imp}", json={"es_activo": True}, headers=c.sup))
    await wait_open(c, 0)
    [closed] = (await ok(await c.client.get("/gpus/conflictos", headers=c.sup)))["data"]
    assert (closed["resuelto"], closed["resolucion"], closed["resuelto_por"]) == (
        True,
        "AUTOMATICA",
        "system",
    )
    gpu = await ok(await c.client.get(f"/gpus/{gid}", headers=c.sup))
    assert gpu["estatus"] == "EN_REVISION"
    hist = (await ok(await c.client.get(f"/gpus/{gid}/historial", headers=c.sup)))["data"]
    assert ("CONFLICTO_RESUELTO", "AUTOMATICA") in [(h["accion"], h["motivo"]) for h in hist]
    assert "CONFLICTO_CERRADO" in [e.reason_code for e in await events(c, gid)]


@pytest.mark.spec("G10")
async def test_a_billed_gpu_in_conflict_is_kept_but_not_annulled(c: Ctx) -> None:
    p789, gid = await c.validated()
    await ok(
        await c.client.post(
            "/estimaciones",
            json={
                "id_ot": c.ids["ot"],
                "fecha_desde": "2025-03-01",
                "fecha_hasta": "2025-03-31",
                "detalles": [{"id_produccion": p789}],
            },
            headers=c.fac,
        ),
        201,
    )
    imp = await c.scalar(
        select(PartidaAnexo.id_importacion_anexo).where(PartidaAnexo.id == c.ids["C-2.1.1"])
    )
    await ok(
        await c.client.patch(f"/importaciones/{imp}", json={"es_activo": False}, headers=c.sup)
    )
    [conflict] = await wait_open(c, 1)
    assert (conflict["id_gpu"], conflict["facturado"]) == (gid, True)
    url = f"/gpus/conflictos/{conflict['id']}/resolucion"
    annul = {"decision": "ANULAR", "justificacion": "no aplica"}
    problem(await c.client.post(url, json=annul, headers=c.sup), 409, "GPU_FACTURADO")
    keep = {"decision": "CONSERVAR", "justificacion": "Ya facturado"}
    assert (await ok(await c.client.post(url, json=keep, headers=c.sup)))["resuelto"] is True
    assert (await ok(await c.client.get(f"/gpus/{gid}", headers=c.sup)))["facturado"] is True
