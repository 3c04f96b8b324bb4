"""Pure rules of the sales (Acrylitec) domain: no I/O.

DOMAIN Part A: canonical pricing (§A.4.1), totals and the payment ledger (§A.4.2, DECIDE-A1),
the fulfilment state machine (§A.3.2), quotes (DECIDE-A7), stock crossing rules (§A.4.4,
DECIDE-A2), phone normalisation (DECIDE-A6), folios (§A.4.3) and the business date (§0.3-3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("America/Mexico_City")
CENT = Decimal("0.01")
ZERO = Decimal("0")
CM2_PER_M2 = Decimal(10000)
DEFAULT_UTILIDAD = 40
MAX_UTILIDAD = 1000
"""Upper bound of a utility percentage; anything larger is a typo (422 UTILIDAD_FUERA_DE_RANGO)."""
MAX_DIMENSION_CM = Decimal(100000)
MAX_MINUTOS_LASER = 100000
MAX_CANTIDAD = 100000


# --------------------------------------------------------------------------- errors


class DomainError(Exception):
    """A rule violation, carrying the DOMAIN error code (last segment of the problem `type`)."""

    status: int = 422
    code: str = "REGLA_DE_NEGOCIO"
    title: str = "Regla de negocio violada"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        **extensions: Any,
    ) -> None:
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.detail = detail
        self.extensions: dict[str, Any] = extensions
        super().__init__(f"{self.code}: {detail or self.title}")


class NotFound(DomainError):
    status = 404
    code = "NO_ENCONTRADO"
    title = "Recurso no encontrado"


class Conflict(DomainError):
    status = 409
    code = "CONFLICTO"
    title = "Conflicto con el estado actual"


class Invalid(DomainError):
    status = 422
    code = "DATOS_INVALIDOS"
    title = "Datos inválidos"


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> Decimal:
    """ROUND_HALF_UP to cents (the only rounding this domain uses)."""
    return _q(value)


def format_plain(value: Decimal) -> str:
    """Plain decimal string (never exponent notation), scale preserved."""
    text = format(value, "f")
    return text[1:] if text.startswith("-") and value == 0 else text


def format_money(value: Decimal) -> str:
    """Money as a string with exactly two decimals (``"187.80"``)."""
    return format_plain(_q(value))


# --------------------------------------------------------------------------- pricing §A.4.1


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
        return _q(self.costo_material)

    @property
    def utilidad_display(self) -> Decimal:
        return _q(self.utilidad)

    @property
    def costo_laser_display(self) -> Decimal:
        return _q(self.costo_laser)

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
        unit = _q(inp.precio_fijo)
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
    unit = _q(costo_material + utilidad + costo_laser)
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
    return _q(sum(subtotales, ZERO))


# --------------------------------------------------------------------------- payments (DECIDE-A1)


class EstadoPago(StrEnum):
    SIN_PAGO = "sin_pago"
    PARCIAL = "parcial"
    PAGADA = "pagada"


def total_pagado(abonos: Iterable[Decimal]) -> Decimal:
    return sum(abonos, ZERO)


def saldo_restante(total: Decimal, pagado: Decimal) -> Decimal:
    return _q(total - pagado)


def estado_pago(total: Decimal, pagado: Decimal) -> EstadoPago:
    if pagado <= 0:
        return EstadoPago.SIN_PAGO
    if pagado < total:
        return EstadoPago.PARCIAL
    return EstadoPago.PAGADA


def check_abono(total: Decimal, pagado: Decimal, monto: Decimal, field: str = "monto") -> None:
    """An abono is > 0, has cents at most, and never takes Σ abonos above the total."""
    if not monto.is_finite() or monto <= 0:
        raise Invalid("El abono debe ser mayor que 0", code="ABONO_INVALIDO", field=field)
    if monto != _q(monto):
        raise Invalid("El abono admite a lo más 2 decimales", code="ABONO_INVALIDO", field=field)
    saldo = total - pagado
    if monto > saldo:
        raise Invalid(
            f"El abono {monto} excede el saldo restante {_q(saldo)}",
            code="ABONO_EXCEDE_SALDO",
            title="El abono excede el saldo",
            field=field,
            saldo_restante=str(_q(saldo)),
            monto=str(monto),
        )


METODOS_PAGO = ("efectivo", "transferencia", "tarjeta")


# --------------------------------------------------------------------------- sale state (§A.3.2)


class EstatusVenta(StrEnum):
    PENDIENTE = "pendiente"
    EN_PRODUCCION = "en_produccion"
    ENTREGADA = "entregada"
    CANCELADA = "cancelada"


SALE_TRANSITIONS: dict[EstatusVenta, frozenset[EstatusVenta]] = {
    EstatusVenta.PENDIENTE: frozenset({EstatusVenta.EN_PRODUCCION, EstatusVenta.CANCELADA}),
    EstatusVenta.EN_PRODUCCION: frozenset({EstatusVenta.ENTREGADA, EstatusVenta.CANCELADA}),
    EstatusVenta.ENTREGADA: frozenset(),
    EstatusVenta.CANCELADA: frozenset(),
}


def check_sale_transition(
    current: EstatusVenta,
    target: EstatusVenta,
    *,
    saldo: Decimal,
    is_admin: bool,
    motivo: str | None,
) -> None:
    """Guards of the fulfilment machine. Cancellation's admin-only rule is checked too."""
    if target not in SALE_TRANSITIONS[current]:
        raise Conflict(
            f"Transición no permitida: {current.value} → {target.value}",
            code="TRANSICION_INVALIDA",
            title="Transición de estado no permitida",
            field="estatus",
            estatus_actual=current.value,
            estatus_solicitado=target.value,
        )
    motivo_ok = bool(motivo and motivo.strip())
    if target is EstatusVenta.CANCELADA:
        if not is_admin:
            raise DomainError(
                "Sólo un Administrador puede cancelar una venta",
                code="SOLO_ADMINISTRADOR",
                status=403,
                title="Prohibido",
            )
        if not motivo_ok:
            raise Invalid(
                "La cancelación requiere un motivo", code="MOTIVO_REQUERIDO", field="motivo"
            )
    if target is EstatusVenta.ENTREGADA and saldo != 0:
        if not is_admin:
            raise Conflict(
                f"La venta tiene saldo pendiente de {saldo}",
                code="SALDO_PENDIENTE",
                title="Saldo pendiente",
                saldo_restante=str(saldo),
            )
        if not motivo_ok:
            raise Invalid(
                "Entregar con saldo pendiente requiere un motivo",
                code="MOTIVO_REQUERIDO",
                field="motivo",
            )


