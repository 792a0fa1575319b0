"""Events and contacts made into exchangelib items: every mapping, and what is changed or dropped, and why.

Built from migrate.model objects, as the parsers hand them over; no server (test_ews_calendar.py sends
them to the sandbox).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from exchangelib import EWSDate, EWSTimeZone
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

from migrate.model import (
    Attendee,
    AttendeeRole,
    Contact,
    Event,
    PostalAddress,
    Recurrence,
    Response,
    Typed,
)
from migrate.targets.ews_pim import (
    IDENTITY,
    calendar_item,
    contact_item,
    identity_of,
    register_pim_properties,
)
from migrate.targets.ews_recurrence import NotExpressible, parse_rule
from migrate.targets.ews_zones import zone_for

BERLIN = ZoneInfo("Europe/Berlin")
HOME = EWSTimeZone("Europe/Stockholm")
ME = "alice@contoso.example"


@pytest.fixture(autouse=True, scope="module")
def properties() -> None:
    register_pim_properties()


def event(**kw: object) -> Event:
    base: dict[str, object] = {"uid": "u-1@example.org", "summary": "Möte", "timezone": "Europe/Berlin",
                               "start": dt.datetime(2024, 3, 4, 10, 0, tzinfo=BERLIN),
                               "end": dt.datetime(2024, 3, 4, 10, 30, tzinfo=BERLIN)}
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


def props(planned_fidelity: object, kind: str) -> list[str]:
    return [p for p, _ in getattr(planned_fidelity, kind)]


# --- single events ------------------------------------------------------------------------------------


def test_a_plain_event_carries_every_property() -> None:
    source = event(description="agenda", location="Raum 1", categories=["Kund"], reminder_minutes=15, importance="high",
                   busy="tentative", sensitivity="private",
                   attendees=[Attendee("bob@example.org", "Bob", AttendeeRole.REQUIRED, Response.ACCEPTED),
                              Attendee("carl@example.org", None, AttendeeRole.OPTIONAL),
                              Attendee("room1@example.org", "Rum 1", AttendeeRole.RESOURCE)],
                   organizer=Attendee(ME))
    planned = calendar_item(source, "u-1@example.org", None, ME, HOME)
    item = planned.item
    assert (item.subject, item.body, item.location) == ("Möte", "agenda", "Raum 1")
    assert item.uid == "u-1@example.org" and getattr(item, IDENTITY) == "u-1@example.org"
    assert item.start.tzinfo.ms_id == "W. Europe Standard Time" and (item.start.hour, item.start.minute) == (10, 0)
    assert item.end - item.start == dt.timedelta(minutes=30)
    assert item.is_all_day is False
    assert (item.reminder_is_set, item.reminder_minutes_before_start) == (True, 15)
    assert (item.legacy_free_busy_status, item.sensitivity, item.categories) == ("Tentative", "Private", ["Kund"])
    assert item.importance == "High"
    assert [(a.mailbox.email_address, a.response_type) for a in item.required_attendees] == [
        ("bob@example.org", "Accept")]
    assert [a.mailbox.email_address for a in item.optional_attendees] == ["carl@example.org"]
    assert [a.mailbox.email_address for a in item.resources] == ["room1@example.org"]
    assert planned.fidelity.exact, planned.fidelity
    assert not planned.changed and not planned.deleted


def test_html_description_goes_as_html() -> None:
    from exchangelib import HTMLBody

    item = calendar_item(event(description="plain", html_description="<p>rik</p>"), "u", None, ME, HOME).item
    assert isinstance(item.body, HTMLBody) and item.body == "<p>rik</p>"


def test_all_day_gives_the_last_day_inclusive() -> None:
    """iCalendar's DTEND is the day after; exchangelib adds a day to an EWSDate end, so the last day goes in."""
    one = calendar_item(event(all_day=True, start=dt.date(2024, 5, 1), end=dt.date(2024, 5, 2), timezone=None),
                        "u", None, ME, HOME).item
    assert one.is_all_day is True
    assert (one.start, one.end) == (EWSDate(2024, 5, 1), EWSDate(2024, 5, 1))
    three = calendar_item(event(all_day=True, start=dt.date(2024, 5, 1), end=dt.date(2024, 5, 4), timezone=None),
                          "u", None, ME, HOME).item
    assert (three.start, three.end) == (EWSDate(2024, 5, 1), EWSDate(2024, 5, 3))
    no_end = calendar_item(event(all_day=True, start=dt.date(2024, 5, 1), end=None, timezone=None),
                           "u", None, ME, HOME).item
    assert (no_end.start, no_end.end) == (EWSDate(2024, 5, 1), EWSDate(2024, 5, 1))


