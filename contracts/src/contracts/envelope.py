"""CloudEvents 1.0 envelope (the transport-independent form of a published event).

Context attributes follow the CloudEvents 1.0 spec; Nexo adds three extensions:

* ``correlationid``: id of the business flow (the first event / request of a chain);
* ``causationid``: id of the event (or request) that directly caused this one;
* ``traceparent``: W3C trace context of the producing span.

``subject`` is the aggregate id (also the Kafka key), ``data`` the JSON-mode dump of the
domain event (decimals as strings, datetimes as ISO 8601).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from contracts.events.base import DomainEvent

__all__ = ["EXTENSIONS", "CloudEvent", "utc_now"]

EXTENSIONS: tuple[str, ...] = ("correlationid", "causationid", "traceparent")
"""CloudEvents extension attributes Nexo carries (binary mode: ``ce_<name>`` headers)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class CloudEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime = Field(default_factory=utc_now)
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None

    @field_validator("time")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("time must be timezone-aware")
        return value.astimezone(UTC)

    @classmethod
    def from_domain(
        cls,
        event: DomainEvent,
        *,
        id: str,
        time: datetime | None = None,
        headers: dict[str, str] | None = None,
    ) -> CloudEvent:
        """Wrap a domain event. ``headers`` may carry ``correlationid``, ``causationid`` and
        ``traceparent`` (other keys are ignored). ``correlationid`` defaults to ``id`` (a new
        flow starts with this event)."""
        extra = headers or {}
        return cls(
            id=id,
            source=event.ce_source(),
            type=event.ce_type(),
            subject=event.aggregate_id(),
            time=time if time is not None else utc_now(),
            data=event.model_dump(mode="json"),
            correlationid=extra.get("correlationid") or id,
            causationid=extra.get("causationid"),
            traceparent=extra.get("traceparent"),
        )

    def extensions(self) -> dict[str, str]:
        """The non-null extension attributes."""
        values = {"correlationid": self.correlationid, "causationid": self.causationid}
        values["traceparent"] = self.traceparent
        return {k: v for k, v in values.items() if v is not None}
