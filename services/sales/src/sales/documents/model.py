"""The quote as a document (legacy `cotizacion_detalle.html` and its WhatsApp link,
DECIDE-A7): folio ``COT-0007``, date, client, product and material, the breakdown (measures,
area, laser minutes), quantity, frozen unit price and total, validity. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from urllib.parse import quote

from sales import domain as d
from sales.domain import EstadoCotizacion
from sales.models import Cliente, Cotizacion, Material, Producto

NEGOCIO = "Acrylitec"
COMPARTIBLES = frozenset({EstadoCotizacion.BORRADOR, EstadoCotizacion.ENVIADA})
"""Effective states a quote can still be shared in (an open quote within its validity)."""


@dataclass(frozen=True)
class CotizacionDoc:
    folio: str
    fecha: date
    vigencia_hasta: date
    estado: EstadoCotizacion
    cliente: str | None
    telefono: str | None
    email: str | None
    producto: str
    detalle: str | None
    material: str
    largo: Decimal
    ancho: Decimal
    espesor_mm: int
    minutos_laser: int
    cantidad: int
    precio_unitario: Decimal
    monto_total: Decimal
    costo_laser: Decimal | None

    @property
    def area(self) -> Decimal:
        """Area of one piece in cm² (legacy "Área total")."""
        return self.largo * self.ancho

    @property
    def medidas(self) -> str:
        return f"{self.largo:.2f} cm × {self.ancho:.2f} cm, {self.espesor_mm} mm"


def cotizacion_doc(
    c: Cotizacion,
    cliente: Cliente | None,
    producto: Producto,
    material: Material,
    today: date,
) -> CotizacionDoc:
    laser = (c.parametros_precio or {}).get("costo_laser")
    return CotizacionDoc(
        folio=d.folio_cotizacion(c.id_cotizacion),
        fecha=c.fecha,
        vigencia_hasta=c.vigencia_hasta,
        estado=d.effective_quote_state(EstadoCotizacion(c.estado), c.vigencia_hasta, today),
        cliente=cliente.nombre if cliente else None,
        telefono=cliente.telefono if cliente else None,
        email=cliente.email if cliente else None,
        producto=producto.nombre,
        detalle=producto.detalle,
        material=material.descripcion,
        largo=c.largo_pza,
        ancho=c.ancho_pza,
        espesor_mm=c.espesor_mm,
        minutos_laser=c.minutos_laser,
        cantidad=c.cantidad,
        precio_unitario=c.precio_unitario,
        monto_total=c.monto_total,
        costo_laser=Decimal(laser) if laser is not None else None,
    )


def pesos(value: Decimal) -> str:
    """Money as Mexican pesos: ``$1,234.50``."""
    return f"${d.money(value):,.2f}"


def fecha_corta(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def nombre_archivo(doc: CotizacionDoc) -> str:
    return f"cotizacion_{doc.folio}.pdf"


def texto_compartir(doc: CotizacionDoc) -> str:
    """The message a seller pastes into WhatsApp or an e-mail (WhatsApp's ``*bold*``)."""
    saludo = f"Hola {doc.cliente}," if doc.cliente else "Hola,"
    producto = f"{doc.producto} ({doc.detalle})" if doc.detalle else doc.producto
    lineas = [
        f"{saludo} te compartimos tu cotización de {NEGOCIO}.",
        "",
        f"*Cotización {doc.folio}* — {fecha_corta(doc.fecha)}",
        f"Producto: {producto}",
        f"Material: {doc.material}",
        f"Medidas: {doc.medidas}",
    ]
    if doc.minutos_laser:
        lineas.append(f"Corte / grabado láser: {doc.minutos_laser} min")
    lineas += [
        f"Cantidad: {doc.cantidad} × {pesos(doc.precio_unitario)}",
        f"*Total: {pesos(doc.monto_total)} MXN*",
        f"Vigencia: hasta el {fecha_corta(doc.vigencia_hasta)}",
    ]
    return "\n".join(lineas)


def whatsapp_url(doc: CotizacionDoc, texto: str) -> str:
    """``https://wa.me/<52…>?text=…`` to the client's phone (E.164 stored, DECIDE-A6; the legacy
    link prefixed 52); without a phone, ``https://wa.me/?text=…`` lets the seller pick a chat."""
    digits = re.sub(r"\D", "", doc.telefono or "")
    return f"https://wa.me/{digits}?text={quote(texto, safe='')}"
