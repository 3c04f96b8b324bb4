"""The month's evidence link of an OT (``guardar_archivo_mensual``) and the daily plan
(``partida_proyectada``: a day, a month's grid, a CSV or xlsx file) through the API (issue 15
item 9): the plan fills ``programado`` in the production grid on the next read. SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from evidence import domain as d
from nexo_testing import ok, problem
from services.evidence.tests.test_evidence_api import LINK, Ctx, make_ctx, seed

LINK2 = "https://docs.google.com/document/d/xyz789"
MONTH = {"mes": 3, "anio": 2025}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
async def c(tmp_path: Path, database_url: str) -> AsyncIterator[Ctx]:
    async for ctx in make_ctx(tmp_path, database_url=database_url):
        await seed(ctx)
        yield ctx


def month_q(c: Ctx, **kw: Any) -> dict[str, Any]:
    return {"id_ot": c.ids["ot"], **MONTH, **kw}


async def grid(c: Ctx, mes: int = 3) -> dict[str, dict[str, Any]]:
    """The production grid of the OT's month, rows by code."""
    body = await ok(
        await c.client.get(
            "/obtener_partidas_produccion",
            params={"id_ot": c.ids["ot"], "mes": mes, "anio": 2025},
            headers=c.rev,
        )
    )
    return {row["codigo"]: row for row in body["partidas"]}


def programado(row: dict[str, Any], day: int) -> str | None:
    cell = row[f"dia{day}"]
    return None if cell is None else cell["programado"]


