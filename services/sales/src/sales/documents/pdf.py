"""The quote as PDF (fpdf2, core fonts, portrait letter): the legacy detail card — header with
folio and date, client, product and material, breakdown table, total, validity."""

from __future__ import annotations

import unicodedata

from fpdf import FPDF
from fpdf.fonts import FontFace

from sales.documents.model import NEGOCIO, CotizacionDoc, fecha_corta, pesos

OSCURO = (33, 37, 41)
VERDE = (209, 231, 221)


def latin1(text: str) -> str:
    """Core fonts encode Latin-1 (all of Spanish); any other character is decomposed to its
    Latin base, or shown as ``?``, instead of failing the document."""
    out = []
    for ch in text:
        try:
            ch.encode("latin-1")
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
            ch = base or ("-" if unicodedata.category(ch) == "Pd" else "?")
        out.append(ch)
    return "".join(out)


def render(doc: CotizacionDoc) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format="letter")
    pdf.set_title(latin1(f"Cotización {doc.folio}"))
    pdf.add_page()
    pdf.set_fill_color(*OSCURO)
    pdf.set_text_color(255)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(120, 10, latin1(f"Cotización {doc.folio}"), fill=True)
    pdf.cell(0, 10, NEGOCIO, fill=True, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 7, latin1(f"Fecha: {fecha_corta(doc.fecha)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 7, latin1(f"Estado: {doc.estado.value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    _seccion(pdf, "CLIENTE")
    cliente = [doc.cliente or "Público en general", doc.telefono or "", doc.email or ""]
    for dato in filter(None, cliente):
        pdf.cell(0, 6, latin1(dato), new_x="LMARGIN", new_y="NEXT")
    _seccion(pdf, "PRODUCTO")
    pdf.cell(0, 6, latin1(doc.producto), new_x="LMARGIN", new_y="NEXT")
    if doc.detalle:
        pdf.cell(0, 6, latin1(doc.detalle), new_x="LMARGIN", new_y="NEXT")
    _seccion(pdf, "MATERIAL")
    pdf.cell(0, 6, latin1(doc.material), new_x="LMARGIN", new_y="NEXT")
    _seccion(pdf, "DESGLOSE")
    filas = [
        ("Medidas", doc.medidas),
        ("Área por pieza", f"{doc.area:.2f} cm²"),
    ]
    if doc.minutos_laser:
        costo = f" — {pesos(doc.costo_laser)}" if doc.costo_laser is not None else ""
        filas.append(("Corte / grabado láser", f"{doc.minutos_laser} min{costo}"))
    filas += [
        ("Cantidad", str(doc.cantidad)),
        ("Precio unitario", pesos(doc.precio_unitario)),
    ]
    with pdf.table(col_widths=(1, 1), first_row_as_headings=False, line_height=7) as table:
        for concepto, valor in filas:
            table.row([latin1(concepto), latin1(valor)])
        total = table.row(style=FontFace(emphasis="BOLD", fill_color=VERDE))
        total.cell("TOTAL")
        total.cell(latin1(f"{pesos(doc.monto_total)} MXN"))
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(
        0,
        7,
        latin1(f"Vigencia: hasta el {fecha_corta(doc.vigencia_hasta)}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())


def _seccion(pdf: FPDF, titulo: str) -> None:
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_text_color(108, 117, 125)
    pdf.cell(0, 6, titulo, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.set_font("Helvetica", size=10)
