"""Unit tests of the pure sales rules (DOMAIN Part A)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sales import domain as d
from sales.domain import (
    Conflict,
    DomainError,
    EstadoCotizacion,
    EstadoPago,
    EstatusVenta,
    Invalid,
    MaterialStock,
    PriceInput,
)

TAB = {
    3: Decimal("450.0000"),
    4: Decimal("12.0000"),
    5: Decimal("720.0000"),
    6: Decimal("980.5000"),
    10: Decimal("125.0000"),
}
T15 = Decimal("15.00")
T6 = Decimal("6.00")


def price(
    largo: str,
    ancho: str,
    esp: int,
    util: int,
    mins: int,
    *,
    cant: int = 1,
    tarifa: Decimal = T15,
    fijo: str | None = None,
    tab: dict[int, Decimal] | None = None,
) -> d.PriceBreakdown:
    return d.compute_price(
        PriceInput(
            Decimal(largo),
            Decimal(ancho),
            esp,
            util,
            mins,
            cant,
            None if fijo is None else Decimal(fijo),
        ),
        TAB if tab is None else tab,
        tarifa,
    )


# ---------------------------------------------------------------- AC-P* (pricing)


@pytest.mark.parametrize(
    ("case", "args", "kwargs", "unit"),
    [
        ("AC-P01", ("30", "20", 3, 40, 10), {}, "187.80"),
        ("AC-P02", ("20", "20", 4, 40, 2), {"tarifa": T6}, "12.67"),
        ("AC-P03", ("20", "20", 4, 20, 10), {"tarifa": T6}, "60.58"),
        ("AC-P04", ("12.5", "7.25", 3, 70, 3), {}, "51.93"),
        ("AC-P05", ("120", "60", 5, 40, 45), {}, "1400.76"),
        ("AC-P08", ("30", "20", 3, 0, 10), {}, "177.00"),
        ("AC-P09", ("10", "10", 10, 30, 1), {}, "16.63"),
        ("AC-P10", ("12.5", "60", 6, 20, 1), {}, "103.25"),
        ("AC-P11", ("10", "20", 6, 50, 3), {}, "74.42"),
        ("AC-P15", ("5", "5", 3, 20, 1), {}, "16.35"),
    ],
)
def test_acceptance_pricing(case: str, args: tuple, kwargs: dict, unit: str) -> None:
    p = price(*args, **kwargs)
    assert p.precio_unitario == Decimal(unit), case
    assert str(p.precio_unitario) == unit
    assert p.subtotal == Decimal(unit)


@pytest.mark.spec("AC-P01")
def test_price_breakdown() -> None:
    p = price("30", "20", 3, 40, 10)
    assert p.area_m2 == Decimal("0.06")
    assert p.costo_material == Decimal("27")
    assert p.utilidad == Decimal("10.8")
    assert p.costo_laser == Decimal("150")


@pytest.mark.spec("AC-P04")
def test_exact_intermediates() -> None:
    p = price("12.5", "7.25", 3, 70, 3)
    assert p.area_m2 == Decimal("0.0090625")
    assert p.costo_material == Decimal("4.078125")
    assert p.utilidad == Decimal("2.8546875")


@pytest.mark.spec("AC-P06")
def test_fixed_price_short_circuits() -> None:
    p = price("999", "999", 77, 900, 500, cant=3, fijo="150.00")
    assert p.precio_unitario == Decimal("150.00")
    assert p.subtotal == Decimal("450.00")
    assert p.factor_costo is None


@pytest.mark.spec("AC-P07")
def test_missing_thickness() -> None:
    tab = {k: v for k, v in TAB.items() if k != 10}
    with pytest.raises(Invalid) as exc:
        price("25", "25", 10, 40, 5, tab=tab)
    assert exc.value.code == "ESPESOR_SIN_TABULADOR"
    assert exc.value.status == 422
    assert exc.value.extensions["espesor_mm"] == 10
    assert exc.value.extensions["field"] == "espesor_mm"


@pytest.mark.spec("AC-P08")
def test_zero_utility_is_zero_not_40() -> None:
    assert d.resolve_utilidad(0, 40) == 0
    assert d.resolve_utilidad(None, 25) == 25
    assert d.resolve_utilidad(None, None) == 40


@pytest.mark.spec("AC-P09")
def test_half_up_not_half_even() -> None:
    p = price("10", "10", 10, 30, 1)
    exact = p.costo_material + p.utilidad + p.costo_laser
    assert exact == Decimal("16.625")
    assert p.precio_unitario == Decimal("16.63")


@pytest.mark.spec("AC-P10")
def test_display_breakdown() -> None:
    p = price("12.5", "60", 6, 20, 1)
    assert p.costo_material_display == Decimal("73.54")
    assert p.utilidad_display == Decimal("14.71")
    assert p.costo_laser_display == Decimal("15.00")


@pytest.mark.spec("AC-P12")
def test_quantity_after_rounding() -> None:
    p = price("12.5", "60", 6, 20, 1, cant=4)
    assert p.precio_unitario == Decimal("103.25")
    assert p.subtotal == Decimal("413.00")


@pytest.mark.spec("AC-P13")
def test_zero_price_rejected() -> None:
    p = price("0", "0", 3, 40, 0)
    assert p.precio_unitario == Decimal("0.00")
    with pytest.raises(Invalid) as exc:
        d.require_positive_price(p)
    assert exc.value.code == "PRECIO_CERO"


@pytest.mark.spec("AC-P14")
def test_tampered_subtotal() -> None:
    p = price("30", "20", 3, 40, 10)
    with pytest.raises(Invalid) as exc:
        d.check_client_subtotal(Decimal("1.00"), p, field="carrito[0].subtotal")
    e = exc.value
    assert e.code == "PRECIO_DESACTUALIZADO"
    assert e.extensions["precio_unitario"] == "187.80"
    assert e.extensions["subtotal"] == "187.80"
    assert e.extensions["field"] == "carrito[0].subtotal"
    d.check_client_subtotal(Decimal("187.80"), p)
    d.check_client_subtotal(Decimal("187.8"), p)  # same number
    d.check_client_subtotal(None, p)


@pytest.mark.spec("AC-P15")
def test_breakdown_differs_from_total() -> None:
    p = price("5", "5", 3, 20, 1)
    shown = p.costo_material_display + p.utilidad_display + p.costo_laser_display
    assert shown == Decimal("16.36")
    assert p.precio_unitario == Decimal("16.35")


@pytest.mark.parametrize(
    ("field", "inp", "code"),
    [
        ("largo", PriceInput(Decimal(-1), Decimal(1), 3, 40, 0), "DATOS_INVALIDOS"),
        ("ancho", PriceInput(Decimal(1), Decimal("-0.01"), 3, 40, 0), "DATOS_INVALIDOS"),
        ("espesor_mm", PriceInput(Decimal(1), Decimal(1), 0, 40, 0), "DATOS_INVALIDOS"),
        (
            "porcentaje_utilidad",
            PriceInput(Decimal(1), Decimal(1), 3, -1, 0),
            "UTILIDAD_FUERA_DE_RANGO",
        ),
        (
            "porcentaje_utilidad",
            PriceInput(Decimal(1), Decimal(1), 3, 1001, 0),
            "UTILIDAD_FUERA_DE_RANGO",
        ),
        ("minutos_laser", PriceInput(Decimal(1), Decimal(1), 3, 40, -1), "DATOS_INVALIDOS"),
        ("cantidad", PriceInput(Decimal(1), Decimal(1), 3, 40, 0, 0), "DATOS_INVALIDOS"),
        (
            "precio_fijo",
            PriceInput(Decimal(1), Decimal(1), 3, 40, 0, 1, Decimal("0.00")),
            "DATOS_INVALIDOS",
        ),
    ],
)
def test_bad_price_input_names_field(field: str, inp: PriceInput, code: str) -> None:
    with pytest.raises(Invalid) as exc:
        d.compute_price(inp, TAB, T15, field_prefix="carrito[2].")
    assert exc.value.extensions["field"] == f"carrito[2].{field}"
    assert exc.value.code == code


def test_snapshot_is_json_safe() -> None:
    snap = price("30", "20", 3, 40, 10).snapshot()
    assert snap["factor_costo"] == "450.0000"
    assert snap["tarifa_laser_minuto"] == "15.00"
    assert snap["porcentaje_utilidad"] == 40


# ---------------------------------------------------------------- pricing properties

dims = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
utils = st.integers(min_value=0, max_value=d.MAX_UTILIDAD)
mins = st.integers(min_value=0, max_value=600)
thick = st.sampled_from(sorted(TAB))
qty = st.integers(min_value=1, max_value=1000)
rates = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(dims, dims, thick, utils, mins, qty, rates)
def test_prop_formula_matches_reference(
    largo: Decimal, ancho: Decimal, esp: int, util: int, m: int, cant: int, tarifa: Decimal
) -> None:
    p = d.compute_price(PriceInput(largo, ancho, esp, util, m, cant), TAB, tarifa)
    material = largo * ancho / 10000 * TAB[esp]
    exact = material + material * util / 100 + m * tarifa
    unit = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert p.precio_unitario == unit
    assert p.subtotal == unit * cant
    # rounded once: within half a cent of the exact sum
    assert abs(p.precio_unitario - exact) <= Decimal("0.005")
    assert p.precio_unitario.as_tuple().exponent == -2
    # breakdown display within ±0.015 of the total (three roundings)
    shown = p.costo_material_display + p.utilidad_display + p.costo_laser_display
    assert abs(shown - p.precio_unitario) <= Decimal("0.02")


@settings(max_examples=200, deadline=None)
@given(dims, dims, thick, st.integers(0, 500), st.integers(0, 500), mins, rates)
def test_prop_monotonic_in_utility_and_area(
    largo: Decimal, ancho: Decimal, esp: int, u1: int, u2: int, m: int, tarifa: Decimal
) -> None:
    lo, hi = sorted((u1, u2))
    a = d.compute_price(PriceInput(largo, ancho, esp, lo, m), TAB, tarifa)
    b = d.compute_price(PriceInput(largo, ancho, esp, hi, m), TAB, tarifa)
    assert a.precio_unitario <= b.precio_unitario
    bigger = d.compute_price(PriceInput(largo + 1, ancho, esp, lo, m), TAB, tarifa)
    assert a.precio_unitario <= bigger.precio_unitario


@settings(max_examples=200, deadline=None)
@given(
    dims, dims, thick, utils, mins, qty, st.decimals(min_value="0.01", max_value=10000, places=2)
)
def test_prop_fixed_price_ignores_everything(
    largo: Decimal, ancho: Decimal, esp: int, util: int, m: int, cant: int, fijo: Decimal
) -> None:
    p = d.compute_price(PriceInput(largo, ancho, esp, util, m, cant, fijo), {}, Decimal(99))
    assert p.precio_unitario == fijo
    assert p.subtotal == fijo * cant


@settings(max_examples=200, deadline=None)
@given(dims, dims, thick, utils, mins)
def test_prop_laser_is_not_marked_up(
    largo: Decimal, ancho: Decimal, esp: int, util: int, m: int
) -> None:
    p = d.compute_price(PriceInput(largo, ancho, esp, util, m), TAB, T15)
    assert p.costo_laser == m * T15
    assert p.utilidad == p.costo_material * util / 100


# ---------------------------------------------------------------- payments


@pytest.mark.spec("AC-S06")
def test_balance_and_payment_state() -> None:
    l1 = price("30", "20", 3, 40, 10)
    l2 = price("30", "20", 3, 40, 10, cant=4)
    total = d.sale_total([l1.subtotal, l2.subtotal])
    assert total == Decimal("939.00")
    pagado = Decimal("500.00")
    d.check_abono(total, Decimal(0), pagado)
    assert d.saldo_restante(total, pagado) == Decimal("439.00")
    assert d.estado_pago(total, pagado) is EstadoPago.PARCIAL
    d.check_abono(total, pagado, Decimal("439.00"))
    pagado += Decimal("439.00")
    assert d.saldo_restante(total, pagado) == Decimal("0.00")
    assert d.estado_pago(total, pagado) is EstadoPago.PAGADA
    with pytest.raises(Invalid) as exc:
        d.check_abono(total, pagado, Decimal("0.01"))
    assert exc.value.code == "ABONO_EXCEDE_SALDO"
    assert d.estado_pago(total, Decimal(0)) is EstadoPago.SIN_PAGO


@pytest.mark.parametrize("monto", ["0", "-5", "1.001"])
def test_bad_abono(monto: str) -> None:
    with pytest.raises(Invalid) as exc:
        d.check_abono(Decimal(100), Decimal(0), Decimal(monto))
    assert exc.value.code == "ABONO_INVALIDO"


@settings(max_examples=200, deadline=None)
@given(
    st.decimals(min_value="0.01", max_value=100000, places=2),
    st.lists(st.decimals(min_value="0.01", max_value=50000, places=2), max_size=20),
)
def test_prop_ledger_never_exceeds_total(total: Decimal, abonos: list[Decimal]) -> None:
    pagado = Decimal(0)
    for a in abonos:
        try:
            d.check_abono(total, pagado, a)
        except Invalid:
            assert pagado + a > total
            continue
        pagado += a
    assert 0 <= pagado <= total
    assert d.saldo_restante(total, pagado) >= 0
    state = d.estado_pago(total, pagado)
    assert (state is EstadoPago.PAGADA) == (pagado == total)


# ---------------------------------------------------------------- sale state machine


def test_sale_happy_path() -> None:
    d.check_sale_transition(
        EstatusVenta.PENDIENTE,
        EstatusVenta.EN_PRODUCCION,
        saldo=Decimal(5),
        is_admin=False,
        motivo=None,
    )
    d.check_sale_transition(
        EstatusVenta.EN_PRODUCCION,
        EstatusVenta.ENTREGADA,
        saldo=Decimal(0),
        is_admin=False,
        motivo=None,
    )


@pytest.mark.spec("AC-S07")
def test_deliver_with_balance() -> None:
    with pytest.raises(Conflict) as exc:
        d.check_sale_transition(
            EstatusVenta.EN_PRODUCCION,
            EstatusVenta.ENTREGADA,
            saldo=Decimal("439.00"),
            is_admin=False,
            motivo="x",
        )
    assert exc.value.code == "SALDO_PENDIENTE"
    assert exc.value.status == 409
    with pytest.raises(Invalid):  # admin needs a reason
        d.check_sale_transition(
            EstatusVenta.EN_PRODUCCION,
            EstatusVenta.ENTREGADA,
            saldo=Decimal("439.00"),
            is_admin=True,
            motivo=" ",
        )
    d.check_sale_transition(
        EstatusVenta.EN_PRODUCCION,
        EstatusVenta.ENTREGADA,
        saldo=Decimal("439.00"),
        is_admin=True,
        motivo="cliente de confianza",
    )


ALL = list(EstatusVenta)
ALLOWED = {
    (EstatusVenta.PENDIENTE, EstatusVenta.EN_PRODUCCION),
    (EstatusVenta.PENDIENTE, EstatusVenta.CANCELADA),
    (EstatusVenta.EN_PRODUCCION, EstatusVenta.ENTREGADA),
    (EstatusVenta.EN_PRODUCCION, EstatusVenta.CANCELADA),
}


@pytest.mark.parametrize("src", ALL)
@pytest.mark.parametrize("dst", ALL)
def test_sale_transition_table(src: EstatusVenta, dst: EstatusVenta) -> None:
    if (src, dst) in ALLOWED:
        d.check_sale_transition(src, dst, saldo=Decimal(0), is_admin=True, motivo="m")
    else:
        with pytest.raises(Conflict) as exc:
            d.check_sale_transition(src, dst, saldo=Decimal(0), is_admin=True, motivo="m")
        assert exc.value.code == "TRANSICION_INVALIDA"


def test_cancel_requires_admin_and_reason() -> None:
    with pytest.raises(DomainError) as exc:
        d.check_sale_transition(
            EstatusVenta.PENDIENTE,
            EstatusVenta.CANCELADA,
            saldo=Decimal(0),
            is_admin=False,
            motivo="m",
        )
    assert exc.value.status == 403
    with pytest.raises(Invalid) as exc2:
        d.check_sale_transition(
            EstatusVenta.PENDIENTE,
            EstatusVenta.CANCELADA,
            saldo=Decimal(0),
            is_admin=True,
            motivo="",
        )
    assert exc2.value.code == "MOTIVO_REQUERIDO"


def test_legacy_projection() -> None:
    assert d.legacy_estatus(EstatusVenta.PENDIENTE, EstadoPago.PAGADA) == "pagada"
    assert d.legacy_estatus(EstatusVenta.ENTREGADA, EstadoPago.PAGADA) == "entregada"
    assert d.legacy_estatus(EstatusVenta.EN_PRODUCCION, EstadoPago.PARCIAL) == "en_produccion"


# ---------------------------------------------------------------- quotes


def test_quote_lifecycle() -> None:
    today = date(2026, 5, 1)
    vig = date(2026, 5, 15)
    d.check_quote_transition(EstadoCotizacion.BORRADOR, EstadoCotizacion.ENVIADA, vig, today)
    d.check_quote_transition(EstadoCotizacion.ENVIADA, EstadoCotizacion.ACEPTADA, vig, today)
    d.check_quote_convertible(EstadoCotizacion.ACEPTADA, vig, today, already_converted=False)
    with pytest.raises(Conflict) as exc:
        d.check_quote_convertible(EstadoCotizacion.ACEPTADA, vig, today, already_converted=True)
    assert exc.value.code == "COTIZACION_YA_CONVERTIDA"
    with pytest.raises(Conflict) as exc:
        d.check_quote_transition(EstadoCotizacion.BORRADOR, EstadoCotizacion.ACEPTADA, vig, today)
    assert exc.value.code == "TRANSICION_INVALIDA"
    with pytest.raises(Conflict):
        d.check_quote_convertible(EstadoCotizacion.ENVIADA, vig, today, already_converted=False)


def test_quote_expiry() -> None:
    vig = date(2026, 5, 15)
    assert d.effective_quote_state(EstadoCotizacion.ENVIADA, vig, vig) is EstadoCotizacion.ENVIADA
    after = date(2026, 5, 16)
    assert d.effective_quote_state(EstadoCotizacion.ENVIADA, vig, after) is EstadoCotizacion.VENCIDA
    assert (
        d.effective_quote_state(EstadoCotizacion.ACEPTADA, vig, after) is EstadoCotizacion.ACEPTADA
    )
    with pytest.raises(Conflict) as exc:
        d.check_quote_transition(EstadoCotizacion.ENVIADA, EstadoCotizacion.ACEPTADA, vig, after)
    assert exc.value.code == "COTIZACION_VENCIDA"


# ---------------------------------------------------------------- stock


@pytest.mark.spec("AC-S01")
def test_stock_low_only_on_the_crossing_below_minimum() -> None:
    e1 = d.stock_effect(10, -4, 3)
    assert (e1.after, e1.low, e1.shortage) == (6, False, False)
    e2 = d.stock_effect(6, -4, 3)
    assert (e2.after, e2.low, e2.shortage) == (2, True, False)
    e3 = d.stock_effect(2, -1, 3)
    assert (e3.after, e3.low, e3.shortage) == (1, False, False)


@pytest.mark.spec("AC-S02")
def test_backorder_goes_negative() -> None:
    e = d.stock_effect(2, -5, 3)
    assert (e.after, e.low, e.shortage) == (-3, False, True)


@pytest.mark.spec("AC-S03")
def test_concurrent_overshoot() -> None:
    a = d.stock_effect(10, -6, 3)
    b = d.stock_effect(a.after, -6, 3)
    assert (a.after, a.low, a.shortage) == (4, False, False)
    assert (b.after, b.low, b.shortage) == (-2, True, True)


def test_restock_never_emits_but_rearms() -> None:
    up = d.stock_effect(1, 9, 3)
    assert (up.after, up.low, up.shortage) == (10, False, False)
    again = d.stock_effect(10, -8, 3)
    assert again.low


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-50, 100),
    st.integers(0, 20),
    st.lists(st.integers(-30, 30).filter(lambda x: x != 0), max_size=30),
)
def test_prop_one_low_per_crossing(start: int, minimo: int, deltas: list[int]) -> None:
    stock = start
    lows = 0
    crossings = 0
    for delta in deltas:
        e = d.stock_effect(stock, delta, minimo)
        assert e.after == stock + delta  # never clamped
        if stock > minimo and stock + delta <= minimo:
            crossings += 1
        lows += e.low
        assert e.shortage == (delta < 0 and e.after < 0)
        stock = e.after
    assert lows == crossings
    assert stock == start + sum(deltas)


@pytest.mark.spec("AC-S02")
def test_stock_check_refuses_oversell_unless_backorder() -> None:
    mats = {1: MaterialStock(1, "M", 2, 3)}
    with pytest.raises(Conflict) as exc:
        d.check_stock(mats, {1: 5}, permitir_backorder=False)
    e = exc.value
    assert e.code == "STOCK_INSUFICIENTE"
    assert (e.extensions["material"], e.extensions["disponible"], e.extensions["solicitado"]) == (
        "M",
        2,
        5,
    )
    d.check_stock(mats, {1: 5}, permitir_backorder=True)


@pytest.mark.spec("AC-S04")
def test_same_material_two_lines_summed() -> None:
    req = d.requested_per_material([(1, 3), (1, 3)])
    assert req == {1: 6}
    with pytest.raises(Conflict):
        d.check_stock({1: MaterialStock(1, "M", 5, 0)}, req, permitir_backorder=False)


def test_requested_sorted_by_material() -> None:
    assert list(d.requested_per_material([(5, 1), (2, 1), (5, 2)])) == [2, 5]


@pytest.mark.spec("AC-S01")
def test_projected_alerts_one_per_material() -> None:
    mats = {1: MaterialStock(1, "M", 10, 3)}
    assert d.projected_alerts(mats, {1: 4}) == []
    mats = {1: MaterialStock(1, "M", 6, 3), 2: MaterialStock(2, "N", 100, 3)}
    assert d.projected_alerts(mats, d.requested_per_material([(1, 2), (1, 2), (2, 1)])) == [
        {"nombre": "M", "actual": 2, "minimo": 3}
    ]


# ---------------------------------------------------------------- clients, folios, dates


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("55 1234 5678", "+525512345678"),
        ("(55) 1234-5678", "+525512345678"),
        ("525512345678", "+525512345678"),
        ("+52 55 1234 5678", "+525512345678"),
        ("+52 1 55 1234 5678", "+525512345678"),
        ("5215512345678", "+525512345678"),
        ("0052 5512345678", "+525512345678"),
        ("+1 415 555 2671", "+14155552671"),
        ("", None),
        (None, None),
    ],
)
def test_phone_normalisation(raw: str | None, e164: str | None) -> None:
    assert d.normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["123", "abc", "55-1234"])
def test_phone_invalid(raw: str) -> None:
    with pytest.raises(Invalid) as exc:
        d.normalize_phone(raw)
    assert exc.value.code == "TELEFONO_INVALIDO"


def test_nombre_and_email() -> None:
    assert d.normalize_nombre("  Ana  ") == "Ana"
    with pytest.raises(Invalid) as exc:
        d.normalize_nombre("   ")
    assert exc.value.extensions["field"] == "nombre"
    assert exc.value.detail == "El nombre es obligatorio"
    with pytest.raises(Invalid):
        d.normalize_nombre("x" * 101)
    assert d.normalize_email(" a@b.mx ") == "a@b.mx"
    assert d.normalize_email("") is None
    with pytest.raises(Invalid):
        d.normalize_email("not-an-email")


def test_folios() -> None:
    assert d.folio_venta(5) == "VTA-0005"
    assert d.folio_venta(12345) == "VTA-12345"
    assert d.folio_cotizacion(4) == "COT-0004"


@pytest.mark.spec("AC-D23")
def test_business_date_is_the_mexico_city_date_of_the_instant() -> None:
    # 2026-05-08 01:30 UTC is still 2026-05-07 in Mexico City (UTC-6)
    assert d.business_date(datetime(2026, 5, 8, 1, 30, tzinfo=UTC)) == date(2026, 5, 7)
    assert d.business_date(datetime(2026, 5, 8, 7, 0, tzinfo=UTC)) == date(2026, 5, 8)
    with pytest.raises(ValueError, match="timezone-aware"):
        d.business_date(datetime(2026, 5, 8))


@pytest.mark.spec("AC-D20")
def test_period_keys_use_the_iso_week_year() -> None:
    assert d.period_key(date(2024, 12, 30), d.Periodo.SEMANA) == "2025-W01"
    assert d.period_key(date(2026, 5, 8), d.Periodo.MES) == "2026-05"
    assert d.period_key(date(2026, 5, 8), d.Periodo.ANIO) == "2026"
    assert d.period_key(date(2026, 5, 8), d.Periodo.DIA) == "2026-05-08"


def test_whatsapp_link() -> None:
    assert d.whatsapp_link("+525512345678") == "https://wa.me/525512345678"
