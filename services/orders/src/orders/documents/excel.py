"""A proposal document as an Excel workbook (openpyxl), laid out as the legacy exports:
the acuse with its header cells, signature block and lines table (header row 17), the picking
list with its header block and the lines table from row 8."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet.worksheet import Worksheet

from orders.documents.model import ACUSE, Documento, fecha_corta

ACUSE_ENCABEZADOS = (
    "#",
    "CLAVE CNIS",
    "DESCRIPCIÓN",
    "U.M.",
    "TIPO",
    "LOTE",
    "CADUCIDAD",
    "CLASIFICACIÓN",
    "UBICACIÓN",
    "CANTIDAD",
    "FOLIO PEDIDO",
)
ACUSE_FILA_ENCABEZADOS = 17
PICKING_ENCABEZADOS = (
    "UBICACIÓN",
    "CLAVE CNIS",
    "PRODUCTO",
    "CADUCIDAD",
    "LOTE",
    "CANTIDAD",
    "CANTIDAD SURTIDA",
)
PICKING_FILA_ENCABEZADOS = 8

_AZUL = PatternFill(start_color="1F77B4", end_color="1F77B4", fill_type="solid")
_BLANCO = Font(bold=True, color="FFFFFF")
_DELGADO = Side(style="thin")
_BORDE = Border(left=_DELGADO, right=_DELGADO, top=_DELGADO, bottom=_DELGADO)
_CENTRO = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _tabla(
    ws: Worksheet, fila: int, encabezados: tuple[str, ...], datos: list[list[object]]
) -> None:
    for col, titulo in enumerate(encabezados, 1):
        c = ws.cell(row=fila, column=col, value=titulo)
        c.fill, c.font, c.alignment, c.border = _AZUL, _BLANCO, _CENTRO, _BORDE
    for r, valores in enumerate(datos, fila + 1):
        for col, v in enumerate(valores, 1):
            c = ws.cell(row=r, column=col, value=v)
            c.border, c.alignment = _BORDE, _CENTRO


def render(doc: Documento) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    if doc.tipo is ACUSE:
        _acuse(ws, doc)
    else:
        _picking(ws, doc)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _acuse(ws: Worksheet, doc: Documento) -> None:
    cab = doc.cabecera
    ws.title = "Acuse"
    ws["A1"] = doc.tipo.titulo
    ws["A1"].font = Font(bold=True, size=14, color="8B1538")
    ws["I1"] = f"#FOLIO: {cab.folio}"
    ws["I2"] = "TIPO: TRANSFERENCIA (SURTIMIENTO)"
    ws["I3"] = f"FOLIO DE PEDIDO: {cab.folio_pedido or 'N/A'}"
    ws["I4"] = f"FECHA: {fecha_corta(doc.fecha)}"
    ws["A6"] = f"ALMACÉN DESTINO: {cab.almacen_destino}"
    for col, titulo in enumerate(("ENTREGA", "AUTORIZA (ALMACÉN)", "RECIBE"), 1):
        c = ws.cell(row=9, column=1 + (col - 1) * 2, value=titulo)
        c.fill, c.font = _AZUL, _BLANCO
    ws["A10"] = f"INSTITUCIÓN: {cab.institucion}"
    for col in (1, 3, 5):
        ws.cell(row=11, column=col, value="NOMBRE:\n\nPUESTO:\n\nFIRMA: __________________")
    datos: list[list[object]] = [
        [
            ln.numero,
            ln.clave_cnis,
            ln.descripcion,
            ln.unidad_medida,
            "ORDINARIO",
            ln.numero_lote,
            fecha_corta(ln.caducidad),
            "",
            ln.ubicacion,
            ln.cantidad,
            cab.folio_pedido or "",
        ]
        for ln in doc.lineas
    ]
    _tabla(ws, ACUSE_FILA_ENCABEZADOS, ACUSE_ENCABEZADOS, datos)
    total = ACUSE_FILA_ENCABEZADOS + len(datos) + 1
    ws.cell(row=total, column=9, value="TOTAL").font = Font(bold=True)
    ws.cell(row=total, column=10, value=doc.total_piezas).font = Font(bold=True)
    for letra, ancho in zip(
        "ABCDEFGHIJK", (5, 16, 40, 10, 12, 14, 12, 14, 12, 10, 16), strict=True
    ):
        ws.column_dimensions[letra].width = ancho


def _picking(ws: Worksheet, doc: Documento) -> None:
    cab = doc.cabecera
    ws.title = "Picking"
    ws["A1"] = doc.tipo.titulo
    ws["A1"].font = Font(bold=True, size=14, color="8B1538")
    ws.merge_cells("A1:G1")
    ws["A3"], ws["B3"] = "Propuesta:", cab.folio
    ws["C3"], ws["D3"] = "Institución Solicitante:", cab.institucion
    ws["A4"], ws["B4"] = "Fecha:", fecha_corta(doc.fecha)
    ws["C4"], ws["D4"] = "Folio de Pedido:", cab.folio_pedido or "N/A"
    ws["A5"], ws["B5"] = "Área:", cab.almacen_destino
    ws["C5"], ws["D5"] = "Total Items:", len(doc.lineas)
    datos: list[list[object]] = [
        [
            ln.ubicacion,
            ln.clave_cnis,
            ln.descripcion,
            fecha_corta(ln.caducidad),
            ln.numero_lote,
            ln.cantidad,
            "",
        ]
        for ln in doc.lineas
    ]
    _tabla(ws, PICKING_FILA_ENCABEZADOS, PICKING_ENCABEZADOS, datos)
    for letra, ancho in zip("ABCDEFG", (12, 16, 72, 12, 30, 12, 20), strict=True):
        ws.column_dimensions[letra].width = ancho


def render_tabla(hoja: str, filas: Sequence[Mapping[str, object]]) -> bytes:
    """A list or report as a one-sheet workbook: a header row of the column names, then one row
    per entry (the CSV export's columns, in the same order)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = hoja[:31]
    encabezados = tuple(filas[0].keys()) if filas else ()
    _tabla(ws, 1, encabezados, [list(f.values()) for f in filas])
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
