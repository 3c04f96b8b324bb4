"""Printable documents of a proposal (issue 15 item 4): the delivery receipt (acuse de entrega)
and the picking list (hoja de picking), each as PDF and as Excel.

`model` builds a pure document model from the proposal read (`orders.queries.propuesta_out`)
plus its header and product names (`reads`); `pdf` (fpdf2) and `excel` (openpyxl) render it.
"""

from orders.documents.model import (
    ACUSE,
    PICKING,
    Cabecera,
    Documento,
    LineaDocumento,
    ProductoInfo,
    TipoDocumento,
    acuse,
    picking,
)

__all__ = [
    "ACUSE",
    "PICKING",
    "Cabecera",
    "Documento",
    "LineaDocumento",
    "ProductoInfo",
    "TipoDocumento",
    "acuse",
    "picking",
]