def test_an_organizer_other_than_the_owner_is_a_drop_with_reason() -> None:
    planned = calendar_item(event(organizer=Attendee("boss@example.org")), "u", None, ME, HOME)
    assert props(planned.fidelity, "dropped") == ["organizer"]
    assert "owner" in planned.fidelity.dropped[0][1]


def test_cancelled_status_links_and_chair_are_accounted() -> None:
    planned = calendar_item(event(status="CANCELLED", attachment_uris=["https://x.example/a.pdf"],
                                  attendees=[Attendee("c@example.org", role=AttendeeRole.CHAIR),
                                             Attendee("no-address", "Kalle")]), "u", None, ME, HOME)
    assert sorted(props(planned.fidelity, "dropped")) == ["attachment", "attendee", "status"]
    assert props(planned.fidelity, "changed") == ["attendee"]
    assert [a.mailbox.email_address for a in planned.item.required_attendees] == ["c@example.org"]


def test_an_event_without_a_start_is_refused() -> None:
    with pytest.raises(ValueError, match="no start"):
        calendar_item(event(start=None), "u", None, ME, HOME)


def test_parser_fidelity_is_kept() -> None:
    source = event()
    source.fidelity.drop("GEO", "coordinates")
    planned = calendar_item(source, "u", None, ME, HOME)
    assert ("GEO", "coordinates") in planned.fidelity.dropped


# --- time zones ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Europe/Berlin", "W. Europe Standard Time"])
def test_iana_and_windows_names_are_carried(name: str) -> None:
    zone = zone_for(name, dt.datetime(2024, 7, 1, 9, tzinfo=BERLIN), HOME)
    assert zone.tz.ms_id == "W. Europe Standard Time" and zone.change is None


class Unnamed(dt.tzinfo):
    """A zone known only by its rules, as a parser builds one from a VTIMEZONE it cannot name."""

    def __init__(self, like: ZoneInfo) -> None:
        self.like = like

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta | None:
        return self.like.utcoffset(when)

    def dst(self, when: dt.datetime | None) -> dt.timedelta | None:
        return self.like.dst(when)

    def tzname(self, when: dt.datetime | None) -> str | None:
        return "custom"

    def fromutc(self, when: dt.datetime) -> dt.datetime:
        return self.like.fromutc(when.replace(tzinfo=self.like)).replace(tzinfo=self)


def test_outlook_display_name_is_matched_by_its_offsets_and_said() -> None:
    """Outlook writes a zone as its display name; its VTIMEZONE gives the rules the match is made on."""
    name = "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"
    zone = zone_for(name, dt.datetime(2024, 7, 1, 9, tzinfo=Unnamed(BERLIN)), HOME)
    assert zone.tz.ms_id == "W. Europe Standard Time"
    assert zone.change is not None and "same UTC offset on every day" in zone.change
    assert name in zone.change


def test_a_zone_whose_name_is_known_keeps_its_name_whatever_the_tzinfo() -> None:
    zone = zone_for("Europe/Berlin", dt.datetime(2024, 7, 1, 9, tzinfo=Unnamed(BERLIN)), HOME)
    assert zone.tz.key == "Europe/Berlin" and zone.change is None


