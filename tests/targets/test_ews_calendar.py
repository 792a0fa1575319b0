"""Calendars and contacts through the EWS target into the sandbox, read back by exchangelib as another client.

Real msal and exchangelib, schema validation on for every request and answer (a violation fails the test).
The items go up as bytes (iCalendar, vCard) the way the engine hands them over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from exchangelib import UTC, Account, CalendarItem, DistributionList, EWSDate, EWSDateTime
from exchangelib import Contact as EwsContact
from exchangelib.protocol import close_connections
from exchangelib.recurrence import NumberedPattern, WeeklyPattern

from migrate.model import Folder, FolderRole, ItemKind
from migrate.sandbox import Sandbox
from migrate.sandbox.testing import make_sandbox_fixture
from migrate.targets import Failure, Outcome, Target, TargetOptions, UploadItem, open_target
from migrate.targets.ews_pim import IDENTITY, register_pim_properties
from tests.targets.test_ews import ALICE, _populate, _provider, _reader

sandbox = make_sandbox_fixture()
CALENDAR = Folder(("Arbete",), role=FolderRole.CALENDAR, kind=ItemKind.EVENT)
BOOK = Folder(("Kontakter",), role=FolderRole.CONTACTS, kind=ItemKind.CONTACT)

VTIMEZONE = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""


def ics(*events: str, zones: str = VTIMEZONE) -> bytes:
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//o365-migrate tests//EN\n" + zones + "".join(events) \
        + "END:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


# Outlook's way: a Windows zone name as TZID, a weekly series with a deleted and a moved occurrence.
WEEKLY = ics("""BEGIN:VEVENT
UID:weekly-1@example.org
SUMMARY:Veckomöte
DESCRIPTION:Agenda
LOCATION:Rum 1
DTSTART;TZID=W. Europe Standard Time:20240304T100000
DTEND;TZID=W. Europe Standard Time:20240304T103000
RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10
EXDATE;TZID=W. Europe Standard Time:20240306T100000
ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:bob@example.org
ATTENDEE;CN=Carl;ROLE=OPT-PARTICIPANT:mailto:carl@example.org
ORGANIZER:mailto:alice@contoso.example
CATEGORIES:Kund
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT15M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:weekly-1@example.org
RECURRENCE-ID;TZID=W. Europe Standard Time:20240311T100000
SUMMARY:Veckomöte (flyttat)
LOCATION:Rum 1
DTSTART;TZID=W. Europe Standard Time:20240311T140000
DTEND;TZID=W. Europe Standard Time:20240311T143000
END:VEVENT
""")
HOLIDAY = ics("""BEGIN:VEVENT
UID:holiday-1@example.org
SUMMARY:Första maj
DTSTART;VALUE=DATE:20240501
DTEND;VALUE=DATE:20240502
TRANSP:TRANSPARENT
END:VEVENT
""", zones="")
IANA = ics("""BEGIN:VEVENT
UID:iana-1@example.org
SUMMARY:New York call
DTSTART;TZID=America/New_York:20240704T090000
DTEND;TZID=America/New_York:20240704T100000
END:VEVENT
""", zones="")
HOURLY = ics("""BEGIN:VEVENT
UID:hourly-1@example.org
SUMMARY:Every hour
DTSTART:20240304T090000Z
DTEND:20240304T091000Z
RRULE:FREQ=HOURLY;COUNT=5
END:VEVENT
""", zones="")


@pytest.fixture(autouse=True)
def fresh_exchangelib_protocols() -> Iterator[None]:
    register_pim_properties()  # the reader below asks for our identity property too
    yield
    close_connections()


@pytest.fixture
def tenant(sandbox: Sandbox, config_dir: Path) -> Sandbox:
    return _populate(sandbox)


def _open(sb: Sandbox, tmp_path: Path) -> Target:
    return open_target(f"ews://{ALICE}?endpoint={sb.ews_url}&tz=Europe/Stockholm",
                       TargetOptions(token=_provider(sb, tmp_path / "config").token, ca_file=sb.ca_path))


def _item(key: str, raw: bytes, identity: str) -> UploadItem:
    return UploadItem(key, raw, frozenset(), None, message_id=identity)


def test_events_arrive_with_series_exceptions_zones_and_all_day(tenant: Sandbox, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    items = [_item("w", WEEKLY, "weekly-1@example.org"), _item("h", HOLIDAY, "holiday-1@example.org"),
             _item("n", IANA, "iana-1@example.org"), _item("x", HOURLY, "hourly-1@example.org")]
    with _open(tenant, tmp_path) as target:
        folder = target.ensure_folder(("Calendar",), CALENDAR)
        results = target.upload(folder, items)
        assert [r.outcome for r in results] == [Outcome.CREATED] * 4, results
        found = target.find(folder, ["weekly-1@example.org", "nobody@example.org"])
        assert list(found) == ["weekly-1@example.org"]
    fidelity = {r.key: r.fidelity for r in results}
    assert all(f is not None for f in fidelity.values())
    assert not fidelity["w"].dropped and not fidelity["n"].dropped  # type: ignore[union-attr]
    assert "recurrence" in dict(fidelity["x"].dropped)  # type: ignore[union-attr]

    reader = _reader(tenant, monkeypatch)
    assert tenant.folder_path(folder.id) == "Calendar"
    got = {i.uid: i for i in reader.calendar.all()}
    assert set(got) == {"weekly-1@example.org", "holiday-1@example.org", "iana-1@example.org",
                        "hourly-1@example.org"}
    weekly = got["weekly-1@example.org"]
    assert weekly.subject == "Veckomöte" and weekly.location == "Rum 1" and weekly.body == "Agenda"
    assert weekly.start == EWSDateTime(2024, 3, 4, 9, 0, tzinfo=UTC) and weekly.type == "RecurringMaster"
    assert isinstance(weekly.recurrence.pattern, WeeklyPattern)
    assert isinstance(weekly.recurrence.boundary, NumberedPattern) and weekly.recurrence.boundary.number == 10
    assert [a.mailbox.email_address for a in weekly.required_attendees] == ["bob@example.org"]
    assert [a.mailbox.email_address for a in weekly.optional_attendees] == ["carl@example.org"]
    assert (weekly.reminder_is_set, weekly.reminder_minutes_before_start) == (True, 15)
    assert weekly.categories == ["Kund"]
    assert getattr(weekly, IDENTITY) == "weekly-1@example.org"
    assert [o.start for o in weekly.modified_occurrences] == [EWSDateTime(2024, 3, 11, 13, 0, tzinfo=UTC)]
    assert [o.start for o in weekly.deleted_occurrences] == [EWSDateTime(2024, 3, 6, 9, 0, tzinfo=UTC)]
    moved = weekly.occurrence(3)
    moved.refresh()
    assert moved.subject == "Veckomöte (flyttat)" and moved.type == "Exception"
    assert moved.start == EWSDateTime(2024, 3, 11, 13, 0, tzinfo=UTC)
    after_dst = weekly.occurrence(9)  # 1 April: summer time, the same 10:00 in Berlin
    after_dst.refresh()
    assert after_dst.start == EWSDateTime(2024, 4, 1, 8, 0, tzinfo=UTC) and after_dst.subject == "Veckomöte"

    holiday = got["holiday-1@example.org"]
    assert holiday.is_all_day is True and (holiday.start, holiday.end) == (EWSDate(2024, 5, 1), EWSDate(2024, 5, 1))
    assert holiday.legacy_free_busy_status == "Free"
    ny = got["iana-1@example.org"]
    assert ny.start == EWSDateTime(2024, 7, 4, 13, 0, tzinfo=UTC)
    assert ny._start_timezone.ms_id == "Eastern Standard Time"
    hourly = got["hourly-1@example.org"]
    assert hourly.recurrence is None and hourly.start == EWSDateTime(2024, 3, 4, 9, 0, tzinfo=UTC)
    # what another API over the same store sees
    [stored] = [i for i in tenant.items(ALICE, "Calendar") if i.data and i.data["uid"] == "weekly-1@example.org"]
    assert stored.data is not None
    assert [m["index"] for m in stored.data["modified_occurrences"]] == [3]
    assert [d["index"] for d in stored.data["deleted_occurrences"]] == [2]


def test_a_second_calendar_goes_into_its_own_calendar_folder(tenant: Sandbox, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with _open(tenant, tmp_path) as target:
        folder = target.ensure_folder(("Calendar", "Projekt"), CALENDAR)
        assert target.ensure_folder(("Calendar", "Projekt"), CALENDAR).id == folder.id
        book = target.ensure_folder(("Contacts", "Leverantörer"), BOOK)
        [result] = target.upload(folder, [_item("h", HOLIDAY, "holiday-1@example.org")])
        assert result.outcome is Outcome.CREATED
    assert tenant.folder_path(folder.id) == "Calendar/Projekt"
    assert tenant.folder_path(book.id) == "Contacts/Leverantörer"
    reader = _reader(tenant, monkeypatch)
    projekt = reader.calendar / "Projekt"
    assert projekt.folder_class == "IPF.Appointment"
    assert (reader.contacts / "Leverantörer").folder_class == "IPF.Contact"
    assert [i.subject for i in projekt.all()] == ["Första maj"]
    assert list(reader.calendar.all()) == []


def test_a_broken_file_fails_alone(tenant: Sandbox, tmp_path: Path) -> None:
    broken = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:no start\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    with _open(tenant, tmp_path) as target:
        folder = target.ensure_folder(("Calendar",), CALENDAR)
        results = target.upload(folder, [_item("a", HOLIDAY, "holiday-1@example.org"), _item("b", broken, "b"),
                                          _item("c", IANA, "iana-1@example.org")])
        assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.FAILED, Outcome.CREATED]
        assert results[1].failure is Failure.REJECTED and "iCalendar" in (results[1].reason or "")
        assert len(list(target.existing(folder))) == 2


CARD = """BEGIN:VCARD
VERSION:3.0
UID:c-1@example.org
FN:Åsa Öberg
N:Öberg;Åsa;;Dr.;
ORG:ACME AB;Ekonomi
TITLE:Chef
EMAIL;TYPE=INTERNET,WORK:asa@acme.se
EMAIL;TYPE=INTERNET,HOME:asa@hem.se
TEL;TYPE=CELL:+46 70 123 45 67
TEL;TYPE=WORK,VOICE:+46 8 123 45
ADR;TYPE=WORK:;;Storgatan 1;Stockholm;;111 22;Sverige
BDAY:1980-02-29
NOTE:Ring före lunch
CATEGORIES:Kund
URL;TYPE=WORK:https://acme.se
END:VCARD
""".replace("\n", "\r\n").encode()
NO_UID = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Utan Uid\r\nN:Uid;Utan;;;\r\nEMAIL:utan@x.se\r\nEND:VCARD\r\n"
GROUP = b"""BEGIN:VCARD
VERSION:4.0
UID:g-1@example.org
KIND:group
FN:Styrelsen
MEMBER:mailto:ordf@x.se
MEMBER:urn:uuid:c-1@example.org
MEMBER:urn:uuid:nobody-here
END:VCARD
""".replace(b"\n", b"\r\n")


def test_contacts_and_groups_arrive_and_are_found_by_identity(tenant: Sandbox, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fingerprint = "sha256:" + "ab" * 32
    with _open(tenant, tmp_path) as target:
        folder = target.ensure_folder(("Contacts",), BOOK)
        first = target.upload(folder, [_item("c", CARD, "c-1@example.org"), _item("n", NO_UID, fingerprint)])
        assert [r.outcome for r in first] == [Outcome.CREATED] * 2, first
        [group] = target.upload(folder, [_item("g", GROUP, "g-1@example.org")])  # a later batch: members resolved
        assert group.outcome is Outcome.CREATED, group
        held = {m.message_id: m for m in target.existing(folder)}
        assert set(held) == {"c-1@example.org", fingerprint, "g-1@example.org"}
        assert held["c-1@example.org"].subject == "Åsa Öberg"
        found = target.find(folder, [fingerprint, "g-1@example.org"])
        assert set(found) == {fingerprint, "g-1@example.org"}
    assert group.fidelity is not None and [p for p, _ in group.fidelity.dropped] == ["member"]

    reader = _reader(tenant, monkeypatch)
    contacts = {c.display_name: c for c in reader.contacts.all()}
    asa = contacts["Åsa Öberg"]
    assert isinstance(asa, EwsContact)
    assert (asa.given_name, asa.surname, asa.company_name, asa.department, asa.job_title) == (
        "Åsa", "Öberg", "ACME AB", "Ekonomi", "Chef")
    assert [e.email for e in asa.email_addresses] == ["asa@acme.se", "asa@hem.se"]
    assert {p.label: p.phone_number for p in asa.phone_numbers} == {"MobilePhone": "+46 70 123 45 67",
                                                                   "BusinessPhone": "+46 8 123 45"}
    assert [(a.label, a.street, a.city, a.zipcode) for a in asa.physical_addresses] == [
        ("Business", "Storgatan 1", "Stockholm", "111 22")]
    assert asa.birthday == EWSDate(1980, 2, 29) and asa.business_homepage == "https://acme.se"
    assert asa.body == "Ring före lunch" and asa.categories == ["Kund"]
    styrelsen = contacts["Styrelsen"]
    assert isinstance(styrelsen, DistributionList)
    assert sorted(m.mailbox.email_address for m in styrelsen.members) == ["asa@acme.se", "ordf@x.se"]
    [stored] = [i for i in tenant.items(ALICE, "Contacts") if i.kind == "Contact" and i.subject == "Åsa Öberg"]
    assert stored.data is not None and stored.data["emails"][0]["value"] == "asa@acme.se"


def test_a_contact_photo_arrives_as_the_contact_picture(tenant: Sandbox, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    jpeg = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
    card = (b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:p-1\r\nFN:Med Bild\r\nN:Bild;Med;;;\r\n"
            b"PHOTO;ENCODING=b;TYPE=JPEG:" + base64.b64encode(jpeg) + b"\r\nEND:VCARD\r\n")
    with _open(tenant, tmp_path) as target:
        folder = target.ensure_folder(("Contacts",), BOOK)
        [result] = target.upload(folder, [_item("p", card, "p-1")])
    assert result.outcome is Outcome.CREATED and result.fidelity is not None and result.fidelity.exact, result
    reader = _reader(tenant, monkeypatch)
    [contact] = list(reader.contacts.all())
    assert contact.has_picture is True
    assert [(a.name, a.is_contact_photo) for a in contact.attachments] == [("ContactPicture.jpg", True)]
    [stored] = tenant.items(ALICE, "Contacts")
    assert stored.data is not None and stored.data["photo"]["size"] == len(jpeg)


def test_the_mailbox_zone_places_all_day_events(tenant: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    """All-day events are midnight to midnight in the mailbox's zone (tz= in the URL), not the machine's."""
    with _open(tenant, tmp_path) as target:
        folder = target.ensure_folder(("Calendar",), CALENDAR)
        target.upload(folder, [_item("h", HOLIDAY, "holiday-1@example.org")])
    [stored] = tenant.items(ALICE, "Calendar")
    assert stored.data is not None
    assert (stored.data["start"], stored.data["start_time_zone"]) == ("2024-04-30T22:00:00Z",
                                                                      "W. Europe Standard Time")


def test_reading_a_calendar_item_back_through_exchangelib_is_schema_valid(tenant: Sandbox, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every field exchangelib knows of a series, asked back at once (the answer is validated too)."""
    with _open(tenant, tmp_path) as target:
        folder = target.ensure_folder(("Calendar",), CALENDAR)
        target.upload(folder, [_item("w", WEEKLY, "weekly-1@example.org")])
    reader: Account = _reader(tenant, monkeypatch)
    [item] = list(reader.calendar.all())
    full = reader.calendar.get(id=item.id)
    assert isinstance(full, CalendarItem) and full.uid == "weekly-1@example.org"
    assert len(full.modified_occurrences) == 1 and len(full.deleted_occurrences) == 1
    gone = full.occurrence(2)
    with pytest.raises(Exception, match="deleted"):
        gone.refresh()
    beyond = full.occurrence(11)
    with pytest.raises(Exception, match="range"):
        beyond.refresh()
