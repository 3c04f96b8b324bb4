"""CSV upload of request items (DOMAIN §B.4.7 "CSV upload", §B.2.9, HO-D25): the legacy file
format byte for byte, parsed and judged without I/O.

* decoding tries ``utf-8-sig``, ``utf-8``, ``latin-1``, ``cp1252`` in that order (a BOM is
  dropped); ``latin-1`` decodes any byte, so a text in which it finds C1 control characters
  (0x80–0x9F: never real text, but cp1252's curly quotes, dashes, ``€``...) is read as cp1252;
* columns ``CLAVE`` and ``CANTIDAD SOLICITADA``, optional ``FOLIO`` (names compared without
  surrounding blanks and case; the comma separates, or ``;`` when the header line has no comma);
* a row with an empty clave or cantidad is skipped (``OMITIDA``); a cantidad that is not an
  integer, or is ≤ 0 (HO-D25: 0 is refused), or beyond `CANTIDAD_MAXIMA` → ``CANTIDAD_INVALIDA``;
  an unknown clave → ``CLAVE_NO_EXISTE``; the quantities of a repeated clave are summed;
* at most `MAX_CLAVES` distinct valid claves (`CargaExcedeLimite` beyond);
* ``FOLIO``: the first non-empty value.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orders.domain.errors import DomainError

ENCODINGS = ("utf-8-sig", "utf-8", "latin-1", "cp1252")
"""The decodings tried, in order (§B.4.7)."""

COL_CLAVE = "CLAVE"
COL_CANTIDAD = "CANTIDAD SOLICITADA"
COL_FOLIO = "FOLIO"

MAX_CLAVES = 10_000
"""At most this many distinct valid claves per file (§B.4.7)."""

MAX_BYTES = 5 * 1024 * 1024
"""The largest file accepted (a 10,000-clave file is well under 1 MB)."""

CANTIDAD_MAXIMA = 1_000_000
"""The largest quantity of one item (the bound of a hand-captured item), line or sum."""

PAGE_SIZE = 25
"""The preview's page size (§B.4.7)."""

_C1 = re.compile("[\x80-\x9f]")


class EstadoLinea(StrEnum):
    """The outcome of one line of the file."""

    OK = "OK"
    OMITIDA = "OMITIDA"
    CLAVE_NO_EXISTE = "CLAVE_NO_EXISTE"
    CANTIDAD_INVALIDA = "CANTIDAD_INVALIDA"


ERRORES = (EstadoLinea.CLAVE_NO_EXISTE, EstadoLinea.CANTIDAD_INVALIDA)
"""The outcomes written to the error log (`tipo_error` of §B.2.9)."""


class ArchivoInvalido(DomainError):
    """The file cannot be read as the legacy CSV (encoding, header): 422, field ``archivo``."""

    def __init__(self, code: str, detail: str, **extensions: Any) -> None:
        super().__init__(code, detail, field="archivo", **extensions)


class CargaExcedeLimite(DomainError):
    """More than `MAX_CLAVES` distinct valid claves (or more than `MAX_BYTES`): 413."""

    status = 413

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__("CARGA_EXCEDE_LIMITE", detail, field="archivo", **extensions)


@dataclass(frozen=True)
class Fila:
    """One data row as written: its line number in the file (the header is line 1)."""

    linea: int
    clave: str
    cantidad: str


@dataclass(frozen=True)
class Archivo:
    codificacion: str
    folio: str | None
    filas: list[Fila]


@dataclass(frozen=True)
class Linea:
    linea: int
    clave: str
    cantidad: str
    estado: EstadoLinea
    mensaje: str = ""
    producto_id: int | None = None


@dataclass(frozen=True)
class Item:
    """A summed item: one per distinct valid clave, in the order of first appearance."""

    producto_id: int
    clave: str
    cantidad: int


@dataclass
class Resultado:
    lineas: list[Linea] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)

    @property
    def errores(self) -> list[Linea]:
        return [ln for ln in self.lineas if ln.estado in ERRORES]


