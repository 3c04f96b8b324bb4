"""Routes: work orders (OTs) and annex imports."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request

from evidence import domain as d
from evidence.api.access import ReaderUser, SupervisorUser
from evidence.api.common import DomainRoute, Session, Writer, actor_of, vol
from evidence.api.schemas import (
    ImportacionConPartidas,
    ImportacionCreate,
    ImportacionPublic,
    ImportacionUpdate,
    OtCreate,
    OtPublic,
)
from evidence.application import common, ots
from service_defaults.bounds import Id32
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute, tags=["evidence"])


def ot_out(ot: Any) -> dict[str, Any]:
    return {
        "id": ot.id,
        "orden_trabajo": ot.orden_trabajo,
        "descripcion_trabajo": ot.descripcion_trabajo,
        "ot_principal": ot.ot_principal,
        "id_tipo": ot.id_tipo,
        "fecha_inicio_programado": ot.fecha_inicio_programado,
        "fecha_termino_programado": ot.fecha_termino_programado,
        "fecha_inicio_real": ot.fecha_inicio_real,
        "fecha_termino_real": ot.fecha_termino_real,
        "id_frente": ot.id_frente,
        "id_embarcacion": ot.id_embarcacion,
        "id_plataforma": ot.id_plataforma,
        "id_intercom": ot.id_intercom,
        "id_patio": ot.id_patio,
    }


@router.post("/ots", status_code=201, summary="Create a work order (OT)", response_model=OtPublic)
async def crear_ot(
    body: OtCreate,
    request: Request,
    session: Session,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        ot = await ots.crear_ot(session, **body.model_dump())
    return ot_out(ot)


@router.get("/ots/{id_ot}", summary="Get a work order", response_model=OtPublic)
async def get_ot(id_ot: Id32, session: Session, user: ReaderUser) -> dict[str, Any]:
    return ot_out(await common.get_ot(session, id_ot))


def partida_out(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "id_importacion_anexo": p.id_importacion_anexo,
        "codigo": p.id_partida,
        "descripcion": p.descripcion_concepto,
        "anexo": p.anexo,
        "unidad": p.unidad,
        "volumen_proyectado": vol(p.volumen_proyectado),
        "precio_unitario_mn": str(Decimal(p.precio_unitario_mn).quantize(Decimal("0.0001"))),
        "precio_unitario_usd": str(Decimal(p.precio_unitario_usd).quantize(Decimal("0.0001"))),
        "orden_fila": p.orden_fila,
        "requiere_gpu": d.annex_requires_gpu(p.anexo),
    }


@router.post(
    "/ots/{id_ot}/importaciones",
    status_code=201,
    summary="Import an annex (partidas)",
    response_model=ImportacionConPartidas,
)
async def importar_anexo(
    id_ot: Id32,
    body: ImportacionCreate,
    request: Request,
    session: Session,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        imp, rows = await ots.importar_anexo(
            session,
            actor_of(user),
            id_ot=id_ot,
            es_activo=body.es_activo,
            archivo=body.archivo,
            partidas=[
                ots.PartidaInput(
                    p.id_partida,
                    p.descripcion,
                    p.anexo,
                    p.unidad,
                    p.volumen_proyectado,
                    p.precio_unitario_mn,
                    p.precio_unitario_usd,
                )
                for p in body.partidas
            ],
        )
    return {
        "id": imp.id,
        "id_ot": imp.id_ot,
        "es_activo": imp.es_activo,
        "partidas": [partida_out(p) for p in rows],
    }


@router.patch(
    "/importaciones/{id_importacion}",
    summary="Activate / deactivate an import",
    response_model=ImportacionPublic,
)
async def patch_importacion(
    id_importacion: Id32,
    body: ImportacionUpdate,
    request: Request,
    session: Session,
    writer: Writer,
    user: SupervisorUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        imp = await ots.cambiar_importacion_activa(
            session, writer, actor_of(user), id_importacion, body.es_activo
        )
    return {"id": imp.id, "id_ot": imp.id_ot, "es_activo": imp.es_activo}
