"""The shared harness itself: polling with a deadline, answer checks, the vocabulary parser,
the database parametrisation and the spec marker."""

from __future__ import annotations

import httpx
import pytest

from nexo_testing import DATABASES, listed, ok, problem, until
from nexo_testing.plugin import spec_ids


async def test_until_accepts_sync_and_async_conditions() -> None:
    calls: list[int] = []

    def sync_cond() -> bool:
        calls.append(1)
        return len(calls) >= 3

    async def async_cond() -> bool:
        return True

    await until(sync_cond, 5)
    await until(async_cond, 5)
    assert len(calls) == 3


async def test_until_fails_after_its_deadline() -> None:
    with pytest.raises(AssertionError, match="deadline: never"):
        await until(lambda: False, 0.05, "never")


async def test_ok_and_problem_check_the_answer() -> None:
    assert await ok(httpx.Response(201, json={"id": 1}), 201) == {"id": 1}
    assert await ok(httpx.Response(204), 204) is None
    with pytest.raises(AssertionError):
        await ok(httpx.Response(500, json={}), 200)
    body = {"type": "https://nexo.dev/problems/X_Y", "status": 409, "field": "carrito[0].x"}
    answer = httpx.Response(409, json=body, headers={"content-type": "application/problem+json"})
    assert problem(answer, 409, "X_Y", "carrito[0]") == body
    with pytest.raises(AssertionError):
        problem(answer, 409, "OTRO")


def test_listed_reads_sqlite_and_postgres_check_constraints() -> None:
    assert listed("estado IN ('a', 'b')", "estado") == ["a", "b"]
    pg = "((estado)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))"
    assert listed(pg, "estado") == ["a", "b"]
    assert listed("(estado = ANY (ARRAY[1, 4, 5]))", "estado", integers=True) == [1, 4, 5]


def test_the_database_parametrisation_runs_postgres_as_an_integration_test() -> None:
    sqlite, postgres = DATABASES
    assert sqlite == "sqlite"
    assert isinstance(postgres, type(pytest.param("x")))
    assert postgres.values == ("postgres",)
    assert [m.name for m in postgres.marks] == ["integration"]


@pytest.mark.spec("AC-D23", "HO-D12")
def test_the_spec_marker_carries_rule_ids(request: pytest.FixtureRequest) -> None:
    assert spec_ids(request.node) == ["AC-D23", "HO-D12"]
