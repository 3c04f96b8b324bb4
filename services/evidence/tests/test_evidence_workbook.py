"""The one xlsx reader of the uploads (daily plan and annex): bounds checked before parsing, the
first sheet streamed within the import's rows and columns, every openpyxl failure one code
(422 ARCHIVO_ILEGIBLE), the workbook closed however the reading ends."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from openpyxl import Workbook

from evidence.application import workbook as wb
from evidence.domain import DomainError

LIMITS = wb.WorkbookLimits(max_bytes=200_000, max_unzipped=1_000_000, max_rows=5, max_columns=3)


def book(rows: list[list[Any]]) -> bytes:
    out = io.BytesIO()
    w = Workbook()
    sheet = w.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    w.save(out)
    return out.getvalue()


def refused(data: bytes, limits: wb.WorkbookLimits = LIMITS) -> DomainError:
    with pytest.raises(DomainError) as err:
        wb.read_first_sheet(data, limits, list)
    return err.value


def test_the_first_sheet_is_streamed_within_the_columns() -> None:
    rows = wb.read_first_sheet(book([["a", "b", "c", "d"], [], [1, None, 2.5]]), LIMITS, list)
    assert rows == [(1, ["a", "b", "c"]), (2, [None, None, None]), (3, [1, None, 2.5])]


def test_bounds_are_checked_before_the_workbook_is_parsed() -> None:
    big = refused(b"PK\x03\x04" + b"\0" * LIMITS.max_bytes)
    assert (big.code, big.status, big.extensions) == (
        "ARCHIVO_EXCEDE_LIMITE",
        413,
        {"limite_bytes": LIMITS.max_bytes},
    )
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (LIMITS.max_unzipped + 1))
    assert len(bomb.getvalue()) < LIMITS.max_bytes
    err = refused(bomb.getvalue())
    assert (err.code, err.extensions) == (
        "ARCHIVO_EXCEDE_LIMITE",
        {"limite_bytes": LIMITS.max_unzipped},
    )
    rows = refused(book([[n] for n in range(LIMITS.max_rows + 1)]))
    assert (rows.code, rows.status, rows.extensions) == (
        "ARCHIVO_EXCEDE_LIMITE",
        413,
        {"limite_filas": LIMITS.max_rows},
    )
    assert len(wb.read_first_sheet(book([[n] for n in range(LIMITS.max_rows)]), LIMITS, list)) == 5


def test_every_unreadable_file_is_one_code() -> None:
    not_a_book = io.BytesIO()
    with zipfile.ZipFile(not_a_book, "w") as z:
        z.writestr("hola.txt", "no soy un libro")
    good = book([["a"], ["b"]])
    broken = io.BytesIO()  # a workbook whose sheet XML breaks while it is streamed
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    for data in (b"", b"ID,VOLUMEN\n1,2\n", not_a_book.getvalue(), broken.getvalue()):
        err = refused(data)
        assert (err.code, err.status, err.field) == ("ARCHIVO_ILEGIBLE", 422, "archivo"), data[:20]


def test_the_workbook_is_closed_however_the_reading_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl

    opened: list[Any] = []
    load = openpyxl.load_workbook

    def spy(*args: Any, **kwargs: Any) -> Any:
        assert kwargs == {"read_only": True, "data_only": True}
        opened.append(load(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(openpyxl, "load_workbook", spy)

    def stop(rows: Iterator[wb.Row]) -> None:
        next(rows)
        raise DomainError("ENCABEZADO_INVALIDO", field="archivo")

    data = book([["a"], ["b"]])
    with pytest.raises(DomainError):
        wb.read_first_sheet(data, LIMITS, stop)
    assert wb.read_first_sheet(data, LIMITS, list)
    assert len(opened) == 2
    assert all(o._archive.fp is None for o in opened)  # zipfile.ZipFile.close clears fp
