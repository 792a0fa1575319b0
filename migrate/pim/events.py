"""One iCalendar item (an event, its time zones and its changed occurrences) read into `Event`.

Every property of the source is accounted for in the event's `Fidelity`: carried as it was,
changed (a zone matched to Exchange's list, a floating time given a zone, an all-day event that
Outlook wrote as midnight times), or dropped with the reason. The series' master holds the
account of the whole item (its overrides' accounts merged in); each override also keeps its own.

Odd input never raises anything but `DamagedItem`, which names what is wrong.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import icalendar

from migrate.model import Attendee, AttendeeRole, Event, Fidelity, Recurrence, Response
from migrate.pim.alarms import read_alarms
from migrate.pim.zones import Zone, ZoneResolver

When = datetime | date


class DamagedItem(ValueError):
    """The item cannot be read as an event at all (no start, not iCalendar)."""


# Properties Exchange has no place for, with the reason the fidelity account gives.
_NO_PLACE = {
    "URL": "a web link of the event: Exchange calendar items have no field for it",
    "GEO": "coordinates: Exchange keeps only the location's text",
    "RESOURCES": "free-text resources: Exchange books resources as attendees",
    "CONTACT": "a contact person's text: no field in Exchange",
    "COMMENT": "a comment outside the description: no field in Exchange",
    "RELATED-TO": "a link to another calendar item: Exchange cannot keep it",
    "REQUEST-STATUS": "the status of an invitation reply: not part of the stored event",
    "COLOR": "the event's colour: Exchange colours by category",
    "IMAGE": "an image of the event: no field in Exchange",
    "CONFERENCE": "an online-meeting link: not carried (it may also be in the description)",
    "X-APPLE-STRUCTURED-LOCATION": "Apple's map location: Exchange keeps only the location's text",
}
_CLIENT_PREFIXES = ("X-MOZ-", "X-APPLE-", "X-GOOGLE-", "X-MICROSOFT-", "X-LIC-", "X-EVOLUTION-", "X-FUNAMBOL-",
                    "X-OUTLOOK-", "X-ALT-DESC", "X-WR-", "X-LOTUS-", "X-ZIMBRA-", "X-SOGO-", "X-KDE-")
_PARTSTAT = {"ACCEPTED": Response.ACCEPTED, "TENTATIVE": Response.TENTATIVE, "DECLINED": Response.DECLINED,
             "NEEDS-ACTION": Response.NONE}
_BUSY = {"FREE": "free", "TENTATIVE": "tentative", "BUSY": "busy", "OOF": "oof"}
_CLASS = {"PUBLIC": "normal", "PRIVATE": "private", "CONFIDENTIAL": "confidential"}
_STATUS = ("CONFIRMED", "TENTATIVE", "CANCELLED")


def parse_event(data: bytes, default_timezone: str | None = None) -> Event:
    """Read one item as `split_calendar` cuts it; `default_timezone` (IANA) is for floating times
    when the calendar names no X-WR-TIMEZONE."""
    calendar = _calendar(data)
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if not events:
        raise DamagedItem("no VEVENT in the item")
    definitions = {str(c.get("TZID", "")).strip(): c for c in calendar.subcomponents
                   if isinstance(c, icalendar.Timezone)}
    default = str(calendar.get("X-WR-TIMEZONE") or "").strip() or default_timezone
    resolver = ZoneResolver(definitions, default)
    method = str(calendar.get("METHOD") or "").strip().upper()
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    master_component = masters[0] if masters else events[0]
    master = _EventReader(master_component, resolver, None, bool(method)).read()
    if method and method != "PUBLISH":
        master.fidelity.change("METHOD", f"an iTIP {method} message: stored as a plain calendar event")
    for _ in masters[1:]:
        master.fidelity.drop("VEVENT", f"a second definition of UID {master.uid} in the item")
    if not masters:
        master.fidelity.change("RECURRENCE-ID", "a changed occurrence whose series is not in the source: "
                                                "moved as an event of its own")
    for component in events:
        if component is master_component or "RECURRENCE-ID" not in component or not masters:
            continue
        override = _EventReader(component, resolver, master, bool(method)).read()
        master.overrides.append(override)
        master.fidelity.merge(override.fidelity)
    return master


def _calendar(data: bytes) -> icalendar.Calendar:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return icalendar.Calendar.from_ical(data)
        except Exception as first:
            # A VTIMEZONE that icalendar cannot take (Exchange writes "TZID:" with no name) spoils
            # the whole parse; without the zones the events still read, with their zones unknown.
            try:
                stripped = _without_zones(data)
                return icalendar.Calendar.from_ical(stripped)
            except Exception:
                raise DamagedItem(f"not readable as iCalendar: {_short(first)}") from None


def _without_zones(data: bytes) -> bytes:
    out: list[bytes] = []
    inside = False
    for line in data.replace(b"\r\n", b"\n").split(b"\n"):
        upper = line.strip().upper()
        if upper == b"BEGIN:VTIMEZONE":
            inside = True
        elif upper == b"END:VTIMEZONE":
            inside = False
            continue
        if not inside:
            out.append(line)
    return b"\r\n".join(out)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:160]


def _one(component: icalendar.Component, name: str, fidelity: Fidelity) -> Any:
    """A property that may appear once; later copies are dropped with a word."""
    value = component.get(name)
    if isinstance(value, list):
        for _ in value[1:]:
            fidelity.drop(name, f"{name} appears {len(value)} times; the first is used")
        value = value[0] if value else None
    return value


def _all(component: icalendar.Component, name: str) -> list[Any]:
    value = component.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _utc(value: Any) -> datetime | None:
    dt = getattr(value, "dt", None)
    if isinstance(dt, datetime):
        return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    if isinstance(dt, date):
        return datetime.combine(dt, time(), tzinfo=UTC)
    return None


def _email(address: str) -> str | None:
    text = address.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    text = text.strip()
    return text if "@" in text and " " not in text else None


class _EventReader:
    """Reads one VEVENT; an override reads its times in its series' zone."""

    def __init__(self, component: icalendar.Component, zones: ZoneResolver, series: Event | None,
                 itip: bool) -> None:
        self.c = component
        self.itip = itip  # the item is an invitation (METHOD), not a stored event
        self.zones = zones
        self.series = series
        self.fidelity = Fidelity()
        self.zone_notes: set[str] = set()
        self.start_zone: Zone | None = None

    # --- times -------------------------------------------------------------------------

    def _when(self, prop: Any, name: str, raw: Any = None) -> When:
        """A DATE or DATE-TIME value made aware in the zone it names (dates stay dates)."""
        dt = raw if raw is not None else self._dt(prop, name)
        if not isinstance(dt, datetime):
            if isinstance(dt, date):
                return dt
            raise DamagedItem(f"{name} is not a date or time")
        params = getattr(prop, "params", {}) or {}
        tzid = params.get("TZID")
        if tzid:
            zone = self.zones.resolve(str(tzid), dt.replace(tzinfo=None))
        elif dt.tzinfo is not None:
            return dt.astimezone(UTC)
        else:
            zone = self.zones.floating()
        if zone.change and zone.change not in self.zone_notes:
            self.zone_notes.add(zone.change)
            self.fidelity.change("TZID" if tzid else name, zone.change)
        local = zone.localise(dt.replace(tzinfo=None))
        if self.start_zone is None and name == "DTSTART":
            self.start_zone = zone
        return local if zone.name is not None else local.astimezone(UTC)

    def _dt(self, prop: Any, name: str) -> Any:
        """The parsed value; one that icalendar refused only for stray spaces is read all the same."""
        try:
            return prop.dt
        except icalendar.error.BrokenCalendarProperty:
            text = str(prop).strip()
            if text == str(prop):
                raise
            value = icalendar.vDDDTypes.from_ical(text)
            self.fidelity.change(name, "a value with stray spaces read without them")
            return value

    def _in_series_zone(self, value: When, like: When | None) -> When:
        """EXDATE, RDATE and RECURRENCE-ID in the series' own zone, dates for an all-day series."""
        if isinstance(like, datetime):
            if not isinstance(value, datetime):
                return datetime.combine(value, like.timetz()).replace(tzinfo=like.tzinfo)
            return value.astimezone(like.tzinfo)
        if isinstance(like, date) and isinstance(value, datetime):
            return value.date()
        return value

    # --- the event ---------------------------------------------------------------------

    def read(self) -> Event:
        c, f = self.c, self.fidelity
        uid = str(_one(c, "UID", f) or "").strip()
        event = Event(uid=uid or (self.series.uid if self.series else ""), fidelity=f)
        if "DTSTART" not in c and (self.series is None or "RECURRENCE-ID" not in c):
            raise DamagedItem(f"the event {uid or '(no UID)'} has no start (DTSTART)")
        steps: list[tuple[tuple[str, ...], Callable[[Event], None]]] = [
            (("DTSTART", "DTEND", "DURATION", "X-MICROSOFT-CDO-ALLDAYEVENT", "RECURRENCE-ID"), self._times),
            (("RRULE", "EXDATE", "RDATE"), self._rrule),
            (("RECURRENCE-ID",), self._recurrence_id),
            (("SUMMARY", "DESCRIPTION", "LOCATION", "X-ALT-DESC"), self._texts),
            (("ORGANIZER", "ATTENDEE"), self._people),
            (("CATEGORIES",), self._categories),
            (("STATUS",), self._status),
            (("TRANSP", "X-MICROSOFT-CDO-BUSYSTATUS"), self._busy),
            (("CLASS",), self._class),
            (("ATTACH",), self._attachments),
            (("CREATED", "LAST-MODIFIED", "DTSTAMP", "SEQUENCE"), self._stamps),
            (("PRIORITY", "X-MICROSOFT-CDO-IMPORTANCE"), self._importance),
        ]
        known = {"UID"}
        for names, step in steps:
            known.update(names)
            if not any(name in c for name in names):
                continue
            try:
                step(event)
            except DamagedItem:
                raise
            except Exception as exc:  # one unreadable property costs only itself
                f.drop(names[0], f"unreadable: {_short(exc)}")
        if event.start is None:
            raise DamagedItem(f"the event {uid or '(no UID)'} has an unreadable start (DTSTART)")
        for name in dict.fromkeys(c.keys()):
            if name not in known:
                self._unplaced(name)
        for sub in c.subcomponents:
            if sub.name != "VALARM":
                f.drop(str(sub.name), "a component inside the event that Exchange cannot keep")
        read_alarms(c, event, f)
        return event

    def _unplaced(self, name: str) -> None:
        if name in _NO_PLACE:
            self.fidelity.drop(name, _NO_PLACE[name])
        elif name.startswith(_CLIENT_PREFIXES):
            self.fidelity.drop(name, "a calendar program's own property")
        elif name.startswith("X-"):
            self.fidelity.drop(name, "a non-standard property")
        else:
            self.fidelity.drop(name, "no place for it in Exchange")

    def _times(self, event: Event) -> None:
        c, f = self.c, self.fidelity
        start_prop = _one(c, "DTSTART", f)
        if start_prop is None:  # an override without DTSTART starts at its RECURRENCE-ID
            start_prop = _one(c, "RECURRENCE-ID", f)
        start = self._when(start_prop, "DTSTART")
        end: When | None = None
        end_prop = _one(c, "DTEND", f)
        duration_prop = _one(c, "DURATION", f)
        if end_prop is not None:
            try:
                end = self._when(end_prop, "DTEND")
                f.carry("DTEND")
            except Exception as exc:
                f.drop("DTEND", f"unreadable: {_short(exc)}")
        if end is not None and duration_prop is not None:
            f.drop("DURATION", "both DTEND and DURATION given; DTEND is used")
        elif end is None and duration_prop is not None and isinstance(duration_prop.dt, timedelta):
            end = start + duration_prop.dt
            f.carry("DURATION")
        elif self.series is not None and type(self.series.start) is type(start) is type(self.series.end):
            end = start + (self.series.end - self.series.start)
        all_day = not isinstance(start, datetime)
        cdo_all_day = str(c.get("X-MICROSOFT-CDO-ALLDAYEVENT") or "").upper() == "TRUE"
        if all_day:
            if isinstance(end, datetime):
                end = end.date()
                f.change("DTEND", "a time as the end of an all-day event: read as its date")
            if end is None or end <= start:
                if end is not None:
                    f.change("DTEND", "an all-day event that ends before it starts: made one day long")
                end = start + timedelta(days=1)
        else:
            assert isinstance(start, datetime)
            if end is not None and not isinstance(end, datetime):
                end = datetime.combine(end, time(), tzinfo=start.tzinfo)
                f.change("DTEND", "a date as the end of a timed event: read as midnight")
            if end is None:
                end = start  # RFC 5545 3.6.1: no DTEND and no DURATION ends at the start
            elif end < start:
                f.change("DTEND", "the event ends before it starts: made to end at its start")
                end = start
            if cdo_all_day and _midnight(start) and isinstance(end, datetime) and _midnight(end) and end > start:
                start, end, all_day = start.date(), end.date(), True
                f.change("DTSTART", "an all-day event written as midnight-to-midnight times (Outlook): "
                                    "read as dates")
        if cdo_all_day or "X-MICROSOFT-CDO-ALLDAYEVENT" in c:
            f.carry("X-MICROSOFT-CDO-ALLDAYEVENT")
        event.start, event.end, event.all_day = start, end, all_day
        zone = self.start_zone
        event.timezone = None if all_day else (zone.name if zone else "UTC")
        if "DTSTART" in c:
            f.carry("DTSTART")

    def _rrule(self, event: Event) -> None:
        c, f = self.c, self.fidelity
        rule = _one(c, "RRULE", f)
        if event.start is None:
            return
        if rule is None:
            for name in ("RDATE", "EXDATE"):
                if name in c:
                    f.drop(name, "dates added to or left out of a series without a rule (RRULE): "
                                 "Exchange needs a pattern")
            return
        rule = self._recur(rule)
        until = rule.get("UNTIL")
        if until:
            rule["UNTIL"] = [self._until(until[0], event.start)]
        exdates: list[When] = []
        for prop in _all(c, "EXDATE"):
            for value in prop.dts:
                exdates.append(self._in_series_zone(self._when(prop, "EXDATE", value.dt), event.start))
        rdates: list[When] = []
        for prop in _all(c, "RDATE"):
            for value in prop.dts:
                dt = value.dt
                if isinstance(dt, tuple):  # a PERIOD: the occurrence keeps the series' length
                    f.change("RDATE", "a period read as its start; the occurrence keeps the series' length")
                    dt = dt[0]
                rdates.append(self._in_series_zone(self._when(prop, "RDATE", dt), event.start))
        for name, values in (("EXDATE", exdates), ("RDATE", rdates)):
            if values:
                f.carry(name)
        event.recurrence = Recurrence(rule.to_ical().decode("ascii", "replace"),
                                      tuple(sorted(set(exdates), key=_sort_key)),
                                      tuple(sorted(set(rdates), key=_sort_key)))
        f.carry("RRULE")

    def _recur(self, prop: Any) -> icalendar.vRecur:
        """The rule; one that icalendar refused only for stray spaces (Exchange 2010 writes
        `BYDAY= TU`) is read without them."""
        try:
            return icalendar.vRecur(dict(prop))
        except icalendar.error.BrokenCalendarProperty:
            text = "".join(str(prop).split())
            if text == str(prop):
                raise
            rule = icalendar.vRecur.from_ical(text)
            self.fidelity.change("RRULE", "a rule with stray spaces read without them")
            return rule

    def _until(self, until: When, start: When) -> When:
        """UNTIL as RFC 5545 wants it: UTC for a timed series, a date for an all-day one."""
        if not isinstance(start, datetime):
            if isinstance(until, datetime):
                self.fidelity.change("RRULE", "UNTIL given as a time in an all-day series: read as its date")
                return until.date()
            return until
        if isinstance(until, datetime):
            if until.tzinfo is not None:
                return until.astimezone(UTC)
            self.fidelity.change("RRULE", "UNTIL without a zone: read in the series' zone")
            return until.replace(tzinfo=start.tzinfo).astimezone(UTC)
        self.fidelity.change("RRULE", "UNTIL given as a date in a timed series: the series runs to the end "
                                      "of that day")
        return datetime.combine(until, time(23, 59, 59), tzinfo=start.tzinfo).astimezone(UTC)

    def _recurrence_id(self, event: Event) -> None:
        prop = _one(self.c, "RECURRENCE-ID", self.fidelity)
        if prop is None:
            return
        like = self.series.start if self.series else event.start
        event.recurrence_id = self._in_series_zone(self._when(prop, "RECURRENCE-ID"), like)
        if str(prop.params.get("RANGE", "")).upper() == "THISANDFUTURE":
            self.fidelity.change("RECURRENCE-ID", "a change to this and all later occurrences "
                                                  "(RANGE=THISANDFUTURE): applied to this occurrence only")
        self.fidelity.carry("RECURRENCE-ID")

    def _texts(self, event: Event) -> None:
        c, f = self.c, self.fidelity
        for name in ("SUMMARY", "DESCRIPTION", "LOCATION"):
            value = _one(c, name, f)
            if value is not None:
                setattr(event, "summary" if name == "SUMMARY" else name.lower(), str(value))
                f.carry(name)
        html = _one(c, "X-ALT-DESC", f)
        if html is not None:
            if str(html.params.get("FMTTYPE", "")).lower() == "text/html":
                event.html_description = str(html)
                f.carry("X-ALT-DESC")
            else:
                f.drop("X-ALT-DESC", f"an alternative description of type {html.params.get('FMTTYPE')!r}")

    def _people(self, event: Event) -> None:
        c, f = self.c, self.fidelity
        organizer = _one(c, "ORGANIZER", f)
        if organizer is not None:
            person = self._person(organizer, "ORGANIZER")
            if person is not None:
                event.organizer = person
                f.carry("ORGANIZER")
        for attendee in _all(c, "ATTENDEE"):
            person = self._person(attendee, "ATTENDEE")
            if person is not None:
                event.attendees.append(person)
                f.carry("ATTENDEE")

    def _person(self, value: Any, name: str) -> Attendee | None:
        params = value.params
        email = _email(str(value))
        if email is None:
            email = _email(str(params.get("EMAIL", "")))
        if email is None:
            self.fidelity.drop(name, f"{str(value)[:80]!r} is not an e-mail address, which Exchange needs")
            return None
        cutype = str(params.get("CUTYPE", "")).upper()
        role_text = str(params.get("ROLE", "")).upper()
        if cutype in ("ROOM", "RESOURCE"):
            role = AttendeeRole.RESOURCE
        elif role_text == "CHAIR":
            role = AttendeeRole.CHAIR
        elif role_text in ("OPT-PARTICIPANT", "NON-PARTICIPANT"):
            role = AttendeeRole.OPTIONAL
            if role_text == "NON-PARTICIPANT":
                self.fidelity.change(name, "a non-participant (for information) invited as optional")
        else:
            role = AttendeeRole.REQUIRED
        partstat = str(params.get("PARTSTAT", "")).upper()
        response = _PARTSTAT.get(partstat, Response.NONE)
        if partstat and partstat not in _PARTSTAT:
            self.fidelity.change(name, f"the answer {partstat} read as no answer yet")
        cn = str(params.get("CN", "")).strip().strip('"') or None
        return Attendee(email=email, name=cn, role=role, response=response)

    def _categories(self, event: Event) -> None:
        for prop in _all(self.c, "CATEGORIES"):
            for cat in getattr(prop, "cats", [prop]):
                text = str(cat).strip()
                if text and text not in event.categories:
                    event.categories.append(text)
        self.fidelity.carry("CATEGORIES")

    def _status(self, event: Event) -> None:
        value = str(_one(self.c, "STATUS", self.fidelity) or "").strip().upper()
        if value in _STATUS:
            event.status = value
            self.fidelity.carry("STATUS")
        elif value:
            self.fidelity.drop("STATUS", f"{value!r} is not a status an event can have")

    def _busy(self, event: Event) -> None:
        c, f = self.c, self.fidelity
        transp = str(_one(c, "TRANSP", f) or "").strip().upper()
        cdo = str(_one(c, "X-MICROSOFT-CDO-BUSYSTATUS", f) or "").strip().upper()
        if transp:
            event.busy = "free" if transp == "TRANSPARENT" else "busy"
            f.carry("TRANSP")
        if cdo:
            if cdo in _BUSY:
                event.busy = _BUSY[cdo]
                f.carry("X-MICROSOFT-CDO-BUSYSTATUS")
            else:
                event.busy = "busy"
                f.change("X-MICROSOFT-CDO-BUSYSTATUS", f"{cdo} read as busy")

    def _class(self, event: Event) -> None:
        value = str(_one(self.c, "CLASS", self.fidelity) or "").strip().upper()
        if value in _CLASS:
            event.sensitivity = _CLASS[value]
            self.fidelity.carry("CLASS")
        elif value:
            self.fidelity.drop("CLASS", f"the class {value!r}: Exchange knows public, private and confidential")

    def _attachments(self, event: Event) -> None:
        for prop in _all(self.c, "ATTACH"):
            params = getattr(prop, "params", {}) or {}
            binary = str(params.get("VALUE", "")).upper() == "BINARY" or str(params.get("ENCODING", "")).upper() \
                == "BASE64"
            text = str(prop)
            if binary:
                name = str(params.get("X-FILENAME") or params.get("FILENAME") or "a file")
                self.fidelity.drop("ATTACH", f"{name} embedded in the event ({len(text) * 3 // 4} bytes): "
                                             "not carried")
            elif text.lower().startswith("cid:"):
                self.fidelity.drop("ATTACH", "refers to a part of the e-mail the invitation came in, "
                                             "which is not here")
            elif text.strip():
                event.attachment_uris.append(text.strip())
                self.fidelity.carry("ATTACH")

    def _stamps(self, event: Event) -> None:
        c, f = self.c, self.fidelity
        event.created = _utc(_one(c, "CREATED", f))
        event.last_modified = _utc(_one(c, "LAST-MODIFIED", f))
        for name in ("CREATED", "LAST-MODIFIED"):
            if name in c:
                f.carry(name)
        if "DTSTAMP" in c:
            # RFC 5545 3.8.7.2: outside an iTIP message DTSTAMP is the event's last change.
            if self.itip:
                f.drop("DTSTAMP", "the time the invitation was sent; Exchange stamps its own")
            else:
                event.last_modified = event.last_modified or _utc(_one(c, "DTSTAMP", f))
                f.carry("DTSTAMP")
        if "SEQUENCE" in c:
            try:
                event.sequence = int(_one(c, "SEQUENCE", f))
                f.carry("SEQUENCE")
            except (TypeError, ValueError):
                f.drop("SEQUENCE", "not a number")

    def _importance(self, event: Event) -> None:
        c, f = self.c, self.fidelity
        cdo = str(_one(c, "X-MICROSOFT-CDO-IMPORTANCE", f) or "").strip()
        if cdo in ("0", "1", "2"):
            event.importance = ("low", "normal", "high")[int(cdo)]
            f.carry("X-MICROSOFT-CDO-IMPORTANCE")
        priority = _one(c, "PRIORITY", f)
        if priority is not None:
            try:
                level = int(priority)
            except (TypeError, ValueError):
                f.drop("PRIORITY", "not a number")
                return
            if not cdo:
                event.importance = "high" if 1 <= level <= 4 else "low" if level >= 6 else "normal"
            f.carry("PRIORITY")


def _midnight(value: datetime) -> bool:
    return value.time() == time()


def _sort_key(value: When) -> tuple[datetime, int]:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)), 0
    return datetime.combine(value, time(), tzinfo=UTC), 1
