"""The embedded system as a real process (``python -m gateway``) for the crash and backup tests:
start/kill/restart, seed through the API, concurrent load (POS sales, production saves,
request validations), and the auditor that checks every effect exactly once in the SQLite files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.settings import GatewaySettings
from service_defaults.auth import issue_token

EV, SA, OR = "/api/evidence", "/api/sales", "/api/orders"
START_STOCK = 1_000_000
NETWORK_ERRORS = (httpx.TransportError,)


async def until(probe: Callable[[], Awaitable[Any]], what: str, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {within}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class System:
    """One ``python -m gateway`` process on ``data_dir`` (restartable, killable)."""

    def __init__(self, data_dir: Path, log_file: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.settings = GatewaySettings(env="test")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GATEWAY_DATA_DIR": str(self.data_dir),
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_ENV": "test",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        }

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_file.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "gateway"], env=self.env(), stdout=out, stderr=out
            )

    async def start(self) -> None:
        self.proc = await asyncio.to_thread(self._spawn)
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as client:

            async def ready() -> bool:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"gateway exited: see {self.log_file}")
                with contextlib.suppress(*NETWORK_ERRORS):
                    return (await client.get("/health/ready")).status_code == 200
                return False

            await until(ready, "the gateway ready", within=90)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def auth(self, sub: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.settings, sub, list(roles))}"}


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json() if r.content else None


@dataclass
class Load:
    """Concurrent clients; every request may die with the process (then it is retried later)."""

    system: System
    seed: dict[str, Any]
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    running: bool = True
    _counter: int = 0

    def total(self) -> int:
        return sum(self.ok.values())

    async def _loop(self, kind: str, step: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
        async with httpx.AsyncClient(base_url=self.system.base, timeout=10) as client:
            while self.running:
                try:
                    await step(client)
                    self.ok[kind] += 1
                except (*NETWORK_ERRORS, AssertionError):
                    # the process was killed under this request (or is restarting)
                    self.failed[kind] += 1
                    await asyncio.sleep(0.05)

    async def sale(self, client: httpx.AsyncClient) -> None:
        s = self.seed["sales"]
        body = {"carrito": [{**s["line"], "subtotal": s["subtotal"]}], "cliente_id": s["client"]}
        _ok(await client.post(f"{SA}/ventas", json=body, headers=s["auth"]), 201)

    async def production(self, client: httpx.AsyncClient) -> None:
        e = self.seed["evidence"]
        self._counter += 1
        n = self._counter
        day = date(2025, 1, 1) + timedelta(days=(n // 4) % 365)
        body = {
            "id_partida_anexo": e["partidas"][n % 2],
            "fecha": day.isoformat(),
            "tipo_tiempo": ("TE", "CMA")[(n // 2) % 2],
            "volumen": str(1 + n % 5),
        }
        _ok(await client.put(f"{EV}/producciones", json=body, headers=e["auth"]))

    async def validation(self, client: httpx.AsyncClient) -> None:
        o = self.seed["orders"]
        body = {
            "id_institucion": o["institution"],
            "id_almacen_destino": o["warehouse"],
            "fecha_entrega_programada": (datetime.now(UTC).date() + timedelta(3)).isoformat(),
            "folio_pedido": f"PED-{uuid.uuid4().hex[:12]}",
            "items": [{"id_producto": o["product"], "cantidad_solicitada": 1}],
        }
        sol = _ok(await client.post(f"{OR}/solicitudes", json=body, headers=o["sol"]), 201)
        url = f"{OR}/solicitudes/{sol['id']}/validar"
        _ok(await client.post(url, json={"items": []}, headers=o["val"]))

    def tasks(self, sales: int = 4, evidence: int = 2, orders: int = 2) -> list[asyncio.Task[None]]:
        out = [asyncio.create_task(self._loop("sale", self.sale)) for _ in range(sales)]
        out += [asyncio.create_task(self._loop("prod", self.production)) for _ in range(evidence)]
        out += [asyncio.create_task(self._loop("val", self.validation)) for _ in range(orders)]
        return out

    async def after(self, more: int, within: float = 120) -> None:
        """Wait until ``more`` further requests succeeded."""
        target = self.total() + more

        async def reached() -> bool:
            return self.total() >= target

        await until(reached, f"{more} more successful requests", within)


async def seed(system: System) -> dict[str, Any]:
    """Create through the API what the load needs (every service's own roles)."""
    a = system.auth
    async with httpx.AsyncClient(base_url=system.base, timeout=30) as c:
        adm, vend = a("adm", "sales.admin"), a("vendedor1", "sales.vendedor")
        _ok(
            await c.put(
                f"{SA}/configuracion/tarifa", json={"tarifa_laser_minuto": "1"}, headers=adm
            )
        )
        factor = {"factor_costo": "450.0000"}
        _ok(await c.put(f"{SA}/configuracion/tabulador/3", json=factor, headers=adm))
        prod = _ok(await c.post(f"{SA}/productos", json={"nombre": "Letrero"}, headers=adm), 201)
        mat = _ok(
            await c.post(
                f"{SA}/materiales",
                json={"descripcion": "Acrilico", "stock_actual": START_STOCK, "stock_minimo": 1},
                headers=adm,
            ),
            201,
        )
        cli = _ok(await c.post(f"{SA}/clientes", json={"nombre": "Ana"}, headers=vend), 201)
        line = {
            "producto_id": prod["id_producto"],
            "material_id": mat["id_material"],
            "largo": "10",
            "ancho": "10",
            "espesor_mm": 3,
            "porcentaje_utilidad": 40,
            "minutos_laser": 1,
            "cantidad": 1,
        }
        preview = _ok(await c.post(f"{SA}/precios/preview", json=line, headers=vend))

        sup = a("sam", "evidence.supervisor")
        ot = _ok(await c.post(f"{EV}/ots", json={"orden_trabajo": "OT-CRASH"}, headers=sup), 201)
        partidas = [
            {"id_partida": f"C-2.1.{i}", "descripcion": "P", "anexo": "C-2", "unidad": "JOR"}
            | {"volumen_proyectado": "1000000"}
            for i in (1, 2)
        ]
        imp = _ok(
            await c.post(
                f"{EV}/ots/{ot['id']}/importaciones", json={"partidas": partidas}, headers=sup
            ),
            201,
        )

        osup = a("super", "orders.supervisor")
        inst = _ok(
            await c.post(
                f"{OR}/instituciones", json={"clue": "CR001", "denominacion": "X"}, headers=osup
            ),
            201,
        )
        alm = _ok(
            await c.post(
                f"{OR}/almacenes",
                json={"id_institucion": inst["id"], "nombre": "Central", "codigo": "C"}
                | {"es_central": True},
                headers=osup,
            ),
            201,
        )
        product = _ok(
            await c.post(f"{OR}/productos", json={"clave_cnis": "010.000.0104.00"}, headers=osup),
            201,
        )
        ub = _ok(
            await c.post(
                f"{OR}/ubicaciones",
                json={"id_almacen": alm["id"], "codigo": "A-01", "estado": "disponible"},
                headers=osup,
            ),
            201,
        )
        _ok(
            await c.post(
                f"{OR}/lotes",
                json={
                    "id_producto": product["id"],
                    "id_institucion": inst["id"],
                    "numero_lote": "L-CRASH",
                    "fecha_caducidad": (datetime.now(UTC).date() + timedelta(730)).isoformat(),
                    "estado": 1,
                    "ubicaciones": [{"id_ubicacion": ub["id"], "cantidad": 1_000_000}],
                },
                headers=osup,
            ),
            201,
        )
    return {
        "sales": {
            "line": line,
            "subtotal": preview["subtotal"],
            "client": cli["id_cliente"],
            "material": mat["id_material"],
            "auth": vend,
        },
        "evidence": {
            "partidas": [p["id"] for p in imp["partidas"]],
            "auth": a("ana", "evidence.residente"),
        },
        "orders": {
            "institution": inst["id"],
            "warehouse": alm["id"],
            "product": product["id"],
            "sol": a("ana", "orders.solicitante"),
            "val": a("vale", "orders.validador"),
        },
    }


def _query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def audit(data_dir: Path, material: int) -> dict[str, Any]:
    """The invariants, from the SQLite files: ``problems`` is empty when every effect happened
    exactly once and every outbox is drained."""
    sales, evidence, orders = (data_dir / f"{s}.db" for s in ("sales", "evidence", "orders"))
    problems: list[str] = []
    ((stock,),) = _query(
        sales, "SELECT stock_actual FROM materiales WHERE id_material = ?", material
    )
    ((sold, lines),) = _query(
        sales,
        "SELECT COALESCE(SUM(cantidad), 0), COUNT(*) FROM detalle_venta WHERE id_material = ?",
        material,
    )
    ((moves,),) = _query(
        sales,
        "SELECT COUNT(*) FROM movimientos_stock WHERE id_material = ? AND motivo = 'venta'",
        material,
    )
    if stock != START_STOCK - sold:
        problems.append(f"stock {stock} != {START_STOCK} - {sold} sold")
    if moves != lines:
        problems.append(f"{moves} sale stock movements for {lines} sale lines")
    ((productions, without_gpu),) = _query(
        evidence,
        "SELECT COUNT(*), SUM(CASE WHEN g.id IS NULL THEN 1 ELSE 0 END) FROM produccion p "
        "LEFT JOIN registro_generadores_pu g ON g.id_produccion = p.id "
        "WHERE p.volumen_produccion > 0",
    )
    ((gpus,),) = _query(evidence, "SELECT COUNT(*) FROM registro_generadores_pu")
    if without_gpu or gpus != productions:
        problems.append(f"{productions} productions, {gpus} GPUs, {without_gpu} without a GPU")
    ((validated,),) = _query(orders, "SELECT COUNT(*) FROM solicitudes WHERE estado = 'VALIDADA'")
    ((proposals, distinct),) = _query(
        orders, "SELECT COUNT(*), COUNT(DISTINCT solicitud_id) FROM propuestas"
    )
    if not validated == proposals == distinct:
        problems.append(f"{validated} validated requests, {proposals} proposals ({distinct})")
    for db in (sales, evidence, orders):
        ((backlog,),) = _query(db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        if backlog:
            problems.append(f"{db.name}: {backlog} outbox rows not published")
    return {
        "problems": problems,
        "sold": sold,
        "sale_lines": lines,
        "productions": productions,
        "validated": validated,
    }


async def converged(data_dir: Path, material: int, within: float = 120) -> dict[str, Any]:
    """Poll the auditor until it finds no problem (consumers catch up after a restart)."""
    last: dict[str, Any] = {}

    async def clean() -> bool:
        nonlocal last
        last = await asyncio.to_thread(audit, data_dir, material)
        return not last["problems"]

    try:
        await until(clean, "the auditor's invariants", within)
    except AssertionError as exc:
        raise AssertionError(f"not converged: {last}") from exc
    return last


def random_kill_points(n: int, seed_value: int | None = None) -> list[int]:
    rng = random.Random(seed_value)
    return [rng.randint(20, 150) for _ in range(n)]
