"""End to end through the gateway alone (embedded mode): one representative flow of each
service — evidence, sales, orders — driven over HTTP under ``/api/<svc>`` with tokens that carry
the services' own roles (never ``admin``), so the gateway's per-route authorization is exercised.
Asynchronous consumers are awaited by polling with a deadline, never by a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.main import create_app
from gateway.settings import GatewaySettings
from nexo_testing import app_client
from service_defaults.auth import issue_token

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
LINK = "https://drive.google.com/drive/folders/e2e-gateway"
EV, SA, OR = "/api/evidence", "/api/sales", "/api/orders"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, GatewaySettings]]:
    settings = GatewaySettings(env="test", data_dir=tmp_path)
    app = create_app(settings)
    async with app_client(app, "http://gateway") as client:
        yield client, settings


def auth(settings: GatewaySettings, sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, sub, list(roles))}"}


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json() if r.content else None


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


async def until(probe: Callable[[], Awaitable[Any]], what: str, deadline_s: float = 15.0) -> Any:
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def test_gateway_auth_problems(gw: tuple[httpx.AsyncClient, GatewaySettings]) -> None:
    client, settings = gw
    problem(await client.get(f"{SA}/materiales"), 401)
    problem(await client.post(f"{OR}/instituciones", json={"clue": "X", "denominacion": "X"}), 401)
    # a real role of another service (or a reader-only role) is forbidden
    vend = auth(settings, "vera", "sales.vendedor")
    problem(await client.post(f"{EV}/ots", json={"orden_trabajo": "OT-X"}, headers=vend), 403)
    problem(
        await client.put(
            f"{SA}/configuracion/tarifa", json={"tarifa_laser_minuto": "1.00"}, headers=vend
        ),
        403,
    )


async def test_evidence_flow(gw: tuple[httpx.AsyncClient, GatewaySettings]) -> None:
    client, settings = gw
    sup = auth(settings, "sam", "evidence.supervisor")
    res = auth(settings, "ana", "evidence.residente")
    rev = auth(settings, "rita", "evidence.revisor")

    ot = ok(await client.post(f"{EV}/ots", json={"orden_trabajo": "OTE-E2E-001"}, headers=sup), 201)
    partidas = [
        {
            "id_partida": "C-2.1.1",
            "descripcion": "Técnico especializado",
            "anexo": "C-2",
            "unidad": "JOR",
            "volumen_proyectado": "100",
            "precio_unitario_mn": "1234.5678",
            "precio_unitario_usd": "61.7284",
        },
        {
            "id_partida": "C-1.1.1",
            "descripcion": "Materiales",
            "anexo": "C-1",
            "unidad": "",
            "volumen_proyectado": "50",
        },
    ]
    imp = ok(
        await client.post(
            f"{EV}/ots/{ot['id']}/importaciones", json={"partidas": partidas}, headers=sup
        ),
        201,
    )
    ids = {p["codigo"]: p["id"] for p in imp["partidas"]}
    # the residente cannot create OTs: per-route authorization inside the service's own roles
    problem(await client.post(f"{EV}/ots", json={"orden_trabajo": "OT-NO"}, headers=res), 403)

    prod = ok(
        await client.put(
            f"{EV}/producciones",
            json={
                "id_partida_anexo": ids["C-2.1.1"],
                "fecha": "2025-03-02",
                "tipo_tiempo": "TE",
                "volumen": "8",
            },
            headers=res,
        )
    )
    grid_url = f"{EV}/gpus/grid?id_ot={ot['id']}&mes=3&anio=2025"

    async def gpu_cell() -> dict[str, Any] | None:
        grid = ok(await client.get(grid_url, headers=res))
        for row in grid["data"]:
            for cell in row["dia_2"] or []:
                if cell["id_produccion"] == prod["id"] and cell.get("id_gpu"):
                    return dict(cell)
        return None

    cell = await until(gpu_cell, "the GPU of the production row")
    gid = cell["id_gpu"]
    assert (cell["estatus_id"], cell["estatus_texto"]) == (19, "PENDIENTE")

    def tr(a: str, headers: dict[str, str], **kw: Any) -> Awaitable[httpx.Response]:
        return client.post(f"{EV}/gpus/{gid}/transiciones", json={"a": a, **kw}, headers=headers)

    loaded = ok(await tr("CARGADO", res, archivo=LINK))
    assert loaded["archivo"] == LINK
    ok(await tr("EN_REVISION", rev))
    done = ok(await tr("VALIDADO", rev))
    assert (done["estatus"], done["estatus_id"], done["usuario_revision"]) == (
        "VALIDADO",
        22,
        "rita",
    )
    final = await gpu_cell()
    assert final is not None
    assert (final["estatus_id"], final["estatus_texto"]) == (22, "VALIDADO")


async def test_sales_flow(gw: tuple[httpx.AsyncClient, GatewaySettings]) -> None:
    client, settings = gw
    adm = auth(settings, "adm", "sales.admin")
    vend = auth(settings, "vendedor1", "sales.vendedor")

    ok(
        await client.put(
            f"{SA}/configuracion/tarifa", json={"tarifa_laser_minuto": "15.00"}, headers=adm
        )
    )
    ok(
        await client.put(
            f"{SA}/configuracion/tabulador/3", json={"factor_costo": "450.0000"}, headers=adm
        )
    )
    prod = ok(await client.post(f"{SA}/productos", json={"nombre": "Letrero"}, headers=adm), 201)
    mat = ok(
        await client.post(
            f"{SA}/materiales",
            json={"descripcion": "Acrílico", "stock_actual": 10, "stock_minimo": 3},
            headers=adm,
        ),
        201,
    )
    mid = mat["id_material"]
    cli = ok(
        await client.post(
            f"{SA}/clientes", json={"nombre": "Ana", "telefono": "55 1234 5678"}, headers=vend
        ),
        201,
    )
    line: dict[str, Any] = {
        "producto_id": prod["id_producto"],
        "material_id": mid,
        "largo": "30",
        "ancho": "20",
        "espesor_mm": 3,
        "porcentaje_utilidad": 40,
        "minutos_laser": 10,
        "cantidad": 3,
    }
    preview = ok(await client.post(f"{SA}/precios/preview", json=line, headers=vend))
    assert preview["precio_unitario"] == "187.80"
    sale = ok(
        await client.post(
            f"{SA}/ventas",
            json={
                "carrito": [{**line, "subtotal": preview["subtotal"]}],
                "cliente_id": cli["id_cliente"],
            },
            headers=vend,
        ),
        201,
    )
    assert sale["total"] == preview["subtotal"] == "563.40"

    async def stock_is_7() -> bool:
        m = ok(await client.get(f"{SA}/materiales/{mid}", headers=vend))
        return int(m["stock_actual"]) == 7

    await until(stock_is_7, "the stock decrement by the sale consumer")

    async def sale_movement() -> list[dict[str, Any]]:
        ledger = ok(await client.get(f"{SA}/materiales/{mid}/movimientos", headers=vend))
        return [x for x in ledger if x["motivo"] == "venta"]

    (mov,) = await until(sale_movement, "the ledger movement of the sale")
    assert (mov["cantidad"], mov["saldo_resultante"]) == (-3, 7)


async def test_orders_flow(gw: tuple[httpx.AsyncClient, GatewaySettings]) -> None:
    client, settings = gw
    sup = auth(settings, "super", "orders.supervisor")
    sol_h = auth(settings, "ana", "orders.solicitante")
    val_h = auth(settings, "vale", "orders.validador")
    alm_h = auth(settings, "alma", "orders.almacenista")

    inst = ok(
        await client.post(
            f"{OR}/instituciones",
            json={"clue": "QA001", "denominacion": "Institucion QA"},
            headers=sup,
        ),
        201,
    )
    alm = ok(
        await client.post(
            f"{OR}/almacenes",
            json={
                "id_institucion": inst["id"],
                "nombre": "Central",
                "codigo": "CENTRAL",
                "es_central": True,
            },
            headers=sup,
        ),
        201,
    )
    producto = ok(
        await client.post(f"{OR}/productos", json={"clave_cnis": "010.000.0104.00"}, headers=sup),
        201,
    )
    ub = ok(
        await client.post(
            f"{OR}/ubicaciones",
            json={"id_almacen": alm["id"], "codigo": "A-01", "estado": "disponible"},
            headers=sup,
        ),
        201,
    )
    today = datetime.now(UTC).date()
    lote = ok(
        await client.post(
            f"{OR}/lotes",
            json={
                "id_producto": producto["id"],
                "id_institucion": inst["id"],
                "numero_lote": "L-E2E-1",
                "fecha_caducidad": (today + timedelta(days=730)).isoformat(),
                "estado": 1,
                "ubicaciones": [{"id_ubicacion": ub["id"], "cantidad": 60}],
            },
            headers=sup,
        ),
        201,
    )
    sol = ok(
        await client.post(
            f"{OR}/solicitudes",
            json={
                "id_institucion": inst["id"],
                "id_almacen_destino": alm["id"],
                "fecha_entrega_programada": (today + timedelta(days=3)).isoformat(),
                "folio_pedido": "PED-E2E-0001",
                "items": [{"id_producto": producto["id"], "cantidad_solicitada": 25}],
            },
            headers=sol_h,
        ),
        201,
    )
    # the solicitante may not validate its own request
    problem(
        await client.post(
            f"{OR}/solicitudes/{sol['id']}/validar", json={"items": []}, headers=sol_h
        ),
        403,
    )
    validated = ok(
        await client.post(
            f"{OR}/solicitudes/{sol['id']}/validar", json={"items": []}, headers=val_h
        )
    )
    assert validated["estado"] == "VALIDADA"

    async def proposal() -> dict[str, Any] | None:
        r = await client.get(f"{OR}/solicitudes/{sol['id']}/propuesta", headers=sup)
        if r.status_code == 404:
            return None
        return dict(ok(r))

    prop = await until(proposal, "the FEFO proposal")
    assert [
        (ln["numero_lote"], ln["cantidad_asignada"]) for it in prop["items"] for ln in it["lotes"]
    ] == [("L-E2E-1", 25)]
    ok(await client.post(f"{OR}/propuestas/{prop['id']}/revisar", headers=alm_h))
    out = ok(await client.post(f"{OR}/propuestas/{prop['id']}/surtir", headers=sup))
    assert out["estado"] == "SURTIDA"
    assert ok(await client.get(f"{OR}/solicitudes/{sol['id']}", headers=sup))["estado"] == (
        "ENTREGADA"
    )
    detalle = ok(await client.get(f"{OR}/lotes/{lote['id']}", headers=sup))
    assert detalle["cantidad_disponible"] == 35
    assert detalle["ubicaciones"][0]["cantidad"] == 35
