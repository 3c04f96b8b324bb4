"""Issue 15 item 6: a rejected request is visible to the requester's side — `RequestRejected`
(reason code and text) is published with the rejection, through the API on SQLite and
PostgreSQL (read back from the service's outbox, the event's one way out)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from contracts.events.orders import RequestRejected
from nexo_testing import app_client, bearer
from orders.main import create_app
from orders.models import outbox
from orders.settings import OrdersSettings
from service_defaults.db import create_engine, session_factory

SOL, VAL, SUP = "orders.solicitante", "orders.validador", "orders.supervisor"


class Api:
    def __init__(self, client: httpx.AsyncClient, settings: OrdersSettings) -> None:
        self.client, self.settings = client, settings
        self.ids: dict[str, int] = {}

    async def ok(self, method: str, url: str, role: str = SUP, **kw: Any) -> Any:
        headers = bearer(self.settings, role.split(".")[1], role)
        r = await self.client.request(method, url, headers=headers, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json()

    async def setup(self) -> None:
        inst = await self.ok("POST", "/instituciones", json={"clue": "QA001", "denominacion": "QA"})
        alm = await self.ok(
            "POST",
            "/almacenes",
            json={"id_institucion": inst["id"], "nombre": "C", "codigo": "C", "es_central": True},
        )
        self.ids.update(inst=inst["id"], alm=alm["id"])
        for key, clave in (("P", "010.000.0104.00"), ("Q", "010.000.0105.00")):
            self.ids[key] = (await self.ok("POST", "/productos", json={"clave_cnis": clave}))["id"]

    async def solicitud(self, folio_pedido: str) -> dict[str, Any]:
        sol: dict[str, Any] = await self.ok(
            "POST",
            "/solicitudes",
            SOL,
            json={
                "id_institucion": self.ids["inst"],
                "id_almacen_destino": self.ids["alm"],
                "fecha_entrega_programada": "2026-05-05",
                "folio_pedido": folio_pedido,
                "items": [
                    {"id_producto": self.ids[p], "cantidad_solicitada": 4} for p in ("P", "Q")
                ],
            },
        )
        return sol

    async def rechazos(self) -> list[RequestRejected]:
        engine = create_engine(self.settings.database_url)
        try:
            async with session_factory(engine)() as s:
                rows = (
                    await s.execute(select(outbox.c.type, outbox.c.payload).order_by(outbox.c.seq))
                ).all()
        finally:
            await engine.dispose()
        return [
            RequestRejected.model_validate(payload)
            for type_, payload in rows
            if type_ == RequestRejected.ce_type()
        ]


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = OrdersSettings(env="test", database_url=database_url, transport="memory")
    async with app_client(create_app(settings), "http://orders") as client:
        a = Api(client, settings)
        await a.setup()
        yield a


def _zero(api: Api, sol: dict[str, Any], codigos: dict[str, str]) -> list[dict[str, Any]]:
    """Approve 0 of every item, each with its justification code."""
    by_prod = {i["id_producto"]: i["id"] for i in sol["items"]}
    return [
        {
            "id_item": by_prod[api.ids[key]],
            "cantidad_aprobada": 0,
            "justificacion_codigo": codigo,
            "justificacion": f"{key} sin existencia",
        }
        for key, codigo in codigos.items()
    ]


async def test_rejecting_a_request_publishes_request_rejected_with_the_reason(api: Api) -> None:
    sol = await api.solicitud("PED-R-1")
    out = await api.ok(
        "POST", f"/solicitudes/{sol['id']}/rechazar", VAL, json={"motivo": "Fuera de catálogo"}
    )
    assert out["estado"] == "RECHAZADA"
    (ev,) = await api.rechazos()
    assert (str(ev.id_solicitud), ev.folio, ev.folio_pedido, ev.id_institucion) == (
        sol["id"],
        sol["folio"],
        "PED-R-1",
        api.ids["inst"],
    )
    assert (ev.motivo_codigo, ev.motivo, ev.rejected_by) == (
        "RECHAZO_VALIDADOR",
        "Fuera de catálogo",
        "validador",
    )
    # a second reject is refused and publishes nothing more
    r = await api.client.post(
        f"/solicitudes/{sol['id']}/rechazar",
        headers=bearer(api.settings, "validador", VAL),
        json={"motivo": "otra vez"},
    )
    assert r.status_code == 409, r.text
    assert len(await api.rechazos()) == 1


async def test_a_validation_approving_nothing_publishes_the_items_shared_code(api: Api) -> None:
    sol = await api.solicitud("PED-R-2")
    items = _zero(api, sol, {"P": "SIN_EXISTENCIA", "Q": "SIN_EXISTENCIA"})
    out = await api.ok("POST", f"/solicitudes/{sol['id']}/validar", VAL, json={"items": items})
    assert out["estado"] == "RECHAZADA"
    (ev,) = await api.rechazos()
    assert ev.motivo_codigo == "SIN_EXISTENCIA"
    assert "P sin existencia" in ev.motivo
    assert "Q sin existencia" in ev.motivo


async def test_a_validation_approving_nothing_for_different_reasons_says_so(api: Api) -> None:
    sol = await api.solicitud("PED-R-3")
    items = _zero(api, sol, {"P": "SIN_EXISTENCIA", "Q": "OTRO"})
    out = await api.ok("POST", f"/solicitudes/{sol['id']}/validar", VAL, json={"items": items})
    assert out["estado"] == "RECHAZADA"
    (ev,) = await api.rechazos()
    assert ev.motivo_codigo == "SIN_CANTIDAD_APROBADA"
