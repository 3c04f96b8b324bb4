"""Differential property test of the two sale writers on real PostgreSQL (issue 13 item 6).

For the same generated catalogue and cart, the PostgreSQL writer (`PostgresSaleWriter`: the
two-statement hot path, or its one-statement session insert for a cart that creates its
client) and the portable writer (`PortableSaleWriter`: on PostgreSQL the ORM session path with
cached Core inserts) must refuse the same carts with the same error, and write identical rows
— sale, lines, abono, audit, clients, outbox events — up to the ids and timestamps each write
draws. The writers are driven the way the POS route drives them (``confirm_direct``, then the
session path when it declines), so the test does not depend on their internal signatures.
One migrated database serves every example; it is emptied before each write.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from nexo_testing import hypothesis_runner
from sales.adapters import PortableSaleWriter, PostgresSaleWriter
from sales.application import pos
from sales.application.clients import ClienteIn
from sales.application.common import Actor
from sales.application.pos import SaleWriter, VentaIn
from sales.application.pricing import LineaIn, invalidate_pricing_cache
from sales.domain import METODOS_PAGO, DomainError, folio_venta
from sales.main import MIGRATIONS_DIR

VERSION_TABLE = "alembic_version_sales"
TABULADOR = {3: "450.0000", 4: "12.0000", 5: "720.0000", 6: "980.5000", 10: "125.0000"}
ACTOR = Actor("vendedor1", is_admin=False)
MISSING = 999
"""An id no generated row has (a cart line or client that does not exist)."""

TABLES = (
    "detalle_venta",
    "abonos",
    "auditoria",
    "outbox",
    "ventas",
    "clientes",
    "productos",
    "materiales",
    "tabulador_costos",
    "configuracion_precios",
)
SNAPSHOT = {
    "ventas": "id_venta",
    "detalle_venta": "id_detalle",
    "abonos": "id_abono",
    "auditoria": "id",
    "outbox": "seq",
    "clientes": "id_cliente",
    "materiales": "id_material",
}
"""The tables a confirmation may write (and the stock it must not touch), in key order."""


@dataclass(frozen=True)
class Catalogue:
    productos: list[tuple[Decimal | None, int, bool]]  # precio_fijo, utilidad, activo
    materiales: list[tuple[int, int, bool]]  # stock_actual, stock_minimo, activo
    clientes: int


@dataclass(frozen=True)
class Example:
    catalogue: Catalogue
    venta: VentaIn


dims = st.decimals(min_value="0.5", max_value="250", places=2)
money = st.decimals(min_value="0.01", max_value="900", places=2)


FLAWS = [None] * 6 + [
    "producto_inactivo",
    "material_inactivo",
    "producto_id",
    "material_id",
    "cliente_inexistente",
]
"""What may be wrong with a generated cart besides its stock, abono and prices (None: nothing)."""


@st.composite
def examples(draw: st.DrawFn) -> Example:
    flaw = draw(st.sampled_from(FLAWS))
    productos = draw(
        st.lists(st.tuples(st.none() | money, st.integers(0, 120)), min_size=1, max_size=3)
    )
    materiales = draw(
        st.lists(st.tuples(st.integers(-3, 25), st.integers(0, 8)), min_size=1, max_size=3)
    )
    off_p = draw(st.integers(1, len(productos))) if flaw == "producto_inactivo" else 0
    off_m = draw(st.integers(1, len(materiales))) if flaw == "material_inactivo" else 0
    catalogue = Catalogue(
        [(f, u, i != off_p) for i, (f, u) in enumerate(productos, start=1)],
        [(s, m, i != off_m) for i, (s, m) in enumerate(materiales, start=1)],
        draw(st.integers(0, 2)),
    )
    carrito = draw(
        st.lists(
            st.builds(
                LineaIn,
                producto_id=st.integers(1, len(productos)),
                material_id=st.integers(1, len(materiales)),
                largo=dims,
                ancho=dims,
                espesor_mm=st.sampled_from([*map(int, TABULADOR)] * 8 + [7]),  # 7: no tabulador
                minutos_laser=st.integers(0, 40),
                cantidad=st.integers(1, 6),
                porcentaje_utilidad=st.none() | st.integers(0, 150),
            ),
            min_size=1,
            max_size=5,
        )
    )
    if flaw in ("producto_id", "material_id"):  # one line refers to a row that does not exist
        i = draw(st.integers(0, len(carrito) - 1))
        carrito[i] = replace(carrito[i], **{flaw: MISSING})
    cliente = draw(st.sampled_from(["ninguno", "existente", "nuevo"]))
    if flaw == "cliente_inexistente":
        cliente = "inexistente"
    cliente_id = None
    if cliente == "existente" and catalogue.clientes:
        cliente_id = draw(st.integers(1, catalogue.clientes))
    elif cliente == "inexistente":
        cliente_id = MISSING
    nuevo = (
        ClienteIn(draw(st.sampled_from(["Ana Pérez", "  Luis  ", "Óscar"])))
        if cliente == "nuevo"
        else None
    )
    abono = draw(
        st.sampled_from([Decimal("0"), Decimal("0.00")])
        | st.decimals("0.01", "60", places=2)
        | money
        | st.decimals("900", "5000", places=2)
    )
    venta = VentaIn(
        carrito=carrito,
        cliente_id=cliente_id,
        cliente_nuevo=nuevo,
        monto_abonado=abono,
        metodo_pago=draw(st.sampled_from([*METODOS_PAGO, "trueque"])),
        referencia_pago=draw(st.none() | st.sampled_from(["ref-1", "ñ-2"])),
        fecha_entrega=draw(st.none() | st.dates(date(2026, 1, 1), date(2031, 12, 31))),
        permitir_backorder=draw(st.booleans()),
    )
    return Example(catalogue, venta)


async def _reset(engine: AsyncEngine, catalogue: Catalogue) -> None:
    """Empty every table and write `catalogue` (ids 1..n; new clients get ids above)."""
    async with engine.begin() as conn:
        for table in TABLES:  # children first; DELETE is cheaper than TRUNCATE on tiny tables
            await conn.execute(text(f"DELETE FROM {table}"))
        await conn.execute(
            text(f"SELECT setval(pg_get_serial_sequence('clientes', 'id_cliente'), {MISSING // 2})")
        )
        await conn.execute(
            text(
                "INSERT INTO configuracion_precios (id, tarifa_laser_minuto, version) "
                "VALUES (1, 15.00, 1)"
            )
        )
        await conn.execute(
            text("INSERT INTO tabulador_costos (espesor_mm, factor_costo) VALUES (:e, :f)"),
            [{"e": e, "f": Decimal(f)} for e, f in TABULADOR.items()],
        )
        await conn.execute(
            text(
                "INSERT INTO productos (id_producto, nombre, precio_fijo, porcentaje_utilidad, "
                "activo) VALUES (:i, :n, :p, :u, :a)"
            ),
            [
                {"i": i, "n": f"P{i}", "p": fijo, "u": u, "a": activo}
                for i, (fijo, u, activo) in enumerate(catalogue.productos, start=1)
            ],
        )
        await conn.execute(
            text(
                "INSERT INTO materiales (id_material, descripcion, stock_actual, stock_minimo, "
                "activo) VALUES (:i, :d, :s, :m, :a)"
            ),
            [
                {"i": i, "d": f"M{i}", "s": s, "m": m, "a": activo}
                for i, (s, m, activo) in enumerate(catalogue.materiales, start=1)
            ],
        )
        if catalogue.clientes:
            await conn.execute(
                text(
                    "INSERT INTO clientes (id_cliente, nombre, es_eventual) VALUES (:i, :n, false)"
                ),
                [{"i": i, "n": f"Cliente {i}"} for i in range(1, catalogue.clientes + 1)],
            )
    invalidate_pricing_cache()  # same ids, new attributes: the catalogue cache must not serve


async def _confirm(writer: SaleWriter, engine: AsyncEngine, data: VentaIn) -> Any:
    """What the POS route does: the writer's direct path, else the session path."""
    try:
        result = await writer.confirm_direct(engine, data, ACTOR, None, None)
        if result is None:
            sm = async_sessionmaker(engine, expire_on_commit=False)
            async with sm() as s, s.begin():
                result = await pos.confirm_sale(s, data, ACTOR, writer=writer)
    except DomainError as exc:
        return ("refused", type(exc).__name__, str(exc), getattr(exc, "code", None))
    return (
        "confirmed",
        result.folio == folio_venta(result.venta.id_venta),
        result.total,
        result.saldo_restante,
        result.alertas_stock,
    )


