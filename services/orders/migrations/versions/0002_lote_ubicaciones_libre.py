"""partial index of stock rows with free stock (FEFO prefix read)

Revision ID: 0002_lote_ubicaciones_libre
Revises: 0001_initial
Create Date: 2026-11-21 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_lote_ubicaciones_libre"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lote_ubicaciones", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lote_ubicaciones_libre",
            ["lote_id"],
            unique=False,
            postgresql_where=sa.text("cantidad > cantidad_reservada"),
            sqlite_where=sa.text("cantidad > cantidad_reservada"),
        )


def downgrade() -> None:
    with op.batch_alter_table("lote_ubicaciones", schema=None) as batch_op:
        batch_op.drop_index("ix_lote_ubicaciones_libre")
