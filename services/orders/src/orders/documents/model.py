"""The document model of a proposal's documents: what the acuse de entrega and the hoja de
picking say, built without I/O from the proposal read (`orders.queries.propuesta_out`), its
header (`Cabecera`) and the names of its products; the renderers (`pdf`, `excel`) only lay it out.

Legacy columns (`acuse_excel.py`, `picking_views.py:exportar_picking_excel`): the acuse lists
every dispatched line (# · CLAVE CNIS · DESCRIPCIÓN · U.M. · TIPO · LOTE · CADUCIDAD ·
CLASIFICACIÓN · UBICACIÓN · CANTIDAD · FOLIO PEDIDO / OBSERVACIONES) with a signature block;
the picking list every line still to pick (UBICACIÓN · CLAVE CNIS · PRODUCTO · CADUCIDAD · LOTE ·
CANTIDAD · CANTIDAD SURTIDA, the last left blank for the picker's pen).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from orders import domain as d

TIPO_SURTIMIENTO = "ORDINARIO"
"""The legacy receipt's constant TIPO column."""


@dataclass(frozen=True)
class TipoDocumento:
    """One kind of document: its title, file-name stem and the proposal states it exists in."""

    clave: str
    titulo: str
    archivo: str
    estados: frozenset[str]
    error: str
    """The 409 code when the proposal is in another state."""


ACUSE = TipoDocumento(
    clave="acuse",
    titulo="ACUSE DE ENTREGA",
    archivo="acuse_entrega",
    estados=frozenset({d.EstadoPropuesta.SURTIDA.value, d.EstadoPropuesta.PARCIAL.value}),
    error="PROPUESTA_NO_SURTIDA",
)
PICKING = TipoDocumento(
    clave="picking",
    titulo="HOJA DE PICKING",
    archivo="picking",
    estados=frozenset({d.EstadoPropuesta.REVISADA.value, d.EstadoPropuesta.EN_SURTIMIENTO.value}),
    error="PICKING_NO_DISPONIBLE",
)


@dataclass(frozen=True)
class Cabecera:
    """The request side of the header: folios, requesting institution, destination warehouse."""

    folio: str
    folio_pedido: str | None
    institucion: str
    almacen_destino: str


@dataclass(frozen=True)
class ProductoInfo:
    descripcion: str
    unidad_medida: str


@dataclass(frozen=True)
class LineaDocumento:
    numero: int
    clave_cnis: str
    descripcion: str
    unidad_medida: str
    numero_lote: str
    caducidad: date | None
    ubicacion: str
    cantidad: int


@dataclass(frozen=True)
class Documento:
    tipo: TipoDocumento
    cabecera: Cabecera
    fecha: date
    id_propuesta: str
    lineas: tuple[LineaDocumento, ...]

    @property
    def nombre_archivo(self) -> str:
        """File name without extension (legacy: ``acuse_entrega_<folio>``, ``picking_<folio>``)."""
        return f"{self.tipo.archivo}_{self.cabecera.folio}"

    @property
    def total_piezas(self) -> int:
        return sum(ln.cantidad for ln in self.lineas)


def _lineas(
    propuesta: Mapping[str, Any], productos: Mapping[int, ProductoInfo], estados: frozenset[str]
) -> tuple[LineaDocumento, ...]:
    """The proposal's lines in the given states, in the read's order: items by clave, and
    within an item the FEFO walk (the order the picker takes them)."""
    out: list[LineaDocumento] = []
    for item in propuesta["items"]:
        info = productos.get(item["id_producto"], ProductoInfo("", ""))
        for ln in item["lotes"]:
            if ln["estado_linea"] not in estados:
                continue
            cad = ln["fecha_caducidad"]
            out.append(
                LineaDocumento(
                    numero=len(out) + 1,
                    clave_cnis=item["clave_cnis"],
                    descripcion=info.descripcion,
                    unidad_medida=info.unidad_medida,
                    numero_lote=ln["numero_lote"],
                    caducidad=date.fromisoformat(cad[:10]) if cad else None,
                    ubicacion=ln["ubicacion"],
                    cantidad=int(ln["cantidad_asignada"]),
                )
            )
    return tuple(out)


def acuse(
    propuesta: Mapping[str, Any],
    cabecera: Cabecera,
    productos: Mapping[int, ProductoInfo],
    fecha: date,
) -> Documento:
    """The delivery receipt: every dispatched line (`SURTIDA`) with the quantity handed over;
    `fecha` is the dispatch's business date."""
    lineas = _lineas(propuesta, productos, frozenset({d.EstadoLinea.SURTIDA.value}))
    return Documento(ACUSE, cabecera, fecha, str(propuesta["id"]), lineas)


def picking(
    propuesta: Mapping[str, Any],
    cabecera: Cabecera,
    productos: Mapping[int, ProductoInfo],
    fecha: date,
) -> Documento:
    """The picking list: every line still to pick (`RESERVADA`; legacy ``surtido=False``)."""
    lineas = _lineas(propuesta, productos, frozenset({d.EstadoLinea.RESERVADA.value}))
    return Documento(PICKING, cabecera, fecha, str(propuesta["id"]), lineas)


def fecha_corta(value: date | None) -> str:
    """Legacy date format ``dd/mm/YYYY`` (``N/A`` when absent)."""
    return value.strftime("%d/%m/%Y") if value else "N/A"
