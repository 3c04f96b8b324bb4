"""Reading a daily-plan file into cells (:class:`evidence.domain.PlanSheet`): CSV through the
domain's reader, xlsx (the first sheet) through openpyxl in read-only mode.

Hostile files stop early: the body is bounded before this (``MAX_PLAN_FILE_BYTES``); an xlsx is a
zip whose declared uncompressed size is checked before openpyxl inflates anything (a zip bomb is
refused), and rows are read as a stream up to ``MAX_PLAN_ROWS``.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from evidence import domain as d
from evidence.domain import DomainError

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BINARY_TYPE = "application/octet-stream"
MEDIA_TYPES = (*sorted(CSV_TYPES), XLSX_TYPE, BINARY_TYPE)
XLSX_MAX_UNCOMPRESSED = 40 * 1024 * 1024
"""Declared uncompressed size of every member of an xlsx, together."""
ZIP_MAGIC = b"PK\x03\x04"
MAX_COLUMNS = 30
"""Columns read from an xlsx row (the plan's columns come first; a sheet claiming 16,384
columns is not materialised)."""


def file_kind(content_type: str | None, data: bytes) -> str:
    """``csv`` or ``xlsx`` from the body's media type (``application/octet-stream`` is sniffed:
    a zip is an xlsx); another type → 415 TIPO_ARCHIVO_NO_SOPORTADO."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in CSV_TYPES:
        return "csv"
    if media == XLSX_TYPE:
        return "xlsx"
    if media == BINARY_TYPE:
        return "xlsx" if data.startswith(ZIP_MAGIC) else "csv"
    raise DomainError(
        "TIPO_ARCHIVO_NO_SOPORTADO",
        f"tipo {media or '(ninguno)'!r}: envíe text/csv o {XLSX_TYPE}",
        field="archivo",
        tipos=list(MEDIA_TYPES),
    )


def read_plan_file(kind: str, data: bytes) -> d.PlanSheet:
    if len(data) > d.MAX_PLAN_FILE_BYTES:
        raise d.plan_too_large()
    if kind == "xlsx":
        return read_xlsx(data)
    return d.read_plan_csv(data)


def unreadable(detail: str) -> DomainError:
    return DomainError("ARCHIVO_ILEGIBLE", detail, field="archivo")


def read_xlsx(data: bytes) -> d.PlanSheet:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise unreadable("el archivo no es un xlsx (zip) válido") from None
    if declared > XLSX_MAX_UNCOMPRESSED:
        raise DomainError(
            "ARCHIVO_EXCEDE_LIMITE",
            f"el xlsx descomprimido excede {XLSX_MAX_UNCOMPRESSED} bytes",
            field="archivo",
            limite_bytes=XLSX_MAX_UNCOMPRESSED,
        )
    from openpyxl import load_workbook  # imported on use: start-up stays light

    try:
        workbook: Any = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a malformed workbook
        raise unreadable(f"xlsx ilegible: {type(exc).__name__}") from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise unreadable("el xlsx no tiene hojas")
        header: list[object] = []
        rows: list[tuple[int, list[object]]] = []
        try:
            for number, values in enumerate(
                sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1
            ):
                cells = list(values)
                if number == 1:
                    header = cells
                    continue
                if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                    continue
                if len(rows) >= d.MAX_PLAN_ROWS:
                    raise d.plan_too_many_rows()
                rows.append((number, cells))
        except DomainError:
            raise
        except Exception as exc:
            raise unreadable(f"xlsx ilegible: {type(exc).__name__}") from None
        return d.PlanSheet(header, rows)
    finally:
        workbook.close()
