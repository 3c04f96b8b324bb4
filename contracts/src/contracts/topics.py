"""The topic table: the single source of truth for topic names, partitioning, keys, retention,
producers and consumer groups. Used by services (subscriptions), by topic creation
(``deploy``/``nexo_messaging``) and by the docs (``contracts/asyncapi.yaml``).

Keys are always the aggregate id of the events on the topic (per-aggregate ordering):

* ``evidence.production``: ``id_ot`` — ``ProductionSaved.v2`` lists the changed productions of
  one monthly report, so its aggregate is the report's OT; a production's report (hence OT) never
  changes, so every event about one production (single-row edit or bulk save) lands on the same
  partition in commit order. Records of the superseded ``ProductionSaved.v1`` (no longer
  produced) were keyed by ``id_produccion``;
* ``evidence.gpu``: ``id_produccion`` — chosen over ``id_registro_gpu`` because a GPU registry is
  1:1 with its production (OneToOne, DOMAIN §C.2.7) and is created/deleted *by* production
  changes: keying by the production keeps the whole life of one production's GPU (create,
  transitions, delete, re-create with a new ``id_registro_gpu``) in one partition, in order;
* ``sales.sales``: ``id_venta``; ``sales.stock``: ``id_material``;
* ``orders.requests`` and ``orders.proposals``: ``id_solicitud`` (a proposal is 1:1 with its
  request, so the request's whole flow stays ordered).

Dead-letter topics are ``<topic>.dlq`` (same partitions, same key, longer retention).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "DAY_MS",
    "DLQ_RETENTION_MS",
    "DLQ_SUFFIX",
    "OPS_GROUP",
    "TOPICS",
    "Topic",
    "all_topics",
    "consumer_groups",
    "dlq_topic",
    "is_dlq",
    "topic_for_event",
]

DAY_MS = 24 * 60 * 60 * 1000
DEFAULT_RETENTION_MS = 7 * DAY_MS
DLQ_RETENTION_MS = 30 * DAY_MS
DLQ_SUFFIX = ".dlq"
OPS_GROUP = "gateway.ops"
"""The ops dashboard's reader; it reads every topic (DLQs included). A consumer group in process
(memory, local log); on Kafka each gateway replica reads every partition outside any group."""


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    """The Kafka key rule: which aggregate id the key holds."""
    retention_ms: int
    producer: str
    """Service that publishes to it."""
    consumer_groups: tuple[str, ...]
    description: str
    events: tuple[str, ...]
    """``event_name`` of every event published on it (see ``contracts.registry``)."""
    replication_factor: int = 1
    """Default for local/dev; deployments may override."""

    @property
    def is_dlq(self) -> bool:
        return self.name.endswith(DLQ_SUFFIX)


def dlq_topic(name: str) -> str:
    return f"{name}{DLQ_SUFFIX}"


def is_dlq(name: str) -> bool:
    return name.endswith(DLQ_SUFFIX)


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(
            name="evidence.production",
            partitions=3,
            key="id_ot",
            retention_ms=DEFAULT_RETENTION_MS,
            producer="evidence",
            consumer_groups=("evidence.gpu-sync", OPS_GROUP),
            description=(
                "Production records (Produccion) were created, updated or set to 0. "
                "evidence.gpu-sync creates or retires their GPU registries (DOMAIN §C.4.2). "
                "Granularity: one ProductionSaved.v2 per save and monthly report listing the "
                "changed rows (split into parts of at most 1,000 rows, each message well under "
                "1 MiB); unchanged rows publish nothing. Key: id_ot of the monthly report, so a "
                "single-row edit and a bulk save of the same production are delivered in order "
                "on one partition. ProductionSaved.v1 (one per row, keyed by id_produccion) is "
                "superseded: no longer produced, still consumed on replay."
            ),
            events=("ProductionSaved",),
        ),
        Topic(
            name="evidence.gpu",
            partitions=3,
            key="id_produccion",
            retention_ms=DEFAULT_RETENTION_MS,
            producer="evidence",
            consumer_groups=(OPS_GROUP,),
            description=(
                "GPU registry lifecycle: created, status transitions, deleted, and conflicts "
                "(production dropped to 0 on a GPU under review/validated). Keyed by "
                "id_produccion (1:1 with the GPU) so a production's GPU history stays ordered."
            ),
            events=("GpuStatusChanged",),
        ),
        Topic(
            name="sales.sales",
            partitions=3,
            key="id_venta",
            retention_ms=DEFAULT_RETENTION_MS,
            producer="sales",
            consumer_groups=("sales.stock", OPS_GROUP),
            description=(
                "Sales confirmed and cancelled. sales.stock decrements (confirmed) or "
                "re-increments (cancelled) material stock (DOMAIN §A.4.4)."
            ),
            events=("SaleConfirmed", "SaleCancelled"),
        ),
        Topic(
            name="sales.stock",
            partitions=3,
            key="id_material",
            retention_ms=DEFAULT_RETENTION_MS,
            producer="sales",
            consumer_groups=(OPS_GROUP,),
            description=(
                "Stock alerts: StockLow when a material crosses to <= stock_minimo, "
                "StockShortage when a decrement leaves a negative balance. StockShortage.v2 "
                "names its origen (venta, ajuste, conteo) and ledger row; v1 (sales only) is "
                "superseded: no longer produced, still consumed."
            ),
            events=("StockLow", "StockShortage"),
        ),
        Topic(
            name="orders.requests",
            partitions=3,
            key="id_solicitud",
            retention_ms=DEFAULT_RETENTION_MS,
            producer="orders",
            consumer_groups=("orders.proposals", OPS_GROUP),
            description=(
                "Supply requests validated (approved quantities) or rejected (reason code and "
                "text, for the requester's side). orders.proposals generates the FEFO proposal "
                "of a validated request (DOMAIN §B.4.1)."
            ),
            events=("RequestValidated", "RequestRejected"),
        ),
        Topic(
            name="orders.proposals",
            partitions=3,
            key="id_solicitud",
            retention_ms=DEFAULT_RETENTION_MS,
            producer="orders",
            consumer_groups=(OPS_GROUP,),
            description=(
                "Proposal lifecycle: generated (lots reserved FEFO) and dispatched "
                "(stock issued). Keyed by id_solicitud (1:1 with the proposal)."
            ),
            events=("ProposalGenerated", "ProposalDispatched"),
        ),
    )
}


def _dlq_of(topic: Topic) -> Topic:
    return replace(
        topic,
        name=dlq_topic(topic.name),
        retention_ms=DLQ_RETENTION_MS,
        producer="*",
        consumer_groups=(OPS_GROUP,),
        description=(
            f"Dead letters of {topic.name}: records a consumer group could not process "
            "(bad schema or rule violation), original key/value/headers plus error headers. "
            "Replayable from the ops API."
        ),
    )


def all_topics(include_dlq: bool = True) -> list[Topic]:
    """Every topic to create, main topics first, then their DLQs (same order)."""
    main = list(TOPICS.values())
    return main + [_dlq_of(t) for t in main] if include_dlq else main


def topic_for_event(event_name: str) -> Topic:
    for topic in TOPICS.values():
        if event_name in topic.events:
            return topic
    raise KeyError(f"no topic carries event {event_name!r}")


def consumer_groups() -> dict[str, tuple[str, ...]]:
    """Consumer group -> the (main) topics it reads."""
    groups: dict[str, list[str]] = {}
    for topic in TOPICS.values():
        for group in topic.consumer_groups:
            groups.setdefault(group, []).append(topic.name)
    return {g: tuple(ts) for g, ts in groups.items()}
