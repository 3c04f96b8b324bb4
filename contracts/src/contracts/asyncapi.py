"""AsyncAPI 3.0 document of Nexo's Kafka topics, generated from the topic table
(:mod:`contracts.topics`) and the registry (:mod:`contracts.registry`).

``python -m contracts.asyncapi`` writes ``contracts/asyncapi.yaml``; ``--check`` exits 1 on drift.
Payloads reference the committed JSON Schemas (``./schemas/<ce_type>.json``, Draft 2020-12 via
``schemaFormat``). Every message carries the ``CloudEvents`` trait (binary-mode headers). Consumer
groups appear as ``receive`` operations (with the Kafka ``groupId`` binding) and as the
``x-consumer-groups`` extension of each channel. :func:`build` needs no YAML library;
:func:`render` imports ``pyyaml`` (a dev dependency) lazily.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from contracts.events.base import DomainEvent
from contracts.registry import REGISTRY
from contracts.topics import DLQ_SUFFIX, OPS_GROUP, TOPICS, Topic, all_topics

__all__ = ["ASYNCAPI_PATH", "SCHEMA_FORMAT", "build", "main", "render"]

ASYNCAPI_PATH = Path(__file__).resolve().parents[2] / "asyncapi.yaml"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
KAFKA_BINDING_VERSION = "0.5.0"
TRAIT = "CloudEvents"

HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "Event id (the outbox row id)."},
        "ce_source": {"type": "string", "description": "/services/<service>"},
        "ce_type": {"type": "string", "description": "nexo.<service>.<EventName>.v<version>"},
        "ce_time": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."},
        "ce_subject": {"type": "string", "description": "Aggregate id; equals the Kafka key."},
        "content-type": {"type": "string", "const": "application/json"},
        "ce_correlationid": {"type": "string", "description": "Business flow id."},
        "ce_causationid": {"type": "string", "description": "Id of the causing event/request."},
        "ce_traceparent": {"type": "string", "description": "W3C trace context."},
        "traceparent": {
            "type": "string",
            "description": "Copy of ce_traceparent for OpenTelemetry Kafka instrumentation.",
        },
    },
}


def _message_id(cls: type[DomainEvent]) -> str:
    return cls.ce_type()


def _message(cls: type[DomainEvent], topic: Topic) -> dict[str, Any]:
    return {
        "name": cls.event_name,
        "title": f"{cls.event_name} v{cls.version}",
        "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else cls.event_name,
        "contentType": "application/json",
        "traits": [{"$ref": f"#/components/messageTraits/{TRAIT}"}],
        "payload": {
            "schemaFormat": SCHEMA_FORMAT,
            "schema": {"$ref": f"./schemas/{cls.ce_type()}.json"},
        },
        "correlationId": {"location": "$message.header#/ce_correlationid"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"{cls.kafka_key(topic.key)} (aggregate id)",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "x-ce-type": cls.ce_type(),
        "x-ce-source": cls.ce_source(),
        "x-aggregate-type": cls.aggregate_type,
    }


def _channel(topic: Topic, events: list[type[DomainEvent]]) -> dict[str, Any]:
    return {
        "address": topic.name,
        "title": topic.name,
        "description": topic.description,
        "messages": {
            _message_id(cls): {"$ref": f"#/components/messages/{_message_id(cls)}"}
            for cls in events
        },
        "bindings": {
            "kafka": {
                "topic": topic.name,
                "partitions": topic.partitions,
                "replicas": topic.replication_factor,
                "topicConfiguration": {
                    "cleanup.policy": ["delete"],
                    "retention.ms": topic.retention_ms,
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "x-key": topic.key,
        "x-producer": topic.producer,
        "x-consumer-groups": list(topic.consumer_groups),
        "x-dlq": topic.is_dlq,
    }


def _events_for(topic: Topic) -> list[type[DomainEvent]]:
    source = topic.name.removesuffix(DLQ_SUFFIX)
    return [cls for cls in REGISTRY.values() if cls.topic == source]


def _op_ref(topic: Topic, events: list[type[DomainEvent]]) -> dict[str, Any]:
    return {
        "channel": {"$ref": f"#/channels/{topic.name}"},
        "messages": [
            {"$ref": f"#/channels/{topic.name}/messages/{_message_id(cls)}"} for cls in events
        ],
    }


def build() -> dict[str, Any]:
    """The AsyncAPI document as plain data."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in all_topics(include_dlq=True):
        events = _events_for(topic)
        channels[topic.name] = _channel(topic, events)
        if not topic.is_dlq:
            for cls in events:
                messages[_message_id(cls)] = _message(cls, TOPICS[topic.name])
            operations[f"{topic.producer}.send.{topic.name}"] = {
                "action": "send",
                "title": f"{topic.producer} publishes to {topic.name}",
                **_op_ref(topic, events),
                "x-service": topic.producer,
            }
        else:
            operations[f"dlq.send.{topic.name}"] = {
                "action": "send",
                "title": f"consumers of {topic.name.removesuffix(DLQ_SUFFIX)} dead-letter here",
                **_op_ref(topic, events),
            }
        for group in topic.consumer_groups:
            operations[f"{group}.receive.{topic.name}"] = {
                "action": "receive",
                "title": f"consumer group {group} reads {topic.name}",
                **_op_ref(topic, events),
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [group]},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
                "x-consumer-group": group,
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Nexo events",
            "version": "1.0.0",
            "description": (
                "Domain events of the Nexo services on Kafka: CloudEvents 1.0 in binary "
                "content mode (ce_* headers, JSON value, key = aggregate id). Generated by "
                "`uv run python -m contracts.asyncapi` from contracts.topics and "
                f"contracts.registry; do not edit by hand. The ops dashboard ({OPS_GROUP}) "
                "reads every topic."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Local/dev broker (KAFKA_BOOTSTRAP_SERVERS in deployments).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "messageTraits": {
                TRAIT: {
                    "headers": HEADERS,
                    "description": "CloudEvents 1.0 Kafka binding, binary content mode.",
                }
            },
        },
    }


def render(document: dict[str, Any] | None = None) -> str:
    import yaml  # dev dependency, only needed to generate/check the file

    header = "# Generated by `uv run python -m contracts.asyncapi`. Do not edit.\n"
    body = yaml.safe_dump(
        document if document is not None else build(),
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    return header + body


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not ASYNCAPI_PATH.exists() or ASYNCAPI_PATH.read_text(encoding="utf-8") != text:
            print(
                f"{ASYNCAPI_PATH} is out of date: run `uv run python -m contracts.asyncapi`",
                file=sys.stderr,
            )
            return 1
        return 0
    ASYNCAPI_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {ASYNCAPI_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
