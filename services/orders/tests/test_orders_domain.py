"""Pure rules of the orders domain (DOMAIN Part B): FEFO, state machines, validation, edits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders import domain as d
from orders.domain import LoteUbicacionSnap as Snap

T = date(2026, 5, 1)
CENTRAL = 1
NORTE = 2
P = 104
Q = 105

_ids = iter(range(1, 10_000))


def lu(
    numero: str,
    cad: date | None,
    codigo: str,
    cantidad: int,
    *,
    reservado: int = 0,
    estado: int = 1,
    almacen: int = CENTRAL,
    producto: int = P,
    ubic_estado: str = "disponible",
    lote_id: int | None = None,
) -> Snap:
    i = next(_ids)
    return Snap(
        lote_ubicacion_id=i,
        lote_id=lote_id if lote_id is not None else i,
        numero_lote=numero,
        producto_id=producto,
        almacen_id=almacen,
        fecha_caducidad=cad,
        lote_estado=estado,
        ubicacion_codigo=codigo,
        cantidad=cantidad,
        reservado=reservado,
        ubicacion_estado=ubic_estado,
    )


def lines(result: d.ResultadoItem, snaps: list[Snap]) -> list[tuple[str, str, int]]:
    by_id = {s.lote_ubicacion_id: s for s in snaps}
    return [
        (
            by_id[a.lote_ubicacion_id].numero_lote,
            by_id[a.lote_ubicacion_id].ubicacion_codigo,
            a.cantidad,
        )
        for a in result.asignaciones
    ]


# ----------------------------------------------------------------------------- FEFO examples


@pytest.mark.spec("HO-F01")
def test_basic_fefo_short_dated_excluded() -> None:
    snaps = [
        lu("A100", date(2026, 9, 30), "A-01", 60),
        lu("B200", date(2026, 7, 15), "B-01", 50),
        lu("C300", date(2026, 6, 15), "C-01", 500),
    ]
    r = d.asignar_fefo(P, CENTRAL, 100, snaps, T)
    assert lines(r, snaps) == [("B200", "B-01", 50), ("A100", "A-01", 50)]
    assert r.cantidad_disponible == 110
    assert r.cantidad_propuesta == 100
    assert r.cantidad_pendiente == 0
    assert r.estado == d.EstadoItemPropuesta.DISPONIBLE
    tot = d.totales_propuesta(100, [r])
    assert (tot.solicitado, tot.disponible, tot.propuesto) == (100, 110, 100)
    assert d.cobertura([(r.cantidad_disponible, 100)]) == Decimal("100.00")


@pytest.mark.spec("HO-F02")
def test_expiry_boundary_is_strict() -> None:
    snaps = [
        lu("D1", date(2026, 6, 30), "D-01", 20),
        lu("E1", date(2026, 6, 29), "E-01", 100),
        lu("F1", date(2026, 12, 31), "F-01", 100),
    ]
    r = d.asignar_fefo(P, CENTRAL, 30, snaps, T)
    assert lines(r, snaps) == [("F1", "F-01", 30)]
    assert r.estado == d.EstadoItemPropuesta.DISPONIBLE
    assert r.cantidad_pendiente == 0


@pytest.mark.spec("HO-F02")
def test_configured_59_days() -> None:
    snaps = [
        lu("D1", date(2026, 6, 30), "D-01", 20),
        lu("E1", date(2026, 6, 29), "E-01", 100),
        lu("F1", date(2026, 12, 31), "F-01", 100),
    ]
    r = d.asignar_fefo(P, CENTRAL, 30, snaps, T, min_shelf_life_days=59)
    assert lines(r, snaps) == [("D1", "D-01", 20), ("F1", "F-01", 10)]


@pytest.mark.spec("HO-F03")
def test_existing_reservations_partial() -> None:
    snaps = [
        lu("B200", date(2026, 7, 15), "B-01", 50, reservado=30),
        lu("A100", date(2026, 9, 30), "A-01", 60),
    ]
    r = d.asignar_fefo(P, CENTRAL, 100, snaps, T)
    assert lines(r, snaps) == [("B200", "B-01", 20), ("A100", "A-01", 60)]
    assert r.cantidad_propuesta == 80
    assert r.estado == d.EstadoItemPropuesta.PARCIAL
    assert r.observaciones == "Solo se encontraron 80 de 100 unidades."
    assert r.cantidad_disponible == 80
    assert r.cantidad_pendiente == 20


@pytest.mark.spec("HO-F04")
def test_bytewise_tie_break_and_location_order() -> None:
    snaps = [
        lu("L9", date(2026, 10, 1), "X-01", 40, lote_id=9),
        lu("L10", date(2026, 10, 1), "B-01", 5, lote_id=10),
        lu("L10", date(2026, 10, 1), "A-10", 10, lote_id=10),
        lu("L10", date(2026, 10, 1), "A-2", 20, lote_id=10),
    ]
    r = d.asignar_fefo(P, CENTRAL, 30, snaps, T)
    assert lines(r, snaps) == [("L10", "A-10", 10), ("L10", "A-2", 20)]
    assert r.estado == d.EstadoItemPropuesta.DISPONIBLE


@pytest.mark.spec("HO-F04")
def test_natural_sort_option() -> None:
    snaps = [
        lu("L9", date(2026, 10, 1), "X-01", 40, lote_id=9),
        lu("L10", date(2026, 10, 1), "A-10", 10, lote_id=10),
        lu("L10", date(2026, 10, 1), "A-2", 20, lote_id=10),
    ]
    r = d.asignar_fefo(P, CENTRAL, 30, snaps, T, natural=True)
    assert lines(r, snaps) == [("L9", "X-01", 30)]


@pytest.mark.spec("HO-F05")
def test_ineligible_lots_and_location_level() -> None:
    snaps = [
        lu("G1", date(2026, 8, 1), "G-01", 25),
        lu("H1", date(2026, 8, 15), "H-01", 100, estado=d.LOTE_SUSPENDIDO),
        lu("I1", None, "I-01", 100),
        lu("J1", date(2026, 9, 1), "J-01", 30),
        lu("K1", date(2026, 7, 1), "K-01", 70, ubic_estado="cuarentena"),
    ]
    r = d.asignar_fefo(P, CENTRAL, 50, snaps, T)
    assert lines(r, snaps) == [("G1", "G-01", 25), ("J1", "J-01", 25)]
    assert r.estado == d.EstadoItemPropuesta.DISPONIBLE
    assert r.cantidad_disponible == 55


@pytest.mark.parametrize("ubic", ["bloqueada", "cuarentena", "caducados", "devoluciones"])
def test_ineligible_location_states(ubic: str) -> None:
    snaps = [lu("K1", date(2026, 12, 1), "K-01", 70, ubic_estado=ubic)]
    r = d.asignar_fefo(P, CENTRAL, 10, snaps, T)
    assert r.asignaciones == ()
    assert r.estado == d.EstadoItemPropuesta.NO_DISPONIBLE


def test_inactive_location_or_warehouse_excluded() -> None:
    base = lu("K1", date(2026, 12, 1), "K-01", 70)
    from dataclasses import replace

    for s in (replace(base, ubicacion_activa=False), replace(base, almacen_activo=False)):
        assert d.asignar_fefo(P, CENTRAL, 10, [s], T).asignaciones == ()
    ok = replace(base, ubicacion_estado="ocupada")
    assert d.asignar_fefo(P, CENTRAL, 10, [ok], T).cantidad_propuesta == 10


@pytest.mark.spec("HO-F06")
def test_nothing_available_reserved() -> None:
    snaps = [lu("M1", date(2026, 12, 31), "M-01", 10, reservado=10)]
    r = d.asignar_fefo(P, CENTRAL, 10, snaps, T)
    assert r.asignaciones == ()
    assert r.estado == d.EstadoItemPropuesta.NO_DISPONIBLE
    assert r.cantidad_propuesta == 0
    assert r.cantidad_pendiente == 10
    assert r.observaciones == (
        "No hay existencia neta disponible para asignar: el inventario visible puede estar "
        "totalmente reservado en otras propuestas pendientes de surtir, o las cantidades por "
        "ubicación no dejan saldo utilizable."
    )


@pytest.mark.parametrize("cad", [date(2026, 6, 1), date(2026, 6, 30)])
@pytest.mark.spec("HO-F06")
def test_no_disponible_names_the_expiry_reason(cad: date) -> None:
    r = d.asignar_fefo(P, CENTRAL, 10, [lu("M1", cad, "M-01", 10)], T)
    assert r.estado == d.EstadoItemPropuesta.NO_DISPONIBLE
    assert r.observaciones == (
        "No hay lotes que cumplan la regla mínima de caducidad (fecha de caducidad más de "
        "60 días posterior a la fecha actual)."
    )


def test_no_lots_in_estado_disponible_reason() -> None:
    r = d.asignar_fefo(P, CENTRAL, 10, [lu("M1", date(2027, 1, 1), "M-01", 10, estado=6)], T)
    assert r.observaciones == "No hay lotes en estado disponible para este producto."
    assert d.asignar_fefo(P, CENTRAL, 10, [], T).observaciones == d.MSG_SIN_LOTES


@pytest.mark.spec("HO-F07")
def test_sequential_allocations_never_oversubscribe() -> None:
    n1 = lu("N1", date(2026, 12, 31), "N-01", 50)
    r1 = d.asignar_fefo(P, CENTRAL, 50, [n1], T)
    from dataclasses import replace

    n1_after = replace(n1, reservado=n1.reservado + r1.cantidad_propuesta)
    r2 = d.asignar_fefo(P, CENTRAL, 50, [n1_after], T)
    assert r1.estado == d.EstadoItemPropuesta.DISPONIBLE
    assert r2.estado == d.EstadoItemPropuesta.NO_DISPONIBLE
    assert r2.cantidad_pendiente == 50


@pytest.mark.spec("HO-F08")
def test_destination_warehouse_only() -> None:
    snaps = [
        lu("Q1", date(2026, 8, 1), "N-01", 100, almacen=NORTE),
        lu("Q2", date(2026, 12, 31), "C-05", 20),
    ]
    r = d.asignar_fefo(P, CENTRAL, 30, snaps, T)
    assert lines(r, snaps) == [("Q2", "C-05", 20)]
    assert r.estado == d.EstadoItemPropuesta.PARCIAL
    assert r.observaciones == "Solo se encontraron 20 de 30 unidades."
    assert r.cantidad_disponible == 20
    assert r.cantidad_pendiente == 10


def test_other_product_ignored() -> None:
    snaps = [lu("X", date(2027, 1, 1), "X-01", 100, producto=Q)]
    r = d.asignar_fefo(P, CENTRAL, 5, snaps, T)
    assert r.asignaciones == ()


def test_zero_requirement_is_trivially_complete() -> None:
    r = d.asignar_fefo(P, CENTRAL, 0, [lu("A", date(2027, 1, 1), "A", 5)], T)
    assert r.asignaciones == ()
    assert r.cantidad_pendiente == 0


def test_estado_propuesta_generada() -> None:
    full = d.asignar_fefo(P, CENTRAL, 5, [lu("A", date(2027, 1, 1), "A", 5)], T)
    none = d.asignar_fefo(P, CENTRAL, 5, [], T)
    assert d.estado_propuesta_generada([full, none]) == d.EstadoPropuesta.GENERADA
    assert d.estado_propuesta_generada([none]) == d.EstadoPropuesta.NO_DISPONIBLE


def test_coverage_never_exceeds_100() -> None:
    assert d.cobertura([(110, 100)]) == Decimal("100.00")
    assert d.cobertura([(80, 100), (0, 50)]) == Decimal("53.33")
    assert d.cobertura([]) == Decimal("0.00")


# ----------------------------------------------------------------------------- FEFO properties

snap_strategy = st.builds(
    lambda i, cad_off, numero, codigo, cantidad, reservado, estado, almacen, ubic: Snap(
        lote_ubicacion_id=i,
        lote_id=i,
        numero_lote=numero,
        producto_id=P,
        almacen_id=almacen,
        fecha_caducidad=None if cad_off is None else T + timedelta(days=cad_off),
        lote_estado=estado,
        ubicacion_codigo=codigo,
        cantidad=cantidad,
        reservado=min(reservado, cantidad),
        ubicacion_estado=ubic,
    ),
    st.integers(1, 10**6),
    st.one_of(st.none(), st.integers(-30, 400)),
    st.text("L0123456789", min_size=1, max_size=4),
    st.text("AB-0129", min_size=1, max_size=4),
    st.integers(0, 200),
    st.integers(0, 200),
    st.sampled_from([1, 1, 1, 4, 6]),
    st.sampled_from([CENTRAL, CENTRAL, NORTE]),
    st.sampled_from(["disponible", "ocupada", "cuarentena"]),
)


@settings(max_examples=300, deadline=None)
@given(
    snaps=st.lists(snap_strategy, max_size=25, unique_by=lambda s: s.lote_ubicacion_id),
    req=st.integers(0, 600),
    days=st.integers(0, 120),
)
def test_fefo_properties(snaps: list[Snap], req: int, days: int) -> None:
    r = d.asignar_fefo(P, CENTRAL, req, snaps, T, min_shelf_life_days=days)
    by_id = {s.lote_ubicacion_id: s for s in snaps}
    eligible = [
        s
        for s in snaps
        if s.almacen_id == CENTRAL
        and s.lote_estado == 1
        and s.ubicacion_estado in ("disponible", "ocupada")
        and s.fecha_caducidad is not None
        and s.fecha_caducidad > T + timedelta(days=days)
    ]
    net = sum(s.neto for s in eligible)
    # conservation and bounds
    assert r.cantidad_propuesta == min(req, net)
    assert r.cantidad_pendiente == req - r.cantidad_propuesta >= 0
    assert r.cantidad_disponible == net
    for a in r.asignaciones:
        s = by_id[a.lote_ubicacion_id]
        assert s in eligible
        assert 0 < a.cantidad <= s.neto
    assert len({a.lote_ubicacion_id for a in r.asignaciones}) == len(r.asignaciones)
    # FEFO: order is non-decreasing and only the last line may be partial
    keys = [d.orden_fefo(by_id[a.lote_ubicacion_id]) for a in r.asignaciones]
    assert keys == sorted(keys)
    for a in r.asignaciones[:-1]:
        assert a.cantidad == by_id[a.lote_ubicacion_id].neto
    # nothing skipped: every eligible lot ordered before the last used one is exhausted
    if r.asignaciones:
        last = keys[-1]
        used = {a.lote_ubicacion_id for a in r.asignaciones}
        for s in eligible:
            if d.orden_fefo(s) < last and s.neto > 0:
                assert s.lote_ubicacion_id in used
    # states
    if req == 0 or r.cantidad_propuesta == req:
        assert r.estado == d.EstadoItemPropuesta.DISPONIBLE
    elif r.cantidad_propuesta > 0:
        assert r.estado == d.EstadoItemPropuesta.PARCIAL
    else:
        assert r.estado == d.EstadoItemPropuesta.NO_DISPONIBLE


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=20))
def test_coverage_bounded(pairs: list[tuple[int, int]]) -> None:
    c = d.cobertura(pairs)
    assert Decimal(0) <= c <= Decimal(100)
    assert c == c.quantize(Decimal("0.01"))


# ----------------------------------------------------------------------------- folios, dates


@pytest.mark.spec("HO-L07")
def test_folio_uses_business_date() -> None:
    now = datetime(2026, 5, 2, 2, 30, tzinfo=UTC)  # 2026-05-01 20:30 America/Mexico_City
    folio = d.generar_folio(now)
    assert d.FOLIO_RE.match(folio)
    assert folio.startswith("SOL-20260501-")
    assert d.generar_folio(now, lambda: "3f9a1c") == "SOL-20260501-3F9A1C"


def test_folio_rejects_bad_token_and_naive_time() -> None:
    with pytest.raises(ValueError, match="hex"):
        d.generar_folio(datetime(2026, 5, 1, tzinfo=UTC), lambda: "xyz")
    with pytest.raises(ValueError, match="naive"):
        d.business_date(datetime(2026, 5, 1))


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_folio_format_property(now: datetime) -> None:
    folio = d.generar_folio(now)
    assert d.FOLIO_RE.match(folio)
    assert folio[4:12] == d.business_date(now).strftime("%Y%m%d")


def test_business_date_evening_boundary() -> None:
    assert d.business_date(datetime(2026, 5, 2, 5, 59, tzinfo=UTC)) == date(2026, 5, 1)
    assert d.business_date(datetime(2026, 5, 2, 6, 0, tzinfo=UTC)) == date(2026, 5, 2)


def test_folio_pedido_key_is_case_insensitive() -> None:
    assert d.clave_folio_pedido(" ped-77 ") == d.clave_folio_pedido("PED-77") == "PED-77"
    assert d.clave_folio_pedido("   ") is None
    assert d.clave_folio_pedido(None) is None


def test_delivery_date_range_evaluated_per_call() -> None:
    assert d.rango_fecha_entrega(T) == (date(2026, 4, 1), date(2026, 5, 8))
    assert d.rango_fecha_entrega(T, atrasados_hasta=date(2026, 5, 15))[0] == date(2026, 1, 1)
    assert d.rango_fecha_entrega(T, atrasados_hasta=date(2026, 4, 30))[0] == date(2026, 4, 1)


def test_kardex_texts() -> None:
    assert d.motivo_salida("PED-QA-0001", "QA001", "Institucion QA") == (
        "Suministro de Pedido — Pedido: PED-QA-0001. Destino: QA001 — Institucion QA."
    )
    assert d.folio_pedido_kardex("PED-1\nnota", "SOL-X") == "PED-1"
    assert d.folio_pedido_kardex(None, "SOL-X") == "SOL-X"
    assert d.folio_pedido_kardex("  ", "SOL-X") == "SOL-X"


# ----------------------------------------------------------------------------- validation


def test_validar_items_captura() -> None:
    d.validar_items_captura([d.ItemCaptura(1, 1)])
    with pytest.raises(d.DomainError) as e:
        d.validar_items_captura([])
    assert e.value.code == "SIN_ITEMS"
    with pytest.raises(d.DomainError) as e:
        d.validar_items_captura([d.ItemCaptura(1, 0)])
    assert e.value.code == "CANTIDAD_INVALIDA"
    assert e.value.extensions["field"] == "items.0.cantidad_solicitada"
    with pytest.raises(d.DomainError) as e:
        d.validar_items_captura([d.ItemCaptura(1, 3), d.ItemCaptura(1, 2)])
    assert e.value.code == "PRODUCTO_DUPLICADO"


J = {"justificacion_codigo": "SIN_EXISTENCIA", "justificacion": "sin stock"}


@pytest.mark.spec("HO-L01")
def test_validation_outcomes() -> None:
    sol = {"X": 10, "Y": 5}
    r = d.validar_aprobaciones(sol, {"X": d.Aprobacion(0, **J), "Y": d.Aprobacion(0, **J)})
    assert r.estado == d.EstadoSolicitud.RECHAZADA
    with pytest.raises(d.DomainError) as e:
        d.validar_aprobaciones(sol, {"X": d.Aprobacion(12, **J), "Y": d.Aprobacion(5)})
    assert e.value.code == "APROBADA_EXCEDE_SOLICITADA"
    assert e.value.extensions["field"] == "items.X.cantidad_aprobada"
    assert "≤ 10" in e.value.detail
    r = d.validar_aprobaciones(sol, {"X": d.Aprobacion(10), "Y": d.Aprobacion(0, **J)})
    assert r.estado == d.EstadoSolicitud.VALIDADA
    assert r.aprobadas["X"].cantidad_aprobada == 10


def test_justification_required_when_different() -> None:
    with pytest.raises(d.DomainError) as e:
        d.validar_aprobaciones({"X": 10}, {"X": d.Aprobacion(5)})
    assert e.value.code == "JUSTIFICACION_REQUERIDA"
    with pytest.raises(d.DomainError) as e:
        d.validar_aprobaciones({"X": 10}, {"X": d.Aprobacion(5, "SIN_EXISTENCIA", " ")})
    assert e.value.extensions["field"] == "items.X.justificacion"
    with pytest.raises(d.DomainError):
        d.validar_aprobaciones({"X": 10}, {"X": d.Aprobacion(5, "INVENTADO", "x")})
    with pytest.raises(d.DomainError) as e:
        d.validar_aprobaciones({"X": 10}, {"X": d.Aprobacion(-1, **J)})
    assert e.value.code == "CANTIDAD_INVALIDA"
    with pytest.raises(d.DomainError) as e:
        d.validar_aprobaciones({"X": 10}, {"Z": d.Aprobacion(1)})
    assert e.value.code == "ITEM_DESCONOCIDO"
    # missing approval = approve in full, no justification needed
    assert d.validar_aprobaciones({"X": 10}, {}).aprobadas["X"].cantidad_aprobada == 10


@given(sol=st.integers(1, 1000), ap=st.integers(-5, 1100), justified=st.booleans())
def test_validation_property(sol: int, ap: int, justified: bool) -> None:
    aprob = d.Aprobacion(ap, **J) if justified else d.Aprobacion(ap)
    ok = 0 <= ap <= sol and (ap == sol or justified)
    if ok:
        r = d.validar_aprobaciones({"X": sol}, {"X": aprob})
        assert r.estado == (d.EstadoSolicitud.VALIDADA if ap > 0 else d.EstadoSolicitud.RECHAZADA)
    else:
        with pytest.raises(d.DomainError):
            d.validar_aprobaciones({"X": sol}, {"X": aprob})


# ----------------------------------------------------------------------------- state machines

S = d.EstadoSolicitud
PR = d.EstadoPropuesta


def test_request_machine_allowed_and_denied() -> None:
    assert d.transicion_solicitud("PENDIENTE", "VALIDADA") == S.VALIDADA
    for terminal in d.SOLICITUD_TERMINAL:
        for target in S:
            with pytest.raises(d.Conflict):
                d.transicion_solicitud(terminal, target)
    with pytest.raises(d.Conflict) as e:
        d.transicion_solicitud("PENDIENTE", "ENTREGADA")
    assert e.value.code == "ESTADO_INVALIDO"
    assert e.value.status == 409


def test_proposal_machine() -> None:
    assert d.transicion_propuesta("GENERADA", "REVISADA") == PR.REVISADA
    assert d.transicion_propuesta("REVISADA", "SURTIDA") == PR.SURTIDA
    assert d.transicion_propuesta("REVISADA", "GENERADA") == PR.GENERADA  # DECIDE-B8
    for done in (PR.SURTIDA, PR.PARCIAL):
        for target in PR:
            with pytest.raises(d.Conflict) as e:
                d.transicion_propuesta(done, target)
            assert e.value.code == "YA_SURTIDA"  # HO-D28/29: dispatched is immutable
    with pytest.raises(d.Conflict):
        d.transicion_propuesta("GENERADA", "SURTIDA")
    with pytest.raises(d.Conflict):
        d.transicion_propuesta("CANCELADA", "GENERADA")


def test_every_transition_target_is_reachable_only_from_listed_sources() -> None:
    for a in S:
        for b in S:
            if (a, b) in d.TRANSICIONES_SOLICITUD:
                d.transicion_solicitud(a, b)
            else:
                with pytest.raises(d.Conflict):
                    d.transicion_solicitud(a, b)


@pytest.mark.spec("HO-D12")
def test_permission_matrix_denies_by_default() -> None:
    A = d.Accion
    assert d.puede(["orders.solicitante"], A.CREAR_SOLICITUD)
    assert not d.puede(["orders.solicitante"], A.VALIDAR)
    assert d.puede(["orders.validador"], A.VALIDAR)
    assert not d.puede(["orders.validador"], A.SURTIR)
    assert d.puede(["orders.almacenista"], A.SURTIR)
    assert not d.puede(["orders.almacenista"], A.LIBERAR_PROPUESTA)
    assert d.puede(["orders.supervisor"], A.OVERRIDE_CADUCIDAD)
    assert not d.puede(["orders.almacenista"], A.OVERRIDE_CADUCIDAD)
    assert d.puede(["admin"], A.VALIDAR)
    assert not d.puede([], A.REPORTES)
    assert not d.puede(["sales.admin"], A.CREAR_SOLICITUD)
    with pytest.raises(d.Forbidden) as e:
        d.exigir(["orders.solicitante"], A.SURTIR)
    assert e.value.status == 403


def test_cancel_request_rules() -> None:
    d.puede_cancelar_solicitud("PENDIENTE", ["orders.solicitante"], es_propietario=True)
    with pytest.raises(d.Forbidden):
        d.puede_cancelar_solicitud("PENDIENTE", ["orders.solicitante"], es_propietario=False)
    with pytest.raises(d.Forbidden):
        d.puede_cancelar_solicitud("VALIDADA", ["orders.solicitante"], es_propietario=True)
    d.puede_cancelar_solicitud("EN_PREPARACION", ["orders.supervisor"], es_propietario=False)
    with pytest.raises(d.Conflict):
        d.puede_cancelar_solicitud("ENTREGADA", ["orders.supervisor"], es_propietario=False)


# ----------------------------------------------------------------------------- manual edits


@pytest.mark.spec("HO-L09")
def test_edit_guards() -> None:
    q_lot = lu("QX", date(2026, 12, 1), "Q-01", 10, producto=Q)
    with pytest.raises(d.DomainError) as e:
        d.verificar_linea_manual(
            producto_item_id=P, almacen_destino_id=CENTRAL, snap=q_lot, today=T
        )
    assert e.value.code == "PRODUCTO_NO_COINCIDE"
    for cad in (T + timedelta(days=30), T + timedelta(days=60)):
        short = lu("S1", cad, "S-01", 10)
        with pytest.raises(d.DomainError) as e:
            d.verificar_linea_manual(
                producto_item_id=P, almacen_destino_id=CENTRAL, snap=short, today=T
            )
        assert e.value.code == "CADUCIDAD_MINIMA"
        # almacenista "override" or supervisor without reason is not enough
        for ov in (
            d.Override(frozenset({"orders.almacenista"}), "urgente"),
            d.Override(frozenset({"orders.supervisor"}), " "),
        ):
            with pytest.raises(d.DomainError):
                d.verificar_linea_manual(
                    producto_item_id=P,
                    almacen_destino_id=CENTRAL,
                    snap=short,
                    today=T,
                    override=ov,
                )
        assert d.verificar_linea_manual(
            producto_item_id=P,
            almacen_destino_id=CENTRAL,
            snap=short,
            today=T,
            override=d.Override(frozenset({"orders.supervisor"}), "urgencia clínica"),
        )
    good = lu("G", T + timedelta(days=61), "G-01", 10)
    assert not d.verificar_linea_manual(
        producto_item_id=P, almacen_destino_id=CENTRAL, snap=good, today=T
    )
    with pytest.raises(d.DomainError) as e:
        d.verificar_total_item(11, 10)
    assert e.value.code == "EXCEDE_APROBADO"
    d.verificar_total_item(10, 10)


@pytest.mark.parametrize(
    "snap",
    [
        lu("W", date(2027, 1, 1), "W-01", 10, almacen=NORTE),
        lu("W", date(2027, 1, 1), "W-01", 10, estado=4),
        lu("W", date(2027, 1, 1), "W-01", 10, ubic_estado="bloqueada"),
        lu("W", None, "W-01", 10),
        lu("W", T - timedelta(days=1), "W-01", 10),
    ],
)
@pytest.mark.spec("HO-D10")
def test_manual_line_never_bypasses_eligibility(snap: Snap) -> None:
    with pytest.raises(d.DomainError) as e:
        d.verificar_linea_manual(
            producto_item_id=P,
            almacen_destino_id=CENTRAL,
            snap=snap,
            today=T,
            override=d.Override(frozenset({"orders.supervisor"}), "motivo"),
        )
    assert e.value.code == "LOTE_NO_ELEGIBLE"


def test_reservation_check_counts_own_line() -> None:
    s = lu("R", date(2027, 1, 1), "R-01", 50, reservado=40)
    d.verificar_reserva(s, 10, 0)
    d.verificar_reserva(s, 30, 20)  # own 20 are part of the 40 reserved
    with pytest.raises(d.Conflict) as e:
        d.verificar_reserva(s, 11, 0)
    assert e.value.code == "STOCK_INSUFICIENTE"


# ----------------------------------------------------------------------------- dispatch


def test_dispatch_state_guard() -> None:
    d.verificar_estado_para_surtir("REVISADA")
    d.verificar_estado_para_surtir("EN_SURTIMIENTO")
    with pytest.raises(d.Conflict) as e:
        d.verificar_estado_para_surtir("SURTIDA")
    assert e.value.code == "YA_SURTIDA"  # HO-L03
    with pytest.raises(d.Conflict) as e:
        d.verificar_estado_para_surtir("GENERADA")
    assert e.value.code == "PROPUESTA_NO_REVISADA"


@pytest.mark.spec("HO-L04")
def test_dispatch_recheck_lists_ineligible_lots() -> None:
    b200 = lu("B200", date(2026, 7, 15), "B-01", 50, estado=d.LOTE_CADUCADO)
    a100 = lu("A100", date(2026, 9, 30), "A-01", 60)
    bad = d.lotes_no_elegibles_al_surtir(
        [d.LineaSurtido(b200, 50), d.LineaSurtido(a100, 50)], T, 60
    )
    assert bad == ["B200"]
    short = lu("S", T + timedelta(days=10), "S-01", 10)
    assert d.lotes_no_elegibles_al_surtir([d.LineaSurtido(short, 5)], T, 60) == ["S"]
    assert d.lotes_no_elegibles_al_surtir([d.LineaSurtido(short, 5, True)], T, 60) == []
    expired = lu("E", T - timedelta(days=1), "E-01", 10)
    assert d.lotes_no_elegibles_al_surtir([d.LineaSurtido(expired, 5, True)], T, 60) == ["E"]


@pytest.mark.spec("HO-L02")
def test_kardex_figures() -> None:
    movs = d.calcular_salidas([(2, 20, 50), (1, 10, 50)], {10: 60, 20: 50})
    assert [(m.lote_id, m.cantidad, m.cantidad_anterior, m.cantidad_nueva) for m in movs] == [
        (10, 50, 60, 10),
        (20, 50, 50, 0),
    ]
    with pytest.raises(d.Conflict):
        d.calcular_salidas([(1, 10, 61)], {10: 60})
    with pytest.raises(d.Conflict):
        d.verificar_existencia_fisica(lu("Z", date(2027, 1, 1), "Z", 5), 6)


def test_dispatch_item_and_proposal_states() -> None:
    assert d.estado_item_surtido(100, 100, "DISPONIBLE") == d.EstadoItemPropuesta.SURTIDO
    assert d.estado_item_surtido(50, 100, "PARCIAL") == d.EstadoItemPropuesta.PARCIAL
    assert d.estado_item_surtido(0, 0, "NO_DISPONIBLE") == d.EstadoItemPropuesta.NO_DISPONIBLE
    assert d.estado_propuesta_surtida(100, 100) == PR.SURTIDA
    assert d.estado_propuesta_surtida(80, 100) == PR.PARCIAL


def test_expiry_job_predicate() -> None:
    assert d.reserva_no_elegible(lu("A", date(2027, 1, 1), "A", 1, estado=6), T)
    assert d.reserva_no_elegible(lu("A", T - timedelta(days=1), "A", 1), T)
    assert not d.reserva_no_elegible(lu("A", T, "A", 1), T)
