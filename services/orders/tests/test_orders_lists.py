"""Issue 15 item 5: the request and proposal lists filter by the request's date range,
institution and folio (internal or external), proposals carry `porcentaje_surtido`
(DOMAIN `lista_propuestas`), the open-shortfall report (DECIDE-B5), and the CSV / Excel export
of the lists and reports — through the API on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

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
        for key, clave in (("P", "010.000.0104.00"), ("Q", "010.000.0105.00")):
            prod = await self.ok("POST", "/productos", json={"clave_cnis": clave})
            self.ids[key] = prod["id"]

    async def stock(self, inst: str, numero: str, cantidad: int, producto: str = "P") -> None:
        await self.ok(
            "POST",
            "/lotes",
            json={
                "id_producto": self.ids[producto],
                "id_institucion": self.ids[inst],
                "numero_lote": numero,
                "fecha_caducidad": "2027-12-31",
                "ubicaciones": [{"id_ubicacion": self.ids["ub" + inst], "cantidad": cantidad}],
            },
        )

    async def solicitud(
        self,
        inst: str,
        cantidad: int,
        folio_pedido: str | None,
        at: datetime,
        productos: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        items = productos or {"P": cantidad}
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
                    "items": [
                        {"id_producto": self.ids[p], "cantidad_solicitada": q}
                        for p, q in items.items()
                    ],
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


# ----------------------------------------------------------------------------- shortfalls


def _faltantes(page: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(r["folio_pedido"], r["clave_cnis"], r["cantidad_pendiente"]) for r in page["items"]]


@pytest.mark.spec("DECIDE-B5")
async def test_shortfall_report_lists_open_pendientes_of_live_proposals(api: Api) -> None:
    await api.stock("A", "LA", 2)
    await api.stock("A", "LQ", 50, producto="Q")
    # A: P 3 approved, 2 in stock → 1 owed; Q fully allocated → not listed
    a = await api.solicitud("A", 0, "PED-A", ABRIL_30_NOCHE, productos={"P": 3, "Q": 4})
    prop_a = await api.validada(a)
    # B: nothing in stock → the whole 5 owed (NO_DISPONIBLE)
    b = await api.solicitud("B", 5, "PED-B", MAYO_3)
    await api.validada(b)
    # a released (cancelled) proposal owes nothing any more
    c = await api.solicitud("B", 7, "PED-C", MAYO_3)
    prop_c = await api.validada(c)
    await api.ok("POST", f"/propuestas/{prop_c['id']}/liberar", json={"motivo": "sin stock"})
    url = "/reportes/faltantes"
    page = await api.ok("GET", url, VAL)
    assert _faltantes(page) == [("PED-A", "010.000.0104.00", 1), ("PED-B", "010.000.0104.00", 5)]
    first = page["items"][0]
    assert (first["folio"], first["clue"], first["estado_propuesta"]) == (
        a["folio"],
        "QA001",
        "GENERADA",
    )
    assert (first["cantidad_aprobada"], first["cantidad_propuesta"]) == (3, 2)
    by = {"id_institucion": api.ids["B"]}
    assert _faltantes(await api.ok("GET", url, params=by)) == [("PED-B", "010.000.0104.00", 5)]
    by = {"id_producto": api.ids["Q"]}
    assert _faltantes(await api.ok("GET", url, params=by)) == []
    by = {"hasta": "2026-04-30"}
    assert _faltantes(await api.ok("GET", url, params=by)) == [("PED-A", "010.000.0104.00", 1)]
    by = {"folio": "ped-b"}
    assert _faltantes(await api.ok("GET", url, params=by)) == [("PED-B", "010.000.0104.00", 5)]
    # the shortfall that stays after a PARCIAL dispatch is still open
    await api.ok("POST", f"/propuestas/{prop_a['id']}/revisar", ALM)
    await api.ok("POST", f"/propuestas/{prop_a['id']}/surtir")
    rows = (await api.ok("GET", url, params={"folio": "PED-A"}))["items"]
    assert [
        (r["estado_propuesta"], r["cantidad_surtida"], r["cantidad_pendiente"]) for r in rows
    ] == [("PARCIAL", 2, 1)]


# ----------------------------------------------------------------------------- exports


def _csv_rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def _xlsx_rows(r: httpx.Response, name: str) -> list[tuple[Any, ...]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XLSX
    assert r.headers["content-disposition"] == f'attachment; filename="{name}.xlsx"'
    wb = load_workbook(io.BytesIO(r.content), read_only=True)
    return [tuple(row) for row in wb.active.iter_rows(values_only=True)]


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_lists_export_the_whole_filtered_list_as_csv_and_excel(api: Api) -> None:
    await api.stock("A", "LA", 100)
    a, b, _ = await _three_requests(api)
    await api.validada(b)
    get = api.client.get
    h = api.h(VAL)
    # the export is the filtered list, not the page
    params = {"id_institucion": api.ids["A"], "limit": 1}
    rows = _csv_rows(await get("/solicitudes", headers=h, params={**params, "formato": "csv"}))
    assert sorted(r["folio"] for r in rows) == sorted([a["folio"], b["folio"]])
    assert set(rows[0]) >= {"folio", "folio_pedido", "estado", "fecha_solicitud"}
    table = _xlsx_rows(
        await get("/solicitudes", headers=h, params={**params, "formato": "xlsx"}), "solicitudes"
    )
    header, *body = table
    assert header[:4] == ("id", "folio", "folio_pedido", "estado")
    assert sorted(row[1] for row in body) == sorted([a["folio"], b["folio"]])
    table = _xlsx_rows(await get("/propuestas?formato=xlsx", headers=h), "propuestas")
    header, *body = table
    pct = header.index("porcentaje_surtido")
    assert [(row[header.index("folio")], row[pct]) for row in body] == [(b["folio"], "0.00")]
    rows = _csv_rows(await get("/propuestas?formato=csv&folio=PED-May-1", headers=h))
    assert [(r["folio_pedido"], r["total_solicitado"]) for r in rows] == [("PED-May-1", "10")]


async def test_reports_export_as_excel(api: Api) -> None:
    sol = await api.solicitud("B", 5, "PED-B", MAYO_3)
    await api.validada(sol)
    h = api.h(SUP)
    header, *body = _xlsx_rows(
        await api.client.get("/reportes/faltantes?formato=xlsx", headers=h), "faltantes"
    )
    assert [
        (row[header.index("folio_pedido")], row[header.index("cantidad_pendiente")]) for row in body
    ] == [("PED-B", 5)]
    rows = _csv_rows(await api.client.get("/reportes/faltantes?formato=csv", headers=h))
    assert [(r["clave_cnis"], r["cantidad_pendiente"]) for r in rows] == [("010.000.0104.00", "5")]
    header, *body = _xlsx_rows(
        await api.client.get("/reportes/pendientes?formato=xlsx", headers=h), "pendientes"
    )
    assert [row[header.index("folio")] for row in body] == [sol["folio"]]
    r = await api.client.get("/reportes/faltantes?formato=pdf", headers=h)
    assert r.status_code == 422, r.text
