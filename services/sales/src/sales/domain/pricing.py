"""Canonical pricing (§A.4.1, DECIDE-A3, DECIDE-A4): exact Decimal, one rounding."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sales.domain.errors import Invalid
from sales.domain.money import ZERO, money

CM2_PER_M2 = Decimal(10000)
DEFAULT_UTILIDAD = 40
MAX_UTILIDAD = 1000
"""Upper bound of a utility percentage; anything larger is a typo (422 UTILIDAD_FUERA_DE_RANGO)."""
MAX_DIMENSION_CM = Decimal(100000)
MAX_MINUTOS_LASER = 100000
MAX_CANTIDAD = 100000


@dataclass(frozen=True)
class PriceInput:
    largo: Decimal
    ancho: Decimal
    espesor_mm: int
    porcentaje_utilidad: int
    minutos_laser: int
    cantidad: int = 1
    precio_fijo: Decimal | None = None


@dataclass(frozen=True)
class PriceBreakdown:
    """Result of the canonical formula. Components are exact; `*_display` are rounded."""

    precio_fijo: Decimal | None
    area_cm2: Decimal
    area_m2: Decimal
    factor_costo: Decimal | None
    costo_material: Decimal
    utilidad: Decimal
    costo_laser: Decimal
    tarifa_laser_minuto: Decimal
    porcentaje_utilidad: int
    precio_unitario: Decimal
    cantidad: int
    subtotal: Decimal

    @property
    def costo_material_display(self) -> Decimal:
        return money(self.costo_material)

    @property
    def utilidad_display(self) -> Decimal:
        return money(self.utilidad)

    @property
    def costo_laser_display(self) -> Decimal:
        return money(self.costo_laser)

    def snapshot(self) -> dict[str, Any]:
        """The `parametros_precio` snapshot stored with a line or a quote (JSON-safe)."""
        return {
            "precio_fijo": None if self.precio_fijo is None else str(self.precio_fijo),
            "factor_costo": None if self.factor_costo is None else str(self.factor_costo),
            "tarifa_laser_minuto": str(self.tarifa_laser_minuto),
            "porcentaje_utilidad": self.porcentaje_utilidad,
            "costo_material": str(self.costo_material),
            "utilidad": str(self.utilidad),
            "costo_laser": str(self.costo_laser),
        }


def validate_price_input(inp: PriceInput, field_prefix: str = "") -> None:
    """Range checks of the formula's inputs (422 naming the field)."""

    def bad(name: str, reason: str, code: str = "DATOS_INVALIDOS") -> Invalid:
        return Invalid(reason, code=code, field=f"{field_prefix}{name}")

    for name, value in (("largo", inp.largo), ("ancho", inp.ancho)):
        if not value.is_finite() or value < 0:
            raise bad(name, f"{name} debe ser >= 0")
        if value > MAX_DIMENSION_CM:
            raise bad(name, f"{name} excede {MAX_DIMENSION_CM} cm")
    if inp.espesor_mm <= 0:
        raise bad("espesor_mm", "espesor_mm debe ser > 0")
    if not 0 <= inp.porcentaje_utilidad <= MAX_UTILIDAD:
        raise bad(
            "porcentaje_utilidad",
            f"porcentaje_utilidad debe estar entre 0 y {MAX_UTILIDAD}",
            "UTILIDAD_FUERA_DE_RANGO",
        )
    if not 0 <= inp.minutos_laser <= MAX_MINUTOS_LASER:
        raise bad("minutos_laser", "minutos_laser debe ser un entero >= 0")
    if not 1 <= inp.cantidad <= MAX_CANTIDAD:
        raise bad("cantidad", "cantidad debe ser un entero >= 1")
    if inp.precio_fijo is not None and inp.precio_fijo <= 0:
        raise bad("precio_fijo", "precio_fijo debe ser > 0 (NULL significa sin precio fijo)")