def test_a_made_up_zone_goes_to_the_nearest_and_the_instant_is_kept() -> None:
    """Rules no Exchange zone has (Berlin's offsets a week off): the nearest zone, at the same instant."""

    class Odd(Unnamed):
        def utcoffset(self, when: dt.datetime | None) -> dt.timedelta | None:
            shifted = when + dt.timedelta(days=7) if when is not None else None
            return self.like.utcoffset(shifted.replace(tzinfo=None) if shifted else None)

    start = dt.datetime(2024, 3, 4, 10, tzinfo=Odd(BERLIN))
    planned = calendar_item(event(timezone="Custom Zone", start=start, end=start + dt.timedelta(hours=1)),
                            "u", None, ME, HOME)
    assert planned.item.start.tzinfo.ms_id != "UTC"
    assert planned.item.start == start  # the same moment, whatever the label
    assert "nearest" in dict(planned.fidelity.changed)["timezone"]


def test_a_fixed_offset_maps_to_a_zone_without_summer_time() -> None:
    fixed = dt.timezone(dt.timedelta(hours=5, minutes=30))
    planned = calendar_item(event(timezone=None, start=dt.datetime(2024, 3, 4, 10, tzinfo=fixed),
                                  end=dt.datetime(2024, 3, 4, 11, tzinfo=fixed)), "u", None, ME, HOME)
    assert planned.item.start.tzinfo.ms_id == "India Standard Time"
    assert planned.item.start.hour == 10  # the same wall time, hence the same instant
    assert props(planned.fidelity, "changed") == ["timezone"]


def test_utc_times_stay_utc_and_floating_times_are_pinned_to_the_mailbox() -> None:
    utc = calendar_item(event(timezone=None, start=dt.datetime(2024, 3, 4, 9, tzinfo=dt.UTC),
                              end=dt.datetime(2024, 3, 4, 10, tzinfo=dt.UTC)), "u", None, ME, HOME)
    assert utc.item.start.tzinfo.key == "UTC" and utc.fidelity.exact
    floating = calendar_item(event(timezone=None, start=dt.datetime(2024, 3, 4, 9),
                                   end=dt.datetime(2024, 3, 4, 10)), "u", None, ME, HOME)
    assert floating.item.start.tzinfo.key == "Europe/Stockholm" and floating.item.start.hour == 9
    assert props(floating.fidelity, "changed") == ["timezone"]


def test_start_and_end_in_different_zones() -> None:
    london = ZoneInfo("Europe/London")
    item = calendar_item(event(end=dt.datetime(2024, 3, 4, 11, 0, tzinfo=london)), "u", None, ME, HOME).item
    assert item.start.tzinfo.ms_id == "W. Europe Standard Time" and item.end.tzinfo.ms_id == "GMT Standard Time"
    assert item.end - item.start == dt.timedelta(hours=2)


# --- recurrence ---------------------------------------------------------------------------------------

START = dt.datetime(2024, 3, 4, 10, 0)  # a Monday


@pytest.mark.parametrize(("rrule", "kind", "fields"), [
    ("FREQ=DAILY;INTERVAL=2", DailyPattern, {"interval": 2}),
    ("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", WeeklyPattern, {"weekdays": [1, 2, 3, 4, 5]}),
    ("FREQ=WEEKLY;BYDAY=MO,WE;WKST=SU", WeeklyPattern, {"weekdays": [1, 3], "first_day_of_week": 7}),
    ("FREQ=WEEKLY;INTERVAL=3", WeeklyPattern, {"weekdays": [1], "interval": 3}),
    ("FREQ=MONTHLY;BYMONTHDAY=15", AbsoluteMonthlyPattern, {"day_of_month": 15}),
    ("FREQ=MONTHLY", AbsoluteMonthlyPattern, {"day_of_month": 4}),
    ("FREQ=MONTHLY;BYDAY=2TU", RelativeMonthlyPattern, {"weekday": 2, "week_number": 2}),
    ("FREQ=MONTHLY;BYDAY=-1FR", RelativeMonthlyPattern, {"weekday": 5, "week_number": 5}),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", RelativeMonthlyPattern, {"weekday": 9, "week_number": 5}),
    ("FREQ=MONTHLY;BYMONTHDAY=-1", RelativeMonthlyPattern, {"weekday": 8, "week_number": 5}),
    ("FREQ=YEARLY", AbsoluteYearlyPattern, {"day_of_month": 4, "month": 3}),
    ("FREQ=YEARLY;BYMONTH=6;BYMONTHDAY=6", AbsoluteYearlyPattern, {"day_of_month": 6, "month": 6}),
    ("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", RelativeYearlyPattern, {"weekday": 4, "week_number": 4, "month": 11}),
    ("FREQ=YEARLY;INTERVAL=2", AbsoluteMonthlyPattern, {"interval": 24, "day_of_month": 4}),
])
def test_rules_exchange_can_hold(rrule: str, kind: type, fields: dict[str, object]) -> None:
    rule = parse_rule(rrule, START)
    pattern = rule.recurrence(START.date()).pattern
    assert isinstance(pattern, kind), pattern
    for name, value in fields.items():
        got = getattr(pattern, name)
        assert (sorted(got) if isinstance(got, list) else got) == value, (name, got)
    assert not rule.changes


