"""The /ops dashboard in a real Chromium (Debian's, driven by Playwright): services up, a sale
appears live with the topic offsets/lag updating, the GPU grid colours, a DLQ replay button."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.main import create_app
from gateway.policy import flatten_routes
from gateway.settings import GatewaySettings
from nexo_messaging.transport import OutMessage
from sales.api import VENDEDOR
from service_defaults.messaging import new_memory_broker

from .gateway_testkit import bearer, free_port, serve

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SALE = {
    "carrito": [{"producto_id": 2, "material_id": 1, "largo": "10", "ancho": "5", "espesor_mm": 3}],
    "permitir_backorder": True,
}
COLOURS = {
    "PENDIENTE": "rgb(211, 47, 47)",
    "CARGADO": "rgb(251, 192, 45)",
    "EN_REVISION": "rgb(25, 118, 210)",
    "VALIDADO": "rgb(46, 125, 50)",
    "RECHAZADO": "rgb(0, 0, 0)",
}


def _chromium_or_fail() -> None:
    if os.path.exists(CHROMIUM):
        return
    message = f"{CHROMIUM} missing (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def _stub_grid(evidence: FastAPI) -> None:
    """Until the evidence service publishes its grid route, serve the seed's grid shape at
    ``/gpu/grid`` on the evidence app (one line, one day per GPU status)."""

    cells = {
        2: ("PENDIENTE", 19),
        3: ("CARGADO", 20),
        4: ("EN_REVISION", 21),
        5: ("VALIDADO", 22),
        6: ("RECHAZADO", 23),
    }

    async def grid(id_ot: int, mes: int, anio: int) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id_partida_anexo": 456,
            "codigo": "C-2.1.1",
            "descripcion": "Técnico especializado",
            "unidad": "JOR",
            "anexo": "C-2",
            **{f"dia_{d}": None for d in range(1, 32)},
        }
        for day, (status, legacy) in cells.items():
            row[f"dia_{day}"] = [
                {
                    "id_produccion": 780 + day,
                    "volumen": "8.000000",
                    "tipo_tiempo": "TE",
                    "estatus_id": legacy,
                    "estatus_texto": status,
                    "archivos_count": 0,
                    "archivo": "",
                    "id_gpu": 100 + day,
                }
            ]
        return {"data": [row]}

    evidence.add_api_route("/gpu/grid", grid, methods=["GET"])


async def _prepare_grid(base: str, *, stubbed: bool) -> list[str]:
    """The GPU statuses the grid must show. With the real evidence service: the demo GPUs are
    PENDIENTE; move one to CARGADO through the gateway first."""
    if stubbed:
        return list(COLOURS)
    admin = bearer(["admin"])
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        gpus = await client.get("/api/evidence/gpus", params={"id_ot": 1}, headers=admin)
        assert gpus.status_code == 200, gpus.text
        first = gpus.json()["data"][0]
        gpu_id = first.get("id") or first.get("id_gpu") or first.get("id_registro_gpu")
        r = await client.post(
            f"/api/evidence/gpus/{gpu_id}/transiciones",
            json={"a": "CARGADO", "archivo": "https://drive.google.com/drive/folders/demo"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
    return ["PENDIENTE", "CARGADO"]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[str, Any, FastAPI]]:
    broker = new_memory_broker()
    app = create_app(
        GatewaySettings(data_dir=tmp_path / "var", env="dev", ops_history_interval=1.0),
        memory_broker=broker,
    )
    evidence = app.state.services["evidence"]
    app.state.grid_stubbed = not any(
        getattr(r, "path", "").endswith("/grid") for _, r in flatten_routes(evidence.routes)
    )
    if app.state.grid_stubbed:
        _stub_grid(evidence)
    port = free_port()
    async with serve(app, port):
        yield f"http://127.0.0.1:{port}", broker, app


async def test_ops_dashboard_in_chromium(running: tuple[str, Any, FastAPI]) -> None:
    _chromium_or_fail()
    from playwright.async_api import async_playwright, expect

    base, broker, app = running
    ARTIFACTS.mkdir(exist_ok=True)
    profile = tempfile.mkdtemp(prefix="nexo-chromium-")
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport={"width": 1400, "height": 1000},
            )
            try:
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                # the page is served with a CSP without inline script/style: any violation
                # (something the dashboard needs being blocked) shows up on the console
                page.on(
                    "console",
                    lambda msg: (
                        errors.append(msg.text) if "Content Security Policy" in msg.text else None
                    ),
                )
                await page.goto(f"{base}/ops")
                await expect(page.locator("#dev-login")).to_be_visible(timeout=10_000)
                await page.click("#dev-login")

                # all services up
                services = page.locator("#services li")
                await expect(services).to_have_count(3, timeout=15_000)
                for name in ("evidence", "sales", "orders"):
                    await expect(
                        page.locator(f'#services li[data-service="{name}"]')
                    ).to_have_attribute("data-status", "up")
                await expect(page.locator("#conn")).to_have_text("stream: live", timeout=10_000)

                # the charts are drawn (uPlot canvases) before the sale
                charts = page.locator("#charts [data-chart]")
                await expect(charts).to_have_count(8, timeout=15_000)
                await expect(page.locator('#charts [data-chart="rps"] canvas')).to_have_count(1)
                events_chart = page.locator('#charts [data-chart="events"]')

                # a sale: the event arrives live, offsets and lag cells update
                end = page.locator('#topics tr[data-topic="sales.sales"] td.end')
                await expect(end).to_be_visible(timeout=10_000)
                before = int(await end.get_attribute("data-end") or "0")
                async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                    r = await client.post(
                        "/api/sales/ventas", json=SALE, headers=bearer([VENDEDOR])
                    )
                    assert r.status_code == 201, r.text
                await expect(
                    page.locator('#events li[data-type$="SaleConfirmed.v1"]').first
                ).to_be_visible(timeout=10_000)
                await expect(end).to_have_attribute("data-end", str(before + 1), timeout=10_000)
                lag = page.locator(
                    '#topics tr[data-topic="sales.sales"] [data-group="sales.stock"]'
                )
                await expect(lag).to_have_attribute("data-lag", "0", timeout=10_000)
                await expect(
                    page.locator('#rates tr[data-type$="SaleConfirmed.v1"]')
                ).to_be_visible(timeout=10_000)

                # the charts move: the sale's event type gets a series with a non-zero rate,
                # and the sales service's request rate is drawn
                await expect(events_chart).to_have_attribute(
                    "data-series", re.compile(r"SaleConfirmed"), timeout=15_000
                )
                await expect(events_chart).not_to_have_attribute("data-peak", "0")
                rps = page.locator('#charts [data-chart="rps"]')
                await expect(rps).to_have_attribute("data-series", re.compile(r"sales"))
                await expect(rps).not_to_have_attribute("data-peak", "0")

                # that sale's trace: click its event → the action's timeline (no tracing
                # backend here: the events the board kept, correlated by the request's id)
                correlation = r.headers["x-correlation-id"]
                sale_item = page.locator(f'#events li[data-correlation="{correlation}"]').first
                await sale_item.click()
                trace = page.locator("#trace")
                await expect(trace).to_have_attribute("data-source", "board", timeout=10_000)
                await expect(
                    trace.locator('li[data-name$="SaleConfirmed.v1"][data-service="sales"]')
                ).to_have_count(1)
                await expect(page.locator("#trace-q")).to_have_value(correlation)
                await page.locator("#h-charts").scroll_into_view_if_needed()
                await page.screenshot(path=str(ARTIFACTS / "ops-charts-trace.png"), full_page=True)

                # GPU grid with the seed's colours (the evidence demo OT, this month)
                month = date.today()
                expected = await _prepare_grid(base, stubbed=app.state.grid_stubbed)
                await page.fill("#grid-ot", "10" if app.state.grid_stubbed else "1")
                await page.fill("#grid-mes", str(month.month))
                await page.fill("#grid-anio", str(month.year))
                await page.click("#grid-load")
                for status in expected:
                    cell = page.locator(f'#grid span.gpu[data-status="{status}"]').first
                    await expect(cell).to_be_visible(timeout=10_000)
                    bg = await cell.evaluate("e => getComputedStyle(e).backgroundColor")
                    assert bg == COLOURS[status], (status, bg)

                # a poison record lands in the DLQ; replay it with the button
                await broker.append(
                    OutMessage(topic="sales.sales", key=b"poison-ui", value=b"\xffnot json")
                )
                await broker.notify()
                row = page.locator("#dlq tr", has_text="undecodable").first
                await expect(row).to_have_attribute("data-status", "pending", timeout=15_000)
                dlq_id = await row.get_attribute("data-dlq")
                # an undecodable record has no event id, hence no trace to link
                await expect(row.locator("td").last).to_have_text("–")
                await row.locator("button.replay").click()
                replayed = page.locator(f'#dlq tr[data-dlq="{dlq_id}"]')
                await expect(replayed).to_have_attribute("data-status", "replayed", timeout=10_000)
                assert app.state.ops.audit.entries[-1]["action"] == "replayed"

                await page.screenshot(path=str(ARTIFACTS / "ops-dashboard.png"), full_page=True)
                assert not errors, errors
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
