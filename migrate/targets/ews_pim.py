"""Events and contacts as Exchange items: migrate.model's Event and Contact made into exchangelib
CalendarItem, Contact and DistributionList, with an account of every property carried, changed or dropped.

Each item keeps the identity it had in the source (the iCalendar UID; the vCard UID, or `sha256:<hex>` of a
card without one) in a named MAPI property of our own, so dedupe, resume and verification find it again:

    property set {IDENTITY_SET}, name "o365-migrate-identity", type String

Events also carry the UID in CalendarItem.uid (EWS cannot search on it, hence the property). What EWS
sets itself is not ours to give: the organizer of an event created in a mailbox is its owner, and the
created/modified times are the upload's. Bookkeeping fields (SEQUENCE, DTSTAMP, CREATED, LAST-MODIFIED) are
not accounted per item: they describe the source copy, not the event.

A recurring series goes up as its master with the rule as an Exchange pattern; changed occurrences
(RECURRENCE-ID overrides) and deleted ones (EXDATE, cancelled overrides) are applied after creation by
occurrence index (see ews_recurrence).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exchangelib import (
    Body,
    CalendarItem,
    DistributionList,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    HTMLBody,
)
from exchangelib import Contact as EwsContact
from exchangelib.attachments import FileAttachment
from exchangelib.folders import Folder
from exchangelib.indexed_properties import EmailAddress, ImAddress, PhoneNumber, PhysicalAddress
from exchangelib.properties import Attendee as EwsAttendee
from exchangelib.properties import Mailbox, Member

from migrate.model import Attendee, AttendeeRole, Contact, Event, Fidelity, ItemKind, Response
from migrate.targets.ews_recurrence import NotExpressible, Rule, parse_rule
from migrate.targets.ews_zones import zone_for

IDENTITY_SET = "5d4c3b2a-8e7f-4a61-9b0c-6f1e2d3c4b5a"
MAX_EMAILS = 3  # EmailAddress1..3
MAX_IM = 3


class Identity(ExtendedProperty):
    property_set_id = IDENTITY_SET
    property_name = "o365-migrate-identity"
    property_type = "String"


class NamePrefix(ExtendedProperty):
    property_tag = 0x3A45  # PidTagDisplayNamePrefix: "Dr.", "Mrs."; EWS has no field for it
    property_type = "String"


class PersonalHomePage(ExtendedProperty):
    property_tag = 0x3A50  # PidTagPersonalHomePage; business_homepage is the other one
    property_type = "String"


IDENTITY = "o365m_identity"
_PROPERTIES: list[tuple[Any, str, type[ExtendedProperty]]] = [
    (CalendarItem, IDENTITY, Identity),
    (EwsContact, IDENTITY, Identity),
    (DistributionList, IDENTITY, Identity),
    (EwsContact, "o365m_name_prefix", NamePrefix),
    (EwsContact, "o365m_home_page", PersonalHomePage),
]


def register_pim_properties() -> None:
    """Once per process, like the mail properties (the caller holds the lock)."""
    for cls, name, prop in _PROPERTIES:
        if name not in {f.name for f in cls.FIELDS}:
            cls.register(name, prop)


def parse(kind: ItemKind, raw: bytes, default_timezone: str | None = None) -> Event | Contact:
    """The one place the EWS target meets the iCalendar/vCard parsers (imported when first needed).
    `default_timezone` (IANA) places floating times, as the mailbox's zone."""
    if kind is ItemKind.EVENT:
        from migrate.pim.ical import parse_event

        return parse_event(raw, default_timezone)
    from migrate.pim.vcard import parse_card

    return parse_card(raw)


def identity_of(item_id: str | None, parsed: Event | Contact, raw: bytes) -> str:
    """The source's identity as the engine knows it (MessageRef.message_id), else the parsed UID, else a hash."""
    if item_id:
        return item_id
    if parsed.uid:
        return parsed.uid
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# --- events ---------------------------------------------------------------------------------------------

BUSY = {"free": "Free", "busy": "Busy", "tentative": "Tentative", "oof": "OOF", "workingelsewhere": "WorkingElsewhere"}
IMPORTANCE = {"low": "Low", "normal": "Normal", "high": "High"}
SENSITIVITY = {"normal": "Normal", "private": "Private", "confidential": "Confidential", "personal": "Personal"}
RESPONSE = {Response.ACCEPTED: "Accept", Response.TENTATIVE: "Tentative", Response.DECLINED: "Decline",
            Response.NONE: "NoResponseReceived"}


