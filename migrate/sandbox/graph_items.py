"""Graph's JSON entities over the sandbox's one store, which EWS serves too.

Items are kept the way EWS keeps them (items.py, pim.py): a message as MIME plus MAPI properties, an event or a
contact as the EWS element a client would have sent plus its neutral JSON. So a message created through Graph is
made into MIME here (as Exchange builds MIME from its store on request), an event or contact into the EWS element;
reading answers from the same columns whichever API wrote them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import email.policy
import json
import zoneinfo
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from lxml import etree

from . import pim
from .items import (
    MSGFLAG_READ,
    MSGFLAG_UNSENT,
    ExtendedProps,
    ItemError,
    iso,
    now_iso,
    parse_datetime,
)
from .mime import message_facts
from .recurrence import DAYS, INDEXES, MONTHS, windows_zone
from .soap import T_NS, sub, t
from .store import ItemRow, new_id

PROP_TYPES = {"integer": "Integer", "systemtime": "SystemTime", "string": "String", "boolean": "Boolean",
              "long": "Long", "binary": "Binary"}
FLAG_STATUS = 0x1090
MESSAGE_SIZE = 0x0E08


def ext_key(graph_id: str) -> str:
    """The store's key (items.ext_key) for a Graph extended property id: "Integer 0x0E07",
    "String {guid} Name name"."""
    words = graph_id.split()
    if len(words) < 2:
        raise ItemError("ErrorInvalidExtendedProperty", f"The extended property id {graph_id!r} is not valid.")
    ptype = PROP_TYPES.get(words[0].lower())
    if ptype is None:
        raise ItemError("ErrorInvalidExtendedProperty", f"Unknown property type in {graph_id!r}.")
    if len(words) == 2:
        try:
            return f"tag:{int(words[1], 16)}:{ptype}"
        except ValueError:
            raise ItemError("ErrorInvalidExtendedProperty", f"Bad property tag in {graph_id!r}.") from None
    if len(words) >= 4 and words[2].lower() == "name":
        return f"named:{words[1].strip('{}').lower()}:name:{' '.join(words[3:])}:{ptype}"
    if len(words) == 4 and words[2].lower() == "id":
        return f"named:{words[1].strip('{}').lower()}:{int(words[3], 0)}:{ptype}"
    raise ItemError("ErrorInvalidExtendedProperty", f"The extended property id {graph_id!r} is not valid.")


def ext_props(body: dict[str, Any]) -> ExtendedProps:
    props = ExtendedProps()
    for prop in body.get("singleValueExtendedProperties") or []:
        props.values[ext_key(str(prop.get("id", "")))] = [str(prop.get("value") or "")]
    return props


def wanted_ids(expand: str) -> list[str]:
    """The property ids of `singleValueExtendedProperties($filter=id eq 'A' or id eq 'B')`."""
    found = []
    for part in expand.split("'")[1::2]:
        found.append(part)
    return found


# --- messages --------------------------------------------------------------------------------------------

def _address(entry: dict[str, Any] | None) -> str | None:
    box = (entry or {}).get("emailAddress") or {}
    address = box.get("address")
    return formataddr((box.get("name") or "", address)) if address else None


def message_mime(body: dict[str, Any], sent: dt.datetime | None) -> bytes:
    """The MIME Exchange would give for a message created from these JSON fields."""
    message = EmailMessage(policy=email.policy.SMTP)
    for key, header in (("from", "From"), ("sender", "Sender")):
        value = _address(body.get(key))
        if value and not (header == "Sender" and value == _address(body.get("from"))):
            message[header] = value
    for key, header in (("toRecipients", "To"), ("ccRecipients", "Cc"), ("bccRecipients", "Bcc"),
                        ("replyTo", "Reply-To")):
        values = [v for v in (_address(e) for e in body.get(key) or []) if v]
        if values:
            message[header] = ", ".join(values)
    message["Subject"] = body.get("subject") or ""
    if sent is not None:
        message["Date"] = format_datetime(sent)
    if body.get("internetMessageId"):
        message["Message-ID"] = body["internetMessageId"]
    importance = body.get("importance")
    if importance in ("high", "low"):
        message["Importance"] = importance.title()
    content = body.get("body") or {}
    subtype = "html" if str(content.get("contentType", "")).lower() == "html" else "plain"
    message.set_content(content.get("content") or "", subtype=subtype)
    for attachment in body.get("attachments") or []:
        add_attachment(message, attachment)
    return message.as_bytes()


def add_attachment(message: EmailMessage, attachment: dict[str, Any], data: bytes | None = None) -> None:
    if data is None:
        try:
            data = base64.b64decode(attachment.get("contentBytes") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ItemError("ErrorInvalidRequest", "contentBytes is not valid base64.") from exc
    maintype, _, subtype = str(attachment.get("contentType") or "application/octet-stream").partition("/")
    if maintype == "message" or maintype == "multipart":
        maintype, subtype = "application", "octet-stream"
    if message.get_content_maintype() != "multipart":
        message.make_mixed()
    message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                           filename=attachment.get("name") or "attachment",
                           disposition="inline" if attachment.get("isInline") else "attachment",
                           cid=f"<{attachment['contentId']}>" if attachment.get("contentId") else None)


def message_row(body: dict[str, Any], mailbox: str, folder_id: str, max_bytes: int) -> ItemRow:
    """A message made through Graph's JSON route; a draft unless PR_MESSAGE_FLAGS was set without UNSENT."""
    props = ext_props(body)
    given = props.tag_value(0x0E07)
    try:
        flags = int(given) if given is not None else None
    except ValueError:
        raise ItemError("ErrorInvalidExtendedPropertyValue", "PR_MESSAGE_FLAGS must be an integer.") from None
    is_draft = flags is None or bool(flags & MSGFLAG_UNSENT)
    is_read = bool(body["isRead"]) if isinstance(body.get("isRead"), bool) else bool((flags or 0) & MSGFLAG_READ)
    delivery = parse_datetime(props.tag_value(0x0E06) or "")
    submit = parse_datetime(props.tag_value(0x0039) or "")
    if (body.get("flag") or {}).get("flagStatus") == "flagged":
        props.values[f"tag:{FLAG_STATUS}:Integer"] = ["2"]
    mime = message_mime(body, submit)
    if len(mime) > max_bytes:
        raise ItemError("ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")
    received = iso(delivery) if delivery else now_iso()
    element = etree.Element(t("Message"), nsmap={"t": T_NS})
    sub(element, t("ItemClass"), "IPM.Note")
    facts = message_facts(mime)
    return ItemRow(
        id=new_id("I"), mailbox=mailbox, folder_id=folder_id, kind="Message", item_class="IPM.Note",
        subject=body.get("subject") or "", internet_message_id=body.get("internetMessageId") or facts.message_id,
        date_received=received, date_sent=iso(submit) if submit else received, date_created=now_iso(),
        is_read=is_read, is_draft=is_draft,
        msg_flags=((flags or 0) & ~(MSGFLAG_READ | MSGFLAG_UNSENT)) | (MSGFLAG_READ if is_read else 0)
        | (MSGFLAG_UNSENT if is_draft else 0),
        size=len(mime), has_attachments=any(not a.is_inline for a in facts.attachments), mime=mime,
        props=etree.tostring(element), ext_props=props.dumps(),
    )


