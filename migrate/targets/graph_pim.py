"""Events and contacts as Graph JSON: migrate.model's Event and Contact made into Graph `event` and `contact`
bodies, with an account of every property carried, changed or dropped.

Identity: each item keeps its source identity (the iCalendar UID; the vCard UID or `sha256:<hex>`) in the same
named MAPI property the EWS target writes (ews_pim.IDENTITY_SET, name "o365-migrate-identity"), so items made
by either transport are found again by the other: Graph names it
`String {5d4c3b2a-8e7f-4a61-9b0c-6f1e2d3c4b5a} Name o365-migrate-identity`. Graph's `iCalUId` is read-only.

A series goes up as its master with a `patternedRecurrence`; deleted and changed occurrences are applied after
creation through the series' `instances` (see graph.py). Contact groups have no Graph v1.0 API: they are refused
with a reason naming the EWS transport.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from tzlocal.windows_tz import tz_win, win_tz

from migrate.model import AttendeeRole, Contact, Event, Fidelity, Typed

IDENTITY_SET = "5d4c3b2a-8e7f-4a61-9b0c-6f1e2d3c4b5a"  # the same as ews_pim.IDENTITY_SET: one identity, two APIs
IDENTITY_PROP = f"String {{{IDENTITY_SET}}} Name o365-migrate-identity"
MAX_EMAILS = 3
SHOW_AS = {"free": "free", "busy": "busy", "tentative": "tentative", "oof": "oof",
           "workingelsewhere": "workingElsewhere"}
SENSITIVITY = {"normal": "normal", "private": "private", "confidential": "confidential", "personal": "personal"}
IMPORTANCE = {"low": "low", "normal": "normal", "high": "high"}
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEX = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "last"}
# MAPI properties for what a Graph contact has no field for (the EWS side has these as indexed entries).
PROP_BUSINESS_FAX = "String 0x3A24"
PROP_HOME_FAX = "String 0x3A25"
PROP_PAGER = "String 0x3A21"
PROP_ANNIVERSARY = "SystemTime 0x3A41"


class NotForGraph(ValueError):
    """An item Graph cannot hold at all; the text says why and what to use instead."""


@dataclass
class Occurrences:
    """What to do to a series after creation: deleted and changed occurrences by their original start (UTC)."""

    deleted: list[dt.datetime] = field(default_factory=list)
    changed: list[tuple[dt.datetime, dict[str, Any]]] = field(default_factory=list)


@dataclass
class GraphEvent:
    body: dict[str, Any]
    fidelity: Fidelity
    occurrences: Occurrences = field(default_factory=Occurrences)


def windows_zone_name(name: str | None, sample: dt.datetime | None) -> tuple[str, zoneinfo.ZoneInfo | dt.tzinfo]:
    """A Windows time zone name Exchange knows for an IANA or Windows name (or the sample's own zone)."""
    if name and name in win_tz:
        return name, zoneinfo.ZoneInfo(win_tz[name])
    if name and name in tz_win:
        return tz_win[name], zoneinfo.ZoneInfo(name)
    key = getattr(sample.tzinfo if sample is not None else None, "key", None)
    if key and key in tz_win:
        return tz_win[key], zoneinfo.ZoneInfo(key)
    return "UTC", dt.UTC


def _local(value: dt.datetime, zone: dt.tzinfo) -> str:
    local = value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)
    return local.replace(tzinfo=None).isoformat(timespec="seconds")


def _utc(value: dt.datetime | dt.date, zone: dt.tzinfo, at: dt.time) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, at)
    aware = value.replace(tzinfo=zone) if value.tzinfo is None else value
    return aware.astimezone(dt.UTC)


