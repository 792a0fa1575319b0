"""iCalendar files cut into items: one standalone calendar object per event.

An item is what the engine moves, fingerprints and journals: `BEGIN:VCALENDAR` with the file's
VERSION and PRODID (and METHOD, CALSCALE, X-WR-TIMEZONE, which change how the event reads), the
VTIMEZONE components the event refers to, the series' master VEVENT and every changed occurrence
(RECURRENCE-ID) with the same UID. A changed occurrence whose series is not in the file is an item
of its own. The cut works on content lines, not on a parsed calendar, so one broken event or a
time zone that no parser accepts spoils only its own item, and the components keep the source's
own bytes (folding included); only the line ends become CRLF, as RFC 5545 wants.

What is not an event (tasks, journal entries, free/busy) is not carried: Exchange tasks are not
part of this migration. The cut says so, with counts, through `notes`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from migrate.pim.events import parse_event
from migrate.pim.lines import ContentLine, content_lines, param_values, unescape_text

__all__ = ["CalendarNote", "calendar_name", "parse_event", "split_calendar"]

PRODID = b"PRODID:-//o365-migrate//calendar item//EN"
# Calendar properties an item keeps: they change how its events read (METHOD: an invitation;
# X-WR-TIMEZONE: the zone Google meant for floating times), or say who wrote it.
_KEPT = ("VERSION", "PRODID", "CALSCALE", "METHOD", "X-WR-TIMEZONE")
_NOT_EVENTS = {
    "VTODO": "task",
    "VJOURNAL": "journal entry",
    "VFREEBUSY": "free/busy block",
    "VAVAILABILITY": "availability block",
}


@dataclass(frozen=True)
class CalendarNote:
    """Something in a calendar file that does not become an item, said once per kind."""

    code: str  # not-carried | damaged-event | duplicate-uid | not-calendar
    detail: str


@dataclass
class _Component:
    name: str
    lines: list[ContentLine]  # from its BEGIN to its END, nested components included
    calendar: int  # which VCALENDAR of the file it came from
    damaged: str = ""

    def first(self, name: str) -> ContentLine | None:
        """The component's own property `name` (not one of a nested VALARM)."""
        depth = 0
        for line in self.lines[1:-1]:
            if line.name == "BEGIN":
                depth += 1
            elif line.name == "END":
                depth -= 1
            elif depth == 0 and line.name == name:
                return line
        return None

    def text(self, name: str) -> str | None:
        line = self.first(name)
        return unescape_text(line.value).strip() if line is not None else None

    def tzids(self) -> set[str]:
        return {_clean_tzid(v) for line in self.lines for v in param_values(line, "TZID")}

    def raw(self) -> list[bytes]:
        return [physical for line in self.lines for physical in line.physical]


@dataclass
class _Calendar:
    properties: list[ContentLine] = field(default_factory=list)
    zones: dict[str, _Component] = field(default_factory=dict)


@dataclass
class _Series:
    master: _Component | None = None
    overrides: dict[str, _Component] = field(default_factory=dict)  # by RECURRENCE-ID as written


def _word(line: ContentLine) -> str:
    """The component name of a BEGIN or END line."""
    return line.value.decode("ascii", "replace").strip().upper()


def _clean_tzid(value: str) -> str:
    return unescape_text(value.strip().strip('"')).strip()


def _recency(component: _Component) -> tuple[int, str]:
    """Which of two definitions of the same event is the later one: SEQUENCE, then the stamps."""
    try:
        sequence = int(component.text("SEQUENCE") or 0)
    except ValueError:
        sequence = 0
    return sequence, component.text("LAST-MODIFIED") or component.text("DTSTAMP") or ""


def _scan(lines: list[ContentLine], notes: list[CalendarNote]) -> tuple[list[_Calendar], list[_Component]]:
    """The calendars of a file, and its components in file order."""
    calendars: list[_Calendar] = []
    components: list[_Component] = []
    stack: list[str] = []
    block: list[ContentLine] = []
    outside = 0
    for line in lines:
        begin = _word(line) if line.name == "BEGIN" else None
        end = _word(line) if line.name == "END" else None
        if not stack:
            if begin == "VCALENDAR":
                calendars.append(_Calendar())
                stack.append(begin)
            elif begin:  # a bare VEVENT (or VTIMEZONE) without its VCALENDAR around it
                calendars.append(_Calendar())
                stack.extend(("", begin))
                block = [line]
            else:
                outside += 1
            continue
        if len(stack) == 1:
            if begin:
                stack.append(begin)
                block = [line]
            elif end:
                stack.clear()
            else:
                calendars[-1].properties.append(line)
            continue
        block.append(line)
        if begin:
            stack.append(begin)
        elif end:
            damaged = ""
            if end != stack[-1]:
                damaged = f"END:{end} where END:{stack[-1]} was due"
                while len(stack) > 2 and stack[-1] != end:
                    stack.pop()
            stack.pop()
            if len(stack) == 1:
                components.append(_Component(_word(block[0]), block, len(calendars) - 1, damaged))
                block = []
                if stack == [""]:
                    stack.clear()
    if len(stack) > 1 and block:
        components.append(_Component(_word(block[0]), block, len(calendars) - 1,
                                     "the file ends inside it (no END line)"))
    if outside:
        notes.append(CalendarNote("not-calendar", f"{outside} line(s) outside BEGIN:VCALENDAR...END:VCALENDAR "
                                                  "were ignored"))
    for component in components:
        if component.name == "VTIMEZONE" and not component.damaged:
            tzid = component.text("TZID")
            if tzid:  # a zone without a name (Exchange writes "TZID:") cannot be referred to
                calendars[component.calendar].zones.setdefault(_clean_tzid(tzid), component)
    return calendars, components


