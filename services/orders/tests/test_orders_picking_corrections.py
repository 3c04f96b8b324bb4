"""Issue 15 item 3: picking corrections through the API on SQLite and PostgreSQL — a line's
quantity within 0 ≤ nueva ≤ libre + actual (0 releases it), its lot/location corrected, a pick
undone — with every stock row's reservation equal to Σ its active lines after each step."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from nexo_testing import app_client, bearer
from orders.main import create_app
from orders.models import LoteAsignado, LoteUbicacion
from orders.settings import OrdersSettings
from service_defaults.db import create_engine, session_factory

SOL, VAL, ALM, SUP = (
    "orders.solicitante",
    "orders.validador",
    "orders.almacenista",
    "orders.supervisor",
)
PROBLEM = "application/problem+json"


class Api:
    def __init__(self, client: httpx.AsyncClient, settings: OrdersSettings) -> None:
        self.client, self.settings = client, settings
        self.ids: dict[str, int] = {}
        self.ubicaciones: dict[str, int] = {}

    def h(self, role: str) -> dict[str, str]:
        return bearer(self.settings, role.split(".")[1], role)

    async def call(self, method: str, url: str, role: str = ALM, **kw: Any) -> httpx.Response:
        return await self.client.request(method, url, headers=self.h(role), **kw)

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
        self.ids.update(inst=inst["id"], alm=alm["id"])
        for key, clave in (("P", "010.000.0104.00"), ("Q", "010.000.0105.00")):
            self.ids[key] = (await self.ok("POST", "/productos", json={"clave_cnis": clave}))["id"]

    async def lote(self, numero: str, cad: str, codigo: str, cantidad: int, prod: str = "P") -> int:
        """A lot with stock at one location; returns its lote_ubicacion id."""
        if codigo not in self.ubicaciones:
            ub = await self.ok(
                "POST", "/ubicaciones", json={"id_almacen": self.ids["alm"], "codigo": codigo}
            )
            self.ubicaciones[codigo] = ub["id"]
        lote = await self.ok(
            "POST",
            "/lotes",
            json={
                "id_producto": self.ids[prod],
                "id_institucion": self.ids["inst"],
                "numero_lote": numero,
                "fecha_caducidad": cad,
                "ubicaciones": [{"id_ubicacion": self.ubicaciones[codigo], "cantidad": cantidad}],
            },
        )
        return int(lote["ubicaciones"][0]["id_lote_ubicacion"])

    async def propuesta(self, cantidad: int, *, revisar: bool = True) -> dict[str, Any]:
        """A validated request for `cantidad` of P, its proposal (reviewed unless told)."""
        sol = await self.ok(
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
        await self.ok("POST", f"/solicitudes/{sol['id']}/validar", VAL, json={"items": []})
        deadline = time.monotonic() + 10
        while True:
            r = await self.call("GET", f"/solicitudes/{sol['id']}/propuesta", SUP)
            if r.status_code == 200:
                break
            assert r.status_code == 404, r.text
            assert time.monotonic() < deadline, "no proposal within 10 s"
            await asyncio.sleep(0.01)
        prop: dict[str, Any] = r.json()
        if revisar:
            prop = await self.ok("POST", f"/propuestas/{prop['id']}/revisar", ALM)
        return prop

    async def reservas_exactas(self) -> dict[int, int]:
        """Assert every stock row's reservation = Σ its active lines; return the reservations."""
        engine = create_engine(self.settings.database_url)
        try:
            async with session_factory(engine)() as s:
                reservado = dict(
                    (
                        await s.execute(select(LoteUbicacion.id, LoteUbicacion.cantidad_reservada))
                    ).all()
                )
                lineas = dict(
                    (
                        await s.execute(
                            select(
                                LoteAsignado.lote_ubicacion_id,
                                func.sum(LoteAsignado.cantidad_asignada),
                            )
                            .where(LoteAsignado.estado_linea.in_(["RESERVADA", "RECOGIDA"]))
                            .group_by(LoteAsignado.lote_ubicacion_id)
                        )
                    ).all()
                )
        finally:
            await engine.dispose()
        assert reservado == {lu: int(lineas.get(lu, 0)) for lu in reservado}
        return reservado


