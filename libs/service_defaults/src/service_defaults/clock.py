"""Time for the use cases: the :class:`Clock` protocol (timezone-aware `now`), the system clock,
a fixed clock for tests, and the business date of an instant in a service's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


def utcnow() -> datetime:
    """The current instant in UTC (timezone-aware)."""
    return datetime.now(UTC)


class SystemClock:
    """The real clock (UTC)."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that answers `at` until moved (tests pin the business date with it)."""

    at: datetime

    def __post_init__(self) -> None:
        require_aware(self.at)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


def require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required (naive datetime given)")


def business_date(now: datetime, tz: tzinfo) -> date:
    """The date of the instant `now` (timezone-aware) in the business time zone `tz`."""
    require_aware(now)
    return now.astimezone(tz).date()
