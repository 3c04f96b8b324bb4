"""Routes: production rows (bulk grid, single row, edits, excedente authorisation) and closing
months / days.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Header, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence.api.access import CaptureUser, ReaderUser, SupervisorUser
from evidence.api.common import DomainRoute, Session, Writer, actor_of, vol
from evidence.api.schemas import (
    ProduccionCreate,
    ProduccionGuardada,
    ProduccionMasivaCreate,
    ProduccionMasivaPublic,
    ProduccionPublic,
    ProduccionUpdate,
    ReporteDiarioCierre,
    ReporteDiarioPublic,
    ReporteMensualCierre,
    ReporteMensualPublic,
)
from evidence.application import production, reports
from evidence.domain import DomainError
from evidence.models import (
    NO_SITE,
    Produccion,
)
from service_defaults.bounds import Id32, SafeText
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute, tags=["evidence"])


@router.post(
    "/produccion/masiva",
    summary="Save a month's production grid (one time type) — guardar_produccion_masiva",
    response_model=ProduccionMasivaPublic,
)
async def guardar_produccion_masiva(
    body: ProduccionMasivaCreate,
    request: Request,
    session: Session,
    writer: Writer,
    user: CaptureUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        res = await production.guardar_produccion_masiva(
            session,
            writer,
            actor_of(user),
            id_ot=body.id_ot,
            mes=body.mes,
            anio=body.anio,
            tipo_tiempo=body.tipo_tiempo,
            id_sitio=body.id_sitio,
            partidas=[
                production.PartidaValores(p.id_partida_imp, p.valores) for p in body.partidas
            ],
        )
    return {
        "exito": True,
        "mensaje": "Producción guardada correctamente.",
        "id_reporte_mensual": res.id_reporte_mensual,
        "creadas": res.creadas,
        "actualizadas": res.actualizadas,
        "sin_cambio": res.sin_cambio,
        "eventos": res.eventos,  # changed productions announced
        "mensajes": res.mensajes,  # ProductionSaved.v2 events carrying them
    }


def produccion_out(p: Produccion) -> dict[str, Any]:
    return {
        "id": p.id,
        "id_partida_anexo": p.id_partida_anexo,
        "id_reporte_mensual": p.id_reporte_mensual,
        "fecha": p.fecha_produccion,
        "tipo_tiempo": p.tipo_tiempo,
        "id_sitio": None if p.id_sitio_produccion == NO_SITE else p.id_sitio_produccion,
        "volumen": vol(p.volumen_produccion),
        "es_excedente": p.es_excedente,
        "excedente_autorizado": p.excedente_autorizado_por is not None,
        "version": p.version,
    }


async def _produccion_response(
    session: AsyncSession, id_produccion: int, response: Response
) -> dict[str, Any]:
    session.expire_all()
    prod = await session.get(Produccion, id_produccion)
    if prod is None:
        raise DomainError("PRODUCCION_NO_ENCONTRADA", field="id_produccion")
    response.headers["ETag"] = d.etag(prod.version)
    return produccion_out(prod)


@router.put(
    "/producciones",
    summary="Create or update one production row",
    response_model=ProduccionGuardada,
)
async def put_produccion(
    body: ProduccionCreate,
    request: Request,
    response: Response,
    session: Session,
    writer: Writer,
    user: CaptureUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        res = await production.guardar_produccion(
            session,
            writer,
            actor_of(user),
            id_partida_anexo=body.id_partida_anexo,
            fecha=body.fecha,
            tipo_tiempo=body.tipo_tiempo,
            volumen=body.volumen,
            id_sitio=body.id_sitio,
        )
    if not res.producciones:
        # unchanged, or a 0 on a new row (nothing created)
        found = await session.scalar(
            select(Produccion.id).where(
                Produccion.id_partida_anexo == body.id_partida_anexo,
                Produccion.fecha_produccion == body.fecha,
                Produccion.tipo_tiempo == body.tipo_tiempo,
                Produccion.id_sitio_produccion == (body.id_sitio or NO_SITE),
            )
        )
        if found is None:
            return {"id": None, "volumen": vol(Decimal(0)), "creada": False}
        return await _produccion_response(session, found, response)
    return await _produccion_response(session, res.producciones[0], response)


@router.get(
    "/producciones/{id_produccion}",
    summary="Get one production row",
    response_model=ProduccionPublic,
)
async def get_produccion(
    id_produccion: Id32,
    response: Response,
    session: Session,
    user: ReaderUser,
) -> dict[str, Any]:
    return await _produccion_response(session, id_produccion, response)


@router.patch(
    "/producciones/{id_produccion}",
    summary="Edit one production volume",
    response_model=ProduccionPublic,
)
async def patch_produccion(
    id_produccion: Id32,
    body: ProduccionUpdate,
    request: Request,
    response: Response,
    session: Session,
    writer: Writer,
    user: CaptureUser,
    if_match: SafeText | None = Header(default=None),
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        await _check_if_match_production(session, id_produccion, if_match)
        await production.editar_produccion(
            session, writer, actor_of(user), id_produccion, body.volumen, version=body.version
        )
    return await _produccion_response(session, id_produccion, response)


async def _check_if_match_production(
    session: AsyncSession, id_produccion: int, if_match: str | None
) -> None:
    if if_match is None:
        return
    prod = await session.get(Produccion, id_produccion)
    if prod is None:
        raise DomainError("PRODUCCION_NO_ENCONTRADA", field="id_produccion")
    expected = d.parse_etag(if_match)
    if expected is not None and expected != prod.version:
        raise DomainError("PRECONDICION_FALLIDA", version_actual=prod.version)


@router.post(
    "/producciones/{id_produccion}/autorizacion-excedente",
    summary="Authorise billing an excedente production (DECIDE-C4)",
    response_model=ProduccionPublic,
)
async def autorizar_excedente(
    id_produccion: Id32,
    request: Request,
    response: Response,
    session: Session,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        await production.autorizar_excedente(session, actor_of(user), id_produccion)
    return await _produccion_response(session, id_produccion, response)


@router.post(
    "/reportes-mensuales/cierre",
    summary="Close / reopen a monthly report",
    response_model=ReporteMensualPublic,
)
async def cerrar_mes(
    body: ReporteMensualCierre,
    request: Request,
    session: Session,
    writer: Writer,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        rep = await reports.cerrar_mes(
            session, writer, id_ot=body.id_ot, mes=body.mes, anio=body.anio, cerrado=body.cerrado
        )
    return {
        "id": rep.id,
        "id_ot": rep.id_ot,
        "mes": rep.mes,
        "anio": rep.anio,
        "cerrado": rep.cerrado,
    }


@router.post(
    "/reportes-diarios/cierre",
    summary="Close / reopen a day of a monthly report",
    response_model=ReporteDiarioPublic,
)
async def cerrar_dia(
    body: ReporteDiarioCierre,
    request: Request,
    session: Session,
    writer: Writer,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        day = await reports.cerrar_dia(
            session,
            writer,
            id_ot=body.id_ot,
            fecha=body.fecha,
            cerrado=body.cerrado,
            comentario=body.comentario,
        )
    return {"id": day.id, "fecha": day.fecha, "cerrado": day.cerrado}
