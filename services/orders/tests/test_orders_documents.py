"""Issue 15 item 4: a proposal's documents through the API, on SQLite and PostgreSQL — the
picking list (PDF to print, Excel) of a reviewed proposal and the delivery receipt (acuse de
entrega, PDF and Excel) of a dispatched one. Each file is opened with a reader (pypdf,
openpyxl) and its content checked; plus 404, 409 by state and the role rule."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from nexo_testing import app_client, bearer
from orders.main import create_app
from orders.settings import OrdersSettings

PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
P, Q = "010.000.0104.00", "010.000.0105.00"
INSTITUCION = "Hospital General de Zona Núm. 1"
DESC_P = "Paracetamol 500 mg — Ácido libre"
DESC_Q = "Jeringa estéril con aguja"


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: OrdersSettings
    ids: dict[str, int] = field(default_factory=dict)

    def h(self, *roles: str, sub: str = "user") -> dict[str, str]:
        return bearer(self.settings, sub, *roles)

    @property
    def sup(self) -> dict[str, str]:
        return self.h("orders.supervisor", sub="super")

    async def ok(self, method: str, url: str, headers: dict[str, str], **kw: Any) -> Any:
        r = await self.client.request(method, url, headers=headers, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json()

    async def setup(self) -> None:
        inst = await self.ok(
            "POST", "/instituciones", self.sup, json={"clue": "QA001", "denominacion": INSTITUCION}
        )
        alm = await self.ok(
            "POST",
            "/almacenes",
            self.sup,
            json={
                "id_institucion": inst["id"],
                "nombre": "Almacén Central",
                "codigo": "CENTRAL",
                "es_central": True,
            },
        )
        self.ids |= {"inst": inst["id"], "alm": alm["id"]}
        for key, clave, desc in (("P", P, DESC_P), ("Q", Q, DESC_Q)):
            prod = await self.ok(
                "POST", "/productos", self.sup, json={"clave_cnis": clave, "descripcion": desc}
            )
            self.ids[key] = prod["id"]

    async def lote(self, producto: str, numero: str, cad: str, codigo: str, cant: int) -> None:
        ub = await self.ok(
            "POST",
            "/ubicaciones",
            self.sup,
            json={"id_almacen": self.ids["alm"], "codigo": codigo, "estado": "disponible"},
        )
        await self.ok(
            "POST",
            "/lotes",
            self.sup,
            json={
                "id_producto": self.ids[producto],
                "id_institucion": self.ids["inst"],
                "numero_lote": numero,
                "fecha_caducidad": cad,
                "estado": 1,
                "ubicaciones": [{"id_ubicacion": ub["id"], "cantidad": cant}],
            },
        )

    async def propuesta(self, items: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
        sol = await self.ok(
            "POST",
            "/solicitudes",
            self.h("orders.solicitante", sub="ana"),
            json={
                "id_institucion": self.ids["inst"],
                "id_almacen_destino": self.ids["alm"],
                "fecha_entrega_programada": "2026-05-05",
                "folio_pedido": "PED-QA-0001",
                "items": [
                    {"id_producto": self.ids[p], "cantidad_solicitada": q} for p, q in items.items()
                ],
            },
        )
        await self.ok(
            "POST",
            f"/solicitudes/{sol['id']}/validar",
            self.h("orders.validador", sub="vale"),
            json={"items": []},
        )
        deadline = time.monotonic() + 10
        while True:
            r = await self.client.get(f"/solicitudes/{sol['id']}/propuesta", headers=self.sup)
            if r.status_code == 200:
                return sol, dict(r.json())
            assert r.status_code == 404, r.text
            assert time.monotonic() < deadline, "no proposal within 10 s"
            await asyncio.sleep(0.01)

    async def documento(
        self, prop_id: str, nombre: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.get(f"/propuestas/{prop_id}/{nombre}", headers=headers or self.sup)


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = OrdersSettings(env="test", database_url=database_url, transport="memory")
    async with app_client(create_app(settings), "http://orders") as client:
        a = Api(client, settings)
        await a.setup()
        yield a


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/" + code)


def pdf_text(r: httpx.Response, filename: str) -> str:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == PDF
    assert r.headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert r.content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(r.content)).pages)


def sheet_rows(r: httpx.Response, filename: str) -> list[tuple[Any, ...]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XLSX
    assert r.headers["content-disposition"] == f'attachment; filename="{filename}"'
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    return [tuple(row) for row in ws.iter_rows(values_only=True)]


async def reviewed(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    # P: FEFO walk takes B200 (expires first) then A100; Q: one lot
    await api.lote("P", "A100", "2026-09-30", "A-01", 60)
    await api.lote("P", "B200", "2026-07-15", "B-01", 50)
    await api.lote("Q", "Q-77", "2026-08-01", "C-01", 20)
    sol, prop = await api.propuesta({"P": 100, "Q": 20})
    assert prop["estado"] == "GENERADA"
    return sol, prop


async def test_picking_list_pdf_and_excel_follow_the_walk(api: Api) -> None:
    sol, prop = await reviewed(api)
    folio = sol["folio"]
    # not reviewed yet: no picking list; never dispatched: no receipt
    problem(await api.documento(prop["id"], "picking.pdf"), 409, "PICKING_NO_DISPONIBLE")
    problem(await api.documento(prop["id"], "acuse.xlsx"), 409, "PROPUESTA_NO_SURTIDA")
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", api.h("orders.almacenista"))

    text = pdf_text(await api.documento(prop["id"], "picking.pdf"), f"picking_{folio}.pdf")
    for expected in (
        "HOJA DE PICKING",
        folio,
        "PED-QA-0001",
        INSTITUCION,
        "Almacén Central",
        "UBICACIÓN",
        "CANTIDAD SURTIDA",
        P,
        Q,
        "Ácido libre",
        "Total Items: 3",
        "Total de piezas: 120",
    ):
        assert expected in text, (expected, text)
    # the walk: B200 (15/07) before A100 (30/09), both before Q's line (items by clave)
    assert text.index("B200") < text.index("A100") < text.index("Q-77")
    assert "15/07/2026" in text
    assert "30/09/2026" in text

    rows = sheet_rows(await api.documento(prop["id"], "picking.xlsx"), f"picking_{folio}.xlsx")
    assert rows[0][0] == "HOJA DE PICKING"
    assert rows[2][:4] == ("Propuesta:", folio, "Institución Solicitante:", INSTITUCION)
    assert rows[3][2:4] == ("Folio de Pedido:", "PED-QA-0001")
    assert rows[7] == (
        "UBICACIÓN", "CLAVE CNIS", "PRODUCTO", "CADUCIDAD", "LOTE", "CANTIDAD", "CANTIDAD SURTIDA"
    )  # fmt: skip
    assert [r[:6] for r in rows[8:]] == [
        ("B-01", P, DESC_P, "15/07/2026", "B200", 50),
        ("A-01", P, DESC_P, "30/09/2026", "A100", 50),
        ("C-01", Q, DESC_Q, "01/08/2026", "Q-77", 20),
    ]

    # a picked line leaves the list (legacy: surtido=False lines only)
    b200 = next(ln for ln in prop["items"][0]["lotes"] if ln["numero_lote"] == "B200")
    await api.ok(
        "POST",
        f"/propuestas/{prop['id']}/lineas/{b200['id']}/recoger",
        api.h("orders.almacenista"),
    )
    rows = sheet_rows(await api.documento(prop["id"], "picking.xlsx"), f"picking_{folio}.xlsx")
    assert [(r[0], r[4], r[5]) for r in rows[8:]] == [("A-01", "A100", 50), ("C-01", "Q-77", 20)]
    assert rows[4][2:4] == ("Total Items:", 2)


async def test_delivery_receipt_of_a_dispatched_proposal(api: Api) -> None:
    sol, prop = await reviewed(api)
    folio = sol["folio"]
    await api.ok("POST", f"/propuestas/{prop['id']}/revisar", api.h("orders.almacenista"))
    problem(await api.documento(prop["id"], "acuse.pdf"), 409, "PROPUESTA_NO_SURTIDA")
    out = await api.ok("POST", f"/propuestas/{prop['id']}/surtir", api.sup)
    assert out["estado"] == "SURTIDA"
    # dispatched: the picking list is gone, the receipt exists
    problem(await api.documento(prop["id"], "picking.xlsx"), 409, "PICKING_NO_DISPONIBLE")

    text = pdf_text(await api.documento(prop["id"], "acuse.pdf"), f"acuse_entrega_{folio}.pdf")
    for expected in (
        "ACUSE DE ENTREGA",
        f"#FOLIO: {folio}",
        "FOLIO DE PEDIDO: PED-QA-0001",
        "FECHA: 01/05/2026",  # the dispatch's business date (clock pinned by conftest)
        f"INSTITUCIÓN: {INSTITUCION}",
        "DESCRIPCIÓN",
        "CLASIFICACIÓN",
        "AUTORIZA (ALMACÉN)",
        "RECIBE",
        "Total de piezas: 120",
        P,
        Q,
        "B200",
        "A100",
        "Q-77",
    ):
        assert expected in text, (expected, text)

    name = f"acuse_entrega_{folio}.xlsx"
    rows = sheet_rows(await api.documento(prop["id"], "acuse.xlsx"), name)
    assert rows[0][8] == f"#FOLIO: {folio}"
    assert rows[2][8] == "FOLIO DE PEDIDO: PED-QA-0001"
    assert rows[3][8] == "FECHA: 01/05/2026"
    assert rows[9][0] == f"INSTITUCIÓN: {INSTITUCION}"
    assert rows[16] == (
        "#", "CLAVE CNIS", "DESCRIPCIÓN", "U.M.", "TIPO", "LOTE", "CADUCIDAD", "CLASIFICACIÓN",
        "UBICACIÓN", "CANTIDAD", "FOLIO PEDIDO",
    )  # fmt: skip
    lines = [(r[0], r[1], r[2], r[3], r[5], r[6], r[8], r[9], r[10]) for r in rows[17:20]]
    assert lines == [
        (1, P, DESC_P, "PIEZA", "B200", "15/07/2026", "B-01", 50, "PED-QA-0001"),
        (2, P, DESC_P, "PIEZA", "A100", "30/09/2026", "A-01", 50, "PED-QA-0001"),
        (3, Q, DESC_Q, "PIEZA", "Q-77", "01/08/2026", "C-01", 20, "PED-QA-0001"),
    ]
    assert rows[20][8:10] == ("TOTAL", 120)

    # same readers as the proposal: the requester may read it, a sales role may not
    r = await api.documento(prop["id"], "acuse.pdf", api.h("orders.solicitante", sub="ana"))
    assert r.status_code == 200
    r = await api.documento(prop["id"], "acuse.pdf", api.h("sales.vendedor"))
    assert r.status_code == 403, r.text


@pytest.mark.parametrize("nombre", ["acuse.pdf", "acuse.xlsx", "picking.pdf", "picking.xlsx"])
async def test_unknown_proposal_is_404(api: Api, nombre: str) -> None:
    problem(await api.documento(str(uuid.uuid4()), nombre), 404, "PROPUESTA_NO_ENCONTRADA")
