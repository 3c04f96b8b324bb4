"""Every evidence operation declares its answers: each 2xx (but 204/304) has a JSON schema (a
``$ref`` or a ``type``), other media types declare theirs; the hand-rendered GPU grid equals its
declared model's dump; the answer models list the rendered members in the rendered order."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from evidence import domain as d
from evidence.api import schemas as s
from evidence.api.billing import estimacion_out
from evidence.api.gpus import encode_grid, gpu_out, historial_out
from evidence.api.ots import ot_out, partida_out
from evidence.api.production import produccion_out
from evidence.api.schemas import GridPublic
from evidence.application.gpus import GpuContext
from evidence.application.history import history_row
from evidence.main import create_app
from evidence.models import (
    EstimacionDetalle,
    EstimacionHeader,
    Ot,
    PartidaAnexo,
    Produccion,
    RegistroGpu,
    RegistroGpuHistorial,
)
from evidence.settings import EvidenceSettings

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    settings = EvidenceSettings(database_url="sqlite+aiosqlite:///:memory:")
    schema: dict[str, Any] = create_app(settings).openapi()
    return schema


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The service's own operations (tag ``evidence``; the platform's health routes are not)."""
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS and "evidence" in op.get("tags", [])
    ]


def test_every_success_answer_declares_a_schema(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    assert len(ops) >= 25  # every route of the service is in the document
    missing = []
    for method, path, op in ops:
        successes = [c for c in op["responses"] if c.startswith("2") and c not in ("204", "304")]
        assert successes, (method, path)
        for code in successes:
            content = op["responses"][code].get("content", {})
            json_schema = content.get("application/json", {}).get("schema", {})
            if not ("$ref" in json_schema or "type" in json_schema):
                missing.append((method, path, code, "application/json"))
            missing += [
                (method, path, code, media)
                for media, body in content.items()
                if media != "application/json" and not body.get("schema")
            ]
    assert missing == []


def test_union_answers_are_typed(spec: dict[str, Any]) -> None:
    """``PUT /producciones`` answers the row or "nothing created": one named schema whose
    branches are both refs."""
    ref = spec["paths"]["/producciones"]["put"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert [s["$ref"].rsplit("/", 1)[1] for s in schema["anyOf"]] == [
        "ProduccionPublic",
        "ProduccionNoCreada",
    ]


def test_csv_report_declares_its_media_type(spec: dict[str, Any]) -> None:
    content = spec["paths"]["/reportes/completitud"]["get"]["responses"]["200"]["content"]
    assert content["text/csv"]["schema"] == {"type": "string"}
    assert content["application/json"]["schema"]["$ref"].endswith("/CompletitudPublic")


def _row(pid: int, day: int, tipo: str, gpu: int | None, estatus: str | None) -> d.GridRow:
    return d.GridRow(
        id_partida_anexo=pid,
        codigo=f"C-{pid}",
        descripcion="Obra ñandú",
        unidad="JOR",
        anexo="C-2" if pid % 2 else None,
        orden_fila=pid,
        id_produccion=100 * pid + day,
        fecha=dt.date(2025, 3, day),
        tipo_tiempo=tipo,
        id_sitio=None if tipo == "TE" else 7,
        volumen=Decimal("1.5"),
        id_gpu=gpu,
        estatus=estatus,
        archivo="https://drive/x" if gpu else None,
    )


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [_row(1, 1, "TE", None, None)],
        [
            _row(1, 1, "CMA", 11, "VALIDADO"),
            _row(1, 1, "TE", 12, "CARGADO"),
            _row(2, 31, "TE", None, None),
            _row(3, 15, "TE", 13, "RECHAZADO"),
        ],
    ],
)
def test_hand_rendered_grid_equals_its_model(rows: list[d.GridRow]) -> None:
    """The cached grid body is pre-rendered bytes: it parses as ``GridPublic`` (which forbids
    unknown members) and dumps back to the same JSON (cells without a GPU omit ``id_gpu``)."""
    body = encode_grid(d.build_grid(rows))
    model = GridPublic.model_validate_json(body)
    assert model.model_dump(mode="json", exclude_unset=True) == json.loads(body)
    assert len(model.data) == len({r.id_partida_anexo for r in rows})


NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def _keys_in_order(rendered: dict[str, Any], model: type[Any]) -> None:
    """FastAPI writes an answer in its model's field order: the model lists the rendered
    members in the rendered order, so the JSON's key order did not change."""
    assert list(rendered) == list(model.model_fields)
    assert model.model_validate(rendered).model_dump(mode="json") == json.loads(
        json.dumps(rendered, default=str)
    )


def test_rendered_answers_keep_their_key_order() -> None:
    day = dt.date(2025, 3, 2)
    ot = Ot(id=1, orden_trabajo="OT-1", descripcion_trabajo="", id_tipo=4, fecha_creacion=NOW)
    _keys_in_order(ot_out(ot), s.OtPublic)
    partida = PartidaAnexo(
        id=2, id_importacion_anexo=1, id_partida="C-1", descripcion_concepto="x", anexo="C-2",
        unidad="JOR", volumen_proyectado=Decimal(5), precio_unitario_mn=Decimal("1.5"),
        precio_unitario_usd=Decimal(0), orden_fila=0,
    )  # fmt: skip
    _keys_in_order(partida_out(partida), s.PartidaPublic)
    prod = Produccion(
        id=3, id_partida_anexo=2, id_reporte_mensual=4, fecha_produccion=day,
        volumen_produccion=Decimal("2.5"), tipo_tiempo="TE", id_sitio_produccion=0,
        es_excedente=False, version=1, fecha_creacion=NOW, fecha_actualizacion=NOW,
    )  # fmt: skip
    _keys_in_order(produccion_out(prod), s.ProduccionPublic)
    gpu = RegistroGpu(
        id=5, id_produccion=3, estatus="CARGADO", archivo="https://x", checklist={"a": True},
        version=2, fecha_carga=NOW, usuario_carga="ana", fecha_creacion=NOW,
        fecha_actualizacion=NOW,
    )  # fmt: skip
    ctx = GpuContext(gpu, 1, 4, False, "C-2", day, Decimal("2.5"), "TE")
    _keys_in_order(gpu_out(ctx), s.GpuPublic)
    row = history_row(5, 3, "TRANSICION", "G3", ("PENDIENTE", "CARGADO"), "ana", NOW, version=2)
    _keys_in_order(historial_out(RegistroGpuHistorial(id=9, **row)), s.GpuHistorialPublic)
    header = EstimacionHeader(
        id=6, id_ot=1, fecha_estimacion=day, fecha_desde=day, fecha_hasta=day,
        estatus_cobro="BORRADOR", total_volumen_producido=Decimal(1),
        total_volumen_estimado=Decimal(1), total_importe_mn=Decimal(1),
        total_importe_usd=Decimal(0), creado_por="fac", fecha_creacion=NOW,
    )  # fmt: skip
    line = EstimacionDetalle(
        id=7, id_estimacion_header=6, id_produccion=3, volumen_actual=Decimal(1),
        volumen_estimado=Decimal(1), precio_unitario_mn=Decimal(1),
        precio_unitario_usd=Decimal(0), importe_mn=Decimal(1), importe_usd=Decimal(0),
        es_excedente=False,
    )  # fmt: skip
    rendered = estimacion_out(header, [line], [{"id_produccion": 8, "motivo": "SIN_GPU"}])
    _keys_in_order(rendered, s.EstimacionPublic)
    _keys_in_order(rendered["detalles"][0], s.EstimacionDetallePublic)
    rows = d.production_grid(
        [d.PlanLine(2, "C-2", "C-1", "x", "JOR", Decimal(5))],
        [(2, day, "TE", Decimal("2.5"), True)],
        [(2, day, Decimal(3))],
        mes=3, anio=2025, tipo_tiempo="TE", archivo=None,
    )  # fmt: skip
    _keys_in_order(rows[0], s.PartidaProduccion)
    _keys_in_order(rows[0]["dia2"], s.DiaProduccion)