def legacy_estatus(estatus: EstatusVenta, pago: EstadoPago) -> str:
    """Legacy-compatible 4-value projection for reports (§A.3.2)."""
    if pago is EstadoPago.PAGADA and estatus in (
        EstatusVenta.PENDIENTE,
        EstatusVenta.EN_PRODUCCION,
    ):
        return "pagada"
    return estatus.value


# --------------------------------------------------------------------------- quotes (DECIDE-A7)


class EstadoCotizacion(StrEnum):
    BORRADOR = "borrador"
    ENVIADA = "enviada"
    ACEPTADA = "aceptada"
    VENCIDA = "vencida"
    RECHAZADA = "rechazada"


QUOTE_TRANSITIONS: dict[EstadoCotizacion, frozenset[EstadoCotizacion]] = {
    EstadoCotizacion.BORRADOR: frozenset(
        {EstadoCotizacion.ENVIADA, EstadoCotizacion.RECHAZADA, EstadoCotizacion.VENCIDA}
    ),
    EstadoCotizacion.ENVIADA: frozenset(
        {EstadoCotizacion.ACEPTADA, EstadoCotizacion.RECHAZADA, EstadoCotizacion.VENCIDA}
    ),
    EstadoCotizacion.ACEPTADA: frozenset(),
    EstadoCotizacion.VENCIDA: frozenset(),
    EstadoCotizacion.RECHAZADA: frozenset(),
}

DEFAULT_VIGENCIA_DIAS = 15


