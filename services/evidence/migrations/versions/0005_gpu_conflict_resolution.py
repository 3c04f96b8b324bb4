"""gpu_conflicto resolution: how a G10 conflict was closed (CONSERVAR / ANULAR by a supervisor,
AUTOMATICA by the GPU sync), the justification, who and when. Written out here because a
migration is frozen history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gpu_conflicto") as batch:
        batch.add_column(sa.Column("resolucion", sa.String(12), nullable=True))
        batch.add_column(sa.Column("justificacion", sa.Text(), nullable=True))
        batch.add_column(sa.Column("resuelto_por", sa.String(200), nullable=True))
        batch.add_column(sa.Column("fecha_resolucion", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gpu_conflicto") as batch:
        for name in ("fecha_resolucion", "resuelto_por", "justificacion", "resolucion"):
            batch.drop_column(name)
