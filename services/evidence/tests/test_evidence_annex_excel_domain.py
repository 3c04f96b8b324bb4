"""Pure rules of the annex workbook reader (no database): header names, cell values, column
letters and the archive bounds checked before anything is parsed."""

from __future__ import annotations

import io
import zipfile
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


def test_archive_bounds_are_checked_before_parsing() -> None:
    with pytest.raises(DomainError) as empty:
        xl.check_archive(b"")
    assert empty.value.code == "EXCEL_INVALIDO"
    with pytest.raises(DomainError) as big:
        xl.check_archive(b"\0" * (xl.MAX_BYTES + 1))
    assert (big.value.code, big.value.status) == ("IMPORTACION_EXCEDE_LIMITE", 413)
    small = io.BytesIO()
    with zipfile.ZipFile(small, "w") as z:
        z.writestr("a.txt", "x")
    xl.check_archive(small.getvalue())  # a small readable zip passes (its content is parsed later)
