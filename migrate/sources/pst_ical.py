"""An Outlook appointment (IPM.Appointment) as one standalone iCalendar object.

One VCALENDAR per appointment: its VTIMEZONE, the master VEVENT (with RRULE and EXDATE for a
series) and a VEVENT with RECURRENCE-ID for each changed occurrence, so the engine moves a series
as one item. The series' zone is Outlook's Windows zone, written under its IANA name when there is
one (the CLDR table icalendar ships), otherwise as a VTIMEZONE built from Outlook's own rule.
The UID is the meeting's global object id as hex, as Outlook writes it in its own iCalendar
exports, or the original UID when the meeting came from another calendar (a "vCal-Uid" id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Alarm, Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress, vText
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from migrate.sources.pst_mime import PstAttachment, subject
from migrate.sources.pst_props import (
    PS_PUBLIC_STRINGS,
    PSETID_APPOINTMENT,
    PSETID_COMMON,
    PSETID_MEETING,
    HeapError,
    Props,
)
from migrate.sources.pst_recur import (
    DAILY,
    END_AFTER_COUNT,
    END_AFTER_DATE,
    MONTHLY,
    PATTERN_MONTH_END,
    PATTERN_MONTH_NTH,
    PATTERN_WEEK,
    WEEKDAYS,
    WEEKLY,
    YEARLY,
    ExceptionInfo,
    Pattern,
    RecurrenceError,
    WindowsZone,
    ZoneDefinition,
    _switch,
    parse_recurrence,
    parse_zone_definition,
    parse_zone_struct,
)

PRODID = "-//o365-migrate//PST appointment//EN"

LID_START, LID_END, LID_LOCATION, LID_BUSY = (PSETID_APPOINTMENT, 0x820D), (PSETID_APPOINTMENT, 0x820E), \
    (PSETID_APPOINTMENT, 0x8208), (PSETID_APPOINTMENT, 0x8205)
LID_ALL_DAY, LID_RECUR, LID_STATE = (PSETID_APPOINTMENT, 0x8215), (PSETID_APPOINTMENT, 0x8216), \
    (PSETID_APPOINTMENT, 0x8217)
LID_SEQUENCE, LID_TZ_STRUCT, LID_TZ_DESCRIPTION = (PSETID_APPOINTMENT, 0x8201), (PSETID_APPOINTMENT, 0x8233), \
    (PSETID_APPOINTMENT, 0x8234)
LID_TZ_START, LID_TZ_RECUR = (PSETID_APPOINTMENT, 0x825E), (PSETID_APPOINTMENT, 0x8260)
LID_EXCEPTION_REPLACE = (PSETID_APPOINTMENT, 0x8228)
LID_REMINDER_DELTA, LID_REMINDER_SET = (PSETID_COMMON, 0x8501), (PSETID_COMMON, 0x8503)
LID_GLOBAL_ID, LID_CLEAN_GLOBAL_ID = (PSETID_MEETING, 0x0003), (PSETID_MEETING, 0x0023)
KEYWORDS = (PS_PUBLIC_STRINGS, "Keywords")
PR_BODY, PR_SENSITIVITY, PR_CREATION_TIME, PR_LAST_MODIFICATION_TIME = 0x1000, 0x0036, 0x3007, 0x3008
PR_SENT_REPRESENTING_NAME, PR_SENT_REPRESENTING_SMTP, PR_SENT_REPRESENTING_EMAIL = 0x0042, 0x5D02, 0x0065
PR_RECIPIENT_TYPE, PR_DISPLAY_NAME, PR_EMAIL_ADDRESS, PR_SMTP_ADDRESS = 0x0C15, 0x3001, 0x3003, 0x39FE
PR_RECIPIENT_FLAGS, PR_RECIPIENT_TRACKSTATUS, PR_SEARCH_KEY = 0x5FFD, 0x5FFF, 0x300B

_BUSY = {0: "FREE", 1: "TENTATIVE", 2: "BUSY", 3: "OOF", 4: "WORKINGELSEWHERE"}
_CLASS = {0: "PUBLIC", 1: "PRIVATE", 2: "PRIVATE", 3: "CONFIDENTIAL"}
_ROLE = {1: "REQ-PARTICIPANT", 2: "OPT-PARTICIPANT", 3: "NON-PARTICIPANT"}
_PARTSTAT = {2: "TENTATIVE", 3: "ACCEPTED", 4: "DECLINED"}
_VCAL_UID = b"vCal-Uid\x01\x00\x00\x00"
ASF_CANCELED = 0x4
RECIP_ORGANIZER = 0x2


@dataclass(frozen=True)
class _SeriesDefaults:
    """What a changed occurrence inherits from its series unless it says otherwise."""

    summary: str | None
    location: str | None
    description: str | None
    busy: int | None
    reminder: int | None  # minutes before the start; None: no reminder
    stamp: datetime


@dataclass
class ConvertedEvent:
    raw: bytes
    uid: str
    start: datetime | None  # the local start (midnight of the first day for an all-day event)
    summary: str | None


def _uid(props: Props, notes: list[str]) -> str:
    for key in (LID_GLOBAL_ID, LID_CLEAN_GLOBAL_ID):
        found = props.binary(key)
        if found and len(found) >= 40:
            data = found[40:]
            if data.startswith(_VCAL_UID):
                return data[len(_VCAL_UID):].rstrip(b"\x00").decode("utf-8", "replace")
            if key == LID_GLOBAL_ID:
                found = found[:16] + b"\x00\x00\x00\x00" + found[20:]  # the instance date belongs to exceptions
            return found.hex().upper()
    seed = props.binary(PR_SEARCH_KEY) or (subject(props) or "").encode()
    notes.append("UID: Outlook kept no meeting id; one was made from the item's search key")
    return "pst-" + hashlib.sha256(seed).hexdigest()[:32]


def _zone(props: Props, notes: list[str]) -> tuple[tzinfo, ZoneDefinition | None]:
    definition: ZoneDefinition | None = None
    for key in (LID_TZ_RECUR, LID_TZ_START):
        blob = props.binary(key)
        if blob:
            try:
                definition = parse_zone_definition(blob)
                break
            except RecurrenceError:
                notes.append("time zone: Outlook's zone definition is damaged")
    if definition is None and (blob := props.binary(LID_TZ_STRUCT)):
        try:
            definition = parse_zone_struct(blob, props.text(LID_TZ_DESCRIPTION) or "Outlook zone")
        except RecurrenceError:
            notes.append("time zone: Outlook's zone structure is damaged")
    if definition is None:
        return UTC, None
    iana = WINDOWS_TO_OLSON.get(definition.key_name)
    if iana:
        try:
            return ZoneInfo(iana), definition
        except ZoneInfoNotFoundError:
            pass
    if not definition.rules:
        return UTC, None
    return WindowsZone(definition), definition


def _local(when: datetime | None, zone: tzinfo) -> datetime | None:
    return None if when is None else when.astimezone(zone)


def appointment_ics(props: Props, attachments: list[PstAttachment], recipients: list[Props],
                    notes: list[str]) -> ConvertedEvent:
    """The appointment as iCalendar bytes, with what could not be carried in `notes`."""
    zone, definition = _zone(props, notes)
    uid = _uid(props, notes)
    all_day = bool(props.bool(LID_ALL_DAY))
    start, end = _local(props.time(LID_START), zone), _local(props.time(LID_END), zone)
    master = Event()
    master.add("uid", uid)
    summary = subject(props)
    if summary is not None:
        master.add("summary", summary)
    if start is not None:
        master.add("dtstart", start.date() if all_day else start)
    if end is not None:
        master.add("dtend", end.date() if all_day else end)
    if start is None:
        notes.append("start: the appointment has no start time")
    stamp = props.time(PR_LAST_MODIFICATION_TIME) or props.time(PR_CREATION_TIME) or datetime(1970, 1, 1, tzinfo=UTC)
    _describe(master, props, recipients, stamp)
    body = props.text(PR_BODY)
    defaults = _SeriesDefaults(summary, props.text(LID_LOCATION), body.replace("\r\n", "\n") if body else None,
                               props.int(LID_BUSY), (props.int(LID_REMINDER_DELTA) or 15)
                               if props.bool(LID_REMINDER_SET) else None, stamp)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    overrides: list[Event] = []
    blob = props.binary(LID_RECUR)
    if blob and start is not None:
        try:
            pattern = parse_recurrence(blob)
        except RecurrenceError as err:
            notes.append(f"recurrence: {err}; the series is carried as its first occurrence only")
        else:
            overrides = _series(master, pattern, start, all_day, zone, defaults, attachments, notes)
    calendar.add_component(master)
    for override in overrides:
        calendar.add_component(override)
    if isinstance(zone, WindowsZone) and definition is not None:
        calendar.add_component(_vtimezone(definition))
    elif zone is not UTC:
        calendar.add_missing_timezones()
    return ConvertedEvent(calendar.to_ical(), uid, start, summary)


def _describe(event: Event, props: Props, recipients: list[Props], stamp: datetime) -> None:
    body = props.text(PR_BODY)
    if body and body.strip():
        event.add("description", body.replace("\r\n", "\n"))
    location = props.text(LID_LOCATION)
    if location:
        event.add("location", location)
    busy = props.int(LID_BUSY)
    if busy is not None and busy in _BUSY:
        event.add("transp", "TRANSPARENT" if busy == 0 else "OPAQUE")
        event.add("x-microsoft-cdo-busystatus", _BUSY[busy])
    sensitivity = props.int(PR_SENSITIVITY)
    if sensitivity:
        event.add("class", _CLASS.get(sensitivity, "PRIVATE"))
    if (props.int(LID_STATE) or 0) & ASF_CANCELED:
        event.add("status", "CANCELLED")
    categories = props.texts(KEYWORDS)
    if categories:
        event.add("categories", categories)
    for tag, name in ((PR_CREATION_TIME, "created"), (PR_LAST_MODIFICATION_TIME, "last-modified")):
        when = props.time(tag)
        if when is not None:
            event.add(name, when)
    event.add("dtstamp", stamp)
    sequence = props.int(LID_SEQUENCE)
    if sequence:
        event.add("sequence", sequence)
    if props.bool(LID_REMINDER_SET):
        _alarm(event, props.int(LID_REMINDER_DELTA) or 15)
    organizer = props.text(PR_SENT_REPRESENTING_SMTP) or props.text(PR_SENT_REPRESENTING_EMAIL)
    if organizer and "@" in organizer:
        address = vCalAddress(f"mailto:{organizer}")
        if organizer_name := props.text(PR_SENT_REPRESENTING_NAME):
            address.params["cn"] = vText(organizer_name)
        event.add("organizer", address)
    for row in recipients:
        if (row.int(PR_RECIPIENT_FLAGS) or 0) & RECIP_ORGANIZER:
            continue
        email = row.text(PR_SMTP_ADDRESS) or row.text(PR_EMAIL_ADDRESS)
        if not email or "@" not in email:
            continue
        attendee = vCalAddress(f"mailto:{email}")
        if attendee_name := row.text(PR_DISPLAY_NAME):
            attendee.params["cn"] = vText(attendee_name)
        kind = (row.int(PR_RECIPIENT_TYPE) or 1) & 0x3
        attendee.params["role"] = _ROLE.get(kind, "REQ-PARTICIPANT")
        if kind == 3:
            attendee.params["cutype"] = "RESOURCE"
        attendee.params["partstat"] = _PARTSTAT.get(row.int(PR_RECIPIENT_TRACKSTATUS) or 0, "NEEDS-ACTION")
        event.add("attendee", attendee)


def _alarm(event: Event, minutes: int) -> None:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", "Reminder")
    alarm.add("trigger", timedelta(minutes=-minutes))
    event.add_component(alarm)


def _rrule(pattern: Pattern, start: datetime, all_day: bool, zone: tzinfo, notes: list[str]) -> dict[str, object]:
    rule: dict[str, object] = {}
    days = [WEEKDAYS[i] for i in range(7) if pattern.days_mask & (1 << i)]
    if pattern.calendar_type not in (0, 1):
        notes.append(f"recurrence: calendar type {pattern.calendar_type} (not Gregorian) is carried as Gregorian")
    if pattern.frequency == DAILY and pattern.pattern_type == PATTERN_WEEK:
        rule = {"freq": "WEEKLY", "byday": days}  # "every weekday"
    elif pattern.frequency == DAILY:
        rule = {"freq": "DAILY", "interval": max(1, pattern.period // 1440)}
    elif pattern.frequency == WEEKLY:
        rule = {"freq": "WEEKLY", "interval": max(1, pattern.period), "byday": days,
                "wkst": WEEKDAYS[pattern.first_dow % 7]}
    elif pattern.frequency in (MONTHLY, YEARLY):
        months = max(1, pattern.period)
        if pattern.frequency == YEARLY or (months % 12 == 0 and pattern.frequency == YEARLY):
            rule = {"freq": "YEARLY", "interval": max(1, months // 12), "bymonth": start.month}
        else:
            rule = {"freq": "MONTHLY", "interval": months}
        if pattern.pattern_type == PATTERN_MONTH_NTH:
            rule.update(byday=days, bysetpos=-1 if pattern.nth == 5 else pattern.nth)
        elif pattern.pattern_type == PATTERN_MONTH_END or pattern.day_of_month >= 31:
            rule["bymonthday"] = -1
        else:
            rule["bymonthday"] = pattern.day_of_month or start.day
    else:
        raise RecurrenceError(f"unknown recurrence frequency 0x{pattern.frequency:x}")
    if pattern.end_type == END_AFTER_COUNT and pattern.occurrences:
        rule["count"] = pattern.occurrences
    elif pattern.end_type == END_AFTER_DATE:
        last = pattern.end_date + timedelta(minutes=pattern.start_offset)
        rule["until"] = last.date() if all_day else last.replace(tzinfo=zone).astimezone(UTC)
    return {k: v for k, v in rule.items() if v not in ([], None)}


def _series(master: Event, pattern: Pattern, start: datetime, all_day: bool, zone: tzinfo,
            defaults: _SeriesDefaults, attachments: list[PstAttachment], notes: list[str]) -> list[Event]:
    try:
        master.add("rrule", _rrule(pattern, start, all_day, zone, notes))
    except RecurrenceError as err:
        notes.append(f"recurrence: {err}; the series is carried as its first occurrence only")
        return []
    changed = {info.original_start.date() for info in pattern.exceptions}
    for deleted in pattern.deleted:
        if deleted.date() in changed:
            continue  # a changed occurrence: it gets its own VEVENT below
        when = deleted + timedelta(minutes=pattern.start_offset)
        master.add("exdate", when.date() if all_day else when.replace(tzinfo=zone))
    bodies = _exception_bodies(attachments, zone, notes)
    overrides = []
    for info in pattern.exceptions:
        overrides.append(_override(str(master["uid"]), info, all_day, zone, defaults, bodies))
    return overrides


def _exception_bodies(attachments: list[PstAttachment], zone: tzinfo, notes: list[str]) -> dict[datetime, Props]:
    """The exception messages Outlook attaches to a series, by the original start they replace."""
    found: dict[datetime, Props] = {}
    for attachment in attachments:
        if attachment.embedded is None:
            continue
        try:
            inner = attachment.embedded().props
        except (OSError, ValueError, HeapError) as err:
            notes.append(f"recurrence: a changed occurrence's details cannot be read ({err})")
            continue
        replaced = inner.time(LID_EXCEPTION_REPLACE)
        if replaced is not None:
            found[replaced.astimezone(zone).replace(tzinfo=None)] = inner
    return found


def _override(uid: str, info: ExceptionInfo, all_day: bool, zone: tzinfo, defaults: _SeriesDefaults,
              bodies: dict[datetime, Props]) -> Event:
    event = Event()
    event.add("uid", uid)
    day_event = all_day if info.all_day is None else info.all_day
    event.add("recurrence-id", info.original_start.date() if all_day else info.original_start.replace(tzinfo=zone))
    event.add("dtstart", info.start.date() if day_event else info.start.replace(tzinfo=zone))
    event.add("dtend", info.end.date() if day_event else info.end.replace(tzinfo=zone))
    summary = info.subject if info.subject is not None else defaults.summary
    if summary is not None:
        event.add("summary", summary)
    location = info.location if info.location is not None else defaults.location
    if location:
        event.add("location", location)
    inner = bodies.get(info.original_start)
    body = inner.text(PR_BODY) if inner is not None else None
    description = body.replace("\r\n", "\n") if body and body.strip() else defaults.description
    if description and description.strip():
        event.add("description", description)
    busy = info.busy_status if info.busy_status is not None else defaults.busy
    if busy is not None and busy in _BUSY:
        event.add("transp", "TRANSPARENT" if busy == 0 else "OPAQUE")
        event.add("x-microsoft-cdo-busystatus", _BUSY[busy])
    event.add("dtstamp", defaults.stamp)
    reminder = defaults.reminder
    if info.reminder_set is not None:
        reminder = (info.reminder_delta or defaults.reminder or 15) if info.reminder_set else None
    elif info.reminder_delta is not None and reminder is not None:
        reminder = info.reminder_delta
    if reminder is not None:
        _alarm(event, reminder)
    return event


def _vtimezone(definition: ZoneDefinition) -> Timezone:
    """A VTIMEZONE from Outlook's own rule, for a zone with no IANA name."""
    rule = sorted(definition.rules, key=lambda r: r.year)[-1]
    timezone = Timezone()
    timezone.add("tzid", definition.key_name)
    standard_offset = -timedelta(minutes=rule.bias + rule.standard_bias)
    daylight_offset = -timedelta(minutes=rule.bias + rule.daylight_bias)
    standard = TimezoneStandard()
    if not rule.has_dst:
        standard.add("dtstart", datetime(1601, 1, 1))
        standard.add("tzoffsetfrom", standard_offset)
        standard.add("tzoffsetto", standard_offset)
        timezone.add_component(standard)
        return timezone
    daylight = TimezoneDaylight()
    for component, when, offset_from, offset_to in (
            (standard, rule.standard, daylight_offset, standard_offset),
            (daylight, rule.daylight, standard_offset, daylight_offset)):
        component.add("dtstart", _switch(1601, when))
        component.add("tzoffsetfrom", offset_from)
        component.add("tzoffsetto", offset_to)
        week = when[3]
        component.add("rrule", {"freq": "YEARLY", "bymonth": when[1],
                                "byday": f"{-1 if week == 5 else week}{WEEKDAYS[when[2] % 7]}"})
        timezone.add_component(component)
    return timezone



