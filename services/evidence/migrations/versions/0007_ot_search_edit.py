"""OT search and edit: the OT's client (``id_cliente``, DOMAIN §C.2.2, indexed for the OT and
GPU searches) and the append-only ``ot_historial`` audit of OT edits. Written out here because
a migration is frozen history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ot") as batch:
        batch.add_column(sa.Column("id_cliente", sa.Integer(), nullable=True))
        batch.create_index("ix_ot_id_cliente", ["id_cliente"])
    op.create_table(
        "ot_historial",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("id_ot", sa.Integer(), nullable=False),
        sa.Column("usuario", sa.String(200), nullable=False),
        sa.Column("fecha", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cambios", sa.JSON(), nullable=False),
        sa.Column("motivo", sa.Text(), nullable=True),
    )
    op.create_index("ix_ot_historial_ot", "ot_historial", ["id_ot", "id"])


def downgrade() -> None:
    op.drop_index("ix_ot_historial_ot", table_name="ot_historial")
    op.drop_table("ot_historial")
    with op.batch_alter_table("ot") as batch:
        batch.drop_index("ix_ot_id_cliente")
        batch.drop_column("id_cliente")
