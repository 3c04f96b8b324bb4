"""One authorisation matrix: every operation of the gateway's merged OpenAPI × every role
(× ownership where a route has an object-level rule), probed through the embedded gateway.

A route added without an entry in `MATRIX` fails `test_every_route_is_in_the_matrix`; a route
whose role check changes fails `test_roles_match_the_matrix`. Probes carry ids that do not
exist and an empty body, so an allowed role gets 404/409/422 (never 401/403) and nothing is
changed; a refused role gets 403 (401 without a token).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.main import create_app
from gateway.settings import GatewaySettings
from nexo_testing import app_client
from service_defaults.auth import issue_token
from service_defaults.openapi import operations

ANON = "anonymous"
NONE = "no-role"
EV_RES, EV_REV, EV_SUP, EV_FAC = (
    "evidence.residente",
    "evidence.revisor",
    "evidence.supervisor",
    "evidence.facturacion",
)
SA_VEN, SA_ADM = "sales.vendedor", "sales.admin"
OR_SOL, OR_VAL, OR_ALM, OR_SUP = (
    "orders.solicitante",
    "orders.validador",
    "orders.almacenista",
    "orders.supervisor",
)
ROLES = (
    ANON,
    NONE,
    "admin",
    "ops",
    EV_RES,
    EV_REV,
    EV_SUP,
    EV_FAC,
    SA_VEN,
    SA_ADM,
    OR_SOL,
    OR_VAL,
    OR_ALM,
    OR_SUP,
)

# Who gets past authorisation. "public": everyone, no token needed; "any": any valid token;
# otherwise the roles (the global "admin" is added to every non-public entry).
PUBLIC = frozenset(ROLES)
ANY = frozenset(ROLES) - {ANON}
EV_ALL = frozenset({EV_RES, EV_REV, EV_SUP, EV_FAC})
EV_READ = EV_ALL | {"ops"}
OPS = frozenset({"ops"})
SA_OP = frozenset({SA_VEN, SA_ADM})
SA_AD = frozenset({SA_ADM})
OR_READ = frozenset({OR_SOL, OR_VAL, OR_ALM, OR_SUP, "ops"})
NOBODY = frozenset[str]()

MATRIX: dict[str, frozenset[str]] = {
    "DELETE /api/evidence/estimaciones/{id_estimacion}/detalles/{id_detalle}": frozenset({EV_FAC}),
    "DELETE /api/orders/cargas-csv/{id_carga}": frozenset({OR_SOL}),
    "DELETE /api/sales/configuracion/tabulador/{espesor_mm}": SA_AD,
    "DELETE /api/sales/materiales/{id_material}": SA_AD,
    "DELETE /api/sales/productos/{id_producto}": SA_AD,
    "GET /": PUBLIC,
    "GET /api/evidence/estimaciones": EV_READ,
    "GET /api/evidence/estimaciones/{id_estimacion}": EV_READ,
    "GET /api/evidence/gpus": EV_READ,
    "GET /api/evidence/gpus/conflictos": EV_READ,
    "GET /api/evidence/gpus/grid": EV_READ,
    "GET /api/evidence/gpus/{id_gpu}": EV_READ,
    "GET /api/evidence/gpus/{id_gpu}/historial": EV_READ,
    "GET /api/evidence/health/live": PUBLIC,
    "GET /api/evidence/health/ready": PUBLIC,
    "GET /api/evidence/obtener_grid_gpus": EV_READ,
    "GET /api/evidence/obtener_partidas_produccion": EV_READ,
    "GET /api/evidence/ots/{id_ot}": EV_READ,
    "GET /api/evidence/ots_por_sitio_grid": EV_READ,
    "GET /api/evidence/producciones/{id_produccion}": EV_READ,
    "GET /api/evidence/reportes/completitud": EV_READ,
    "GET /api/orders/cargas-csv/{id_carga}": frozenset({OR_SOL}),
    "GET /api/orders/health/live": PUBLIC,
    "GET /api/orders/health/ready": PUBLIC,
    "GET /api/orders/lotes/{id_lote}": OR_READ,
    "GET /api/orders/movimientos": OR_READ,
    "GET /api/orders/productos": OR_READ,
    "GET /api/orders/propuestas": OR_READ,
    "GET /api/orders/propuestas/{id_propuesta}": OR_READ,
    "GET /api/orders/propuestas/{id_propuesta}/acuse.pdf": OR_READ,
    "GET /api/orders/propuestas/{id_propuesta}/acuse.xlsx": OR_READ,
    "GET /api/orders/propuestas/{id_propuesta}/picking.pdf": OR_READ,
    "GET /api/orders/propuestas/{id_propuesta}/picking.xlsx": OR_READ,
    "GET /api/orders/propuestas/{id_propuesta}/items/{id_item}/candidatos": frozenset(
        {OR_ALM, OR_SUP}
    ),
    "GET /api/orders/reportes/faltantes": OR_READ,
    "GET /api/orders/reportes/fill-rate": OR_READ,
    "GET /api/orders/reportes/lotes-por-caducar": OR_READ,
    "GET /api/orders/reportes/pendientes": OR_READ,
    "GET /api/orders/solicitudes": OR_READ,
    "GET /api/orders/solicitudes/verificar-folio": OR_READ,
    "GET /api/orders/solicitudes/{id_solicitud}": OR_READ,
    "GET /api/orders/solicitudes/{id_solicitud}/errores-carga": OR_READ,
    "GET /api/orders/solicitudes/{id_solicitud}/propuesta": OR_READ,
    "GET /api/sales/clientes": SA_OP,
    "GET /api/sales/clientes/{id_cliente}": SA_OP,
    "GET /api/sales/configuracion": SA_AD,
    "GET /api/sales/configuracion/historial": SA_AD,
    "GET /api/sales/cotizaciones": SA_OP,
    "GET /api/sales/cotizaciones/{id_cotizacion}": SA_OP,
    "GET /api/sales/cotizaciones/{id_cotizacion}/compartir": SA_OP,
    "GET /api/sales/cotizaciones/{id_cotizacion}/pdf": SA_OP,
    "GET /api/sales/dashboard": SA_AD,
    "GET /api/sales/health/live": PUBLIC,
    "GET /api/sales/health/ready": PUBLIC,
    "GET /api/sales/materiales": SA_OP,
    "GET /api/sales/materiales/{id_material}": SA_OP,
    "GET /api/sales/materiales/{id_material}/movimientos": SA_OP,
    "GET /api/sales/productos": SA_OP,
    "GET /api/sales/reportes/bajo-stock": SA_OP,
    "GET /api/sales/reportes/cuentas-por-cobrar": SA_AD,
    "GET /api/sales/reportes/ventas": SA_AD,
    "GET /api/sales/ventas": SA_OP,
    "GET /api/sales/ventas/{id_venta}": SA_OP,
    "GET /health/live": PUBLIC,
    "GET /health/ready": PUBLIC,
    "GET /ops/api/audit": OPS,
    "GET /ops/api/config": OPS,
    "GET /ops/api/dlq": OPS,
    "GET /ops/api/events": OPS,
    "GET /ops/api/events/stream": OPS,
    "GET /ops/api/health": OPS,
    "GET /ops/api/history": OPS,
    "GET /ops/api/outbox": OPS,
    "GET /ops/api/summary": OPS,
    "GET /ops/api/topics": OPS,
    "GET /ops/api/trace": OPS,
    "GET /ops/dev-login": PUBLIC,
    "PATCH /api/evidence/importaciones/{id_importacion}": frozenset({EV_SUP}),
    "PATCH /api/evidence/producciones/{id_produccion}": frozenset({EV_RES, EV_SUP}),
    "PATCH /api/sales/clientes/{id_cliente}": SA_OP,
    "PATCH /api/sales/materiales/{id_material}": SA_AD,
    "PATCH /api/sales/productos/{id_producto}": SA_AD,
    "POST /api/evidence/estimaciones": frozenset({EV_FAC}),
    "POST /api/evidence/estimaciones/{id_estimacion}/aprobar": frozenset({EV_FAC}),
    "POST /api/evidence/estimaciones/{id_estimacion}/cancelar": frozenset({EV_FAC}),
    "POST /api/evidence/estimaciones/{id_estimacion}/enviar": frozenset({EV_FAC}),
    "POST /api/evidence/estimaciones/{id_estimacion}/detalles": frozenset({EV_FAC}),
    "POST /api/evidence/gpus/conflictos/{id_conflicto}/resolucion": frozenset({EV_SUP}),
    "POST /api/evidence/gpus/transiciones-masivas": frozenset({EV_REV}),
    "POST /api/evidence/gpus/{id_gpu}/transiciones": frozenset({EV_RES, EV_REV, EV_SUP}),
    "POST /api/evidence/guardar_estatus_gpu": frozenset({EV_RES, EV_REV, EV_SUP}),
    "POST /api/evidence/guardar_reportes_diarios_masiva": frozenset({EV_RES, EV_SUP}),
    "POST /api/evidence/ots": frozenset({EV_SUP}),
    "POST /api/evidence/ots/{id_ot}/importaciones": frozenset({EV_SUP}),
    "POST /api/evidence/produccion/masiva": frozenset({EV_RES, EV_SUP}),
    "POST /api/evidence/producciones/{id_produccion}/autorizacion-excedente": frozenset({EV_SUP}),
    "POST /api/evidence/reportes-diarios/cierre": frozenset({EV_SUP}),
    "POST /api/evidence/reportes-mensuales/cierre": frozenset({EV_SUP}),
    "POST /api/orders/almacenes": frozenset({OR_SUP}),
    "POST /api/orders/cargas-csv": frozenset({OR_SOL}),
    "POST /api/orders/cargas-csv/{id_carga}/guardar": frozenset({OR_SOL}),
    "POST /api/orders/instituciones": frozenset({OR_SUP}),
    "POST /api/orders/jobs/caducidad": frozenset({"ops", OR_SUP}),
    "POST /api/orders/lotes": frozenset({OR_SUP}),
    "POST /api/orders/lotes/{id_lote}/estado": frozenset({OR_SUP}),
    "POST /api/orders/productos": frozenset({OR_SUP}),
    "POST /api/orders/propuestas/{id_propuesta}/liberar": frozenset({OR_SUP}),
    "POST /api/orders/propuestas/{id_propuesta}/lineas/{id_linea}/recoger": frozenset({OR_ALM}),
    "POST /api/orders/propuestas/{id_propuesta}/revisar": frozenset({OR_ALM, OR_SUP}),
    "POST /api/orders/propuestas/{id_propuesta}/surtir": frozenset({OR_ALM, OR_SUP}),
    "POST /api/orders/solicitudes": frozenset({OR_SOL}),
    "POST /api/orders/solicitudes/{id_solicitud}/cancelar": frozenset({OR_SOL, OR_SUP}),
    "POST /api/orders/solicitudes/{id_solicitud}/rechazar": frozenset({OR_VAL}),
    "POST /api/orders/solicitudes/{id_solicitud}/validar": frozenset({OR_VAL}),
    "POST /api/orders/ubicaciones": frozenset({OR_SUP}),
    "POST /api/sales/clientes": SA_OP,
    "POST /api/sales/clientes/{id_cliente}/fusion": SA_AD,
    "POST /api/sales/cotizaciones": SA_OP,
    "POST /api/sales/cotizaciones/{id_cotizacion}/estado": SA_OP,
    "POST /api/sales/cotizaciones/{id_cotizacion}/venta": SA_OP,
    "POST /api/sales/materiales": SA_AD,
    "POST /api/sales/materiales/{id_material}/ajuste": SA_AD,
    "POST /api/sales/materiales/{id_material}/conteo": SA_AD,
    "POST /api/sales/materiales/{id_material}/reabasto": SA_AD,
    "POST /api/sales/precios/preview": SA_OP,
    "POST /api/sales/productos": SA_AD,
    "POST /api/sales/ventas": SA_OP,
    "POST /api/sales/ventas/{id_venta}/abonos": SA_OP,
    "POST /api/sales/ventas/{id_venta}/abonos/{id_abono}/reembolso": SA_AD,
    "POST /api/sales/ventas/{id_venta}/cancelar": SA_AD,
    "POST /api/sales/ventas/{id_venta}/estatus": SA_OP,
    "POST /api/sales/ventas/{id_venta}/fecha-entrega": SA_OP,
    "POST /ops/api/dlq/discard": OPS,
    "POST /ops/api/dlq/replay": OPS,
    "POST /ops/dev-login": PUBLIC,
    "PUT /api/evidence/producciones": frozenset({EV_RES, EV_SUP}),
    "PUT /api/orders/propuestas/{id_propuesta}/items/{id_item}/lineas": frozenset({OR_ALM, OR_SUP}),
    "PUT /api/orders/solicitudes/{id_solicitud}": frozenset({OR_SOL}),
    "PUT /api/sales/configuracion/tabulador/{espesor_mm}": SA_AD,
    "PUT /api/sales/configuracion/tarifa": SA_AD,
    "GET /api/orders/instituciones": OR_READ,
    "GET /api/orders/instituciones/{id_institucion}": OR_READ,
    "PATCH /api/orders/instituciones/{id_institucion}": frozenset({OR_SUP}),
    "GET /api/orders/almacenes": OR_READ,
    "GET /api/orders/almacenes/{id_almacen}": OR_READ,
    "PATCH /api/orders/almacenes/{id_almacen}": frozenset({OR_SUP}),
    "GET /api/orders/ubicaciones": OR_READ,
    "GET /api/orders/ubicaciones/{id_ubicacion}": OR_READ,
    "PATCH /api/orders/ubicaciones/{id_ubicacion}": frozenset({OR_SUP}),
    "GET /api/orders/productos/{id_producto}": OR_READ,
    "PATCH /api/orders/productos/{id_producto}": frozenset({OR_SUP}),
    "GET /api/evidence/reportes-mensuales": EV_READ,
    "PUT /api/evidence/reportes-mensuales/archivo": frozenset({EV_RES, EV_SUP}),
    "DELETE /api/evidence/reportes-mensuales/archivo": frozenset({EV_RES, EV_SUP}),
    "POST /api/evidence/guardar_archivo_mensual": frozenset({EV_RES, EV_SUP}),
    "PUT /api/evidence/plan-diario": frozenset({EV_RES, EV_SUP}),
    "POST /api/evidence/plan-diario/masivo": frozenset({EV_RES, EV_SUP}),
    "POST /api/evidence/plan-diario/importacion": frozenset({EV_RES, EV_SUP}),
    "GET /api/evidence/gpus/busqueda": EV_READ,
    "GET /api/evidence/ots": EV_READ,
    "GET /api/evidence/ots/{id_ot}/historial": EV_READ,
    "PATCH /api/evidence/ots/{id_ot}": frozenset({EV_SUP}),
    "POST /api/evidence/ots/{id_ot}/importaciones/excel": frozenset({EV_SUP}),
    # issue 15 item 3: picking corrections
    "GET /api/orders/propuestas/{id_propuesta}/lineas/{id_linea}/limites": frozenset(
        {OR_ALM, OR_SUP}
    ),
    "PUT /api/orders/propuestas/{id_propuesta}/lineas/{id_linea}/cantidad": frozenset(
        {OR_ALM, OR_SUP}
    ),
    "POST /api/orders/propuestas/{id_propuesta}/lineas/{id_linea}/mover": frozenset(
        {OR_ALM, OR_SUP}
    ),
    "POST /api/orders/propuestas/{id_propuesta}/lineas/{id_linea}/deshacer-recogida": frozenset(
        {OR_ALM, OR_SUP}
    ),
    # issue 15 item 6: a request whose proposal could not be generated, retried
    "POST /api/orders/solicitudes/{id_solicitud}/reintentar-propuesta": frozenset({OR_VAL, OR_SUP}),
}


def _admin(roles: frozenset[str]) -> frozenset[str]:
    return roles if roles == PUBLIC else roles | {"admin"}


OWNERSHIP = {
    "PUT /api/orders/solicitudes/{id_solicitud}": "own PENDIENTE request (orders README)",
    "POST /api/orders/solicitudes/{id_solicitud}/cancelar": "own PENDIENTE request",
}
"""Routes with an object-level rule, probed with two requesters in `test_ownership`."""


def _token(settings: GatewaySettings, role: str, sub: str = "matrix") -> dict[str, str]:
    if role == ANON:
        return {}
    roles = [] if role == NONE else [role]
    return {"Authorization": f"Bearer {issue_token(settings, sub, roles)}"}


def _dummy(param: dict[str, Any]) -> str:
    schema = param.get("schema", {})
    candidates = [schema, *schema.get("anyOf", [])]
    if any(s.get("format") == "uuid" for s in candidates):
        return str(uuid.UUID(int=1))
    if any(s.get("type") == "integer" for s in candidates):
        return "999999"
    if any(s.get("type") == "string" and s.get("format") == "date" for s in candidates):
        return "2026-01-01"
    enum = next((s["enum"] for s in candidates if "enum" in s), None)
    return str(enum[0]) if enum else "x"


@pytest.fixture(scope="module")
async def gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, GatewaySettings, dict[str, Any]]]:
    settings = GatewaySettings(
        data_dir=tmp_path_factory.mktemp("authz"),
        env="test",
        rate_limit_per_second=1e6,
        rate_limit_burst=1_000_000,
        anonymous_rate_limit_per_second=1e6,
        anonymous_rate_limit_burst=1_000_000,
        public_rate_limit_per_second=1e6,
        public_rate_limit_burst=1_000_000,
        dev_login_rate_limit_per_minute=1e6,
        dev_login_rate_limit_burst=1_000_000,
    )
    app = create_app(settings)
    async with app_client(app, "http://gateway") as client:
        yield client, settings, app.openapi()


def _routes(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {f"{m.upper()} {p}": (p, m, op) for p, m, op in operations(spec)}


async def _probe(
    client: httpx.AsyncClient, settings: GatewaySettings, path: str, method: str, op: dict[str, Any]
) -> dict[str, int]:
    params = {p["name"]: p for p in op.get("parameters", [])}
    url = re.sub(r"\{(\w+)\}", lambda m: _dummy(params[m.group(1)]), path)
    query = {
        name: _dummy(p) for name, p in params.items() if p["in"] == "query" and p.get("required")
    }
    kwargs: dict[str, Any] = {"params": query}
    if "requestBody" in op:
        kwargs["json"] = {}
    out: dict[str, int] = {}
    for role in ROLES:
        r = await client.request(method.upper(), url, headers=_token(settings, role), **kwargs)
        out[role] = r.status_code
    return out


def _allowed(statuses: dict[str, int]) -> frozenset[str]:
    # a 429 says nothing about authorisation: the fixture's limits must never be reached
    assert 429 not in statuses.values(), statuses
    return frozenset(role for role, status in statuses.items() if status not in (401, 403))


async def test_every_route_is_in_the_matrix(
    gateway: tuple[httpx.AsyncClient, GatewaySettings, dict[str, Any]],
) -> None:
    _, _, spec = gateway
    routes = set(_routes(spec))
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"routes without an authorisation entry in MATRIX: {missing}"
    assert not stale, f"MATRIX entries for routes that no longer exist: {stale}"


async def test_roles_match_the_matrix(
    gateway: tuple[httpx.AsyncClient, GatewaySettings, dict[str, Any]],
) -> None:
    client, settings, spec = gateway
    wrong: list[str] = []
    for key, (path, method, op) in sorted(_routes(spec).items()):
        if key not in MATRIX:
            continue  # reported by test_every_route_is_in_the_matrix
        statuses = await _probe(client, settings, path, method, op)
        expected = _admin(MATRIX[key])
        got = _allowed(statuses)
        if got != expected:
            wrong.append(f"{key}: allowed {sorted(got)}, expected {sorted(expected)} ({statuses})")
        for role, status in statuses.items():
            if role not in got and status != (401 if role == ANON else 403):
                wrong.append(f"{key}: {role} refused with {status}")
            if status >= 500:
                wrong.append(f"{key}: {role} got {status}")
    assert not wrong, "\n".join(wrong)


async def test_ownership(
    gateway: tuple[httpx.AsyncClient, GatewaySettings, dict[str, Any]],
) -> None:
    """A second requester can neither edit nor cancel another's PENDIENTE request; the owner
    can (the matrix entries above only tell which roles reach the route)."""
    client, settings, _ = gateway
    admin = _token(settings, "admin", "root")

    async def ok(method: str, url: str, headers: dict[str, str], **kw: Any) -> Any:
        r = await client.request(method, "/api/orders" + url, headers=headers, **kw)
        assert r.status_code < 300, (url, r.status_code, r.text)
        return r.json()

    inst = await ok("POST", "/instituciones", admin, json={"clue": "AZ01", "denominacion": "I"})
    alm = await ok(
        "POST",
        "/almacenes",
        admin,
        json={"id_institucion": inst["id"], "nombre": "C", "codigo": "C", "es_central": True},
    )
    prod = await ok("POST", "/productos", admin, json={"clave_cnis": "010.000.0104.00"})
    ana, beto = _token(settings, OR_SOL, "ana"), _token(settings, OR_SOL, "beto")
    body = {
        "id_institucion": inst["id"],
        "id_almacen_destino": alm["id"],
        "fecha_entrega_programada": (dt.date.today() + dt.timedelta(days=3)).isoformat(),
        "items": [{"id_producto": prod["id"], "cantidad_solicitada": 5}],
    }
    sol = await ok("POST", "/solicitudes", ana, json=body)
    url = f"/api/orders/solicitudes/{sol['id']}"
    edit = {**body, "version": sol["version"]}
    assert (await client.put(url, headers=beto, json=edit)).status_code == 403
    assert (await client.post(url + "/cancelar", headers=beto)).status_code == 403
    assert (await client.put(url, headers=ana, json=edit)).status_code == 200
    assert (await client.post(url + "/cancelar", headers=ana)).status_code == 200
    assert set(OWNERSHIP) <= set(MATRIX)