async def put_link(c: Ctx, archivo: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return await c.client.put(
        "/reportes-mensuales/archivo",
        json=month_q(c, archivo=archivo),
        headers=headers or c.res,
    )


async def put_plan(c: Ctx, code: str, fecha: str, volumen: Any, **kw: Any) -> httpx.Response:
    body = {
        "id_ot": c.ids["ot"],
        "id_partida_anexo": c.ids[code],
        "fecha": fecha,
        "volumen": volumen,
        **kw,
    }
    return await c.client.put("/plan-diario", json=body, headers=c.res)


async def import_plan(
    c: Ctx, data: bytes, content_type: str = "text/csv", headers: dict[str, str] | None = None
) -> httpx.Response:
    return await c.client.post(
        "/plan-diario/importacion",
        params={"id_ot": c.ids["ot"]},
        content=data,
        headers={**(headers or c.res), "Content-Type": content_type},
    )


def xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- the month's evidence link ----------------------------------------------------------------


@pytest.mark.spec("C.2.4")
async def test_month_link_is_set_replaced_and_cleared_and_read_with_the_month(c: Ctx) -> None:
    q = month_q(c)
    problem(await c.client.get("/reportes-mensuales", params=q, headers=c.rev), 404,
            "REPORTE_NO_ENCONTRADO")  # fmt: skip
    problem(await c.client.delete("/reportes-mensuales/archivo", params=q, headers=c.res), 404,
            "REPORTE_NO_ENCONTRADO")  # fmt: skip

    out = await ok(await put_link(c, f"  {LINK} "))
    assert (out["archivo"], out["usuario_archivo"], out["cerrado"]) == (LINK, "ana", False)
    assert out["fecha_archivo"] is not None
    read = await ok(await c.client.get("/reportes-mensuales", params=q, headers=c.rev))
    assert read == out
    rows = await grid(c)
    assert rows
    assert {row["archivo"] for row in rows.values()} == {LINK}

    replaced = await ok(await put_link(c, LINK2, c.sup))
    assert (replaced["id"], replaced["archivo"], replaced["usuario_archivo"]) == (
        out["id"],
        LINK2,
        "sam",
    )
    assert {row["archivo"] for row in (await grid(c)).values()} == {LINK2}

    cleared = await ok(
        await c.client.delete("/reportes-mensuales/archivo", params=q, headers=c.res)
    )
    assert (cleared["archivo"], cleared["usuario_archivo"]) == (None, "ana")
    assert (await ok(await c.client.get("/reportes-mensuales", params=q, headers=c.rev)))[
        "archivo"
    ] is None
    assert {row["archivo"] for row in (await grid(c)).values()} == {None}
    # other months are untouched
    other = month_q(c, mes=4)
    problem(await c.client.get("/reportes-mensuales", params=other, headers=c.rev), 404,
            "REPORTE_NO_ENCONTRADO")  # fmt: skip


@pytest.mark.spec("C.5", "GP-D03")
async def test_seed_path_saves_the_month_link_and_never_clears_it(c: Ctx) -> None:
    body = month_q(c, archivo=LINK, extra="ignored")
    out = await ok(await c.client.post("/guardar_archivo_mensual", json=body, headers=c.res))
    assert (out["exito"], out["archivo"]) == (True, LINK)
    for empty in ("", "   ", None):
        r = await c.client.post(
            "/guardar_archivo_mensual", json={**body, "archivo": empty}, headers=c.res
        )
        bad = problem(r, 422, "ARCHIVO_REQUERIDO", "archivo")
        assert bad["exito"] is False
        assert bad["mensaje"]
    read = await ok(await c.client.get("/reportes-mensuales", params=month_q(c), headers=c.rev))
    assert read["archivo"] == LINK


@pytest.mark.spec("DECIDE-C3", "G2", "GP-D17")
async def test_month_link_refuses_bad_links_months_roles_and_closed_months(c: Ctx) -> None:
    for bad in (
        "http://drive.google.com/drive/folders/abc",
        "ftp://drive.google.com/x",
        "javascript:alert(1)",
        "https://evil.example.com/drive/folders/abc",
        "https://drive.google.com/" + "a" * 500,
        "https://drive.google.com/a b",
        "drive.google.com/drive/folders/abc",
    ):
        problem(await put_link(c, bad), 422, "URL_INVALIDA", "archivo")
    problem(await put_link(c, " "), 422, "ARCHIVO_REQUERIDO", "archivo")
    too_long = await put_link(c, "https://drive.google.com/" + "a" * 2000)
    assert too_long.status_code == 422
    for month in ({"mes": 13}, {"mes": 0}, {"anio": 1999}):
        r = await c.client.put(
            "/reportes-mensuales/archivo",
            json={**month_q(c, archivo=LINK), **month},
            headers=c.res,
        )
        assert r.status_code == 422, r.text
    missing = {"id_ot": 999999, **MONTH, "archivo": LINK}
    problem(await c.client.put("/reportes-mensuales/archivo", json=missing, headers=c.res), 404,
            "OT_NO_ENCONTRADA")  # fmt: skip
    assert (await put_link(c, LINK, c.rev)).status_code == 403
    assert (await put_link(c, LINK, c.fac)).status_code == 403
    assert (await c.client.put("/reportes-mensuales/archivo", json=month_q(c, archivo=LINK))
            ).status_code == 401  # fmt: skip

    await ok(await put_link(c, LINK))
    await ok(
        await c.client.post(
            "/reportes-mensuales/cierre", json=month_q(c, cerrado=True), headers=c.sup
        )
    )
    problem(await put_link(c, LINK2), 409, "MES_CERRADO")
    problem(await c.client.delete("/reportes-mensuales/archivo", params=month_q(c),
                                  headers=c.res), 409, "MES_CERRADO")  # fmt: skip
    read = await ok(await c.client.get("/reportes-mensuales", params=month_q(c), headers=c.rev))
    assert (read["archivo"], read["cerrado"]) == (LINK, True)


# --- the daily plan: a day and a month's grid --------------------------------------------------


@pytest.mark.spec("C.2.9")
async def test_a_planned_day_shows_as_programado_on_the_next_grid_read(c: Ctx) -> None:
    before = await grid(c)
    assert programado(before["C-2.1.1"], 2) is None
    assert before["C-2.1.1"]["acumulado_programado"] == "0.000000"

    out = await ok(await put_plan(c, "C-2.1.1", "2025-03-02", "4.5"))
    assert out["volumen_programado"] == "4.500000"
    rows = await grid(c)
    assert programado(rows["C-2.1.1"], 2) == "4.500000"
    assert rows["C-2.1.1"]["dia2"]["valor"] is None  # planned, nothing produced yet
    assert rows["C-2.1.1"]["acumulado_programado"] == "4.500000"
    assert programado(rows["C-3.4.2"], 2) is None

    await c.put("C-2.1.1", "2025-03-02", "3")  # production next to the plan
    await ok(await put_plan(c, "C-2.1.1", "2025-03-02", 6))
    cell = (await grid(c))["C-2.1.1"]["dia2"]
    assert (cell["valor"], cell["programado"]) == ("3.000000", "6.000000")

    cleared = await ok(await put_plan(c, "C-2.1.1", "2025-03-02", "0"))
    assert cleared["volumen_programado"] is None
    rows = await grid(c)
    assert programado(rows["C-2.1.1"], 2) is None
    assert rows["C-2.1.1"]["acumulado_programado"] == "0.000000"


@pytest.mark.spec("C.2.9")
async def test_plan_entry_refuses_negative_volumes_unknown_lines_bad_dates_and_closed_months(
    c: Ctx,
) -> None:
    problem(await put_plan(c, "C-2.1.1", "2025-03-02", "-1"), 422, "VOLUMEN_INVALIDO", "volumen")
    problem(await put_plan(c, "C-2.1.1", "2025-03-02", "0.0000001"), 422, "VOLUMEN_INVALIDO")
    problem(await put_plan(c, "C-2.1.1", "2025-03-02", "1e12"), 422, "VOLUMEN_INVALIDO")
    for fecha in ("2025-02-30", "1999-12-31", "mañana"):
        assert (await put_plan(c, "C-2.1.1", fecha, "1")).status_code == 422, fecha
    unknown = {
        "id_ot": c.ids["ot"],
        "id_partida_anexo": 999999,
        "fecha": "2025-03-02",
        "volumen": "1",
    }
    problem(await c.client.put("/plan-diario", json=unknown, headers=c.res), 422,
            "PARTIDA_INVALIDA", "id_partida_anexo")  # fmt: skip
    other_ot = await ok(
        await c.client.post("/ots", json={"orden_trabajo": "OTE-2025-002"}, headers=c.sup), 201
    )
    foreign = {**unknown, "id_ot": other_ot["id"], "id_partida_anexo": c.ids["C-2.1.1"]}
    problem(await c.client.put("/plan-diario", json=foreign, headers=c.res), 422,
            "PARTIDA_INVALIDA")  # fmt: skip
    assert (await c.client.put("/plan-diario", json=unknown, headers=c.rev)).status_code == 403

    await ok(
        await c.client.post(
            "/reportes-mensuales/cierre", json=month_q(c, cerrado=True), headers=c.sup
        )
    )
    problem(await put_plan(c, "C-2.1.1", "2025-03-02", "1"), 409, "MES_CERRADO")
    await ok(await put_plan(c, "C-2.1.1", "2025-04-02", "1"))  # April is open
    assert programado((await grid(c))["C-2.1.1"], 2) is None


@pytest.mark.spec("C.2.9")
async def test_a_month_plan_grid_saves_clears_and_leaves_null_days(c: Ctx) -> None:
    body = {
        "id_ot": c.ids["ot"],
        **MONTH,
        "partidas": [
            {"id_partida_imp": c.ids["C-2.1.1"], "valores": ["1", None, "3.25"]},
            {"id_partida_imp": c.ids["C-3.4.2"], "valores": [None, 2]},
        ],
    }
    out = await ok(await c.client.post("/plan-diario/masivo", json=body, headers=c.sup))
    assert (out["guardados"], out["eliminados"], out["sin_cambio"]) == (3, 0, 0)
    rows = await grid(c)
    assert [programado(rows["C-2.1.1"], n) for n in (1, 2, 3)] == ["1.000000", None, "3.250000"]
    assert programado(rows["C-3.4.2"], 2) == "2.000000"
    assert rows["C-2.1.1"]["acumulado_programado"] == "4.250000"

    again = await ok(await c.client.post("/plan-diario/masivo", json=body, headers=c.sup))
    assert (again["guardados"], again["sin_cambio"]) == (0, 3)
    body["partidas"] = [{"id_partida_imp": c.ids["C-2.1.1"], "valores": ["0", None, "5"]}]
    out = await ok(await c.client.post("/plan-diario/masivo", json=body, headers=c.sup))
    assert (out["guardados"], out["eliminados"]) == (1, 1)
    rows = await grid(c)
    assert [programado(rows["C-2.1.1"], n) for n in (1, 3)] == [None, "5.000000"]
    assert programado(rows["C-3.4.2"], 2) == "2.000000"  # not named: unchanged

    feb = {
        "id_ot": c.ids["ot"],
        "mes": 2,
        "anio": 2025,
        "partidas": [{"id_partida_imp": c.ids["C-2.1.1"], "valores": [None] * 28 + ["1"]}],
    }
    problem(await c.client.post("/plan-diario/masivo", json=feb, headers=c.sup), 422,
            "DIA_INVALIDO", "partidas[0].valores[28]")  # fmt: skip
    feb["partidas"] = [{"id_partida_imp": c.ids["C-2.1.1"], "valores": ["-2"]}]
    problem(await c.client.post("/plan-diario/masivo", json=feb, headers=c.sup), 422,
            "VOLUMEN_INVALIDO", "partidas[0].valores[0]")  # fmt: skip
    feb["partidas"] = [{"id_partida_imp": 999999, "valores": ["2"]}]
    problem(await c.client.post("/plan-diario/masivo", json=feb, headers=c.sup), 422,
            "PARTIDA_INVALIDA", "partidas")  # fmt: skip


# --- the daily plan: files ---------------------------------------------------------------------


@pytest.mark.spec("C.2.9")
async def test_a_csv_plan_file_fills_the_grid(c: Ctx) -> None:
    text = (
        "PARTIDA,FECHA,VOLUMEN\n"
        "C-2.1.1,2025-03-01,2\n"
        "C-2.1.1.,05/03/2025,1.5\n"  # the code with a trailing dot, a DD/MM/YYYY date
        "\n"
        " C-3.4.2 ,2025-03-01,10\n"
    )
    out = await ok(await import_plan(c, text.encode()))
    assert (out["formato"], out["filas"], out["guardados"], out["sin_cambio"]) == ("csv", 3, 3, 0)
    rows = await grid(c)
    assert [programado(rows["C-2.1.1"], n) for n in (1, 5)] == ["2.000000", "1.500000"]
    assert programado(rows["C-3.4.2"], 1) == "10.000000"

    # A Spanish-locale export: cp1252, `;`, decimal comma, accented header, a 0 clears a day.
    spanish = (
        "Partida;Fécha;Volumen_Programado\r\nC-2.1.1;2025-03-01;2,75\r\nC-2.1.1;2025-03-05;0\r\n"
    )
    out = await ok(await import_plan(c, spanish.encode("cp1252"), "text/csv; charset=cp1252"))
    assert (out["guardados"], out["eliminados"]) == (1, 1)
    rows = await grid(c)
    assert [programado(rows["C-2.1.1"], n) for n in (1, 5)] == ["2.750000", None]


@pytest.mark.spec("C.2.9")
async def test_an_xlsx_plan_file_fills_the_grid(c: Ctx) -> None:
    data = xlsx(
        [
            ["ANEXO", "PARTIDA", "FECHA", "VOLUMEN"],
            ["C-2", "C-2.1.1", dt.date(2025, 3, 10), 4],
            ["C-3", "C-3.4.2", dt.datetime(2025, 3, 11), 2.5],
            [None, None, None, None],
            [None, "C-2.5.5", "2025-03-12", "7"],
        ]
    )
    out = await ok(await import_plan(c, data, XLSX))
    assert (out["formato"], out["filas"], out["guardados"]) == ("xlsx", 3, 3)
    rows = await grid(c)
    assert programado(rows["C-2.1.1"], 10) == "4.000000"
    assert programado(rows["C-3.4.2"], 11) == "2.500000"
    assert programado(rows["C-2.5.5"], 12) == "7.000000"
    # application/octet-stream is sniffed: a zip is an xlsx
    sniffed = await ok(await import_plan(c, data, "application/octet-stream"))
    assert (sniffed["formato"], sniffed["sin_cambio"]) == ("xlsx", 3)


@pytest.mark.spec("C.2.9")
async def test_a_plan_file_with_faulty_rows_names_each_row_and_writes_nothing(c: Ctx) -> None:
    # a second active line with the same code under another annex makes the code ambiguous
    await ok(
        await c.client.post(
            f"/ots/{c.ids['ot']}/importaciones",
            json={
                "partidas": [
                    {
                        "id_partida": "C-3.4.2",
                        "descripcion": "Grúa extra",
                        "anexo": "C3EXT",
                        "volumen_proyectado": "10",
                    }
                ]
            },
            headers=c.sup,
        ),
        201,
    )
    text = (
        "PARTIDA,FECHA,VOLUMEN\n"
        "C-2.1.1,2025-03-01,2\n"  # 2: fine
        "C-9.9.9,2025-03-01,1\n"  # 3: unknown code
        "C-2.1.1,2025-02-30,1\n"  # 4: no such date
        "C-2.1.1,2025-03-02,-4\n"  # 5: negative
        "C-2.1.1,2025-03-01,3\n"  # 6: same line and day as row 2
        "C-3.4.2,2025-03-01,1\n"  # 7: two lines with that code
        ",2025-03-01,abc\n"  # 8: no code, not a number
        "C-2.9.9,2025-03-01,1\n"  # 9: a line of an inactive import
    )
    body = problem(await import_plan(c, text.encode()), 422, "PLAN_INVALIDO", "filas[3].partida")
    found = [(f["fila"], f["campo"], f["codigo"]) for f in body["filas"]]
    assert found == [
        (3, "partida", "PARTIDA_NO_EXISTE"),
        (4, "fecha", "FECHA_INVALIDA"),
        (5, "volumen", "VOLUMEN_INVALIDO"),
        (6, "fecha", "FILA_DUPLICADA"),
        (7, "partida", "PARTIDA_AMBIGUA"),
        (8, "partida", "PARTIDA_REQUERIDA"),
        (8, "volumen", "VOLUMEN_INVALIDO"),
        (9, "partida", "PARTIDA_NO_EXISTE"),
    ]
    assert body["total_errores"] == 8
    assert body["errors"][0] == {"field": "filas[3].partida", "reason": body["filas"][0]["detalle"]}
    assert programado((await grid(c))["C-2.1.1"], 1) is None  # nothing written

    # ANEXO picks one of the two lines sharing a code
    fixed = "PARTIDA,ANEXO,FECHA,VOLUMEN\nC-3.4.2,C3EXT,2025-03-01,1\nC-3.4.2,c-3,2025-03-01,2\n"
    out = await ok(await import_plan(c, fixed.encode()))
    assert out["guardados"] == 2


@pytest.mark.spec("C.2.9")
async def test_hostile_plan_files_are_refused(c: Ctx) -> None:
    good = b"PARTIDA,FECHA,VOLUMEN\nC-2.1.1,2025-03-01,2\n"
    problem(await import_plan(c, good, "application/pdf"), 415, "TIPO_ARCHIVO_NO_SOPORTADO")
    problem(await import_plan(c, good, "application/json"), 415, "TIPO_ARCHIVO_NO_SOPORTADO")
    assert (await import_plan(c, good, headers=c.rev)).status_code == 403
    problem(await import_plan(c, b"not a zip at all", XLSX), 422, "ARCHIVO_ILEGIBLE", "archivo")
    problem(await import_plan(c, b"PARTIDA,FECHA\x00,VOLUMEN\n"), 422, "ARCHIVO_ILEGIBLE")
    missing = problem(await import_plan(c, b"PARTIDA;VOLUMEN\nC-2.1.1;2\n"), 422,
                      "ENCABEZADO_INVALIDO", "archivo")  # fmt: skip
    assert missing["columnas_faltantes"] == ["FECHA"]
    problem(await import_plan(c, b"PARTIDA,FECHA,VOLUMEN\n\n,,\n"), 422, "PLAN_SIN_FILAS")
    problem(await import_plan(c, b""), 422, "ENCABEZADO_INVALIDO")

    huge = good + b"C-2.1.1,2025-03-01,2\n" * (d.MAX_PLAN_FILE_BYTES // 20)
    body = problem(await import_plan(c, huge), 413, "ARCHIVO_EXCEDE_LIMITE")
    assert body["limite_bytes"] == d.MAX_PLAN_FILE_BYTES
    rows = b"".join(b"C-2.1.1,2025-03-01,1\n" for _ in range(d.MAX_PLAN_ROWS + 1))
    body = problem(await import_plan(c, b"PARTIDA,FECHA,VOLUMEN\n" + rows), 413,
                   "ARCHIVO_EXCEDE_LIMITE")  # fmt: skip
    assert body["limite_filas"] == d.MAX_PLAN_ROWS

    # a zip bomb: a small xlsx declaring a huge member is refused before it is inflated
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (41 * 1024 * 1024))
    assert len(bomb.getvalue()) < d.MAX_PLAN_FILE_BYTES
    problem(await import_plan(c, bomb.getvalue(), XLSX), 413, "ARCHIVO_EXCEDE_LIMITE")
    # a zip that is not a workbook
    problem(await import_plan(c, xlsx_without_workbook(), XLSX), 422, "ARCHIVO_ILEGIBLE")

    unknown_ot = await c.client.post(
        "/plan-diario/importacion",
        params={"id_ot": 999999},
        content=good,
        headers={**c.res, "Content-Type": "text/csv"},
    )
    problem(unknown_ot, 404, "OT_NO_ENCONTRADA")
    assert programado((await grid(c))["C-2.1.1"], 1) is None


def xlsx_without_workbook() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hola")
    return out.getvalue()


async def test_a_plan_write_that_races_a_first_write_of_the_same_day_overwrites_it(c: Ctx) -> None:
    """The write's read saw no row for the day, a concurrent writer inserted one since: the
    insert becomes an overwrite (last writer wins), never a silently dropped write."""
    from decimal import Decimal

    from sqlalchemy import select

    from evidence.application import plan
    from evidence.models import PartidaProyectada

    await ok(await put_plan(c, "C-2.1.1", "2025-03-02", "4.5"))  # the concurrent first write
    pid = int(await c.scalar(select(PartidaProyectada.id_partida_anexo)))
    id_ot = int(await c.scalar(select(PartidaProyectada.id_ot)))
    late = d.PlanDiff(inserts=[((pid, dt.date(2025, 3, 2)), Decimal("7"))])
    async with c.app.state.sessionmaker() as s, s.begin():
        await plan._apply(
            s,
            c.app.state.evidence_writer,
            late,
            id_ot=id_ot,
            usuario="racer",
            now=dt.datetime.now(dt.UTC),
        )
    assert programado((await grid(c))["C-2.1.1"], 2) == "7.000000"
    assert await c.scalar(select(PartidaProyectada.usuario_actualizacion)) == "racer"
