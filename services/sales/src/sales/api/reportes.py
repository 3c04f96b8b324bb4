"""Report routes (Decimal sums; cash-basis income, AC-D17, AC-D20) and the admin dashboard."""

from __future__ import annotations

from decimal import Decimal
from typing import (
    Any,
    Literal,
)

from fastapi import APIRouter, Response

from sales import domain as d
from sales import queries
from sales.api.deps import Admin, Operador, Session
from sales.api.routing import DomainRoute
from sales.api.schemas import BajoStockFila, CuentaPorCobrar, Dashboard, ReporteVentasFila
from sales.application import common
from service_defaults.bounds import (
    DomainDate,
)

router = APIRouter(route_class=DomainRoute)


Formato = Literal["json", "csv"]


def _csv_or(model: Any) -> dict[str, Any]:
    """The JSON rows' model, and the CSV variant under its media type."""
    return {
        "response_model": list[model],
        "responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    }


def _report(rows: list[dict[str, Any]], formato: Formato, name: str, columns: list[str]) -> Any:
    if formato == "csv":
        return Response(
            queries.to_csv(rows, columns),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return [
        {k: (d.format_money(v) if isinstance(v, Decimal) else v) for k, v in r.items()}
        for r in rows
    ]


@router.get("/reportes/ventas", tags=["reportes"], **_csv_or(ReporteVentasFila))
async def report_sales(
    session: Session,
    user: Admin,
    desde: DomainDate,
    hasta: DomainDate,
    periodo: d.Periodo = d.Periodo.MES,
    formato: Formato = "json",
) -> Any:
    """Sales (non-cancelled, by sale date) and income (cash basis: Σ abonos) per period."""
    if hasta < desde:
        raise d.Invalid("hasta debe ser >= desde", field="hasta")
    rows = await queries.report_ventas(session, desde, hasta, periodo)
    return _report(rows, formato, "ventas", ["periodo", "ventas", "total_vendido", "ingresos"])


@router.get("/reportes/cuentas-por-cobrar", tags=["reportes"], **_csv_or(CuentaPorCobrar))
async def report_receivables(session: Session, user: Admin, formato: Formato = "json") -> Any:
    rows = await queries.report_cuentas_por_cobrar(session)
    return _report(
        rows,
        formato,
        "cuentas_por_cobrar",
        ["id_cliente", "cliente", "ventas", "total", "pagado", "saldo"],
    )


@router.get("/reportes/bajo-stock", tags=["reportes"], **_csv_or(BajoStockFila))
async def report_low_stock(session: Session, user: Operador, formato: Formato = "json") -> Any:
    rows = await queries.report_bajo_stock(session)
    return _report(
        rows, formato, "bajo_stock", ["id_material", "nombre", "actual", "minimo", "faltante"]
    )


@router.get("/dashboard", response_model=Dashboard, tags=["reportes"])
async def dashboard(session: Session, user: Admin) -> dict[str, Any]:
    """Admin KPIs for the current month (cash-basis income, Decimal sums; AC-D17, AC-D20)."""
    hoy = d.business_date(common.utcnow())
    inicio = hoy.replace(day=1)
    rows = await queries.report_ventas(session, inicio, hoy, d.Periodo.MES)
    total: dict[str, Any] = (
        rows[0] if rows else {"ventas": 0, "total_vendido": Decimal(0), "ingresos": Decimal(0)}
    )
    cxc = await queries.report_cuentas_por_cobrar(session)
    low = await queries.report_bajo_stock(session)
    return {
        "fecha": hoy.isoformat(),
        "ventas_mes": total["ventas"],
        "vendido_mes": d.format_money(total["total_vendido"]),
        "ingresos_mes": d.format_money(total["ingresos"]),
        "por_cobrar": d.format_money(sum((r["saldo"] for r in cxc), Decimal(0))),
        "materiales_bajos": len(low),
    }