def _recurrence(event: Event, start_local: dt.datetime, zone_name: str, zone: dt.tzinfo,
                f: Fidelity) -> dict[str, Any] | None:
    assert event.recurrence is not None
    # The RRULE reading is the EWS target's (Exchange's model of a series is the same through either API).
    from migrate.targets.ews_recurrence import NotExpressible, parse_rule

    try:
        rule = parse_rule(event.recurrence.rrule, start_local, zone)
    except NotExpressible as exc:
        f.drop("recurrence", f"{exc}: only the first occurrence is kept")
        return None
    for change in rule.changes:
        f.change("recurrence", change)
    pattern: dict[str, Any] = {"interval": rule.interval, "firstDayOfWeek": DAY_NAMES[rule.first_day_of_week]}
    days = [DAY_NAMES[d] for d in sorted(rule.weekdays)]
    if rule.freq == "DAILY":
        pattern["type"] = "daily"
    elif rule.freq == "WEEKLY":
        pattern.update(type="weekly", daysOfWeek=days)
    elif rule.freq == "MONTHLY":
        if rule.month_day is not None:
            pattern.update(type="absoluteMonthly", dayOfMonth=rule.month_day)
        else:
            pattern.update(type="relativeMonthly", daysOfWeek=days, index=INDEX[rule.week_number or 1])
    else:
        pattern["month"] = rule.month
        if rule.month_day is not None:
            pattern.update(type="absoluteYearly", dayOfMonth=rule.month_day)
        else:
            pattern.update(type="relativeYearly", daysOfWeek=days, index=INDEX[rule.week_number or 1])
    first = start_local.date()
    limit: dict[str, Any] = {"startDate": first.isoformat(), "recurrenceTimeZone": zone_name}
    if rule.count is not None:
        limit.update(type="numbered", numberOfOccurrences=rule.count)
    elif rule.until is not None:
        limit.update(type="endDate", endDate=max(rule.until, first).isoformat())
    else:
        limit["type"] = "noEnd"
    f.carry("recurrence")
    if event.recurrence.rdates:
        f.drop("recurrence", f"{len(event.recurrence.rdates)} extra date(s) (RDATE): an Exchange series has none")
    return {"pattern": pattern, "range": limit}


def _attendees(event: Event, f: Fidelity) -> list[dict[str, Any]]:
    out = []
    for person in event.attendees:
        address = (person.email or "").removeprefix("mailto:").removeprefix("MAILTO:").strip()
        if "@" not in address:
            f.drop("attendee", f"{person.name or person.email!r} has no e-mail address")
            continue
        kind = {AttendeeRole.OPTIONAL: "optional", AttendeeRole.RESOURCE: "resource"}.get(person.role, "required")
        if person.role is AttendeeRole.CHAIR:
            f.change("attendee", f"{address}: the chair is a required attendee in Exchange")
        entry: dict[str, Any] = {"address": address}
        if person.name:
            entry["name"] = person.name
        out.append({"emailAddress": entry, "type": kind})
    if out:
        f.carry("attendees")
        if any(p.response.value != "none" for p in event.attendees):
            f.drop("attendee responses", "Graph sets no attendee's response on an event it creates")
    return out


def _times(event: Event, home: str | None, f: Fidelity) -> tuple[dict[str, Any], dt.datetime, str, dt.tzinfo]:
    """start/end/isAllDay for the event, its local start (for the series) and its zone."""
    if event.start is None:
        raise ValueError("the event has no start (DTSTART)")
    all_day = event.all_day or not isinstance(event.start, dt.datetime)
    if all_day:
        zone_name, zone = windows_zone_name(home, None)
        first = event.start.date() if isinstance(event.start, dt.datetime) else event.start
        end = event.end.date() if isinstance(event.end, dt.datetime) else event.end
        end = end if end is not None and end > first else first + dt.timedelta(days=1)
        f.carry("all-day")
        start_local = dt.datetime.combine(first, dt.time())
        return ({"isAllDay": True,
                 "start": {"dateTime": start_local.isoformat(timespec="seconds"), "timeZone": zone_name},
                 "end": {"dateTime": dt.datetime.combine(end, dt.time()).isoformat(timespec="seconds"),
                         "timeZone": zone_name}}, start_local, zone_name, zone)
    assert isinstance(event.start, dt.datetime)
    zone_name, zone = windows_zone_name(event.timezone or home, event.start)
    if event.start.tzinfo is None and not event.timezone and not home:
        f.change("timezone", "floating time taken as UTC")
    elif zone_name == "UTC" and event.timezone and event.timezone.upper() not in ("UTC", "ETC/UTC", "Z"):
        f.change("timezone", f"{event.timezone!r} is not a zone Exchange knows: times kept as UTC")
    else:
        f.carry("timezone")
    end = event.end if isinstance(event.end, dt.datetime) else event.start
    if _utc(end, zone, dt.time()) < _utc(event.start, zone, dt.time()):
        f.change("end", f"before the start ({end}): made equal to the start")
        end = event.start
    start_local = dt.datetime.fromisoformat(_local(event.start, zone))
    return ({"isAllDay": False, "start": {"dateTime": _local(event.start, zone), "timeZone": zone_name},
             "end": {"dateTime": _local(end, zone), "timeZone": zone_name}}, start_local, zone_name, zone)


