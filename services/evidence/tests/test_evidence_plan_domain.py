"""Pure rules of the daily plan (``evidence.domain.plan``): reading cells, resolving codes to
production-grid rows, and what a save writes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from evidence import domain as d
from evidence.domain.plan import header_name, parse_fecha, parse_volumen


@pytest.mark.spec("C.2.9")
def test_header_names_ignore_case_accents_underscores_and_blanks() -> None:
    assert header_name(" Volumen_Programado ") == "VOLUMEN PROGRAMADO"
    assert header_name("Fécha") == "FECHA"
    assert header_name(None) == ""


@pytest.mark.spec("C.2.9")
def test_cells_are_read_as_dates_and_gpu_volumes() -> None:
    assert parse_fecha("2025-03-05") == parse_fecha("05/03/2025") == dt.date(2025, 3, 5)
    assert parse_fecha(dt.datetime(2025, 3, 5, 13, 0)) == dt.date(2025, 3, 5)
    for bad in ("", "2025-13-01", "5/3/25x", "2101-01-01", dt.date(1999, 12, 31)):
        with pytest.raises(ValueError, match="fecha"):
            parse_fecha(bad)
    assert parse_volumen("2,5", decimal_comma=True) == Decimal("2.500000")
    assert parse_volumen(0.1 + 0.2) == Decimal("0.300000")  # a spreadsheet double
    assert parse_volumen(7) == Decimal("7.000000")
    for bad in ("-1", "2,5", "1.0000001", "nan", float("inf"), True, "", "x" * 41):
        with pytest.raises(ValueError, match=r"volumen|decimales|negativo|finito|Decimal"):
            parse_volumen(bad)


@pytest.mark.spec("C.2.9")
def test_a_code_names_one_grid_row_or_is_refused() -> None:
    lines = [
        d.PlanLine(10, "C-2", "C-2.1.1", "Técnico", "JOR", Decimal(1)),
        d.PlanLine(7, " c-2 ", "C-2.1.1.", "Técnico ", "JOR", Decimal(1)),  # same row, reimported
        d.PlanLine(20, "C-3", "C-3.4.2", "Grúa", "HR", Decimal(1)),
        d.PlanLine(21, "C3EXT", "C-3.4.2", "Grúa", "HR", Decimal(1)),
    ]
    day = dt.date(2025, 3, 1)
    rows = [
        d.PlanFileRow(2, "C-2.1.1", None, day, Decimal(1)),
        d.PlanFileRow(3, "C-3.4.2", None, day, Decimal(1)),
        d.PlanFileRow(4, "C-3.4.2", "c3ext", day, Decimal(2)),
        d.PlanFileRow(5, "C-2.1.1.", None, day, Decimal(3)),
        d.PlanFileRow(6, "C-9", None, day, Decimal(3)),
    ]
    entries, errors = d.resolve_plan_rows(rows, lines)
    assert entries == {(7, day): Decimal(1), (21, day): Decimal(2)}
    assert [(e.fila, e.codigo) for e in errors] == [
        (3, "PARTIDA_AMBIGUA"),
        (5, "FILA_DUPLICADA"),
        (6, "PARTIDA_NO_EXISTE"),
    ]


@pytest.mark.spec("C.2.9")
def test_a_plan_save_inserts_updates_clears_and_skips_the_same_value() -> None:
    a, b, c, e = (dt.date(2025, 3, n) for n in (1, 2, 3, 4))
    existing = {(1, a): (100, Decimal("2")), (1, b): (101, Decimal("5")), (1, c): (102, Decimal(1))}
    requested = {
        (1, a): Decimal("2.000000"),
        (1, b): Decimal("6"),
        (1, c): Decimal(0),
        (1, e): Decimal("4"),
        (2, e): Decimal(0),
    }
    diff = d.plan_diff(requested, existing)
    assert diff.inserts == [((1, e), Decimal("4.000000"))]
    assert diff.updates == [(101, Decimal("6.000000"))]
    assert diff.deletes == [102]
    assert diff.unchanged == 2


@pytest.mark.spec("C.2.9")
def test_a_faulty_file_names_every_row_and_column() -> None:
    sheet = d.PlanSheet(
        ["Partida", "Fecha", "Volumen"],
        [(2, ["C-2.1.1", "2025-03-01", "1"]), (3, ["", "x", "-1"]), (4, [None, None, None])],
    )
    rows, errors = d.parse_plan_rows(sheet)
    assert [r.fila for r in rows] == [2]
    assert [(e.fila, e.campo) for e in errors] == [(3, "partida"), (3, "fecha"), (3, "volumen")]
    with pytest.raises(d.DomainError) as raised:
        d.raise_plan_row_errors(errors)
    assert raised.value.code == "PLAN_INVALIDO"
    assert raised.value.field == "filas[3].fecha"
    assert raised.value.extensions["total_errores"] == 3
    with pytest.raises(d.DomainError) as header:
        d.parse_plan_rows(d.PlanSheet(["PARTIDA"], []))
    assert header.value.extensions["columnas_faltantes"] == ["FECHA", "VOLUMEN"]


def test_a_plan_sheet_takes_the_first_row_as_header_and_skips_blank_rows() -> None:
    sheet = d.plan_sheet([(1, ["PARTIDA", "FECHA"]), (2, [None, " "]), (3, ["C-2", "2025-03-01"])])
    assert (sheet.header, sheet.rows) == (["PARTIDA", "FECHA"], [(3, ["C-2", "2025-03-01"])])
    too_many = [(n, ["C-2"]) for n in range(1, d.MAX_PLAN_ROWS + 3)]
    with pytest.raises(d.DomainError) as err:
        d.plan_sheet(too_many)
    assert (err.value.code, err.value.status) == ("ARCHIVO_EXCEDE_LIMITE", 413)
    assert err.value.extensions["limite_filas"] == d.MAX_PLAN_ROWS
    d.plan_sheet(too_many[:-1])  # the header and MAX_PLAN_ROWS data rows pass
