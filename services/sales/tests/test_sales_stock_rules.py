"""One definition per stock rule (`sales.domain.stock`): the Python predicates and their SQL
forms — the rendered SQL text (PostgreSQL hot path pre-check) and the SQLAlchemy clause (low
stock report) — agree at the boundaries, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from sales import domain as d
from sales.adapters import postgres
from sales.models import Base, Material
from sales.queries import report_bajo_stock
from service_defaults.db import create_engine, driver_connection

# around every boundary, with negative balances (DECIDE-A2: stock may go below zero)
PAIRS = [(a, b) for b in (-2, 0, 3, 10) for a in range(b - 2, b + 3)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'rules.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    async with eng.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield eng
    await eng.dispose()


async def _sql_truth(engine: AsyncEngine, condition: str, left: int, right: int) -> bool:
    stmt = text(
        f"SELECT CASE WHEN {condition} THEN 1 ELSE 0 END "
        "FROM (SELECT CAST(:l AS INTEGER) AS l, CAST(:r AS INTEGER) AS r) x"
    )
    async with engine.connect() as conn:
        return bool((await conn.execute(stmt, {"l": left, "r": right})).scalar_one())


async def test_rendered_sql_forms_agree_with_the_predicates(engine: AsyncEngine) -> None:
    for left, right in PAIRS:
        low = await _sql_truth(engine, d.low_stock_sql("x.l", "x.r"), left, right)
        assert low is d.is_low_stock(left, right), (left, right)
        covered = await _sql_truth(engine, d.covered_sql("x.l", "x.r"), left, right)
        assert covered is d.is_covered(left, right), (left, right)


async def test_admission_sql_is_the_available_to_promise_rule(engine: AsyncEngine) -> None:
    """The writers' atomic admission (`admits_sql`) admits exactly what `check_stock` passes:
    covered by stock_actual − comprometido, or a backorder."""
    for qty, (stock, held) in [(q, p) for q in (1, 3, 5) for p in PAIRS if p[1] >= 0]:
        for backorder in (False, True):
            stmt = text(
                "SELECT CASE WHEN "
                + d.admits_sql("x.q", "x.s", "x.c", "x.b")
                + " THEN 1 ELSE 0 END FROM (SELECT CAST(:q AS INTEGER) AS q, CAST(:s AS INTEGER)"
                " AS s, CAST(:c AS INTEGER) AS c, CAST(:b AS BOOLEAN) AS b) x"
            )
            async with engine.connect() as conn:
                params = {"q": qty, "s": stock, "c": held, "b": backorder}
                admitted = bool((await conn.execute(stmt, params)).scalar_one())
            material = {1: d.MaterialStock(1, "M", stock, 0, held)}
            try:
                d.check_stock(material, {1: qty}, permitir_backorder=backorder)
                passes = True
            except d.Conflict:
                passes = False
            assert admitted is passes, (qty, stock, held, backorder)
            assert passes is (backorder or qty <= stock - held)


def test_predicates_at_the_boundaries() -> None:
    """The rules themselves (DOMAIN §A.4.4): at the minimum is low; exactly the stock is
    covered; the crossing fires only when moving from above the minimum to at/below it."""
    assert d.is_low_stock(3, 3)
    assert d.is_low_stock(2, 3)
    assert not d.is_low_stock(4, 3)
    assert d.is_covered(10, 10)
    assert not d.is_covered(11, 10)
    assert not d.is_covered(0, -1)
    assert d.stock_effect(4, -1, 3).low
    assert not d.stock_effect(3, -1, 3).low
    assert not d.stock_effect(5, -1, 3).low


async def test_low_stock_report_is_the_predicate(engine: AsyncEngine) -> None:
    sm = async_sessionmaker(engine, expire_on_commit=False)
    async with sm() as s, s.begin():
        for i, (actual, minimo) in enumerate(PAIRS):
            if minimo >= 0:
                s.add(Material(descripcion=f"M{i}", stock_actual=actual, stock_minimo=minimo))
    async with sm() as s:
        rows = (
            await s.execute(
                select(Material.id_material, Material.stock_actual, Material.stock_minimo)
            )
        ).all()
        report = await report_bajo_stock(s)
    expected = {mid for mid, actual, minimo in rows if d.is_low_stock(actual, minimo)}
    assert {r["id_material"] for r in report} == expected
    assert 0 < len(expected) < len(rows)


@pytest.mark.integration
async def test_hot_path_precheck_is_the_stock_rule(pg_database: str) -> None:
    """The PostgreSQL pre-check (`sales.adapters.postgres`) draws a sale id exactly when
    `check_stock` passes on stock − comprometido (a disagreement would cost a second round
    trip, or an id for a rejected cart)."""
    engine = create_engine(pg_database)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sm = async_sessionmaker(engine, expire_on_commit=False)
        async with sm() as s, s.begin():
            m = Material(descripcion="M", stock_actual=14, stock_minimo=3, comprometido=4)
            s.add(m)
            await s.flush()
            mid = m.id_material
        stock = {mid: d.MaterialStock(mid, "M", 14, 3, 4)}
        for qty in (9, 10, 11):
            async with driver_connection(engine) as conn:
                head = (
                    await conn.fetch(postgres.READ, [mid], [qty], True, None, False, 1, None, None)
                )[0]
            try:
                d.check_stock(stock, {mid: qty}, permitir_backorder=False)
                passes = True
            except d.Conflict:
                passes = False
            assert (head["id_venta"] is not None) is passes, qty
            assert passes is (qty <= 10)
    finally:
        await engine.dispose()