def _plain(value: Any) -> Any:
    """Timestamps (each write draws its own) become a marker; JSON text is parsed."""
    if isinstance(value, datetime):
        return "<timestamp>"
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _plain(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in {"confirmed_at", "time"}}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def _rows(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row the write left, ids replaced by their rank (the writers draw their own ids;
    what must agree is which row refers to which)."""
    async with engine.connect() as conn:
        raw = {
            table: [
                dict(r)
                for r in (
                    await conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))
                ).mappings()
            ]
            for table, key in SNAPSHOT.items()
        }
    venta = {r["id_venta"]: f"venta{i}" for i, r in enumerate(raw["ventas"])}
    linea = {r["id_detalle"]: f"linea{i}" for i, r in enumerate(raw["detalle_venta"])}
    cliente = {r["id_cliente"]: f"cliente{i}" for i, r in enumerate(raw["clientes"])}

    def ids(row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        if out.get("id_venta") is not None:
            out["id_venta"] = venta[out["id_venta"]]
        if out.get("entidad_id") is not None:
            out["entidad_id"] = {"venta": venta, "cliente": cliente}[out["entidad"]][
                out["entidad_id"]
            ]
        if out.get("id_cliente") is not None:
            out["id_cliente"] = cliente[out["id_cliente"]]
        if "id_detalle" in out:
            out["id_detalle"] = linea[out["id_detalle"]]
        for key in ("id_abono", "id", "seq", "folio"):
            out.pop(key, None)
        return out

    out = {t: [ids(r) for r in rows] for t, rows in raw.items() if t != "outbox"}
    events = []
    for r in raw["outbox"]:
        payload = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
        payload = ids(payload)
        payload["lineas"] = [ids(x) for x in payload.get("lineas", [])]
        events.append(
            {
                "aggregatetype": r["aggregatetype"],
                "aggregateid": venta[int(r["aggregateid"])],
                "type": r["type"],
                "topic": r["topic"],
                "payload": payload,
                "published_at": r["published_at"],
            }
        )
    out["outbox"] = events
    return {t: [_plain(r) for r in rows] for t, rows in out.items()}


@pytest.fixture
def runner(pg_database: str) -> Iterator[tuple[asyncio.Runner, AsyncEngine]]:
    with hypothesis_runner(pg_database, MIGRATIONS_DIR, VERSION_TABLE) as pair:
        yield pair


@pytest.mark.integration
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(example=examples())
def test_postgres_and_portable_writers_refuse_and_write_alike(
    runner: tuple[asyncio.Runner, AsyncEngine], example: Example
) -> None:
    loop, engine = runner

    async def run(writer: SaleWriter) -> tuple[Any, dict[str, list[dict[str, Any]]]]:
        await _reset(engine, example.catalogue)
        outcome = await _confirm(writer, engine, example.venta)
        return outcome, await _rows(engine)

    postgres = loop.run(run(PostgresSaleWriter()))
    portable = loop.run(run(PortableSaleWriter()))
    assert postgres == portable
    outcome, rows = postgres
    event(f"{outcome[0]} {outcome[-1] if outcome[0] == 'refused' else ''}".strip())
    if outcome[0] == "confirmed":
        assert outcome[1] is True  # the folio is the sale id's
        assert len(rows["ventas"]) == 1
        assert len(rows["detalle_venta"]) == len(example.venta.carrito)
        assert len(rows["outbox"]) == 1
    else:
        assert rows["ventas"] == rows["outbox"] == []