def effective_quote_state(
    estado: EstadoCotizacion, vigencia_hasta: date, today: date
) -> EstadoCotizacion:
    """An open quote (borrador/enviada) past its `vigencia_hasta` is `vencida`."""
    if estado in (EstadoCotizacion.BORRADOR, EstadoCotizacion.ENVIADA) and today > vigencia_hasta:
        return EstadoCotizacion.VENCIDA
    return estado


def check_quote_transition(
    estado: EstadoCotizacion, target: EstadoCotizacion, vigencia_hasta: date, today: date
) -> None:
    current = effective_quote_state(estado, vigencia_hasta, today)
    if current is EstadoCotizacion.VENCIDA and target is not EstadoCotizacion.VENCIDA:
        raise Conflict(
            f"La cotización venció el {vigencia_hasta.isoformat()}",
            code="COTIZACION_VENCIDA",
            title="Cotización vencida",
            vigencia_hasta=vigencia_hasta.isoformat(),
        )
    if target not in QUOTE_TRANSITIONS[current]:
        raise Conflict(
            f"Transición no permitida: {current.value} → {target.value}",
            code="TRANSICION_INVALIDA",
            title="Transición de estado no permitida",
            field="estado",
            estado_actual=current.value,
            estado_solicitado=target.value,
        )


def check_quote_convertible(
    estado: EstadoCotizacion, vigencia_hasta: date, today: date, already_converted: bool
) -> None:
    if already_converted:
        raise Conflict("La cotización ya fue convertida en venta", code="COTIZACION_YA_CONVERTIDA")
    current = effective_quote_state(estado, vigencia_hasta, today)
    if current is not EstadoCotizacion.ACEPTADA:
        raise Conflict(
            f"Sólo una cotización aceptada se convierte en venta (estado: {current.value})",
            code="COTIZACION_NO_ACEPTADA",
            estado_actual=current.value,
        )


# --------------------------------------------------------------------------- stock (§A.4.4)


@dataclass(frozen=True)
class MaterialStock:
    id_material: int
    nombre: str
    stock_actual: int
    stock_minimo: int


@dataclass(frozen=True)
class StockEffect:
    before: int
    after: int
    low: bool
    """Crossed to <= minimo: emit StockLow."""
    shortage: bool
    """Left the balance below zero: emit StockShortage."""


def stock_effect(before: int, delta: int, minimo: int) -> StockEffect:
    """Effect of an atomic `stock_actual += delta`. Never clamps (DECIDE-A2)."""
    after = before + delta
    low = before > minimo and after <= minimo
    shortage = delta < 0 and after < 0
    return StockEffect(before=before, after=after, low=low, shortage=shortage)


