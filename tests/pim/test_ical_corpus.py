"""Every .ics file of ../shared/corpus through the cut and the parser, against the corpus's own index."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from migrate.model import AttendeeRole, Event, Response
from migrate.pim import CalendarNote, parse_event, split_calendar
from migrate.pim.events import DamagedItem
from tests.conftest import shared_dir
from tests.pim.corpus_index import read_index


def _corpus() -> Path:
    return shared_dir("corpus", "ics")


def _events(name: str) -> tuple[list[Event], list[str], list[CalendarNote], list[bytes]]:
    notes: list[CalendarNote] = []
    parsed, damaged, raw = [], [], []
    for identity, data in split_calendar((_corpus() / name).read_bytes(), notes):
        raw.append(data)
        try:
            parsed.append(parse_event(data))
        except DamagedItem as exc:
            damaged.append(f"{identity}: {exc}")
    return parsed, damaged, notes, raw


def _all(events: list[Event]) -> list[Event]:
    return [e for master in events for e in (master, *master.overrides)]


def test_every_file_matches_its_index() -> None:
    index = read_index(_corpus() / "INDEX.md")
    assert len(index) > 70
    for name, row in index.items():
        events, damaged, notes, raw = _events(name)
        every = _all(events)
        # Each VEVENT of the file is an event or an override, or named as damaged.
        assert len(every) + len(damaged) == int(row["VEVENT"]), (name, damaged)
        assert sum(e.recurrence_id is not None for e in every) == int(row["RECURRENCE-ID"]), name
        # Each attendee is carried or dropped with a reason; each alarm is the reminder or dropped.
        attendees = sum(len(e.attendees) for e in every) + sum(
            1 for e in events for prop, _ in e.fidelity.dropped if prop == "ATTENDEE")
        attendees += _inside(raw, b"VALARM", b"ATTENDEE")  # e-mail alarms' recipients go with the alarm
        assert attendees == int(row["ATTENDEE"]) - (1 if "freebusies" in name else 0), name
        alarms = sum(e.reminder_minutes is not None for e in every) + sum(
            1 for e in events for prop, _ in e.fidelity.dropped if prop == "VALARM")
        in_items = sum(item.count(b"BEGIN:VALARM") for item in raw)
        assert alarms == in_items, name
        # the rest of the index's alarms belong to tasks, which are not carried
        assert in_items == int(row["VALARM"]) or (in_items < int(row["VALARM"]) and int(row["todo/jour"])), name
        # The index counts DTSTART;VALUE=DATE, in VTIMEZONE too, and not a bare DTSTART:20021225.
        zone_dates = _inside(raw, b"VTIMEZONE", b"DTSTART;VALUE=DATE")
        bare_dates = sum(len(re.findall(rb"\r\nDTSTART:\d{8}\r\n", item)) for item in raw)
        assert sum(e.all_day for e in every) == int(row["all-day"]) - zone_dates + bare_dates, name
        not_events = sum(int(n.detail.split()[0]) for n in notes if n.code == "not-carried"
                         and ("VTODO" in n.detail or "VJOURNAL" in n.detail))
        assert not_events == int(row["todo/jour"]), name
        assert sum(item.count(b"\r\nEXDATE") for item in raw) == int(row["EXDATE"]), name


def _inside(raw: list[bytes], component: bytes, prefix: bytes) -> int:
    """Lines starting with `prefix` inside `component` blocks of the cut items."""
    count, inside = 0, False
    for item in raw:
        for line in item.split(b"\r\n"):
            inside = (inside or line == b"BEGIN:" + component) and line != b"END:" + component
            count += inside and line.startswith(prefix)
    return count


def test_no_item_raises_anything_but_damaged_item() -> None:
    for path in sorted(_corpus().rglob("*.ics")):
        for _, data in split_calendar(path.read_bytes()):
            try:
                parse_event(data)
            except DamagedItem:
                continue
        # and every cut item is a standalone calendar the parser takes again
        for _, data in split_calendar(path.read_bytes()):
            assert data.startswith(b"BEGIN:VCALENDAR\r\nVERSION"), (path, data[:80])
            assert data.endswith(b"END:VCALENDAR\r\n")


def test_windows_zone_names() -> None:
    [event], _, _, _ = _events("recurring-ical-events/issue_27_t1.ics")
    assert event.timezone == "Europe/Berlin"  # W. Europe Standard Time
    assert event.start == datetime(2020, 4, 26, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert not [c for c in event.fidelity.changed if c[0] == "TZID"]  # the same zone, not a change
    [eastern], _, _, _ = _events("collective-icalendar/issue_836_do_not_quote_tzid.ics")
    assert eastern.timezone == "America/New_York"
    assert eastern.start.astimezone(UTC) == datetime(2024, 10, 28, 21, 0, tzinfo=UTC)  # type: ignore[union-attr]


def test_own_zones_are_matched_or_said_to_be_changed() -> None:
    [brasilia], _, _, _ = _events("collective-icalendar/issue_237_fail_to_parse_timezone_with_non_ascii_tzid.ics")
    assert brasilia.timezone == "America/Sao_Paulo"
    assert brasilia.start.astimezone(UTC) == datetime(2017, 5, 11, 16, 30, tzinfo=UTC)  # type: ignore[union-attr]
    assert any("Brasília" in how for _, how in brasilia.fidelity.changed)
    [standup], _, _, _ = _events("ical4j/Standup.ics")
    assert standup.timezone == "Australia/Sydney"  # "Canberra, Melbourne, Sydney"
    assert standup.reminder_minutes == 5
    [fixed], _, _, _ = _events("collective-icalendar/issue_218_bad_tzid.ics")
    assert fixed.timezone == "Etc/GMT-11" and fixed.start.utcoffset() == timedelta(hours=11)  # type: ignore[union-attr]
    [blank], _, _, _ = _events("ical4j/blankTzid.ics")  # "TZID:" with no name spoils icalendar's parse
    assert blank.start == datetime(2015, 8, 26, 9, 0, tzinfo=UTC)
    assert any(prop == "ATTACH" for prop, _ in blank.fidelity.dropped)


def test_all_day_events_end_exclusive() -> None:
    events, _, _, _ = _events("ical4j/SwedishHolidays2003-2006.ics")
    assert len(events) == 52 and all(e.all_day and e.timezone is None for e in events)
    first = events[0]
    assert first.start == date(2003, 1, 1) and first.end == date(2003, 1, 2)


def test_rrule_with_exdates_in_the_series_zone() -> None:
    [event], _, _, _ = _events("recurring-ical-events/each_week_but_two_deleted.ics")
    assert event.recurrence is not None and event.recurrence.rrule.startswith("FREQ=WEEKLY")
    assert len(event.recurrence.exdates) == 2
    berlin = ZoneInfo("Europe/Berlin")
    assert all(isinstance(d, datetime) and d.tzinfo == berlin for d in event.recurrence.exdates)


def test_overrides_travel_with_their_series() -> None:
    events, _, _, raw = _events("recurring-ical-events/recurring_events_moved.ics")
    series = [e for e in events if e.overrides]
    assert series, "the moved occurrences stay with their series"
    for master in series:
        for override in master.overrides:
            assert override.uid == master.uid and override.recurrence_id is not None
    assert all(item.count(b"BEGIN:VTIMEZONE") == 1 for item in raw)  # each item brings its zone


def test_lone_overrides_are_items_of_their_own() -> None:
    notes: list[CalendarNote] = []
    items = list(split_calendar((_corpus() / "icaljs/google_birthday.ics").read_bytes(), notes))
    lone = [identity for identity, _ in items if ";RECURRENCE-ID=" in identity]
    assert lone and len(set(lone)) == len(lone)
    event = parse_event(dict(items)[lone[0]])
    assert event.recurrence_id is not None
    assert any(prop == "RECURRENCE-ID" for prop, _ in event.fidelity.changed)


def test_attendees_roles_and_answers() -> None:
    [event], _, _, _ = _events("ical4j/groupwise.ics")
    assert event.organizer is not None and event.organizer.email == "jane.doe@university.edu"
    # "MAILTO:CET Meeting Room@university.edu" is no address Exchange can take: dropped, said why
    assert not event.attendees and any(p == "ATTENDEE" for p, _ in event.fidelity.dropped)
    events, _, _, _ = _events("icaljs/parserv2.ics")
    people = [a for e in _all(events) for a in e.attendees]
    assert len(people) == 2 and all(a.email for a in people)
    assert {a.role for a in people} <= set(AttendeeRole) and {a.response for a in people} <= set(Response)


TASKS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
METHOD:PUBLISH\r
BEGIN:VTODO\r
UID:t1\r
SUMMARY:task\r
END:VTODO\r
BEGIN:VEVENT\r
UID:e1\r
DTSTART;TZID=Europe/Stockholm:20240305T090000\r
DTEND;TZID=Europe/Stockholm:20240305T100000\r
SUMMARY:Styrelsem\xc3\xb6te\r
DESCRIPTION:Agenda\r
X-ALT-DESC;FMTTYPE=text/html:<p>Agenda</p>\r
LOCATION:Rum 1\r
CATEGORIES:Styrelse,Viktigt\r
STATUS:TENTATIVE\r
TRANSP:OPAQUE\r
X-MICROSOFT-CDO-BUSYSTATUS:OOF\r
CLASS:PRIVATE\r
PRIORITY:1\r
ATTACH:https://example.org/agenda.pdf\r
ATTACH;VALUE=BINARY;ENCODING=BASE64;X-FILENAME=a.txt:aGVsbG8=\r
URL:https://example.org/meet\r
ORGANIZER;CN=Anna:mailto:anna@example.org\r
ATTENDEE;CUTYPE=ROOM;CN=Rum 1:mailto:rum1@example.org\r
ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=DECLINED:mailto:bo@example.org\r
CREATED:20240101T100000Z\r
LAST-MODIFIED:20240102T100000Z\r
SEQUENCE:3\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
TRIGGER:-PT15M\r
END:VALARM\r
BEGIN:VALARM\r
ACTION:EMAIL\r
TRIGGER:-P1D\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_every_property_is_accounted_for() -> None:
    notes: list[CalendarNote] = []
    [(uid, data)] = list(split_calendar(TASKS, notes))
    assert uid == "e1" and any(n.code == "not-carried" and "VTODO" in n.detail for n in notes)
    e = parse_event(data)
    assert (e.summary, e.description, e.html_description, e.location) == ("Styrelsemöte", "Agenda", "<p>Agenda</p>",
                                                                           "Rum 1")
    assert e.categories == ["Styrelse", "Viktigt"] and e.status == "TENTATIVE"
    assert (e.busy, e.sensitivity, e.importance, e.sequence) == ("oof", "private", "high", 3)
    assert e.attachment_uris == ["https://example.org/agenda.pdf"]
    assert e.reminder_minutes == 15
    assert e.attendees[0].role is AttendeeRole.RESOURCE
    assert (e.attendees[1].role, e.attendees[1].response) == (AttendeeRole.OPTIONAL, Response.DECLINED)
    assert e.created == datetime(2024, 1, 1, 10, tzinfo=UTC) and e.last_modified == datetime(2024, 1, 2, 10, tzinfo=UTC)
    dropped = {prop for prop, _ in e.fidelity.dropped}
    assert {"ATTACH", "URL", "VALARM"} <= dropped
    assert {"SUMMARY", "DTSTART", "ORGANIZER", "ATTENDEE", "VALARM", "CLASS", "PRIORITY"} <= set(e.fidelity.carried)


@pytest.mark.parametrize("data", [b"", b"garbage", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n",
                                  b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                                  b"\xff\xfe\x00\x01", b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2024\nEND:VEVENT\n"])
def test_broken_input_gives_notes_or_damaged_items_never_crashes(data: bytes) -> None:
    notes: list[CalendarNote] = []
    for _, item in split_calendar(data, notes):
        with pytest.raises(DamagedItem):
            parse_event(item)


def test_floating_times_take_the_calendars_zone_and_say_so() -> None:
    data = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:Europe/Stockholm\r\nBEGIN:VEVENT\r\nUID:f\r\n"
            b"DTSTART:20240601T120000\r\nDURATION:PT1H\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    [(_, item)] = list(split_calendar(data))
    event = parse_event(item)
    assert event.timezone == "Europe/Stockholm" and event.start == datetime(2024, 6, 1, 12, tzinfo=ZoneInfo(
        "Europe/Stockholm"))
    assert event.end - event.start == timedelta(hours=1)  # type: ignore[operator]
    assert any("floating" in how for _, how in event.fidelity.changed)


def test_bom_cr_only_line_ends_and_folding() -> None:
    data = (b"\xef\xbb\xbfBEGIN:VCALENDAR\rVERSION:2.0\rBEGIN:VEVENT\rUID:cr-1\rDTSTART:20240101T100000Z\r"
            b"SUMMARY:Long sum\r mary folded\rEND:VEVENT\rEND:VCALENDAR\r")
    [(uid, item)] = list(split_calendar(data))
    assert uid == "cr-1" and b"\r\n" in item and item.count(b"\r") == item.count(b"\r\n")
    assert parse_event(item).summary == "Long summary folded"


def test_a_uid_defined_twice_keeps_the_later_definition() -> None:
    data = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nSEQUENCE:1\r\nDTSTART:20240101T100000Z\r\n"
            b"SUMMARY:old\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:a\r\nSEQUENCE:2\r\nDTSTART:20240101T110000Z\r\n"
            b"SUMMARY:new\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    notes: list[CalendarNote] = []
    [(_, item)] = list(split_calendar(data, notes))
    assert parse_event(item).summary == "new"
    assert [n.code for n in notes] == ["duplicate-uid"]
