"""Quote documents (issue 15 item 14): the quote as PDF and its share text (the WhatsApp /
e-mail message with a ``wa.me`` link). Same readers as the quote; 404 when it does not exist;
the share text only while the quote is open (borrador/enviada within its validity), else 409."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from sales import documents
from sales import domain as d
from sales.api.deps import Operador, Session
from sales.api.routing import DomainRoute
from sales.application import common, quotes
from sales.documents import pdf
from sales.models import Cliente, Material, Producto
from service_defaults.bounds import Id32

PDF = "application/pdf"


class PdfResponse(Response):
    media_type = PDF


class CotizacionCompartir(BaseModel):
    """The share text of a quote and a WhatsApp link that opens a chat with it."""

    folio: str
    estado: str
    texto: str
    whatsapp_url: str


router = APIRouter(route_class=DomainRoute)


async def _documento(session: Session, id_cotizacion: int) -> documents.CotizacionDoc:
    c = await quotes.get_cotizacion(session, id_cotizacion)
    cliente = await session.get(Cliente, c.id_cliente) if c.id_cliente is not None else None
    producto = await session.get(Producto, c.id_producto)
    material = await session.get(Material, c.id_material)
    assert producto is not None  # RESTRICT foreign keys
    assert material is not None
    today = d.business_date(common.utcnow())
    return documents.cotizacion_doc(c, cliente, producto, material, today)


@router.get(
    "/cotizaciones/{id_cotizacion}/pdf",
    tags=["cotizaciones"],
    response_class=PdfResponse,
    responses={
        200: {
            "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
            "description": "La cotización en PDF (cotizacion_COT-0007.pdf)",
        }
    },
)
async def quote_pdf(id_cotizacion: Id32, session: Session, user: Operador) -> Response:
    """Any state may be printed (the state is on the page)."""
    doc = await _documento(session, id_cotizacion)
    return PdfResponse(
        pdf.render(doc),
        headers={"Content-Disposition": f'attachment; filename="{documents.nombre_archivo(doc)}"'},
    )


@router.get(
    "/cotizaciones/{id_cotizacion}/compartir",
    tags=["cotizaciones"],
    response_model=CotizacionCompartir,
)
async def quote_share(id_cotizacion: Id32, session: Session, user: Operador) -> dict[str, Any]:
    doc = await _documento(session, id_cotizacion)
    if doc.estado not in documents.COMPARTIBLES:
        raise d.Conflict(
            f"La cotización {doc.folio} está {doc.estado.value}: ya no se comparte.",
            code="COTIZACION_NO_VIGENTE",
            estado=doc.estado.value,
        )
    texto = documents.texto_compartir(doc)
    return {
        "folio": doc.folio,
        "estado": doc.estado.value,
        "texto": texto,
        "whatsapp_url": documents.whatsapp_url(doc, texto),
    }
