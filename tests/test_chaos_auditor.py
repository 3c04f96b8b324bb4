"""The chaos auditor's per-key arithmetic and the retry rules of its load generator (the suite
itself runs with `make chaos`, against real processes)."""

from __future__ import annotations

import httpx

from chaos.auditor import effects_by_key
from chaos.load import Outcome, _retryable
from chaos.scenarios import Result


def _o(key: str, *statuses: int | str, final: int | None) -> Outcome:
    return Outcome(key=key, method="POST", path="/x", statuses=list(statuses), final=final)


def test_effects_by_key_counts_duplicates_lost_and_rejections() -> None:
    outcomes = [
        _o("once", 503, 201, final=201),
        _o("twice", 502, 201, final=201),  # retried after its first attempt committed
        _o("acked-but-missing", 201, final=201),
        _o("never-answered", "ConnectError", final=None),
        _o("rejected", 409, final=409),  # a valid request refused: not lost, but a problem
        _o("failed", 500, final=500),  # reported as 5xx, not as lost
    ]
    audit = effects_by_key(outcomes, {"once": 1, "twice": 2, "rejected": 0}, "sales")
    assert (audit.duplicates, audit.lost) == (1, 2)
    assert not audit.ok
    assert any("1 sales answered [409]" in p for p in audit.problems)
    assert effects_by_key([_o("a", 201, final=201)], {"a": 1}, "sales").ok


def test_result_counts_any_500_seen_even_when_a_retry_succeeded() -> None:
    result = Result(
        "x",
        [_o("a", 500, 201, final=201), _o("b", 503, 503, 201, final=201), _o("c", 201, final=201)],
        effects_by_key([], {}, "sales"),
        1.0,
    )
    assert (result.requests, result.ok2xx, result.retried, result.five_xx) == (3, 3, 2, 1)
    assert not result.passed


def test_only_transient_answers_are_retried() -> None:
    def r(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    assert all(_retryable(r(s)) for s in (502, 503, 504, 429))
    assert _retryable(r(409, **{"Retry-After": "1"}))  # in flight under the same key
    assert not any(_retryable(r(s)) for s in (200, 201, 409, 422, 500))
