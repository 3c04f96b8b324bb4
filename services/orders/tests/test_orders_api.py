"""Every acceptance example of DOMAIN Part B (HO-F*, HO-L*) through the HTTP API, plus bad input.

The app is built with `create_app(settings)` (in-memory transport), driven through httpx's
ASGITransport inside the app lifespan, once on a SQLite file and once on a fresh PostgreSQL
database (`database_url` in conftest: the app then picks `PostgresStockStore`). Proposal
generation is asynchronous (consumer of RequestValidated), so tests poll with a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexo_testing import app_client
from orders.application import clock
from orders.main import create_app
from orders.settings import OrdersSettings
from service_defaults.auth import issue_token

P_CLAVE = "010.000.0104.00"
PROBLEM = "application/problem+json"
J = {"justificacion_codigo": "SIN_EXISTENCIA", "justificacion": "sin existencia"}


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: OrdersSettings
    app: Any = None
    ids: dict[str, int] = field(default_factory=dict)
    ubicaciones: dict[tuple[int, str], int] = field(default_factory=dict)

    def h(self, *roles: str, sub: str = "user") -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.settings, sub, roles)}"}

    @property
    def sup(self) -> dict[str, str]:
        return self.h("orders.supervisor", sub="super")

    async def ok(self, method: str, url: str, headers: dict[str, str], **kw: Any) -> Any:
        r = await self.client.request(method, url, headers=headers, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json()

    async def setup_world(self) -> None:
        inst = await self.ok(
            "POST",
            "/instituciones",
            self.sup,
            json={"clue": "QA001", "denominacion": "Institucion QA"},
        )
        self.ids["inst"] = inst["id"]
        for key, codigo, central in (("central", "CENTRAL", True), ("norte", "NORTE", False)):
            alm = await self.ok(
                "POST",
                "/almacenes",
                self.sup,
                json={
                    "id_institucion": inst["id"],
                    "nombre": codigo.title(),
                    "codigo": codigo,
                    "es_central": central,
                },
            )
            self.ids[key] = alm["id"]
        for key, clave in (("P", P_CLAVE), ("Q", "010.000.0105.00")):
            prod = await self.ok("POST", "/productos", self.sup, json={"clave_cnis": clave})
            self.ids[key] = prod["id"]

    async def ubicacion(
        self, codigo: str, almacen: str = "central", estado: str = "disponible"
    ) -> int:
        key = (self.ids[almacen], codigo)
        if key not in self.ubicaciones:
            ub = await self.ok(
                "POST",
                "/ubicaciones",
                self.sup,
                json={"id_almacen": self.ids[almacen], "codigo": codigo, "estado": estado},
            )
            self.ubicaciones[key] = ub["id"]
        return self.ubicaciones[key]

    async def lote(
        self,
        numero: str,
        cad: str | None,
        stock: dict[str, int],
        *,
        producto: str = "P",
        almacen: str = "central",
        estado: int = 1,
        ubic_estado: str = "disponible",
    ) -> dict[str, Any]:
        ubs = [
            {"id_ubicacion": await self.ubicacion(c, almacen, ubic_estado), "cantidad": q}
            for c, q in stock.items()
        ]
        return await self.ok(
            "POST",
            "/lotes",
            self.sup,
            json={
                "id_producto": self.ids[producto],
                "id_institucion": self.ids["inst"],
                "numero_lote": numero,
                "fecha_caducidad": cad,
                "estado": estado,
                "ubicaciones": ubs,
            },
        )

    async def crear(
        self,
        items: dict[str, int],
        folio_pedido: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await self.client.post(
            "/solicitudes",
            headers=headers or self.h("orders.solicitante", sub="ana"),
            json={
                "id_institucion": self.ids["inst"],
                "id_almacen_destino": self.ids["central"],
                "fecha_entrega_programada": "2026-05-05",
                "folio_pedido": folio_pedido,
                "items": [
                    {"id_producto": self.ids[p], "cantidad_solicitada": q} for p, q in items.items()
                ],
            },
        )

    async def solicitud(
        self, items: dict[str, int], folio_pedido: str | None = None
    ) -> dict[str, Any]:
        r = await self.crear(items, folio_pedido)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def validar(
        self, sol: dict[str, Any], aprob: dict[str, dict[str, Any]] | None = None
    ) -> httpx.Response:
        by_prod = {i["id_producto"]: i["id"] for i in sol["items"]}
        items = [{"id_item": by_prod[self.ids[p]], **a} for p, a in (aprob or {}).items()]
        return await self.client.post(
            f"/solicitudes/{sol['id']}/validar",
            headers=self.h("orders.validador", sub="vale"),
            json={"items": items},
        )

    async def propuesta(self, sol_id: str, wait: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        while True:
            r = await self.client.get(f"/solicitudes/{sol_id}/propuesta", headers=self.sup)
            if r.status_code == 200:
                return dict(r.json())
            assert r.status_code == 404, r.text
            if time.monotonic() > deadline:
                raise AssertionError(f"no proposal for {sol_id} within {wait}s")
            await asyncio.sleep(0.01)

    async def validada(
        self,
        items: dict[str, int],
        folio_pedido: str | None = None,
        aprob: dict[str, dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        sol = await self.solicitud(items, folio_pedido)
        r = await self.validar(sol, aprob)
        assert r.status_code == 200, r.text
        return sol, await self.propuesta(sol["id"])

    async def lote_detalle(self, lote_id: int) -> dict[str, Any]:
        return dict(await self.ok("GET", f"/lotes/{lote_id}", self.sup))


def lineas(prop: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [
        (ln["numero_lote"], ln["ubicacion"], ln["cantidad_asignada"])
        for it in prop["items"]
        for ln in it["lotes"]
        if ln["estado_linea"] != "LIBERADA"
    ]


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = dict(r.json())
    assert body["type"].endswith("/" + code), body
    return body


@pytest.fixture
async def api(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Api]:
    # a test may pass extra settings with @pytest.mark.settings(name=value)
    marker = request.node.get_closest_marker("settings")
    settings = OrdersSettings(
        env="test",
        database_url=database_url,
        transport="memory",
        **(marker.kwargs if marker else {}),
    )
    app = create_app(settings)
    async with app_client(app, "http://orders") as client:
        a = Api(client, settings, app)
        await a.setup_world()
        yield a


# ----------------------------------------------------------------------------- FEFO


async def f01(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    lots = {
        "A100": await api.lote("A100", "2026-09-30", {"A-01": 60}),
        "B200": await api.lote("B200", "2026-07-15", {"B-01": 50}),
        "C300": await api.lote("C300", "2026-06-15", {"C-01": 500}),
    }
    sol, prop = await api.validada({"P": 100}, folio_pedido="PED-QA-0001")
    return sol, prop, lots


@pytest.mark.spec("HO-F01")
async def test_basic_fefo(api: Api) -> None:
    _, prop, _ = await f01(api)
    assert lineas(prop) == [("B200", "B-01", 50), ("A100", "A-01", 50)]
    (item,) = prop["items"]
    assert (item["cantidad_disponible"], item["cantidad_propuesta"], item["estado"]) == (
        110,
        100,
        "DISPONIBLE",
    )
    assert (prop["total_solicitado"], prop["total_disponible"], prop["total_propuesto"]) == (
        100,
        110,
        100,
    )
    assert prop["cobertura"] == "100.00"
    assert prop["estado"] == "GENERADA"


@pytest.mark.spec("HO-F02")
async def test_expiry_boundary_strict(api: Api) -> None:
    await api.lote("D1", "2026-06-30", {"D-01": 20})
    await api.lote("E1", "2026-06-29", {"E-01": 100})
    await api.lote("F1", "2026-12-31", {"F-01": 100})
    _, prop = await api.validada({"P": 30})
    assert lineas(prop) == [("F1", "F-01", 30)]
    assert prop["items"][0]["estado"] == "DISPONIBLE"
    assert prop["items"][0]["cantidad_pendiente"] == 0


@pytest.mark.settings(min_shelf_life_days=59)
@pytest.mark.spec("HO-F02")
async def test_configured_59_days(api: Api) -> None:
    await api.lote("D1", "2026-06-30", {"D-01": 20})
    await api.lote("E1", "2026-06-29", {"E-01": 100})
    await api.lote("F1", "2026-12-31", {"F-01": 100})
    _, prop = await api.validada({"P": 30})
    assert lineas(prop) == [("D1", "D-01", 20), ("F1", "F-01", 10)]


@pytest.mark.spec("HO-F03", "HO-L05")
async def test_partial_proposal_then_release(api: Api) -> None:
    b = await api.lote("B200", "2026-07-15", {"B-01": 50})
    a = await api.lote("A100", "2026-09-30", {"A-01": 60})
    # another proposal holds 30 of B200 — make it reserve only B200 by asking 30
    _, other = await api.validada({"P": 30})
    assert lineas(other) == [("B200", "B-01", 30)]
    sol, prop = await api.validada({"P": 100})
    assert lineas(prop) == [("B200", "B-01", 20), ("A100", "A-01", 60)]
    (item,) = prop["items"]
    assert item["estado"] == "PARCIAL"
    assert item["cantidad_propuesta"] == 80
    assert item["observaciones"] == "Solo se encontraron 80 de 100 unidades."
    assert item["cantidad_disponible"] == 80
    assert item["cantidad_pendiente"] == 20
    # HO-L05: release
    r = await api.client.post(
        f"/propuestas/{prop['id']}/liberar", headers=api.h("orders.almacenista")
    )
    problem(r, 403, "forbidden")
    released = await api.ok(
        "POST", f"/propuestas/{prop['id']}/liberar", api.sup, json={"motivo": "replanificar"}
    )
    assert {ln["estado_linea"] for it in released["items"] for ln in it["lotes"]} == {"LIBERADA"}
    assert released["estado"] == "CANCELADA"
    b_now, a_now = await api.lote_detalle(b["id"]), await api.lote_detalle(a["id"])
    assert b_now["cantidad_disponible"] - b_now["cantidad_reservada"] == 20
    assert a_now["cantidad_disponible"] - a_now["cantidad_reservada"] == 60
    detalle = await api.ok("GET", f"/solicitudes/{sol['id']}", api.sup)
    assert detalle["estado"] == "PENDIENTE"
    assert detalle["id_propuesta_activa"] is None
    salidas = await api.ok("GET", "/movimientos?tipo=SALIDA", api.sup)
    assert salidas["items"] == []
    # re-validation: a new active proposal, the old one archived
    r = await api.validar(detalle)
    assert r.status_code == 200
    new = await api.propuesta(sol["id"])
    assert new["id"] != prop["id"]
    old = await api.ok("GET", f"/propuestas/{prop['id']}", api.sup)
    assert old["estado"] == "CANCELADA"


@pytest.mark.spec("HO-F04")
async def test_bytewise_tie_break(api: Api) -> None:
    await api.lote("L9", "2026-10-01", {"X-01": 40})
    await api.lote("L10", "2026-10-01", {"B-01": 5, "A-10": 10, "A-2": 20})
    _, prop = await api.validada({"P": 30})
    assert lineas(prop) == [("L10", "A-10", 10), ("L10", "A-2", 20)]
    assert prop["items"][0]["estado"] == "DISPONIBLE"


@pytest.mark.spec("HO-F05")
async def test_ineligible_lots(api: Api) -> None:
    g1 = await api.lote("G1", "2026-08-01", {"G-01": 25})
    await api.lote("H1", "2026-08-15", {"H-01": 100}, estado=4)
    await api.lote("I1", None, {"I-01": 100})
    await api.lote("J1", "2026-09-01", {"J-01": 30})
    await api.lote("K1", "2026-07-01", {"K-01": 70}, ubic_estado="cuarentena")
    _, prop = await api.validada({"P": 50})
    assert lineas(prop) == [("G1", "G-01", 25), ("J1", "J-01", 25)]
    assert prop["items"][0]["estado"] == "DISPONIBLE"
    assert prop["items"][0]["cantidad_disponible"] == 55
    # lot-level figures are derived from locations (HO-D21): no desynchronisation possible
    assert (await api.lote_detalle(g1["id"]))["cantidad_disponible"] == 25


@pytest.mark.spec("HO-F06")
async def test_nothing_available_is_no_disponible(api: Api) -> None:
    await api.lote("M1", "2026-12-31", {"M-01": 10})
    _, first = await api.validada({"P": 10})
    assert lineas(first) == [("M1", "M-01", 10)]
    _, prop = await api.validada({"P": 10})
    assert prop["estado"] == "NO_DISPONIBLE"
    (item,) = prop["items"]
    assert (item["estado"], item["cantidad_propuesta"], item["cantidad_pendiente"]) == (
        "NO_DISPONIBLE",
        0,
        10,
    )
    assert item["observaciones"].startswith("No hay existencia neta disponible para asignar")


@pytest.mark.parametrize("cad", ["2026-06-01", "2026-06-30"])
@pytest.mark.spec("HO-F06")
async def test_no_disponible_names_the_expiry_reason(api: Api, cad: str) -> None:
    await api.lote("M1", cad, {"M-01": 10})
    _, prop = await api.validada({"P": 10})
    assert prop["items"][0]["observaciones"] == (
        "No hay lotes que cumplan la regla mínima de caducidad (fecha de caducidad más de "
        "60 días posterior a la fecha actual)."
    )


@pytest.mark.spec("HO-F07")
async def test_concurrent_validations(api: Api) -> None:
    n1 = await api.lote("N1", "2026-12-31", {"N-01": 50})
    r1 = await api.solicitud({"P": 50})
    r2 = await api.solicitud({"P": 50})
    res = await asyncio.gather(api.validar(r1), api.validar(r2))
    assert [r.status_code for r in res] == [200, 200]
    p1, p2 = await api.propuesta(r1["id"]), await api.propuesta(r2["id"])
    assert sorted([p1["estado"], p2["estado"]]) == ["GENERADA", "NO_DISPONIBLE"]
    lot = await api.lote_detalle(n1["id"])
    assert lot["cantidad_reservada"] == 50
    assert sum(it["cantidad_pendiente"] for p in (p1, p2) for it in p["items"]) == 50


@pytest.mark.spec("HO-F08")
async def test_destination_warehouse_only(api: Api) -> None:
    await api.lote("Q1", "2026-08-01", {"N-01": 100}, almacen="norte")
    await api.lote("Q2", "2026-12-31", {"C-05": 20})
    _, prop = await api.validada({"P": 30})
    assert lineas(prop) == [("Q2", "C-05", 20)]
    (item,) = prop["items"]
    assert item["estado"] == "PARCIAL"
    assert item["observaciones"] == "Solo se encontraron 20 de 30 unidades."
    assert (item["cantidad_disponible"], item["cantidad_pendiente"]) == (20, 10)


# ----------------------------------------------------------------------------- lifecycle


@pytest.mark.spec("HO-L01")
async def test_validation_outcomes(api: Api) -> None:
    await api.lote("X1", "2026-12-31", {"X-01": 100})
    sol = await api.solicitud({"P": 10, "Q": 5})
    r = await api.validar(
        sol, {"P": {"cantidad_aprobada": 0, **J}, "Q": {"cantidad_aprobada": 0, **J}}
    )
    assert r.json()["estado"] == "RECHAZADA"
    r = await api.client.get(f"/solicitudes/{sol['id']}/propuesta", headers=api.sup)
    problem(r, 404, "PROPUESTA_NO_ENCONTRADA")

    sol2 = await api.solicitud({"P": 10, "Q": 5})
    r = await api.validar(sol2, {"P": {"cantidad_aprobada": 12, **J}})
    body = problem(r, 422, "APROBADA_EXCEDE_SOLICITADA")
    p_item = next(i["id"] for i in sol2["items"] if i["id_producto"] == api.ids["P"])
    assert body["errors"][0]["field"] == f"items.{p_item}.cantidad_aprobada"
    assert "≤ 10" in body["detail"]
    assert (await api.ok("GET", f"/solicitudes/{sol2['id']}", api.sup))["estado"] == "PENDIENTE"

    r = await api.validar(
        sol2, {"P": {"cantidad_aprobada": 10}, "Q": {"cantidad_aprobada": 0, **J}}
    )
    assert r.status_code == 200
    assert r.json()["estado"] == "VALIDADA"
    prop = await api.propuesta(sol2["id"])
    assert [it["id_producto"] for it in prop["items"]] == [api.ids["P"]]


async def _revisar_y_surtir(api: Api, prop: dict[str, Any]) -> httpx.Response:
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", api.h("orders.almacenista"))
    return await api.client.post(f"/propuestas/{prop['id']}/surtir", headers=api.sup)


@pytest.mark.spec("HO-L02", "HO-L03")
async def test_dispatch_issues_stock_once(api: Api) -> None:
    sol, prop, lots = await f01(api)
    r = await _revisar_y_surtir(api, prop)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["estado"] == "SURTIDA"
    (item,) = out["items"]
    assert (item["cantidad_surtida"], item["estado"]) == (100, "SURTIDO")
    assert {ln["estado_linea"] for ln in item["lotes"]} == {"SURTIDA"}
    b200 = await api.lote_detalle(lots["B200"]["id"])
    a100 = await api.lote_detalle(lots["A100"]["id"])
    assert (b200["cantidad_disponible"], a100["cantidad_disponible"]) == (0, 10)
    assert b200["ubicaciones"][0]["cantidad"] == 0
    assert a100["ubicaciones"][0]["cantidad"] == 10
    movs = (await api.ok("GET", "/movimientos?tipo=SALIDA", api.sup))["items"]
    assert sorted(
        (m["numero_lote"], m["cantidad"], m["cantidad_anterior"], m["cantidad_nueva"]) for m in movs
    ) == [("A100", 50, 60, 10), ("B200", 50, 50, 0)]
    for m in movs:
        assert m["motivo"] == (
            "Suministro de Pedido — Pedido: PED-QA-0001. Destino: QA001 — Institucion QA."
        )
        assert m["documento_referencia"] == sol["folio"]
        assert m["pedido"] == m["folio"] == "PED-QA-0001"
    assert (await api.ok("GET", f"/solicitudes/{sol['id']}", api.sup))["estado"] == "ENTREGADA"
    # HO-L03
    r = await api.client.post(f"/propuestas/{prop['id']}/surtir", headers=api.sup)
    problem(r, 409, "YA_SURTIDA")
    assert len((await api.ok("GET", "/movimientos?tipo=SALIDA", api.sup))["items"]) == 2
    assert (await api.lote_detalle(lots["A100"]["id"]))["cantidad_disponible"] == 10
    # dispatched proposals are immutable (HO-D28)
    r = await api.client.put(
        f"/propuestas/{prop['id']}/items/{item['id']}/lineas", headers=api.sup, json={"lineas": []}
    )
    problem(r, 409, "YA_SURTIDA")


async def test_dispatch_sent_twice_concurrently_moves_once(api: Api) -> None:
    _, prop, lots = await f01(api)
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", api.h("orders.almacenista"))
    url = f"/propuestas/{prop['id']}/surtir"
    r1, r2 = await asyncio.gather(
        api.client.post(url, headers=api.sup), api.client.post(url, headers=api.sup)
    )
    assert sorted([r1.status_code, r2.status_code]) == [200, 409]
    assert len((await api.ok("GET", "/movimientos?tipo=SALIDA", api.sup))["items"]) == 2
    assert (await api.lote_detalle(lots["A100"]["id"]))["cantidad_disponible"] == 10


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
@pytest.mark.spec("HO-L04")
async def test_lot_expired_before_dispatch(api: Api, keyed: bool) -> None:
    """The re-planning survives the rejection, also on a keyed request (whose deferred commit
    an error answer would otherwise roll back)."""
    _sol, prop, lots = await f01(api)
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", api.h("orders.almacenista"))
    await api.ok(
        "POST",
        f"/lotes/{lots['B200']['id']}/estado",
        api.sup,
        json={"estado": 6, "motivo": "job nocturno"},
    )
    headers = {**api.sup, "Idempotency-Key": "surtir-1"} if keyed else api.sup
    r = await api.client.post(f"/propuestas/{prop['id']}/surtir", headers=headers)
    body = problem(r, 422, "LOTE_NO_ELEGIBLE")
    assert body["lotes"] == ["B200"]
    again = await api.ok("GET", f"/propuestas/{prop['id']}", api.sup)
    assert again["estado"] == "GENERADA"
    assert again["requiere_replanificacion"] is True
    assert (await api.lote_detalle(lots["B200"]["id"]))["cantidad_disponible"] == 50
    assert (await api.ok("GET", "/movimientos?tipo=SALIDA", api.sup))["items"] == []


async def test_expiry_job_through_api(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _, prop, _ = await f01(api)
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", api.h("orders.almacenista"))
    monkeypatch.setattr(clock, "now_fn", lambda: datetime(2026, 7, 20, 18, tzinfo=UTC))
    r = await api.client.post("/jobs/caducidad", headers=api.h("orders.almacenista"))
    problem(r, 403, "forbidden")
    res = await api.ok("POST", "/jobs/caducidad", api.h("ops"))
    assert set(res["lotes_caducados"]) == {"B200", "C300"}
    assert res["lineas_marcadas"] == 1
    again = await api.ok("GET", f"/propuestas/{prop['id']}", api.sup)
    assert again["estado"] == "GENERADA"


@pytest.mark.spec("HO-L06")
async def test_picking_keeps_reservation(api: Api) -> None:
    await api.lote("N1", "2026-12-31", {"N-01": 50})
    _, prop = await api.validada({"P": 50})
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", api.h("orders.almacenista"))
    linea = prop["items"][0]["lotes"][0]["id"]
    picked = await api.ok(
        "POST", f"/propuestas/{prop['id']}/lineas/{linea}/recoger", api.h("orders.almacenista")
    )
    assert picked["items"][0]["lotes"][0]["estado_linea"] == "RECOGIDA"
    assert picked["estado"] == "EN_SURTIMIENTO"
    _, other = await api.validada({"P": 10})
    assert other["estado"] == "NO_DISPONIBLE"
    assert lineas(other) == []


@pytest.mark.spec("HO-L07")
async def test_folio_business_date(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now_fn", lambda: datetime(2026, 5, 2, 2, 30, tzinfo=UTC))
    sol = await api.solicitud({"P": 1})
    import re

    assert re.fullmatch(r"SOL-20260501-[0-9A-F]{6}", sol["folio"])


@pytest.mark.spec("HO-L08")
async def test_duplicate_external_folio(api: Api) -> None:
    await api.lote("X1", "2026-12-31", {"X-01": 100})
    first, _ = await api.validada({"P": 1}, folio_pedido="PED-77")
    r = await api.crear({"P": 1}, folio_pedido="ped-77")
    body = problem(r, 422, "FOLIO_DUPLICADO")
    assert body["errors"][0]["field"] == "folio_pedido"
    r = await api.crear(
        {"P": 1},
        folio_pedido="ped-77",
        headers=api.h("orders.solicitante", "orders.administrador_local"),
    )
    assert r.status_code == 201
    dup = r.json()
    await api.ok("POST", f"/solicitudes/{dup['id']}/cancelar", api.sup)
    await api.ok("POST", f"/solicitudes/{first['id']}/cancelar", api.sup, json={"motivo": "prueba"})
    r = await api.crear({"P": 1}, folio_pedido="Ped-77")
    assert r.status_code == 201
    assert r.json()["advertencias"]


@pytest.mark.spec("HO-L09")
async def test_edit_guards(api: Api) -> None:
    _, prop, lots = await f01(api)
    q = await api.lote("QX", "2026-12-01", {"Q-01": 10}, producto="Q")
    s30 = await api.lote("S30", "2026-05-31", {"S-01": 10})
    s60 = await api.lote("S60", "2026-06-30", {"S-02": 10})
    item = prop["items"][0]
    url = f"/propuestas/{prop['id']}/items/{item['id']}/lineas"
    alm = api.h("orders.almacenista")

    def lu(lot: dict[str, Any]) -> int:
        return int(lot["ubicaciones"][0]["id_lote_ubicacion"])

    r = await api.client.put(
        url, headers=alm, json={"lineas": [{"id_lote_ubicacion": lu(q), "cantidad": 5}]}
    )
    assert problem(r, 422, "PRODUCTO_NO_COINCIDE")["errors"][0]["field"] == (
        "lineas.0.id_lote_ubicacion"
    )
    for lot in (s30, s60):
        r = await api.client.put(
            url, headers=alm, json={"lineas": [{"id_lote_ubicacion": lu(lot), "cantidad": 5}]}
        )
        problem(r, 422, "CADUCIDAD_MINIMA")
        # a Supervisor without a reason is not enough either
        r = await api.client.put(
            url, headers=api.sup, json={"lineas": [{"id_lote_ubicacion": lu(lot), "cantidad": 5}]}
        )
        problem(r, 422, "CADUCIDAD_MINIMA")
    r = await api.client.put(
        url,
        headers=alm,
        json={
            "lineas": [
                {"id_lote_ubicacion": lu(lots["B200"]), "cantidad": 50},
                {"id_lote_ubicacion": lu(lots["A100"]), "cantidad": 51},
            ]
        },
    )
    problem(r, 422, "EXCEDE_APROBADO")
    r = await api.client.put(
        url, headers=alm, json={"lineas": [{"id_lote_ubicacion": 999999, "cantidad": 1}]}
    )
    problem(r, 422, "LOTE_DESCONOCIDO")
    # supervisor override with a reason works and is recorded
    out = await api.ok(
        "PUT",
        url,
        api.sup,
        json={
            "lineas": [
                {"id_lote_ubicacion": lu(lots["B200"]), "cantidad": 50},
                {"id_lote_ubicacion": lu(s60), "cantidad": 10},
            ],
            "motivo_override": "urgencia clínica",
        },
    )
    (it,) = out["items"]
    assert (it["cantidad_propuesta"], it["cantidad_pendiente"], it["estado"]) == (60, 40, "PARCIAL")
    s60_line = next(ln for ln in it["lotes"] if ln["numero_lote"] == "S60")
    assert s60_line["override_caducidad"] is True
    assert (await api.lote_detalle(lots["A100"]["id"]))["cantidad_reservada"] == 0
    assert (await api.lote_detalle(s60["id"]))["cantidad_reservada"] == 10
    # optimistic concurrency on the proposal
    r = await api.client.put(url, headers=alm, json={"lineas": [], "version": 1})
    problem(r, 409, "VERSION_CONFLICTO")


# ----------------------------------------------------------------------------- bad input


async def test_bad_input_is_problem_json(api: Api) -> None:
    await api.lote("X1", "2026-12-31", {"X-01": 100})
    # pydantic errors name the field
    r = await api.client.post(
        "/solicitudes",
        headers=api.h("orders.solicitante"),
        json={
            "id_institucion": api.ids["inst"],
            "id_almacen_destino": api.ids["central"],
            "fecha_entrega_programada": "2026-05-05",
            "items": [{"id_producto": api.ids["P"], "cantidad_solicitada": 0}],
        },
    )
    body = problem(r, 422, "validation-error")
    assert body["errors"][0]["field"].endswith("items.0.cantidad_solicitada")
    # duplicate product
    r = await api.client.post(
        "/solicitudes",
        headers=api.h("orders.solicitante"),
        json={
            "id_institucion": api.ids["inst"],
            "id_almacen_destino": api.ids["central"],
            "fecha_entrega_programada": "2026-05-05",
            "items": [
                {"id_producto": api.ids["P"], "cantidad_solicitada": 1},
                {"id_producto": api.ids["P"], "cantidad_solicitada": 2},
            ],
        },
    )
    assert problem(r, 422, "PRODUCTO_DUPLICADO")["errors"][0]["field"] == "items.1.id_producto"
    # unknown product / warehouse, delivery date out of range
    r = await api.crear({"P": 1})
    assert r.status_code == 201
    r = await api.client.post(
        "/solicitudes",
        headers=api.h("orders.solicitante"),
        json={
            "id_institucion": api.ids["inst"],
            "id_almacen_destino": 999,
            "fecha_entrega_programada": "2026-05-05",
            "items": [{"id_producto": api.ids["P"], "cantidad_solicitada": 1}],
        },
    )
    problem(r, 422, "ALMACEN_DESCONOCIDO")
    r = await api.client.post(
        "/solicitudes",
        headers=api.h("orders.solicitante"),
        json={
            "id_institucion": api.ids["inst"],
            "id_almacen_destino": api.ids["central"],
            "fecha_entrega_programada": "2026-07-05",
            "items": [{"id_producto": api.ids["P"], "cantidad_solicitada": 1}],
        },
    )
    problem(r, 422, "FECHA_ENTREGA_FUERA_DE_RANGO")
    # missing justification
    sol = await api.solicitud({"P": 10})
    r = await api.validar(sol, {"P": {"cantidad_aprobada": 5}})
    assert problem(r, 422, "JUSTIFICACION_REQUERIDA")["errors"][0]["field"].endswith(
        "justificacion_codigo"
    )
    r = await api.validar(
        sol, {"P": {"cantidad_aprobada": 5, "justificacion_codigo": "NOPE", "justificacion": "x"}}
    )
    problem(r, 422, "validation-error")
    # wrong role / no token
    r = await api.client.post(
        f"/solicitudes/{sol['id']}/validar", headers=api.h("orders.solicitante"), json={"items": []}
    )
    problem(r, 403, "forbidden")
    r = await api.client.post(f"/solicitudes/{sol['id']}/validar", json={"items": []})
    problem(r, 401, "unauthorized")
    r = await api.client.get("/solicitudes/not-a-uuid", headers=api.sup)
    problem(r, 422, "validation-error")
    r = await api.client.get("/solicitudes/00000000-0000-0000-0000-000000000000", headers=api.sup)
    problem(r, 404, "SOLICITUD_NO_ENCONTRADA")
    # dispatching an unreviewed proposal
    assert (await api.validar(sol)).status_code == 200
    prop = await api.propuesta(sol["id"])
    r = await api.client.post(f"/propuestas/{prop['id']}/surtir", headers=api.sup)
    problem(r, 409, "PROPUESTA_NO_REVISADA")
    # an almacenista dispatching unpicked lines needs a Supervisor (DECIDE-B6)
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", api.h("orders.almacenista"))
    r = await api.client.post(
        f"/propuestas/{prop['id']}/surtir", headers=api.h("orders.almacenista")
    )
    problem(r, 403, "CONFIRMACION_SUPERVISOR_REQUERIDA")
    # validating twice
    r = await api.validar(sol)
    problem(r, 409, "ESTADO_INVALIDO")


async def test_edit_request_with_version(api: Api) -> None:
    sol = await api.solicitud({"P": 10})
    body = {
        "id_institucion": api.ids["inst"],
        "id_almacen_destino": api.ids["central"],
        "fecha_entrega_programada": "2026-05-06",
        "folio_pedido": "PED-E1",
        "items": [{"id_producto": api.ids["Q"], "cantidad_solicitada": 3}],
        "version": 1,
    }
    owner = api.h("orders.solicitante", sub="ana")  # who captured it (edit = own request)
    out = await api.ok("PUT", f"/solicitudes/{sol['id']}", owner, json=body)
    assert [i["id_producto"] for i in out["items"]] == [api.ids["Q"]]
    assert out["version"] == 2
    r = await api.client.put(f"/solicitudes/{sol['id']}", headers=owner, json=body)
    problem(r, 409, "VERSION_CONFLICTO")


async def test_reports_json_and_csv(api: Api) -> None:
    _, prop, _ = await f01(api)
    await api.solicitud({"Q": 2})
    pend = await api.ok("GET", "/reportes/pendientes", api.h("orders.validador"))
    assert {p["estado"] for p in pend["items"]} == {"PENDIENTE", "VALIDADA"}
    r = await api.client.get("/reportes/pendientes?formato=csv", headers=api.sup)
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0].startswith("folio,")
    cad = await api.ok("GET", "/reportes/lotes-por-caducar?dias=90", api.sup)
    assert [c["numero_lote"] for c in cad["items"]] == ["C300", "B200"]
    r = await api.client.get("/reportes/lotes-por-caducar?dias=-1", headers=api.sup)
    problem(r, 422, "validation-error")
    assert (await _revisar_y_surtir(api, prop)).status_code == 200
    fr = await api.ok("GET", "/reportes/fill-rate", api.sup)
    assert fr["fill_rate"] == "100.00"
    r = await api.client.get("/reportes/fill-rate?formato=csv", headers=api.sup)
    assert P_CLAVE in r.text


async def test_demo_seed_is_idempotent(api: Api) -> None:
    from orders import demo

    app_sessionmaker = api.app.state.sessionmaker
    await demo.seed(app_sessionmaker)
    await demo.seed(app_sessionmaker)
    out = await api.ok("GET", "/solicitudes", api.sup)
    assert sum(1 for s in out["items"] if s["folio_pedido"] == "PED-DEMO-0001") == 1
    assert date(2026, 5, 1)  # business date pinned by the autouse clock


async def test_verify_folio_and_edit_candidates(api: Api) -> None:
    sol, prop, _ = await f01(api)
    r = await api.ok("GET", "/solicitudes/verificar-folio?folio=ped-qa-0001", api.sup)
    assert r == {"existe_activo": True, "existe_cancelado": False}
    r = await api.ok(
        "GET", f"/solicitudes/verificar-folio?folio=PED-QA-0001&id_solicitud={sol['id']}", api.sup
    )
    assert r == {"existe_activo": False, "existe_cancelado": False}
    item = prop["items"][0]
    out = await api.ok(
        "GET",
        f"/propuestas/{prop['id']}/items/{item['id']}/candidatos",
        api.h("orders.almacenista"),
    )
    assert out["umbral_caducidad"] == "2026-06-30"
    assert [
        (c["numero_lote"], c["disponible"], c["requiere_override"]) for c in out["candidatos"]
    ] == [("C300", 500, True), ("B200", 0, False), ("A100", 10, False)]


def test_process_entry_point_freezes_start_up_objects(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Only the uvicorn factory (one process per app) freezes the start-up objects out of the
    GC's full passes; apps built for tests or the embedded gateway do not."""
    from fastapi import FastAPI

    from orders import main

    seen: list[bool] = []

    def fake_domain_app(settings: Any, **kwargs: Any) -> FastAPI:
        seen.append(kwargs["freeze_gc"])
        return FastAPI()

    monkeypatch.setattr(main, "create_domain_app", fake_domain_app)
    monkeypatch.setenv("ORDERS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    main.app_from_env()
    main.create_app(OrdersSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"))
    assert seen == [True, False]


# ----------------------------------------------------------------------------- Idempotency-Key


async def test_retried_request_creation_and_validation_have_one_effect(api: Api) -> None:
    await api.lote("A100", "2026-09-30", {"A-01": 60})
    ana = {**api.h("orders.solicitante", sub="ana"), "Idempotency-Key": "sol-1"}
    first = await api.crear({"P": 10}, headers=ana)
    assert first.status_code == 201, first.text
    again = await api.crear({"P": 10}, headers=ana)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    listed = await api.ok("GET", "/solicitudes", api.sup)
    items = listed["items"] if isinstance(listed, dict) else listed
    assert len(items) == 1
    problem(await api.crear({"P": 11}, headers=ana), 422, "idempotency-key-reused")

    sol = first.json()
    vale = {**api.h("orders.validador", sub="vale"), "Idempotency-Key": "val-1"}
    url = f"/solicitudes/{sol['id']}/validar"
    v1 = await api.client.post(url, headers=vale, json={"items": []})
    assert v1.status_code == 200, v1.text
    v2 = await api.client.post(url, headers=vale, json={"items": []})
    assert v2.status_code == 200, "a replay, not 409 'already validated'"
    assert v2.headers["idempotent-replayed"] == "true"
    assert v2.json() == v1.json()
    prop = await api.propuesta(sol["id"])
    assert lineas(prop) == [("A100", "A-01", 10)]
    # without the key the second validation is a real second attempt: refused by the state rule
    r = await api.client.post(
        url, headers=api.h("orders.validador", sub="vale"), json={"items": []}
    )
    assert r.status_code == 409, r.text