@pytest.mark.parametrize(("rrule", "boundary", "value"), [
    ("FREQ=WEEKLY;COUNT=10", NumberedPattern, 10),
    ("FREQ=WEEKLY;UNTIL=20240401T090000Z", EndDatePattern, dt.date(2024, 4, 1)),  # 11:00 local: inclusive
    ("FREQ=WEEKLY;UNTIL=20240401T075959Z", EndDatePattern, dt.date(2024, 3, 31)),  # 09:59 local, before 10:00
    ("FREQ=WEEKLY;UNTIL=20240401", EndDatePattern, dt.date(2024, 4, 1)),
    ("FREQ=WEEKLY", NoEndPattern, None),
])
def test_series_ends(rrule: str, boundary: type, value: object) -> None:
    got = parse_rule(rrule, START.replace(tzinfo=None), BERLIN).recurrence(START.date()).boundary
    assert isinstance(got, boundary)
    if boundary is NumberedPattern:
        assert got.number == value
    elif boundary is EndDatePattern:
        assert got.end == value


@pytest.mark.parametrize("rrule", [
    "FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9,17", "FREQ=MONTHLY;BYMONTHDAY=1,15", "FREQ=MONTHLY;BYDAY=1MO,3MO",
    "FREQ=YEARLY;BYWEEKNO=20", "FREQ=MONTHLY;BYDAY=5FR", "FREQ=YEARLY;BYMONTH=1,7", "FREQ=WEEKLY;INTERVAL=120",
])
def test_rules_exchange_cannot_hold(rrule: str) -> None:
    with pytest.raises(NotExpressible):
        parse_rule(rrule, START)


def test_an_unexpressible_rule_keeps_the_first_occurrence_and_says_so() -> None:
    source = event(recurrence=Recurrence("FREQ=MONTHLY;BYMONTHDAY=1,15"),
                   overrides=[event(recurrence_id=dt.datetime(2024, 3, 15, 10, tzinfo=BERLIN))])
    planned = calendar_item(source, "u", None, ME, HOME)
    assert planned.item.recurrence is None
    assert sorted(props(planned.fidelity, "dropped")) == ["occurrence", "recurrence"]
    assert "only the first occurrence" in dict(planned.fidelity.dropped)["recurrence"]


def test_day_31_is_a_change_in_meaning_and_counts_as_exchange_does() -> None:
    rule = parse_rule("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4", dt.datetime(2024, 1, 31, 9))
    assert rule.changes and "last day" in rule.changes[0]
    starts = [d.date() for d in rule.occurrences(dt.datetime(2024, 1, 31, 9))]
    assert starts == [dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31), dt.date(2024, 4, 30)]


def test_rdates_are_dropped() -> None:
    planned = calendar_item(event(recurrence=Recurrence("FREQ=WEEKLY", rdates=(dt.datetime(2024, 3, 7, 10,
                                                                                            tzinfo=BERLIN),))),
                            "u", None, ME, HOME)
    assert planned.item.recurrence is not None
    assert props(planned.fidelity, "dropped") == ["recurrence"] and "RDATE" in planned.fidelity.dropped[0][1]


