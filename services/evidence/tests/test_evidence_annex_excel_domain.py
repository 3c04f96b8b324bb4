"""Pure rules of the annex workbook reader (no database): header names, cell values, column
letters, and the header and partida rows read from a sheet's rows (the workbook itself is read
by the shared reader, test_evidence_workbook.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from evidence.domain import DomainError
from evidence.domain import annex_excel as xl


def test_header_names_match_without_case_accents_or_punctuation() -> None:
    assert xl.header_key("  Descripción   Concepto ") == "DESCRIPCION_CONCEPTO"
    assert xl.header_key("Precio Unitario M.N.") == "PRECIO_UNITARIO_M_N"
    assert xl.header_key("P.U. USD") == "P_U_USD"
    assert xl.header_key(None) == ""


def test_cells_keep_exact_numbers_and_text_codes() -> None:
    assert xl.cell_value(0.1, text=False) == Decimal("0.1")
    assert xl.cell_value(1234.5678, text=False) == Decimal("1234.5678")
    assert xl.cell_value(12, text=True) == "12"
    assert xl.cell_value(12.0, text=True) == "12"
    assert xl.cell_value(2.5, text=True) == "2.5"
    assert xl.cell_value("  C-2 ", text=True) == "C-2"
    assert xl.cell_value("   ", text=True) is None


def test_column_letters_follow_excel() -> None:
    assert [xl.column_letter(i) for i in (0, 25, 26, 27, 701, 702)] == [
        "A",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]


def test_the_header_is_found_below_title_rows_and_blank_rows_are_skipped() -> None:
    sheet = xl.annex_sheet(
        [
            (1, ["ANEXO C", None]),
            (2, [None, None]),
            (3, ["Id Partida", "Volumen", "Nota"]),
            (4, ["C-2.1.1", 10.5, "x"]),
            (5, [None, "  ", "solo nota"]),
            (6, [7, 2]),
        ]
    )
    assert sheet.headers == {
        "id_partida": ("Id Partida", "A"),
        "volumen_proyectado": ("Volumen", "B"),
    }
    assert [(r.fila, r.values) for r in sheet.rows] == [
        (4, {"id_partida": "C-2.1.1", "volumen_proyectado": Decimal("10.5")}),
        (6, {"id_partida": "7", "volumen_proyectado": 2}),
    ]


def test_a_missing_header_no_partida_or_too_many_are_refused() -> None:
    with pytest.raises(DomainError) as header:
        xl.annex_sheet([(1, ["ANEXO C"]), (2, ["Partida", "Unidad"])])
    assert (header.value.code, header.value.status) == ("ENCABEZADO_INVALIDO", 422)
    assert header.value.extensions["columnas_encontradas"] == ["ANEXO C"]
    with pytest.raises(DomainError) as empty:
        xl.annex_sheet([(1, ["ID_PARTIDA", "VOLUMEN_PROYECTADO"]), (2, [None, None])])
    assert empty.value.code == "IMPORTACION_SIN_PARTIDAS"
    rows = ((n, [f"C-{n}", 1]) for n in range(2, xl.MAX_PARTIDAS + 3))
    with pytest.raises(DomainError) as many:
        xl.annex_sheet([(1, ["ID_PARTIDA", "VOLUMEN_PROYECTADO"]), *rows])
    assert (many.value.code, many.value.status) == ("ARCHIVO_EXCEDE_LIMITE", 413)
    assert many.value.extensions["limite"] == xl.MAX_PARTIDAS
