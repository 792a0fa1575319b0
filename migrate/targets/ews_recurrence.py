"""An iCalendar RRULE as an Exchange recurrence, and which occurrence of the series a date is.

Exchange holds a series as one pattern (daily, weekly, monthly on a day or on the n-th weekday, yearly
the same) with a start date and an end (a count, a last date, or none). What an RRULE says beyond that
(hourly rules, several month days, BYWEEKNO, ...) cannot be held: the caller keeps the first occurrence
and says the rule was dropped, and why.

Changed and deleted occurrences are addressed by their 1-based index in the series *as Exchange expands
it* (EWS OccurrenceItemId). `Rule.occurrences` therefore expands the pattern with Exchange's meaning,
which differs from iCalendar's in one place: a monthly day 29-31 falls on the last day of a shorter
month instead of skipping it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from dateutil import rrule as du
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)
from exchangelib.recurrence import Recurrence as EwsRecurrence

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
ALL_DAYS = frozenset(range(7))
WORK_DAYS = frozenset(range(5))
WEEKEND = frozenset({5, 6})
# exchangelib's weekday numbers beyond Monday..Sunday (1-7), and its week numbers (5 = last).
EWS_DAY, EWS_WEEKDAY, EWS_WEEKEND_DAY = 8, 9, 10
LAST = 5
MAX_INTERVAL = {"DAILY": 999, "WEEKLY": 99, "MONTHLY": 99}
UNSUPPORTED = {"BYSECOND", "BYMINUTE", "BYHOUR", "BYYEARDAY", "BYWEEKNO"}


class NotExpressible(ValueError):
    """The rule says something an Exchange series cannot hold; the text says what."""


@dataclass(frozen=True)
class Rule:
    """A recurrence reduced to what Exchange can hold. Weekdays are 0 (Monday) .. 6 (Sunday)."""

    freq: str  # DAILY | WEEKLY | MONTHLY | YEARLY
    interval: int = 1
    weekdays: frozenset[int] = frozenset()  # WEEKLY: the days; MONTHLY/YEARLY relative: the day set
    month_day: int | None = None  # absolute monthly/yearly
    week_number: int | None = None  # relative: 1-4, or 5 for the last
    month: int | None = None  # yearly
    first_day_of_week: int = 0
    count: int | None = None
    until: dt.date | None = None  # the last day, in the series' own zone
    changes: tuple[str, ...] = field(default=(), compare=False)  # where Exchange's meaning differs

    # --- exchangelib's form ---------------------------------------------------------------

    def _relative_day(self) -> int:
        if len(self.weekdays) == 1:
            return next(iter(self.weekdays)) + 1
        return {ALL_DAYS: EWS_DAY, WORK_DAYS: EWS_WEEKDAY, WEEKEND: EWS_WEEKEND_DAY}[self.weekdays]

    def pattern(self) -> object:
        if self.freq == "DAILY":
            return DailyPattern(interval=self.interval)
        if self.freq == "WEEKLY":
            return WeeklyPattern(interval=self.interval, weekdays=sorted(d + 1 for d in self.weekdays),
                                 first_day_of_week=self.first_day_of_week + 1)
        if self.freq == "MONTHLY":
            if self.month_day is not None:
                return AbsoluteMonthlyPattern(interval=self.interval, day_of_month=self.month_day)
            return RelativeMonthlyPattern(interval=self.interval, weekday=self._relative_day(),
                                          week_number=self.week_number)
        assert self.month is not None
        if self.month_day is not None:
            return AbsoluteYearlyPattern(day_of_month=self.month_day, month=self.month)
        return RelativeYearlyPattern(weekday=self._relative_day(), week_number=self.week_number, month=self.month)

    def recurrence(self, start: dt.date) -> EwsRecurrence:
        if self.count is not None:
            boundary: object = NumberedPattern(start=start, number=self.count)
        elif self.until is not None:
            boundary = EndDatePattern(start=start, end=max(self.until, start))
        else:
            boundary = NoEndPattern(start=start)
        return EwsRecurrence(pattern=self.pattern(), boundary=boundary)

    # --- the occurrences, as Exchange counts them -----------------------------------------

    def _dateutil(self, start: dt.datetime) -> du.rrule:
        kwargs: dict[str, object] = {"dtstart": start, "interval": self.interval}
        if self.count is not None:
            kwargs["count"] = self.count
        elif self.until is not None:
            kwargs["until"] = dt.datetime.combine(self.until, dt.time.max)
        freq = {"DAILY": du.DAILY, "WEEKLY": du.WEEKLY, "MONTHLY": du.MONTHLY, "YEARLY": du.YEARLY}[self.freq]
        if self.freq == "WEEKLY":
            kwargs["byweekday"] = sorted(self.weekdays)
            kwargs["wkst"] = self.first_day_of_week
        elif self.freq in ("MONTHLY", "YEARLY"):
            if self.month is not None:
                kwargs["bymonth"] = self.month
            if self.month_day is not None:
                # Exchange: a day past the month's end is the month's last day.
                kwargs["bymonthday"] = list(range(min(28, self.month_day), self.month_day + 1))
                kwargs["bysetpos"] = -1
            else:
                kwargs["byweekday"] = sorted(self.weekdays)
                kwargs["bysetpos"] = -1 if self.week_number == LAST else self.week_number
        return du.rrule(freq, **kwargs)

    def occurrences(self, start: dt.datetime) -> Iterator[dt.datetime]:
        """The series' starts as local wall times (naive), from `start` (also naive, local)."""
        return iter(self._dateutil(start))

    def index_of(self, start: dt.datetime, wanted: dt.datetime, by_date: bool = False) -> int | None:
        """The 1-based index of the occurrence that starts at `wanted` (local, naive), or None."""
        for n, when in enumerate(self.occurrences(start), 1):
            if (when.date() == wanted.date()) if by_date else (when == wanted):
                return n
            if when.date() > wanted.date():
                return None
        return None


