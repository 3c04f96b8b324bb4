"""The SQLite hot path of the POS confirmation (`sales.adapters.portable`) beyond the acceptance
examples (which run through it in test_sales_api on SQLite): it stores exactly the rows of the
session path, a rejected cart writes nothing, it is chosen only for SQLite files, and relay
wake-ups are coalesced."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts.events.sales import SaleConfirmed
from sales.adapters import portable
from sales.application.pos import VentaIn, confirm_sale
from sales.domain import Conflict, NotFound
from sales.models import Abono, Auditoria, DetalleVenta, Venta, outbox
from service_defaults.db import create_engine

from .conftest import VENDEDOR, WRITER, outbox_events
from .test_sales_service import consume_all, line, stock

SM = async_sessionmaker[AsyncSession]


def _writer(engine: AsyncEngine) -> portable.SqliteSaleWriter:
    writer = portable.writer_for(engine)
    assert writer is not None
    return writer


def _venta(ids: dict[str, int], **kw: Any) -> VentaIn:
    lines = [
        line(ids, cantidad=2),
        line(ids, material_id=ids["n"], espesor_mm=6, largo=Decimal("12.5")),
    ]
    return VentaIn(carrito=lines, monto_abonado=Decimal("50.00"), metodo_pago="efectivo", **kw)


async def _rows(sm: SM, id_venta: int) -> dict[str, Any]:
    """Every stored column of the sale's rows, minus ids and the instant of the write."""
    async with sm() as s:
        venta = (await s.execute(select(Venta.__table__).where(Venta.id_venta == id_venta))).one()
        det = (
            await s.execute(
                select(DetalleVenta.__table__)
                .where(DetalleVenta.id_venta == id_venta)
                .order_by(DetalleVenta.id_detalle)
            )
        ).all()
        ab = (await s.execute(select(Abono.__table__).where(Abono.id_venta == id_venta))).all()
        au = (
            await s.execute(
                select(Auditoria.__table__).where(
                    Auditoria.entidad == "venta", Auditoria.entidad_id == id_venta
                )
            )
        ).all()

    def strip(row: Any, *drop: str) -> dict[str, Any]:
        return {k: v for k, v in row._mapping.items() if k not in drop}

    return {
        "venta": strip(venta, "id_venta", "creado_en"),
        "lineas": [strip(r, "id_detalle", "id_venta") for r in det],
        "abonos": [strip(r, "id_abono", "id_venta", "fecha", "fecha_negocio") for r in ab],
        "auditoria": [strip(r, "id", "entidad_id", "fecha") for r in au],
    }


async def test_same_rows_as_the_session_path(
    engine: AsyncEngine, sm: SM, ids: dict[str, int]
) -> None:
    async with sm() as s, s.begin():
        by_session = await confirm_sale(s, _venta(ids), VENDEDOR, writer=WRITER)
    by_hotpath = await _writer(engine).confirm_sale(engine, _venta(ids), VENDEDOR)

    assert by_hotpath.total == by_session.total
    assert by_hotpath.saldo_restante == by_session.saldo_restante
    assert by_hotpath.alertas_stock == by_session.alertas_stock
    assert by_hotpath.folio == f"VTA-{by_hotpath.venta.id_venta:04d}"
    session_rows = await _rows(sm, by_session.venta.id_venta)
    hot_rows = await _rows(sm, by_hotpath.venta.id_venta)
    assert hot_rows == session_rows
    assert len(hot_rows["lineas"]) == 2
    assert len(hot_rows["abonos"]) == 1

    async with sm() as s:
        events = [e for e, m in await outbox_events(s, "SaleConfirmed")]
        creado = await s.scalar(
            select(Venta.creado_en).where(Venta.id_venta == by_hotpath.venta.id_venta)
        )
        line_ids = list(
            await s.scalars(
                select(DetalleVenta.id_detalle)
                .where(DetalleVenta.id_venta == by_hotpath.venta.id_venta)
                .order_by(DetalleVenta.id_detalle)
            )
        )
        event_ids = list(await s.scalars(select(outbox.c.id).order_by(outbox.c.seq)))
    assert event_ids[-1] == by_hotpath.event_id
    hot_event = events[-1]
    assert isinstance(hot_event, SaleConfirmed)
    assert hot_event.id_venta == by_hotpath.venta.id_venta
    assert [x.id_detalle for x in hot_event.lineas] == line_ids
    assert creado is not None
    assert hot_event.confirmed_at.replace(tzinfo=None) == creado.replace(tzinfo=None)
    assert events[0].model_dump(exclude={"id_venta", "folio", "lineas", "confirmed_at"}) == (
        hot_event.model_dump(exclude={"id_venta", "folio", "lineas", "confirmed_at"})
    )

    # the stock consumer accepts the hot path's event (origin check: same id and instant)
    await consume_all(sm)
    assert await stock(sm, ids["m"]) == 10 - 2 - 2


async def test_rejected_cart_writes_nothing(
    engine: AsyncEngine, sm: SM, ids: dict[str, int]
) -> None:
    writer = _writer(engine)
    with pytest.raises(Conflict) as exc:  # 11 > 10 in stock
        await writer.confirm_sale(engine, VentaIn(carrito=[line(ids, cantidad=11)]), VENDEDOR)
    assert exc.value.code == "STOCK_INSUFICIENTE"
    with pytest.raises(NotFound):
        await writer.confirm_sale(engine, VentaIn(carrito=[line(ids)], cliente_id=999), VENDEDOR)
    async with sm() as s:
        for table in (Venta, DetalleVenta, Abono, outbox):
            assert await s.scalar(select(func.count()).select_from(table)) == 0
    # the connection is usable again (the failed transactions were rolled back)
    ok = await writer.confirm_sale(engine, VentaIn(carrito=[line(ids)]), VENDEDOR)
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Venta)) == 1
        assert await s.scalar(select(Venta.total)) == ok.total


async def test_chosen_for_sqlite_files_only(engine: AsyncEngine, tmp_path: Path) -> None:
    assert portable.writer_for(engine) is portable.writer_for(engine)
    memory = create_engine("sqlite+aiosqlite://")
    try:
        assert portable.writer_for(memory) is None
    finally:
        await memory.dispose()
    other = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    writer = portable.writer_for(other)
    assert writer is not None
    assert writer is not portable.writer_for(engine)
    await other.dispose()  # closes the writer with its engine
    assert writer._conn is None


async def test_relay_wake_ups_are_coalesced(engine: AsyncEngine) -> None:
    writer = _writer(engine)
    woken: list[float] = []
    loop = asyncio.get_running_loop()
    for _ in range(50):
        writer.wake_relay_soon(lambda: woken.append(loop.time()))
    assert woken == []  # not before the delay
    deadline = loop.time() + 5
    while not woken:
        assert loop.time() < deadline, "the relay was never woken"
        await asyncio.sleep(0.005)
    await asyncio.sleep(2 * portable.RELAY_WAKE_DELAY_S)
    assert len(woken) == 1
    writer.wake_relay_soon(lambda: woken.append(loop.time()))  # a later sale wakes it again
    while len(woken) < 2:
        assert loop.time() < deadline, "the relay was not woken again"
        await asyncio.sleep(0.005)