def decodificar(data: bytes) -> tuple[str, str]:
    """The text of the file and the encoding that read it."""
    for enc in ENCODINGS:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc == "latin-1" and _C1.search(text):
            try:
                return data.decode("cp1252"), "cp1252"
            except UnicodeDecodeError:
                pass
        return text, enc
    raise ArchivoInvalido("CSV_CODIFICACION", "El archivo no está en una codificación admitida.")


def _norm(name: str | None) -> str:
    return " ".join((name or "").split()).upper()


def leer(data: bytes) -> Archivo:
    """Decode the file and read its rows (header checked; nothing judged yet)."""
    if len(data) > MAX_BYTES:
        raise CargaExcedeLimite(f"El archivo excede {MAX_BYTES} bytes.", limite_bytes=MAX_BYTES)
    text, enc = decodificar(data)
    first = text.split("\n", 1)[0]
    delim = ";" if "," not in first and ";" in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise ArchivoInvalido("CSV_VACIO", "El archivo no tiene encabezado.")
    cols = [_norm(h) for h in header]
    faltan = [c for c in (COL_CLAVE, COL_CANTIDAD) if c not in cols]
    if faltan:
        raise ArchivoInvalido(
            "CSV_ENCABEZADO_INVALIDO",
            f"Faltan las columnas: {', '.join(faltan)}.",
            columnas_faltantes=faltan,
            columnas_requeridas=[COL_CLAVE, COL_CANTIDAD],
        )
    i_clave, i_cant = cols.index(COL_CLAVE), cols.index(COL_CANTIDAD)
    i_folio = cols.index(COL_FOLIO) if COL_FOLIO in cols else None
    folio: str | None = None
    filas: list[Fila] = []
    for row in reader:
        linea = reader.line_num

        def cell(i: int, row: list[str] = row) -> str:
            return row[i].strip() if i < len(row) else ""

        if i_folio is not None and folio is None and cell(i_folio):
            folio = cell(i_folio)[:100]
        if not any(c.strip() for c in row):
            continue
        filas.append(Fila(linea, cell(i_clave), cell(i_cant)))
    return Archivo(enc, folio, filas)


def cantidad(texto: str) -> int | None:
    """The quantity written, if it is a valid one (an integer 1…`CANTIDAD_MAXIMA`)."""
    if not re.fullmatch(r"[+-]?\d+", texto):
        return None
    n = int(texto)
    return n if 1 <= n <= CANTIDAD_MAXIMA else None


def evaluar(filas: list[Fila], productos: Mapping[str, int]) -> Resultado:
    """Judge each row against the catalogue (`productos`: clave → product id) and sum the
    repeated claves. Raises `CargaExcedeLimite` beyond `MAX_CLAVES` distinct valid claves."""
    out = Resultado()
    sumas: dict[str, int] = {}
    ids: dict[str, int] = {}
    for f in filas:
        if not f.clave or not f.cantidad:
            out.lineas.append(Linea(f.linea, f.clave, f.cantidad, EstadoLinea.OMITIDA, "Vacía"))
            continue
        n = cantidad(f.cantidad)
        if n is None or sumas.get(f.clave, 0) + n > CANTIDAD_MAXIMA:
            out.lineas.append(
                Linea(
                    f.linea,
                    f.clave,
                    f.cantidad,
                    EstadoLinea.CANTIDAD_INVALIDA,
                    f"Cantidad inválida: '{f.cantidad}' (entero de 1 a {CANTIDAD_MAXIMA}).",
                )
            )
            continue
        pid = productos.get(f.clave)
        if pid is None:
            out.lineas.append(
                Linea(
                    f.linea,
                    f.clave,
                    f.cantidad,
                    EstadoLinea.CLAVE_NO_EXISTE,
                    f"La clave '{f.clave}' no existe en el catálogo.",
                )
            )
            continue
        if f.clave not in sumas and len(sumas) >= MAX_CLAVES:
            raise CargaExcedeLimite(
                f"El archivo tiene más de {MAX_CLAVES} claves distintas.", limite=MAX_CLAVES
            )
        sumas[f.clave] = sumas.get(f.clave, 0) + n
        ids[f.clave] = pid
        out.lineas.append(Linea(f.linea, f.clave, f.cantidad, EstadoLinea.OK, producto_id=pid))
    out.items = [Item(ids[c], c, q) for c, q in sumas.items()]
    return out
