"""Items: what CreateItem stores, and how GetItem/FindItem hand items back.

An item keeps the element the client sent (its explicitly set properties) plus columns the sandbox computes the
way Exchange does: draft state from PR_MESSAGE_FLAGS, received time from PR_MESSAGE_DELIVERY_TIME, properties
extracted from MIME. Answers merge the two and list elements in schema order (see schema_order.py).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Protocol

from lxml import etree

from . import schema_order
from .mime import Address, MessageFacts, message_facts, rebuild
from .soap import T_NS, boolean, sub, t, xml_safe
from .store import ItemRow, new_id

MSGFLAG_READ = 0x1
MSGFLAG_UNSENT = 0x8
PR_MESSAGE_DELIVERY_TIME = 0x0E06
PR_MESSAGE_FLAGS = 0x0E07
PID_TAG_CLIENT_SUBMIT_TIME = 0x0039
PR_TRANSPORT_MESSAGE_HEADERS = 0x007D
CHANGE_KEY = "CQAAAA=="

ORDER = {
    "Message": schema_order.MESSAGE,
    "CalendarItem": schema_order.CALENDAR_ITEM,
    "Contact": schema_order.CONTACT,
    "DistributionList": schema_order.DISTRIBUTION_LIST,
    "Task": schema_order.TASK,
}
DEFAULT_FOLDER = {"Message": "drafts", "CalendarItem": "calendar", "Contact": "contacts", "Task": "tasks",
                  "DistributionList": "contacts"}
DEFAULT_CLASS = {"Message": "IPM.Note", "CalendarItem": "IPM.Appointment", "Contact": "IPM.Contact",
                 "Task": "IPM.Task", "DistributionList": "IPM.DistList", "PostItem": "IPM.Post"}
# Elements the server owns: whatever the client sent for them is ignored on read.
SERVER_OWNED = frozenset({
    "MimeContent", "ItemId", "ParentFolderId", "DateTimeReceived", "Size", "IsDraft", "IsSubmitted",
    "IsUnmodified", "DateTimeCreated", "DateTimeSent", "HasAttachments", "ExtendedProperty", "LastModifiedTime",
    "IsRead", "InternetMessageId", "EffectiveRights", "Attachments",
})
# Elements Exchange derives from MIME when the item was created from MimeContent. exchangelib always sends
# e.g. Importance=Normal alongside the MIME, which must not mask the message's own X-Priority.
FROM_MIME = frozenset({
    "Subject", "Body", "Importance", "InReplyTo", "InternetMessageHeaders", "DisplayCc", "DisplayTo",
    "DisplayBcc", "Sender", "ToRecipients", "CcRecipients", "BccRecipients", "ConversationTopic", "From",
    "References", "ReplyTo",
})
# Field URIs whose element name is not simply the part after the colon.
INDEXED_CONTAINERS = {"contacts:EmailAddress": "EmailAddresses", "contacts:PhoneNumber": "PhoneNumbers",
                      "contacts:ImAddress": "ImAddresses"}
_BOOL_NAMES = frozenset({"ReminderIsSet", "AllowNewTimeProposal", "MeetingRequestWasSent"})
_DATETIME_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")


class _Adder(Protocol):
    """The shape of ItemRenderer.render's local `add` helper."""

    def __call__(self, name: str, text: str | None = None, **attrs: str) -> etree._Element: ...


class ItemError(Exception):
    """A per-item failure, answered in that item's response message only."""

    def __init__(self, code: str, text: str):
        super().__init__(text)
        self.code, self.text = code, text


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    value = text.strip().lower()
    return True if value in ("1", "true") else False if value in ("0", "false") else None


def now_iso() -> str:
    return iso(dt.datetime.now(dt.UTC))


# extended properties

def ext_key(uri: etree._Element) -> str:
    """One spelling per property: PropertyTag may come as 0xe07, 0x0E07 or 3591."""
    ptype = uri.get("PropertyType", "")
    tag = uri.get("PropertyTag")
    if tag is not None:
        try:
            return f"tag:{int(tag, 0)}:{ptype}"
        except ValueError:
            return f"tag:{tag.lower()}:{ptype}"
    set_id = uri.get("DistinguishedPropertySetId") or uri.get("PropertySetId", "").lower()
    ident = uri.get("PropertyId") or f"name:{uri.get('PropertyName', '')}"
    return f"named:{set_id}:{ident}:{ptype}"


def _tag_of(key: str) -> int | None:
    parts = key.split(":")
    if parts[0] == "tag":
        try:
            return int(parts[1])
        except ValueError:
            return None
    return None


