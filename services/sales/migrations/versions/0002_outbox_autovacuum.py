"""outbox autovacuum: vacuum the queue table after 5,000 dead rows, not 20 % of the table

The outbox is a queue: every row is updated once (published_at) and deleted later, so dead
tuples pile up at the head of the unpublished index and slow the relay's claim. Same settings
as ``nexo_messaging.tables.outbox_autovacuum_sql()`` (which only runs on ``create_all``);
written out here because a migration is frozen history. PostgreSQL only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 19:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPTIONS = (
    "autovacuum_vacuum_scale_factor",
    "autovacuum_vacuum_threshold",
    "autovacuum_vacuum_cost_delay",
    "autovacuum_analyze_scale_factor",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, "
            "autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_cost_delay = 0, "
            "autovacuum_analyze_scale_factor = 0.05)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE outbox RESET ({', '.join(_OPTIONS)})")
