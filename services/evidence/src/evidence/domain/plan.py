"""Daily plan of a budget line (``partida_proyectada``, §C.2.9): the volume programmed per line and
day, shown as ``programado`` next to production in the production grid.

Rules (DOMAIN names the table, not its rules; docs/rules.md "Decisions where DOMAIN is silent"):
a day's volume is a GPU volume (≥ 0, Decimal(15,6)); 0 means "nothing planned" and removes the
day's row, so ``programado`` is null on the grid. A plan file (CSV or the first sheet of an xlsx)
has one row per line and day — columns ``PARTIDA`` (the line code), ``FECHA`` (``YYYY-MM-DD`` or
``DD/MM/YYYY``), ``VOLUMEN`` and optionally ``ANEXO`` — and is applied whole or not at all: every
faulty row is reported with its row number (the header is row 1) and column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from evidence.domain.daily import PlanLine, line_key
from evidence.domain.eligibility import normalize_annex
from evidence.domain.errors import DomainError, file_too_large, file_unreadable
from evidence.domain.production import Q6, normalize_code, validate_volume

MAX_PLAN_FILE_BYTES = 2 * 1024 * 1024
"""A plan file larger than this is refused (413) before it is parsed."""
MAX_PLAN_ROWS = 20_000
"""Data rows of one file (a year of 50 lines is 18,250)."""
MAX_ERRORS_LISTED = 200
"""Row errors listed in the problem (``total_errores`` counts them all)."""
MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2100, 12, 31)

COLUMNS: dict[str, tuple[str, ...]] = {
    "partida": ("PARTIDA", "CODIGO", "CLAVE"),
    "fecha": ("FECHA",),
    "volumen": ("VOLUMEN", "VOLUMEN PROGRAMADO", "PROGRAMADO"),
}
"""Required columns (canonical name → accepted header names, compared by :func:`header_name`)."""
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"anexo": ("ANEXO",)}
CSV_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")

PlanKey = tuple[int, dt.date]
"""(id_partida_anexo, fecha): one day of one budget line."""


@dataclass(frozen=True)
class PlanRowError:
    fila: int
    campo: str
    codigo: str
    detalle: str


@dataclass(frozen=True)
class PlanFileRow:
    fila: int
    codigo: str
    anexo: str | None
    fecha: dt.date
    volumen: Decimal


@dataclass(frozen=True)
class PlanSheet:
    """A plan file read into cells: the header and the data rows with their row numbers."""

    header: list[object]
    rows: list[tuple[int, list[object]]]
    decimal_comma: bool = False


@dataclass
class PlanDiff:
    inserts: list[tuple[PlanKey, Decimal]] = field(default_factory=list)
    updates: list[tuple[int, Decimal]] = field(default_factory=list)  # (row id, volume)
    deletes: list[int] = field(default_factory=list)
    unchanged: int = 0


def header_name(value: object) -> str:
    """Header comparison key: upper case, no accents, ``_`` as a blank, blanks collapsed."""
    text = unicodedata.normalize("NFKD", str(value or ""))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.replace("_", " ").upper().split())


def column_positions(header: Sequence[object]) -> dict[str, int]:
    """Canonical column → its index; a missing required column → 422 ENCABEZADO_INVALIDO."""
    names = [header_name(h) for h in header]
    positions: dict[str, int] = {}
    for canonical, accepted in (COLUMNS | OPTIONAL_COLUMNS).items():
        for i, name in enumerate(names):
            if name in accepted:
                positions[canonical] = i
                break
    missing = [accepted[0] for canonical, accepted in COLUMNS.items() if canonical not in positions]
    if missing:
        raise DomainError(
            "ENCABEZADO_INVALIDO",
            f"faltan columnas: {', '.join(missing)}",
            field="archivo",
            columnas_faltantes=missing,
        )
    return positions


def parse_fecha(value: object) -> dt.date:
    """A date cell: a date (xlsx), ``YYYY-MM-DD`` or ``DD/MM/YYYY``, within 2000–2100."""
    if isinstance(value, dt.datetime):
        fecha = value.date()
    elif isinstance(value, dt.date):
        fecha = value
    else:
        text = str(value or "").strip()
        fecha = _parse_date_text(text)
    if not MIN_DATE <= fecha <= MAX_DATE:
        raise ValueError("fecha fuera de 2000..2100")
    return fecha


def _parse_date_text(text: str) -> dt.date:
    if not text:
        raise ValueError("fecha vacía")
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"fecha {text[:40]!r} no es AAAA-MM-DD ni DD/MM/AAAA")


def parse_volumen(value: object, *, decimal_comma: bool = False) -> Decimal:
    """A volume cell as a GPU volume (≥ 0, at most 6 decimals, Decimal(15,6))."""
    if isinstance(value, bool):
        raise ValueError("volumen no numérico")
    if isinstance(value, float):
        text = format(value, ".15g")  # a spreadsheet double, to the 15 digits Excel shows
    elif isinstance(value, int | Decimal):
        text = str(value)
    else:
        text = str(value or "").strip()
        if decimal_comma and "," in text and "." not in text:
            text = text.replace(",", ".")
    if not text or len(text) > 40:
        raise ValueError("volumen vacío" if not text else "volumen demasiado largo")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"volumen {text!r} no numérico") from None
    try:
        return validate_volume(number)
    except DomainError as exc:
        raise ValueError(exc.detail) from None


def _cell(cells: Sequence[object], position: int | None) -> object:
    if position is None or position >= len(cells):
        return None
    return cells[position]


def _blank(cells: Sequence[object]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def parse_plan_rows(sheet: PlanSheet) -> tuple[list[PlanFileRow], list[PlanRowError]]:
    """The sheet's rows as plan rows, and an error for every faulty cell (blank rows skipped)."""
    pos = column_positions(sheet.header)
    rows: list[PlanFileRow] = []
    errors: list[PlanRowError] = []
    for fila, cells in sheet.rows:
        if _blank(cells):
            continue
        codigo = str(_cell(cells, pos["partida"]) or "").strip()
        raw_anexo = _cell(cells, pos.get("anexo"))
        anexo = str(raw_anexo).strip() if raw_anexo is not None and str(raw_anexo).strip() else None
        row_errors: list[PlanRowError] = []
        if not codigo:
            row_errors.append(PlanRowError(fila, "partida", "PARTIDA_REQUERIDA", "partida vacía"))
        elif len(codigo) > 20:
            row_errors.append(
                PlanRowError(fila, "partida", "PARTIDA_NO_EXISTE", "código de más de 20")
            )
        fecha: dt.date | None = None
        try:
            fecha = parse_fecha(_cell(cells, pos["fecha"]))
        except ValueError as exc:
            row_errors.append(PlanRowError(fila, "fecha", "FECHA_INVALIDA", str(exc)))
        volumen: Decimal | None = None
        try:
            volumen = parse_volumen(_cell(cells, pos["volumen"]), decimal_comma=sheet.decimal_comma)
        except ValueError as exc:
            row_errors.append(PlanRowError(fila, "volumen", "VOLUMEN_INVALIDO", str(exc)))
        if row_errors or fecha is None or volumen is None:
            errors.extend(row_errors)
            continue
        rows.append(PlanFileRow(fila, codigo, anexo, fecha, volumen))
    return rows, errors


