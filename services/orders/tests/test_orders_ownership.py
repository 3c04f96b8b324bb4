"""Object-level authorisation of requests (solicitudes): a Solicitante edits and cancels only
their own PENDIENTE request; reading is open to every orders role (see the orders README)."""

from __future__ import annotations

from .test_orders_api import PROBLEM, Api, api

__all__ = ["api"]


def _edit_body(api: Api, sol: dict[str, object], cantidad: int) -> dict[str, object]:
    return {
        "id_institucion": api.ids["inst"],
        "id_almacen_destino": api.ids["central"],
        "fecha_entrega_programada": "2026-05-06",
        "items": [{"id_producto": api.ids["P"], "cantidad_solicitada": cantidad}],
        "version": sol["version"],
    }


async def test_other_requester_cannot_edit_nor_cancel(api: Api) -> None:
    sol = await api.solicitud({"P": 10})  # captured by "ana"
    beto = api.h("orders.solicitante", sub="beto")
    r = await api.client.put(
        f"/solicitudes/{sol['id']}", headers=beto, json=_edit_body(api, sol, 3)
    )
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "NO_ES_PROPIETARIO"
    r = await api.client.post(f"/solicitudes/{sol['id']}/cancelar", headers=beto)
    assert r.status_code == 403, r.text
    after = await api.ok("GET", f"/solicitudes/{sol['id']}", beto)  # reading stays open
    assert after["version"] == sol["version"]
    assert after["estado"] == "PENDIENTE"
    assert [i["cantidad_solicitada"] for i in after["items"]] == [10]


async def test_owner_edits_own_pending_request(api: Api) -> None:
    sol = await api.solicitud({"P": 10})
    ana = api.h("orders.solicitante", sub="ana")
    r = await api.client.put(f"/solicitudes/{sol['id']}", headers=ana, json=_edit_body(api, sol, 4))
    assert r.status_code == 200, r.text
    assert [i["cantidad_solicitada"] for i in r.json()["items"]] == [4]
    r = await api.client.post(f"/solicitudes/{sol['id']}/cancelar", headers=ana)
    assert r.status_code == 200, r.text
    # once no longer PENDIENTE, not even the owner edits it
    body = _edit_body(api, r.json(), 5)
    r = await api.client.put(f"/solicitudes/{sol['id']}", headers=ana, json=body)
    assert r.status_code == 409, r.text


async def test_admin_may_edit_any_request(api: Api) -> None:
    sol = await api.solicitud({"P": 10})
    admin = api.h("admin", sub="root")
    r = await api.client.put(
        f"/solicitudes/{sol['id']}", headers=admin, json=_edit_body(api, sol, 2)
    )
    assert r.status_code == 200, r.text
