"""Every operation of the sales API declares the schema of its successful answers, and the
declared models carry exactly what the serialisers write (a response model drops unknown keys,
so a missing field would silently change a payload)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from sales import domain as d
from sales.api import render
from sales.api.schemas import (
    AbonoPublic,
    ClienteCreado,
    ClientePublic,
    CotizacionPublic,
    LineaPublic,
    MaterialPublic,
    MovimientoResultado,
    ProductoPublic,
    VentaPublic,
)
from sales.main import create_app
from sales.models import Abono, Cliente, Cotizacion, DetalleVenta, Material, Producto, Venta
from sales.settings import SalesSettings

NO_BODY = {"204", "304"}


def _spec() -> dict[str, Any]:
    app = create_app(SalesSettings(env="test", database_url="sqlite+aiosqlite:///:memory:"))
    return app.openapi()


def _answers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(operation, status, media type) of every answer with a body, and its schema (None when
    the answer declares no media type at all)."""
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            bodies = (
                (c, a) for c, a in op["responses"].items() if c[0] == "2" and c not in NO_BODY
            )
            for code, answer in bodies:
                content = answer.get("content") or {}
                if not content:  # JSON, or another media type with its own schema (CSV, PDF)
                    yield f"{method.upper()} {path} {code}: no content", None
                for media, body in content.items():
                    yield f"{method.upper()} {path} {code} {media}", body.get("schema") or {}


def _undeclared(spec: dict[str, Any]) -> list[str]:
    """A schema must be a `$ref`, a union or typed; a bare object only on the platform's probes."""
    missing = []
    for where, schema in _answers(spec):
        if schema is None:
            missing.append(where)
        elif not {"$ref", "type", "anyOf"} & schema.keys():
            missing.append(f"{where}: {schema}")
        elif schema.get("type") == "object" and "properties" not in schema:
            missing += [] if " /health" in where else [f"{where}: bare object"]
    return missing


def test_every_2xx_answer_of_every_operation_has_a_schema() -> None:
    spec = _spec()
    operations = sum(len(ops) for ops in spec["paths"].values())
    assert operations >= 31  # the 31 routes of the service (+ health)
    assert _undeclared(spec) == []


def test_csv_reports_declare_both_media_types() -> None:
    paths = _spec()["paths"]
    for path in ("/reportes/ventas", "/reportes/cuentas-por-cobrar", "/reportes/bajo-stock"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert "$ref" in content["application/json"]["schema"]["items"]
        assert content["text/csv"]["schema"]["type"] == "string"


def test_the_checker_sees_an_undeclared_answer() -> None:
    """The rule itself: an empty schema and a property-less object are reported."""
    spec = {
        "paths": {
            "/x": {
                "get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}
            },
            "/y": {
                "get": {
                    "responses": {
                        "201": {"content": {"application/json": {"schema": {"type": "object"}}}}
                    }
                }
            },
        }
    }
    assert _undeclared(spec) == [
        "GET /x 200 application/json: {}",
        "GET /y 201 application/json: bare object",
    ]


NOW = datetime(2030, 1, 2, 12, 30, tzinfo=UTC)
PRICED: dict[str, Any] = {
    "id_producto": 2,
    "id_material": 4,
    "largo_pza": Decimal("30.00"),
    "ancho_pza": Decimal("20.50"),
    "espesor_mm": 3,
    "porcentaje_utilidad": 40,
    "minutos_laser": 10,
    "precio_unitario": Decimal("50.00"),
    "parametros_precio": {"costo_laser": "150"},
}


def _same(model: Any, rendered: dict[str, Any]) -> None:
    dumped = TypeAdapter(model).dump_python(
        TypeAdapter(model).validate_python(rendered), mode="json"
    )
    assert dumped == rendered
    assert list(dumped) == list(rendered)  # same keys in the same order


def test_public_models_keep_every_rendered_key() -> None:
    venta = Venta(
        id_venta=7,
        id_cotizacion=None,
        id_cliente=3,
        estatus=d.EstatusVenta.PENDIENTE.value,
        total=Decimal("100.00"),
        total_pagado=Decimal("40.00"),
        permitir_backorder=False,
        fecha_venta=date(2030, 1, 2),
        fecha_entrega=None,
        version=1,
    )
    _same(VentaPublic, render.venta_summary(venta))
    linea = DetalleVenta(id_detalle=1, id_venta=7, cantidad=2, subtotal=Decimal("100.00"), **PRICED)
    _same(LineaPublic, render.linea_out(linea))
    abono = Abono(
        id_abono=1,
        id_venta=7,
        monto=Decimal("40.00"),
        metodo="efectivo",
        referencia=None,
        estado="aplicado",
        fecha=NOW,
        fecha_negocio=date(2030, 1, 2),
        usuario="u1",
    )
    _same(AbonoPublic, render.abono_out(abono))
    # an attribute left unset reads as None on a new row (detalle, foto, email, largo, ...)
    producto = Producto(id_producto=2, nombre="Letrero", porcentaje_utilidad=40, activo=True)
    producto.precio_fijo = Decimal("35")
    _same(ProductoPublic, render.producto_out(producto))
    cliente = Cliente(id_cliente=3, nombre="Ana", telefono="+525512345678", es_eventual=False)
    _same(ClientePublic, render.cliente_out(cliente))
    _same(ClienteCreado, {"ok": True, **render.cliente_out(cliente)})
    material = Material(
        id_material=4, descripcion="MDF", stock_actual=1, stock_minimo=5, comprometido=0
    )
    material.ancho, material.activo = Decimal("60.00"), True
    _same(MaterialPublic, render.material_out(material))
    cotizacion = Cotizacion(
        id_cotizacion=5,
        id_cliente=None,
        cantidad=1,
        monto_total=Decimal("50.00"),
        estado=d.EstadoCotizacion.ENVIADA.value,
        fecha=date(2030, 1, 2),
        vigencia_hasta=date(2099, 1, 2),
        **PRICED,
    )
    _same(CotizacionPublic, render.cotizacion_out(cotizacion))


def test_a_movement_answer_is_the_effect_or_no_change() -> None:
    _same(MovimientoResultado, render.movement_out(None, 4))
    _same(MovimientoResultado, render.movement_out(d.StockEffect(10, 3, True, False), 4))
