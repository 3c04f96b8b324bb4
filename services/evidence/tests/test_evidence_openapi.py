"""Every evidence operation declares its answers: each 2xx (but 204/304) has a JSON schema (a
``$ref`` or a ``type``), other media types declare theirs; the hand-rendered GPU grid equals its
declared model's dump."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from evidence import domain as d
from evidence.api.gpus import encode_grid
from evidence.api.schemas import GridPublic
from evidence.main import create_app
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
