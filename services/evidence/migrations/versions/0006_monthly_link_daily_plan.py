"""Monthly evidence link and daily plan (issue 15 item 9): who set the month's link and when
(``reporte_mensual_header``), who last changed a day's planned volume and when
(``partida_proyectada``). Written out here because a migration is frozen history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reporte_mensual_header") as batch:
        batch.add_column(sa.Column("usuario_archivo", sa.String(200), nullable=True))
        batch.add_column(sa.Column("fecha_archivo", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("partida_proyectada") as batch:
        batch.add_column(sa.Column("usuario_actualizacion", sa.String(200), nullable=True))
        batch.add_column(
            sa.Column("fecha_actualizacion", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("partida_proyectada") as batch:
        batch.drop_column("fecha_actualizacion")
        batch.drop_column("usuario_actualizacion")
    with op.batch_alter_table("reporte_mensual_header") as batch:
        batch.drop_column("fecha_archivo")
        batch.drop_column("usuario_archivo")