def mime_row(mime: bytes, mailbox: str, folder_id: str, max_bytes: int, draft: bool) -> ItemRow:
    """A message made from MIME: a draft (POST .../messages with text/plain) or a received one (importMime)."""
    if len(mime) > max_bytes:
        raise ItemError("ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")
    facts = message_facts(mime)
    when = iso(facts.date_sent) if facts.date_sent else now_iso()
    element = etree.Element(t("Message"), nsmap={"t": T_NS})
    sub(element, t("ItemClass"), "IPM.Note")
    return ItemRow(
        id=new_id("I"), mailbox=mailbox, folder_id=folder_id, kind="Message", item_class="IPM.Note",
        subject=facts.subject, internet_message_id=facts.message_id, date_received=now_iso() if draft else when,
        date_sent=when, date_created=now_iso(), is_read=True, is_draft=draft,
        msg_flags=MSGFLAG_READ | (MSGFLAG_UNSENT if draft else 0), size=len(mime),
        has_attachments=any(not a.is_inline for a in facts.attachments), mime=mime, props=etree.tostring(element),
        ext_props=ExtendedProps().dumps(),
    )


def _recipients_json(addresses: list[Any]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"name": a.name or a.email, "address": a.email}} for a in addresses]


def message_json(row: ItemRow, expand_ids: list[str] | None = None) -> dict[str, Any]:
    facts = message_facts(row.mime) if row.mime is not None else None
    stored = ExtendedProps.loads(row.ext_props)
    flagged = stored.tag_value(FLAG_STATUS) == "2"
    out: dict[str, Any] = {
        "id": row.id, "subject": row.subject, "internetMessageId": row.internet_message_id, "isRead": row.is_read,
        "isDraft": row.is_draft, "receivedDateTime": row.date_received, "sentDateTime": row.date_sent or
        row.date_received, "createdDateTime": row.date_created, "hasAttachments": row.has_attachments,
        "parentFolderId": row.folder_id, "flag": {"flagStatus": "flagged" if flagged else "notFlagged"},
    }
    if facts is not None:
        out["from"] = _recipients_json(facts.sender)[0] if facts.sender else None
        out["toRecipients"] = _recipients_json(facts.to)
        out["ccRecipients"] = _recipients_json(facts.cc)
        out["importance"] = facts.importance.lower()
    if expand_ids:
        values = []
        for graph_id in expand_ids:
            key = ext_key(graph_id)
            tag = int(key.split(":")[1]) if key.startswith("tag:") else None
            if tag == 0x0E07:
                value: str | None = str(row.msg_flags)
            elif tag == MESSAGE_SIZE:
                value = str(row.size)
            else:
                got = stored.values.get(key)
                value = got[0] if got else None
            if value is not None:
                values.append({"id": graph_id, "value": value})
        out["singleValueExtendedProperties"] = values
    return out


