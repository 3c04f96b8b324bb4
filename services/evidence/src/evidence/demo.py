"""Idempotent demo data for `make run` (dev only): one OT with an annex and a month of
production, so the grid, the GPU workflow and the completeness report show something."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evidence import adapters
from evidence import domain as d
from evidence.application import common, ots, production
from evidence.models import Ot

DEMO_OT = "OTE-2025-001"
DEMO_USER = d.Actor("demo", frozenset({d.ROLE_SUPERVISOR, d.ROLE_RESIDENTE}))


async def seed(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        if await session.scalar(select(Ot.id).where(Ot.orden_trabajo == DEMO_OT)) is not None:
            return
        ot = await ots.crear_ot(
            session,
            orden_trabajo=DEMO_OT,
            descripcion_trabajo="Mantenimiento plataforma (demo)",
        )
        _, partidas = await ots.importar_anexo(
            session,
            DEMO_USER,
            id_ot=ot.id,
            partidas=[
                ots.PartidaInput(
                    "C-2.1.1",
                    "Técnico especializado",
                    "C-2",
                    "JOR",
                    Decimal(100),
                    Decimal("1850.0000"),
                    Decimal("92.5000"),
                ),
                ots.PartidaInput(
                    "C-3.4.2",
                    "Grúa 50 t",
                    "C-3",
                    "HR",
                    Decimal(300),
                    Decimal("2400.0000"),
                    Decimal("120.0000"),
                ),
                ots.PartidaInput(
                    "C-1.1.1",
                    "Materiales",
                    "C-1",
                    "LOTE",
                    Decimal(50),
                    Decimal("500.0000"),
                    Decimal("25.0000"),
                ),
            ],
        )
        today = d.business_date(common.utcnow())
        days = min(today.day, 10)
        await production.guardar_produccion_masiva(
            session,
            adapters.writer_for_engine(sessionmaker.kw["bind"]),
            DEMO_USER,
            id_ot=ot.id,
            mes=today.month,
            anio=today.year,
            tipo_tiempo="TE",
            partidas=[
                production.PartidaValores(partidas[0].id, [Decimal(8)] * days),
                production.PartidaValores(partidas[1].id, [Decimal("6.5")] * days),
                production.PartidaValores(partidas[2].id, [Decimal(1)] * days),
            ],
        )
        await session.commit()
