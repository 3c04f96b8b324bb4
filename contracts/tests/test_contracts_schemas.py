"""Committed JSON Schemas: no drift, no breaking change; the compatibility checker itself."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from contracts.registry import REGISTRY
from contracts.schemas import SCHEMA_DIR, breaking_changes, check, generate, render, write

REGEN = "run `uv run python -m contracts.schemas` to regenerate"


def test_committed_schemas_match_models() -> None:
    problems = check()
    assert not problems, "\n".join([*problems, REGEN])


def test_one_schema_file_per_registered_event() -> None:
    assert {p.stem for p in SCHEMA_DIR.glob("*.json")} == set(REGISTRY)


@pytest.mark.parametrize("ce_type", sorted(REGISTRY))
def test_schema_is_valid_and_validates_sample(ce_type: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{ce_type}.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["x-nexo"]["ce_type"] == ce_type
    assert schema["x-nexo"]["topic"] == REGISTRY[ce_type].topic


def test_write_and_check_in_tmp(tmp_path: Path) -> None:
    write(tmp_path)
    assert check(tmp_path) == []
    path = tmp_path / "nexo.sales.StockLow.v1.json"
    drifted = json.loads(path.read_text())
    drifted["properties"]["nombre"]["description"] = "edited by hand"
    path.write_text(render(drifted))
    assert any("drift" in p for p in check(tmp_path))
    path.unlink()
    assert any("not committed" in p for p in check(tmp_path))


def test_breaking_change_in_committed_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path)
    path = tmp_path / "nexo.sales.StockLow.v1.json"
    old = json.loads(path.read_text())
    old["properties"]["legacy_field"] = {"type": "string"}  # the model "removed" it
    path.write_text(render(old))
    problems = check(tmp_path)
    assert any("BREAKING: removed property legacy_field" in p for p in problems)


# ----------------------------------------------------------------------------- checker

OLD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "amount": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
        "when": {"type": "string", "format": "date-time"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "kind": {"enum": ["a", "b"], "type": "string"},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}},
    },
    "required": ["id", "amount", "when", "kind", "lines"],
    "$defs": {
        "Line": {
            "type": "object",
            "properties": {"qty": {"type": "integer"}, "sku": {"type": "string"}},
            "required": ["qty"],
        }
    },
}


def _new() -> dict[str, Any]:
    return copy.deepcopy(OLD)


def test_identical_and_additive_changes_are_compatible() -> None:
    assert breaking_changes(OLD, OLD) == []
    new = _new()
    new["properties"]["extra"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    new["$defs"]["Line"]["properties"]["lot"] = {"type": "string"}
    new["properties"]["kind"]["enum"].append("c")  # widened values
    new["properties"]["id"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}  # widened type
    new["required"].remove("lines")  # relaxed
    assert breaking_changes(OLD, new) == []


def test_removed_property() -> None:
    new = _new()
    del new["properties"]["note"]
    assert breaking_changes(OLD, new) == ["removed property note"]


def test_removed_nested_property_through_ref_and_array() -> None:
    new = _new()
    del new["$defs"]["Line"]["properties"]["sku"]
    assert breaking_changes(OLD, new) == ["removed property lines[].sku"]


def test_changed_type() -> None:
    new = _new()
    new["properties"]["amount"] = {"type": "number"}
    changes = breaking_changes(OLD, new)
    assert len(changes) == 1
    assert changes[0].startswith("changed type of amount")


def test_changed_format_is_a_type_change() -> None:
    new = _new()
    new["properties"]["when"]["format"] = "date"
    assert breaking_changes(OLD, new)[0].startswith("changed type of when")


def test_nested_changed_type() -> None:
    new = _new()
    new["$defs"]["Line"]["properties"]["qty"] = {"type": "string"}
    assert breaking_changes(OLD, new)[0].startswith("changed type of lines[].qty")


def test_narrowed_nullable_is_a_type_change() -> None:
    new = _new()
    new["properties"]["note"] = {"type": "string"}
    assert breaking_changes(OLD, new)[0].startswith("changed type of note")


def test_newly_required() -> None:
    new = _new()
    new["required"].append("note")
    assert breaking_changes(OLD, new) == ["newly required property note"]
    new = _new()
    new["properties"]["brand_new"] = {"type": "string"}
    new["required"].append("brand_new")
    assert breaking_changes(OLD, new) == ["newly required property brand_new"]


def test_nested_newly_required() -> None:
    new = _new()
    new["$defs"]["Line"]["required"].append("sku")
    assert breaking_changes(OLD, new) == ["newly required property lines[].sku"]


def test_narrowed_enum() -> None:
    new = _new()
    new["properties"]["kind"]["enum"] = ["a"]
    assert breaking_changes(OLD, new) == ["narrowed values of kind: removed ['\"b\"']"]


def test_real_schema_mutations_are_caught() -> None:
    schemas = generate()
    old = schemas["nexo.sales.SaleConfirmed.v1"]
    new = copy.deepcopy(old)
    del new["properties"]["total"]
    assert "removed property total" in breaking_changes(old, new)
    new = copy.deepcopy(old)
    line = next(iter(new["$defs"].values()))
    line["properties"]["cantidad"] = {"type": "string"}
    assert any("lineas[].cantidad" in c for c in breaking_changes(old, new))
