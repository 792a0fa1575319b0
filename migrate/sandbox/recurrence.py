"""Recurring series as Exchange expands them: the occurrences of a t:Recurrence, and Windows time zones.

Exchange addresses an occurrence by its 1-based index in the series (OccurrenceItemId/InstanceIndex) and
keeps the series' times as wall times in its start zone, so DST moves the UTC time, not the local one.
A day of the month past the month's end falls on its last day (Exchange's rule, unlike iCalendar's).
Written from the EWS documentation, independently of the EWS target's own expansion, so the two check
each other in tests.
"""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree
from tzlocal.windows_tz import win_tz

from .soap import t

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
INDEXES = ("First", "Second", "Third", "Fourth", "Last")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
LIMIT = 20000  # occurrences looked at for one series without an end


def windows_zone(zone_id: str) -> zoneinfo.ZoneInfo | None:
    """The rules of a Windows time zone id as Exchange knows it, or None for an id it does not know."""
    name = win_tz.get(zone_id)
    if name is None:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Pattern:
    kind: str  # the element name: DailyRecurrence, WeeklyRecurrence, ...
    interval: int = 1
    days: tuple[str, ...] = ()  # DaysOfWeek: Monday..Sunday, Day, Weekday, WeekendDay
    day_of_month: int | None = None
    index: str | None = None  # DayOfWeekIndex
    month: int | None = None
    first_day: int = 0
    start: dt.date = dt.date.min
    end: dt.date | None = None
    count: int | None = None

    def as_json(self) -> dict[str, object]:
        return {"pattern": self.kind, "interval": self.interval, "days_of_week": list(self.days),
                "day_of_month": self.day_of_month, "day_of_week_index": self.index, "month": self.month,
                "first_day_of_week": DAYS[self.first_day], "start_date": self.start.isoformat(),
                "end_date": self.end.isoformat() if self.end else None, "number_of_occurrences": self.count}


def parse_pattern(recurrence: etree._Element) -> Pattern:
    """The pattern and range of a t:Recurrence element (already schema-valid)."""
    nodes = [c for c in recurrence if isinstance(c.tag, str)]
    pattern, limit = nodes[0], nodes[1]

    def text(el: etree._Element, name: str) -> str | None:
        found = el.find(t(name))
        return found.text.strip() if found is not None and found.text else None

    kind = etree.QName(pattern).localname
    month = text(pattern, "Month")
    first = text(pattern, "FirstDayOfWeek")
    end = text(limit, "EndDate")
    count = text(limit, "NumberOfOccurrences")
    return Pattern(
        kind=kind, interval=int(text(pattern, "Interval") or 1),
        days=tuple((text(pattern, "DaysOfWeek") or "").split()),
        day_of_month=int(text(pattern, "DayOfMonth") or 0) or None, index=text(pattern, "DayOfWeekIndex"),
        month=MONTHS.index(month) + 1 if month else None, first_day=DAYS.index(first) if first else 0,
        start=dt.date.fromisoformat((text(limit, "StartDate") or "")[:10]),
        end=dt.date.fromisoformat(end[:10]) if end else None, count=int(count) if count else None,
    )


def _day_of(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _nth(year: int, month: int, days: tuple[str, ...], index: str) -> dt.date:
    """The First..Fourth or Last day of a kind (a weekday, any Day, a Weekday, a WeekendDay) in a month."""
    wanted: set[int] = set()
    for day in days:
        if day == "Day":
            wanted |= set(range(7))
        elif day == "Weekday":
            wanted |= set(range(5))
        elif day == "WeekendDay":
            wanted |= {5, 6}
        else:
            wanted.add(DAYS.index(day))
    last = calendar.monthrange(year, month)[1]
    matching = [dt.date(year, month, d) for d in range(1, last + 1) if dt.date(year, month, d).weekday() in wanted]
    return matching[-1] if index == "Last" else matching[INDEXES.index(index)]


def _dates(p: Pattern) -> Iterator[dt.date]:
    start = p.start
    if p.kind == "DailyRecurrence":
        day = start
        while True:
            yield day
            day += dt.timedelta(days=p.interval)
    elif p.kind == "WeeklyRecurrence":
        wanted = sorted((DAYS.index(d) - p.first_day) % 7 for d in p.days)
        week = start - dt.timedelta(days=(start.weekday() - p.first_day) % 7)
        while True:
            for offset in wanted:
                day = week + dt.timedelta(days=offset)
                if day >= start:
                    yield day
            week += dt.timedelta(weeks=p.interval)
    elif p.kind in ("AbsoluteMonthlyRecurrence", "RelativeMonthlyRecurrence"):
        year, month = start.year, start.month
        while True:
            if p.kind == "AbsoluteMonthlyRecurrence":
                day = _day_of(year, month, p.day_of_month or 1)
            else:
                day = _nth(year, month, p.days, p.index or "First")
            if day >= start:
                yield day
            month += p.interval
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    else:  # AbsoluteYearlyRecurrence, RelativeYearlyRecurrence
        year = start.year
        while True:
            month = p.month or 1
            if p.kind == "AbsoluteYearlyRecurrence":
                day = _day_of(year, month, p.day_of_month or 1)
            else:
                day = _nth(year, month, p.days, p.index or "First")
            if day >= start:
                yield day
            year += 1


def occurrence_dates(p: Pattern) -> Iterator[tuple[int, dt.date]]:
    """(1-based index, local date) of every occurrence of the pattern within its range."""
    for n, day in enumerate(_dates(p), 1):
        if (p.count is not None and n > p.count) or (p.end is not None and day > p.end) or n > LIMIT:
            return
        yield n, day


def occurrence_start(p: Pattern, first_start: dt.datetime, zone: dt.tzinfo, index: int) -> dt.datetime | None:
    """The UTC start of occurrence `index`: its date at the series' local start time in the series' zone."""
    local_time = first_start.astimezone(zone).time()
    for n, day in occurrence_dates(p):
        if n == index:
            return dt.datetime.combine(day, local_time, zone).astimezone(dt.UTC)
    return None
