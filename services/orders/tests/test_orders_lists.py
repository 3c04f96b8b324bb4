"""Issue 15 item 5: the request and proposal lists filter by the request's date range,
institution and folio (internal or external), and proposals carry `porcentaje_surtido`
(DOMAIN §B.5 `lista_propuestas`) — through the API on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from nexo_testing import app_client, bearer
from orders.application import clock
from orders.main import create_app
from orders.settings import OrdersSettings

SOL, VAL, ALM, SUP = (
    "orders.solicitante",
    "orders.validador",
    "orders.almacenista",
    "orders.supervisor",
)


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: OrdersSettings
    ids: dict[str, int] = field(default_factory=dict)

    def h(self, role: str) -> dict[str, str]:
        return bearer(self.settings, role.split(".")[1], role)

    async def ok(self, method: str, url: str, role: str = SUP, **kw: Any) -> Any:
        r = await self.client.request(method, url, headers=self.h(role), **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json()

    async def setup(self) -> None:
        for key, clue in (("A", "QA001"), ("B", "QB002")):
            inst = await self.ok(
                "POST", "/instituciones", json={"clue": clue, "denominacion": clue}
            )
            alm = await self.ok(
                "POST",
                "/almacenes",
                json={
                    "id_institucion": inst["id"],
                    "nombre": f"Central {key}",
                    "codigo": f"C{key}",
                    "es_central": True,
                },
            )
            self.ids[key], self.ids["alm" + key] = inst["id"], alm["id"]
            ub = await self.ok(
                "POST", "/ubicaciones", json={"id_almacen": alm["id"], "codigo": f"{key}-01"}
            )
            self.ids["ub" + key] = ub["id"]
        self.ids["P"] = (
            await self.ok("POST", "/productos", json={"clave_cnis": "010.000.0104.00"})
        )["id"]

    async def stock(self, inst: str, numero: str, cantidad: int) -> None:
        await self.ok(
            "POST",
            "/lotes",
            json={
                "id_producto": self.ids["P"],
                "id_institucion": self.ids[inst],
                "numero_lote": numero,
                "fecha_caducidad": "2027-12-31",
                "ubicaciones": [{"id_ubicacion": self.ids["ub" + inst], "cantidad": cantidad}],
            },
        )

    async def solicitud(
        self, inst: str, cantidad: int, folio_pedido: str | None, at: datetime
    ) -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(clock, "now_fn", lambda: at)
            sol: dict[str, Any] = await self.ok(
                "POST",
                "/solicitudes",
                SOL,
                json={
                    "id_institucion": self.ids[inst],
                    "id_almacen_destino": self.ids["alm" + inst],
                    "fecha_entrega_programada": "2026-05-06",
                    "folio_pedido": folio_pedido,
                    "items": [{"id_producto": self.ids["P"], "cantidad_solicitada": cantidad}],
                },
            )
        return sol

    async def validada(self, sol: dict[str, Any]) -> dict[str, Any]:
        await self.ok("POST", f"/solicitudes/{sol['id']}/validar", VAL, json={"items": []})
        deadline = time.monotonic() + 10
        while True:
            r = await self.client.get(f"/solicitudes/{sol['id']}/propuesta", headers=self.h(SUP))
            if r.status_code == 200:
                return dict(r.json())
            assert r.status_code == 404, r.text
            assert time.monotonic() < deadline, "no proposal within 10 s"
            await asyncio.sleep(0.01)

    async def folios(self, url: str, **params: Any) -> list[str]:
        page = await self.ok("GET", url, params=params)
        return sorted(row["folio"] for row in page["items"])


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = OrdersSettings(env="test", database_url=database_url, transport="memory")
    async with app_client(create_app(settings), "http://orders") as client:
        a = Api(client, settings)
        await a.setup()
        yield a


# 2026-04-30 23:30 in Mexico City is already 2026-05-01 in UTC: the business date decides
ABRIL_30_NOCHE = datetime(2026, 5, 1, 5, 30, tzinfo=UTC)
MAYO_1 = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)
MAYO_3 = datetime(2026, 5, 3, 18, 0, tzinfo=UTC)


async def _three_requests(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    a = await api.solicitud("A", 10, "PED-Abr-30", ABRIL_30_NOCHE)
    b = await api.solicitud("A", 10, "PED-May-1", MAYO_1)
    c = await api.solicitud("B", 10, "PED-May-3", MAYO_3)
    return a, b, c


async def test_request_list_filters_by_business_date_range_institution_and_folio(api: Api) -> None:
    a, b, c = await _three_requests(api)
    url = "/solicitudes"
    assert await api.folios(url) == sorted([a["folio"], b["folio"], c["folio"]])
    assert await api.folios(url, desde="2026-05-01") == sorted([b["folio"], c["folio"]])
    assert await api.folios(url, hasta="2026-04-30") == [a["folio"]]
    assert await api.folios(url, desde="2026-05-01", hasta="2026-05-01") == [b["folio"]]
    assert await api.folios(url, id_institucion=api.ids["B"]) == [c["folio"]]
    assert await api.folios(url, id_institucion=api.ids["A"], desde="2026-05-01") == [b["folio"]]
    # the external folio matches case- and blank-insensitively; the internal one exactly
    assert await api.folios(url, folio=" ped-may-3 ") == [c["folio"]]
    assert await api.folios(url, folio=a["folio"]) == [a["folio"]]
    page = await api.ok("GET", url, params={"folio": "PED-MAY-1"})
    assert [(r["folio_pedido"], r["id_institucion"]) for r in page["items"]] == [
        ("PED-May-1", api.ids["A"])
    ]


async def test_proposal_list_filters_like_the_request_list(api: Api) -> None:
    await api.stock("A", "LA", 100)
    await api.stock("B", "LB", 100)
    a, b, c = await _three_requests(api)
    for sol in (a, b, c):
        await api.validada(sol)
    url = "/propuestas"
    assert await api.folios(url) == sorted([a["folio"], b["folio"], c["folio"]])
    assert await api.folios(url, desde="2026-05-01", hasta="2026-05-02") == [b["folio"]]
    assert await api.folios(url, id_institucion=api.ids["B"]) == [c["folio"]]
    assert await api.folios(url, folio="ped-abr-30") == [a["folio"]]
    assert await api.folios(url, folio="PED-NINGUNO") == []
    page = await api.ok("GET", url, params={"folio": "PED-May-3"})
    assert [(r["folio_pedido"], r["id_institucion"]) for r in page["items"]] == [
        ("PED-May-3", api.ids["B"])
    ]


async def test_inverted_date_range_is_refused_naming_desde(api: Api) -> None:
    for url in ("/solicitudes", "/propuestas"):
        r = await api.client.get(
            url, headers=api.h(SUP), params={"desde": "2026-05-02", "hasta": "2026-05-01"}
        )
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["type"].endswith("/RANGO_INVALIDO")
        assert body["field"] == "desde"


async def test_porcentaje_surtido_is_dispatched_over_approved_rounded_half_up(api: Api) -> None:
    # 3 approved, 2 in stock: the dispatch is PARCIAL and 2 / 3 = 66.666… → 66.67
    await api.stock("A", "LA", 2)
    sol = await api.solicitud("A", 3, "PED-PCT", MAYO_1)
    prop = await api.validada(sol)
    assert prop["porcentaje_surtido"] == "0.00"
    listed = (await api.ok("GET", "/propuestas"))["items"]
    assert [(p["total_surtido"], p["porcentaje_surtido"]) for p in listed] == [(0, "0.00")]
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", ALM)
    out = await api.ok("POST", f"/propuestas/{prop['id']}/surtir")
    assert (out["estado"], out["porcentaje_surtido"]) == ("PARCIAL", "66.67")
    detail = await api.ok("GET", f"/propuestas/{prop['id']}", VAL)
    assert detail["porcentaje_surtido"] == "66.67"
    (row,) = (await api.ok("GET", "/propuestas", params={"folio": "PED-PCT"}))["items"]
    assert (row["total_solicitado"], row["total_surtido"], row["porcentaje_surtido"]) == (
        3,
        2,
        "66.67",
    )
