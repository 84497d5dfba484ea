"""Wall-clock times read in a time zone, where a clock change makes some of them not exist
(the gap when clocks move forward) and others happen twice (the repeated hour when they move
back). Python's datetime leaves both to `fold` (PEP 495) without a word: a time in a gap is
quietly read with the offset before the change, i.e. moved. Here the gap is found by a round
trip through UTC, and the repeated hour by comparing the offsets of fold=0 and fold=1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Gap:
    """Wall-clock times from `start` (inclusive) to `end` (exclusive) do not exist: at `start`
    the clocks move forward to `end`. Both naive, on the zone's wall clock."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class LocalTime:
    """`moment` (aware, in the zone) is the wall-clock time that was given; `repeated` says
    that time happens twice that night and `moment` is the first (earlier) of the two."""

    moment: datetime
    repeated: bool


class NonexistentTime(ValueError):
    """A wall-clock time inside a gap; `gap` says which."""

    def __init__(self, wall: datetime, zone: ZoneInfo, gap: Gap) -> None:
        super().__init__(f"{wall.isoformat()} does not exist in {zone.key}")
        self.wall = wall
        self.zone = zone
        self.gap = gap


def read_wall_clock(wall: datetime, zone: ZoneInfo) -> LocalTime:
    """`wall` (naive) as a time in `zone`. In the repeated hour the first occurrence (fold=0,
    the offset before the change) is taken and `repeated` is True.

    Raises NonexistentTime when `wall` falls in a gap: it names no instant at all; and
    OverflowError for a time whose UTC reading leaves datetime's range (year 1 or 9999).
    """
    wall = wall.replace(tzinfo=None, fold=0)
    first = wall.replace(tzinfo=zone, fold=0)
    back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != wall:
        raise NonexistentTime(wall, zone, _gap_around(wall, zone))
    second = wall.replace(tzinfo=zone, fold=1)
    return LocalTime(moment=first, repeated=first.utcoffset() != second.utcoffset())


def _gap_around(wall: datetime, zone: ZoneInfo) -> Gap:
    """The gap holding `wall`. The change lies between `wall` read with the new offset and
    `wall` read with the old one, as UTC instants; a binary search over whole seconds finds
    it (any gap, even a whole skipped day)."""
    # (Aware times in one zone compare by wall clock, so compare their timestamps.)
    readings = [wall.replace(tzinfo=zone, fold=fold).timestamp() for fold in (0, 1)]
    low, high = math.floor(min(readings)), math.ceil(max(readings))

    def offset(second: int) -> timedelta:
        reading = datetime.fromtimestamp(second, UTC).astimezone(zone).utcoffset()
        assert reading is not None  # a ZoneInfo always has one
        return reading

    old = offset(low)
    while high - low > 1:
        middle = (low + high) // 2
        if offset(middle) == old:
            low = middle
        else:
            high = middle
    change = datetime.fromtimestamp(high, UTC)
    return Gap(
        start=(change + old).replace(tzinfo=None),
        end=(change + offset(high)).replace(tzinfo=None),
    )