def requested_per_material(lines: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Σ cantidad per material, ordered by ascending id_material (lock order)."""
    out: dict[int, int] = {}
    for material_id, cantidad in lines:
        out[material_id] = out.get(material_id, 0) + cantidad
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class StockShortfall:
    id_material: int
    material: str
    disponible: int
    solicitado: int


def check_stock(
    materials: Mapping[int, MaterialStock],
    requested: Mapping[int, int],
    *,
    permitir_backorder: bool,
) -> None:
    """Step 1 of §A.4.4: Σ cantidad per material ≤ stock_actual, unless backorder allowed."""
    if permitir_backorder:
        return
    faltantes = [
        StockShortfall(mid, materials[mid].nombre, materials[mid].stock_actual, qty)
        for mid, qty in sorted(requested.items())
        if qty > materials[mid].stock_actual
    ]
    if faltantes:
        first = faltantes[0]
        raise Conflict(
            f"Stock insuficiente de {first.material}: disponible {first.disponible}, "
            f"solicitado {first.solicitado}",
            code="STOCK_INSUFICIENTE",
            title="Stock insuficiente",
            material=first.material,
            id_material=first.id_material,
            disponible=first.disponible,
            solicitado=first.solicitado,
            faltantes=[
                {
                    "id_material": f.id_material,
                    "material": f.material,
                    "disponible": f.disponible,
                    "solicitado": f.solicitado,
                }
                for f in faltantes
            ],
        )


def projected_alerts(
    materials: Mapping[int, MaterialStock], requested: Mapping[int, int]
) -> list[dict[str, Any]]:
    """`alertas_stock` of the 201 response: one per material whose projection is <= minimo."""
    alerts: list[dict[str, Any]] = []
    for mid, qty in sorted(requested.items()):
        m = materials[mid]
        projected = m.stock_actual - qty
        if projected <= m.stock_minimo:
            alerts.append({"nombre": m.nombre, "actual": projected, "minimo": m.stock_minimo})
    return alerts


class MotivoMovimiento(StrEnum):
    VENTA = "venta"
    CANCELACION = "cancelacion"
    REABASTO = "reabasto"
    AJUSTE = "ajuste"
    CONTEO = "conteo"
    ALTA = "alta"


# --------------------------------------------------------------------------- clients


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_nombre(nombre: str | None, field: str = "nombre") -> str:
    value = (nombre or "").strip()
    if not value:
        raise Invalid("El nombre es obligatorio", code="NOMBRE_REQUERIDO", field=field)
    if len(value) > 100:
        raise Invalid("El nombre admite a lo más 100 caracteres", field=field)
    return value


def normalize_phone(telefono: str | None, field: str = "telefono") -> str | None:
    """DECIDE-A6: E.164 with Mexico's `+52` by default. Empty → None."""
    if telefono is None or not telefono.strip():
        return None
    raw = telefono.strip()
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("+"):
        e164 = "+" + digits
    elif raw.startswith("00"):
        e164 = "+" + digits[2:]
    elif len(digits) == 10:
        e164 = "+52" + digits
    elif len(digits) == 12 and digits.startswith("52"):
        e164 = "+" + digits
    elif len(digits) == 13 and digits.startswith("521"):
        e164 = "+52" + digits[3:]  # legacy mobile prefix "1" dropped since 2019
    else:
        raise Invalid(f"Teléfono inválido: {telefono!r}", code="TELEFONO_INVALIDO", field=field)
    if e164.startswith("+521") and len(e164) == 14:
        e164 = "+52" + e164[4:]
    if not 8 <= len(e164) - 1 <= 15:
        raise Invalid(f"Teléfono inválido: {telefono!r}", code="TELEFONO_INVALIDO", field=field)
    return e164


def normalize_email(email: str | None, field: str = "email") -> str | None:
    if email is None or not email.strip():
        return None
    value = email.strip()
    if len(value) > 100 or not _EMAIL_RE.match(value):
        raise Invalid(f"Correo inválido: {email!r}", code="EMAIL_INVALIDO", field=field)
    return value


def whatsapp_link(telefono_e164: str, texto: str = "") -> str:
    from urllib.parse import quote

    return f"https://wa.me/{telefono_e164.lstrip('+')}" + (f"?text={quote(texto)}" if texto else "")


# --------------------------------------------------------------------------- folios, dates


def folio_venta(id_venta: int) -> str:
    return f"VTA-{id_venta:04d}"


def folio_cotizacion(id_cotizacion: int) -> str:
    return f"COT-{id_cotizacion:04d}"


def business_date(now: datetime) -> date:
    """'Today' in America/Mexico_City (§0.3-3, AC-D23). `now` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return now.astimezone(BUSINESS_TZ).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a business day as aware datetimes."""
    start = datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ)
    return start, start + timedelta(days=1)


class Periodo(StrEnum):
    DIA = "dia"
    SEMANA = "semana"
    MES = "mes"
    ANIO = "anio"


def period_key(day: date, periodo: Periodo) -> str:
    """Group key; weeks use the ISO year (AC-D20: 29–31 Dec may belong to next year's W01)."""
    if periodo is Periodo.DIA:
        return day.isoformat()
    if periodo is Periodo.SEMANA:
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if periodo is Periodo.MES:
        return f"{day.year}-{day.month:02d}"
    return f"{day.year}"


@dataclass
class Bucket:
    ventas: int = 0
    total_vendido: Decimal = ZERO
    ingresos: Decimal = ZERO
    extra: dict[str, Any] = field(default_factory=dict)