@dataclass
class ExtendedProps:
    values: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_item_element(cls, item: etree._Element) -> ExtendedProps:
        props = cls()
        for prop in item.findall(t("ExtendedProperty")):
            uri = prop.find(t("ExtendedFieldURI"))
            if uri is None:
                continue
            single = prop.find(t("Value"))
            values = [single.text or ""] if single is not None else [v.text or "" for v in prop.iterfind(
                f"{t('Values')}/{t('Value')}")]
            props.values[ext_key(uri)] = values
        return props

    def tag_value(self, tag: int) -> str | None:
        for key, values in self.values.items():
            if _tag_of(key) == tag and values:
                return values[0]
        return None

    def dumps(self) -> str:
        return json.dumps(self.values)

    @classmethod
    def loads(cls, text: str) -> ExtendedProps:
        return cls(json.loads(text))


# creation

def _normalise(el: etree._Element) -> None:
    """Store what Exchange would: booleans as true/false (exchangelib writes 1/0 but reads only true/false) and
    date-times in UTC."""
    for node in el.iter():
        if not isinstance(node.tag, str) or len(node) or node.text is None:
            continue
        name = etree.QName(node).localname
        text = node.text.strip()
        if text in ("0", "1") and (name.startswith(("Is", "Has")) or name in _BOOL_NAMES):
            node.text = boolean(text == "1")
        elif _DATETIME_WITH_OFFSET.match(text):
            when = parse_datetime(text)
            if when is not None:
                node.text = iso(when)


def _child_text(el: etree._Element, name: str) -> str | None:
    child = el.find(t(name))
    return None if child is None or child.text is None else child.text


