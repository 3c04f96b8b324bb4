"""Reading an annex workbook (Anexo C, ``.xlsx``) into rows of partida values (§C.2.3): the pure
rules of the rows; the workbook itself is opened and streamed by
:mod:`evidence.application.workbook` with this import's bounds.

The workbook's first sheet holds a header row — found among the first :data:`HEADER_SCAN_ROWS`
rows, so title rows above it are allowed — naming the ``PartidaAnexoImportada`` columns; each
later non-empty row is one partida, in sheet order (``orden_fila``). Header names are matched
without case, accents, surrounding blanks or punctuation (``Precio Unitario M.N.`` is
``PRECIO_UNITARIO_M_N``). Only ``ID_PARTIDA`` and ``VOLUMEN_PROYECTADO`` are required, as in the
JSON import. The values are returned raw (text or number); the import's own request model
validates them, so a row obeys exactly the rules of a JSON partida.

Bounds (413 ``ARCHIVO_EXCEDE_LIMITE``): :data:`MAX_BYTES` of file, :data:`MAX_UNZIPPED` once
uncompressed (a zip bomb is refused before it is parsed), :data:`MAX_SCANNED_ROWS` rows read in
all, :data:`MAX_COLUMNS` columns read (those three applied by the workbook reader) and
:data:`MAX_PARTIDAS` partidas (the JSON import's bound).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from evidence.domain.errors import DomainError, file_too_large

MAX_BYTES = 5 * 1024 * 1024
MAX_UNZIPPED = 50 * 1024 * 1024
MAX_PARTIDAS = 5000
MAX_SCANNED_ROWS = 20_000
MAX_COLUMNS = 40
HEADER_SCAN_ROWS = 20

COLUMNS: dict[str, tuple[str, ...]] = {
    "id_partida": ("ID_PARTIDA", "PARTIDA", "CODIGO", "CLAVE"),
    "descripcion": ("DESCRIPCION_CONCEPTO", "DESCRIPCION", "CONCEPTO"),
    "anexo": ("ANEXO",),
    "unidad": ("UNIDAD_MEDIDA", "UNIDAD", "UM"),
    "volumen_proyectado": ("VOLUMEN_PROYECTADO", "VOLUMEN", "CANTIDAD"),
    "precio_unitario_mn": ("PRECIO_UNITARIO_MN", "PRECIO_UNITARIO_M_N", "PU_MN", "P_U_MN"),
    "precio_unitario_usd": ("PRECIO_UNITARIO_USD", "PU_USD", "P_U_USD"),
}
"""Partida field → the header names that fill it (normalised, the first is the canonical)."""
REQUIRED = ("id_partida", "volumen_proyectado")
TEXT_FIELDS = frozenset({"id_partida", "descripcion", "anexo", "unidad"})


def header_key(value: Any) -> str:
    """``Precio Unitario M.N.`` → ``PRECIO_UNITARIO_M_N`` (no accents, case or punctuation)."""
    text = unicodedata.normalize("NFKD", str(value or "")).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")


_FIELD_BY_HEADER = {alias: name for name, aliases in COLUMNS.items() for alias in aliases}


@dataclass(frozen=True)
class SheetRow:
    fila: int
    """The row's number in the sheet (1-based, as Excel shows it)."""
    values: dict[str, Any]
    """Partida field → raw cell value (text, int or Decimal), only the columns present."""


@dataclass(frozen=True)
class AnnexSheet:
    headers: dict[str, tuple[str, str]]
    """Partida field → (header text as written, column letter)."""
    rows: list[SheetRow]


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def cell_value(value: Any, *, text: bool) -> Any:
    """A cell as the request model expects it: numbers exact (a float through its shortest
    repr, so 0.1 stays 0.1), text fields as text (a numeric code 5 → ``"5"``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return str(value).upper() if text else value
    if isinstance(value, float):
        number = Decimal(repr(value))
        if text:
            return (
                str(number.to_integral_value())
                if number == number.to_integral_value()
                else str(number)
            )
        return number
    if isinstance(value, int):
        return str(value) if text else value
    if isinstance(value, str):
        return value.strip()
    return str(value)


def annex_sheet(rows: Iterable[tuple[int, list[Any]]]) -> AnnexSheet:
    """The header and the partida rows of the workbook's first sheet, from its rows (number,
    cells) in order (see the module doc)."""
    headers: dict[str, tuple[str, str]] | None = None
    positions: dict[str, int] = {}
    first_seen: list[str] = []
    partidas: list[SheetRow] = []
    for fila, cells in rows:
        if headers is None:
            if fila > HEADER_SCAN_ROWS:
                break
            found = _header(cells)
            if found is None:
                if not first_seen and any(c is not None for c in cells):
                    first_seen = [str(c) for c in cells if c is not None]
                continue
            headers, positions = found
            continue
        values = {
            name: cell_value(cells[i] if i < len(cells) else None, text=name in TEXT_FIELDS)
            for name, i in positions.items()
        }
        if all(v is None for v in values.values()):
            continue
        if len(partidas) == MAX_PARTIDAS:
            raise file_too_large(
                f"el anexo tiene más de {MAX_PARTIDAS} partidas", limite=MAX_PARTIDAS
            )
        partidas.append(SheetRow(fila, values))
    if headers is None:
        raise DomainError(
            "ENCABEZADO_INVALIDO",
            f"no se encontró un encabezado con {', '.join(COLUMNS[n][0] for n in REQUIRED)} "
            f"en las primeras {HEADER_SCAN_ROWS} filas",
            field="archivo",
            columnas_faltantes=[COLUMNS[n][0] for n in REQUIRED],
            columnas_encontradas=first_seen[:MAX_COLUMNS],
        )
    if not partidas:
        raise DomainError("IMPORTACION_SIN_PARTIDAS", field="archivo")
    return AnnexSheet(headers, partidas)


def _header(cells: list[Any]) -> tuple[dict[str, tuple[str, str]], dict[str, int]] | None:
    """The row as a header (field → (text, letter), field → index) when it names every
    required column; the first column naming a field wins."""
    headers: dict[str, tuple[str, str]] = {}
    positions: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = _FIELD_BY_HEADER.get(header_key(cell)) if cell is not None else None
        if name is not None and name not in positions:
            headers[name] = (str(cell).strip(), column_letter(i))
            positions[name] = i
    if all(n in positions for n in REQUIRED):
        return headers, positions
    return None
