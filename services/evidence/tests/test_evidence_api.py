"""DOMAIN Part C acceptance examples (GP-E01..E10) and the GP-D* fixes through the HTTP API:
`create_app(settings)` + lifespan, SQLite file, in-memory transport; the asynchronous GPU
creation is polled with a deadline (never a fixed sleep). The daily-report endpoints and their
fixes (GP-D02 separate daily catalogue, GP-D14 auth + deletes) are in test_evidence_daily_api.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from evidence.main import create_app
from evidence.models import PartidaAnexo, Produccion, RegistroGpu, outbox
from evidence.settings import EvidenceSettings
from nexo_testing import app_client, bearer, ok, problem, sqlite_url, until

LINK = "https://drive.google.com/drive/folders/abc123"


@dataclass
class Ctx:
    client: httpx.AsyncClient
    app: FastAPI
    settings: EvidenceSettings
    res: dict[str, str]
    rev: dict[str, str]
    rev2: dict[str, str]
    sup: dict[str, str]
    fac: dict[str, str]
    ids: dict[str, int] = field(default_factory=dict)

    async def scalar(self, stmt: Any) -> Any:
        async with self.app.state.sessionmaker() as s:
            return await s.scalar(stmt)

    async def put(self, partida: str, fecha: str, vol: str, tipo: str = "TE") -> dict[str, Any]:
        body = {
            "id_partida_anexo": self.ids[partida],
            "fecha": fecha,
            "tipo_tiempo": tipo,
            "volumen": vol,
        }
        result: dict[str, Any] = await ok(
            await self.client.put("/producciones", json=body, headers=self.res)
        )
        return result

    async def gpu_id(self, id_produccion: int) -> int | None:
        value = await self.scalar(
            select(RegistroGpu.id).where(RegistroGpu.id_produccion == id_produccion)
        )
        return int(value) if value is not None else None

    async def wait_gpu(self, id_produccion: int, present: bool = True) -> int | None:
        async def cond() -> bool:
            return (await self.gpu_id(id_produccion) is not None) == present

        await until(cond)
        return await self.gpu_id(id_produccion)

    async def settle(self) -> None:
        """Wait until the relay published every outbox row and the consumer applied it."""

        async def cond() -> bool:
            pending = await self.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
            return int(pending) == 0

        await until(cond)

    async def tr(self, gid: int, headers: dict[str, str], a: str, **kw: Any) -> httpx.Response:
        return await self.client.post(
            f"/gpus/{gid}/transiciones", json={"a": a, **kw}, headers=headers
        )

    async def validated(
        self, partida: str = "C-2.1.1", fecha: str = "2025-03-02"
    ) -> tuple[int, int]:
        prod = await self.put(partida, fecha, "8")
        gid = await self.wait_gpu(prod["id"])
        assert gid is not None
        await ok(await self.tr(gid, self.res, "CARGADO", archivo=LINK))
        await ok(await self.tr(gid, self.rev, "EN_REVISION"))
        await ok(await self.tr(gid, self.rev, "VALIDADO"))
        return prod["id"], gid


async def make_ctx(
    tmp_path: Path, env: str = "test", *, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[Ctx]:
    settings = EvidenceSettings(
        env=env,  # type: ignore[arg-type]
        database_url=database_url or sqlite_url(tmp_path, "evidence.db"),
        transport="memory",
        **overrides,
    )
    app = create_app(settings)
    async with app_client(app, "http://evidence", startup_timeout=30) as client:
        yield Ctx(
            client,
            app,
            settings,
            bearer(settings, "ana", "evidence.residente"),
            bearer(settings, "rita", "evidence.revisor"),
            bearer(settings, "raul", "evidence.revisor"),
            bearer(settings, "sam", "evidence.supervisor"),
            bearer(settings, "fede", "evidence.facturacion"),
        )


async def seed(c: Ctx) -> None:
    """DOMAIN §C.7 fixture through the API."""
    ot = await ok(
        await c.client.post("/ots", json={"orden_trabajo": "OTE-2025-001"}, headers=c.sup), 201
    )
    c.ids["ot"] = ot["id"]
    partidas = [
        {
            "id_partida": "C-2.1.1",
            "descripcion": "Técnico especializado",
            "anexo": "C-2",
            "unidad": "JOR",
            "volumen_proyectado": "100",
            "precio_unitario_mn": "1234.5678",
            "precio_unitario_usd": "61.7284",
        },
        {
            "id_partida": "C-3.4.2",
            "descripcion": "Grúa",
            "anexo": "C-3",
            "unidad": "HR",
            "volumen_proyectado": "300",
            "precio_unitario_mn": "100",
        },
        {
            "id_partida": "C-1.1.1",
            "descripcion": "Materiales",
            "anexo": "C-1",
            "unidad": "",
            "volumen_proyectado": "50",
        },
        {
            "id_partida": "C-2.5.5",
            "descripcion": "Anexo sucio",
            "anexo": " c-2 ",
            "unidad": "JOR",
            "volumen_proyectado": "100",
        },
    ]
    imp = await ok(
        await c.client.post(
            f"/ots/{ot['id']}/importaciones", json={"partidas": partidas}, headers=c.sup
        ),
        201,
    )
    for p in imp["partidas"]:
        c.ids[p["codigo"]] = p["id"]
    inactive = await ok(
        await c.client.post(
            f"/ots/{ot['id']}/importaciones",
            json={
                "es_activo": False,
                "partidas": [
                    {
                        "id_partida": "C-2.9.9",
                        "anexo": "C-2",
                        "unidad": "JOR",
                        "volumen_proyectado": "0",
                    }
                ],
            },
            headers=c.sup,
        ),
        201,
    )
    c.ids["C-2.9.9"] = inactive["partidas"][0]["id"]


@pytest.fixture
async def c(tmp_path: Path, database_url: str) -> AsyncIterator[Ctx]:
    async for ctx in make_ctx(tmp_path, database_url=database_url):
        await seed(ctx)
        yield ctx


# ------------------------------------------------------------------------------------------


@pytest.mark.spec("GP-E01")
async def test_eligible_production_creates_a_pending_gpu_shown_in_the_grid(c: Ctx) -> None:
    prod = await c.put("C-2.1.1", "2025-03-02", "8.000000")
    assert prod["volumen"] == "8.000000"
    gid = await c.wait_gpu(prod["id"])
    gpu = await ok(await c.client.get(f"/gpus/{gid}", headers=c.rev))
    assert (gpu["estatus"], gpu["estatus_id"], gpu["archivo"], gpu["facturado"]) == (
        "PENDIENTE",
        19,
        None,
        False,
    )
    hist = await ok(await c.client.get(f"/gpus/{gid}/historial", headers=c.rev))
    assert len(hist["data"]) == 1
    grid = await ok(
        await c.client.get(f"/gpus/grid?id_ot={c.ids['ot']}&mes=3&anio=2025", headers=c.res)
    )
    assert len(grid["data"]) == 1
    row = grid["data"][0]
    assert {k: row[k] for k in ("id_partida_anexo", "codigo", "anexo", "unidad")} == {
        "id_partida_anexo": c.ids["C-2.1.1"],
        "codigo": "C-2.1.1",
        "anexo": "C-2",
        "unidad": "JOR",
    }
    assert row["dia_2"] == [
        {
            "id_produccion": prod["id"],
            "volumen": "8.000000",
            "tipo_tiempo": "TE",
            "estatus_id": 19,
            "estatus_texto": "PENDIENTE",
            "archivos_count": 0,
            "archivo": "",
            "id_gpu": gid,
        }
    ]
    assert all(row[f"dia_{n}"] is None for n in range(1, 32) if n != 2)
    # seed-compatible path answers the same
    legacy = await ok(
        await c.client.get(f"/obtener_grid_gpus?id_ot={c.ids['ot']}&mes=3&anio=2025", headers=c.res)
    )
    assert legacy == grid


@pytest.mark.spec("GP-E02")
async def test_non_eligible_productions_get_no_gpu(c: Ctx) -> None:
    p458 = await c.put("C-1.1.1", "2025-03-02", "5.0")
    zero = await c.put("C-2.1.1", "2025-03-03", "0.0")
    assert zero["id"] is None  # no production row for 0
    p459 = await c.put("C-2.9.9", "2025-03-02", "4")
    dirty = await c.put("C-2.5.5", "2025-03-02", "4")
    assert await c.wait_gpu(dirty["id"]) is not None  # " c-2 " normalised [DECIDE-C1]
    await c.settle()
    assert await c.gpu_id(p458["id"]) is None
    assert await c.gpu_id(p459["id"]) is None  # inactive import (GP-D08)
    grid = await ok(
        await c.client.get(f"/gpus/grid?id_ot={c.ids['ot']}&mes=3&anio=2025", headers=c.res)
    )
    assert [r["codigo"] for r in grid["data"]] == ["C-2.5.5"]


async def test_configured_annex_set_reaches_the_consumer(tmp_path: Path) -> None:
    # The asynchronous GPU sync must use the app's settings, not a process-wide default.
    async for ctx in make_ctx(tmp_path, gpu_annexes=["C-1"]):
        await seed(ctx)
        c1 = await ctx.put("C-1.1.1", "2025-03-02", "5")
        c2 = await ctx.put("C-2.1.1", "2025-03-02", "5")
        assert await ctx.wait_gpu(c1["id"]) is not None
        await ctx.settle()
        assert await ctx.gpu_id(c2["id"]) is None


@pytest.mark.spec("GP-E03")
async def test_upload_review_validate(c: Ctx) -> None:
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    assert gid is not None
    r = await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))
    assert r["fecha_carga"] is not None
    assert r["archivo"] == LINK
    await ok(await c.tr(gid, c.rev, "EN_REVISION"))
    problem(
        await c.tr(gid, c.rev, "VALIDADO", checklist={"placa_visible": True}),
        422,
        "CHECKLIST_INVALIDO",
    )
    r = await ok(await c.tr(gid, c.rev, "VALIDADO", checklist={"hoja_asistencia": True}))
    assert (r["estatus"], r["estatus_id"], r["usuario_revision"]) == ("VALIDADO", 22, "rita")
    assert r["checklist"] == {"hoja_asistencia": True}  # DECIDE-C7
    hist = await ok(await c.client.get(f"/gpus/{gid}/historial", headers=c.rev))
    assert [h["a_estatus"] for h in hist["data"]] == [
        "PENDIENTE",
        "CARGADO",
        "EN_REVISION",
        "VALIDADO",
    ]
    events = await c.scalar(
        select(func.count())
        .select_from(outbox)
        .where(outbox.c.type == "nexo.evidence.GpuStatusChanged.v1")
    )
    assert events == 4


async def test_legacy_save_status_endpoint(c: Ctx) -> None:
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    body = await ok(
        await c.client.post(
            "/guardar_estatus_gpu",
            json={"id_produccion": prod["id"], "estatus_id": 20, "archivo": LINK},
            headers=c.res,
        )
    )
    assert body == {"exito": True, "mensaje": "Registro GPU actualizado correctamente"}
    # legacy-style jump 20 → 22 is not a single transition any more
    r = await c.client.post(
        "/guardar_estatus_gpu",
        json={"id_produccion": prod["id"], "estatus_id": 22, "archivo": LINK},
        headers=c.rev,
    )
    err = problem(r, 409, "TRANSICION_INVALIDA")
    assert err["exito"] is False
    r = await c.client.post(
        "/guardar_estatus_gpu", json={"estatus_id": 20, "archivo": LINK}, headers=c.res
    )
    assert problem(r, 404, "PRODUCCION_NO_ENCONTRADA")["field"] == "id_produccion"  # GP-D04
    r = await c.client.post(
        "/guardar_estatus_gpu",
        json={"id_produccion": 999999, "estatus_id": 21},
        headers=c.rev,
    )
    problem(r, 404, "PRODUCCION_NO_ENCONTRADA")
    gpu = await ok(await c.client.get(f"/gpus/{gid}", headers=c.rev))
    assert gpu["archivo"] == LINK  # never overwritten with NULL (GP-D03)


@pytest.mark.spec("GP-E04")
async def test_rejection_and_resubmission(c: Ctx) -> None:
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    assert gid is not None
    await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))
    await ok(await c.tr(gid, c.rev, "EN_REVISION"))
    body = problem(await c.tr(gid, c.rev, "RECHAZADO"), 422, "NOTA_REQUERIDA")
    assert body["errors"][0]["field"] == "nota"
    nota = "Falta hoja de asistencia del 02/03"
    r = await ok(await c.tr(gid, c.rev, "RECHAZADO", nota=nota, motivo="FALTA_ASISTENCIA"))
    assert (r["estatus_id"], r["nota_bloqueo"]) == (23, nota)
    await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK + "?v=2"))
    await ok(await c.tr(gid, c.rev, "EN_REVISION"))
    await ok(await c.tr(gid, c.rev, "VALIDADO"))
    hist = await ok(await c.client.get(f"/gpus/{gid}/historial", headers=c.rev))
    assert nota in [h["nota"] for h in hist["data"]]


@pytest.mark.spec("GP-E05")
async def test_invalid_transitions_and_authorisation(c: Ctx) -> None:
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    assert gid is not None
    problem(await c.tr(gid, c.rev, "VALIDADO"), 409, "TRANSICION_INVALIDA")
    problem(await c.tr(gid, c.res, "CARGADO"), 422, "ARCHIVO_REQUERIDO")
    problem(await c.tr(gid, c.res, "CARGADO", archivo=""), 422, "ARCHIVO_REQUERIDO")
    bad = problem(
        await c.tr(gid, c.res, "CARGADO", archivo="http://drive.google.com/x"), 422, "URL_INVALIDA"
    )
    assert bad["field"] == "archivo"
    problem(
        await c.tr(gid, c.res, "CARGADO", archivo="https://evil.example.com/x"),
        422,
        "URL_INVALIDA",
    )
    await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))
    await ok(await c.tr(gid, c.rev, "EN_REVISION"))
    problem(await c.tr(gid, c.res, "VALIDADO"), 403, "ROL_NO_AUTORIZADO")
    r = await c.client.post(
        "/guardar_estatus_gpu",
        json={"id_produccion": prod["id"], "estatus_id": 17},
        headers=c.rev,
    )
    problem(r, 422, "ESTATUS_NO_GPU")
    # a billing user cannot call the workflow at all
    r = await c.tr(gid, c.fac, "VALIDADO")
    assert r.status_code == 403
    # no token
    r = await c.client.post(f"/gpus/{gid}/transiciones", json={"a": "VALIDADO"})
    assert r.status_code == 401


async def test_reviewer_is_not_uploader(c: Ctx) -> None:
    both = bearer(c.settings, "mixta", "evidence.residente", "evidence.revisor")
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    assert gid is not None
    await ok(await c.tr(gid, both, "CARGADO", archivo=LINK))
    problem(await c.tr(gid, both, "EN_REVISION"), 403, "REVISOR_IGUAL_CARGADOR")


async def test_optimistic_concurrency(c: Ctx) -> None:
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    r = await c.client.get(f"/gpus/{gid}", headers=c.res)
    assert r.headers["etag"] == '"1"'
    await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK, version=1))
    problem(await c.tr(gid, c.res, "PENDIENTE", version=1), 409, "VERSION_OBSOLETA")
    r = await c.client.post(
        f"/gpus/{gid}/transiciones",
        json={"a": "EN_REVISION"},
        headers={**c.rev, "If-Match": '"1"'},
    )
    problem(r, 412, "PRECONDICION_FALLIDA")
    r = await c.client.post(
        f"/gpus/{gid}/transiciones",
        json={"a": "EN_REVISION"},
        headers={**c.rev, "If-Match": '"2"'},
    )
    await ok(r)
    assert r.headers["etag"] == '"3"'
    # stale production edit
    r = await c.client.patch(
        f"/producciones/{prod['id']}", json={"volumen": "9", "version": 5}, headers=c.res
    )
    problem(r, 409, "VERSION_OBSOLETA")


@pytest.mark.spec("GP-E06")
async def test_volume_to_zero_deletes_a_pending_gpu_not_a_validated_one(c: Ctx) -> None:
    p790 = await c.put("C-3.4.2", "2025-03-05", "12.0")
    g790 = await c.wait_gpu(p790["id"])
    r = await ok(
        await c.client.patch(f"/producciones/{p790['id']}", json={"volumen": "0"}, headers=c.res)
    )
    assert r["volumen"] == "0.000000"
    assert await c.wait_gpu(p790["id"], present=False) is None
    hist = await ok(await c.client.get(f"/gpus/{g790}/historial", headers=c.rev))
    assert [h["accion"] for h in hist["data"]] == ["CREADO", "ELIMINADO"]  # history kept

    p789, _ = await c.validated()
    r = await c.client.patch(f"/producciones/{p789}", json={"volumen": "0"}, headers=c.res)
    body = problem(r, 409, "GPU_EN_PROCESO")
    assert body["producciones"] == [p789]
    prod = await ok(await c.client.get(f"/producciones/{p789}", headers=c.res))
    assert prod["volumen"] == "8.000000"


@pytest.mark.spec("GP-E07")
async def test_billed_gpu_is_locked(c: Ctx) -> None:
    p789, gid = await c.validated()
    cargado = await c.put("C-3.4.2", "2025-03-03", "4")
    gc = await c.wait_gpu(cargado["id"])
    assert gc is not None
    await ok(await c.tr(gc, c.res, "CARGADO", archivo=LINK))
    est = await ok(
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
    line = est["detalles"][0]
    assert (line["volumen_actual"], line["volumen_estimado"]) == ("8.00", "8.00")
    assert est["total_importe_mn"] == "9876.54"
    assert est["total_importe_usd"] == "493.83"
    gpu = await ok(await c.client.get(f"/gpus/{gid}", headers=c.rev))
    assert gpu["facturado"] is True
    assert gpu["id_estimacion_detalle"] == line["id"]
    problem(await c.tr(gid, c.sup, "EN_REVISION", nota="reabrir"), 409, "GPU_FACTURADO")
    problem(await c.tr(gid, c.rev, "RECHAZADO", nota="x"), 409, "GPU_FACTURADO")
    r = await c.client.post(
        f"/estimaciones/{est['id']}/detalles", json={"id_produccion": cargado["id"]}, headers=c.fac
    )
    problem(r, 422, "GPU_NO_VALIDADO")
    # billing needs the role
    r = await c.client.post(
        "/estimaciones",
        json={"id_ot": c.ids["ot"], "fecha_desde": "2025-03-01", "fecha_hasta": "2025-03-31"},
        headers=c.res,
    )
    assert r.status_code == 403


async def test_reopen_by_supervisor(c: Ctx) -> None:
    _, gid = await c.validated()
    problem(await c.tr(gid, c.sup, "EN_REVISION"), 422, "NOTA_REQUERIDA")
    r = await ok(await c.tr(gid, c.sup, "EN_REVISION", nota="Foto borrosa"))
    assert r["estatus"] == "EN_REVISION"


@pytest.mark.spec("GP-E08")
async def test_excedente_flag_over_an_ot_family(c: Ctx) -> None:
    ot = await ok(
        await c.client.post("/ots", json={"orden_trabajo": "OTE-EXC"}, headers=c.sup), 201
    )
    reprog = await ok(
        await c.client.post(
            "/ots", json={"orden_trabajo": "OTE-EXC-R1", "ot_principal": ot["id"]}, headers=c.sup
        ),
        201,
    )
    assert reprog["ot_principal"] == ot["id"]
    line = {"id_partida": "C-2.1.1", "anexo": "C-2", "unidad": "JOR"}
    imp = await ok(
        await c.client.post(
            f"/ots/{ot['id']}/importaciones",
            json={"partidas": [{**line, "volumen_proyectado": "80"}]},
            headers=c.sup,
        ),
        201,
    )
    await ok(
        await c.client.post(
            f"/ots/{reprog['id']}/importaciones",
            json={"partidas": [{**line, "id_partida": "C-2.1.1.", "volumen_proyectado": "20"}]},
            headers=c.sup,
        ),
        201,
    )
    pid = imp["partidas"][0]["id"]

    async def put(fecha: str, v: str) -> dict[str, Any]:
        body = {"id_partida_anexo": pid, "fecha": fecha, "tipo_tiempo": "TE", "volumen": v}
        result: dict[str, Any] = await ok(
            await c.client.put("/producciones", json=body, headers=c.res)
        )
        return result

    april = await put("2025-04-01", "50")  # entered earlier
    feb = await put("2025-02-10", "90")
    await ok(
        await c.client.post(
            "/produccion/masiva",
            json={
                "id_ot": ot["id"],
                "mes": 3,
                "anio": 2025,
                "tipo_tiempo": "TE",
                "partidas": [{"id_partida_imp": pid, "valores": ["5", "8"]}],
            },
            headers=c.res,
        )
    )

    async def flags() -> dict[str, bool]:
        async with c.app.state.sessionmaker() as s:
            res = (
                await s.scalars(select(Produccion).where(Produccion.id_partida_anexo == pid))
            ).all()
            return {p.fecha_produccion.isoformat(): p.es_excedente for p in res}

    assert await flags() == {
        "2025-02-10": False,
        "2025-03-01": False,
        "2025-03-02": True,
        "2025-04-01": True,
    }
    assert (await ok(await c.client.get(f"/producciones/{feb['id']}", headers=c.res)))[
        "es_excedente"
    ] is False
    assert (await ok(await c.client.get(f"/producciones/{april['id']}", headers=c.res)))[
        "es_excedente"
    ] is True
    day2 = await c.scalar(
        select(Produccion.id).where(
            Produccion.id_partida_anexo == pid,
            Produccion.es_excedente.is_(True),
            Produccion.fecha_produccion < dt.date(2025, 4, 1),
        )
    )
    gid = await c.wait_gpu(day2)
    assert gid is not None
    await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))
    await ok(await c.tr(gid, c.rev, "EN_REVISION"))
    await ok(await c.tr(gid, c.rev, "VALIDADO"))
    est_body = {
        "id_ot": ot["id"],
        "fecha_desde": "2025-03-01",
        "fecha_hasta": "2025-03-31",
        "detalles": [{"id_produccion": day2}],
    }
    r = await c.client.post("/estimaciones", json=est_body, headers=c.fac)
    problem(r, 422, "EXCEDENTE_NO_AUTORIZADO")
    r = await c.client.post(f"/producciones/{day2}/autorizacion-excedente", headers=c.res)
    assert r.status_code == 403
    await ok(await c.client.post(f"/producciones/{day2}/autorizacion-excedente", headers=c.sup))
    est = await ok(await c.client.post("/estimaciones", json=est_body, headers=c.fac), 201)
    assert est["detalles"][0]["es_excedente"] is True


@pytest.mark.spec("GP-E09")
async def test_two_time_types_make_two_gpus(c: Ctx) -> None:
    te = await c.put("C-2.1.1", "2025-03-05", "4.0", "TE")
    cma = await c.put("C-2.1.1", "2025-03-05", "2.0", "CMA")
    await c.wait_gpu(te["id"])
    await c.wait_gpu(cma["id"])
    grid = await ok(
        await c.client.get(f"/gpus/grid?id_ot={c.ids['ot']}&mes=3&anio=2025", headers=c.res)
    )
    cells = grid["data"][0]["dia_5"]
    assert [(x["tipo_tiempo"], x["volumen"], x["estatus_texto"]) for x in cells] == [
        ("TE", "4.000000", "PENDIENTE"),
        ("CMA", "2.000000", "PENDIENTE"),
    ]


@pytest.mark.spec("GP-E10")
async def test_grid_guards_missing_year_and_month_13(c: Ctx) -> None:
    ot = c.ids["ot"]
    assert await ok(await c.client.get(f"/gpus/grid?id_ot={ot}&mes=3", headers=c.res)) == {
        "data": []
    }
    assert await ok(
        await c.client.get(f"/gpus/grid?id_ot={ot}&mes=4&anio=2025", headers=c.res)
    ) == {"data": []}
    body = problem(
        await c.client.get(f"/gpus/grid?id_ot={ot}&mes=13&anio=2025", headers=c.res),
        400,
        "MES_INVALIDO",
    )
    assert body["field"] == "mes"


async def test_bad_input_is_problem_json_and_writes_nothing(c: Ctx) -> None:
    def masiva(**over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id_ot": c.ids["ot"],
            "mes": 3,
            "anio": 2025,
            "tipo_tiempo": "TE",
            "partidas": [{"id_partida_imp": c.ids["C-2.1.1"], "valores": ["1", "2"]}],
        }
        body.update(over)
        return body

    r = await c.client.post("/produccion/masiva", json=masiva(id_ot=424242), headers=c.res)
    assert problem(r, 404, "OT_NO_ENCONTRADA")["field"] == "id_ot"
    r = await c.client.post("/produccion/masiva", json=masiva(mes=13), headers=c.res)
    body = problem(r, 422, "validation-error")
    assert body["errors"][0]["field"] == "body.mes"
    r = await c.client.post(
        "/produccion/masiva",
        json=masiva(partidas=[{"id_partida_imp": c.ids["C-2.1.1"], "valores": ["1", "-2"]}]),
        headers=c.res,
    )
    assert problem(r, 422, "VOLUMEN_INVALIDO")["field"] == "partidas[0].valores[1]"
    r = await c.client.post(
        "/produccion/masiva",
        json=masiva(mes=2, partidas=[{"id_partida_imp": c.ids["C-2.1.1"], "valores": ["1"] * 30}]),
        headers=c.res,
    )
    assert problem(r, 422, "DIA_INVALIDO")["field"] == "partidas[0].valores"
    r = await c.client.post(
        "/produccion/masiva",
        json=masiva(partidas=[{"id_partida_imp": 999999, "valores": ["1"]}]),
        headers=c.res,
    )
    problem(r, 422, "PARTIDA_INVALIDA")
    r = await c.client.post("/produccion/masiva", json=masiva(), headers=c.rev)
    assert r.status_code == 403
    r = await c.client.put(
        "/producciones",
        json={
            "id_partida_anexo": c.ids["C-2.1.1"],
            "fecha": "2025-03-01",
            "tipo_tiempo": "XX",
            "volumen": "1",
        },
        headers=c.res,
    )
    problem(r, 422, "validation-error")
    assert await c.scalar(select(func.count()).select_from(Produccion)) == 0
    assert await c.scalar(select(func.count()).select_from(outbox)) == 0
    problem(await c.client.get("/gpus/999999", headers=c.res), 404, "GPU_NO_ENCONTRADO")


async def test_bulk_save_month_and_closed_month(c: Ctx) -> None:
    body = {
        "id_ot": c.ids["ot"],
        "mes": 3,
        "anio": 2025,
        "tipo_tiempo": "TE",
        "partidas": [
            {"id_partida_imp": c.ids["C-2.1.1"], "valores": ["1"] * 31},
            {"id_partida_imp": c.ids["C-1.1.1"], "valores": [2, 2.5, None, 0]},
        ],
    }
    r = await ok(await c.client.post("/produccion/masiva", json=body, headers=c.res))
    # 33 changed productions, announced by one ProductionSaved.v2 event
    assert (r["exito"], r["creadas"], r["eventos"], r["mensajes"]) == (True, 33, 33, 1)
    r = await ok(await c.client.post("/produccion/masiva", json=body, headers=c.res))
    # unchanged → nothing
    assert (r["creadas"], r["actualizadas"], r["eventos"], r["mensajes"]) == (0, 0, 0, 0)

    async def all_gpus() -> bool:
        n = await c.scalar(select(func.count()).select_from(RegistroGpu))
        return int(n) == 31

    await until(all_gpus)
    await ok(
        await c.client.post(
            "/reportes-diarios/cierre",
            json={"id_ot": c.ids["ot"], "fecha": "2025-03-04"},
            headers=c.sup,
        )
    )
    body["partidas"] = [{"id_partida_imp": c.ids["C-2.1.1"], "valores": [None, None, None, "3"]}]
    problem(await c.client.post("/produccion/masiva", json=body, headers=c.res), 409, "DIA_CERRADO")
    await ok(
        await c.client.post(
            "/reportes-mensuales/cierre",
            json={"id_ot": c.ids["ot"], "mes": 3, "anio": 2025},
            headers=c.sup,
        )
    )
    body["partidas"] = [{"id_partida_imp": c.ids["C-2.1.1"], "valores": ["3"]}]
    problem(await c.client.post("/produccion/masiva", json=body, headers=c.res), 409, "MES_CERRADO")


async def test_bulk_transitions_and_listing(c: Ctx) -> None:
    gids = []
    for day in ("2025-03-01", "2025-03-02"):
        prod = await c.put("C-2.1.1", day, "1")
        gid = await c.wait_gpu(prod["id"])
        assert gid is not None
        await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))
        gids.append(gid)
    r = await ok(
        await c.client.post(
            "/gpus/transiciones-masivas",
            json={"a": "EN_REVISION", "gpus": [{"id_gpu": g} for g in gids]},
            headers=c.rev,
        )
    )
    assert [x["estatus"] for x in r["data"]] == ["EN_REVISION", "EN_REVISION"]
    r = await c.client.post(
        "/gpus/transiciones-masivas",
        json={"a": "RECHAZADO", "gpus": [{"id_gpu": g} for g in gids]},
        headers=c.rev,
    )
    assert len(problem(r, 422, "NOTA_REQUERIDA")["errores"]) == 2
    await ok(
        await c.client.post(
            "/gpus/transiciones-masivas",
            json={"a": "VALIDADO", "gpus": [{"id_gpu": g} for g in gids]},
            headers=c.rev,
        )
    )
    listing = await ok(
        await c.client.get(
            f"/gpus?id_ot={c.ids['ot']}&mes=3&anio=2025&estatus=validado", headers=c.rev
        )
    )
    assert sorted(x["id"] for x in listing["data"]) == sorted(gids)


async def test_completeness_json_and_csv(c: Ctx) -> None:
    await c.validated()
    p = await c.put("C-3.4.2", "2025-03-03", "4")
    await c.wait_gpu(p["id"])
    url = f"/reportes/completitud?id_ot={c.ids['ot']}&mes=3&anio=2025"
    rep = await ok(await c.client.get(url, headers=c.sup))
    assert rep["total"] == 2
    assert rep["por_estatus"]["VALIDADO"] == {"cantidad": 1, "porcentaje": "50.00"}
    assert rep["por_anexo"]["C-3"]["por_estatus"]["PENDIENTE"]["porcentaje"] == "100.00"
    assert [f["codigo"] for f in rep["faltantes"]] == ["C-3.4.2"]
    r = await c.client.get(url + "&formato=csv", headers=c.sup)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["codigo"], x["estatus"]) for x in rows] == [("C-3.4.2", "PENDIENTE")]
    problem(
        await c.client.get(
            f"/reportes/completitud?id_ot={c.ids['ot']}&mes=13&anio=2025", headers=c.sup
        ),
        400,
        "MES_INVALIDO",
    )


async def test_conflict_visible_through_api(c: Ctx) -> None:
    """Production reduced to 0 while the GPU is CARGADO; a reviewer takes it for review before
    the consumer handles the event → the GPU is kept and the conflict is listed."""
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    assert gid is not None
    await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))
    runtime = c.app.state.runtime
    await runtime.stop()  # hold the consumer so the race is deterministic
    await ok(
        await c.client.patch(f"/producciones/{prod['id']}", json={"volumen": "0"}, headers=c.res)
    )
    await ok(await c.tr(gid, c.rev, "EN_REVISION"))
    await runtime.start()
    runtime.wake_relay()

    async def has_conflict() -> bool:
        r = await c.client.get(f"/gpus/conflictos?id_ot={c.ids['ot']}", headers=c.sup)
        return bool(r.json()["data"])

    await until(has_conflict)
    data = (await ok(await c.client.get("/gpus/conflictos", headers=c.sup)))["data"]
    assert [(x["id_gpu"], x["motivo"], x["estatus_gpu"]) for x in data] == [
        (gid, "VOLUMEN_CERO", "EN_REVISION")
    ]
    assert await c.gpu_id(prod["id"]) == gid


async def test_demo_seed_in_dev(tmp_path: Path) -> None:
    async for ctx in make_ctx(tmp_path, env="dev"):
        ot_id = await ctx.scalar(select(func.min(Produccion.id_reporte_mensual)))
        assert ot_id is not None

        async def gpus(ctx: Ctx = ctx) -> bool:
            return int(await ctx.scalar(select(func.count()).select_from(RegistroGpu))) > 0

        await until(gpus)


async def test_grid_cache_follows_every_change(c: Ctx) -> None:
    url = f"/gpus/grid?id_ot={c.ids['ot']}&mes=3&anio=2025"
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    assert gid is not None
    await c.settle()
    r1 = await c.client.get(url, headers=c.res)
    tag = r1.headers["etag"]
    assert r1.json()["data"][0]["dia_2"][0]["id_gpu"] == gid
    r = await c.client.get(url, headers={**c.res, "If-None-Match": tag})
    assert r.status_code == 304
    await ok(await c.tr(gid, c.res, "CARGADO", archivo=LINK))  # transition
    r2 = await c.client.get(url, headers={**c.res, "If-None-Match": tag})
    assert r2.status_code == 200
    assert r2.headers["etag"] != tag
    assert r2.json()["data"][0]["dia_2"][0]["estatus_texto"] == "CARGADO"
    await c.put("C-2.1.1", "2025-03-02", "9")  # production edit
    cell = (await ok(await c.client.get(url, headers=c.res)))["data"][0]["dia_2"][0]
    assert cell["volumen"] == "9.000000"
    await ok(await c.tr(gid, c.res, "PENDIENTE"))
    await c.put("C-2.1.1", "2025-03-02", "0")  # GPU deleted asynchronously
    await c.wait_gpu(prod["id"], present=False)
    assert (await ok(await c.client.get(url, headers=c.res)))["data"] == []
    p2 = await c.put("C-3.4.2", "2025-03-07", "1")  # GPU created asynchronously
    g2 = await c.wait_gpu(p2["id"])
    data = (await ok(await c.client.get(url, headers=c.res)))["data"]
    assert data[0]["dia_7"][0]["id_gpu"] == g2
    imp = await c.scalar(
        select(PartidaAnexo.id_importacion_anexo).where(PartidaAnexo.id == c.ids["C-3.4.2"])
    )
    await ok(
        await c.client.patch(f"/importaciones/{imp}", json={"es_activo": False}, headers=c.sup)
    )
    assert (await ok(await c.client.get(url, headers=c.res)))["data"] == []


async def test_retried_gpu_transition_with_its_key_is_replayed(c: Ctx) -> None:
    prod = await c.put("C-2.1.1", "2025-03-02", "8")
    gid = await c.wait_gpu(prod["id"])
    url = f"/gpus/{gid}/transiciones"
    keyed = {**c.res, "Idempotency-Key": "cargar-1"}
    body = {"a": "CARGADO", "archivo": LINK}
    first = await c.client.post(url, json=body, headers=keyed)
    assert first.status_code == 200, first.text
    again = await c.client.post(url, json=body, headers=keyed)
    assert again.status_code == 200, "a replay, not 409 'invalid transition'"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    hist = await ok(await c.client.get(f"/gpus/{gid}/historial", headers=c.rev))
    assert len(hist["data"]) == 2, "PENDIENTE, CARGADO: the transition happened once"
    problem(
        await c.client.post(url, json={**body, "archivo": LINK + "x"}, headers=keyed),
        422,
        "idempotency-key-reused",
    )
    assert (await c.client.post(url, json=body, headers=c.res)).status_code == 409
