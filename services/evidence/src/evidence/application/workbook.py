"""The one reader of uploaded xlsx workbooks (the daily plan import and the annex import).

A hostile file stops early, each import with its own :class:`WorkbookLimits`: the body is
bounded (``max_bytes``); an xlsx is a zip whose declared uncompressed size is summed before
openpyxl inflates anything, so a zip bomb is refused (``max_unzipped``); openpyxl opens it
read-only with cached values, only the first sheet is read, each row cut at ``max_columns``
(a sheet claiming 16,384 columns is not materialised) and the rows streamed up to ``max_rows``
(blank ones included: read-only openpyxl fills a gap in the row numbers with empty rows). The
workbook is always closed. Every failure is one of the file-level codes of
:mod:`evidence.domain.errors`: 413 ARCHIVO_EXCEDE_LIMITE, 422 ARCHIVO_ILEGIBLE (whatever
openpyxl raised); what the rows mean — the header, the data rows — is the import's own rule,
a pure function of the rows (``consume``).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from evidence.domain.errors import DomainError, file_too_large, file_unreadable

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BINARY_MEDIA_TYPE = "application/octet-stream"
ZIP_MAGIC = b"PK\x03\x04"

Row = tuple[int, list[object]]
"""A sheet row: its number (1-based, as Excel shows it) and its cells (``max_columns`` at most;
empty cells are ``None``)."""
T = TypeVar("T")


@dataclass(frozen=True)
class WorkbookLimits:
    max_bytes: int
    """The file as uploaded."""
    max_unzipped: int
    """The declared uncompressed size of every member of the zip, together."""
    max_rows: int
    """Rows read from the sheet, blank ones included."""
    max_columns: int
    """Cells read from each row."""


def media_type(content_type: str | None) -> str:
    """``Text/CSV; charset=utf-8`` → ``text/csv`` (empty when there is none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def too_large(limits: WorkbookLimits) -> DomainError:
    """413 ARCHIVO_EXCEDE_LIMITE for a body over ``max_bytes`` (also raised by a route that
    stops reading the body there)."""
    return file_too_large(
        f"el archivo excede {limits.max_bytes} bytes", limite_bytes=limits.max_bytes
    )


def check_size(data: bytes, limits: WorkbookLimits) -> None:
    if len(data) > limits.max_bytes:
        raise too_large(limits)


def check_archive(data: bytes, limits: WorkbookLimits) -> None:
    """The size bound, then a readable zip whose members stay under ``max_unzipped``."""
    check_size(data, limits)
    if not data:
        raise file_unreadable("el archivo está vacío")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise file_unreadable("el archivo no es un xlsx (zip) válido") from None
    if declared > limits.max_unzipped:
        raise file_too_large(
            f"el xlsx descomprimido excede {limits.max_unzipped} bytes",
            limite_bytes=limits.max_unzipped,
        )


def read_first_sheet(
    data: bytes, limits: WorkbookLimits, consume: Callable[[Iterator[Row]], T]
) -> T:
    """``consume`` (the import's pure reading of the rows) applied to the first sheet's rows,
    streamed; the workbook is closed however it ends."""
    check_archive(data, limits)
    from openpyxl import load_workbook  # imported on use: start-up stays light

    try:
        book: Any = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged or foreign file
        raise file_unreadable(f"xlsx ilegible: {type(exc).__name__}") from None
    try:
        try:
            sheet = book.worksheets[0] if book.worksheets else None
        except Exception as exc:
            raise file_unreadable(f"xlsx ilegible: {type(exc).__name__}") from None
        if sheet is None:
            raise file_unreadable("el libro no tiene hojas")
        return consume(_rows(sheet, limits))
    finally:
        book.close()


def _rows(sheet: Any, limits: WorkbookLimits) -> Iterator[Row]:
    """The sheet's rows with their numbers; an openpyxl failure while streaming (the XML is read
    lazily) is ARCHIVO_ILEGIBLE, a row past ``max_rows`` ARCHIVO_EXCEDE_LIMITE."""
    number = 0
    try:
        rows = iter(sheet.iter_rows(max_col=limits.max_columns, values_only=True))
    except Exception as exc:
        raise file_unreadable(f"xlsx ilegible: {type(exc).__name__}") from None
    while True:
        try:
            values = next(rows, None)
        except Exception as exc:
            raise file_unreadable(f"xlsx ilegible: {type(exc).__name__}") from None
        if values is None:
            return
        number += 1
        if number > limits.max_rows:
            raise file_too_large(
                f"la hoja tiene más de {limits.max_rows} filas", limite_filas=limits.max_rows
            )
        yield number, list(values)
