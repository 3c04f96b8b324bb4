"""A proposal document as PDF (fpdf2, core fonts: landscape letter, as the legacy reportlab
receipt): header with the folios, the lines table, and for the receipt the signature block."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.fonts import FontFace

from orders.documents.model import ACUSE, Documento, LineaDocumento, fecha_corta
from orders.documents.text import latin1

SISTEMA = "Sistema de Abasto, Inventarios y Control de Almacenes"
AZUL = (31, 119, 180)
GUINDA = (139, 21, 56)

ACUSE_COLUMNAS = (
    ("#", 8),
    ("CLAVE CNIS", 30),
    ("DESCRIPCIÓN", 58),
    ("U.M.", 20),
    ("TIPO", 20),
    ("LOTE", 24),
    ("CADUCIDAD", 20),
    ("CLASIFICACIÓN", 22),
    ("UBICACIÓN", 20),
    ("CANTIDAD", 16),
    ("OBSERVACIONES", 21),
)
PICKING_COLUMNAS = (
    ("UBICACIÓN", 26),
    ("CLAVE CNIS", 34),
    ("PRODUCTO", 95),
    ("CADUCIDAD", 22),
    ("LOTE", 30),
    ("CANTIDAD", 20),
    ("CANTIDAD SURTIDA", 32),
)


def _fila_acuse(ln: LineaDocumento) -> tuple[str, ...]:
    return (
        str(ln.numero),
        ln.clave_cnis,
        ln.descripcion,
        ln.unidad_medida,
        "ORDINARIO",
        ln.numero_lote,
        fecha_corta(ln.caducidad),
        "",
        ln.ubicacion,
        str(ln.cantidad),
        "",
    )


def _fila_picking(ln: LineaDocumento) -> tuple[str, ...]:
    return (
        ln.ubicacion,
        ln.clave_cnis,
        ln.descripcion,
        fecha_corta(ln.caducidad),
        ln.numero_lote,
        str(ln.cantidad),
        "",
    )


class _Pdf(FPDF):
    pie = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, latin1(f"{self.pie} · Página {self.page_no()}/{{nb}}"), align="R")


def render(doc: Documento) -> bytes:
    pdf = _Pdf(orientation="L", unit="mm", format="letter")
    pdf.pie = f"{doc.tipo.titulo} {doc.cabecera.folio}"
    pdf.set_title(latin1(f"{doc.tipo.titulo} {doc.cabecera.folio}"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    cab = doc.cabecera
    pdf.set_font("Helvetica", "B", 13)
    pdf.set_text_color(*GUINDA)
    pdf.cell(0, 8, latin1(SISTEMA), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.set_font("Helvetica", size=9)
    datos = (
        [
            f"#FOLIO: {cab.folio}",
            f"FOLIO DE PEDIDO: {cab.folio_pedido or 'N/A'}",
            f"FECHA: {fecha_corta(doc.fecha)}",
            "TIPO: TRANSFERENCIA (SURTIMIENTO)",
            f"INSTITUCIÓN: {cab.institucion}",
            f"ALMACÉN DESTINO: {cab.almacen_destino}",
        ]
        if doc.tipo is ACUSE
        else [
            f"Propuesta: {cab.folio}",
            f"Institución Solicitante: {cab.institucion}",
            f"Fecha: {fecha_corta(doc.fecha)}",
            f"Folio de Pedido: {cab.folio_pedido or 'N/A'}",
            f"Área: {cab.almacen_destino}",
            f"Total Items: {len(doc.lineas)}",
        ]
    )
    for dato in datos:
        pdf.cell(0, 5, latin1(dato), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_fill_color(*AZUL)
    pdf.set_text_color(255)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 9, latin1(doc.tipo.titulo), align="C", fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.ln(2)
    columnas, filas = (
        (ACUSE_COLUMNAS, [_fila_acuse(ln) for ln in doc.lineas])
        if doc.tipo is ACUSE
        else (PICKING_COLUMNAS, [_fila_picking(ln) for ln in doc.lineas])
    )
    pdf.set_font("Helvetica", size=7)
    encabezado = FontFace(emphasis="BOLD", color=255, fill_color=AZUL)
    with pdf.table(
        col_widths=tuple(w for _, w in columnas),
        headings_style=encabezado,
        text_align="CENTER",
        line_height=4,
    ) as table:
        table.row([latin1(c) for c, _ in columnas])
        for fila in filas:
            table.row([latin1(v) for v in fila])
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(
        0,
        6,
        latin1(f"Total de renglones: {len(doc.lineas)}   Total de piezas: {doc.total_piezas}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if doc.tipo is ACUSE:
        _firmas(pdf, cab.institucion)
    return bytes(pdf.output())


def _firmas(pdf: FPDF, institucion: str) -> None:
    pdf.ln(6)
    pdf.set_font("Helvetica", size=8)
    bloque = "NOMBRE:\n\nPUESTO:\n\nFIRMA: __________________"
    with pdf.table(
        col_widths=(1, 1, 1),
        headings_style=FontFace(emphasis="BOLD", color=255, fill_color=AZUL),
        text_align="LEFT",
        line_height=4,
    ) as table:
        table.row([latin1("ENTREGA"), latin1("AUTORIZA (ALMACÉN)"), latin1("RECIBE")])
        table.row([bloque, bloque, latin1(f"INSTITUCIÓN: {institucion}\n\n{bloque}")])
