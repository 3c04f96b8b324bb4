"""Every operation of the orders API declares the schema of its successful answers."""

from __future__ import annotations

from typing import Any

from orders.main import create_app

NO_BODY = {"204", "304"}


def _spec() -> dict[str, Any]:
    return create_app().openapi()


def _undeclared(spec: dict[str, Any]) -> list[str]:
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for code, answer in op["responses"].items():
                if not code.startswith("2") or code in NO_BODY:
                    continue
                content = answer.get("content") or {}
                if not content:
                    missing.append(f"{method.upper()} {path} {code}: no content")
                for media, body in content.items():
                    schema = body.get("schema") or {}
                    if "$ref" not in schema and "type" not in schema:
                        missing.append(f"{method.upper()} {path} {code} {media}: {schema}")
    return missing


def test_every_2xx_answer_of_every_operation_has_a_schema() -> None:
    spec = _spec()
    operations = sum(len(ops) for ops in spec["paths"].values())
    assert operations >= 29  # the 29 routes of the service + health
    assert _undeclared(spec) == []


def test_csv_reports_declare_both_media_types() -> None:
    paths = _spec()["paths"]
    for path in ("/reportes/pendientes", "/reportes/fill-rate", "/reportes/lotes-por-caducar"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert "$ref" in content["application/json"]["schema"]
        assert content["text/csv"]["schema"]["type"] == "string"


def test_lists_share_the_page_shape() -> None:
    schemas = _spec()["components"]["schemas"]
    for name in ("Pagina_SolicitudResumen_", "Pagina_PropuestaResumen_"):
        assert set(schemas[name]["properties"]) == {"items", "limit", "offset"}
    assert set(schemas["Lista_MovimientoPublic_"]["properties"]) == {"items"}


def test_the_checker_sees_an_undeclared_answer() -> None:
    """The rule itself: an answer with an empty schema is reported."""
    spec = {
        "paths": {
            "/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}}
        }
    }
    assert _undeclared(spec) == ["GET /x 200 application/json: {}"]


def test_schema_bases_bound_text_as_the_table_columns() -> None:
    """A `<Thing>Base` field and the table column of the same name agree on the length."""
    from orders import models
    from orders.api import schemas

    pairs = [
        (schemas.InstitucionBase, models.Institucion),
        (schemas.AlmacenBase, models.Almacen),
        (schemas.UbicacionBase, models.Ubicacion),
        (schemas.ProductoBase, models.Producto),
        (schemas.LoteBase, models.Lote),
    ]
    checked = 0
    for base, table in pairs:
        for name, field in base.model_fields.items():
            column = table.__table__.c[name]
            length = getattr(column.type, "length", None)
            bounds = [m.max_length for m in field.metadata if getattr(m, "max_length", None)]
            if length is not None and bounds:  # a vocabulary (Literal) is bounded by its CHECK
                assert bounds == [length], (table.__name__, name)
                checked += 1
    assert checked == 7
