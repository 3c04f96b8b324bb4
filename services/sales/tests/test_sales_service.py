"""Use cases and consumer handlers over SQLite (no HTTP, no broker)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events.sales import SaleCancelled, SaleConfirmed, StockLow, StockShortageV2
from sales import consumers
from sales.application.catalogue import delete_material, set_tarifa
from sales.application.clients import ClienteIn
from sales.application.common import utcnow
from sales.application.pos import VentaIn, confirm_sale
from sales.application.pricing import LineaIn
from sales.application.quotes import (
    CotizacionIn,
    convert_cotizacion,
    create_cotizacion,
    transition_cotizacion,
)
from sales.application.stock import restock
from sales.application.ventas import add_abono, change_status
from sales.domain import (
    Conflict,
    DomainError,
    EstadoCotizacion,
    EstatusVenta,
    Invalid,
    NotFound,
    Periodo,
    business_date,
)
from sales.models import (
    Abono,
    Auditoria,
    DetalleVenta,
    Material,
    MovimientoStock,
    Venta,
    outbox,
)
from sales.queries import (
    get_venta,
    list_clientes,
    report_bajo_stock,
    report_cuentas_por_cobrar,
    report_ventas,
    to_csv,
)

from .conftest import ADMIN, VENDEDOR, WRITER, outbox_events

SM = async_sessionmaker[AsyncSession]


def line(ids: dict[str, int], **kw: Any) -> LineaIn:
    base: dict[str, Any] = {
        "producto_id": ids["p"],
        "material_id": ids["m"],
        "largo": Decimal(30),
        "ancho": Decimal(20),
        "espesor_mm": 3,
        "minutos_laser": 10,
        "cantidad": 1,
        "porcentaje_utilidad": 40,
    }
    base.update(kw)
    return LineaIn(**base)


async def confirm(sm: SM, ids: dict[str, int], *lines: LineaIn, **kw: Any) -> Any:
    async with sm() as s, s.begin():
        return await confirm_sale(s, VentaIn(carrito=list(lines), **kw), VENDEDOR, writer=WRITER)


async def consume_all(sm: SM) -> None:
    """Deliver every SaleConfirmed/SaleCancelled in the outbox to the stock handlers
    (the inbox/skip of already-applied events is the handler's own check here)."""
    async with sm() as s:
        events = await outbox_events(s)
    for event, meta in events:
        handler = consumers.HANDLERS.get(type(event))
        if handler is None:
            continue
        async with sm() as s, s.begin():
            await handler(s, event, meta)


async def stock(sm: SM, id_material: int) -> int:
    async with sm() as s:
        return int(
            await s.scalar(select(Material.stock_actual).where(Material.id_material == id_material))
        )


async def events_of(sm: SM, cls: type) -> list[Any]:
    async with sm() as s:
        return [e for e, _ in await outbox_events(s) if isinstance(e, cls)]


async def count(sm: SM, model: Any) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


# ------------------------------------------------------------------ AC-S01..S05


@pytest.mark.spec("AC-S01")
async def test_decrement_and_alert(sm: SM, ids: dict[str, int]) -> None:
    r1 = await confirm(sm, ids, line(ids, cantidad=4))
    assert r1.alertas_stock == []
    assert r1.folio == f"VTA-{r1.venta.id_venta:04d}"
    assert await stock(sm, ids["m"]) == 10  # not touched at confirmation
    await consume_all(sm)
    assert await stock(sm, ids["m"]) == 6
    assert await events_of(sm, StockLow) == []
    r2 = await confirm(sm, ids, line(ids, cantidad=4))
    assert r2.alertas_stock == [{"nombre": "M", "actual": 2, "minimo": 3}]
    await consume_all(sm)
    assert await stock(sm, ids["m"]) == 2
    lows = await events_of(sm, StockLow)
    assert [(e.id_material, e.actual, e.minimo) for e in lows] == [(ids["m"], 2, 3)]
    r3 = await confirm(sm, ids, line(ids, cantidad=1))
    assert r3.alertas_stock == [{"nombre": "M", "actual": 1, "minimo": 3}]
    await consume_all(sm)
    assert await stock(sm, ids["m"]) == 1
    assert len(await events_of(sm, StockLow)) == 1
    assert await count(sm, MovimientoStock) == 3


@pytest.mark.spec("AC-S02")
async def test_oversell_and_backorder(sm: SM, ids: dict[str, int]) -> None:
    async with sm() as s, s.begin():
        await restock(s, ids["m"], -8, ADMIN, motivo="ajuste", nota="merma")
    assert await stock(sm, ids["m"]) == 2
    with pytest.raises(Conflict) as exc:
        await confirm(sm, ids, line(ids, cantidad=5))
    e = exc.value
    assert (e.code, e.status) == ("STOCK_INSUFICIENTE", 409)
    assert (e.extensions["material"], e.extensions["disponible"], e.extensions["solicitado"]) == (
        "M",
        2,
        5,
    )
    assert await count(sm, Venta) == 0
    assert await events_of(sm, SaleConfirmed) == []
    lows_before = len(await events_of(sm, StockLow))  # the -8 adjustment crossed: 1
    assert lows_before == 1
    await confirm(sm, ids, line(ids, cantidad=5), permitir_backorder=True)
    await consume_all(sm)
    assert await stock(sm, ids["m"]) == -3
    shortages = await events_of(sm, StockShortageV2)
    assert [(e.stock_actual, e.faltante) for e in shortages] == [(-3, 3)]
    assert len(await events_of(sm, StockLow)) == lows_before


@pytest.mark.spec("AC-S03")
async def test_concurrent_confirmations(sm: SM, ids: dict[str, int]) -> None:
    await confirm(sm, ids, line(ids, cantidad=4))
    await confirm(sm, ids, line(ids, cantidad=4))
    await consume_all(sm)
    assert await stock(sm, ids["m"]) == 2
    assert len(await events_of(sm, StockLow)) == 1


@pytest.mark.spec("AC-S03")
async def test_both_confirmed_before_consumption(sm: SM, ids: dict[str, int]) -> None:
    """The first sale holds 6 of 10 until consumed: a second of 6 is refused (disponible 4)
    unless it allows a backorder (available-to-promise, issue 15 item 12)."""
    await confirm(sm, ids, line(ids, cantidad=6))
    with pytest.raises(Conflict) as exc:
        await confirm(sm, ids, line(ids, cantidad=6))
    assert exc.value.extensions["disponible"] == 4
    await confirm(sm, ids, line(ids, cantidad=6), permitir_backorder=True)
    await consume_all(sm)
    assert await stock(sm, ids["m"]) == -2
    assert len(await events_of(sm, StockShortageV2)) == 1
    lows = await events_of(sm, StockLow)
    assert [(e.anterior, e.actual) for e in lows] == [(4, -2)]


@pytest.mark.spec("AC-S03")
async def test_second_after_consumption_rejected(sm: SM, ids: dict[str, int]) -> None:
    await confirm(sm, ids, line(ids, cantidad=6))
    await consume_all(sm)
    with pytest.raises(Conflict):
        await confirm(sm, ids, line(ids, cantidad=6))
    assert await stock(sm, ids["m"]) == 4


@pytest.mark.spec("AC-S04")
async def test_same_material_two_lines(sm: SM, ids: dict[str, int]) -> None:
    async with sm() as s, s.begin():
        await restock(s, ids["m"], -5, ADMIN, motivo="ajuste", nota="x")
    with pytest.raises(Conflict) as exc:
        await confirm(sm, ids, line(ids, cantidad=3), line(ids, cantidad=3))
    assert exc.value.extensions["solicitado"] == 6
    assert await count(sm, Venta) == 0
    assert await stock(sm, ids["m"]) == 5


@pytest.mark.spec("AC-S05")
async def test_unknown_material_writes_nothing(sm: SM, ids: dict[str, int]) -> None:
    with pytest.raises(NotFound) as exc:
        await confirm(
            sm, ids, line(ids), line(ids, material_id=ids["n"]), line(ids, material_id=999)
        )
    assert exc.value.extensions["field"] == "carrito[2].material_id"
    assert await count(sm, Venta) == 0
    assert await count(sm, DetalleVenta) == 0
    assert await count(sm, outbox) == 0
    assert await stock(sm, ids["m"]) == 10


async def test_tampered_subtotal_and_zero_price(sm: SM, ids: dict[str, int]) -> None:
    with pytest.raises(Invalid) as exc:
        await confirm(sm, ids, line(ids, subtotal=Decimal("1.00")))
    assert exc.value.code == "PRECIO_DESACTUALIZADO"
    assert exc.value.extensions["subtotal"] == "187.80"
    with pytest.raises(Invalid) as exc:
        await confirm(sm, ids, line(ids, largo=Decimal(0), ancho=Decimal(0), minutos_laser=0))
    assert exc.value.code == "PRECIO_CERO"
    assert await count(sm, Venta) == 0


async def test_utility_defaults_to_product(sm: SM, ids: dict[str, int]) -> None:
    r = await confirm(sm, ids, line(ids, porcentaje_utilidad=None))
    assert r.total == Decimal("187.80")
    r0 = await confirm(sm, ids, line(ids, porcentaje_utilidad=0))
    assert r0.total == Decimal("177.00")  # AC-P08 / AC-D10


async def test_fixed_price_line(sm: SM, ids: dict[str, int]) -> None:
    r = await confirm(sm, ids, line(ids, producto_id=ids["pf"], cantidad=3))
    assert r.total == Decimal("450.00")  # AC-P06 / AC-D29


async def test_inline_client_creation(sm: SM, ids: dict[str, int]) -> None:
    r = await confirm(
        sm,
        ids,
        line(ids),
        cliente_nuevo=ClienteIn(nombre=" Ana ", telefono="55 1234 5678", es_eventual=True),
    )
    async with sm() as s:
        det = await get_venta(s, r.venta.id_venta)
        assert det.cliente is not None
        assert det.cliente.nombre == "Ana"
        assert det.cliente.telefono == "+525512345678"
        assert [c.nombre for c in await list_clientes(s)] == []  # AC-D19
        assert len(await list_clientes(s, incluir_eventuales=True)) == 1


# ------------------------------------------------------------------ redelivery


async def test_redelivery_is_idempotent(sm: SM, ids: dict[str, int]) -> None:
    await confirm(sm, ids, line(ids, cantidad=4), line(ids, cantidad=1, material_id=ids["n"]))
    async with sm() as s:
        ((event, meta),) = await outbox_events(s, "SaleConfirmed")
    for _ in range(3):
        async with sm() as s, s.begin():
            await consumers.handle_sale_confirmed(s, event, meta)
    async with sm() as s, s.begin():
        await consumers.handle_batch(s, [(event, meta), (event, meta)])
    assert await stock(sm, ids["m"]) == 6
    assert await stock(sm, ids["n"]) == 99
    assert await count(sm, MovimientoStock) == 2


async def test_batch_equals_sequential(sm: SM, ids: dict[str, int]) -> None:
    for _ in range(4):
        await confirm(sm, ids, line(ids, cantidad=3), permitir_backorder=True)
    async with sm() as s:
        items = await outbox_events(s, "SaleConfirmed")
    async with sm() as s, s.begin():
        await consumers.handle_batch(s, items)
    assert await stock(sm, ids["m"]) == -2
    async with sm() as s:
        movs = (await s.scalars(select(MovimientoStock).order_by(MovimientoStock.id))).all()
    assert [(m.saldo_anterior, m.saldo_resultante) for m in movs] == [
        (10, 7),
        (7, 4),
        (4, 1),
        (1, -2),
    ]
    assert len(await events_of(sm, StockLow)) == 1
    assert len(await events_of(sm, StockShortageV2)) == 1


async def test_unknown_material_in_event_is_permanent(sm: SM, ids: dict[str, int]) -> None:
    from datetime import UTC, datetime

    from contracts.events.sales import SaleLine
    from nexo_messaging.errors import PermanentError

    from .conftest import meta_for

    ev = SaleConfirmed(
        id_venta=1,
        folio="VTA-0001",
        lineas=[
            SaleLine(
                id_material=999,
                cantidad=1,
                id_producto=1,
                precio_unitario=Decimal(1),
                subtotal=Decimal(1),
            )
        ],
        total=Decimal(1),
        confirmed_at=datetime.now(UTC),
        confirmed_by="x",
    )
    with pytest.raises(PermanentError):
        async with sm() as s, s.begin():
            await consumers.handle_sale_confirmed(s, ev, meta_for("e-1"))


# ------------------------------------------------------------------ money and states


@pytest.mark.spec("AC-S06")
async def test_balance_and_abono_above_balance_refused(sm: SM, ids: dict[str, int]) -> None:
    r = await confirm(sm, ids, line(ids), line(ids, cantidad=4), monto_abonado=Decimal("500.00"))
    assert r.total == Decimal("939.00")
    assert r.saldo_restante == Decimal("439.00")
    vid = r.venta.id_venta
    async with sm() as s, s.begin():
        await add_abono(s, vid, Decimal("439.00"), VENDEDOR, metodo="transferencia")
    with pytest.raises(Invalid) as exc:
        async with sm() as s, s.begin():
            await add_abono(s, vid, Decimal("0.01"), VENDEDOR)
    assert exc.value.code == "ABONO_EXCEDE_SALDO"
    async with sm() as s:
        det = await get_venta(s, vid)
    assert det.venta.total_pagado == Decimal("939.00")
    assert len(det.abonos) == 2


async def test_initial_overpayment_rejected(sm: SM, ids: dict[str, int]) -> None:
    with pytest.raises(Invalid) as exc:
        await confirm(sm, ids, line(ids), monto_abonado=Decimal("187.81"))
    assert exc.value.code == "ABONO_EXCEDE_SALDO"
    assert await count(sm, Venta) == 0


@pytest.mark.spec("AC-S07")
async def test_delivering_with_balance_needs_admin_and_reason(sm: SM, ids: dict[str, int]) -> None:
    r = await confirm(sm, ids, line(ids), line(ids, cantidad=4), monto_abonado=Decimal(500))
    vid = r.venta.id_venta
    async with sm() as s, s.begin():
        await change_status(s, vid, EstatusVenta.EN_PRODUCCION, VENDEDOR)
    with pytest.raises(Conflict) as exc:
        async with sm() as s, s.begin():
            await change_status(s, vid, EstatusVenta.ENTREGADA, VENDEDOR)
    assert exc.value.code == "SALDO_PENDIENTE"
    async with sm() as s, s.begin():
        await change_status(s, vid, EstatusVenta.ENTREGADA, ADMIN, motivo="cliente frecuente")
    async with sm() as s:
        audit = (
            await s.scalars(
                select(Auditoria).where(
                    Auditoria.entidad == "venta", Auditoria.hacia == "entregada"
                )
            )
        ).one()
    assert audit.motivo == "cliente frecuente"
    assert audit.usuario == "admin1"
    with pytest.raises(Conflict) as exc:  # terminal
        async with sm() as s, s.begin():
            await change_status(s, vid, EstatusVenta.CANCELADA, ADMIN, motivo="x")
    assert exc.value.code == "TRANSICION_INVALIDA"


async def test_optimistic_version(sm: SM, ids: dict[str, int]) -> None:
    r = await confirm(sm, ids, line(ids))
    with pytest.raises(Conflict) as exc:
        async with sm() as s, s.begin():
            await change_status(
                s, r.venta.id_venta, EstatusVenta.EN_PRODUCCION, VENDEDOR, expected_version=7
            )
    assert exc.value.code == "VERSION_CONFLICTO"


@pytest.mark.parametrize("consume_first", [True, False])
@pytest.mark.spec("AC-S08")
async def test_cancellation_returns_stock(sm: SM, ids: dict[str, int], consume_first: bool) -> None:
    r = await confirm(sm, ids, line(ids, cantidad=4), monto_abonado=Decimal(100))
    if consume_first:
        await consume_all(sm)
        assert await stock(sm, ids["m"]) == 6
    with pytest.raises(DomainError) as exc:
        async with sm() as s, s.begin():
            await change_status(s, r.venta.id_venta, EstatusVenta.CANCELADA, VENDEDOR, motivo="x")
    assert exc.value.status == 403
    async with sm() as s, s.begin():
        await change_status(
            s, r.venta.id_venta, EstatusVenta.CANCELADA, ADMIN, motivo="cliente canceló"
        )
    await consume_all(sm)
    await consume_all(sm)  # redelivery of both events: no effect
    assert await stock(sm, ids["m"]) == 10
    async with sm() as s:
        det = await get_venta(s, r.venta.id_venta)
        assert det.venta.estatus == "cancelada"
        assert [a.estado for a in det.abonos] == ["por_reembolsar"]
    cancelled = await events_of(sm, SaleCancelled)
    assert cancelled[0].reason == "cliente canceló"
    with pytest.raises(Conflict) as exc2:
        async with sm() as s, s.begin():
            await add_abono(s, r.venta.id_venta, Decimal(1), VENDEDOR)
    assert exc2.value.code == "VENTA_CANCELADA"


# ------------------------------------------------------------------ quotes


async def test_quote_flow_frozen_price(sm: SM, ids: dict[str, int]) -> None:
    async with sm() as s, s.begin():
        c = await create_cotizacion(s, CotizacionIn(linea=line(ids, cantidad=2)), VENDEDOR)
    assert c.monto_total == Decimal("375.60")
    async with sm() as s, s.begin():
        await set_tarifa(s, ADMIN, Decimal("30.00"))
    with pytest.raises(Conflict):
        async with sm() as s, s.begin():
            await convert_cotizacion(s, c.id_cotizacion, VENDEDOR, writer=WRITER)
    for target in (EstadoCotizacion.ENVIADA, EstadoCotizacion.ACEPTADA):
        async with sm() as s, s.begin():
            await transition_cotizacion(s, c.id_cotizacion, target, VENDEDOR)
    async with sm() as s, s.begin():
        r = await convert_cotizacion(s, c.id_cotizacion, VENDEDOR, writer=WRITER)
    assert r.total == Decimal("375.60")  # frozen (AC-D15)
    with pytest.raises(Conflict) as exc:
        async with sm() as s, s.begin():
            await convert_cotizacion(s, c.id_cotizacion, VENDEDOR, writer=WRITER)
    assert exc.value.code == "COTIZACION_YA_CONVERTIDA"
    await consume_all(sm)
    assert await stock(sm, ids["m"]) == 8  # same stock rule as POS (AC-D26)


# ------------------------------------------------------------------ catalog and reports


async def test_material_delete_refused_while_referenced(sm: SM, ids: dict[str, int]) -> None:
    await confirm(sm, ids, line(ids))
    with pytest.raises(Conflict) as exc:
        async with sm() as s, s.begin():
            await delete_material(s, ADMIN, ids["m"])
    assert exc.value.code == "MATERIAL_REFERENCIADO"
    assert "tiene 0 cotización(es) y 1 venta(s)" in (exc.value.detail or "")
    async with sm() as s, s.begin():
        await delete_material(s, ADMIN, ids["n"])


async def test_reports(sm: SM, ids: dict[str, int]) -> None:
    r = await confirm(sm, ids, line(ids), monto_abonado=Decimal("100.00"))
    await confirm(sm, ids, line(ids, cantidad=4))
    await consume_all(sm)
    hoy = business_date(utcnow())
    async with sm() as s:
        ventas = await report_ventas(s, hoy, hoy, Periodo.MES)
        cxc = await report_cuentas_por_cobrar(s)
        low = await report_bajo_stock(s)
    assert ventas == [
        {
            "periodo": f"{hoy.year}-{hoy.month:02d}",
            "ventas": 2,
            "total_vendido": Decimal("939.00"),
            "ingresos": Decimal("100.00"),
        }
    ]
    assert cxc[0]["saldo"] == Decimal("839.00")
    assert low == []  # 10 - 1 - 4 = 5 > 3
    assert r.venta.id_venta
    csv_text = to_csv(cxc)
    assert csv_text.splitlines()[0] == "id_cliente,cliente,ventas,total,pagado,saldo"


async def test_abono_total_is_guarded_in_db(sm: SM, ids: dict[str, int]) -> None:
    r = await confirm(sm, ids, line(ids))
    async with sm() as s, s.begin():
        for _ in range(3):
            await add_abono(s, r.venta.id_venta, Decimal("0.10"), VENDEDOR)
        await add_abono(s, r.venta.id_venta, Decimal("187.50"), VENDEDOR)
    async with sm() as s:
        v = await s.get(Venta, r.venta.id_venta)
        assert v is not None
        assert v.total_pagado == Decimal("187.80")
        assert await s.scalar(select(func.sum(Abono.monto))) == Decimal("187.80")