def test_exdates_and_overrides_become_occurrence_indexes() -> None:
    series = event(
        recurrence=Recurrence("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10",
                              exdates=(dt.datetime(2024, 3, 6, 10, tzinfo=BERLIN),
                                       dt.datetime(2024, 3, 7, 10, tzinfo=BERLIN))),  # a Thursday: no occurrence
        overrides=[
            event(summary="Flyttat", recurrence_id=dt.datetime(2024, 3, 11, 10, tzinfo=BERLIN),
                  start=dt.datetime(2024, 3, 11, 14, tzinfo=BERLIN), end=dt.datetime(2024, 3, 11, 14, 30,
                                                                                      tzinfo=BERLIN)),
            event(status="CANCELLED", recurrence_id=dt.datetime(2024, 3, 18, 9, tzinfo=dt.UTC)),  # 10:00 Berlin
            event(summary="Ny plats", location="Rum 2", recurrence_id=dt.datetime(2024, 4, 1, 10, tzinfo=BERLIN),
                  start=dt.datetime(2024, 4, 1, 10, tzinfo=BERLIN), end=dt.datetime(2024, 4, 1, 10, 30,
                                                                                     tzinfo=BERLIN)),
            event(recurrence_id=dt.datetime(2024, 3, 12, 10, tzinfo=BERLIN)),  # a Tuesday: not in the series
        ])
    planned = calendar_item(series, "u", None, ME, HOME)
    assert sorted(i for i, _ in planned.deleted) == [2, 5]  # 6 March, and the cancelled 18 March
    changed = {i: fields for i, fields, _ in planned.changed}
    assert set(changed) == {3, 9}
    assert changed[3]["subject"] == "Flyttat" and changed[3]["start"].hour == 14
    assert changed[9] == {"subject": "Ny plats", "location": "Rum 2"}  # 1 April (after summer time began)
    assert props(planned.fidelity, "dropped") == ["occurrence"]


def test_all_day_series_exdates_by_date() -> None:
    series = event(all_day=True, timezone=None, start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 2),
                   recurrence=Recurrence("FREQ=YEARLY", exdates=(dt.date(2026, 1, 1),)))
    planned = calendar_item(series, "u", None, ME, HOME)
    assert isinstance(planned.item.recurrence.pattern, AbsoluteYearlyPattern)
    assert planned.deleted == [(3, "2026-01-01")]


def test_a_start_off_the_rule_is_a_change() -> None:
    planned = calendar_item(event(recurrence=Recurrence("FREQ=WEEKLY;BYDAY=TU")), "u", None, ME, HOME)
    assert props(planned.fidelity, "changed") == ["recurrence"]
    assert "2024-03-05" in planned.fidelity.changed[0][1]


# --- contacts -----------------------------------------------------------------------------------------


