"""Issue 15 item 1: the CSV upload of request items (§B.4.7, §B.2.9, HO-D25) — the domain
parser on the legacy bytes (encodings, BOM, header variants, sums, each error code, the limit)
and upload → preview → save → error log through the API on SQLite and PostgreSQL, plus the
product lookup by clave and name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from nexo_testing import app_client, bearer
from orders.application import clock
from orders.domain import csv_upload as csvu
from orders.main import create_app
from orders.models import Producto
from orders.settings import OrdersSettings
from service_defaults.db import create_engine, session_factory

P, Q, R = "010.000.0104.00", "010.000.0105.00", "060.308.0177"
CATALOGO = {P: 1, Q: 2, R: 3}
HEADER = "CLAVE,CANTIDAD SOLICITADA,FOLIO\r\n"


def _csv(*rows: str, header: str = HEADER) -> str:
    return header + "".join(r + "\r\n" for r in rows)


# ------------------------------------------------------------------------------ domain


def test_utf8_bom_file_is_read_and_the_bom_dropped() -> None:
    data = _csv(f"{P},10,PED-Núm-1").encode("utf-8-sig")
    assert data.startswith(b"\xef\xbb\xbf")
    a = csvu.leer(data)
    assert a.codificacion == "utf-8-sig"
    assert a.folio == "PED-Núm-1"
    assert a.filas == [csvu.Fila(2, P, "10")]


def test_plain_utf8_latin1_and_cp1252_files_keep_their_accents() -> None:
    text = _csv(f"{P},5,Pedido Peñasco")
    assert csvu.leer(text.encode("utf-8")).folio == "Pedido Peñasco"
    latin = csvu.leer(text.encode("latin-1"))
    assert (latin.codificacion, latin.folio) == ("latin-1", "Pedido Peñasco")
    # cp1252-only characters (curly quotes, en dash) are read as cp1252, not as C1 controls
    cp = _csv(f"{P},5,“Sección” – Pediatría").encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        cp.decode("utf-8")
    a = csvu.leer(cp)
    assert (a.codificacion, a.folio) == ("cp1252", "“Sección” – Pediatría")


def test_header_variants() -> None:
    # blanks and case around the names, no FOLIO column, extra columns in another order
    a = csvu.leer(b" cantidad solicitada ;Descripcion; Clave \n7;algo;" + P.encode() + b"\n")
    assert a.folio is None
    assert a.filas == [csvu.Fila(2, P, "7")]
    a = csvu.leer(f"X,CLAVE,CANTIDAD SOLICITADA\n1,{Q},3\n".encode())
    assert a.filas == [csvu.Fila(2, Q, "3")]
    with pytest.raises(csvu.ArchivoInvalido) as e:
        csvu.leer(b"CLAVE,CANTIDAD\nX,1\n")
    assert e.value.code == "CSV_ENCABEZADO_INVALIDO"
    assert e.value.extensions["columnas_faltantes"] == ["CANTIDAD SOLICITADA"]
    assert e.value.extensions["field"] == "archivo"
    with pytest.raises(csvu.ArchivoInvalido) as e:
        csvu.leer(b"")
    assert e.value.code == "CSV_VACIO"


def test_folio_is_the_first_non_empty_value() -> None:
    a = csvu.leer(_csv(f"{P},1,", f"{Q},1,F-2", f"{R},1,F-3").encode())
    assert a.folio == "F-2"


def test_outcomes_sums_and_each_error_code() -> None:
    data = _csv(
        f"{P},10,",
        f"{Q},3,",
        f"{P},5,",  # summed with line 2
        "NOPE-1,4,",  # unknown clave
        f"{Q},0,",  # zero: refused (HO-D25)
        f"{Q},-2,",
        f"{Q},2.5,",
        f"{Q},abc,",
        ",7,",  # empty clave: skipped
        f"{R},,",  # empty quantity: skipped
        ",,",  # blank row: not a line at all
    ).encode()
    res = csvu.evaluar(csvu.leer(data).filas, CATALOGO)
    assert [(i.clave, i.cantidad, i.producto_id) for i in res.items] == [(P, 15, 1), (Q, 3, 2)]
    estados = {ln.linea: ln.estado.value for ln in res.lineas}
    assert estados == {
        2: "OK",
        3: "OK",
        4: "OK",
        5: "CLAVE_NO_EXISTE",
        6: "CANTIDAD_INVALIDA",
        7: "CANTIDAD_INVALIDA",
        8: "CANTIDAD_INVALIDA",
        9: "CANTIDAD_INVALIDA",
        10: "OMITIDA",
        11: "OMITIDA",
    }
    assert [e.linea for e in res.errores] == [5, 6, 7, 8, 9]


def test_a_sum_beyond_the_quantity_bound_is_refused_on_the_line_that_passes_it() -> None:
    res = csvu.evaluar(
        [csvu.Fila(2, P, "999999"), csvu.Fila(3, P, "2"), csvu.Fila(4, P, "1")], CATALOGO
    )
    assert [ln.estado.value for ln in res.lineas] == ["OK", "CANTIDAD_INVALIDA", "OK"]
    assert res.items[0].cantidad == 1_000_000


def _many(n: int) -> str:
    return _csv(*(f"C{i:05d},1," for i in range(n)))


def test_limit_of_distinct_valid_claves() -> None:
    catalogo = {f"C{i:05d}": i + 1 for i in range(csvu.MAX_CLAVES + 1)}
    ok = csvu.evaluar(csvu.leer(_many(csvu.MAX_CLAVES).encode()).filas, catalogo)
    assert len(ok.items) == csvu.MAX_CLAVES
    # repeated claves and refused lines do not count
    rep = _many(csvu.MAX_CLAVES) + "C00000,1,\r\nNOPE,1,\r\n"
    assert len(csvu.evaluar(csvu.leer(rep.encode()).filas, catalogo).items) == csvu.MAX_CLAVES
    with pytest.raises(csvu.CargaExcedeLimite) as e:
        csvu.evaluar(csvu.leer(_many(csvu.MAX_CLAVES + 1).encode()).filas, catalogo)
    assert e.value.status == 413
    assert e.value.extensions["limite"] == csvu.MAX_CLAVES


# ------------------------------------------------------------------------------ API

SOL = "orders.solicitante"
CSV_H = {"content-type": "text/csv"}


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: OrdersSettings
    ids: dict[str, int] = field(default_factory=dict)

    def h(self, *roles: str, sub: str = "ana") -> dict[str, str]:
        return bearer(self.settings, sub, *roles)

    async def ok(self, method: str, url: str, headers: dict[str, str], **kw: Any) -> Any:
        r = await self.client.request(method, url, headers=headers, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json() if r.content else None

    async def setup(self) -> None:
        sup = self.h("orders.supervisor", sub="super")
        inst = await self.ok(
            "POST", "/instituciones", sup, json={"clue": "QA1", "denominacion": "H"}
        )
        alm = await self.ok(
            "POST",
            "/almacenes",
            sup,
            json={"id_institucion": inst["id"], "nombre": "Central", "codigo": "C"},
        )
        self.ids |= {"inst": inst["id"], "alm": alm["id"]}
        for clave, desc in ((P, "Paracetamol 500 mg"), (Q, "Jeringa estéril"), (R, "Gasa")):
            prod = await self.ok(
                "POST", "/productos", sup, json={"clave_cnis": clave, "descripcion": desc}
            )
            self.ids[clave] = prod["id"]

    async def upload(self, data: bytes, sub: str = "ana") -> httpx.Response:
        return await self.client.post(
            "/cargas-csv", content=data, headers=self.h(SOL, sub=sub) | CSV_H
        )

    def header(self, **kw: Any) -> dict[str, Any]:
        return {
            "id_institucion": self.ids["inst"],
            "id_almacen_destino": self.ids["alm"],
            "fecha_entrega_programada": "2026-05-05",
        } | kw


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = OrdersSettings(env="test", database_url=database_url, transport="memory")
    async with app_client(create_app(settings), "http://orders") as client:
        a = Api(client, settings)
        await a.setup()
        yield a


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + code), body
    return body


async def test_upload_preview_save_and_error_log(api: Api) -> None:
    rows = [f"{P},10,PED-Núm-7", f"{Q},2,", f"{P},5,", "NOPE,1,", f"{Q},0,", f"{R},x,"]
    rows += [f"{R},1,"] * 30  # 30 lines of one clave: summed
    data = _csv(*rows).encode("cp1252")
    r = await api.upload(data)
    assert r.status_code == 201, r.text
    carga = r.json()
    assert carga["codificacion"] == "latin-1"
    assert carga["folio"] == "PED-Núm-7"
    assert (carga["total_lineas"], carga["total_items"], carga["total_errores"]) == (36, 3, 3)
    assert [(f["clave"], f["cantidad_solicitada"]) for f in carga["filas"]] == [
        (P, 15),
        (Q, 2),
        (R, 30),
    ]
    assert carga["filas"][1]["descripcion"] == "Jeringa estéril"
    # the preview pages; another user does not see the upload; nothing logged yet
    url = f"/cargas-csv/{carga['id']}"
    page = await api.ok("GET", url, api.h(SOL), params={"vista": "errores", "limit": 2})
    assert [(f["linea"], f["tipo_error"]) for f in page["filas"]] == [
        (5, "CLAVE_NO_EXISTE"),
        (6, "CANTIDAD_INVALIDA"),
    ]
    page = await api.ok(
        "GET", url, api.h(SOL), params={"vista": "errores", "limit": 2, "offset": 2}
    )
    assert [(f["linea"], f["cantidad"]) for f in page["filas"]] == [(7, "x")]
    problem(await api.client.get(url, headers=api.h(SOL, sub="otro")), 404, "CARGA_NO_ENCONTRADA")
    r = await api.client.get(url, headers=api.h(SOL), params={"limit": 26})
    assert r.status_code == 422  # the page size is 25

    # save: the file's FOLIO is used when none is given; the upload is gone afterwards
    sol = await api.ok("POST", f"{url}/guardar", api.h(SOL), json=api.header())
    assert sol["folio_pedido"] == "PED-Núm-7"
    assert sol["errores_registrados"] == 3
    assert sol["usuario_solicitante"] == "ana"
    assert sol["estado"] == "PENDIENTE"
    got = {i["id_producto"]: i["cantidad_solicitada"] for i in sol["items"]}
    assert got == {api.ids[P]: 15, api.ids[Q]: 2, api.ids[R]: 30}
    problem(await api.client.get(url, headers=api.h(SOL)), 404, "CARGA_NO_ENCONTRADA")

    log = await api.ok("GET", f"/solicitudes/{sol['id']}/errores-carga", api.h("orders.validador"))
    assert log["total"] == 3
    assert [
        (e["linea"], e["tipo_error"], e["clave_solicitada"], e["cantidad_solicitada"])
        for e in log["items"]
    ] == [
        (5, "CLAVE_NO_EXISTE", "NOPE", "1"),
        (6, "CANTIDAD_INVALIDA", Q, "0"),
        (7, "CANTIDAD_INVALIDA", R, "x"),
    ]
    assert all(e["usuario"] == "ana" for e in log["items"])


async def test_no_log_before_save_and_a_discarded_upload_logs_nothing(api: Api) -> None:
    sol = await api.ok(
        "POST",
        "/solicitudes",
        api.h(SOL),
        json=api.header(items=[{"id_producto": api.ids[P], "cantidad_solicitada": 1}]),
    )
    carga = (await api.upload(_csv("NOPE,1,", f"{P},1,").encode("utf-8-sig"))).json()
    assert carga["codificacion"] == "utf-8-sig"
    assert carga["total_errores"] == 1
    r = await api.client.delete(f"/cargas-csv/{carga['id']}", headers=api.h(SOL))
    assert r.status_code == 204
    problem(
        await api.client.post(
            f"/cargas-csv/{carga['id']}/guardar", headers=api.h(SOL), json=api.header()
        ),
        404,
        "CARGA_NO_ENCONTRADA",
    )
    log = await api.ok("GET", f"/solicitudes/{sol['id']}/errores-carga", api.h(SOL))
    assert log == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_upload_errors_are_problems_naming_the_field(api: Api) -> None:
    body = problem(await api.upload(b"CLAVE;CANT\nX;1\n"), 422, "CSV_ENCABEZADO_INVALIDO")
    assert body["field"] == "archivo"
    assert body["columnas_faltantes"] == ["CANTIDAD SOLICITADA"]
    data = _csv(*(f"C{i:05d},1," for i in range(csvu.MAX_CLAVES + 1))).encode()
    # unknown claves do not count toward the limit: this file only has error lines
    assert (await api.upload(data)).status_code == 201
    # a file with no valid line cannot be saved
    carga = (await api.upload(_csv("NOPE,3,").encode())).json()
    body = problem(
        await api.client.post(
            f"/cargas-csv/{carga['id']}/guardar", headers=api.h(SOL), json=api.header()
        ),
        422,
        "CARGA_SIN_ITEMS",
    )
    assert body["field"] == "id_carga"
    # the request's rules still apply on save (folio duplicated, unknown institution)
    carga = (await api.upload(_csv(f"{P},3,").encode())).json()
    r = await api.client.post(
        f"/cargas-csv/{carga['id']}/guardar",
        headers=api.h(SOL),
        json=api.header(id_institucion=999_999),
    )
    body = problem(r, 422, "INSTITUCION_DESCONOCIDA")
    assert body["field"] == "id_institucion"
    assert (await api.ok("GET", f"/cargas-csv/{carga['id']}", api.h(SOL)))["total_items"] == 1


async def test_upload_beyond_the_limit_names_it(api: Api, database_url: str) -> None:
    n = csvu.MAX_CLAVES + 1
    engine = create_engine(database_url)  # 10,001 products: straight into the catalogue
    try:
        async with session_factory(engine)() as s:
            s.add_all(Producto(clave_cnis=f"L{i:05d}", descripcion="") for i in range(n))
            await s.commit()
    finally:
        await engine.dispose()
    data = _csv(*(f"L{i:05d},1," for i in range(n))).encode()
    body = problem(await api.upload(data), 413, "CARGA_EXCEDE_LIMITE")
    assert body["limite"] == csvu.MAX_CLAVES
    assert body["field"] == "archivo"
    assert str(csvu.MAX_CLAVES) in body["detail"]
    # exactly the limit is accepted
    data = _csv(*(f"L{i:05d},1," for i in range(csvu.MAX_CLAVES))).encode()
    r = await api.upload(data)
    assert r.status_code == 201
    assert r.json()["total_items"] == csvu.MAX_CLAVES


async def test_roles_follow_request_capture(api: Api) -> None:
    data = _csv(f"{P},1,").encode()
    for roles in (("orders.validador",), ("orders.almacenista",), ("orders.supervisor",)):
        r = await api.client.post("/cargas-csv", content=data, headers=api.h(*roles) | CSV_H)
        assert r.status_code == 403, (roles, r.text)
    r = await api.client.post("/cargas-csv", content=data, headers=CSV_H)
    assert r.status_code == 401


async def test_product_lookup_by_clave_and_name(api: Api) -> None:
    h = api.h("orders.validador")
    r = await api.ok("GET", "/productos", h, params={"clave": Q})
    assert [p["clave_cnis"] for p in r["items"]] == [Q]
    assert r["items"][0]["unidad_medida"] == "PIEZA"
    for q in ("ESTÉRIL", "estéril"):  # the accented letter folds too
        r = await api.ok("GET", "/productos", h, params={"q": q})
        assert [p["clave_cnis"] for p in r["items"]] == [Q], q
    r = await api.ok("GET", "/productos", h, params={"q": "010.000"})
    assert [p["clave_cnis"] for p in r["items"]] == [P, Q]
    r = await api.ok("GET", "/productos", h, params={"q": "%"})
    assert r["items"] == []
    r = await api.ok("GET", "/productos", h, params={"limit": 2, "offset": 1})
    assert [p["clave_cnis"] for p in r["items"]] == [Q, R]


async def test_a_held_upload_is_dropped_after_a_day(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _csv(f"{P},1,").encode()
    vieja = (await api.upload(data)).json()
    reciente = (await api.upload(data, sub="beto")).json()
    t0 = clock.now()
    monkeypatch.setattr(clock, "now_fn", lambda: t0 + timedelta(hours=23))
    await api.upload(data, sub="carla")
    assert (await api.ok("GET", f"/cargas-csv/{vieja['id']}", api.h(SOL)))["total_items"] == 1
    monkeypatch.setattr(clock, "now_fn", lambda: t0 + timedelta(hours=25))
    await api.upload(data, sub="carla")
    problem(
        await api.client.get(f"/cargas-csv/{vieja['id']}", headers=api.h(SOL)),
        404,
        "CARGA_NO_ENCONTRADA",
    )
    assert reciente["id"] != vieja["id"]