def build_item(el: etree._Element, mailbox: str, folder_id: str, max_message_bytes: int,
               sent: bool = False) -> ItemRow:
    """An ItemRow for one CreateItem item element. Raises ItemError for per-item failures."""
    kind = etree.QName(el).localname
    props = copy.deepcopy(el)
    mime: bytes | None = None
    mime_el = props.find(t("MimeContent"))
    if mime_el is not None:
        try:
            mime = base64.b64decode("".join((mime_el.text or "").split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ItemError("ErrorMimeContentInvalidBase64String",
                            "The MIME content is not a valid Base64 string.") from exc
        props.remove(mime_el)
    ext = ExtendedProps.from_item_element(props)
    for prop in props.findall(t("ExtendedProperty")):
        props.remove(prop)
    _normalise(props)
    size = len(mime) if mime is not None else len(etree.tostring(props))
    if size > max_message_bytes:
        raise ItemError("ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")

    now = now_iso()
    subject = _child_text(props, "Subject")
    item_class = _child_text(props, "ItemClass") or DEFAULT_CLASS.get(kind, "IPM.Note")
    message_id = _child_text(props, "InternetMessageId")
    date_received, date_sent = now, None
    is_read, is_draft, flags, has_attachments = True, False, 0, False
    if kind == "Message":
        facts = message_facts(mime) if mime is not None else MessageFacts()
        subject = facts.subject if mime is not None else subject
        message_id = message_id or facts.message_id
        has_attachments = any(not a.is_inline for a in facts.attachments)
        given_flags = ext.tag_value(PR_MESSAGE_FLAGS)
        try:
            flag_value = int(given_flags) if given_flags is not None else None
        except ValueError:
            flag_value = None
        # Exchange: an item saved without PR_MESSAGE_FLAGS carries MSGFLAG_UNSENT, i.e. is a draft. The flag
        # can only be cleared at creation, which is why importers must send it.
        is_draft = not sent and (flag_value is None or bool(flag_value & MSGFLAG_UNSENT))
        explicit_read = parse_bool(_child_text(props, "IsRead"))
        is_read = explicit_read if explicit_read is not None else (
            bool(flag_value & MSGFLAG_READ) if flag_value is not None else True)
        flags = ((flag_value or 0) & ~(MSGFLAG_READ | MSGFLAG_UNSENT)) | (MSGFLAG_READ if is_read else 0) | (
            MSGFLAG_UNSENT if is_draft else 0)
        delivery = parse_datetime(ext.tag_value(PR_MESSAGE_DELIVERY_TIME) or "")
        submit = parse_datetime(ext.tag_value(PID_TAG_CLIENT_SUBMIT_TIME) or "")
        date_received = iso(delivery) if delivery else now
        date_sent = iso(submit) if submit else iso(facts.date_sent) if facts.date_sent else date_received
    elif kind == "CalendarItem":
        if props.find(t("UID")) is None:
            sub(props, t("UID"), new_id("U"))
    elif kind == "Contact" and props.find(t("DisplayName")) is None:
        parts = [_child_text(props, n) for n in ("GivenName", "MiddleName", "Surname")]
        sub(props, t("DisplayName"), " ".join(p for p in parts if p))
    if kind in ("Contact", "DistributionList"):
        subject = subject or _child_text(props, "DisplayName")
        has_attachments = props.find(t("Attachments")) is not None
    return ItemRow(
        id=new_id("I"), mailbox=mailbox, folder_id=folder_id, kind=kind, item_class=item_class,
        subject=subject, internet_message_id=message_id, date_received=date_received, date_sent=date_sent,
        date_created=now, is_read=is_read, is_draft=is_draft, msg_flags=flags, size=size,
        has_attachments=has_attachments, mime=mime, props=etree.tostring(props), ext_props=ext.dumps(),
    )


# reading

@dataclass
class Shape:
    base: str = "IdOnly"
    fields: set[str] = field(default_factory=set)  # element names asked for
    extended: list[etree._Element] = field(default_factory=list)
    include_mime: bool = False

    @classmethod
    def parse(cls, el: etree._Element | None) -> Shape:
        shape = cls()
        if el is None:
            return shape
        shape.base = _child_text(el, "BaseShape") or "IdOnly"
        shape.include_mime = bool(parse_bool(_child_text(el, "IncludeMimeContent")))
        extra = el.find(t("AdditionalProperties"))
        for path in extra if extra is not None else []:
            name = etree.QName(path).localname
            uri = path.get("FieldURI", "")
            if name == "FieldURI":
                shape.fields.add(uri.split(":")[-1])
            elif name == "IndexedFieldURI":
                shape.fields.add(INDEXED_CONTAINERS.get(uri, "PhysicalAddresses"))
            elif name == "ExtendedFieldURI":
                shape.extended.append(path)
        if "MimeContent" in shape.fields:
            shape.include_mime = True
        return shape

    def wants(self, name: str) -> bool:
        if name == "MimeContent":
            return self.include_mime
        if name == "ItemId" or name in self.fields:
            return True
        if self.base == "AllProperties":
            return True
        return self.base == "Default" and name not in ("InternetMessageHeaders", "Body", "Attachments")


def _mailboxes(parent: etree._Element, tag: str, addresses: list[Address], single: bool = False) -> None:
    if not addresses:
        return
    container = sub(parent, t(tag))
    for address in addresses[:1] if single else addresses:
        box = sub(container, t("Mailbox"))
        if address.name:
            sub(box, t("Name"), address.name)
        sub(box, t("EmailAddress"), address.email)
        sub(box, t("RoutingType"), "SMTP")
        sub(box, t("MailboxType"), "OneOff")


def _display(addresses: list[Address]) -> str:
    return "; ".join(a.name or a.email for a in addresses)


class ItemRenderer:
    def __init__(self, rebuild_mime: bool, folder_mailbox_owner: str):
        self._rebuild = rebuild_mime
        self._owner = folder_mailbox_owner

    def render(self, parent: etree._Element, item: ItemRow, shape: Shape) -> None:
        # Build every candidate element in a scratch container, then append in schema order.
        scratch = etree.Element(t("scratch"), nsmap={"t": T_NS})
        parts: dict[str, list[etree._Element]] = {}

        def add(name: str, text: str | None = None, **attrs: str) -> etree._Element:
            el = sub(scratch, t(name), text, **attrs)
            parts.setdefault(name, []).append(el)
            return el

        stored = etree.fromstring(item.props)
        facts = message_facts(item.mime) if item.kind == "Message" and item.mime is not None else None
        for child in stored:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name in SERVER_OWNED or (facts is not None and name in FROM_MIME):
                continue
            parts.setdefault(name, []).append(child)

        if shape.wants("MimeContent") and item.mime is not None:
            mime = rebuild(item.mime, item.has_attachments) if self._rebuild else item.mime
            add("MimeContent", base64.b64encode(mime).decode("ascii"), CharacterSet="UTF-8")
        add("ItemId", Id=item.id, ChangeKey=CHANGE_KEY)
        add("ParentFolderId", Id=item.folder_id, ChangeKey="AQAAAA==")
        parts.setdefault("ItemClass", [])
        if not parts["ItemClass"]:
            add("ItemClass", item.item_class)
        add("DateTimeReceived", item.date_received)
        add("Size", str(item.size))
        add("DateTimeCreated", item.date_created)
        add("LastModifiedTime", item.date_created)
        add("HasAttachments", boolean(item.has_attachments))
        if "Subject" not in parts and item.subject is not None:
            add("Subject", item.subject)
        if item.kind == "Message":
            self._message_parts(add, parts, item, facts)
        elif item.kind == "CalendarItem":
            if "CalendarItemType" not in parts:
                add("CalendarItemType", "RecurringMaster" if "Recurrence" in parts else "Single")
            if "Organizer" not in parts:
                _mailboxes(scratch, "Organizer", [Address("", self._owner)], single=True)
                parts["Organizer"] = [scratch[-1]]
            if "Recurrence" in parts and item.data is not None:
                from .pim import Series  # pim builds on this module

                for name, el in Series(item).series_parts().items():
                    parts[name] = [el]
        if item.kind != "Message":
            self._attachment_parts(add, stored, item)
        for uri in shape.extended:
            value = self.extended_value(item, uri)
            if value is not None:
                prop = add("ExtendedProperty")
                prop.append(copy.deepcopy(uri))
                sub(prop, t("Value"), value)

        element = sub(parent, t(item.kind if item.kind in ORDER else "Item"))
        for name in ORDER.get(item.kind, schema_order.ITEM):
            if name in parts and (shape.wants(name) or (name == "ExtendedProperty" and shape.extended)):
                for el in parts[name]:
                    element.append(copy.deepcopy(el))

    @staticmethod
    def _attachment_parts(add: _Adder, stored: etree._Element, item: ItemRow) -> None:
        """Attachments the client sent with an item (a contact's photo), listed without their content."""
        sent = stored.find(t("Attachments"))
        photo = False
        if sent is not None and len(sent):
            container = add("Attachments")
            for n, attachment in enumerate(a for a in sent if isinstance(a.tag, str)):
                kind = etree.QName(attachment).localname
                el = sub(container, t(kind))
                sub(el, t("AttachmentId"), Id=f"{item.id}.{n}")
                for name in ("Name", "ContentType"):
                    if attachment.findtext(t(name)):
                        sub(el, t(name), attachment.findtext(t(name)))
                content = "".join((attachment.findtext(t("Content")) or "").split())
                sub(el, t("Size"), str(len(base64.b64decode(content)) if content else 0))
                sub(el, t("IsInline"), "false")
                if kind == "FileAttachment":
                    is_photo = bool(parse_bool(attachment.findtext(t("IsContactPhoto"))))
                    photo = photo or is_photo
                    sub(el, t("IsContactPhoto"), boolean(is_photo))
        if item.kind == "Contact":
            add("HasPicture", boolean(photo))

    def _message_parts(self, add: _Adder, parts: dict[str, list[etree._Element]], item: ItemRow,
                       facts: MessageFacts | None) -> None:
        add("IsDraft", boolean(item.is_draft))
        add("IsSubmitted", "false")
        add("IsUnmodified", boolean(not item.is_draft))
        add("IsRead", boolean(item.is_read))
        add("DateTimeSent", item.date_sent or item.date_received)
        if item.internet_message_id:
            add("InternetMessageId", item.internet_message_id)
        if facts is None:
            return
        if facts.body is not None:
            add("Body", facts.body, BodyType=facts.body_type)
        add("Importance", facts.importance)
        if facts.in_reply_to:
            add("InReplyTo", facts.in_reply_to)
        if facts.references:
            add("References", facts.references)
        if facts.headers:
            headers = add("InternetMessageHeaders")
            for name, value in facts.headers:
                sub(headers, t("InternetMessageHeader"), value, HeaderName=name)
        if facts.attachments:
            container = add("Attachments")
            for n, att in enumerate(facts.attachments):
                kind = "ItemAttachment" if att.content_type == "message/rfc822" else "FileAttachment"
                el = sub(container, t(kind))
                sub(el, t("AttachmentId"), Id=f"{item.id}.{n}")
                sub(el, t("Name"), att.name)
                sub(el, t("ContentType"), att.content_type)
                if att.content_id:
                    sub(el, t("ContentId"), att.content_id)
                sub(el, t("Size"), str(att.size))
                sub(el, t("IsInline"), boolean(att.is_inline))
        add("DisplayTo", _display(facts.to))
        add("DisplayCc", _display(facts.cc))
        if facts.subject is not None:
            add("ConversationTopic", re.sub(r"^((re|fw|fwd|aw|sv|vs)\s*:\s*)+", "", facts.subject, flags=re.I))
        scratch = parts["ItemId"][0].getparent()
        assert scratch is not None
        for tag, addresses, single in (("Sender", facts.sender, True), ("ToRecipients", facts.to, False),
                                       ("CcRecipients", facts.cc, False), ("BccRecipients", facts.bcc, False),
                                       ("From", facts.sender, True), ("ReplyTo", facts.reply_to, False)):
            if addresses:
                _mailboxes(scratch, tag, addresses, single)
                parts[tag] = [scratch[-1]]

    @staticmethod
    def extended_value(item: ItemRow, uri: etree._Element) -> str | None:
        key = ext_key(uri)
        tag = _tag_of(key)
        if item.kind == "Message":
            if tag == PR_MESSAGE_FLAGS:
                return str(item.msg_flags)
            if tag == PR_MESSAGE_DELIVERY_TIME:
                return item.date_received
            if tag == PID_TAG_CLIENT_SUBMIT_TIME:
                return item.date_sent or item.date_received
            if tag == PR_TRANSPORT_MESSAGE_HEADERS and item.mime is not None:
                return message_facts(item.mime).header_block
        values = ExtendedProps.loads(item.ext_props).values.get(key)
        return xml_safe(values[0]) if values else None