def read_plan_csv(data: bytes) -> PlanSheet:
    """A CSV plan file: utf-8 (with or without BOM), else cp1252, else latin-1; ``;`` separates
    when the header line has no comma (a Spanish-locale Excel export, whose volumes then use a
    decimal comma)."""
    if b"\x00" in data:
        raise file_unreadable("el CSV contiene bytes nulos")
    text = _decode(data)
    first = text.split("\n", 1)[0]
    delimiter = ";" if "," not in first and ";" in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    numbered = ((reader.line_num, cells) for cells in reader)
    try:
        return plan_sheet(numbered, decimal_comma=delimiter == ";")
    except csv.Error as exc:
        raise file_unreadable(f"CSV mal formado: {exc}") from None


def plan_sheet(
    rows: Iterable[tuple[int, Sequence[object]]], *, decimal_comma: bool = False
) -> PlanSheet:
    """A plan file's rows (number, cells) as a :class:`PlanSheet`: the first row is the header;
    blank rows are skipped; more than ``MAX_PLAN_ROWS`` data rows → 413 ARCHIVO_EXCEDE_LIMITE."""
    header: list[object] = []
    data: list[tuple[int, list[object]]] = []
    for i, (number, cells) in enumerate(rows):
        if i == 0:
            header = list(cells)
            continue
        if _blank(cells):
            continue
        if len(data) >= MAX_PLAN_ROWS:
            raise plan_too_many_rows()
        data.append((number, list(cells)))
    return PlanSheet(header, data, decimal_comma=decimal_comma)