def graph_event(event: Event, identity: str, mailbox: str, home: str | None = None) -> GraphEvent:
    """The Graph event for `event`; raises ValueError for one Exchange cannot take at all (no start)."""
    f = Fidelity()
    f.merge(event.fidelity)
    times, start_local, zone_name, zone = _times(event, home, f)
    body: dict[str, Any] = {"subject": event.summary or "", **times,
                            "singleValueExtendedProperties": [{"id": IDENTITY_PROP, "value": identity}]}
    for prop in ("uid", "start", "end"):
        f.carry(prop)
    if event.summary:
        f.carry("summary")
    if event.html_description:
        body["body"] = {"contentType": "html", "content": event.html_description}
        f.carry("description")
    elif event.description:
        body["body"] = {"contentType": "text", "content": event.description}
        f.carry("description")
    if event.location:
        body["location"] = {"displayName": event.location}
        f.carry("location")
    attendees = _attendees(event, f)
    if attendees:
        body["attendees"] = attendees
    if event.organizer is not None and event.organizer.email:
        if event.organizer.email.removeprefix("mailto:").lower() == mailbox.lower():
            f.carry("organizer")
        else:
            f.drop("organizer", f"{event.organizer.email}: Exchange makes the mailbox's owner the organizer of "
                                "an event created in it")
    body["isReminderOn"] = event.reminder_minutes is not None
    if event.reminder_minutes is not None:
        body["reminderMinutesBeforeStart"] = max(0, event.reminder_minutes)
        f.carry("reminder")
        if event.reminder_minutes < 0:
            f.change("reminder", f"{-event.reminder_minutes} minutes after the start: Exchange reminds before it")
    if event.categories:
        body["categories"] = list(event.categories)
        f.carry("categories")
    show = SHOW_AS.get((event.busy or "busy").lower().replace("-", "").replace("_", ""))
    if show is None:
        f.change("busy", f"{event.busy!r} shown as busy")
    body["showAs"] = show or "busy"
    f.carry("busy")
    sensitivity = (event.sensitivity or "normal").lower()
    body["sensitivity"] = SENSITIVITY.get(sensitivity, "private")
    if sensitivity not in SENSITIVITY:
        f.change("sensitivity", f"{event.sensitivity!r} marked private")
    elif sensitivity != "normal":
        f.carry("sensitivity")
    importance = (event.importance or "normal").lower()
    body["importance"] = IMPORTANCE.get(importance, "normal")
    if importance not in IMPORTANCE:
        f.change("importance", f"{importance!r} shown as normal")
    elif importance != "normal":
        f.carry("importance")
    status = (event.status or "").upper()
    if status == "CANCELLED":
        f.drop("status", "cancelled: Exchange marks only meetings it cancelled itself; the event shows as planned")
    elif status == "TENTATIVE":
        f.drop("status", "tentative: Exchange has no tentative event, only a tentative free/busy status")
    for uri in event.attachment_uris:
        f.drop("attachment", f"{uri}: Exchange attachments hold content, not links")
    planned = GraphEvent(body, f)
    if event.recurrence is not None:
        pattern = _recurrence(event, start_local, zone_name, zone, f)
        if pattern is not None:
            body["recurrence"] = pattern
            at = start_local.time()
            planned.occurrences.deleted = [_utc(d, zone, at) for d in event.recurrence.exdates]
            for override in event.overrides:
                if override.recurrence_id is None:
                    continue
                original = _utc(override.recurrence_id, zone, at)
                if (override.status or "").upper() == "CANCELLED":
                    planned.occurrences.deleted.append(original)
                else:
                    planned.occurrences.changed.append((original, _override(event, override, zone, home, f)))
    elif event.overrides:
        for override in event.overrides:
            f.drop("occurrence", f"{override.recurrence_id}: a changed occurrence of an event that does not repeat")
    return planned


def _override(master: Event, override: Event, zone: dt.tzinfo, home: str | None, f: Fidelity) -> dict[str, Any]:
    """The fields an occurrence changes, as a Graph PATCH body."""
    changes: dict[str, Any] = {}
    if override.start is not None and not master.all_day:
        times, _, _, _ = _times(override, home, Fidelity())
        changes["start"], changes["end"] = times["start"], times["end"]
    if override.summary and override.summary != master.summary:
        changes["subject"] = override.summary
    if override.location and override.location != master.location:
        changes["location"] = {"displayName": override.location}
    if override.description and override.description != master.description:
        changes["body"] = {"contentType": "text", "content": override.description}
    return changes


# --- contacts ------------------------------------------------------------------------------------------------

def _kinds(text: str) -> set[str]:
    return {k.strip().lower() for k in text.replace(";", ",").split(",") if k.strip()}


def _date_time(value: dt.date) -> str:
    return dt.datetime.combine(value, dt.time()).strftime("%Y-%m-%dT%H:%M:%SZ")


