"""Outbox and inbox tables. Every service adds both to its own metadata and migrations.

Outbox columns follow Debezium's outbox event router (`id`, `aggregatetype`, `aggregateid`,
`type`, `payload`) so CDC could replace the relay; the rest are relay bookkeeping.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    event,
    func,
    text,
)

OUTBOX = "outbox"
INBOX = "inbox"

# The outbox is a queue table: every row is updated once (published_at) and deleted later, so
# dead tuples pile up at the head of the unpublished index and slow the relay's claim. Vacuum it
# far more often than PostgreSQL's default (20 % of the table). Migrations should run the same
# statement (``outbox_autovacuum_sql()``).
_AUTOVACUUM = (
    "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, "
    "autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05"
)


def outbox_autovacuum_sql(table: str = OUTBOX) -> str:
    return f"ALTER TABLE {table} SET ({_AUTOVACUUM})"


def outbox_table(metadata: MetaData) -> Table:
    table = Table(
        OUTBOX,
        metadata,
        # Monotonic sequence: relay publishes in `seq` order, which keeps per-aggregate order.
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("id", String(36), nullable=False, unique=True),  # CloudEvents id (uuid)
        Column("aggregatetype", String(100), nullable=False),
        Column("aggregateid", String(200), nullable=False),
        Column("type", String(200), nullable=False),  # CloudEvents type, nexo.<svc>.<Name>.v1
        Column("topic", String(200), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("headers", JSON, nullable=False, default=dict),  # correlationid, causationid, ...
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # relay bookkeeping
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text, nullable=True),
        Column("lease_token", String(36), nullable=True),
        Column("lease_until", DateTime(timezone=True), nullable=True),
        Index(
            "ix_outbox_unpublished",
            "seq",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )
    event.listen(
        table,
        "after_create",
        DDL(outbox_autovacuum_sql(table.name)).execute_if(dialect="postgresql"),
    )
    return table


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        INBOX,
        metadata,
        Column("consumer_group", String(200), nullable=False),
        Column("event_id", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer_group", "event_id", name="pk_inbox"),
    )
