"""Every operation of the sales API declares the schema of its successful answers, and the
declared models carry exactly what the serialisers write (a response model drops unknown keys,
so a missing field would silently change a payload)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from sales import domain as d
from sales.api import render
from sales.api.schemas import (
    AbonoPublic,
    CotizacionPublic,
    LineaPublic,
    MaterialPublic,
    MovimientoResultado,
    ProductoPublic,
    VentaPublic,
)
from sales.main import create_app
from sales.models import Abono, Cotizacion, DetalleVenta, Material, Producto, Venta
from sales.settings import SalesSettings

NO_BODY = {"204", "304"}


def _spec() -> dict[str, Any]:
    app = create_app(SalesSettings(env="test", database_url="sqlite+aiosqlite:///:memory:"))
    return app.openapi()


def _undeclared(spec: dict[str, Any]) -> list[str]:
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for code, answer in op["responses"].items():
                if not code.startswith("2") or code in NO_BODY:
                    continue
                content = answer.get("content") or {}
                if "application/json" not in content:
                    missing.append(f"{method.upper()} {path} {code}: no application/json")
                for media, body in content.items():
                    schema = body.get("schema") or {}
                    if "$ref" not in schema and "type" not in schema and "anyOf" not in schema:
                        missing.append(f"{method.upper()} {path} {code} {media}: {schema}")
                    bare = schema.get("type") == "object" and "properties" not in schema
                    if bare and not path.startswith("/health"):  # the platform's probes
                        missing.append(f"{method.upper()} {path} {code} {media}: bare object")
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
    linea = DetalleVenta(
        id_detalle=1,
        id_venta=7,
        id_producto=2,
        id_material=4,
        cantidad=2,
        largo_pza=Decimal("30.00"),
        ancho_pza=Decimal("20.50"),
        espesor_mm=3,
        porcentaje_utilidad=40,
        minutos_laser=10,
        precio_unitario=Decimal("50.00"),
        subtotal=Decimal("100.00"),
        parametros_precio={"costo_laser": "150"},
    )
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
    producto = Producto(
        id_producto=2,
        nombre="Letrero",
        detalle=None,
        precio_fijo=Decimal("35"),
        porcentaje_utilidad=40,
        foto=None,
        activo=True,
    )
    _same(ProductoPublic, render.producto_out(producto))
    material = Material(
        id_material=4,
        descripcion="MDF",
        largo=None,
        ancho=Decimal("60.00"),
        stock_actual=1,
        stock_minimo=5,
        activo=True,
    )
    _same(MaterialPublic, render.material_out(material))
    cotizacion = Cotizacion(
        id_cotizacion=5,
        id_cliente=None,
        id_producto=2,
        id_material=4,
        largo_pza=Decimal("10.00"),
        ancho_pza=Decimal("10.00"),
        espesor_mm=3,
        porcentaje_utilidad=40,
        minutos_laser=0,
        cantidad=1,
        precio_unitario=Decimal("12.00"),
        monto_total=Decimal("12.00"),
        parametros_precio={},
        estado=d.EstadoCotizacion.ENVIADA.value,
        fecha=date(2030, 1, 2),
        vigencia_hasta=date(2099, 1, 2),
    )
    _same(CotizacionPublic, render.cotizacion_out(cotizacion))


def test_a_movement_answer_is_the_effect_or_no_change() -> None:
    _same(MovimientoResultado, render.movement_out(None, 4))
    _same(MovimientoResultado, render.movement_out(d.StockEffect(10, 3, True, False), 4))