def lineas(prop: dict[str, Any]) -> dict[int, tuple[str, int, str]]:
    """Active lines by lote_ubicacion: (id, cantidad, estado)."""
    return {
        ln["id_lote_ubicacion"]: (ln["id"], ln["cantidad_asignada"], ln["estado_linea"])
        for it in prop["items"]
        for ln in it["lotes"]
        if ln["estado_linea"] != "LIBERADA"
    }


def problem(r: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/" + code), body
    if field is not None:
        assert body.get("field") == field, body


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = OrdersSettings(env="test", database_url=database_url, transport="memory")
    async with app_client(create_app(settings), "http://orders") as client:
        a = Api(client, settings)
        await a.setup()
        yield a


@pytest.mark.spec("B.4.7", "B.4.3")
async def test_quantity_correction_is_bounded_by_free_plus_current_and_zero_releases(
    api: Api,
) -> None:
    a01 = await api.lote("L1", "2026-09-30", "A-01", 20)
    b01 = await api.lote("L2", "2026-12-31", "B-01", 50)
    x = await api.propuesta(30)  # A-01 20, B-01 10
    assert {lu: c for lu, (_, c, _) in lineas(x).items()} == {a01: 20, b01: 10}
    await api.propuesta(25)  # another proposal takes B-01 25: free(B-01) = 50 - 35 = 15
    assert (await api.reservas_exactas())[b01] == 35
    url = f"/propuestas/{x['id']}/lineas"
    la, lb = lineas(x)[a01][0], lineas(x)[b01][0]

    # 0 releases the line and its reservation
    out = await api.ok("PUT", f"{url}/{la}/cantidad", ALM, json={"cantidad": 0})
    assert a01 not in lineas(out)
    assert (await api.reservas_exactas())[a01] == 0
    (item,) = out["items"]
    assert (item["cantidad_propuesta"], item["cantidad_pendiente"]) == (10, 20)
    assert out["total_propuesto"] == 10

    # the bound: free (15) + current (10) = 25
    limites = await api.ok("GET", f"{url}/{lb}/limites", ALM)
    assert (limites["minimo"], limites["maximo"], limites["libre_ubicacion"]) == (0, 25, 15)
    problem(
        await api.call("PUT", f"{url}/{lb}/cantidad", json={"cantidad": 26}),
        409,
        "STOCK_INSUFICIENTE",
        "cantidad",
    )
    problem(
        await api.call("PUT", f"{url}/{lb}/cantidad", json={"cantidad": 31}),
        422,
        "EXCEDE_APROBADO",
        "cantidad",
    )
    assert (await api.reservas_exactas())[b01] == 35  # refusals change nothing
    out = await api.ok("PUT", f"{url}/{lb}/cantidad", ALM, json={"cantidad": 25})
    assert lineas(out)[b01][1] == 25
    (item,) = out["items"]
    assert (item["cantidad_propuesta"], item["cantidad_pendiente"], item["estado"]) == (
        25,
        5,
        "PARCIAL",
    )
    assert out["version"] > x["version"]
    reservas = await api.reservas_exactas()
    assert reservas[b01] == 50  # exactly the stock, never more
    # the stock row is full: a decrease is always allowed
    out = await api.ok("PUT", f"{url}/{lb}/cantidad", ALM, json={"cantidad": 24})
    assert (await api.reservas_exactas())[b01] == 49


@pytest.mark.spec("HO-D32", "B.4.4", "B.4.3")
async def test_moving_a_line_to_another_lot_checks_eligibility_and_the_targets_free_stock(
    api: Api,
) -> None:
    a01 = await api.lote("L1", "2026-09-30", "A-01", 20)
    c01 = await api.lote("L3", "2026-12-31", "C-01", 12)
    corto = await api.lote("L4", "2026-06-15", "D-01", 50)  # ≤ today + 60: needs an override
    otro = await api.lote("Q1", "2026-12-31", "E-01", 50, prod="Q")
    x = await api.propuesta(15)  # A-01 15
    linea = lineas(x)[a01][0]
    url = f"/propuestas/{x['id']}/lineas/{linea}/mover"

    problem(
        await api.call("POST", url, json={"id_lote_ubicacion": otro}),
        422,
        "PRODUCTO_NO_COINCIDE",
        "id_lote_ubicacion",
    )
    problem(
        await api.call("POST", url, json={"id_lote_ubicacion": corto}),
        422,
        "CADUCIDAD_MINIMA",
        "id_lote_ubicacion",
    )
    problem(  # the target's bound: 12 free
        await api.call("POST", url, json={"id_lote_ubicacion": c01}),
        409,
        "STOCK_INSUFICIENTE",
        "cantidad",
    )
    assert (await api.reservas_exactas())[a01] == 15

    out = await api.ok("POST", url, ALM, json={"id_lote_ubicacion": c01, "cantidad": 12})
    assert {lu: c for lu, (_, c, _) in lineas(out).items()} == {c01: 12}
    reservas = await api.reservas_exactas()
    assert (reservas[a01], reservas[c01]) == (0, 12)
    (item,) = out["items"]
    assert (item["cantidad_propuesta"], item["cantidad_pendiente"]) == (12, 3)

    # a Supervisor may move to the short-dated lot with a reason; back to A-01 reuses its row
    nueva = lineas(out)[c01][0]
    url = f"/propuestas/{x['id']}/lineas/{nueva}/mover"
    out = await api.ok(
        "POST",
        url,
        SUP,
        json={"id_lote_ubicacion": corto, "cantidad": 3, "motivo_override": "urgente"},
    )
    moved = next(
        ln for it in out["items"] for ln in it["lotes"] if ln["id_lote_ubicacion"] == corto
    )
    assert (moved["cantidad_asignada"], moved["override_caducidad"]) == (3, True)
    url = f"/propuestas/{x['id']}/lineas/{moved['id']}/mover"
    out = await api.ok("POST", url, ALM, json={"id_lote_ubicacion": a01, "cantidad": 15})
    assert {lu: c for lu, (_, c, _) in lineas(out).items()} == {a01: 15}
    assert lineas(out)[a01][0] == linea  # the item's row on A-01, reserved again
    reservas = await api.reservas_exactas()
    assert (reservas[a01], reservas[c01], reservas[corto]) == (15, 0, 0)


@pytest.mark.spec("B.4.7", "HO-D04")
async def test_undoing_a_pick_makes_the_line_correctable_again(api: Api) -> None:
    a01 = await api.lote("L1", "2026-09-30", "A-01", 20)
    x = await api.propuesta(8)
    linea = lineas(x)[a01][0]
    base = f"/propuestas/{x['id']}/lineas/{linea}"
    await api.ok("POST", f"{base}/recoger", ALM)
    sol = await api.ok("GET", f"/solicitudes/{x['id_solicitud']}")
    assert sol["estado"] == "PREPARADA"
    problem(
        await api.call("PUT", f"{base}/cantidad", json={"cantidad": 5}),
        409,
        "LINEA_RECOGIDA",
        "id_linea",
    )
    assert (await api.reservas_exactas())[a01] == 8  # a picked line still reserves

    out = await api.ok("POST", f"{base}/deshacer-recogida", ALM)
    assert lineas(out)[a01] == (linea, 8, "RESERVADA")
    assert out["estado"] == "EN_SURTIMIENTO"
    sol = await api.ok("GET", f"/solicitudes/{x['id_solicitud']}")
    assert sol["estado"] == "EN_PREPARACION"
    assert (await api.reservas_exactas())[a01] == 8
    problem(await api.call("POST", f"{base}/deshacer-recogida"), 409, "LINEA_NO_RECOGIDA")

    out = await api.ok("PUT", f"{base}/cantidad", ALM, json={"cantidad": 5})
    assert lineas(out)[a01][1] == 5
    assert (await api.reservas_exactas())[a01] == 5
    # picked again, then dispatched: 5 issued
    await api.ok("POST", f"{base}/recoger", ALM)
    done = await api.ok("POST", f"/propuestas/{x['id']}/surtir", ALM)
    assert done["items"][0]["cantidad_surtida"] == 5


@pytest.mark.spec("B.4.4", "HO-D28")
async def test_corrections_are_refused_outside_picking(api: Api) -> None:
    a01 = await api.lote("L1", "2026-09-30", "A-01", 20)
    generada = await api.propuesta(4, revisar=False)
    linea = lineas(generada)[a01][0]
    r = await api.call(
        "PUT", f"/propuestas/{generada['id']}/lineas/{linea}/cantidad", json={"cantidad": 2}
    )
    problem(r, 409, "ESTADO_INVALIDO")
    assert r.json()["estado_actual"] == "GENERADA"

    x = await api.propuesta(6)
    lx = lineas(x)[a01][0]
    await api.ok("POST", f"/propuestas/{x['id']}/surtir", SUP)
    problem(
        await api.call("PUT", f"/propuestas/{x['id']}/lineas/{lx}/cantidad", json={"cantidad": 1}),
        409,
        "YA_SURTIDA",
    )
    problem(
        await api.call("POST", f"/propuestas/{x['id']}/lineas/{lx}/deshacer-recogida"),
        409,
        "YA_SURTIDA",
    )
    # the dispatched stock left: 20 - 6 = 14 physical, 4 still reserved by the GENERADA one
    assert (await api.reservas_exactas())[a01] == 4
    problem(
        await api.call(
            "PUT", f"/propuestas/{generada['id']}/lineas/{lx}/cantidad", json={"cantidad": 1}
        ),
        409,
        "ESTADO_INVALIDO",
    )


@pytest.mark.spec("B.4.3", "0.3.5")
async def test_two_corrections_racing_for_the_same_free_stock_never_over_reserve(
    api: Api,
) -> None:
    a01 = await api.lote("L1", "2026-09-30", "A-01", 30)
    x = await api.propuesta(20)
    x["lineas"] = lineas(x)[a01][0]
    await api.ok(
        "PUT", f"/propuestas/{x['id']}/lineas/{x['lineas']}/cantidad", ALM, json={"cantidad": 5}
    )
    y = await api.propuesta(30)  # 5 + 25 reserved
    ly = lineas(y)[a01][0]
    await api.ok("PUT", f"/propuestas/{y['id']}/lineas/{ly}/cantidad", ALM, json={"cantidad": 15})
    # 10 free now; each correction asks for 10 more: only one fits
    rs = await asyncio.gather(
        api.call(
            "PUT", f"/propuestas/{x['id']}/lineas/{x['lineas']}/cantidad", json={"cantidad": 15}
        ),
        api.call("PUT", f"/propuestas/{y['id']}/lineas/{ly}/cantidad", json={"cantidad": 25}),
    )
    codes = sorted(r.status_code for r in rs)
    assert codes[0] == 200, [r.text for r in rs]
    # PostgreSQL: the loser waits on the row lock and re-reads (409); SQLite may also answer a
    # writer that lost the database lock with 503 (database busy) — refused either way
    refusals = {409} if api.settings.database_url.startswith("postgresql") else {409, 503}
    assert codes[1] in refusals, [r.text for r in rs]
    reservas = await api.reservas_exactas()
    assert reservas[a01] == 30  # 15 + 15 or 25 + 5: exactly the stock
