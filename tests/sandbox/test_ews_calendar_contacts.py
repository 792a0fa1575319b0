"""Calendar items and contacts through the real exchangelib, and a sandbox that survives a restart."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from exchangelib import UTC, Account, CalendarItem, Contact, EWSDate, EWSDateTime, EWSTimeZone, Folder
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress
from exchangelib.protocol import close_connections
from exchangelib.recurrence import NumberedPattern, Recurrence, WeeklyPattern

from migrate.sandbox import Sandbox

from .conftest import populate
from .helpers import ALICE, account, app_credentials, confidential_app, message

BERLIN = EWSTimeZone("Europe/Berlin")


def test_recurring_and_all_day_events(alice: Account) -> None:
    weekly = CalendarItem(
        folder=alice.calendar, subject="Weekly sync", body="agenda", location="Raum 1",
        start=EWSDateTime(2024, 3, 4, 10, 0, tzinfo=BERLIN), end=EWSDateTime(2024, 3, 4, 10, 30, tzinfo=BERLIN),
        recurrence=Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[1, 3]),
                              boundary=NumberedPattern(start=EWSDate(2024, 3, 4), number=10)),
    )
    # exchangelib adds a day to an all-day end date, so the iCalendar DTEND (exclusive) minus one goes in.
    holiday = CalendarItem(folder=alice.calendar, subject="Holiday", is_all_day=True, legacy_free_busy_status="Free",
                           start=EWSDate(2024, 5, 1), end=EWSDate(2024, 5, 2))
    results = alice.bulk_create(alice.calendar, [weekly, holiday])
    assert not [r for r in results if isinstance(r, Exception)]
    by_subject = {i.subject: i for i in alice.calendar.all()}
    got = by_subject["Weekly sync"]
    assert got.start == EWSDateTime(2024, 3, 4, 9, 0, tzinfo=UTC)
    assert got.location == "Raum 1" and got.type == "RecurringMaster"
    assert isinstance(got.recurrence.pattern, WeeklyPattern) and got.recurrence.boundary.number == 10
    assert got.uid
    day = by_subject["Holiday"]
    assert day.is_all_day is True
    assert (day.start, day.end) == (EWSDate(2024, 5, 1), EWSDate(2024, 5, 2))


def test_contact_round_trip(alice: Account) -> None:
    contact = Contact(
        folder=alice.contacts, display_name="Jürgen Müller", given_name="Jürgen", surname="Müller", company_name="ACME",
        email_addresses=[EmailAddress(label="EmailAddress1", email="jm@example.org")],
        phone_numbers=[PhoneNumber(label="MobilePhone", phone_number="+49 170 1234567")],
        physical_addresses=[PhysicalAddress(label="Business", street="Hauptstr. 1", city="Berlin",
                                            zipcode="10115", country="Germany")],
    )
    (created,) = alice.bulk_create(alice.contacts, [contact])
    (got,) = alice.fetch([created])
    assert got.display_name == "Jürgen Müller"
    assert got.given_name == "Jürgen" and got.company_name == "ACME"
    assert [e.email for e in got.email_addresses] == ["jm@example.org"]
    assert got.physical_addresses[0].city == "Berlin"
    assert [c.display_name for c in alice.contacts.filter(display_name="jürgen müller")] == ["Jürgen Müller"]


def test_restart_keeps_folders_items_and_tokens(sandbox_factory: Callable[..., Sandbox],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = populate(sandbox_factory())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(first.ca_path))
    app = confidential_app(first)
    credentials = app_credentials(app)
    acct = account(first, credentials)
    folder = Folder(parent=acct.inbox, name="Kept")
    folder.save()
    raw = b"From: a@example.org\nSubject: kept\nMessage-ID: <kept@x>\n\nbody\n"
    acct.bulk_create(folder, [message(raw)])
    state_dir, port = first.state_dir, first.port
    first.stop()
    close_connections()
    second = sandbox_factory(state_dir=state_dir, port=port)
    assert second.ca_path.read_bytes() == first.ca_path.read_bytes()  # clients keep trusting it
    again = account(second, credentials)  # the token issued before the restart is still good
    assert (again.inbox / "Kept").filter(message_id="<kept@x>").exists()
    assert second.received_mime(ALICE) == [("Inbox/Kept", raw)]
