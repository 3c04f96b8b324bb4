"""The sale writer is chosen once per app from the database (`sales.adapters.sale_writer_for`),
and the PostgreSQL statement and the portable Core inserts write the same rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from sales.adapters import PortableSaleWriter, PostgresSaleWriter, sale_writer_for
from sales.api.render import venta_creada_response
from sales.api.schemas import VentaCreada
from sales.application.pos import ConfirmedSaleRows, SaleRowWriter, VentaIn, VentaRef, VentaResult
from sales.application.pricing import LineaIn
from sales.application.quotes import FrozenPrice
from sales.main import create_app
from sales.models import Abono, Auditoria, Base, DetalleVenta, Material, Producto, Venta
from sales.settings import SalesSettings
from service_defaults.db import create_engine


def test_the_writer_is_chosen_from_the_database_url() -> None:
    assert isinstance(sale_writer_for("postgresql+asyncpg://u@h/db"), PostgresSaleWriter)
    assert isinstance(sale_writer_for("sqlite+aiosqlite:///x.db"), PortableSaleWriter)
    app = create_app(SalesSettings(env="test", database_url="sqlite+aiosqlite:///:memory:"))
    assert isinstance(app.state.sale_writer, PortableSaleWriter)


def _rows(venta: Venta, lineas: list[Any], abonos: list[Any], audit: list[Any]) -> Any:
    drop = {"id_venta", "id_detalle", "id_abono", "id", "entidad_id"}

    def plain(row: Any) -> dict[str, Any]:
        return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in drop}

    return (
        plain(venta),
        [plain(x) for x in lineas],
        [plain(x) for x in abonos],
        [plain(x) for x in audit],
    )


@pytest.mark.integration
async def test_postgres_and_portable_writers_write_identical_rows(pg_database: str) -> None:
    engine = create_engine(pg_database)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sm = async_sessionmaker(engine, expire_on_commit=False)
        async with sm() as s, s.begin():
            p, m = (
                Producto(nombre="P", porcentaje_utilidad=40),
                Material(descripcion="M", stock_actual=10, stock_minimo=1),
            )
            s.add_all([p, m])
            await s.flush()
            pid, mid = p.id_producto, m.id_material
        line = LineaIn(pid, mid, Decimal("30.00"), Decimal("20.50"), 3, 10, 2, 40)
        data = VentaIn(
            carrito=[line, LineaIn(pid, mid, Decimal("1.00"), Decimal("2.00"), 3, 0, 1, 0)],
            monto_abonado=Decimal("50.00"),
            metodo_pago="tarjeta",
            referencia_pago="ref-1",
            fecha_entrega=date(2030, 1, 2),
            permitir_backorder=True,
        )
        prices = [
            FrozenPrice(Decimal("187.80"), Decimal("375.60"), 40, {"costo_laser": "150"}),
            FrozenPrice(Decimal("10.00"), Decimal("10.00"), 0, {"costo_laser": "0"}),
        ]
        now = datetime(2030, 1, 1, 12, tzinfo=UTC)
        written = []
        writer: SaleRowWriter
        for writer in (PostgresSaleWriter(), PortableSaleWriter()):
            async with sm() as s, s.begin():
                id_venta, line_ids = await writer.insert_sale(
                    s,
                    ConfirmedSaleRows(
                        id_cotizacion=None,
                        id_cliente=None,
                        total=Decimal("385.60"),
                        data=data,
                        prices=prices,
                        now=now,
                        usuario="u1",
                        audit_payload={"total": "385.60"},
                    ),
                )
            async with sm() as s:
                venta = await s.get(Venta, id_venta)
                lineas = (
                    await s.scalars(
                        select(DetalleVenta)
                        .where(DetalleVenta.id_venta == id_venta)
                        .order_by(DetalleVenta.id_detalle)
                    )
                ).all()
                abonos = (await s.scalars(select(Abono).where(Abono.id_venta == id_venta))).all()
                audit = (
                    await s.scalars(select(Auditoria).where(Auditoria.entidad_id == id_venta))
                ).all()
            assert line_ids == [x.id_detalle for x in lineas]  # cart order
            written.append(_rows(venta, list(lineas), list(abonos), list(audit)))
        assert written[0] == written[1]
        venta_row, lineas_rows, abonos_rows, _ = written[0]
        assert venta_row["total"] == Decimal("385.60")
        assert [x["cantidad"] for x in lineas_rows] == [2, 1]
        assert len(abonos_rows) == 1
    finally:
        await engine.dispose()


def test_the_rendered_sale_answer_is_the_response_model() -> None:
    """POS and quote conversion answer with the hand-rendered body; it must be exactly what
    the documented `VentaCreada` model dumps."""
    result = VentaResult(
        venta=VentaRef(7),
        folio="VTA-0007",
        total=Decimal("375.60"),
        saldo_restante=Decimal("175.60"),
        alertas_stock=[{"nombre": "Acrílico ñ", "actual": 2, "minimo": 3}],
        event_id="e1",
    )
    response = venta_creada_response(result)
    assert response.status_code == 201
    body = json.loads(response.body)
    assert VentaCreada.model_validate(body).model_dump(mode="json") == body
    assert body["estado_pago"] == "parcial"
