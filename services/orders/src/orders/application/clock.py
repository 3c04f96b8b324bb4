"""The clock of the use cases (timezone-aware) and the random part of folios: tests replace
`now_fn` / `folio_token` here to pin the business date or force folio collisions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from service_defaults.clock import utcnow

now_fn: Callable[[], datetime] = utcnow
"""The clock (timezone-aware). Tests replace it to pin the business date."""


def now() -> datetime:
    return now_fn()


folio_token: Callable[[], str] | None = None
"""Random part of internal folios; None = secrets. Tests replace it to force collisions."""
