"""available-to-promise: `materiales.comprometido` (quantity held by confirmed sales the stock
consumer has not applied yet, never negative) and `ventas.compromete_stock` (the sale added its
quantities there, so its SaleConfirmed releases them; false for the sales confirmed before).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("materiales") as batch:
        batch.add_column(
            sa.Column("comprometido", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_materiales_comprometido_no_negativo"), "comprometido >= 0"
        )
    with op.batch_alter_table("ventas") as batch:
        batch.add_column(
            sa.Column("compromete_stock", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("ventas") as batch:
        batch.drop_column("compromete_stock")
    with op.batch_alter_table("materiales") as batch:
        batch.drop_constraint(op.f("ck_materiales_comprometido_no_negativo"), type_="check")
        batch.drop_column("comprometido")
