"""daily reports: operational status catalogue (GP-D02), OT site / real dates, daily plan.

* ``cat_estatus_diario``: daily operational statuses, a catalogue of their own (GP-D02),
  seeded with the legacy ids 1 (default) and 17 (closed day);
* ``reporte_diario_detalle.estatus``: FK to it, default ``OPERATIVO``; existing closed days
  become ``CERRADO``;
* ``ot``: real start/end dates and the site columns by frente (``ots_por_sitio_grid``);
* ``partida_proyectada``: the daily plan (``programado`` of ``obtener_partidas_produccion``).

Runs on SQLite (batch ops) and PostgreSQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cat_estatus_diario",
        sa.Column("codigo", sa.String(length=12), nullable=False),
        sa.Column("id_legacy", sa.Integer(), nullable=False),
        sa.Column("descripcion", sa.String(length=40), nullable=False),
        sa.Column("cierra_dia", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("codigo"),
        sa.UniqueConstraint("id_legacy"),
        sa.UniqueConstraint("descripcion"),
    )
    catalogue = sa.table(
        "cat_estatus_diario",
        sa.column("codigo", sa.String),
        sa.column("id_legacy", sa.Integer),
        sa.column("descripcion", sa.String),
        sa.column("cierra_dia", sa.Boolean),
    )
    op.bulk_insert(
        catalogue,
        [
            {
                "codigo": "OPERATIVO",
                "id_legacy": 1,
                "descripcion": "Operativo",
                "cierra_dia": False,
            },
            {"codigo": "CERRADO", "id_legacy": 17, "descripcion": "Cerrado", "cierra_dia": True},
        ],
    )
    with op.batch_alter_table("reporte_diario_detalle", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("estatus", sa.String(length=12), server_default="OPERATIVO", nullable=False)
        )
        batch_op.create_foreign_key(
            "fk_reporte_diario_estatus",
            "cat_estatus_diario",
            ["estatus"],
            ["codigo"],
            ondelete="RESTRICT",
        )
    diario = sa.table(
        "reporte_diario_detalle", sa.column("estatus", sa.String), sa.column("cerrado", sa.Boolean)
    )
    op.execute(diario.update().where(diario.c.cerrado == sa.true()).values(estatus="CERRADO"))

    with op.batch_alter_table("ot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fecha_inicio_real", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("fecha_termino_real", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("id_frente", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("id_embarcacion", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("id_plataforma", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("id_intercom", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("id_patio", sa.Integer(), nullable=True))

    op.create_table(
        "partida_proyectada",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_ot", sa.Integer(), nullable=False),
        sa.Column("id_partida_anexo", sa.Integer(), nullable=False),
        sa.Column("fecha", sa.Date(), nullable=False),
        sa.Column("volumen_programado", sa.Numeric(precision=15, scale=6), nullable=False),
        sa.CheckConstraint("volumen_programado >= 0", name="ck_partida_proyectada_volumen"),
        sa.ForeignKeyConstraint(["id_ot"], ["ot.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(
            ["id_partida_anexo"], ["partida_anexo_importada.id"], ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id_partida_anexo", "fecha", name="uq_partida_proyectada_fecha"),
    )
    with op.batch_alter_table("partida_proyectada", schema=None) as batch_op:
        batch_op.create_index("ix_partida_proyectada_ot_fecha", ["id_ot", "fecha"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("partida_proyectada", schema=None) as batch_op:
        batch_op.drop_index("ix_partida_proyectada_ot_fecha")
    op.drop_table("partida_proyectada")
    with op.batch_alter_table("ot", schema=None) as batch_op:
        for column in (
            "id_patio",
            "id_intercom",
            "id_plataforma",
            "id_embarcacion",
            "id_frente",
            "fecha_termino_real",
            "fecha_inicio_real",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("reporte_diario_detalle", schema=None) as batch_op:
        batch_op.drop_constraint("fk_reporte_diario_estatus", type_="foreignkey")
        batch_op.drop_column("estatus")
    op.drop_table("cat_estatus_diario")
