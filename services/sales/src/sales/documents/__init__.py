"""Documents of a quote (issue 15 item 14): the printable PDF and the share text a seller pastes
into WhatsApp or an e-mail. `model` builds a pure document model from the quote and its client,
product and material; `pdf` (fpdf2) renders it; `model.texto_compartir` writes the message."""

from sales.documents.model import (
    COMPARTIBLES,
    CotizacionDoc,
    cotizacion_doc,
    nombre_archivo,
    pesos,
    texto_compartir,
    whatsapp_url,
)

__all__ = [
    "COMPARTIBLES",
    "CotizacionDoc",
    "cotizacion_doc",
    "nombre_archivo",
    "pesos",
    "texto_compartir",
    "whatsapp_url",
]
