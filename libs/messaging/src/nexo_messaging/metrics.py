"""Prometheus metrics of the messaging layer (labels: service, topic, group)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED = Counter(
    "nexo_messaging_published_total",
    "Outbox rows published (broker acknowledged)",
    ["service", "topic"],
)
PUBLISH_FAILED = Counter(
    "nexo_messaging_publish_failed_total",
    "Outbox rows whose publish failed (retried)",
    ["service", "topic"],
)
CONSUMED = Counter(
    "nexo_messaging_consumed_total", "Events processed by a handler", ["service", "topic", "group"]
)
DUPLICATES = Counter(
    "nexo_messaging_duplicates_total", "Events skipped by the inbox", ["service", "topic", "group"]
)
HANDLER_FAILED = Counter(
    "nexo_messaging_handler_failed_total",
    "Handler attempts that raised",
    ["service", "topic", "group"],
)
TRANSIENT_RETRIES = Counter(
    "nexo_messaging_transient_retries_total",
    "Chunks put back and retried after a transient infrastructure failure (no DLQ budget used)",
    ["service", "group"],
)
DEAD_LETTERED = Counter(
    "nexo_messaging_dead_lettered_total",
    "Events sent to a DLQ",
    ["service", "topic", "group", "reason"],
)
OUTBOX_BACKLOG = Gauge("nexo_messaging_outbox_backlog", "Unpublished outbox rows", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "nexo_messaging_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row",
    ["service"],
)
RELAY_LEADER = Gauge(
    "nexo_messaging_relay_leader",
    "1 while this process's outbox relay holds the service's relay lock (publishes), else 0",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "nexo_messaging_consumer_lag",
    "Records behind the end of the partitions",
    ["service", "topic", "group"],
)
HANDLER_LATENCY = Histogram(
    "nexo_messaging_handler_seconds",
    "Time to process one fetched chunk (transaction + handler)",
    ["service", "topic", "group"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
