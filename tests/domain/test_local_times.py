"""Wall-clock times across clock changes (service.domain.local_times): a skipped time is found
by its round trip through UTC and the gap is named; a repeated time is read as the first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.domain.local_times import Gap, NonexistentTime, read_wall_clock

OSLO = ZoneInfo("Europe/Oslo")


@pytest.mark.parametrize(
    ("zone", "wall", "gap"),
    [
        ("Europe/Oslo", "2026-03-29T02:30", ("2026-03-29T02:00", "2026-03-29T03:00")),
        ("Europe/Oslo", "2026-03-29T02:00", ("2026-03-29T02:00", "2026-03-29T03:00")),
        ("Europe/Oslo", "2026-03-29T02:59:59", ("2026-03-29T02:00", "2026-03-29T03:00")),
        ("America/New_York", "2027-03-14T02:15", ("2027-03-14T02:00", "2027-03-14T03:00")),
        # Half an hour forward; and Samoa skipped the whole of 30 December 2011.
        ("Australia/Lord_Howe", "2027-10-03T02:15", ("2027-10-03T02:00", "2027-10-03T02:30")),
        ("Pacific/Apia", "2011-12-30T12:00", ("2011-12-30T00:00", "2011-12-31T00:00")),
    ],
)
def test_a_time_the_clocks_skip_is_refused_naming_the_gap(
    zone: str, wall: str, gap: tuple[str, str]
) -> None:
    with pytest.raises(NonexistentTime) as refused:
        read_wall_clock(datetime.fromisoformat(wall), ZoneInfo(zone))
    assert refused.value.gap == Gap(*map(datetime.fromisoformat, gap))


def test_the_repeated_hour_is_read_as_the_first_of_the_two() -> None:
    local = read_wall_clock(datetime(2026, 10, 25, 2, 30), OSLO)
    assert local.repeated
    assert local.moment.utcoffset() == timedelta(hours=2)  # CEST, before the clocks go back
    assert local.moment.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "wall", ["2026-03-29T01:59", "2026-03-29T03:00", "2026-10-25T01:59", "2026-10-25T03:00"]
)
def test_times_beside_a_clock_change_are_plain(wall: str) -> None:
    moment = datetime.fromisoformat(wall)
    local = read_wall_clock(moment, OSLO)
    assert not local.repeated
    assert local.moment.replace(tzinfo=None) == moment
    assert local.moment.astimezone(UTC).astimezone(OSLO).replace(tzinfo=None) == moment
