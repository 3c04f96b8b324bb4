"""One clock and one business date (`service_defaults.clock`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service_defaults.clock import Clock, FixedClock, SystemClock, business_date, utcnow

MX = ZoneInfo("America/Mexico_City")


def test_business_date_is_the_date_in_the_given_zone() -> None:
    late = datetime(2026, 5, 8, 1, 30, tzinfo=UTC)  # 19:30 on the 7th in Mexico City
    assert business_date(late, MX) == date(2026, 5, 7)
    assert business_date(late, UTC) == date(2026, 5, 8)
    assert business_date(datetime(2026, 5, 8, 6, 0, tzinfo=UTC), MX) == date(2026, 5, 8)


def test_business_date_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="naive"):
        business_date(datetime(2026, 5, 8, 12, 0), MX)


def test_clocks_are_timezone_aware() -> None:
    clocks: list[Clock] = [SystemClock(), FixedClock(datetime(2026, 1, 1, tzinfo=UTC))]
    for clock in clocks:
        assert clock.now().utcoffset() is not None
    assert utcnow().tzinfo is UTC
    before = utcnow()
    assert before <= SystemClock().now() <= utcnow()


def test_fixed_clock_stays_until_moved() -> None:
    clock = FixedClock(datetime(2026, 5, 7, 23, 0, tzinfo=MX))
    assert clock.now() == clock.now() == datetime(2026, 5, 7, 23, 0, tzinfo=MX)
    clock.advance(timedelta(hours=2))
    assert business_date(clock.now(), MX) == date(2026, 5, 8)
    with pytest.raises(ValueError, match="naive"):
        FixedClock(datetime(2026, 5, 7))
