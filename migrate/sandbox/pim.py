"""Events, contacts and contact groups in the sandbox: their neutral JSON form, and the occurrences of a series.

Items keep the element the client sent (items.py renders EWS answers from it); beside it each event,
contact and group is stored as plain JSON (ItemRow.data) that any other API over the same store (Graph)
or a test can read without knowing SOAP:

    event:   uid, subject, body {type, content}, location, start/end (UTC), start_time_zone/end_time_zone
             (Windows ids), is_all_day, busy, sensitivity, reminder_minutes, categories, attendees [{type,
             email, name, response}], recurrence {pattern, interval, ..., start_date, end_date,
             number_of_occurrences}, modified_occurrences [{index, original_start, start, end, changes}],
             deleted_occurrences [{index, original_start}]
    contact: display_name, given_name, middle_name, surname, nickname, generation, company_name, department,
             job_title, birthday, wedding_anniversary, business_home_page, emails/phones/im_addresses
             [{key, value}], addresses [{key, street, city, state, country, postal_code}], categories,
             notes, photo {name, content_type, size}
    group:   display_name, members [{email, name}], categories, notes

A changed occurrence keeps the elements the client set on it (`xml`), so EWS answers with them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
from typing import Any

from lxml import etree

from .items import ItemError, iso, parse_bool, parse_datetime
from .recurrence import Pattern, occurrence_dates, parse_pattern, windows_zone
from .soap import boolean, sub, t
from .store import ItemRow

NOT_RECURRING = ("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
                 "The occurrence index is out of the range of the recurrence.")
OCCURRENCE_DELETED = ("ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                      "The occurrence was deleted from the recurrence.")
# What a changed occurrence may carry of its own: the rest is the series'.
SERIES_ONLY = frozenset({"Recurrence", "UID", "ItemId", "ParentFolderId", "CalendarItemType", "FirstOccurrence",
                         "LastOccurrence", "ModifiedOccurrences", "DeletedOccurrences"})


def _text(el: etree._Element, name: str) -> str | None:
    found = el.find(t(name))
    return found.text if found is not None and found.text is not None else None


def _entries(el: etree._Element, container: str) -> list[dict[str, Any]]:
    found = el.find(t(container))
    return [] if found is None else [{"key": e.get("Key"), "value": e.text or ""} for e in found.iter(t("Entry"))]


def _strings(el: etree._Element, container: str) -> list[str]:
    found = el.find(t(container))
    return [] if found is None else [s.text or "" for s in found.iter(t("String"))]


def _body(el: etree._Element) -> dict[str, str] | None:
    found = el.find(t("Body"))
    return None if found is None else {"type": found.get("BodyType", "Text"), "content": found.text or ""}


def _xml(el: etree._Element) -> str:
    """An element on its own, without the namespaces of the request it came in."""
    alone = copy.deepcopy(el)
    etree.cleanup_namespaces(alone)
    return etree.tostring(alone).decode()


def check_time_zones(props: etree._Element) -> None:
    """Exchange refuses a time zone id it does not know, as the client sent it."""
    for name in ("StartTimeZone", "EndTimeZone", "MeetingTimeZone"):
        zone = props.find(t(name))
        if zone is not None and zone.get("Id") and windows_zone(zone.get("Id", "")) is None:
            raise ItemError("ErrorTimeZone", f"The time zone {zone.get('Id')!r} is not valid.")


def event_json(props: etree._Element) -> dict[str, Any]:
    attendees = []
    for container, kind in (("RequiredAttendees", "required"), ("OptionalAttendees", "optional"),
                            ("Resources", "resource")):
        found = props.find(t(container))
        for attendee in found.iter(t("Attendee")) if found is not None else []:
            attendees.append({"type": kind, "email": attendee.findtext(f"{t('Mailbox')}/{t('EmailAddress')}"),
                              "name": attendee.findtext(f"{t('Mailbox')}/{t('Name')}"),
                              "response": attendee.findtext(t("ResponseType"))})
    recurrence = props.find(t("Recurrence"))
    minutes = _text(props, "ReminderMinutesBeforeStart")
    return {
        "type": "event", "uid": _text(props, "UID"), "subject": _text(props, "Subject"), "body": _body(props),
        "location": _text(props, "Location"), "start": _text(props, "Start"), "end": _text(props, "End"),
        "start_time_zone": (props.find(t("StartTimeZone")).get("Id") if props.find(t("StartTimeZone")) is not None
                            else None),
        "end_time_zone": (props.find(t("EndTimeZone")).get("Id") if props.find(t("EndTimeZone")) is not None
                          else None),
        "is_all_day": bool(parse_bool(_text(props, "IsAllDayEvent"))),
        "busy": _text(props, "LegacyFreeBusyStatus") or "Busy", "sensitivity": _text(props, "Sensitivity"),
        "reminder_minutes": int(minutes) if parse_bool(_text(props, "ReminderIsSet")) and minutes else None,
        "categories": _strings(props, "Categories"), "attendees": attendees,
        "recurrence": parse_pattern(recurrence).as_json() if recurrence is not None else None,
        "modified_occurrences": [], "deleted_occurrences": [],
    }


def contact_json(props: etree._Element) -> dict[str, Any]:
    addresses = []
    found = props.find(t("PhysicalAddresses"))
    for entry in found.iter(t("Entry")) if found is not None else []:
        addresses.append({"key": entry.get("Key"), "street": _text(entry, "Street"), "city": _text(entry, "City"),
                          "state": _text(entry, "State"), "country": _text(entry, "CountryOrRegion"),
                          "postal_code": _text(entry, "PostalCode")})
    photo = None
    for attachment in props.iter(t("FileAttachment")):
        if parse_bool(_text(attachment, "IsContactPhoto")):
            try:
                size = len(base64.b64decode("".join((_text(attachment, "Content") or "").split()), validate=True))
            except (binascii.Error, ValueError) as exc:
                raise ItemError("ErrorInvalidValueForProperty", "The contact photo is not valid base64.") from exc
            photo = {"name": _text(attachment, "Name"), "content_type": _text(attachment, "ContentType"),
                     "size": size}
    data: dict[str, Any] = {"type": "contact"}
    for name, key in (("DisplayName", "display_name"), ("GivenName", "given_name"), ("MiddleName", "middle_name"),
                      ("Surname", "surname"), ("Nickname", "nickname"), ("Generation", "generation"),
                      ("CompanyName", "company_name"), ("Department", "department"), ("JobTitle", "job_title"),
                      ("BusinessHomePage", "business_home_page")):
        data[key] = _text(props, name)
    for name, key in (("Birthday", "birthday"), ("WeddingAnniversary", "wedding_anniversary")):
        data[key] = (_text(props, name) or "")[:10] or None
    body = _body(props)
    data.update(emails=_entries(props, "EmailAddresses"), phones=_entries(props, "PhoneNumbers"),
                im_addresses=_entries(props, "ImAddresses"), addresses=addresses,
                categories=_strings(props, "Categories"), notes=body["content"] if body else None, photo=photo)
    return data


def group_json(props: etree._Element) -> dict[str, Any]:
    members = []
    found = props.find(t("Members"))
    for member in found.iter(t("Member")) if found is not None else []:
        members.append({"email": member.findtext(f"{t('Mailbox')}/{t('EmailAddress')}"),
                        "name": member.findtext(f"{t('Mailbox')}/{t('Name')}")})
    body = _body(props)
    return {"type": "group", "display_name": _text(props, "DisplayName"), "members": members,
            "categories": _strings(props, "Categories"), "notes": body["content"] if body else None}


def neutral(kind: str, props: etree._Element) -> str | None:
    """The JSON form of an item of these kinds (None for mail and the rest)."""
    if kind == "CalendarItem":
        check_time_zones(props)
        return json.dumps(event_json(props))
    if kind == "Contact":
        return json.dumps(contact_json(props))
    if kind == "DistributionList":
        return json.dumps(group_json(props))
    return None


# --- occurrences of a series ----------------------------------------------------------------------------

def occurrence_id(master_id: str, index: int) -> str:
    return base64.b64encode(f"O{master_id}:{index}".encode()).decode()


def parse_occurrence_id(value: str) -> tuple[str, int] | None:
    try:
        raw = base64.b64decode(value, validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    master, _, index = raw[1:].rpartition(":")
    if not raw.startswith("O") or not master or not index.isdigit():
        return None
    return master, int(index)


class Series:
    """A recurring master and what its occurrences are: times from the pattern, changes from data."""

    def __init__(self, item: ItemRow) -> None:
        self.item = item
        self.props = etree.fromstring(item.props)
        recurrence = self.props.find(t("Recurrence"))
        if item.kind != "CalendarItem" or recurrence is None or item.data is None:
            raise ItemError(*NOT_RECURRING)
        self.data: dict[str, Any] = json.loads(item.data)
        self.pattern: Pattern = parse_pattern(recurrence)
        start = parse_datetime(_text(self.props, "Start") or "")
        end = parse_datetime(_text(self.props, "End") or "")
        if start is None or end is None:
            raise ItemError(*NOT_RECURRING)
        zone_el = self.props.find(t("StartTimeZone"))
        self.zone = windows_zone(zone_el.get("Id", "")) if zone_el is not None else None
        self.first_start, self.length = start, end - start

    def original_start(self, index: int) -> dt.datetime:
        zone = self.zone or dt.UTC
        local_time = self.first_start.astimezone(zone).time()
        for n, day in occurrence_dates(self.pattern):
            if n == index:
                return dt.datetime.combine(day, local_time, zone).astimezone(dt.UTC)
        raise ItemError(*NOT_RECURRING)

    def modified(self, index: int) -> dict[str, Any] | None:
        return next((m for m in self.data["modified_occurrences"] if m["index"] == index), None)

    def deleted(self, index: int) -> bool:
        return any(d["index"] == index for d in self.data["deleted_occurrences"])

    def times(self, index: int) -> tuple[dt.datetime, dt.datetime]:
        changed = self.modified(index)
        if changed is not None:
            start, end = parse_datetime(changed["start"]), parse_datetime(changed["end"])
            assert start is not None and end is not None
            return start, end
        start = self.original_start(index)
        return start, start + self.length

    def occurrence_props(self, index: int) -> etree._Element:
        """The occurrence as an item element: the series' properties, its own changes, its own times."""
        if self.deleted(index):
            raise ItemError(*OCCURRENCE_DELETED)
        original = self.original_start(index)
        start, end = self.times(index)
        props = copy.deepcopy(self.props)
        changed = self.modified(index)
        for el in list(props):
            name = etree.QName(el).localname if isinstance(el.tag, str) else ""
            if name in SERIES_ONLY or name in ("Start", "End") or (changed and name in changed["changes"]):
                props.remove(el)
        for text in (changed or {}).get("xml", []):
            props.append(etree.fromstring(text))
        sub(props, t("UID"), _text(self.props, "UID") or "")
        sub(props, t("RecurrenceId"), iso(original))
        sub(props, t("Start"), iso(start))
        sub(props, t("End"), iso(end))
        sub(props, t("OriginalStart"), iso(original))
        sub(props, t("IsRecurring"), boolean(True))
        sub(props, t("CalendarItemType"), "Exception" if changed else "Occurrence")
        return props

    def change(self, index: int, sets: list[etree._Element], deletes: list[str]) -> None:
        """Apply an UpdateItem's changes to one occurrence: it becomes an exception of the series."""
        if self.deleted(index):
            raise ItemError(*OCCURRENCE_DELETED)
        original = self.original_start(index)
        start, end = self.times(index)
        changed = self.modified(index) or {"index": index, "original_start": iso(original), "changes": {},
                                            "xml": []}
        elements = {etree.QName(e).localname: e for e in (etree.fromstring(x) for x in changed["xml"])}
        for el in sets:
            name = etree.QName(el).localname
            if name == "Start":
                start = parse_datetime(el.text or "") or start
            elif name == "End":
                end = parse_datetime(el.text or "") or end
            elif name not in SERIES_ONLY:
                elements[name] = el
                changed["changes"][name] = (el.text if len(el) == 0 and el.text else el.get("Id")) or "(set)"
        for name in deletes:
            elements.pop(name, None)
            changed["changes"][name] = None
        if end < start:
            raise ItemError("ErrorCalendarEndDateIsEarlierThanStartDate", "The end date is earlier than the start.")
        changed.update(start=iso(start), end=iso(end), xml=[_xml(e) for e in elements.values()])
        self.data["modified_occurrences"] = [m for m in self.data["modified_occurrences"] if m["index"] != index]
        self.data["modified_occurrences"].append(changed)
        self.data["modified_occurrences"].sort(key=lambda m: m["index"])

    def delete(self, index: int) -> None:
        if self.deleted(index):
            raise ItemError(*OCCURRENCE_DELETED)
        original = self.original_start(index)
        self.data["modified_occurrences"] = [m for m in self.data["modified_occurrences"] if m["index"] != index]
        self.data["deleted_occurrences"].append({"index": index, "original_start": iso(original)})
        self.data["deleted_occurrences"].sort(key=lambda d: d["index"])

    def dumps(self) -> str:
        return json.dumps(self.data)

    def series_parts(self) -> dict[str, etree._Element]:
        """ModifiedOccurrences and DeletedOccurrences of the master, as EWS lists them."""
        parts: dict[str, etree._Element] = {}
        scratch = etree.Element(t("scratch"))
        if self.data["modified_occurrences"]:
            container = sub(scratch, t("ModifiedOccurrences"))
            for changed in self.data["modified_occurrences"]:
                occurrence = sub(container, t("Occurrence"))
                sub(occurrence, t("ItemId"), Id=occurrence_id(self.item.id, changed["index"]), ChangeKey="CQAAAA==")
                sub(occurrence, t("Start"), changed["start"])
                sub(occurrence, t("End"), changed["end"])
                sub(occurrence, t("OriginalStart"), changed["original_start"])
            parts["ModifiedOccurrences"] = container
        if self.data["deleted_occurrences"]:
            container = sub(scratch, t("DeletedOccurrences"))
            for gone in self.data["deleted_occurrences"]:
                sub(sub(container, t("DeletedOccurrence")), t("Start"), gone["original_start"])
            parts["DeletedOccurrences"] = container
        return parts
