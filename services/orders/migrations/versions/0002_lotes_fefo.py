"""FEFO candidate index on lotes: DISPONIBLE lots by (producto, caducidad), covering

Revision ID: 0002_lotes_fefo
Revises: 0001_initial
Create Date: 2026-11-21 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_lotes_fefo"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lotes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lotes_fefo",
            ["producto_id", "fecha_caducidad"],
            unique=False,
            postgresql_include=["numero_lote", "id"],
            postgresql_where=sa.text("estado = 1"),
            sqlite_where=sa.text("estado = 1"),
        )


def downgrade() -> None:
    with op.batch_alter_table("lotes", schema=None) as batch_op:
        batch_op.drop_index("ix_lotes_fefo")
