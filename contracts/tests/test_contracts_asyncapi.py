"""contracts/asyncapi.yaml: AsyncAPI 3.0 structure, completeness, valid schemas, no drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from contracts.asyncapi import ASYNCAPI_PATH, HEADERS, build, render
from contracts.registry import REGISTRY
from contracts.topics import TOPICS, all_topics


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    return loaded


def _deref(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_not_drifted() -> None:
    assert ASYNCAPI_PATH.read_text(encoding="utf-8") == render(), (
        "contracts/asyncapi.yaml is out of date: run `uv run python -m contracts.asyncapi`"
    )


def test_structure(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    assert doc["defaultContentType"] == "application/json"
    assert set(doc) >= {"channels", "operations", "components"}


def test_every_topic_is_a_channel(doc: dict[str, Any]) -> None:
    channels = doc["channels"]
    assert set(channels) == {t.name for t in all_topics(include_dlq=True)}
    for topic in all_topics(include_dlq=True):
        channel = channels[topic.name]
        assert channel["address"] == topic.name
        assert channel["x-key"] == topic.key
        assert channel["x-consumer-groups"] == list(topic.consumer_groups)
        kafka = channel["bindings"]["kafka"]
        assert kafka["partitions"] == topic.partitions
        assert kafka["topicConfiguration"]["retention.ms"] == topic.retention_ms


def test_every_registry_event_is_a_message_on_its_topic(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    assert set(messages) == set(REGISTRY)
    for ce_type, cls in REGISTRY.items():
        ref = doc["channels"][cls.topic]["messages"][ce_type]["$ref"]
        message = _deref(doc, ref)
        assert message["name"] == cls.event_name
        assert message["x-ce-type"] == ce_type
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        trait = _deref(doc, message["traits"][0]["$ref"])
        assert trait["headers"] == HEADERS


def test_consumer_groups_have_receive_operations(doc: dict[str, Any]) -> None:
    ops = doc["operations"]
    for topic in TOPICS.values():
        sends = [o for o in ops.values() if o["action"] == "send"]
        assert any(o["channel"]["$ref"] == f"#/channels/{topic.name}" for o in sends)
        for group in topic.consumer_groups:
            op = ops[f"{group}.receive.{topic.name}"]
            assert op["action"] == "receive"
            assert op["bindings"]["kafka"]["groupId"]["enum"] == [group]
            for ref in op["messages"]:
                _deref(doc, ref["$ref"])  # resolves
            _deref(doc, op["channel"]["$ref"])


def test_headers_trait() -> None:
    Draft202012Validator.check_schema(HEADERS)
    props = set(HEADERS["properties"])
    assert props >= {
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_specversion",
        "ce_time",
        "ce_subject",
        "content-type",
        "ce_correlationid",
        "ce_causationid",
        "ce_traceparent",
        "traceparent",
    }


def test_payload_schemas_exist_and_are_valid(doc: dict[str, Any]) -> None:
    for message in doc["components"]["messages"].values():
        payload = message["payload"]
        assert payload["schemaFormat"].endswith("draft-2020-12")
        path = ASYNCAPI_PATH.parent / payload["schema"]["$ref"]
        assert path.is_file(), path
        Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


def test_build_needs_no_yaml(tmp_path: Path) -> None:
    # build() is plain data: JSON-serialisable and stable
    assert json.loads(json.dumps(build())) == build()
