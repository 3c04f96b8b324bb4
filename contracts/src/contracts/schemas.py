"""JSON Schemas of the registered events, generated from the models and committed to
``contracts/schemas/<ce_type>.json`` (one file per event version).

``python -m contracts.schemas`` (re)writes them; ``python -m contracts.schemas --check`` exits 1
on drift. Tests fail on drift and on a breaking change to an already committed version
(:func:`breaking_changes`): within a version only additive changes are allowed
(ARCHITECTURE "Messaging rules" 5) — a new optional property is fine; removing a property,
changing its type or making a property newly required is not (publish ``.v2`` instead).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contracts.events.base import DomainEvent
from contracts.registry import REGISTRY
from contracts.topics import TOPICS

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "SCHEMA_DIR",
    "breaking_changes",
    "check",
    "event_schema",
    "generate",
    "main",
    "render",
    "schema_path",
    "write",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
"""``contracts/schemas`` in the source tree."""

Schema = dict[str, Any]


def event_schema(cls: type[DomainEvent]) -> Schema:
    """Draft 2020-12 JSON Schema of an event's ``data`` (validation mode), with Nexo metadata."""
    body = cls.model_json_schema(mode="validation")
    topic = TOPICS.get(cls.topic)
    schema: Schema = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"https://nexo.dev/schemas/{cls.ce_type()}.json",
        "title": cls.ce_type(),
    }
    schema.update({k: v for k, v in body.items() if k != "title"})
    schema["x-nexo"] = {
        "event": cls.event_name,
        "version": cls.version,
        "service": cls.service,
        "topic": cls.topic,
        "aggregate_type": cls.aggregate_type,
        "key": cls.kafka_key(topic.key if topic else None),
        "ce_type": cls.ce_type(),
        "ce_source": cls.ce_source(),
    }
    return schema


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_path(ce_type: str, directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{ce_type}.json"


def generate() -> dict[str, Schema]:
    """ce_type -> schema, for every registered event."""
    return {ce_type: event_schema(cls) for ce_type, cls in REGISTRY.items()}


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for ce_type, schema in generate().items():
        path = schema_path(ce_type, directory)
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def check(directory: Path = SCHEMA_DIR) -> list[str]:
    """Problems between the models and the committed files: drift, missing files, and breaking
    changes against the committed version. Empty list = OK."""
    problems: list[str] = []
    for ce_type, schema in generate().items():
        path = schema_path(ce_type, directory)
        if not path.exists():
            problems.append(f"{path.name}: not committed")
            continue
        committed = json.loads(path.read_text(encoding="utf-8"))
        for change in breaking_changes(committed, schema):
            problems.append(f"{path.name}: BREAKING: {change}")
        if render(committed) != render(schema):
            problems.append(f"{path.name}: drift from the model")
    known = {schema_path(t, directory).name for t in REGISTRY}
    for path in sorted(directory.glob("*.json")):
        if path.name not in known:
            problems.append(f"{path.name}: committed schema of an event no longer registered")
    return problems


# --------------------------------------------------------------------------- compatibility


def _resolve(node: Any, root: Schema) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 32:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            break
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
        seen += 1
    return node


def _branches(node: Any, root: Schema) -> list[Schema]:
    """The alternatives of a node (anyOf/oneOf flattened, refs resolved)."""
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return []
    for key in ("anyOf", "oneOf"):
        if key in node:
            out: list[Schema] = []
            for sub in node[key]:
                out.extend(_branches(sub, root))
            return out
    return [node]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _types(node: Any, root: Schema) -> set[str]:
    """Type signatures of a node: ``type`` plus ``format`` (``string:date-time``), by branch."""
    found: set[str] = set()
    for branch in _branches(node, root):
        declared = branch.get("type")
        if declared is None and "const" in branch:
            declared = _json_type(branch["const"])
        if declared is None and "enum" in branch:
            declared = sorted({_json_type(v) for v in branch["enum"]})
        if declared is None:
            found.add("any")
            continue
        for name in [declared] if isinstance(declared, str) else declared:
            fmt = branch.get("format")
            found.add(f"{name}:{fmt}" if fmt and name == "string" else name)
    return found


def _enum_values(node: Any, root: Schema) -> set[str] | None:
    values: set[str] = set()
    for branch in _branches(node, root):
        if "const" in branch:
            values.add(json.dumps(branch["const"]))
        elif "enum" in branch:
            values.update(json.dumps(v) for v in branch["enum"])
        elif branch.get("type") != "null":
            return None  # unconstrained branch
    return values or None


def _object_branch(node: Any, root: Schema) -> Schema | None:
    for branch in _branches(node, root):
        if branch.get("type") == "object" or "properties" in branch:
            return branch
    return None


def _array_items(node: Any, root: Schema) -> Any:
    for branch in _branches(node, root):
        if branch.get("type") == "array" and "items" in branch:
            return branch["items"]
    return None


def _walk(
    old: Any, old_root: Schema, new: Any, new_root: Schema, path: str, depth: int = 0
) -> Iterator[str]:
    if depth > 32:
        return
    where = path or "<root>"
    old_types, new_types = _types(old, old_root), _types(new, new_root)
    if "any" not in new_types and not old_types <= new_types:
        yield (
            f"changed type of {where}: {sorted(old_types)} -> {sorted(new_types)}"
            if path
            else f"changed type of the payload: {sorted(old_types)} -> {sorted(new_types)}"
        )
        return
    old_enum, new_enum = _enum_values(old, old_root), _enum_values(new, new_root)
    if old_enum is not None and new_enum is not None and not old_enum <= new_enum:
        yield f"narrowed values of {where}: removed {sorted(old_enum - new_enum)}"

    old_obj, new_obj = _object_branch(old, old_root), _object_branch(new, new_root)
    if old_obj is not None and new_obj is not None:
        old_props: dict[str, Any] = old_obj.get("properties", {})
        new_props: dict[str, Any] = new_obj.get("properties", {})
        for name, old_prop in old_props.items():
            sub = f"{path}.{name}" if path else name
            if name not in new_props:
                yield f"removed property {sub}"
                continue
            yield from _walk(old_prop, old_root, new_props[name], new_root, sub, depth + 1)
        newly = set(new_obj.get("required", [])) - set(old_obj.get("required", []))
        for name in sorted(newly):
            sub = f"{path}.{name}" if path else name
            yield f"newly required property {sub}"

    old_items, new_items = _array_items(old, old_root), _array_items(new, new_root)
    if old_items is not None and new_items is not None:
        yield from _walk(old_items, old_root, new_items, new_root, f"{path}[]", depth + 1)


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Why ``new`` is not a backward-compatible evolution of ``old`` (same event version).

    Detected: a removed property, a changed type (JSON type or string ``format``; widening such
    as adding ``null`` is allowed), a newly required property, narrowed enum/const values —
    recursively through nested objects, arrays, ``$ref`` and ``anyOf``. Empty list = compatible.
    """
    return list(_walk(old, old, new, new, ""))


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `uv run python -m contracts.schemas` to regenerate", file=sys.stderr)
        return 1 if problems else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
