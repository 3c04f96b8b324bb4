"""Annex import from an Excel workbook (issue 15 item 11) through the API, SQLite and
PostgreSQL: the workbook (built here with openpyxl) becomes the same import as the JSON route;
row errors name the row and the column; hostile files are refused with 413, 415 or 422 and
write nothing."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from evidence.application.workbook import XLSX_MEDIA_TYPE as XLSX
from evidence.domain import annex_excel as xl
from evidence.models import ImportacionAnexo
from nexo_testing import ok, problem
from services.evidence.tests.test_evidence_api import Ctx, make_ctx

HEADER = (
    "Id Partida",
    "Descripción Concepto",
    "Anexo",
    "Unidad",
    "Volumen Proyectado",
    "P.U. MN",
    "Precio Unitario USD",
)


def workbook(rows: Iterable[Iterable[Any]], *, title: bool = True) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    if title:
        sheet.append(["ANEXO C — OTE-X"])
        sheet.append([])
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
async def c(tmp_path: Path, database_url: str) -> AsyncIterator[Ctx]:
    async for ctx in make_ctx(tmp_path, database_url=database_url):
        ot = await ok(
            await ctx.client.post("/ots", json={"orden_trabajo": "OTE-X"}, headers=ctx.sup), 201
        )
        ctx.ids["ot"] = ot["id"]
        yield ctx


async def upload(
    c: Ctx,
    data: bytes,
    *,
    media: str = XLSX,
    headers: dict[str, str] | None = None,
    **form: str,
) -> httpx.Response:
    return await c.client.post(
        f"/ots/{c.ids['ot']}/importaciones/excel",
        files={"archivo": ("Anexo C marzo.xlsx", data, media)},
        data=form,
        headers=headers or c.sup,
    )


async def imports(c: Ctx) -> int:
    return int(await c.scalar(select(func.count()).select_from(ImportacionAnexo)))


async def test_an_excel_annex_becomes_the_same_import_as_the_json_one(c: Ctx) -> None:
    data = workbook(
        [
            HEADER,
            ("C-2.1.1", "Técnico especializado", "C-2", "JOR", 100, 1234.5678, 61.7284),
            (None, None, None, None, None, None, None),  # a blank row is skipped
            ("C-3.4.2", "Grúa", " c-3 ", "HR", 300.5, "100", None),
            (12, "Código numérico", "C-1", None, 0.1, None, None),
        ]
    )
    out = await ok(await upload(c, data), 201)
    assert (out["id_ot"], out["es_activo"]) == (c.ids["ot"], True)
    got = [
        (
            p["codigo"],
            p["descripcion"],
            p["anexo"],
            p["unidad"],
            p["volumen_proyectado"],
            p["precio_unitario_mn"],
            p["precio_unitario_usd"],
            p["orden_fila"],
            p["requiere_gpu"],
        )
        for p in out["partidas"]
    ]
    assert got == [
        ("C-2.1.1", "Técnico especializado", "C-2", "JOR", "100.000000", "1234.5678",
         "61.7284", 1, True),
        ("C-3.4.2", "Grúa", "c-3", "HR", "300.500000", "100.0000", "0.0000", 2, True),
        ("12", "Código numérico", "C-1", "", "0.100000", "0.0000", "0.0000", 3, False),
    ]  # fmt: skip
    stored = await c.scalar(select(ImportacionAnexo).where(ImportacionAnexo.id == out["id"]))
    assert (stored.archivo, stored.total_registros, stored.usuario_carga) == (
        "Anexo_C_marzo.xlsx",
        3,
        "sam",
    )
    # the imported C-2 line behaves as any other: an eligible production gets a GPU
    body = {
        "id_partida_anexo": out["partidas"][0]["id"],
        "fecha": "2025-03-02",
        "tipo_tiempo": "TE",
        "volumen": "8",
    }
    prod = await ok(await c.client.put("/producciones", json=body, headers=c.res))
    assert await c.wait_gpu(prod["id"]) is not None

    inactive = await ok(await upload(c, workbook([HEADER[:5], ("C-2.2", "", "C-2", "JOR", 1)]),
                                     es_activo="false"), 201)  # fmt: skip
    assert inactive["es_activo"] is False


async def test_row_errors_name_the_row_and_the_column_and_nothing_is_written(c: Ctx) -> None:
    data = workbook(
        [
            HEADER,
            ("C-2.1.1", "ok", "C-2", "JOR", 10, 1, 1),
            ("C-2.1.2", "volumen", "C-2", "JOR", "diez", 1, 1),
            (None, "sin código", "C-2", "JOR", 5, 1, 1),
            ("C-2.1.4", "negativo", "C-2", "JOR", -1, 1, 1),
            ("C-2.1.5", "precio", "C-2", "JOR", 1, 1.23456, 1),
        ]
    )
    body = problem(await upload(c, data), 422, "EXCEL_FILAS_INVALIDAS", "archivo")
    found = [(e["fila"], e["columna"], e["celda"]) for e in body["errors"]]
    assert found == [
        (5, "Volumen Proyectado", "E5"),
        (6, "Id Partida", "A6"),
        (7, "Volumen Proyectado", "E7"),
        (8, "P.U. MN", "F8"),
    ]
    assert body["total_errores"] == 4
    assert all(e["reason"] and e["field"].startswith("archivo[") for e in body["errors"])
    assert await imports(c) == 0


async def test_a_sheet_without_the_required_header_or_rows_is_refused(c: Ctx) -> None:
    no_volume = workbook([("Id Partida", "Descripción"), ("C-2.1.1", "x")])
    body = problem(await upload(c, no_volume), 422, "ENCABEZADO_INVALIDO", "archivo")
    assert body["columnas_faltantes"] == ["ID_PARTIDA", "VOLUMEN_PROYECTADO"]
    problem(await upload(c, workbook([HEADER])), 422, "IMPORTACION_SIN_PARTIDAS", "archivo")
    assert await imports(c) == 0


async def test_hostile_or_foreign_files_are_refused(c: Ctx) -> None:
    csv = b"ID_PARTIDA,VOLUMEN_PROYECTADO\nC-2.1.1,10\n"
    problem(await upload(c, csv), 422, "ARCHIVO_ILEGIBLE", "archivo")
    problem(await upload(c, b""), 422, "ARCHIVO_ILEGIBLE", "archivo")
    body = problem(await upload(c, csv, media="text/csv"), 415, "TIPO_ARCHIVO_NO_SOPORTADO")
    assert body["tipos"] == [XLSX, "application/octet-stream"]

    not_a_book = io.BytesIO()
    with zipfile.ZipFile(not_a_book, "w") as z:
        z.writestr("hola.txt", "no soy un libro")
    problem(await upload(c, not_a_book.getvalue()), 422, "ARCHIVO_ILEGIBLE")

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (xl.MAX_UNZIPPED + 1))
    assert len(bomb.getvalue()) < 200_000
    body = problem(await upload(c, bomb.getvalue()), 413, "ARCHIVO_EXCEDE_LIMITE")
    assert body["limite_bytes"] == xl.MAX_UNZIPPED

    body = problem(await upload(c, b"x" * (xl.MAX_BYTES + 1)), 413, "ARCHIVO_EXCEDE_LIMITE")
    assert body["limite_bytes"] == xl.MAX_BYTES

    many = workbook([HEADER[:5], *((f"C-2.{i}", "", "C-2", "JOR", 1)
                                   for i in range(xl.MAX_PARTIDAS + 1))])  # fmt: skip
    body = problem(await upload(c, many), 413, "ARCHIVO_EXCEDE_LIMITE")
    assert body["limite"] == xl.MAX_PARTIDAS

    json_body = await c.client.post(
        f"/ots/{c.ids['ot']}/importaciones/excel", json={"partidas": []}, headers=c.sup
    )
    problem(json_body, 415, "TIPO_ARCHIVO_NO_SOPORTADO")
    no_file = await c.client.post(
        f"/ots/{c.ids['ot']}/importaciones/excel",
        files={"otro": ("a.xlsx", b"x", XLSX)},
        headers=c.sup,
    )
    problem(no_file, 422, "ARCHIVO_REQUERIDO", "archivo")
    assert await imports(c) == 0


async def test_only_a_supervisor_imports_and_only_into_an_existing_ot(c: Ctx) -> None:
    data = workbook([HEADER[:5], ("C-2.1.1", "", "C-2", "JOR", 1)])
    for who in (c.res, c.rev, c.fac):
        assert (await upload(c, data, headers=who)).status_code == 403
    missing = await c.client.post(
        "/ots/999999/importaciones/excel",
        files={"archivo": ("a.xlsx", data, XLSX)},
        headers=c.sup,
    )
    problem(missing, 404, "OT_NO_ENCONTRADA")
    assert await imports(c) == 0
