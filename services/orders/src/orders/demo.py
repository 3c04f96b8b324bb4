"""Demo data for `make run` (dev only): idempotent, so restarts never duplicate it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orders import domain as d
from orders.application import catalogue, clock, common, requests
from orders.models import Institucion, Producto

DEMO_CLUE = "DEMO001"


async def _producto(session: AsyncSession, clave: str, descripcion: str) -> Producto:
    found = (
        await session.execute(select(Producto).where(Producto.clave_cnis == clave))
    ).scalar_one_or_none()
    return found or await catalogue.crear_producto(session, clave, descripcion)


async def seed(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        exists = (
            await session.execute(select(Institucion.id).where(Institucion.clue == DEMO_CLUE))
        ).first()
        if exists is not None:
            return
        today = d.business_date(clock.now())
        inst = await catalogue.crear_institucion(session, DEMO_CLUE, "Hospital General Demo")
        central = await catalogue.crear_almacen(
            session, inst.id, "Almacén Central", "DEMO-CENTRAL", es_central=True
        )
        norte = await catalogue.crear_almacen(session, inst.id, "Almacén Norte", "DEMO-NORTE")
        ubic = {}
        for codigo, alm, estado in (
            ("A-01", central.id, "disponible"),
            ("A-02", central.id, "disponible"),
            ("B-01", central.id, "ocupada"),
            ("Q-01", central.id, "cuarentena"),
            ("N-01", norte.id, "disponible"),
        ):
            ubic[codigo] = (await catalogue.crear_ubicacion(session, alm, codigo, estado=estado)).id
        paracetamol = await _producto(session, "010.000.0104.00", "Paracetamol 500 mg, tabletas")
        jeringa = await _producto(session, "060.550.2657.00", "Jeringa desechable 5 ml")
        lotes = (
            (paracetamol.id, "PAR-A100", 150, {"A-01": 60}),
            (paracetamol.id, "PAR-B200", 75, {"B-01": 50}),
            (paracetamol.id, "PAR-C300", 45, {"A-02": 500}),  # inside the 60-day window
            (paracetamol.id, "PAR-Q1", 200, {"Q-01": 70}),  # quarantined location
            (jeringa.id, "JER-N1", 240, {"N-01": 100}),  # another warehouse
            (jeringa.id, "JER-C1", 300, {"A-02": 40}),
        )
        for producto, numero, dias, ubicaciones in lotes:
            await catalogue.crear_lote(
                session,
                producto_id=producto,
                institucion_id=inst.id,
                numero_lote=numero,
                fecha_caducidad=today + timedelta(days=dias),
                ubicaciones={ubic[c]: q for c, q in ubicaciones.items()},
                almacen_id=central.id,
            )
        demo = common.Actor("demo", frozenset({d.ROLE_SOLICITANTE}))
        await requests.crear_solicitud(
            session,
            requests.NuevaSolicitud(
                institucion_id=inst.id,
                almacen_destino_id=central.id,
                fecha_entrega_programada=today + timedelta(days=3),
                items=[d.ItemCaptura(paracetamol.id, 100), d.ItemCaptura(jeringa.id, 30)],
                folio_pedido="PED-DEMO-0001",
                observaciones="Solicitud de demostración",
            ),
            demo,
            common.OrdersConfig(),
        )
