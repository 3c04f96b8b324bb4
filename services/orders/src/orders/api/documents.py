"""Routes of a proposal's documents (issue 15 item 4): the delivery receipt (acuse de entrega)
of a dispatched proposal and the picking list of a proposal being picked, each as PDF and as
Excel. Same readers as the proposal itself; 404 when it does not exist, 409 when its state has
no such document (acuse: SURTIDA/PARCIAL; picking: REVISADA/EN_SURTIMIENTO)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Response

from orders import documents, queries
from orders import domain as d
from orders.api.common import Lector, Session
from orders.application import clock, common
from orders.documents import excel, pdf, reads
from service_defaults.routing import DomainRoute

PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class PdfResponse(Response):
    media_type = PDF


class XlsxResponse(Response):
    media_type = XLSX


def _binary(media: str, what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {media: {"schema": {"type": "string", "format": "binary"}}},
            "description": what,
        }
    }


router = APIRouter(route_class=DomainRoute)


def _business_date(moment: datetime | None) -> date:
    """The business date of `moment` (now when None); a naive timestamp is UTC."""
    moment = moment or clock.now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return d.business_date(moment)


async def _documento(
    session: Session, id_propuesta: uuid.UUID, tipo: documents.TipoDocumento
) -> documents.Documento:
    prop = await common.get_propuesta(session, id_propuesta)
    if prop.estado not in tipo.estados:
        raise d.Conflict(
            tipo.error,
            f"La propuesta {id_propuesta} está {prop.estado}: "
            f"{tipo.titulo.lower()} solo en {', '.join(sorted(tipo.estados))}.",
            estado=prop.estado,
        )
    leida = await queries.propuesta_out(session, prop)
    cabecera = await reads.cabecera(session, prop)
    productos = await reads.productos(session, (it["id_producto"] for it in leida["items"]))
    if tipo is documents.ACUSE:
        return documents.acuse(leida, cabecera, productos, _business_date(prop.fecha_surtimiento))
    return documents.picking(leida, cabecera, productos, _business_date(None))


def _archivo(content: bytes, cls: type[Response], nombre: str) -> Response:
    return cls(content, headers={"Content-Disposition": f'attachment; filename="{nombre}"'})


@router.get(
    "/propuestas/{id_propuesta}/acuse.pdf",
    tags=["propuestas"],
    response_class=PdfResponse,
    responses=_binary(PDF, "Acuse de entrega (PDF)"),
)
async def acuse_pdf(id_propuesta: uuid.UUID, session: Session, user: Lector) -> Response:
    """Delivery receipt of a dispatched proposal: its dispatched lines, totals, signatures."""
    doc = await _documento(session, id_propuesta, documents.ACUSE)
    return _archivo(pdf.render(doc), PdfResponse, f"{doc.nombre_archivo}.pdf")


@router.get(
    "/propuestas/{id_propuesta}/acuse.xlsx",
    tags=["propuestas"],
    response_class=XlsxResponse,
    responses=_binary(XLSX, "Acuse de entrega (Excel)"),
)
async def acuse_excel(id_propuesta: uuid.UUID, session: Session, user: Lector) -> Response:
    doc = await _documento(session, id_propuesta, documents.ACUSE)
    return _archivo(excel.render(doc), XlsxResponse, f"{doc.nombre_archivo}.xlsx")


@router.get(
    "/propuestas/{id_propuesta}/picking.pdf",
    tags=["propuestas"],
    response_class=PdfResponse,
    responses=_binary(PDF, "Hoja de picking (PDF, para imprimir)"),
)
async def picking_pdf(id_propuesta: uuid.UUID, session: Session, user: Lector) -> Response:
    """Picking list: the lines still to pick, in FEFO walk order within each item."""
    doc = await _documento(session, id_propuesta, documents.PICKING)
    return _archivo(pdf.render(doc), PdfResponse, f"{doc.nombre_archivo}.pdf")


@router.get(
    "/propuestas/{id_propuesta}/picking.xlsx",
    tags=["propuestas"],
    response_class=XlsxResponse,
    responses=_binary(XLSX, "Hoja de picking (Excel)"),
)
async def picking_excel(id_propuesta: uuid.UUID, session: Session, user: Lector) -> Response:
    doc = await _documento(session, id_propuesta, documents.PICKING)
    return _archivo(excel.render(doc), XlsxResponse, f"{doc.nombre_archivo}.xlsx")
