"""Reading a daily-plan file into cells (:class:`evidence.domain.PlanSheet`): CSV through the
domain's reader, xlsx (the first sheet) through the shared workbook reader
(:mod:`evidence.application.workbook`) with the plan's bounds.

The body is bounded before this (``MAX_PLAN_FILE_BYTES``); the data rows of either kind are
bounded by ``MAX_PLAN_ROWS``.
"""

from __future__ import annotations

from evidence import domain as d
from evidence.application import workbook
from evidence.application.workbook import BINARY_MEDIA_TYPE, XLSX_MEDIA_TYPE, ZIP_MAGIC
from evidence.domain.errors import file_type_unsupported

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
MEDIA_TYPES = (*sorted(CSV_TYPES), XLSX_MEDIA_TYPE, BINARY_MEDIA_TYPE)
XLSX_LIMITS = workbook.WorkbookLimits(
    max_bytes=d.MAX_PLAN_FILE_BYTES,
    max_unzipped=40 * 1024 * 1024,
    max_rows=2 * d.MAX_PLAN_ROWS,
    max_columns=30,
)
"""An xlsx plan: 2 MB, 40 MB uncompressed, 30 columns (the plan's come first); the sheet's rows,
blank ones included, are bounded at twice the data rows a plan may have (a sheet may space its
rows; the data rows themselves are bounded by ``MAX_PLAN_ROWS``, as a CSV's)."""


def file_kind(content_type: str | None, data: bytes) -> str:
    """``csv`` or ``xlsx`` from the body's media type (``application/octet-stream`` is sniffed:
    a zip is an xlsx); another type → 415 TIPO_ARCHIVO_NO_SOPORTADO."""
    media = workbook.media_type(content_type)
    if media in CSV_TYPES:
        return "csv"
    if media == XLSX_MEDIA_TYPE:
        return "xlsx"
    if media == BINARY_MEDIA_TYPE:
        return "xlsx" if data.startswith(ZIP_MAGIC) else "csv"
    raise file_type_unsupported(
        f"tipo {media or '(ninguno)'!r}: envíe text/csv o {XLSX_MEDIA_TYPE}", list(MEDIA_TYPES)
    )


def read_plan_file(kind: str, data: bytes) -> d.PlanSheet:
    if len(data) > d.MAX_PLAN_FILE_BYTES:
        raise d.plan_too_large()
    if kind == "xlsx":
        return workbook.read_first_sheet(data, XLSX_LIMITS, d.plan_sheet)
    return d.read_plan_csv(data)