def test_a_contact_carries_names_addresses_and_the_rest() -> None:
    card = Contact(
        uid="c-1", display_name="Dr. Åsa Öberg", given_name="Åsa", family_name="Öberg", middle_name="M",
        prefix="Dr.", suffix="Jr.", nickname="Åsa-Lisa",
        emails=[Typed("asa@work.se", "work"), Typed("asa@home.se", "home", preferred=True)],
        phones=[Typed("+46 8 123", "work"), Typed("+46 70 123", "cell"), Typed("+46 8 999", "home"),
                Typed("+46 8 555", "work,fax")],
        addresses=[PostalAddress("work", "Storgatan 1", "Stockholm", "", "111 22", "Sverige"),
                   PostalAddress("home", "Hemvägen 2", "Uppsala", po_box="Box 7")],
        urls=[Typed("https://work.se", "work"), Typed("https://hem.se", "home")],
        im=[Typed("xmpp:asa@jabber.se")], birthday=dt.date(1980, 2, 29), anniversary=dt.date(2005, 6, 6),
        company="ACME AB", department="Ekonomi", job_title="Chef", notes="Ring före lunch", categories=["Kund"],
        photo=b"\x89PNG\r\n\x1a\nfake", photo_type="image/png",
    )
    item, fidelity = contact_item(card, "c-1", None)
    assert (item.display_name, item.given_name, item.surname, item.middle_name) == ("Dr. Åsa Öberg", "Åsa", "Öberg",
                                                                                    "M")
    assert (item.nickname, item.generation, item.o365m_name_prefix) == ("Åsa-Lisa", "Jr.", "Dr.")
    assert [e.email for e in item.email_addresses] == ["asa@home.se", "asa@work.se"]  # the preferred first
    assert {p.label: p.phone_number for p in item.phone_numbers} == {
        "BusinessPhone": "+46 8 123", "MobilePhone": "+46 70 123", "HomePhone": "+46 8 999",
        "BusinessFax": "+46 8 555"}
    addresses = {a.label: a for a in item.physical_addresses}
    assert addresses["Business"].city == "Stockholm" and addresses["Business"].zipcode == "111 22"
    assert addresses["Home"].street == "Box 7\nHemvägen 2"
    assert (item.business_homepage, item.o365m_home_page) == ("https://work.se", "https://hem.se")
    assert [i.im_address for i in item.im_addresses] == ["xmpp:asa@jabber.se"]
    assert (item.birthday, item.wedding_anniversary) == (EWSDate(1980, 2, 29), EWSDate(2005, 6, 6))
    assert (item.company_name, item.department, item.job_title) == ("ACME AB", "Ekonomi", "Chef")
    assert item.body == "Ring före lunch" and item.categories == ["Kund"]
    [photo] = item.attachments
    assert photo.is_contact_photo and photo.content == b"\x89PNG\r\n\x1a\nfake" and photo.name.endswith(".png")
    assert getattr(item, IDENTITY) == "c-1"
    assert props(fidelity, "changed") == ["address"] and not fidelity.dropped


def test_what_does_not_fit_is_dropped_or_refiled() -> None:
    card = Contact(uid=None, display_name="Många",
                   emails=[Typed(f"a{n}@x.se") for n in range(5)],
                   phones=[Typed(f"07{n}", "cell") for n in range(9)],
                   addresses=[PostalAddress("home", "A"), PostalAddress("home", "B"), PostalAddress("home", "C")],
                   urls=[Typed("https://a.se"), Typed("https://b.se"), Typed("https://c.se")],
                   im=[Typed(f"im{n}") for n in range(4)])
    item, fidelity = contact_item(card, "sha256:abc", None)
    assert len(item.email_addresses) == 3
    assert len(item.phone_numbers) == 7  # MobilePhone and six spare fields
    dropped = props(fidelity, "dropped")
    assert dropped.count("email") == 2 and dropped.count("phone") == 2 and dropped.count("address") == 1
    assert dropped.count("url") == 1 and dropped.count("im") == 1
    assert props(fidelity, "changed").count("phone") == 6
    assert {a.label for a in item.physical_addresses} == {"Home", "Other"}


def test_a_group_becomes_a_distribution_list_of_its_addresses() -> None:
    from exchangelib import DistributionList

    group = Contact(uid="g-1", display_name="Styrelsen", is_group=True,
                    members=["mailto:a@x.se", "b@x.se", "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"],
                    emails=[Typed("styrelsen@x.se")])
    item, fidelity = contact_item(group, "g-1", None)
    assert isinstance(item, DistributionList) and item.display_name == "Styrelsen"
    assert [m.mailbox.email_address for m in item.members] == ["a@x.se", "b@x.se"]
    assert sorted(props(fidelity, "dropped")) == ["emails", "member"]


def test_identity_prefers_the_engines_then_the_uid_then_a_hash() -> None:
    card = Contact(uid=None)
    assert identity_of("sha256:given", card, b"x") == "sha256:given"
    assert identity_of(None, Contact(uid="u"), b"x") == "u"
    assert identity_of(None, card, b"BEGIN:VCARD").startswith("sha256:")
