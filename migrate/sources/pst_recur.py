"""Outlook's recurrence blob (PidLidAppointmentRecur, [MS-OXOCAL] 2.2.1.44) and time zone
definitions (PidLidAppointmentTimeZoneDefinition*, 2.2.1.41), decoded into plain values.

Every time in the blob is local to the series' time zone, counted in minutes since 1601.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from migrate.sources.pst_props import minutes_1601

DAILY, WEEKLY, MONTHLY, YEARLY = 0x200A, 0x200B, 0x200C, 0x200D
PATTERN_DAY, PATTERN_WEEK, PATTERN_MONTH, PATTERN_MONTH_END, PATTERN_MONTH_NTH = 0x0, 0x1, 0x2, 0x3, 0x4
END_AFTER_DATE, END_AFTER_COUNT = 0x2021, 0x2022
WEEKDAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")  # bit 0 is Sunday

ARO_SUBJECT, ARO_MEETINGTYPE, ARO_REMINDERDELTA, ARO_REMINDER = 0x1, 0x2, 0x4, 0x8
ARO_LOCATION, ARO_BUSYSTATUS, ARO_ATTACHMENT, ARO_SUBTYPE, ARO_APPTCOLOR = 0x10, 0x20, 0x40, 0x80, 0x100


class RecurrenceError(ValueError):
    """The blob is cut short or does not follow the format."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise RecurrenceError("the recurrence pattern is cut short")
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return int(value)

    def raw(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise RecurrenceError("the recurrence pattern is cut short")
        value = self.data[self.at:self.at + size]
        self.at += size
        return value

    @property
    def left(self) -> int:
        return len(self.data) - self.at


@dataclass
class ExceptionInfo:
    """One changed occurrence; start, end and original start are local times."""

    start: datetime
    end: datetime
    original_start: datetime
    flags: int
    subject: str | None = None
    location: str | None = None
    busy_status: int | None = None
    reminder_delta: int | None = None
    reminder_set: bool | None = None
    all_day: bool | None = None


@dataclass
class Pattern:
    frequency: int
    pattern_type: int
    calendar_type: int
    period: int
    days_mask: int = 0
    day_of_month: int = 0
    nth: int = 0
    end_type: int = 0
    occurrences: int = 0
    first_dow: int = 0
    deleted: list[datetime] = field(default_factory=list)  # local midnight of each deleted original date
    modified: list[datetime] = field(default_factory=list)
    start_date: datetime = datetime(1601, 1, 1)
    end_date: datetime = datetime(1601, 1, 1)
    start_offset: int = 0  # minutes after midnight the occurrences start
    end_offset: int = 0
    exceptions: list[ExceptionInfo] = field(default_factory=list)


def _ansi(reader: _Reader) -> str:
    reader.take("<H")
    length = reader.take("<H")
    return reader.raw(length).decode("cp1252", "replace")


def parse_recurrence(data: bytes) -> Pattern:
    r = _Reader(data)
    r.take("<H")
    r.take("<H")
    frequency, pattern_type, calendar_type = r.take("<H"), r.take("<H"), r.take("<H")
    r.take("<I")  # FirstDateTime
    period = r.take("<I")
    r.take("<I")  # SlidingFlag
    pattern = Pattern(frequency, pattern_type, calendar_type, period)
    if pattern_type in (PATTERN_WEEK,):
        pattern.days_mask = r.take("<I")
    elif pattern_type in (PATTERN_MONTH, PATTERN_MONTH_END, 0xA, 0xC):
        pattern.day_of_month = r.take("<I")
    elif pattern_type in (PATTERN_MONTH_NTH, 0xB):
        pattern.days_mask = r.take("<I")
        pattern.nth = r.take("<I")
    pattern.end_type = r.take("<I")
    pattern.occurrences = r.take("<I")
    pattern.first_dow = r.take("<I")
    pattern.deleted = [minutes_1601(r.take("<I")) for _ in range(_count(r))]
    pattern.modified = [minutes_1601(r.take("<I")) for _ in range(_count(r))]
    pattern.start_date = minutes_1601(r.take("<I"))
    pattern.end_date = minutes_1601(r.take("<I"))
    if r.left < 8:
        return pattern  # a bare RecurrencePattern (tasks write these)
    r.take("<I")
    writer_version = r.take("<I")
    pattern.start_offset, pattern.end_offset = r.take("<I"), r.take("<I")
    count = r.take("<H")
    for _ in range(count):
        start, end, original = (minutes_1601(r.take("<I")) for _ in range(3))
        info = ExceptionInfo(start, end, original, r.take("<H"))
        if info.flags & ARO_SUBJECT:
            info.subject = _ansi(r)
        if info.flags & ARO_MEETINGTYPE:
            r.take("<I")
        if info.flags & ARO_REMINDERDELTA:
            info.reminder_delta = r.take("<i")
        if info.flags & ARO_REMINDER:
            info.reminder_set = bool(r.take("<I"))
        if info.flags & ARO_LOCATION:
            info.location = _ansi(r)
        if info.flags & ARO_BUSYSTATUS:
            info.busy_status = r.take("<I")
        if info.flags & ARO_ATTACHMENT:
            r.take("<I")
        if info.flags & ARO_SUBTYPE:
            info.all_day = bool(r.take("<I"))
        if info.flags & ARO_APPTCOLOR:
            r.take("<I")
        pattern.exceptions.append(info)
    r.raw(r.take("<I"))  # ReservedBlock1
    if writer_version >= 0x3009:
        for info in pattern.exceptions:
            _extended(r, info)
    return pattern


def _extended(r: _Reader, info: ExceptionInfo) -> None:
    """The Unicode subject and location of an exception (they win over the 8-bit ones)."""
    r.raw(r.take("<I"))  # ChangeHighlight
    r.raw(r.take("<I"))  # ReservedBlockEE1
    if info.flags & (ARO_SUBJECT | ARO_LOCATION):
        r.raw(12)  # start, end and original start again
        if info.flags & ARO_SUBJECT:
            info.subject = r.raw(2 * r.take("<H")).decode("utf-16-le", "replace")
        if info.flags & ARO_LOCATION:
            info.location = r.raw(2 * r.take("<H")).decode("utf-16-le", "replace")
        r.raw(r.take("<I"))  # ReservedBlockEE2


def _count(r: _Reader) -> int:
    count = r.take("<I")
    if count * 4 > r.left:
        raise RecurrenceError("the recurrence pattern lists more dates than it holds")
    return count


# --- time zones ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneRule:
    """One TZRULE: bias in minutes (UTC = local + bias) and the yearly switch dates."""

    year: int
    bias: int
    standard_bias: int
    daylight_bias: int
    standard: tuple[int, ...]  # SYSTEMTIME: year, month, day of week, day (week number), hour, minute
    daylight: tuple[int, ...]

    @property
    def has_dst(self) -> bool:
        return self.standard[1] != 0 and self.daylight[1] != 0


@dataclass(frozen=True)
class ZoneDefinition:
    key_name: str
    rules: tuple[ZoneRule, ...]


def parse_zone_definition(data: bytes) -> ZoneDefinition:
    """A TZDEFINITION blob ([MS-OXOCAL] 2.2.1.41)."""
    r = _Reader(data)
    r.take("<B")
    r.take("<B")
    header = r.take("<H")
    start = r.at
    r.take("<H")
    key_name = r.raw(2 * r.take("<H")).decode("utf-16-le", "replace")
    r.at = start + header - 2 if header >= 6 else r.at
    rules = []
    for _ in range(r.take("<H")):
        r.raw(4)
        r.take("<H")  # flags
        year = r.take("<H")
        r.raw(14)
        bias, standard_bias, daylight_bias = r.take("<i"), r.take("<i"), r.take("<i")
        standard = tuple(r.take("<H") for _ in range(8))
        daylight = tuple(r.take("<H") for _ in range(8))
        rules.append(ZoneRule(year, bias, standard_bias, daylight_bias, standard, daylight))
    return ZoneDefinition(key_name, tuple(rules))


def parse_zone_struct(data: bytes, name: str) -> ZoneDefinition:
    """The older PidLidTimeZoneStruct (2.2.1.39): one rule, no year."""
    if len(data) < 48:
        raise RecurrenceError("the time zone structure is cut short")
    bias, standard_bias, daylight_bias = struct.unpack_from("<iii", data)
    standard = struct.unpack_from("<8H", data, 14)
    daylight = struct.unpack_from("<8H", data, 32)
    return ZoneDefinition(name, (ZoneRule(0, bias, standard_bias, daylight_bias, standard, daylight),))


def _switch(year: int, when: tuple[int, ...]) -> datetime:
    """The local time a SYSTEMTIME rule switches in `year` (day = week number, 5 = last)."""
    _, month, weekday, week, hour, minute = when[:6]
    first = datetime(year, month, 1)
    day = first + timedelta(days=(weekday - (first.isoweekday() % 7)) % 7 + 7 * (week - 1))
    while day.month != month:
        day -= timedelta(days=7)
    return day.replace(hour=hour % 24, minute=minute)


class WindowsZone(tzinfo):
    """A tzinfo from an Outlook time zone rule, for zones with no IANA name."""

    def __init__(self, definition: ZoneDefinition) -> None:
        self.definition = definition

    def _rule(self, year: int) -> ZoneRule:
        rules = sorted(self.definition.rules, key=lambda r: r.year)
        chosen = rules[0]
        for rule in rules:
            if rule.year <= year:
                chosen = rule
        return chosen

    def _is_dst(self, local: datetime) -> bool:
        rule = self._rule(local.year)
        if not rule.has_dst:
            return False
        naive = local.replace(tzinfo=None)
        begins, ends = _switch(local.year, rule.daylight), _switch(local.year, rule.standard)
        return begins <= naive < ends if begins < ends else not ends <= naive < begins

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return -timedelta(minutes=self._rule(2000).bias)
        rule = self._rule(dt.year)
        extra = rule.daylight_bias if self._is_dst(dt) else rule.standard_bias
        return -timedelta(minutes=rule.bias + extra)

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None or not self._is_dst(dt):
            return timedelta(0)
        rule = self._rule(dt.year)
        return -timedelta(minutes=rule.daylight_bias - rule.standard_bias)

    def tzname(self, dt: datetime | None) -> str:
        return self.definition.key_name
