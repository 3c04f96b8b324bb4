"""Idempotent demo data for `make run` (dev only): the catalog of DOMAIN §A.7, a few sales."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sales.adapters import sale_writer_for
from sales.application.catalogue import create_material
from sales.application.clients import ClienteIn, create_cliente
from sales.application.common import Actor
from sales.application.pos import VentaIn, confirm_sale
from sales.application.pricing import LineaIn
from sales.models import ConfiguracionPrecios, Material, Producto, TabuladorCosto, Venta

DEMO = Actor("demo", is_admin=True)
TABULADOR = {3: "450.0000", 4: "12.0000", 5: "720.0000", 6: "980.5000", 10: "125.0000"}


async def seed(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        if await s.get(ConfiguracionPrecios, 1) is not None:
            return  # already seeded
        s.add(ConfiguracionPrecios(id=1, tarifa_laser_minuto=Decimal("15.00"), version=1))
        for espesor, factor in TABULADOR.items():
            s.add(TabuladorCosto(espesor_mm=espesor, factor_costo=Decimal(factor)))
        s.add_all(
            [
                Producto(nombre="Letrero", detalle="Corte y grabado", porcentaje_utilidad=40),
                Producto(nombre="Llavero", detalle="Rectangular 5x10", precio_fijo=Decimal(35)),
                Producto(nombre="Reconocimiento", detalle="Placa 20x30", porcentaje_utilidad=60),
            ]
        )
        await s.flush()
        for desc, stock, minimo in (
            ("Acrílico transparente 3mm", 12, 3),
            ("Acrílico negro 5mm", 4, 3),
            ("Acrílico espejo 6mm", 2, 2),
        ):
            await create_material(
                s,
                DEMO,
                descripcion=desc,
                largo=Decimal(120),
                ancho=Decimal(60),
                stock_actual=stock,
                stock_minimo=minimo,
            )
        cliente = await create_cliente(
            s, ClienteIn(nombre="Papelería Luna", telefono="55 1234 5678"), DEMO
        )
        if await s.scalar(select(func.count()).select_from(Venta)):
            return
        letrero = await s.scalar(select(Producto.id_producto).where(Producto.nombre == "Letrero"))
        material = await s.scalar(select(Material.id_material).order_by(Material.id_material))
        assert letrero is not None
        assert material is not None
        writer = sale_writer_for(str((await s.connection()).engine.url))
        await confirm_sale(
            s,
            VentaIn(
                cliente_id=cliente.id_cliente,
                carrito=[
                    LineaIn(
                        producto_id=letrero,
                        material_id=material,
                        largo=Decimal(30),
                        ancho=Decimal(20),
                        espesor_mm=3,
                        minutos_laser=10,
                        cantidad=2,
                    )
                ],
                monto_abonado=Decimal("200.00"),
            ),
            DEMO,
            writer=writer,
        )