# --- events ----------------------------------------------------------------------------------------------

def _utc(value: dict[str, Any] | None) -> dt.datetime:
    if not value or not value.get("dateTime"):
        raise ItemError("ErrorInvalidRequest", "start and end need a dateTime.")
    local = dt.datetime.fromisoformat(str(value["dateTime"]).replace("Z", ""))
    zone_name = str(value.get("timeZone") or "UTC")
    zone: dt.tzinfo | None = dt.UTC if zone_name.upper() == "UTC" else windows_zone(zone_name)
    if zone is None:
        try:
            zone = zoneinfo.ZoneInfo(zone_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ItemError("ErrorTimeZone", f"The time zone {zone_name!r} is not valid.") from None
    return (local.replace(tzinfo=zone) if local.tzinfo is None else local).astimezone(dt.UTC)


def _mailbox(parent: etree._Element, address: dict[str, Any]) -> None:
    box = sub(parent, t("Mailbox"))
    if address.get("name"):
        sub(box, t("Name"), str(address["name"]))
    sub(box, t("EmailAddress"), str(address.get("address") or ""))


def _recurrence(parent: etree._Element, recurrence: dict[str, Any]) -> None:
    pattern, limit = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind = str(pattern.get("type", ""))
    element = sub(parent, t("Recurrence"))
    names = {"daily": "DailyRecurrence", "weekly": "WeeklyRecurrence", "absoluteMonthly": "AbsoluteMonthlyRecurrence",
             "relativeMonthly": "RelativeMonthlyRecurrence", "absoluteYearly": "AbsoluteYearlyRecurrence",
             "relativeYearly": "RelativeYearlyRecurrence"}
    if kind not in names:
        raise ItemError("ErrorInvalidRecurrence", f"Unknown recurrence pattern {kind!r}.")
    el = sub(element, t(names[kind]))
    days = " ".join(str(d).title() for d in pattern.get("daysOfWeek") or [])
    index = INDEXES[["first", "second", "third", "fourth", "last"].index(str(pattern.get("index", "first")))]
    if kind in ("daily", "weekly", "absoluteMonthly", "relativeMonthly"):
        sub(el, t("Interval"), str(pattern.get("interval") or 1))
    if kind == "weekly":
        sub(el, t("DaysOfWeek"), days or DAYS[0])
        sub(el, t("FirstDayOfWeek"), str(pattern.get("firstDayOfWeek") or "sunday").title())
    elif kind in ("relativeMonthly", "relativeYearly"):
        sub(el, t("DaysOfWeek"), days or "Day")
        sub(el, t("DayOfWeekIndex"), index)
    elif kind in ("absoluteMonthly", "absoluteYearly"):
        sub(el, t("DayOfMonth"), str(pattern.get("dayOfMonth") or 1))
    if kind in ("absoluteYearly", "relativeYearly"):
        sub(el, t("Month"), MONTHS[int(pattern.get("month") or 1) - 1])
    range_type = str(limit.get("type", "noEnd"))
    start = str(limit.get("startDate") or "")
    if range_type == "numbered":
        end_el = sub(element, t("NumberedRecurrence"))
        sub(end_el, t("StartDate"), start)
        sub(end_el, t("NumberOfOccurrences"), str(limit.get("numberOfOccurrences") or 1))
    elif range_type == "endDate":
        end_el = sub(element, t("EndDateRecurrence"))
        sub(end_el, t("StartDate"), start)
        sub(end_el, t("EndDate"), str(limit.get("endDate") or start))
    else:
        sub(sub(element, t("NoEndRecurrence")), t("StartDate"), start)


def event_element(body: dict[str, Any]) -> etree._Element:
    """The EWS CalendarItem a client would have sent for this Graph event."""
    el = etree.Element(t("CalendarItem"), nsmap={"t": T_NS})
    sub(el, t("Subject"), str(body.get("subject") or ""))
    content = body.get("body") or {}
    if content.get("content"):
        sub(el, t("Body"), str(content["content"]),
            BodyType="HTML" if str(content.get("contentType", "")).lower() == "html" else "Text")
    if body.get("categories"):
        cats = sub(el, t("Categories"))
        for category in body["categories"]:
            sub(cats, t("String"), str(category))
    sub(el, t("Importance"), str(body.get("importance") or "normal").title())
    sub(el, t("Sensitivity"), str(body.get("sensitivity") or "normal").title())
    sub(el, t("ReminderIsSet"), "true" if body.get("isReminderOn") else "false")
    sub(el, t("ReminderMinutesBeforeStart"), str(body.get("reminderMinutesBeforeStart") or 0))
    sub(el, t("UID"), new_id("U"))
    sub(el, t("Start"), iso(_utc(body.get("start"))))
    sub(el, t("End"), iso(_utc(body.get("end"))))
    sub(el, t("IsAllDayEvent"), "true" if body.get("isAllDay") else "false")
    show = {"free": "Free", "tentative": "Tentative", "busy": "Busy", "oof": "OOF",
            "workingElsewhere": "WorkingElsewhere"}.get(str(body.get("showAs") or "busy"), "Busy")
    sub(el, t("LegacyFreeBusyStatus"), show)
    location = (body.get("location") or {}).get("displayName")
    if location:
        sub(el, t("Location"), str(location))
    for kind, container in (("required", "RequiredAttendees"), ("optional", "OptionalAttendees"),
                            ("resource", "Resources")):
        people = [a for a in body.get("attendees") or [] if str(a.get("type", "required")) == kind]
        if people:
            holder = sub(el, t(container))
            for person in people:
                attendee = sub(holder, t("Attendee"))
                _mailbox(attendee, person.get("emailAddress") or {})
    if body.get("recurrence"):
        _recurrence(el, body["recurrence"])
    zone = str((body.get("start") or {}).get("timeZone") or "UTC")
    if zone.upper() != "UTC" and windows_zone(zone) is not None:
        sub(el, t("StartTimeZone"), Id=zone)
        sub(el, t("EndTimeZone"), Id=str((body.get("end") or {}).get("timeZone") or zone))
    return el


def event_json(row: ItemRow) -> dict[str, Any]:
    data = json.loads(row.data or "{}")
    return {
        "id": row.id, "subject": data.get("subject"), "iCalUId": data.get("uid"),
        "start": {"dateTime": (data.get("start") or "").replace("Z", ""), "timeZone": "UTC"},
        "end": {"dateTime": (data.get("end") or "").replace("Z", ""), "timeZone": "UTC"},
        "isAllDay": data.get("is_all_day"), "location": {"displayName": data.get("location") or ""},
        "showAs": str(data.get("busy") or "Busy")[:1].lower() + str(data.get("busy") or "Busy")[1:],
        "categories": data.get("categories") or [], "type": "seriesMaster" if data.get("recurrence") else
        "singleInstance", "isReminderOn": data.get("reminder_minutes") is not None,
    }


# --- contacts --------------------------------------------------------------------------------------------

def contact_element(body: dict[str, Any], props: ExtendedProps) -> etree._Element:
    """The EWS Contact a client would have sent for this Graph contact (fax and pager from their MAPI tags)."""
    el = etree.Element(t("Contact"), nsmap={"t": T_NS})
    if body.get("personalNotes"):
        sub(el, t("Body"), str(body["personalNotes"]), BodyType="Text")
    if body.get("categories"):
        cats = sub(el, t("Categories"))
        for category in body["categories"]:
            sub(cats, t("String"), str(category))
    display = body.get("displayName") or " ".join(
        str(body[k]) for k in ("givenName", "middleName", "surname") if body.get(k))
    sub(el, t("DisplayName"), display)
    for key, name in (("givenName", "GivenName"), ("initials", "Initials"), ("middleName", "MiddleName"),
                      ("nickName", "Nickname")):
        if body.get(key):
            sub(el, t(name), str(body[key]))
    if body.get("companyName"):
        sub(el, t("CompanyName"), str(body["companyName"]))
    emails = body.get("emailAddresses") or []
    if emails:
        holder = sub(el, t("EmailAddresses"))
        for n, entry in enumerate(emails[:3], 1):
            sub(holder, t("Entry"), str(entry.get("address") or ""), Key=f"EmailAddress{n}")
    addresses = [(k, body[f]) for f, k in (("businessAddress", "Business"), ("homeAddress", "Home"),
                                          ("otherAddress", "Other")) if body.get(f)]
    if addresses:
        holder = sub(el, t("PhysicalAddresses"))
        for key, address in addresses:
            entry = sub(holder, t("Entry"), Key=key)
            for field, name in (("street", "Street"), ("city", "City"), ("state", "State"),
                                ("countryOrRegion", "CountryOrRegion"), ("postalCode", "PostalCode")):
                if address.get(field):
                    sub(entry, t(name), str(address[field]))
    phones: list[tuple[str, str]] = []
    for n, number in enumerate((body.get("businessPhones") or [])[:2]):
        phones.append(("BusinessPhone" if n == 0 else "BusinessPhone2", str(number)))
    for n, number in enumerate((body.get("homePhones") or [])[:2]):
        phones.append(("HomePhone" if n == 0 else "HomePhone2", str(number)))
    if body.get("mobilePhone"):
        phones.append(("MobilePhone", str(body["mobilePhone"])))
    for tag, key in ((0x3A24, "BusinessFax"), (0x3A25, "HomeFax"), (0x3A21, "Pager")):
        value = props.tag_value(tag)
        if value:
            phones.append((key, value))
    if phones:
        holder = sub(el, t("PhoneNumbers"))
        for key, number in phones:
            sub(holder, t("Entry"), number, Key=key)
    if body.get("birthday"):
        sub(el, t("Birthday"), str(body["birthday"]))
    if body.get("businessHomePage"):
        sub(el, t("BusinessHomePage"), str(body["businessHomePage"]))
    if body.get("department"):
        sub(el, t("Department"), str(body["department"]))
    if body.get("generation"):
        sub(el, t("Generation"), str(body["generation"]))
    ims = body.get("imAddresses") or []
    if ims:
        holder = sub(el, t("ImAddresses"))
        for n, value in enumerate(ims[:3], 1):
            sub(holder, t("Entry"), str(value), Key=f"ImAddress{n}")
    if body.get("jobTitle"):
        sub(el, t("JobTitle"), str(body["jobTitle"]))
    if body.get("surname"):
        sub(el, t("Surname"), str(body["surname"]))
    return el


def contact_json(row: ItemRow) -> dict[str, Any]:
    data = json.loads(row.data or "{}")
    return {"id": row.id, "displayName": data.get("display_name"), "givenName": data.get("given_name"),
            "surname": data.get("surname"), "companyName": data.get("company_name"),
            "emailAddresses": [{"address": e["value"]} for e in data.get("emails") or []],
            "parentFolderId": row.folder_id}


def pim_row(kind: str, element: etree._Element, props: ExtendedProps, mailbox: str, folder_id: str) -> ItemRow:
    """An event or contact row, stored as EWS stores one (pim.neutral gives the JSON both APIs read)."""
    data = pim.neutral(kind, element)
    subject = element.findtext(t("Subject")) if kind == "CalendarItem" else element.findtext(t("DisplayName"))
    text = etree.tostring(element)
    now = now_iso()
    return ItemRow(
        id=new_id("I"), mailbox=mailbox, folder_id=folder_id, kind=kind,
        item_class="IPM.Appointment" if kind == "CalendarItem" else "IPM.Contact", subject=subject,
        internet_message_id=None, date_received=now, date_sent=None, date_created=now, is_read=True, is_draft=False,
        msg_flags=MSGFLAG_READ, size=len(text), has_attachments=False, mime=None, props=text,
        ext_props=props.dumps(), data=data,
    )


def identity_json(row: ItemRow, expand_ids: list[str]) -> list[dict[str, Any]]:
    stored = ExtendedProps.loads(row.ext_props).values
    out = []
    for graph_id in expand_ids:
        got = stored.get(ext_key(graph_id))
        if got:
            out.append({"id": graph_id, "value": got[0]})
    return out


def email_of(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=email.policy.SMTP)
