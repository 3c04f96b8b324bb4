"""Issue 15 item 6 (second half): a proposal that cannot be generated is visible — the request
goes to PROPUESTA_FALLIDA with the reason code and text (its detail, the list, and the proposal
read, which answers 409 with the reason instead of a bare 404), and is retried or cancelled.

The failure is injected at the consumer's seam: the app's `StockStore` (chosen once by
`create_app` and bound into the RequestValidated consumer) is wrapped by one that can fail,
while the database, the runner, its retries and its dead-letter path stay real (SQLite and
PostgreSQL, in-memory broker)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from typing import Any

import httpx
import pytest

from nexo_testing import app_client, bearer
from orders import domain as d
from orders import main
from orders.adapters.store import LecturaFefo, StockStore, stock_store_for_url
from orders.settings import OrdersSettings

SOL, VAL, SUP = "orders.solicitante", "orders.validador", "orders.supervisor"
PROBLEM = "application/problem+json"


class FallibleStore:
    """The real store, except that `reservar_varios` raises `fallo` while it is set."""

    def __init__(self, real: StockStore) -> None:
        self.real = real
        self.fallo: BaseException | None = None
        self.intentos = 0

    async def leer_fefo(
        self, session: Any, requeridos: Mapping[int, int], almacen_id: int, umbral: date
    ) -> LecturaFefo:
        return await self.real.leer_fefo(session, requeridos, almacen_id, umbral)

    async def reservar_varios(self, session: Any, deltas: Sequence[tuple[int, int]]) -> None:
        if self.fallo is not None:
            self.intentos += 1
            raise self.fallo
        await self.real.reservar_varios(session, deltas)

    async def insertar_propuesta(self, session: Any, *args: Any) -> None:
        await self.real.insertar_propuesta(session, *args)


class Api:
    def __init__(
        self, client: httpx.AsyncClient, settings: OrdersSettings, store: FallibleStore
    ) -> None:
        self.client, self.settings, self.store = client, settings, store
        self.ids: dict[str, int] = {}

    async def call(self, method: str, url: str, role: str = SUP, **kw: Any) -> httpx.Response:
        headers = bearer(self.settings, role.split(".")[1], role)
        return await self.client.request(method, url, headers=headers, **kw)

    async def ok(self, method: str, url: str, role: str = SUP, **kw: Any) -> Any:
        r = await self.call(method, url, role, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json()

    async def setup(self) -> None:
        inst = await self.ok("POST", "/instituciones", json={"clue": "QA001", "denominacion": "QA"})
        alm = await self.ok(
            "POST",
            "/almacenes",
            json={"id_institucion": inst["id"], "nombre": "C", "codigo": "C", "es_central": True},
        )
        ub = await self.ok("POST", "/ubicaciones", json={"id_almacen": alm["id"], "codigo": "A-01"})
        prod = await self.ok("POST", "/productos", json={"clave_cnis": "010.000.0104.00"})
        lote = await self.ok(
            "POST",
            "/lotes",
            json={
                "id_producto": prod["id"],
                "id_institucion": inst["id"],
                "numero_lote": "L1",
                "fecha_caducidad": "2026-12-31",
                "ubicaciones": [{"id_ubicacion": ub["id"], "cantidad": 50}],
            },
        )
        self.ids.update(inst=inst["id"], alm=alm["id"], P=prod["id"], lote=lote["id"])

    async def validada(self, cantidad: int) -> dict[str, Any]:
        sol: dict[str, Any] = await self.ok(
            "POST",
            "/solicitudes",
            SOL,
            json={
                "id_institucion": self.ids["inst"],
                "id_almacen_destino": self.ids["alm"],
                "fecha_entrega_programada": "2026-05-05",
                "items": [{"id_producto": self.ids["P"], "cantidad_solicitada": cantidad}],
            },
        )
        out = await self.ok("POST", f"/solicitudes/{sol['id']}/validar", VAL, json={"items": []})
        assert out["estado"] == "VALIDADA"
        return sol

    async def hasta_estado(self, sol_id: str, estado: str, wait: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        while True:
            out: dict[str, Any] = await self.ok("GET", f"/solicitudes/{sol_id}")
            if out["estado"] == estado:
                return out
            assert time.monotonic() < deadline, f"{sol_id} still {out['estado']}, not {estado}"
            await asyncio.sleep(0.02)

    async def propuesta(self, sol_id: str, wait: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        while True:
            r = await self.call("GET", f"/solicitudes/{sol_id}/propuesta")
            if r.status_code == 200:
                return dict(r.json())
            assert r.status_code == 404, r.text
            assert time.monotonic() < deadline, f"no proposal for {sol_id}"
            await asyncio.sleep(0.02)

    async def reservado(self) -> int:
        lote = await self.ok("GET", f"/lotes/{self.ids['lote']}")
        return int(lote["cantidad_reservada"])


@pytest.fixture
async def api(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    store = FallibleStore(stock_store_for_url(database_url))
    monkeypatch.setattr(main, "stock_store_for_url", lambda url: store)
    settings = OrdersSettings(env="test", database_url=database_url, transport="memory")
    async with app_client(main.create_app(settings), "http://orders") as client:
        a = Api(client, settings, store)
        await a.setup()
        yield a


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = dict(r.json())
    assert body["type"].endswith("/" + code), body
    return body


@pytest.mark.spec("B.3.1")
async def test_a_permanent_generation_error_shows_on_the_request_and_a_retry_generates(
    api: Api,
) -> None:
    api.store.fallo = d.DomainError("DATOS_INCONSISTENTES", "Existencias incoherentes en A-01.")
    sol = await api.validada(10)
    out = await api.hasta_estado(sol["id"], "PROPUESTA_FALLIDA")
    assert (out["fallo_propuesta_codigo"], out["fallo_propuesta"]) == (
        "DATOS_INCONSISTENTES",
        "Existencias incoherentes en A-01.",
    )
    assert out["id_propuesta_activa"] is None
    assert api.store.intentos == 1  # a rule violation is not retried
    # the proposal read says why, not a bare 404
    body = problem(
        await api.call("GET", f"/solicitudes/{sol['id']}/propuesta"), 409, "PROPUESTA_FALLIDA"
    )
    assert (body["motivo_codigo"], body["motivo"]) == (
        "DATOS_INCONSISTENTES",
        "Existencias incoherentes en A-01.",
    )
    # the list shows it, and filters on it
    lista = await api.ok("GET", "/solicitudes", params={"estado": "PROPUESTA_FALLIDA"})
    assert [(s["id"], s["fallo_propuesta_codigo"]) for s in lista["items"]] == [
        (sol["id"], "DATOS_INCONSISTENTES")
    ]
    assert await api.reservado() == 0  # the failed attempt reserved nothing

    # the way out: the cause fixed, a retry generates the proposal
    r = await api.call("POST", f"/solicitudes/{sol['id']}/reintentar-propuesta", SOL)
    assert r.status_code == 403, r.text
    api.store.fallo = None
    out = await api.ok("POST", f"/solicitudes/{sol['id']}/reintentar-propuesta", VAL)
    assert (out["estado"], out["fallo_propuesta_codigo"], out["fallo_propuesta"]) == (
        "VALIDADA",
        None,
        None,
    )
    prop = await api.propuesta(sol["id"])
    assert prop["estado"] == "GENERADA"
    assert prop["total_propuesto"] == 10
    assert await api.reservado() == 10
    problem(
        await api.call("POST", f"/solicitudes/{sol['id']}/reintentar-propuesta", VAL),
        409,
        "ESTADO_INVALIDO",
    )


@pytest.mark.spec("B.3.1")
async def test_retries_exhausted_show_the_error_and_the_request_can_be_cancelled(
    api: Api,
) -> None:
    api.store.fallo = RuntimeError("disco lleno")
    sol = await api.validada(5)
    out = await api.hasta_estado(sol["id"], "PROPUESTA_FALLIDA")
    assert out["fallo_propuesta_codigo"] == "ERROR_GENERACION"
    assert "RuntimeError: disco lleno" in out["fallo_propuesta"]
    assert api.store.intentos == 5  # the runner's attempts, then the hook and the DLQ
    detalle = await api.ok("GET", f"/solicitudes/{sol['id']}")
    assert detalle["fallo_propuesta_codigo"] == "ERROR_GENERACION"

    out = await api.ok("POST", f"/solicitudes/{sol['id']}/cancelar", SUP, json={"motivo": "baja"})
    assert out["estado"] == "CANCELADA"
    problem(
        await api.call("POST", f"/solicitudes/{sol['id']}/reintentar-propuesta", VAL),
        409,
        "ESTADO_INVALIDO",
    )
    assert await api.reservado() == 0
