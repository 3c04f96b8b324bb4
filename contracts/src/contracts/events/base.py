"""Base class of every domain event payload.

A concrete event declares, as class variables, everything the messaging layer needs to route it:
its name (English past tense), its version, the producing service, the topic, and the aggregate
type. `aggregate_id()` gives the Kafka key and the CloudEvents subject (per-aggregate ordering).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_name: ClassVar[str]
    """English past tense, e.g. ``ProductionSaved``."""
    version: ClassVar[int] = 1
    service: ClassVar[str]
    """Producing service, e.g. ``evidence``."""
    topic: ClassVar[str]
    aggregate_type: ClassVar[str]
    key_field: ClassVar[str | None] = None
    """The payload field used as Kafka key when it is not the topic's key (superseded versions
    keyed differently, e.g. ``ProductionSaved.v1`` by ``id_produccion``); ``None``: the topic's."""

    def aggregate_id(self) -> str:
        raise NotImplementedError

    @classmethod
    def ce_type(cls) -> str:
        """CloudEvents ``type``: ``nexo.<service>.<EventName>.v<version>``."""
        return f"nexo.{cls.service}.{cls.event_name}.v{cls.version}"

    @classmethod
    def kafka_key(cls, topic_key: str | None) -> str | None:
        """Name of the field this event's records are keyed by (documentation, schemas)."""
        return cls.key_field or topic_key

    @classmethod
    def ce_source(cls) -> str:
        return f"/services/{cls.service}"
