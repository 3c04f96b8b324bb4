"""A request whose proposal could not be generated (issue 15 item 6): estado
`PROPUESTA_FALLIDA` in the CHECK vocabulary, and the reason on the request
(`fallo_propuesta_codigo`, `fallo_propuesta`, `fecha_fallo_propuesta`). Written out here
because a migration is frozen history.

On SQLite the CHECK change recreates `solicitudes` (batch mode): foreign-key enforcement is
switched off for it (on a connection then closed, not pooled), or dropping the old table would
cascade to its items.

Revision ID: 0006_propuesta_fallida
Revises: 0005_carga_csv
Create Date: 2026-12-07 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_propuesta_fallida"
down_revision: str | Sequence[str] | None = "0005_carga_csv"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ANTES = ("PENDIENTE", "VALIDADA", "RECHAZADA", "EN_PREPARACION", "PREPARADA", "ENTREGADA")
ESTADOS_ANTES = (*ANTES, "CANCELADA")
ESTADOS = (*ESTADOS_ANTES, "PROPUESTA_FALLIDA")
CHECK = "ck_solicitudes_estado"


def _in(estados: tuple[str, ...]) -> str:
    return f"estado IN ({', '.join(repr(e) for e in estados)})"


def _recheck(estados: tuple[str, ...], columnas: bool) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("solicitudes", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), sa.text(_in(estados)))
        if columnas:
            batch_op.add_column(sa.Column("fallo_propuesta_codigo", sa.String(40), nullable=True))
            batch_op.add_column(sa.Column("fallo_propuesta", sa.Text(), nullable=True))
            batch_op.add_column(
                sa.Column("fecha_fallo_propuesta", sa.DateTime(timezone=True), nullable=True)
            )
        else:
            batch_op.drop_column("fecha_fallo_propuesta")
            batch_op.drop_column("fallo_propuesta")
            batch_op.drop_column("fallo_propuesta_codigo")
    if sqlite:
        # a PRAGMA inside the open transaction would be a no-op: this connection leaves the
        # pool when released, so the next one is opened with enforcement on (service_defaults.db)
        bind.connection.detach()


def upgrade() -> None:
    _recheck(ESTADOS, columnas=True)


def downgrade() -> None:
    op.execute("UPDATE solicitudes SET estado = 'VALIDADA' WHERE estado = 'PROPUESTA_FALLIDA'")
    _recheck(ESTADOS_ANTES, columnas=False)