def _decode(data: bytes) -> str:
    for encoding in CSV_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte")  # pragma: no cover


def plan_too_many_rows() -> DomainError:
    return file_too_large(
        f"el archivo tiene más de {MAX_PLAN_ROWS} filas", limite_filas=MAX_PLAN_ROWS
    )


def plan_too_large() -> DomainError:
    return file_too_large(
        f"el archivo excede {MAX_PLAN_FILE_BYTES} bytes", limite_bytes=MAX_PLAN_FILE_BYTES
    )


def resolve_plan_rows(
    rows: Iterable[PlanFileRow], lines: Sequence[PlanLine]
) -> tuple[dict[PlanKey, Decimal], list[PlanRowError]]:
    """Map each row's code (optionally narrowed by ``ANEXO``) to a production-grid row — lines
    consolidated by (anexo, code, description), the row's lowest line id — and refuse a code
    that names no row (PARTIDA_NO_EXISTE) or several (PARTIDA_AMBIGUA), and a second row for
    the same line and day (FILA_DUPLICADA)."""
    groups: dict[tuple[str, str, str], int] = {}
    for line in sorted(lines, key=lambda ln: ln.id):
        groups.setdefault(line_key(line), line.id)
    by_code: dict[str, list[tuple[str, int]]] = {}
    for (anexo, code, _desc), first_id in groups.items():
        by_code.setdefault(code, []).append((anexo, first_id))
    entries: dict[PlanKey, Decimal] = {}
    seen: dict[PlanKey, int] = {}
    errors: list[PlanRowError] = []
    for row in rows:
        candidates = by_code.get(normalize_code(row.codigo), [])
        if row.anexo is not None:
            candidates = [c for c in candidates if c[0] == normalize_annex(row.anexo)]
        if not candidates:
            errors.append(
                PlanRowError(
                    row.fila,
                    "partida",
                    "PARTIDA_NO_EXISTE",
                    f"{row.codigo!r} no es una partida activa de la OT",
                )
            )
            continue
        if len(candidates) > 1:
            errors.append(
                PlanRowError(
                    row.fila,
                    "partida",
                    "PARTIDA_AMBIGUA",
                    f"{row.codigo!r} nombra {len(candidates)} partidas: indique ANEXO",
                )
            )
            continue
        key = (candidates[0][1], row.fecha)
        if key in seen:
            errors.append(
                PlanRowError(
                    row.fila,
                    "fecha",
                    "FILA_DUPLICADA",
                    f"{row.codigo} {row.fecha.isoformat()} ya está en la fila {seen[key]}",
                )
            )
            continue
        seen[key] = row.fila
        entries[key] = row.volumen
    return entries, errors


def raise_plan_row_errors(errors: Sequence[PlanRowError]) -> None:
    """422 PLAN_INVALIDO naming every faulty row and column (the first ones listed)."""
    if not errors:
        return
    ordered = sorted(errors, key=lambda e: (e.fila, e.campo))
    listed = ordered[:MAX_ERRORS_LISTED]
    raise DomainError(
        "PLAN_INVALIDO",
        f"{len(ordered)} error(es) en el archivo; primero fila {ordered[0].fila}, "
        f"{ordered[0].campo}: {ordered[0].detalle}",
        field=f"filas[{ordered[0].fila}].{ordered[0].campo}",
        errors=[{"field": f"filas[{e.fila}].{e.campo}", "reason": e.detalle} for e in listed],
        filas=[
            {"fila": e.fila, "campo": e.campo, "codigo": e.codigo, "detalle": e.detalle}
            for e in listed
        ],
        total_errores=len(ordered),
    )


def plan_diff(
    requested: Mapping[PlanKey, Decimal], existing: Mapping[PlanKey, tuple[int, Decimal]]
) -> PlanDiff:
    """What to write: a positive volume inserts or updates the day, 0 deletes it, the same
    volume again changes nothing."""
    diff = PlanDiff()
    for key, raw in sorted(requested.items()):
        volumen = raw.quantize(Q6)
        current = existing.get(key)
        if current is None:
            if volumen == 0:
                diff.unchanged += 1
            else:
                diff.inserts.append((key, volumen))
        elif volumen == 0:
            diff.deletes.append(current[0])
        elif Decimal(current[1]).quantize(Q6) == volumen:
            diff.unchanged += 1
        else:
            diff.updates.append((current[0], volumen))
    return diff
