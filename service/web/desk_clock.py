"""Times typed on the desk (a `datetime-local` field) are wall-clock times on the desk's clock,
TIMEZONE. One that a clock change skips is refused, naming the gap; one that a clock change
repeats is read as the first of the two, and the desk says so."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _

from service.app_state import settings
from service.domain.errors import N_, InvalidInput
from service.domain.local_times import LocalTime, NonexistentTime, read_wall_clock
from service.web.desk_charts import long_date

SCHEDULE_NOT_A_TIME = N_("Give the time to publish as a date and a time.")
EMBARGO_NOT_A_TIME = N_("Give the end of the embargo as a date and a time.")


def schedule_time(raw: str, *, not_a_time: str = SCHEDULE_NOT_A_TIME) -> str | None:
    """A `datetime-local` value (HTML: YYYY-MM-DDTHH:MM[:SS]) as ISO 8601 with its UTC offset;
    None when empty. A value that names its own offset is taken as it is.

    Raises InvalidInput (422) for what is no date and time (`not_a_time`, the message for the
    field it came from), and for a time that does not exist on the desk's clock (it falls in
    the gap when the clocks move forward).
    """
    wall = _wall_time(raw, not_a_time)
    if wall is None:
        return None
    if wall.tzinfo is not None:
        return wall.isoformat()
    return _read(wall).moment.isoformat()


def repeated_hour_notice(raw: str) -> str | None:
    """What the desk says when `raw` (as schedule_time takes it) happens twice on the desk's
    clock: which of the two was taken. None for any other value."""
    try:
        wall = _wall_time(raw, SCHEDULE_NOT_A_TIME)
    except InvalidInput:
        return None
    if wall is None or wall.tzinfo is not None:
        return None
    try:
        local = _read(wall)
    except InvalidInput:
        return None
    if not local.repeated:
        return None
    return _(
        "%(time)s comes twice on %(date)s in %(zone)s, as the clocks go back: the first of "
        "the two was taken, %(time)s %(abbreviation)s (%(offset)s).",
        time=_clock(wall),
        date=long_date(wall.date()),
        zone=settings().timezone,
        abbreviation=local.moment.tzname() or "",
        offset=_utc_offset(local.moment.utcoffset() or timedelta(0)),
    )


def repeated_hour_note(moment: datetime | None) -> str | None:
    """For a stored schedule (aware) in the hour the clocks repeat on the desk's clock: which
    of the two it is, as the editor's field (wall-clock time only) cannot show it. None for
    any other time."""
    if moment is None:
        return None
    zone = settings().zone
    local = moment.astimezone(zone)  # sets fold=1 for the second of the two (PEP 495)
    if local.replace(fold=0).utcoffset() == local.replace(fold=1).utcoffset():
        return None
    values = {
        "time": _clock(local),
        "date": long_date(local.date()),
        "abbreviation": local.tzname() or "",
        "offset": _utc_offset(local.utcoffset() or timedelta(0)),
    }
    if local.fold:
        return _(
            "%(time)s %(abbreviation)s (%(offset)s): the second of the two %(time)s on "
            "%(date)s, after the clocks go back.",
            **values,
        )
    return _(
        "%(time)s %(abbreviation)s (%(offset)s): the first of the two %(time)s on %(date)s, "
        "before the clocks go back.",
        **values,
    )


def _wall_time(raw: str, not_a_time: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        return datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(not_a_time) from None


def _read(wall: datetime) -> LocalTime:
    zone = settings().zone
    try:
        return read_wall_clock(wall, zone)
    except OverflowError:
        # Year 1 or 9999 has no UTC reading in every zone; the domain refuses such a year
        # (releases.parse_datetime) with its own message.
        return LocalTime(moment=wall.replace(tzinfo=zone), repeated=False)
    except NonexistentTime as skipped:
        gap = skipped.gap
        same_day = gap.start.date() == gap.end.date() == wall.date()
        raise InvalidInput(
            N_(
                "%(time)s does not exist on %(date)s in %(zone)s: the clocks move forward "
                "from %(start)s to %(end)s. Choose another time."
            ),
            time=_clock(wall),
            date=long_date(wall.date()),
            zone=zone.key,
            start=_clock(gap.start) if same_day else f"{long_date(gap.start)} {_clock(gap.start)}",
            end=_clock(gap.end) if same_day else f"{long_date(gap.end)} {_clock(gap.end)}",
        ) from None


def _clock(moment: datetime) -> str:
    """24-hour clock time, as both nb and en write it on the desk; seconds only when given."""
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def _utc_offset(offset: timedelta) -> str:
    """UTC+2, UTC-3:30, UTC+0."""
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
