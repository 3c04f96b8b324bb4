"""Kafka topic administration: idempotent creation with the configured partitions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from nexo_messaging.transport import TP, TopicLike

ADMIN_TIMEOUT_S = 30.0


async def _admin(bootstrap_servers: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await asyncio.wait_for(admin.start(), ADMIN_TIMEOUT_S)
    return admin


async def list_topics(bootstrap_servers: str) -> set[str]:
    admin = await _admin(bootstrap_servers)
    try:
        return set(await asyncio.wait_for(admin.list_topics(), ADMIN_TIMEOUT_S))
    finally:
        await asyncio.wait_for(admin.close(), ADMIN_TIMEOUT_S)


async def ensure_topics(bootstrap_servers: str, topics: Iterable[TopicLike]) -> list[str]:
    """Create the missing topics (existing ones are left alone); return the created names."""
    wanted = {t.name: t for t in topics}
    if not wanted:
        return []
    admin = await _admin(bootstrap_servers)
    try:
        existing = set(await asyncio.wait_for(admin.list_topics(), ADMIN_TIMEOUT_S))
        new: list[NewTopic] = []
        for name, t in wanted.items():
            if name in existing:
                continue
            configs: dict[str, Any] = {}
            retention = getattr(t, "retention_ms", None)
            if retention is not None:
                configs["retention.ms"] = str(retention)
            new.append(
                NewTopic(
                    name=name,
                    num_partitions=t.partitions,
                    replication_factor=getattr(t, "replication_factor", 1) or 1,
                    topic_configs=configs,
                )
            )
        created: list[str] = []
        if new:
            response = await asyncio.wait_for(admin.create_topics(new), ADMIN_TIMEOUT_S)
            for entry in response.topic_errors:
                name, code = entry[0], entry[1]
                if code == 0:
                    created.append(name)
                elif code != TopicAlreadyExistsError.errno:  # a concurrent creator is fine
                    raise for_code(code)(f"creating topic {name!r}: {entry[2:]}")
        return created
    finally:
        await asyncio.wait_for(admin.close(), ADMIN_TIMEOUT_S)


async def committed_offsets(
    bootstrap_servers: str, group_id: str, topics: Sequence[str]
) -> dict[TP, int]:
    admin = await _admin(bootstrap_servers)
    try:
        offsets = await asyncio.wait_for(
            admin.list_consumer_group_offsets(group_id), ADMIN_TIMEOUT_S
        )
        return {
            TP(tp.topic, tp.partition): meta.offset
            for tp, meta in offsets.items()
            if tp.topic in topics and meta.offset >= 0
        }
    finally:
        await asyncio.wait_for(admin.close(), ADMIN_TIMEOUT_S)


async def broker_config(bootstrap_servers: str, name: str) -> str | None:
    """One broker setting (of the first broker the cluster metadata lists); None if unknown."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = await _admin(bootstrap_servers)
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), ADMIN_TIMEOUT_S)
        brokers = cluster.get("brokers") or []
        if not brokers:
            return None
        node = str(brokers[0]["node_id"])
        responses = await asyncio.wait_for(
            admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, node, {name: None})]),
            ADMIN_TIMEOUT_S,
        )
        for response in responses:
            for resource in response.resources:
                for entry in resource[4]:
                    if entry[0] == name:
                        return None if entry[1] is None else str(entry[1])
        return None
    finally:
        await asyncio.wait_for(admin.close(), ADMIN_TIMEOUT_S)
