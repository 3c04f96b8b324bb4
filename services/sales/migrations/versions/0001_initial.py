"""initial: sales schema (DOMAIN Part A) plus outbox/inbox.

Hand-checked autogenerate output; dialect-neutral defaults (runs on SQLite and PostgreSQL).

Revision ID: 0001
Revises:

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "auditoria",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entidad", sa.String(length=40), nullable=False),
        sa.Column("entidad_id", sa.Integer(), nullable=False),
        sa.Column("accion", sa.String(length=40), nullable=False),
        sa.Column("desde", sa.String(length=40), nullable=True),
        sa.Column("hacia", sa.String(length=40), nullable=True),
        sa.Column("motivo", sa.Text(), nullable=True),
        sa.Column("usuario", sa.String(length=100), nullable=False),
        sa.Column(
            "fecha", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auditoria")),
    )
    with op.batch_alter_table("auditoria", schema=None) as batch_op:
        batch_op.create_index("ix_auditoria_entidad", ["entidad", "entidad_id", "id"], unique=False)

    op.create_table(
        "clientes",
        sa.Column("id_cliente", sa.Integer(), nullable=False),
        sa.Column("nombre", sa.String(length=100), nullable=False),
        sa.Column("telefono", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=100), nullable=True),
        sa.Column("direccion", sa.Text(), nullable=True),
        sa.Column("es_eventual", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "creado_en", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("length(trim(nombre)) > 0", name=op.f("ck_clientes_nombre_no_vacio")),
        sa.PrimaryKeyConstraint("id_cliente", name=op.f("pk_clientes")),
    )
    with op.batch_alter_table("clientes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clientes_nombre"), ["nombre"], unique=False)

    op.create_table(
        "configuracion_precios",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "tarifa_laser_minuto",
            sa.Numeric(precision=8, scale=2),
            server_default=sa.text("15.00"),
            nullable=False,
        ),
        sa.Column(
            "actualizado", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_configuracion_precios_singleton")),
        sa.CheckConstraint(
            "tarifa_laser_minuto >= 0", name=op.f("ck_configuracion_precios_tarifa_no_negativa")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_configuracion_precios")),
    )
    op.create_table(
        "historial_precios",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entidad", sa.String(length=40), nullable=False),
        sa.Column("clave", sa.String(length=40), nullable=False),
        sa.Column("valor_anterior", sa.String(length=40), nullable=True),
        sa.Column("valor_nuevo", sa.String(length=40), nullable=True),
        sa.Column("usuario", sa.String(length=100), nullable=False),
        sa.Column(
            "fecha", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_historial_precios")),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer_group", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("consumer_group", "event_id", name="pk_inbox"),
    )
    op.create_table(
        "materiales",
        sa.Column("id_material", sa.Integer(), nullable=False),
        sa.Column("descripcion", sa.String(length=100), nullable=False),
        sa.Column("largo", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("ancho", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("stock_actual", sa.Integer(), nullable=False),
        sa.Column("stock_minimo", sa.Integer(), nullable=False),
        sa.Column("activo", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.CheckConstraint("ancho IS NULL OR ancho > 0", name=op.f("ck_materiales_ancho_positivo")),
        sa.CheckConstraint("largo IS NULL OR largo > 0", name=op.f("ck_materiales_largo_positivo")),
        sa.CheckConstraint(
            "stock_minimo >= 0", name=op.f("ck_materiales_stock_minimo_no_negativo")
        ),
        sa.PrimaryKeyConstraint("id_material", name=op.f("pk_materiales")),
    )
    with op.batch_alter_table("materiales", schema=None) as batch_op:
        batch_op.create_index(
            "ix_materiales_bajo_stock", ["stock_actual", "stock_minimo"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("aggregatetype", sa.String(length=100), nullable=False),
        sa.Column("aggregateid", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_token", sa.String(length=36), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("id", name=op.f("uq_outbox_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_unpublished",
            ["seq"],
            unique=False,
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )

    op.create_table(
        "productos",
        sa.Column("id_producto", sa.Integer(), nullable=False),
        sa.Column("nombre", sa.String(length=100), nullable=False),
        sa.Column("detalle", sa.String(length=100), nullable=True),
        sa.Column("precio_fijo", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column(
            "porcentaje_utilidad", sa.Integer(), server_default=sa.text("40"), nullable=False
        ),
        sa.Column("foto", sa.String(length=255), nullable=True),
        sa.Column("activo", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.CheckConstraint(
            "porcentaje_utilidad >= 0 AND porcentaje_utilidad <= 1000",
            name=op.f("ck_productos_utilidad_rango"),
        ),
        sa.CheckConstraint(
            "precio_fijo IS NULL OR precio_fijo > 0", name=op.f("ck_productos_precio_fijo_positivo")
        ),
        sa.PrimaryKeyConstraint("id_producto", name=op.f("pk_productos")),
    )
    op.create_table(
        "tabulador_costos",
        sa.Column("id_tabulador", sa.Integer(), nullable=False),
        sa.Column("espesor_mm", sa.Integer(), nullable=False),
        sa.Column("factor_costo", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.CheckConstraint("espesor_mm > 0", name=op.f("ck_tabulador_costos_espesor_positivo")),
        sa.CheckConstraint(
            "factor_costo >= 0", name=op.f("ck_tabulador_costos_factor_no_negativo")
        ),
        sa.PrimaryKeyConstraint("id_tabulador", name=op.f("pk_tabulador_costos")),
        sa.UniqueConstraint("espesor_mm", name=op.f("uq_tabulador_costos_espesor_mm")),
    )
    op.create_table(
        "cotizaciones",
        sa.Column("id_cotizacion", sa.Integer(), nullable=False),
        sa.Column("id_cliente", sa.Integer(), nullable=True),
        sa.Column("id_producto", sa.Integer(), nullable=False),
        sa.Column("id_material", sa.Integer(), nullable=False),
        sa.Column("largo_pza", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("ancho_pza", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("espesor_mm", sa.Integer(), nullable=False),
        sa.Column("porcentaje_utilidad", sa.Integer(), nullable=False),
        sa.Column("minutos_laser", sa.Integer(), nullable=False),
        sa.Column("cantidad", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("precio_unitario", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("monto_total", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("parametros_precio", sa.JSON(), nullable=False),
        sa.Column("estado", sa.String(length=20), server_default="borrador", nullable=False),
        sa.Column("fecha", sa.Date(), nullable=False),
        sa.Column("vigencia_hasta", sa.Date(), nullable=False),
        sa.Column("creado_por", sa.String(length=100), nullable=False),
        sa.Column(
            "creado_en", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "estado IN ('borrador', 'enviada', 'aceptada', 'vencida', 'rechazada')",
            name=op.f("ck_cotizaciones_estado_valido"),
        ),
        sa.CheckConstraint("cantidad >= 1", name=op.f("ck_cotizaciones_cantidad_positiva")),
        sa.CheckConstraint(
            "largo_pza >= 0 AND ancho_pza >= 0", name=op.f("ck_cotizaciones_medidas_no_negativas")
        ),
        sa.CheckConstraint("minutos_laser >= 0", name=op.f("ck_cotizaciones_minutos_no_negativos")),
        sa.CheckConstraint("precio_unitario > 0", name=op.f("ck_cotizaciones_precio_positivo")),
        sa.CheckConstraint(
            "vigencia_hasta >= fecha", name=op.f("ck_cotizaciones_vigencia_posterior")
        ),
        sa.ForeignKeyConstraint(
            ["id_cliente"],
            ["clientes.id_cliente"],
            name=op.f("fk_cotizaciones_id_cliente_clientes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["id_material"],
            ["materiales.id_material"],
            name=op.f("fk_cotizaciones_id_material_materiales"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["id_producto"],
            ["productos.id_producto"],
            name=op.f("fk_cotizaciones_id_producto_productos"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id_cotizacion", name=op.f("pk_cotizaciones")),
    )
    with op.batch_alter_table("cotizaciones", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cotizaciones_estado_vigencia", ["estado", "vigencia_hasta"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cotizaciones_id_cliente"), ["id_cliente"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cotizaciones_id_material"), ["id_material"], unique=False
        )

    op.create_table(
        "ventas",
        sa.Column("id_venta", sa.Integer(), nullable=False),
        sa.Column("id_cotizacion", sa.Integer(), nullable=True),
        sa.Column("id_cliente", sa.Integer(), nullable=True),
        sa.Column("estatus", sa.String(length=20), server_default="pendiente", nullable=False),
        sa.Column("total", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column(
            "total_pagado",
            sa.Numeric(precision=12, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("permitir_backorder", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("fecha_venta", sa.Date(), nullable=False),
        sa.Column("fecha_entrega", sa.Date(), nullable=True),
        sa.Column("creado_por", sa.String(length=100), nullable=False),
        sa.Column(
            "creado_en", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("motivo_cancelacion", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "estatus IN ('pendiente', 'en_produccion', 'entregada', 'cancelada')",
            name=op.f("ck_ventas_estatus_valido"),
        ),
        sa.CheckConstraint("total >= 0", name=op.f("ck_ventas_total_no_negativo")),
        sa.CheckConstraint(
            "total_pagado >= 0 AND total_pagado <= total",
            name=op.f("ck_ventas_pagado_dentro_del_total"),
        ),
        sa.ForeignKeyConstraint(
            ["id_cliente"],
            ["clientes.id_cliente"],
            name=op.f("fk_ventas_id_cliente_clientes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["id_cotizacion"],
            ["cotizaciones.id_cotizacion"],
            name=op.f("fk_ventas_id_cotizacion_cotizaciones"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id_venta", name=op.f("pk_ventas")),
        sa.UniqueConstraint("id_cotizacion", name=op.f("uq_ventas_id_cotizacion")),
    )
    with op.batch_alter_table("ventas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ventas_estatus"), ["estatus"], unique=False)
        batch_op.create_index("ix_ventas_fecha", ["fecha_venta", "id_venta"], unique=False)
        batch_op.create_index(batch_op.f("ix_ventas_id_cliente"), ["id_cliente"], unique=False)

    op.create_table(
        "abonos",
        sa.Column("id_abono", sa.Integer(), nullable=False),
        sa.Column("id_venta", sa.Integer(), nullable=False),
        sa.Column("monto", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("metodo", sa.String(length=20), nullable=False),
        sa.Column("referencia", sa.String(length=100), nullable=True),
        sa.Column("estado", sa.String(length=20), server_default="aplicado", nullable=False),
        sa.Column("fecha", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fecha_negocio", sa.Date(), nullable=False),
        sa.Column("usuario", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "estado IN ('aplicado', 'por_reembolsar', 'reembolsado')",
            name=op.f("ck_abonos_estado_valido"),
        ),
        sa.CheckConstraint(
            "metodo IN ('efectivo', 'transferencia', 'tarjeta')",
            name=op.f("ck_abonos_metodo_valido"),
        ),
        sa.CheckConstraint("monto > 0", name=op.f("ck_abonos_monto_positivo")),
        sa.ForeignKeyConstraint(
            ["id_venta"],
            ["ventas.id_venta"],
            name=op.f("fk_abonos_id_venta_ventas"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id_abono", name=op.f("pk_abonos")),
    )
    with op.batch_alter_table("abonos", schema=None) as batch_op:
        batch_op.create_index("ix_abonos_fecha", ["fecha_negocio"], unique=False)
        batch_op.create_index(batch_op.f("ix_abonos_id_venta"), ["id_venta"], unique=False)

    op.create_table(
        "detalle_venta",
        sa.Column("id_detalle", sa.Integer(), nullable=False),
        sa.Column("id_venta", sa.Integer(), nullable=False),
        sa.Column("id_producto", sa.Integer(), nullable=False),
        sa.Column("id_material", sa.Integer(), nullable=False),
        sa.Column("cantidad", sa.Integer(), nullable=False),
        sa.Column("largo_pza", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("ancho_pza", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("espesor_mm", sa.Integer(), nullable=False),
        sa.Column("porcentaje_utilidad", sa.Integer(), nullable=False),
        sa.Column("minutos_laser", sa.Integer(), nullable=False),
        sa.Column("precio_unitario", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("subtotal", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("parametros_precio", sa.JSON(), nullable=False),
        sa.CheckConstraint("cantidad >= 1", name=op.f("ck_detalle_venta_cantidad_positiva")),
        sa.CheckConstraint(
            "largo_pza >= 0 AND ancho_pza >= 0", name=op.f("ck_detalle_venta_medidas_no_negativas")
        ),
        sa.CheckConstraint(
            "minutos_laser >= 0", name=op.f("ck_detalle_venta_minutos_no_negativos")
        ),
        sa.CheckConstraint("precio_unitario > 0", name=op.f("ck_detalle_venta_precio_positivo")),
        sa.ForeignKeyConstraint(
            ["id_material"],
            ["materiales.id_material"],
            name=op.f("fk_detalle_venta_id_material_materiales"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["id_producto"],
            ["productos.id_producto"],
            name=op.f("fk_detalle_venta_id_producto_productos"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["id_venta"],
            ["ventas.id_venta"],
            name=op.f("fk_detalle_venta_id_venta_ventas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_detalle", name=op.f("pk_detalle_venta")),
    )
    with op.batch_alter_table("detalle_venta", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_detalle_venta_id_material"), ["id_material"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_detalle_venta_id_producto"), ["id_producto"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_detalle_venta_id_venta"), ["id_venta"], unique=False)

    op.create_table(
        "movimientos_stock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_material", sa.Integer(), nullable=False),
        sa.Column("cantidad", sa.Integer(), nullable=False),
        sa.Column("saldo_anterior", sa.Integer(), nullable=False),
        sa.Column("saldo_resultante", sa.Integer(), nullable=False),
        sa.Column("motivo", sa.String(length=20), nullable=False),
        sa.Column("id_venta", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("nota", sa.Text(), nullable=True),
        sa.Column("usuario", sa.String(length=100), nullable=False),
        sa.Column(
            "fecha", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "motivo IN ('venta', 'cancelacion', 'reabasto', 'ajuste', 'conteo', 'alta')",
            name=op.f("ck_movimientos_stock_motivo_valido"),
        ),
        sa.CheckConstraint("cantidad <> 0", name=op.f("ck_movimientos_stock_cantidad_no_cero")),
        sa.ForeignKeyConstraint(
            ["id_material"],
            ["materiales.id_material"],
            name=op.f("fk_movimientos_stock_id_material_materiales"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["id_venta"],
            ["ventas.id_venta"],
            name=op.f("fk_movimientos_stock_id_venta_ventas"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_movimientos_stock")),
        sa.UniqueConstraint("event_id", "id_material", name="uq_movimientos_evento_material"),
    )
    with op.batch_alter_table("movimientos_stock", schema=None) as batch_op:
        batch_op.create_index("ix_movimientos_material", ["id_material", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_movimientos_stock_id_venta"), ["id_venta"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("movimientos_stock", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_movimientos_stock_id_venta"))
        batch_op.drop_index("ix_movimientos_material")

    op.drop_table("movimientos_stock")
    with op.batch_alter_table("detalle_venta", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_detalle_venta_id_venta"))
        batch_op.drop_index(batch_op.f("ix_detalle_venta_id_producto"))
        batch_op.drop_index(batch_op.f("ix_detalle_venta_id_material"))

    op.drop_table("detalle_venta")
    with op.batch_alter_table("abonos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_abonos_id_venta"))
        batch_op.drop_index("ix_abonos_fecha")

    op.drop_table("abonos")
    with op.batch_alter_table("ventas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ventas_id_cliente"))
        batch_op.drop_index("ix_ventas_fecha")
        batch_op.drop_index(batch_op.f("ix_ventas_estatus"))

    op.drop_table("ventas")
    with op.batch_alter_table("cotizaciones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cotizaciones_id_material"))
        batch_op.drop_index(batch_op.f("ix_cotizaciones_id_cliente"))
        batch_op.drop_index("ix_cotizaciones_estado_vigencia")

    op.drop_table("cotizaciones")
    op.drop_table("tabulador_costos")
    op.drop_table("productos")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unpublished",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )

    op.drop_table("outbox")
    with op.batch_alter_table("materiales", schema=None) as batch_op:
        batch_op.drop_index("ix_materiales_bajo_stock")

    op.drop_table("materiales")
    op.drop_table("inbox")
    op.drop_table("historial_precios")
    op.drop_table("configuracion_precios")
    with op.batch_alter_table("clientes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clientes_nombre"))

    op.drop_table("clientes")
    with op.batch_alter_table("auditoria", schema=None) as batch_op:
        batch_op.drop_index("ix_auditoria_entidad")

    op.drop_table("auditoria")
