"""CSV upload of request items (issue 15 item 1): `cargas_csv` holds an upload between its
preview and its save; `log_errores_pedido` keeps its per-line errors, written on save, per
request (§B.2.9). Written out here because a migration is frozen history.

Revision ID: 0005_carga_csv
Revises: 0004_idempotency_keys
Create Date: 2026-12-07 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_carga_csv"
down_revision: str | Sequence[str] | None = "0004_idempotency_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cargas_csv",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("usuario", sa.String(150), nullable=False),
        sa.Column("creado_en", TS, nullable=False),
        sa.Column("codificacion", sa.String(20), nullable=False),
        sa.Column("folio", sa.String(100), nullable=True),
        sa.Column("total_lineas", sa.Integer(), nullable=False),
        sa.Column("omitidas", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("errores", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cargas_csv"),
    )
    op.create_index("ix_cargas_csv_usuario", "cargas_csv", ["usuario"])
    op.create_table(
        "log_errores_pedido",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("solicitud_id", sa.Uuid(), nullable=False),
        sa.Column("usuario", sa.String(150), nullable=False),
        sa.Column("fecha_error", TS, nullable=False),
        sa.Column("tipo_error", sa.String(30), nullable=False),
        sa.Column("linea", sa.Integer(), nullable=False),
        sa.Column("clave_solicitada", sa.String(150), nullable=False),
        sa.Column("cantidad_solicitada", sa.String(50), nullable=False),
        sa.Column("descripcion_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["solicitud_id"],
            ["solicitudes.id"],
            name="fk_log_errores_pedido_solicitud_id_solicitudes",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_log_errores_pedido"),
    )
    op.create_index(
        "ix_log_errores_pedido_solicitud", "log_errores_pedido", ["solicitud_id", "linea"]
    )


def downgrade() -> None:
    op.drop_table("log_errores_pedido")
    op.drop_table("cargas_csv")