def _phones(contact: Contact, body: dict[str, Any], props: list[dict[str, str]], f: Fidelity) -> None:
    business: list[str] = []
    home: list[str] = []
    for phone in contact.phones:
        kinds = _kinds(phone.kind)
        number = phone.value
        if "fax" in kinds:
            prop = PROP_HOME_FAX if "home" in kinds else PROP_BUSINESS_FAX
            if any(p["id"] == prop for p in props):
                f.drop("phone", f"{number}: a second fax number has no place in Exchange")
            else:
                props.append({"id": prop, "value": number})
        elif "pager" in kinds:
            if any(p["id"] == PROP_PAGER for p in props):
                f.drop("phone", f"{number}: a second pager has no place in Exchange")
            else:
                props.append({"id": PROP_PAGER, "value": number})
        elif kinds & {"cell", "mobile"} and "mobilePhone" not in body:
            body["mobilePhone"] = number
        elif "home" in kinds:
            home.append(number)
        else:
            business.append(number)
    if contact.phones:
        f.carry("phones")
    if business:
        body["businessPhones"] = business
    if home:
        body["homePhones"] = home


def _addresses(contact: Contact, body: dict[str, Any], f: Fidelity) -> None:
    slots = {"home": "homeAddress", "work": "businessAddress", "business": "businessAddress", "other": "otherAddress"}
    for address in contact.addresses:
        slot = slots.get((address.kind or "other").lower(), "otherAddress")
        if slot in body:
            slot = "otherAddress" if "otherAddress" not in body else ""
            if not slot:
                f.drop("address", f"{address.street}, {address.city}: Exchange holds one home, work and other "
                                  "address")
                continue
            f.change("address", f"a second {address.kind} address kept as the other address")
        street = "\n".join(p for p in (address.street, address.po_box and f"Box {address.po_box}") if p)
        body[slot] = {"street": street, "city": address.city, "state": address.region,
                      "countryOrRegion": address.country, "postalCode": address.postal_code}
    if contact.addresses:
        f.carry("addresses")


def _pick_urls(urls: list[Typed], body: dict[str, Any], f: Fidelity) -> None:
    for url in urls:
        kinds = _kinds(url.kind)
        key = "businessHomePage" if ("work" in kinds or "home" not in kinds) else ""
        if key and key not in body:
            body[key] = url.value
            f.carry("url")
        else:
            f.drop("url", f"{url.value}: Graph has one web page field per contact")


def graph_contact(contact: Contact, identity: str) -> tuple[dict[str, Any], Fidelity, bytes | None]:
    """The Graph contact for `contact`, its fidelity, and the photo to put after creation."""
    if contact.is_group:
        raise NotForGraph("contact groups have no Microsoft Graph API: move this address book over EWS "
                          "(an ews:// target) where the tenant allows it")
    f = Fidelity()
    f.merge(contact.fidelity)
    props: list[dict[str, str]] = [{"id": IDENTITY_PROP, "value": identity}]
    body: dict[str, Any] = {}
    name = contact.display_name or " ".join(p for p in (contact.given_name, contact.family_name) if p)
    if not name and contact.emails:
        name = contact.emails[0].value
    body["displayName"] = name
    f.carry("uid")
    f.carry("display name")
    for attr, key in (("given_name", "givenName"), ("family_name", "surname"), ("middle_name", "middleName"),
                      ("prefix", "title"), ("suffix", "generation"), ("nickname", "nickName"),
                      ("company", "companyName"), ("department", "department"), ("job_title", "jobTitle"),
                      ("notes", "personalNotes")):
        value = getattr(contact, attr)
        if value:
            body[key] = value
            f.carry(attr.replace("_", " "))
    emails = []
    for n, mail in enumerate(contact.emails):
        address = mail.value.removeprefix("mailto:")
        if n >= MAX_EMAILS:
            f.drop("email", f"{address}: Exchange holds three e-mail addresses per contact")
            continue
        emails.append({"address": address, "name": name or address})
    if emails:
        body["emailAddresses"] = emails
        f.carry("emails")
    _phones(contact, body, props, f)
    _addresses(contact, body, f)
    _pick_urls(contact.urls, body, f)
    if contact.im:
        body["imAddresses"] = [i.value for i in contact.im[:3]]
        for extra in contact.im[3:]:
            f.drop("im", f"{extra.value}: Exchange holds three IM addresses")
        f.carry("im")
    if contact.birthday is not None:
        body["birthday"] = _date_time(contact.birthday)
        f.carry("birthday")
    if contact.anniversary is not None:
        props.append({"id": PROP_ANNIVERSARY, "value": _date_time(contact.anniversary)})
        f.carry("anniversary")
    if contact.categories:
        body["categories"] = list(contact.categories)
        f.carry("categories")
    body["singleValueExtendedProperties"] = props
    photo = None
    if contact.photo:
        if (contact.photo_type or "image/jpeg").lower() in ("image/jpeg", "image/jpg", "image/png"):
            photo = contact.photo
            f.carry("photo")
        else:
            f.drop("photo", f"{contact.photo_type}: Exchange takes JPEG or PNG contact photos")
    return body, f, photo
