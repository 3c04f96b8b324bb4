"""Routes: estimates (billing link) and the completeness report."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from evidence import domain as d
from evidence import queries
from evidence.api.access import FacturacionUser, ReaderUser
from evidence.api.common import DomainRoute, Session, Writer, actor_of, config_of, money
from evidence.api.schemas import (
    CompletitudPublic,
    EstimacionCancelacion,
    EstimacionCreate,
    EstimacionDetalleCreate,
    EstimacionList,
    EstimacionPublic,
)
from evidence.application import billing, common
from evidence.models import (
    EstimacionDetalle,
    EstimacionHeader,
)
from service_defaults.bounds import Id32, Int32, SafeText
from service_defaults.errors import jsonable
from service_defaults.uow import unit_of_work_for

router = APIRouter(route_class=DomainRoute, tags=["evidence"])


def estimacion_out(
    header: EstimacionHeader, lines: list[EstimacionDetalle], omitidas: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": header.id,
        "id_ot": header.id_ot,
        "fecha_estimacion": header.fecha_estimacion,
        "fecha_desde": header.fecha_desde,
        "fecha_hasta": header.fecha_hasta,
        "estatus_cobro": header.estatus_cobro,
        "total_volumen_producido": money(header.total_volumen_producido),
        "total_volumen_estimado": money(header.total_volumen_estimado),
        "total_importe_mn": money(header.total_importe_mn),
        "total_importe_usd": money(header.total_importe_usd),
        "detalles": [
            {
                "id": x.id,
                "id_produccion": x.id_produccion,
                "volumen_actual": money(x.volumen_actual),
                "volumen_estimado": money(x.volumen_estimado),
                "precio_unitario_mn": str(
                    Decimal(x.precio_unitario_mn).quantize(Decimal("0.0001"))
                ),
                "precio_unitario_usd": str(
                    Decimal(x.precio_unitario_usd).quantize(Decimal("0.0001"))
                ),
                "importe_mn": money(x.importe_mn),
                "importe_usd": money(x.importe_usd),
                "es_excedente": x.es_excedente,
            }
            for x in lines
        ],
        "omitidas": omitidas,
    }


@router.post(
    "/estimaciones",
    status_code=201,
    summary="Build an estimate (billing link)",
    response_model=EstimacionPublic,
)
async def crear_estimacion(
    body: EstimacionCreate,
    request: Request,
    session: Session,
    writer: Writer,
    user: FacturacionUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        res = await billing.crear_estimacion(
            session,
            writer,
            actor_of(user),
            id_ot=body.id_ot,
            fecha_desde=body.fecha_desde,
            fecha_hasta=body.fecha_hasta,
            fecha_estimacion=body.fecha_estimacion or d.business_date(common.utcnow()),
            comentario=body.comentario,
            detalles=None
            if body.detalles is None
            else [
                billing.DetalleInput(x.id_produccion, x.volumen_estimado, x.comentario_ajuste)
                for x in body.detalles
            ],
            cfg=config_of(request),
        )
    return estimacion_out(res.header, res.detalles, res.omitidas)


@router.get("/estimaciones", summary="List estimates (newest first)", response_model=EstimacionList)
async def listar_estimaciones(
    session: Session,
    user: ReaderUser,
    id_ot: Id32 | None = None,
    estatus_cobro: Literal["BORRADOR", "ENVIADA", "APROBADA", "CANCELADA"] | None = None,
    limit: Annotated[Int32, Query(ge=1, le=500)] = 100,
    offset: Annotated[Int32, Query(ge=0)] = 0,
) -> dict[str, Any]:
    rows = await queries.estimaciones(
        session, id_ot=id_ot, estatus_cobro=estatus_cobro, limit=limit, offset=offset
    )
    return {
        "data": [
            {
                "id": h.id,
                "id_ot": h.id_ot,
                "fecha_estimacion": h.fecha_estimacion,
                "fecha_desde": h.fecha_desde,
                "fecha_hasta": h.fecha_hasta,
                "estatus_cobro": h.estatus_cobro,
                "total_volumen_estimado": money(h.total_volumen_estimado),
                "total_importe_mn": money(h.total_importe_mn),
                "total_importe_usd": money(h.total_importe_usd),
                "creado_por": h.creado_por,
            }
            for h in rows
        ]
    }


@router.delete(
    "/estimaciones/{id_estimacion}/detalles/{id_detalle}",
    summary="Remove a line of a draft estimate (unlocks its GPU)",
    response_model=EstimacionPublic,
)
async def quitar_detalle(
    id_estimacion: Id32,
    id_detalle: Id32,
    request: Request,
    session: Session,
    user: FacturacionUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        await billing.quitar_detalle(session, actor_of(user), id_estimacion, id_detalle)
        res = await billing.get_estimacion(session, id_estimacion)
        out = estimacion_out(res.header, res.detalles, [])
    return out


async def _estatus(
    request: Request, session: Any, user: Any, id_estimacion: int, action: str, motivo: str | None
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        await billing.cambiar_estatus_cobro(session, actor_of(user), id_estimacion, action, motivo)
        res = await billing.get_estimacion(session, id_estimacion)
        out = estimacion_out(res.header, res.detalles, [])
    return out


@router.post(
    "/estimaciones/{id_estimacion}/enviar",
    summary="Submit a draft estimate (BORRADOR → ENVIADA)",
    response_model=EstimacionPublic,
)
async def enviar_estimacion(
    id_estimacion: Id32, request: Request, session: Session, user: FacturacionUser
) -> dict[str, Any]:
    return await _estatus(request, session, user, id_estimacion, "enviar", None)


@router.post(
    "/estimaciones/{id_estimacion}/aprobar",
    summary="Record the client's approval (ENVIADA → APROBADA)",
    response_model=EstimacionPublic,
)
async def aprobar_estimacion(
    id_estimacion: Id32, request: Request, session: Session, user: FacturacionUser
) -> dict[str, Any]:
    return await _estatus(request, session, user, id_estimacion, "aprobar", None)


@router.post(
    "/estimaciones/{id_estimacion}/cancelar",
    summary="Cancel an estimate: its GPUs are unlocked (audited)",
    response_model=EstimacionPublic,
)
async def cancelar_estimacion(
    id_estimacion: Id32,
    body: EstimacionCancelacion,
    request: Request,
    session: Session,
    user: FacturacionUser,
) -> dict[str, Any]:
    return await _estatus(request, session, user, id_estimacion, "cancelar", body.motivo)


@router.get(
    "/estimaciones/{id_estimacion}", summary="Get an estimate", response_model=EstimacionPublic
)
async def get_estimacion(id_estimacion: Id32, session: Session, user: ReaderUser) -> dict[str, Any]:
    res = await billing.get_estimacion(session, id_estimacion)
    return estimacion_out(res.header, res.detalles, [])


@router.post(
    "/estimaciones/{id_estimacion}/detalles",
    status_code=201,
    summary="Add one production to an estimate (links and locks its GPU)",
    response_model=EstimacionPublic,
)
async def agregar_detalle(
    id_estimacion: Id32,
    body: EstimacionDetalleCreate,
    request: Request,
    session: Session,
    writer: Writer,
    user: FacturacionUser,
) -> dict[str, Any]:
    async with unit_of_work_for(request, session):
        await billing.agregar_detalle(
            session,
            writer,
            actor_of(user),
            id_estimacion,
            billing.DetalleInput(body.id_produccion, body.volumen_estimado, body.comentario_ajuste),
            cfg=config_of(request),
        )
    res = await billing.get_estimacion(session, id_estimacion)
    return estimacion_out(res.header, res.detalles, [])


@router.get(
    "/reportes/completitud",
    summary="% of GPUs per status by OT / month / annex + missing evidence (JSON or CSV)",
    response_model=CompletitudPublic,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON report, or with `formato=csv` the missing-evidence list",
        }
    },
)
async def completitud(
    request: Request,
    session: Session,
    id_ot: Id32,
    mes: Int32,
    anio: Int32,
    user: ReaderUser,
    anexo: SafeText | None = None,
    formato: Literal["json", "csv"] = "json",
) -> Response | dict[str, Any]:
    rep = await queries.completitud(
        session, id_ot=id_ot, mes=mes, anio=anio, anexo=anexo, cfg=config_of(request)
    )
    if formato == "csv":
        buf = io.StringIO()
        fields = [
            "id_produccion",
            "fecha",
            "tipo_tiempo",
            "volumen",
            "id_partida_anexo",
            "codigo",
            "descripcion",
            "anexo",
            "id_gpu",
            "estatus",
            "nota_bloqueo",
        ]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rep["faltantes"]:
            writer.writerow(row)
        name = f"faltantes_{rep['orden_trabajo']}_{anio}-{mes:02d}.csv"
        return Response(
            buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    out: dict[str, Any] = jsonable(rep)
    return out
