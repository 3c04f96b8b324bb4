"""GPU eligibility (§C.4.1, DECIDE-C1): the ONE definition of "this production requires a GPU".

A production requires a GPU when its line's annex, normalised as ``upper(trim(anexo))``, is in
the configured set, its volume is greater than :data:`MIN_VOLUME` and its import is active.
The Python predicate (:func:`is_gpu_eligible`, what the GPU sync and billing run) and the SQL
form (:func:`gpu_eligible_sql`, the where-clause of the grid and completeness reads) are both
rendered from the constants below, and ``test_evidence_eligibility.py`` checks they agree on
the boundary cases on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func

DEFAULT_GPU_ANNEXES: frozenset[str] = frozenset({"C-2", "C-3", "C2EXT", "C3EXT"})

ANNEX_PAD = " "
"""What annex normalisation trims: spaces only — SQL ``trim(x)``'s default on every database
(a tab or a no-break space is part of the annex, on both sides)."""

MIN_VOLUME = Decimal(0)
"""A production is eligible only with a volume strictly greater than this."""


def normalize_annex(anexo: str | None) -> str:
    """``upper(trim(anexo))``; ``None`` becomes the empty string."""
    return (anexo or "").strip(ANNEX_PAD).upper()


def gpu_annex_set(annexes: Iterable[str] = DEFAULT_GPU_ANNEXES) -> frozenset[str]:
    """The configured annexes, normalised; the empty annex never requires a GPU (a missing
    annex is NULL in SQL, which no ``IN`` list matches)."""
    return _annex_set(annexes if isinstance(annexes, frozenset) else frozenset(annexes))


@functools.lru_cache(maxsize=64)
def _annex_set(annexes: frozenset[str]) -> frozenset[str]:
    # The GPU sync asks once per production with the same configured set.
    return frozenset(normalize_annex(a) for a in annexes) - {""}


def annex_requires_gpu(anexo: str | None, annexes: Iterable[str] = DEFAULT_GPU_ANNEXES) -> bool:
    return normalize_annex(anexo) in gpu_annex_set(annexes)


def is_gpu_eligible(
    anexo: str | None,
    volumen: Decimal,
    *,
    importacion_activa: bool = True,
    annexes: Iterable[str] = DEFAULT_GPU_ANNEXES,
) -> bool:
    """§C.4.1: annex in the set after normalisation, volume > 0, active import.

    Both TE and CMA rows qualify [DECIDE-C5]; the monthly report is NOT NULL by schema.
    """
    return bool(importacion_activa) and volumen > MIN_VOLUME and annex_requires_gpu(anexo, annexes)


def gpu_eligible_sql(
    *,
    anexo: Any,
    volumen: Any,
    importacion_activa: Any,
    annexes: Iterable[str] = DEFAULT_GPU_ANNEXES,
) -> ColumnElement[bool]:
    """SQL form of :func:`is_gpu_eligible` over these column expressions (a where-clause)."""
    return and_(
        volumen > MIN_VOLUME,
        importacion_activa.is_(True),
        func.upper(func.trim(anexo)).in_(sorted(gpu_annex_set(annexes))),
    )