@dataclass
class PlannedEvent:
    """What goes up for one event: the item, then its changed and deleted occurrences by index."""

    item: CalendarItem
    fidelity: Fidelity
    changed: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)  # index, fields, label
    deleted: list[tuple[int, str]] = field(default_factory=list)  # index, label


def _body(event: Event) -> Body | HTMLBody | None:
    if event.html_description:
        return HTMLBody(event.html_description)
    if event.description:
        return Body(event.description)
    return None


def _local(value: dt.datetime | dt.date, tz: EWSTimeZone) -> EWSDateTime:
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    aware = value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
    if isinstance(aware, EWSDateTime):  # EWSTimeZone.fromutc already made one
        return aware
    return EWSDateTime.from_datetime(aware)


def _day(value: dt.datetime | dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _attendee(person: Attendee) -> EwsAttendee:
    return EwsAttendee(mailbox=Mailbox(email_address=person.email, name=person.name or None),
                       response_type=RESPONSE.get(person.response, "Unknown"))


def _attendees(event: Event, f: Fidelity) -> dict[str, list[EwsAttendee]]:
    out: dict[str, list[EwsAttendee]] = {"required_attendees": [], "optional_attendees": [], "resources": []}
    for person in event.attendees:
        email = (person.email or "").removeprefix("mailto:").removeprefix("MAILTO:").strip()
        if "@" not in email:
            f.drop("attendee", f"{person.name or person.email!r} has no e-mail address")
            continue
        person = Attendee(email, person.name, person.role, person.response)
        if person.role is AttendeeRole.OPTIONAL:
            out["optional_attendees"].append(_attendee(person))
        elif person.role is AttendeeRole.RESOURCE:
            out["resources"].append(_attendee(person))
        else:
            if person.role is AttendeeRole.CHAIR:
                f.change("attendee", f"{email}: the chair is a required attendee in Exchange")
            out["required_attendees"].append(_attendee(person))
    if event.attendees:
        f.carry("attendees")
    return {k: v for k, v in out.items() if v}


class _Times:
    """An event's start and end as exchangelib wants them, and the local wall time its series counts from."""

    def __init__(self, event: Event, home: EWSTimeZone, f: Fidelity) -> None:
        if event.start is None:
            raise ValueError("the event has no start (DTSTART)")
        self.all_day = event.all_day or not isinstance(event.start, dt.datetime)
        if self.all_day:
            first = _day(event.start)
            end = _day(event.end) if event.end is not None else first + dt.timedelta(days=1)
            # exchangelib adds a day to an all-day end: give the last day itself (DOMAIN.md).
            last = max(first, end - dt.timedelta(days=1))
            self.zone = home
            self.start: EWSDate | EWSDateTime = EWSDate.from_date(first)
            self.end: EWSDate | EWSDateTime = EWSDate.from_date(last)
            self.local_start = dt.datetime.combine(first, dt.time())
            return
        assert isinstance(event.start, dt.datetime)
        zone = zone_for(event.timezone, event.start, home)
        if zone.change:
            f.change("timezone", zone.change)
        elif event.timezone or event.start.tzinfo is not None:
            f.carry("timezone")
        self.zone = zone.tz
        start = _local(event.start, zone.tz)
        end_value = event.end if event.end is not None else event.start
        end_zone = zone.tz
        if isinstance(end_value, dt.datetime) and end_value.tzinfo is not None and end_value.tzinfo is not \
                event.start.tzinfo:
            other = zone_for(None, end_value, home)
            end_zone = other.tz
            if other.change:
                f.change("timezone", "end: " + other.change)
        end = _local(end_value, end_zone)
        if end < start:
            f.change("end", f"before the start ({end_value}): made equal to the start")
            end = start.astimezone(end_zone)
        self.start, self.end = start, end
        self.local_start = start.replace(tzinfo=None)

    def local(self, value: dt.datetime | dt.date) -> tuple[dt.datetime, bool]:
        """A RECURRENCE-ID or EXDATE as local wall time, and whether only its date counts."""
        if not isinstance(value, dt.datetime):
            return dt.datetime.combine(value, self.local_start.time()), True
        if value.tzinfo is None:
            return value, self.all_day
        return value.astimezone(self.zone).replace(tzinfo=None), self.all_day


def calendar_item(event: Event, identity: str, folder: Folder, mailbox: str, home: EWSTimeZone) -> PlannedEvent:
    """The CalendarItem for `event` (and its occurrences' changes). Raises ValueError for an event Exchange
    cannot take at all (no start)."""
    f = Fidelity()
    f.merge(event.fidelity)
    times = _Times(event, home, f)
    kwargs: dict[str, Any] = {"folder": folder, "uid": event.uid or identity, IDENTITY: identity,
                              "subject": event.summary or "",
                              "start": times.start, "end": times.end, "is_all_day": times.all_day}
    f.carry("uid")
    f.carry("start")
    f.carry("end")
    if times.all_day:
        f.carry("all-day")
    if event.summary:
        f.carry("summary")
    body = _body(event)
    if body is not None:
        kwargs["body"] = body
        f.carry("description")
    if event.location:
        kwargs["location"] = event.location
        f.carry("location")
    kwargs.update(_attendees(event, f))
    if event.organizer is not None and event.organizer.email:
        if event.organizer.email.removeprefix("mailto:").lower() == mailbox.lower():
            f.carry("organizer")
        else:
            f.drop("organizer", f"{event.organizer.email}: Exchange makes the mailbox's owner the organizer of "
                                "an event created in it")
    kwargs["reminder_is_set"] = event.reminder_minutes is not None
    kwargs["reminder_minutes_before_start"] = max(0, event.reminder_minutes or 0)
    if event.reminder_minutes is not None:
        f.carry("reminder")
        if event.reminder_minutes < 0:
            f.change("reminder", f"{-event.reminder_minutes} minutes after the start: Exchange reminds before it")
    if event.categories:
        kwargs["categories"] = list(event.categories)
        f.carry("categories")
    busy = BUSY.get((event.busy or "busy").lower().replace("-", "").replace("_", ""))
    if busy is None:
        f.change("busy", f"{event.busy!r} shown as busy")
        busy = "Busy"
    kwargs["legacy_free_busy_status"] = busy
    f.carry("busy")
    kwargs["sensitivity"] = SENSITIVITY.get((event.sensitivity or "normal").lower(), "Private")
    if (event.sensitivity or "normal").lower() not in SENSITIVITY:
        f.change("sensitivity", f"{event.sensitivity!r} marked private")
    elif (event.sensitivity or "normal").lower() != "normal":
        f.carry("sensitivity")
    importance = (event.importance or "normal").lower()
    if importance in IMPORTANCE:
        kwargs["importance"] = IMPORTANCE[importance]
        if importance != "normal":
            f.carry("importance")
    else:
        f.change("importance", f"{importance!r} shown as normal")
    status = (event.status or "").upper()
    if status == "CANCELLED":
        f.drop("status", "cancelled: Exchange marks only meetings it cancelled itself; the event shows as planned")
    elif status == "TENTATIVE":
        f.drop("status", "tentative: Exchange has no tentative event, only a tentative free/busy status")
    for uri in event.attachment_uris:
        f.drop("attachment", f"{uri}: Exchange attachments hold content, not links")
    planned = PlannedEvent(CalendarItem(**kwargs), f)
    if event.recurrence is not None:
        _series(event, times, planned)
    elif event.overrides:
        for override in event.overrides:
            f.drop("occurrence", f"{override.recurrence_id}: a changed occurrence of an event that does not repeat")
    return planned


def _series(event: Event, times: _Times, planned: PlannedEvent) -> None:
    f = planned.fidelity
    assert event.recurrence is not None
    try:
        rule = parse_rule(event.recurrence.rrule, times.local_start, times.zone)
    except NotExpressible as exc:
        f.drop("recurrence", f"{event.recurrence.rrule}: {exc}; only the first occurrence was created")
        for override in event.overrides:
            f.drop("occurrence", f"{override.recurrence_id}: the series it changes could not be created")
        return
    planned.item.recurrence = rule.recurrence(times.local_start.date())
    f.carry("recurrence")
    for change in rule.changes:
        f.change("recurrence", change)
    first = next(rule.occurrences(times.local_start), None)
    if first is not None and first != times.local_start:
        f.change("recurrence", f"the start {times.local_start:%Y-%m-%d %H:%M} does not fit the rule: Exchange "
                               f"begins the series on {first:%Y-%m-%d %H:%M}, the first date that does")
    if event.recurrence.rdates:
        f.drop("recurrence", f"{len(event.recurrence.rdates)} extra date(s) (RDATE): an Exchange series holds only "
                             "the dates of its pattern")
    deleted: set[int] = set()
    for exdate in event.recurrence.exdates:
        index = _index(rule, times, exdate)
        if index is not None:
            deleted.add(index)
            planned.deleted.append((index, f"{exdate}"))
    if event.recurrence.exdates:
        f.carry("exdates")
    for override in event.overrides:
        label = f"{override.recurrence_id}"
        index = _index(rule, times, override.recurrence_id) if override.recurrence_id is not None else None
        if index is None:
            f.drop("occurrence", f"{label}: not an occurrence of the series as Exchange holds it")
            continue
        if (override.status or "").upper() == "CANCELLED":
            if index not in deleted:
                deleted.add(index)
                planned.deleted.append((index, label))
            continue
        if index in deleted:
            continue  # deleted by an EXDATE as well: the deletion wins
        changes = _occurrence_changes(event, override, times, rule, index, f)
        if changes:
            planned.changed.append((index, changes, label))
    if event.overrides:
        f.carry("occurrences")


def _index(rule: Rule, times: _Times, value: dt.datetime | dt.date) -> int | None:
    local, by_date = times.local(value)
    return rule.index_of(times.local_start, local, by_date=by_date)


def _occurrence_changes(master: Event, override: Event, times: _Times, rule: Rule, index: int,
                        f: Fidelity) -> dict[str, Any]:
    """The fields of one occurrence that differ from the series, as exchangelib field names."""
    changes: dict[str, Any] = {}
    if override.summary != master.summary:
        changes["subject"] = override.summary or ""
    if (override.description, override.html_description) != (master.description, master.html_description):
        changes["body"] = _body(override) or Body("")
    if override.location != master.location:
        changes["location"] = override.location
    if override.start is not None:
        mine = _Times(override, times.zone, Fidelity())
        original = next((w for n, w in enumerate(rule.occurrences(times.local_start), 1) if n == index), None)
        length = times.end - times.start
        moved = original is None or mine.local_start != original or (mine.end - mine.start) != length
        if moved and mine.all_day == times.all_day:
            changes["start"], changes["end"] = mine.start, mine.end
        elif moved:
            f.drop("occurrence", f"{override.recurrence_id}: an occurrence cannot switch between all-day and timed")
    if override.reminder_minutes != master.reminder_minutes:
        changes["reminder_is_set"] = override.reminder_minutes is not None
        changes["reminder_minutes_before_start"] = max(0, override.reminder_minutes or 0)
    if override.busy != master.busy and override.busy.lower() in BUSY:
        changes["legacy_free_busy_status"] = BUSY[override.busy.lower()]
    # Clients that write overrides often leave out what did not change: an override without attendees
    # or categories keeps the series' own.
    if override.categories and override.categories != master.categories:
        changes["categories"] = list(override.categories)
    if override.attendees and override.attendees != master.attendees:
        people = _attendees(override, f)
        for name in ("required_attendees", "optional_attendees", "resources"):
            changes[name] = people.get(name) or None
    return changes


# --- contacts -------------------------------------------------------------------------------------------

# Exchange's phone slots by what a number is for, in the order they are filled.
PHONE_SLOTS: list[tuple[Callable[[set[str]], bool], tuple[str, ...]]] = [
    (lambda k: "fax" in k and bool(k & {"home"}), ("HomeFax", "OtherFax")),
    (lambda k: "fax" in k, ("BusinessFax", "OtherFax", "HomeFax")),
    (lambda k: "pager" in k, ("Pager",)),
    (lambda k: bool(k & {"cell", "mobile", "iphone"}), ("MobilePhone",)),
    (lambda k: "car" in k, ("CarPhone",)),
    (lambda k: bool(k & {"isdn"}), ("Isdn",)),
    (lambda k: bool(k & {"textphone", "tty", "tdd"}), ("TtyTddPhone",)),
    (lambda k: bool(k & {"main", "company"}), ("CompanyMainPhone",)),
    (lambda k: bool(k & {"assistant"}), ("AssistantPhone",)),
    (lambda k: bool(k & {"callback"}), ("Callback",)),
    (lambda k: bool(k & {"work", "business"}), ("BusinessPhone", "BusinessPhone2")),
    (lambda k: "home" in k, ("HomePhone", "HomePhone2")),
]
SPARE_PHONES = ("OtherTelephone", "PrimaryPhone", "HomePhone2", "BusinessPhone2", "Callback", "RadioPhone")
ADDRESS_SLOTS = {"home": "Home", "work": "Business", "business": "Business", "other": "Other"}


def _kinds(text: str) -> set[str]:
    return {k for k in re.split(r"[^a-z0-9]+", (text or "").lower()) if k}


def _phones(contact: Contact, f: Fidelity) -> list[PhoneNumber]:
    taken: dict[str, str] = {}
    for phone in sorted(contact.phones, key=lambda p: not p.preferred):
        number = phone.value.removeprefix("tel:").strip()
        if not number:
            continue
        kinds = _kinds(phone.kind)
        wanted = next((slots for test, slots in PHONE_SLOTS if test(kinds)), ())
        if not wanted and phone.preferred:
            wanted = ("PrimaryPhone",)
        slot = next((s for s in wanted if s not in taken), None)
        if slot is None:
            slot = next((s for s in SPARE_PHONES if s not in taken), None)
            if slot is None:
                f.drop("phone", f"{number} ({phone.kind}): every Exchange phone field is taken")
                continue
            if wanted:
                f.change("phone", f"{number} ({phone.kind}) filed as {slot}: the {wanted[0]} field is taken")
        taken[slot] = number
    if taken:
        f.carry("phones")
    return [PhoneNumber(label=slot, phone_number=number) for slot, number in taken.items()]


def _addresses(contact: Contact, f: Fidelity) -> list[PhysicalAddress]:
    taken: dict[str, PhysicalAddress] = {}
    for address in contact.addresses:
        label = ADDRESS_SLOTS.get((address.kind or "other").lower(), "Other")
        if label in taken:
            if "Other" in taken:
                f.drop("address", f"{address.street}, {address.city}: Exchange holds one home, one business "
                                  "and one other address")
                continue
            f.change("address", f"a second {label.lower()} address filed as the other address")
            label = "Other"
        street = address.street
        if address.po_box:
            street = f"{address.po_box}\n{street}".strip()
            f.change("address", f"post office box {address.po_box!r} written into the street (EWS has no field)")
        taken[label] = PhysicalAddress(label=label, street=street or None, city=address.city or None,
                                       state=address.region or None, zipcode=address.postal_code or None,
                                       country=address.country or None)
    if taken:
        f.carry("addresses")
    return list(taken.values())


def _display_name(contact: Contact) -> str:
    if contact.display_name:
        return contact.display_name
    names = " ".join(n for n in (contact.given_name, contact.middle_name, contact.family_name) if n)
    return names or contact.company or next((e.value for e in contact.emails), "") or "(no name)"


def _emails(contact: Contact, f: Fidelity) -> list[EmailAddress]:
    emails = [e for e in sorted(contact.emails, key=lambda e: not e.preferred) if e.value.strip()]
    for extra in emails[MAX_EMAILS:]:
        f.drop("email", f"{extra.value}: Exchange holds at most {MAX_EMAILS} e-mail addresses")
    if emails:
        f.carry("emails")
    return [EmailAddress(label=f"EmailAddress{n}", email=e.value.removeprefix("mailto:").strip())
            for n, e in enumerate(emails[:MAX_EMAILS], 1)]


def _photo(contact: Contact) -> FileAttachment | None:
    if not contact.photo:
        return None
    ext = {"image/png": "png", "image/gif": "gif", "image/bmp": "bmp"}.get((contact.photo_type or "").lower(), "jpg")
    return FileAttachment(name=f"ContactPicture.{ext}", content=contact.photo, is_contact_photo=True,
                          content_type=contact.photo_type or "image/jpeg")


def uid_key(uid: str) -> str:
    """A card's UID as group members name it: without `urn:uuid:`, in any case."""
    uid = uid.strip()
    return (uid[9:] if uid.lower().startswith("urn:uuid:") else uid).lower()


def contact_item(contact: Contact, identity: str, folder: Folder, members_by_uid: dict[str, str] | None = None
                 ) -> tuple[EwsContact | DistributionList, Fidelity]:
    """The Exchange item for a vCard: a Contact, or a DistributionList for a group. `members_by_uid` gives the
    e-mail address of each contact a group names by UID (uid_key -> address)."""
    f = Fidelity()
    f.merge(contact.fidelity)
    if contact.is_group:
        return _group(contact, identity, folder, f, members_by_uid or {}), f
    kwargs: dict[str, Any] = {"folder": folder, IDENTITY: identity, "display_name": _display_name(contact)}
    f.carry("display name")
    simple = {"given_name": contact.given_name, "surname": contact.family_name, "middle_name": contact.middle_name,
              "nickname": contact.nickname, "generation": contact.suffix, "company_name": contact.company,
              "department": contact.department, "job_title": contact.job_title,
              "o365m_name_prefix": contact.prefix}
    labels = {"given_name": "given name", "surname": "family name", "middle_name": "middle name",
              "nickname": "nickname", "generation": "suffix", "company_name": "company",
              "department": "department", "job_title": "job title", "o365m_name_prefix": "prefix"}
    for name, value in simple.items():
        if value:
            kwargs[name] = value
            f.carry(labels[name])
    if contact.emails:
        kwargs["email_addresses"] = _emails(contact, f)
    if contact.phones:
        kwargs["phone_numbers"] = _phones(contact, f) or None
    if contact.addresses:
        kwargs["physical_addresses"] = _addresses(contact, f) or None
    if contact.birthday is not None:
        kwargs["birthday"] = EWSDate.from_date(contact.birthday)
        f.carry("birthday")
    if contact.anniversary is not None:
        kwargs["wedding_anniversary"] = EWSDate.from_date(contact.anniversary)
        f.carry("anniversary")
    if contact.notes:
        kwargs["body"] = Body(contact.notes)
        f.carry("notes")
    if contact.categories:
        kwargs["categories"] = list(contact.categories)
        f.carry("categories")
    _urls(contact, kwargs, f)
    ims = [i for i in contact.im if i.value.strip()]
    if ims:
        kwargs["im_addresses"] = [ImAddress(label=f"ImAddress{n}", im_address=i.value.strip())
                                  for n, i in enumerate(ims[:MAX_IM], 1)]
        f.carry("im")
        for extra in ims[MAX_IM:]:
            f.drop("im", f"{extra.value}: Exchange holds at most {MAX_IM} IM addresses")
    photo = _photo(contact)
    if photo is not None:
        kwargs["attachments"] = [photo]
        f.carry("photo")
    return EwsContact(**kwargs), f


def _urls(contact: Contact, kwargs: dict[str, Any], f: Fidelity) -> None:
    urls = [u for u in contact.urls if u.value.strip()]
    if not urls:
        return
    work = next((u for u in urls if _kinds(u.kind) & {"work", "business"}), None)
    rest = [u for u in urls if u is not work]
    if work is not None:
        kwargs["business_homepage"] = work.value.strip()
    if rest:
        kwargs["o365m_home_page"] = rest[0].value.strip()
        if work is None and len(rest) > 1:
            kwargs["business_homepage"] = rest[1].value.strip()
            f.change("url", f"{rest[1].value} filed as the business home page")
            rest = rest[1:]
        for extra in rest[1:]:
            f.drop("url", f"{extra.value}: Exchange holds a personal and a business home page only")
    f.carry("urls")


def _group(contact: Contact, identity: str, folder: Folder, f: Fidelity, by_uid: dict[str, str]
           ) -> DistributionList:
    members = []
    named = [(m, None) for m in contact.members] + [(m, by_uid.get(uid_key(m))) for m in contact.member_uids]
    for member, resolved in named:
        email = resolved or member.removeprefix("mailto:").removeprefix("MAILTO:").strip()
        if "@" not in email or email.lower().startswith("urn:"):
            f.drop("member", f"{member}: no contact with an e-mail address has this UID (Exchange groups list "
                             "e-mail addresses)")
            continue
        members.append(Member(mailbox=Mailbox(email_address=email)))
    f.carry("display name")
    if members:
        f.carry("members")
    kwargs: dict[str, Any] = {"folder": folder, IDENTITY: identity, "display_name": _display_name(contact),
                              "members": members or None}
    if contact.notes:
        kwargs["body"] = Body(contact.notes)
        f.carry("notes")
    if contact.categories:
        kwargs["categories"] = list(contact.categories)
        f.carry("categories")
    for prop, value in (("emails", contact.emails), ("phones", contact.phones), ("addresses", contact.addresses),
                        ("photo", contact.photo)):
        if value:
            f.drop(prop, "an Exchange contact group holds members, not details of its own")
    return DistributionList(**kwargs)


def instant(value: dt.datetime | dt.date | None) -> dt.datetime | None:
    """A start or end as a UTC instant for comparison; an all-day date as midnight UTC of that day."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(), dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(value.timestamp(), dt.UTC)  # a plain datetime, also from an EWSDateTime

