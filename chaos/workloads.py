"""The write workloads shared by the chaos scenarios and the replica hand-over test. Per service:
the set-up the writes need (sales catalogue and a material; an evidence OT with partidas; an
orders institution, warehouse and lots), one logical write per call, each with its own
idempotency key, and the audit (:mod:`chaos.auditor`) of every write it was asked to make.

Requests go through a :class:`Route`: through the gateway (``prefix="/api/<svc>"``) or straight
to service replicas (``base_urls``: the first try on the first one, retries rotate over them,
like a load balancer)."""

from __future__ import annotations

import itertools
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from chaos import auditor
from chaos.auditor import Audit
from chaos.load import Outcome, bearer, send


class SetupError(RuntimeError):
    pass


def ok(r: Outcome, what: str) -> Any:
    if not r.ok:
        raise SetupError(f"{what}: {r.final} {r.statuses} {str(r.body)[:300]}")
    return r.body


@dataclass(frozen=True)
class Route:
    """Where requests go: `prefix` before each service path ("/api/sales" through the gateway,
    "" at a service) and the base URLs to rotate over (None: the client's base URL)."""

    client: httpx.AsyncClient
    prefix: str = ""
    base_urls: Sequence[str] | None = None

    async def send(
        self, method: str, path: str, body: Any, headers: dict[str, str], key: str | None = None
    ) -> Outcome:
        return await send(
            self.client,
            method,
            self.prefix + path,
            json=body,
            headers=headers,
            key=key,
            base_urls=self.base_urls,
        )

    async def write(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
        """A set-up write that must succeed (SetupError otherwise); its answer's body."""
        return ok(await self.send(method, path, body, headers), path)


class Workload(ABC):
    """One service's writes: `setup` once, then `one(i, route)` per logical write (any number
    concurrently); `outcomes` holds every write made, `audit` checks them against the database."""

    service: str

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    @abstractmethod
    async def setup(self, route: Route) -> None: ...

    @abstractmethod
    async def one(self, i: int, route: Route) -> Outcome: ...

    @abstractmethod
    async def audit(self, dsn: str) -> Audit: ...


# --------------------------------------------------------------------------- sales


class SalesWorkload(Workload):
    """POS sales of 1 unit of a fresh material with `start_stock`; the idempotency key is also
    the payment reference, so each request is identifiable in the sales database. `producto`:
    a catalogue made earlier on the same database (else `setup` makes one)."""

    service = "sales"

    def __init__(self, start_stock: int, name: str = "Chaos", producto: int | None = None):
        super().__init__()
        self.start_stock = start_stock
        self.name = name
        self.producto = producto
        self.material = 0
        # several sellers: the gateway's rate limit is per token subject
        self.sellers = [bearer(f"chaos-vendedor-{n}", "sales.vendedor") for n in range(8)]

    async def setup(self, route: Route) -> None:
        adm = bearer("chaos-adm", "sales.admin")
        if self.producto is None:
            await route.write("PUT", "/configuracion/tarifa", {"tarifa_laser_minuto": "1.00"}, adm)
            await route.write(
                "PUT", "/configuracion/tabulador/3", {"factor_costo": "100.0000"}, adm
            )
            prod = await route.write("POST", "/productos", {"nombre": "Chaos"}, adm)
            self.producto = int(prod["id_producto"])
        mat = await route.write(
            "POST",
            "/materiales",
            {
                "descripcion": f"Chaos {self.name}",
                "stock_actual": self.start_stock,
                "stock_minimo": 0,
            },
            adm,
        )
        self.material = int(mat["id_material"])

    async def one(self, i: int, route: Route) -> Outcome:
        key = str(uuid.uuid4())
        body = {
            "carrito": [
                {
                    "producto_id": self.producto,
                    "material_id": self.material,
                    "largo": "10",
                    "ancho": "10",
                    "espesor_mm": 3,
                    "cantidad": 1,
                }
            ],
            "monto_abonado": "1.00",
            "metodo_pago": "efectivo",
            "referencia_pago": key,
        }
        out = await route.send("POST", "/ventas", body, self.sellers[i % len(self.sellers)], key)
        self.outcomes.append(out)
        return out

    async def audit(self, dsn: str) -> Audit:
        return await auditor.audit_sales(dsn, self.outcomes, self.material, self.start_stock)


# --------------------------------------------------------------------------- orders


class OrdersWorkload(Workload):
    """Supply requests created and then validated (→ ``RequestValidated`` → a FEFO proposal by
    the ``orders.proposals`` consumer); the creation key is the request's ``folio_pedido``, the
    validation's key that plus ``:validar``. 1–3 units each from lots of `lot_quantity` × 3."""

    service = "orders"

    def __init__(self, lot_quantity: int = 400) -> None:
        super().__init__()
        self.lot_quantity = lot_quantity
        self.created: list[Outcome] = []
        self.validated: list[Outcome] = []
        self.ids: dict[str, int] = {}
        self.solicitante = bearer("chaos-sol", "orders.solicitante")
        self.validador = bearer("chaos-val", "orders.validador")
        self.entrega = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()

    async def setup(self, route: Route) -> None:
        sup = bearer("chaos-super", "orders.supervisor")
        inst = await route.write(
            "POST", "/instituciones", {"clue": "CHAOS1", "denominacion": "Chaos"}, sup
        )
        alm = await route.write(
            "POST",
            "/almacenes",
            {"id_institucion": inst["id"], "nombre": "Central", "codigo": "C1", "es_central": True},
            sup,
        )
        # a product of its own: not one of the dev demo catalogue's (orders.demo)
        prod = await route.write("POST", "/productos", {"clave_cnis": "999.000.0001.00"}, sup)
        ub = await route.write(
            "POST",
            "/ubicaciones",
            {"id_almacen": alm["id"], "codigo": "A-01", "estado": "disponible"},
            sup,
        )
        today = datetime.now(UTC).date()
        for n in range(3):  # FEFO across several lots
            await route.write(
                "POST",
                "/lotes",
                {
                    "id_producto": prod["id"],
                    "id_institucion": inst["id"],
                    "numero_lote": f"L-CHAOS-{n}",
                    "fecha_caducidad": (today + timedelta(days=400 + 100 * n)).isoformat(),
                    "estado": 1,
                    "ubicaciones": [{"id_ubicacion": ub["id"], "cantidad": self.lot_quantity}],
                },
                sup,
            )
        self.ids = {"inst": inst["id"], "alm": alm["id"], "prod": prod["id"]}

    async def one(self, i: int, route: Route) -> Outcome:
        """Create, then (when created) validate; the outcome of the last step taken."""
        key = f"PED-CHAOS-{uuid.uuid4().hex[:12]}"
        body = {
            "id_institucion": self.ids["inst"],
            "id_almacen_destino": self.ids["alm"],
            "fecha_entrega_programada": self.entrega,
            "folio_pedido": key,
            "items": [{"id_producto": self.ids["prod"], "cantidad_solicitada": 1 + i % 3}],
        }
        c = await route.send("POST", "/solicitudes", body, self.solicitante, key)
        self.created.append(c)
        self.outcomes.append(c)
        if not c.ok:
            return c
        v = await route.send(
            "POST",
            f"/solicitudes/{c.body['id']}/validar",
            {"items": []},
            self.validador,
            f"{key}:validar",
        )
        self.validated.append(v)
        self.outcomes.append(v)
        return v

    async def audit(self, dsn: str) -> Audit:
        return await auditor.audit_orders(dsn, self.created, self.validated, self.ids["prod"])


# --------------------------------------------------------------------------- evidence


class EvidenceWorkload(Workload):
    """Production saves (→ ``ProductionSaved`` → a GPU by the ``evidence.gpu-sync`` consumer),
    each in its own (partida, date) cell of an OT with `n_partidas` partidas of annex C-2 (an
    annex whose productions need a GPU)."""

    service = "evidence"

    def __init__(self, n_partidas: int = 20, orden_trabajo: str = "OT-CHAOS-1") -> None:
        super().__init__()
        self.n_partidas = n_partidas
        self.orden_trabajo = orden_trabajo
        self.partidas: list[int] = []
        self.cells: dict[str, tuple[int, date]] = {}
        self._next_cell = itertools.count()
        self.residente = bearer("chaos-res", "evidence.residente")

    async def setup(self, route: Route) -> None:
        sup = bearer("chaos-sup", "evidence.supervisor")
        ot = await route.write("POST", "/ots", {"orden_trabajo": self.orden_trabajo}, sup)
        partidas = [
            {
                "id_partida": f"C-2.9.{n}",
                "descripcion": f"Partida {n}",
                "anexo": "C-2",  # DEFAULT_GPU_ANNEXES
                "unidad": "JOR",
                "volumen_proyectado": "100000",
                "precio_unitario_mn": "10.0000",
            }
            for n in range(self.n_partidas)
        ]
        imp = await route.write(
            "POST", f"/ots/{ot['id']}/importaciones", {"partidas": partidas}, sup
        )
        self.partidas = [p["id"] for p in sorted(imp["partidas"], key=lambda p: p["codigo"])]

    async def one(self, i: int, route: Route) -> Outcome:
        key = str(uuid.uuid4())
        j = next(self._next_cell)  # a cell of its own, whatever `i` is
        partida = self.partidas[j % self.n_partidas]
        fecha = date(2025, 3, 1) + timedelta(days=j // self.n_partidas)
        self.cells[key] = (partida, fecha)
        body = {
            "id_partida_anexo": partida,
            "fecha": fecha.isoformat(),
            "tipo_tiempo": "TE",
            "volumen": "1",
        }
        out = await route.send("PUT", "/producciones", body, self.residente, key)
        self.outcomes.append(out)
        return out

    async def audit(self, dsn: str) -> Audit:
        return await auditor.audit_evidence(dsn, self.outcomes, self.cells)