def _anonymous_uid(component: _Component) -> str:
    """A stable identity for an event without UID: its content without the export's own stamp."""
    digest = hashlib.sha256()
    for line in component.lines:
        if line.name not in ("DTSTAMP",):
            digest.update(line.logical + b"\n")
    return "sha256:" + digest.hexdigest()


def split_calendar(data: bytes, notes: list[CalendarNote] | None = None) -> Iterator[tuple[str, bytes]]:
    """Cut an iCalendar file into items: (identity, standalone iCalendar bytes) in file order.

    The identity is the event's UID; a changed occurrence without its series in the file is
    told apart by its RECURRENCE-ID (`UID;RECURRENCE-ID=20240305T090000Z`), and an event without
    a UID gets `sha256:` of its content. `notes` collects what is not carried or is damaged.
    """
    notes = notes if notes is not None else []
    calendars, components = _scan(content_lines(data), notes)
    series: dict[str, _Series] = {}
    skipped: Counter[str] = Counter()
    for component in components:
        if component.name == "VTIMEZONE":
            continue
        if component.name != "VEVENT":
            skipped[component.name] += 1
            continue
        if component.damaged:
            summary = component.text("SUMMARY") or component.text("UID") or "an event"
            notes.append(CalendarNote("damaged-event", f"{summary!r}: {component.damaged}; not carried"))
            continue
        uid = component.text("UID") or _anonymous_uid(component)
        entry = series.setdefault(uid, _Series())
        rid_line = component.first("RECURRENCE-ID")
        if rid_line is None:
            if entry.master is not None:
                keep = max(entry.master, component, key=_recency)
                entry.master = keep
                notes.append(CalendarNote("duplicate-uid", f"UID {uid} is defined twice; the later definition "
                                                           f"(SEQUENCE {_recency(keep)[0]}) is carried"))
            else:
                entry.master = component
        else:
            rid = rid_line.value.decode("ascii", "replace").strip()
            if rid in entry.overrides:
                keep = max(entry.overrides[rid], component, key=_recency)
                notes.append(CalendarNote("duplicate-uid", f"UID {uid}: the occurrence {rid} is changed twice; "
                                                           "the later change is carried"))
                entry.overrides[rid] = keep
            else:
                entry.overrides[rid] = component
    for kind, count in skipped.items():
        what = _NOT_EVENTS.get(kind, f"{kind} component")
        notes.append(CalendarNote("not-carried", f"{count} {what}{'s' if count > 1 else ''} ({kind}) not carried: "
                                                 "only events move to Exchange calendars"))
    for uid, entry in series.items():
        if entry.master is not None:
            yield uid, _item(calendars, [entry.master, *entry.overrides.values()])
        else:
            for rid, override in entry.overrides.items():
                yield f"{uid};RECURRENCE-ID={rid}", _item(calendars, [override])


def _item(calendars: list[_Calendar], events: list[_Component]) -> bytes:
    home = calendars[events[0].calendar]
    out: list[bytes] = [b"BEGIN:VCALENDAR"]
    kept = {line.name: line for line in reversed(home.properties) if line.name in _KEPT}
    defaults = {"VERSION": [b"VERSION:2.0"], "PRODID": [PRODID]}
    for name in _KEPT:
        out.extend(kept[name].physical if name in kept else defaults.get(name, []))
    wanted = set().union(*(event.tzids() for event in events))
    for tzid in sorted(wanted):
        zone = home.zones.get(tzid) or next((c.zones[tzid] for c in calendars if tzid in c.zones), None)
        if zone is not None:
            out.extend(zone.raw())
    for event in events:
        out.extend(event.raw())
    out.append(b"END:VCALENDAR")
    return b"\r\n".join(out) + b"\r\n"


def calendar_name(data: bytes) -> str | None:
    """The calendar's own name (X-WR-CALNAME, as Google and Apple write it), if it has one."""
    depth = 0
    for line in content_lines(data):
        if line.name == "BEGIN":
            depth += 1
        elif line.name == "END":
            depth -= 1
        elif depth == 1 and line.name in ("X-WR-CALNAME", "NAME"):
            name = unescape_text(line.value).strip()
            if name:
                return name
    return None