def compute_price(
    inp: PriceInput,
    tabulador: Mapping[int, Decimal],
    tarifa_laser_minuto: Decimal,
    *,
    field_prefix: str = "",
) -> PriceBreakdown:
    """Canonical formula §A.4.1. Exact Decimal; one ROUND_HALF_UP on the unit price.

    Raises `Invalid` (ESPESOR_SIN_TABULADOR, UTILIDAD_FUERA_DE_RANGO, ...) on bad input.
    Does not reject a zero price: see `require_positive_price`.
    """
    validate_price_input(inp, field_prefix)
    area_cm2 = inp.largo * inp.ancho
    area_m2 = area_cm2 / CM2_PER_M2
    if inp.precio_fijo is not None:
        unit = money(inp.precio_fijo)
        return PriceBreakdown(
            precio_fijo=inp.precio_fijo,
            area_cm2=area_cm2,
            area_m2=area_m2,
            factor_costo=None,
            costo_material=ZERO,
            utilidad=ZERO,
            costo_laser=ZERO,
            tarifa_laser_minuto=tarifa_laser_minuto,
            porcentaje_utilidad=inp.porcentaje_utilidad,
            precio_unitario=unit,
            cantidad=inp.cantidad,
            subtotal=unit * inp.cantidad,
        )
    factor = tabulador.get(inp.espesor_mm)
    if factor is None:
        raise Invalid(
            f"No hay factor de costo para espesor {inp.espesor_mm} mm",
            code="ESPESOR_SIN_TABULADOR",
            title="Espesor sin tabulador",
            field=f"{field_prefix}espesor_mm",
            espesor_mm=inp.espesor_mm,
        )
    costo_material = area_m2 * factor
    utilidad = costo_material * (Decimal(inp.porcentaje_utilidad) / Decimal(100))
    costo_laser = Decimal(inp.minutos_laser) * tarifa_laser_minuto
    unit = money(costo_material + utilidad + costo_laser)
    return PriceBreakdown(
        precio_fijo=None,
        area_cm2=area_cm2,
        area_m2=area_m2,
        factor_costo=factor,
        costo_material=costo_material,
        utilidad=utilidad,
        costo_laser=costo_laser,
        tarifa_laser_minuto=tarifa_laser_minuto,
        porcentaje_utilidad=inp.porcentaje_utilidad,
        precio_unitario=unit,
        cantidad=inp.cantidad,
        subtotal=unit * inp.cantidad,
    )


def require_positive_price(price: PriceBreakdown, field_prefix: str = "") -> None:
    """AC-P13: a line priced 0.00 is rejected (422 PRECIO_CERO)."""
    if price.precio_unitario <= 0:
        raise Invalid(
            "El precio calculado es 0.00: agrega medidas o minutos de láser",
            code="PRECIO_CERO",
            title="Precio cero",
            field=f"{field_prefix}precio_unitario",
        )


def resolve_utilidad(requested: int | None, producto_utilidad: int | None) -> int:
    """DECIDE-A3: explicit value (0 means 0) > product default > 40 (AC-D10, AC-D12)."""
    if requested is not None:
        return requested
    if producto_utilidad is not None:
        return producto_utilidad
    return DEFAULT_UTILIDAD


def check_client_subtotal(
    sent: Decimal | None, price: PriceBreakdown, field: str = "subtotal"
) -> None:
    """DECIDE-A4: a client-sent subtotal must equal the server's exactly (AC-P14)."""
    if sent is None:
        return
    if sent != price.subtotal:
        raise Invalid(
            f"El subtotal enviado ({sent}) no coincide con el del servidor ({price.subtotal})",
            code="PRECIO_DESACTUALIZADO",
            title="Precio desactualizado",
            field=field,
            precio_unitario=str(price.precio_unitario),
            subtotal=str(price.subtotal),
        )


def sale_total(subtotales: Iterable[Decimal]) -> Decimal:
    return money(sum(subtotales, ZERO))