def _weekdays(text: str) -> list[tuple[int | None, int]]:
    """BYDAY entries as (ordinal or None, weekday 0-6)."""
    out = []
    for entry in filter(None, text.split(",")):
        entry = entry.strip()
        day = entry[-2:]
        if day not in DAYS:
            raise NotExpressible(f"BYDAY={text} is not a list of weekdays")
        ordinal = entry[:-2]
        try:
            out.append((int(ordinal) if ordinal else None, DAYS.index(day)))
        except ValueError:
            raise NotExpressible(f"BYDAY={text} is not a list of weekdays") from None
    return out


def _ints(text: str, name: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise NotExpressible(f"{name}={text} is not a list of numbers") from None


def _week_number(n: int) -> int:
    if n == -1:
        return LAST
    if 1 <= n <= 4:
        return n
    raise NotExpressible(f"the {n}. weekday of a month: Exchange knows the first to fourth and the last")


def _relative(days: list[tuple[int | None, int]], setpos: list[int]) -> tuple[frozenset[int], int]:
    """(day set, week number) of "the n-th <day> of the month" in either of iCalendar's spellings."""
    if len(days) == 1 and days[0][0] is not None and not setpos:
        return frozenset({days[0][1]}), _week_number(days[0][0])
    if any(o is not None for o, _ in days) or len(setpos) != 1:
        raise NotExpressible("several weekdays of the month in one rule")
    chosen = frozenset(d for _, d in days)
    if len(chosen) != 1 and chosen not in (ALL_DAYS, WORK_DAYS, WEEKEND):
        raise NotExpressible("a day set other than one weekday, any day, weekdays or weekend days")
    return chosen, _week_number(setpos[0])


def _until(value: str, zone: dt.tzinfo | None, start: dt.datetime | dt.date) -> dt.date:
    """UNTIL as the last local date of the series (UNTIL is inclusive, and UTC when the start has a zone)."""
    text = value.strip()
    try:
        if "T" not in text:
            return dt.datetime.strptime(text[:8], "%Y%m%d").date()
        when = dt.datetime.strptime(text.rstrip("Z")[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        raise NotExpressible(f"UNTIL={value} is not a date") from None
    if text.endswith("Z"):
        when = when.replace(tzinfo=dt.UTC)
        when = when.astimezone(zone).replace(tzinfo=None) if zone is not None else when.replace(tzinfo=None)
    # An occurrence later in its day than UNTIL's time is not part of the series.
    if isinstance(start, dt.datetime) and when.time() < start.replace(tzinfo=None).time():
        return when.date() - dt.timedelta(days=1)
    return when.date()


def parse_rule(rrule: str, start: dt.datetime | dt.date, zone: dt.tzinfo | None = None) -> Rule:
    """The Exchange form of `rrule` for a series starting at `start` (local); raises NotExpressible."""
    text = rrule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    parts: dict[str, str] = {}
    for part in filter(None, text.split(";")):
        key, _, value = part.partition("=")
        parts[key.strip().upper()] = value.strip().upper()
    freq = parts.get("FREQ", "")
    if freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        raise NotExpressible(f"FREQ={freq or '(none)'}: Exchange repeats daily at the most often")
    unsupported = sorted(UNSUPPORTED & set(parts))
    if unsupported:
        raise NotExpressible(f"{', '.join(unsupported)} cannot be expressed in an Exchange series")
    interval = _ints(parts.get("INTERVAL", "1"), "INTERVAL")[0] if parts.get("INTERVAL") else 1
    days = _weekdays(parts.get("BYDAY", ""))
    month_days = _ints(parts.get("BYMONTHDAY", ""), "BYMONTHDAY")
    months = _ints(parts.get("BYMONTH", ""), "BYMONTH")
    setpos = _ints(parts.get("BYSETPOS", ""), "BYSETPOS")
    count = _ints(parts["COUNT"], "COUNT")[0] if parts.get("COUNT") else None
    until = _until(parts["UNTIL"], zone, start) if parts.get("UNTIL") and count is None else None
    wkst = DAYS.index(parts["WKST"]) if parts.get("WKST") in DAYS else 0
    changes: list[str] = []
    rule: Rule
    if freq == "DAILY" and days and interval == 1 and not (month_days or months or setpos):
        if any(o is not None for o, _ in days):
            raise NotExpressible("a daily rule with numbered weekdays")
        freq = "WEEKLY"  # every day, Monday to Friday: Exchange spells it as a weekly series
    if freq == "DAILY":
        if days or month_days or months or setpos:
            raise NotExpressible("a daily rule limited to some days")
        rule = Rule("DAILY", interval)
    elif freq == "WEEKLY":
        if month_days or months or setpos or any(o is not None for o, _ in days):
            raise NotExpressible("a weekly rule limited to some months, month days or positions")
        chosen = frozenset(d for _, d in days) or frozenset({start.weekday()})
        rule = Rule("WEEKLY", interval, weekdays=chosen, first_day_of_week=wkst)
    else:
        if freq == "MONTHLY" and months:
            raise NotExpressible("a monthly rule limited to some months")
        if len(months) > 1:
            raise NotExpressible("a yearly rule in several months")
        month = (months[0] if months else start.month) if freq == "YEARLY" else None
        if month_days:
            if len(month_days) > 1 or days or setpos:
                raise NotExpressible("several days of the month in one rule")
            day = month_days[0]
            if day == -1:
                rule = Rule(freq, interval, weekdays=ALL_DAYS, week_number=LAST, month=month)
            elif 1 <= day <= 31:
                if day > 28:
                    changes.append(f"day {day} of the month: in shorter months Exchange takes the month's last "
                                   "day, where iCalendar skips the month")
                rule = Rule(freq, interval, month_day=day, month=month)
            else:
                raise NotExpressible(f"BYMONTHDAY={day}: Exchange counts month days from the start, or the last")
        elif days:
            if freq == "MONTHLY" and not setpos and all(o is None for o, _ in days) and interval == 1:
                # Every Monday of every month is every Monday.
                rule = Rule("WEEKLY", 1, weekdays=frozenset(d for _, d in days), first_day_of_week=wkst)
            else:
                chosen, week = _relative(days, setpos)
                rule = Rule(freq, interval, weekdays=chosen, week_number=week, month=month)
        else:
            if setpos:
                raise NotExpressible("BYSETPOS without a day list")
            rule = Rule(freq, interval, month_day=start.day, month=month)
        if rule.freq == "YEARLY" and interval > 1:
            # Exchange's yearly patterns have no interval; every n years is every 12n months from the start.
            if month != start.month or 12 * interval > MAX_INTERVAL["MONTHLY"]:
                raise NotExpressible(f"every {interval} years outside the start's month")
            rule = Rule("MONTHLY", 12 * interval, weekdays=rule.weekdays, month_day=rule.month_day,
                        week_number=rule.week_number)
    if rule.interval < 1 or rule.interval > MAX_INTERVAL.get(rule.freq, 1):
        raise NotExpressible(f"INTERVAL={interval} is more than Exchange's {MAX_INTERVAL.get(rule.freq, 1)}")
    if count is not None and count < 1:
        raise NotExpressible(f"COUNT={count}")
    return Rule(rule.freq, rule.interval, rule.weekdays, rule.month_day, rule.week_number, rule.month,
                rule.first_day_of_week, count, until, tuple(changes))
