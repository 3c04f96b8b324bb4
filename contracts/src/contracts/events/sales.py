"""Sales (Acrylitec) events, v1 — DOMAIN Part A.

Money (``precio_unitario``, ``subtotal``, ``total``) is :data:`~contracts.types.DecimalStr`;
unit counts (``cantidad``, stock balances) are ``int`` because one unit is one whole sheet
(DOMAIN §0.3.2, §A.4.4). Thickness and piece sizes are DecimalStr (cm / mm).

``SaleConfirmed`` carries the lines with material and cantidad so that the stock consumer
(``sales.stock``) can decrement without calling back (§A.4.4); ``SaleCancelled`` carries the
lines to re-increment. ``StockLow`` / ``StockShortage`` name the material and the resulting
balance, and point at the sale event that caused them (``source_event_id``).

``StockShortage.v2`` (:class:`StockShortageV2`) is what the service publishes: the same fields
plus ``origen`` (``venta`` / ``ajuste`` / ``conteo``) and the ledger row of the change
(``id_movimiento``), with ``id_venta`` only when a sale caused it, so a manual adjustment or a
physical count that leaves a negative balance is reported too. ``StockShortage.v1`` (sales
only) is no longer produced; it stays registered and consumers read it through
:meth:`StockShortageV2.from_v1` (origen ``venta``), the one place that maps v1 to v2.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.events.base import DomainEvent
from contracts.types import DecimalStr

__all__ = [
    "OrigenFaltante",
    "SaleCancelled",
    "SaleCancelledLine",
    "SaleConfirmed",
    "SaleLine",
    "StockLow",
    "StockShortage",
    "StockShortageV2",
]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SaleLine(_Part):
    id_detalle: int | None = None
    id_material: int
    cantidad: int = Field(ge=1, description="Sheets consumed (1 unit = 1 sheet).")
    id_producto: int
    espesor_mm: int | None = Field(default=None, description="Tabulador thickness key (mm).")
    ancho: DecimalStr | None = Field(default=None, description="Piece width, cm.")
    alto: DecimalStr | None = Field(default=None, description="Piece length (largo), cm.")
    precio_unitario: DecimalStr
    subtotal: DecimalStr = Field(description="precio_unitario × cantidad.")


class SaleConfirmed(DomainEvent):
    """A POS sale was confirmed (DOMAIN §A.3.2, §A.4.6); stock is decremented asynchronously."""

    event_name: ClassVar[str] = "SaleConfirmed"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "sales"
    topic: ClassVar[str] = "sales.sales"
    aggregate_type: ClassVar[str] = "venta"

    id_venta: int
    folio: str = Field(description="Display folio, e.g. 'VTA-0001'.")
    id_cliente: int | None = None
    lineas: list[SaleLine] = Field(min_length=1)
    total: DecimalStr
    permitir_backorder: bool = False
    confirmed_at: dt.datetime
    confirmed_by: str

    def aggregate_id(self) -> str:
        return str(self.id_venta)


class SaleCancelledLine(_Part):
    id_material: int
    cantidad: int = Field(ge=1)


class SaleCancelled(DomainEvent):
    """A sale was cancelled; the stock of its lines is re-incremented (DOMAIN §A.3.2)."""

    event_name: ClassVar[str] = "SaleCancelled"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "sales"
    topic: ClassVar[str] = "sales.sales"
    aggregate_type: ClassVar[str] = "venta"

    id_venta: int
    folio: str
    lineas: list[SaleCancelledLine] = Field(min_length=1)
    reason: str = Field(min_length=1)
    cancelled_at: dt.datetime
    cancelled_by: str

    def aggregate_id(self) -> str:
        return str(self.id_venta)


class StockLow(DomainEvent):
    """Stock of a material crossed to ``<= minimo`` (DOMAIN §A.4.4 rule 4).

    Field names follow DOMAIN's payload ``{id_material, nombre, actual, minimo}``."""

    event_name: ClassVar[str] = "StockLow"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "sales"
    topic: ClassVar[str] = "sales.stock"
    aggregate_type: ClassVar[str] = "material"

    id_material: int
    nombre: str
    actual: int = Field(description="stock_actual after the decrement (may be negative).")
    minimo: int = Field(description="stock_minimo.")
    anterior: int | None = Field(default=None, description="Balance before the decrement.")
    id_venta: int | None = Field(default=None, description="Sale whose consumption crossed.")
    source_event_id: str | None = Field(
        default=None, description="ce id of the SaleConfirmed that caused it."
    )

    def aggregate_id(self) -> str:
        return str(self.id_material)


class StockShortage(DomainEvent):
    """Superseded by v2: a sale's decrement left a material's balance below zero (DOMAIN §A.4.4
    rule 3, DECIDE-A2). No longer produced; still consumed (upcast with
    :meth:`StockShortageV2.from_v1`)."""

    event_name: ClassVar[str] = "StockShortage"
    version: ClassVar[int] = 1
    service: ClassVar[str] = "sales"
    topic: ClassVar[str] = "sales.stock"
    aggregate_type: ClassVar[str] = "material"

    id_material: int
    nombre: str
    stock_actual: int = Field(lt=0, description="Resulting (negative) balance.")
    faltante: int = Field(gt=0, description="Sheets missing: -stock_actual.")
    id_venta: int
    source_event_id: str | None = Field(
        default=None, description="ce id of the SaleConfirmed that caused it."
    )

    def aggregate_id(self) -> str:
        return str(self.id_material)


OrigenFaltante = Literal["venta", "ajuste", "conteo"]
"""What drove the balance below zero: a consumed sale, a manual adjustment, a physical count."""


class StockShortageV2(DomainEvent):
    """A decrement left a material's balance below zero (DOMAIN §A.4.4 rule 3, DECIDE-A2): a
    consumed sale, or a manual adjustment or physical count (``origen``)."""

    event_name: ClassVar[str] = "StockShortage"
    version: ClassVar[int] = 2
    service: ClassVar[str] = "sales"
    topic: ClassVar[str] = "sales.stock"
    aggregate_type: ClassVar[str] = "material"

    id_material: int
    nombre: str
    stock_actual: int = Field(lt=0, description="Resulting (negative) balance.")
    faltante: int = Field(gt=0, description="Sheets missing: -stock_actual.")
    origen: OrigenFaltante | None = Field(
        default=None,
        description=(
            "venta (a consumed sale), ajuste (a manual adjustment) or conteo (a physical "
            "count); null when the producer does not know."
        ),
    )
    id_venta: int | None = Field(default=None, description="The sale, when origen is venta.")
    id_movimiento: int | None = Field(
        default=None, description="The stock ledger row (movimiento) of the change, when known."
    )
    source_event_id: str | None = Field(
        default=None, description="ce id of the SaleConfirmed that caused it."
    )

    @classmethod
    def from_v1(cls, event: StockShortage) -> StockShortageV2:
        """The v2 reading of a v1 event: v1 was only ever published for a consumed sale."""
        return cls(
            id_material=event.id_material,
            nombre=event.nombre,
            stock_actual=event.stock_actual,
            faltante=event.faltante,
            origen="venta",
            id_venta=event.id_venta,
            source_event_id=event.source_event_id,
        )

    def aggregate_id(self) -> str:
        return str(self.id_material)
