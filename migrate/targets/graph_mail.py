"""A MIME message as a Graph JSON message that Exchange stores as received, not as a draft (DOMAIN.md "Making an
uploaded message look received"), and the account of what that route cannot keep.

Graph creates a draft from MIME, and the draft flag cannot be cleared afterwards; a JSON message created with
PR_MESSAGE_FLAGS (0x0E07) set is not one. So the message is taken apart: subject, addresses, the body (HTML where
the message has one), attachments, and as MAPI properties the flags, the delivery and submit times and the whole
original header block (PR_TRANSPORT_MESSAGE_HEADERS 0x007D), so Outlook's "view source" still shows it.

What does not survive the JSON route is written into the item's Fidelity: a second body part, the MIME structure
itself (nesting, boundaries, encodings), an S/MIME signature or encryption, TNEF, attached messages (kept as
.eml files). For byte-true mail use the IMAP transport; preflight prefers it where the tenant allows it.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses
from typing import Any

from migrate.model import Fidelity
from migrate.sources.headers import header_block, header_facts

MB = 1024 * 1024
INLINE_ATTACHMENTS_MAX = 3 * MB  # one request carries attachments up to 3 MB; larger ones go by upload session
REQUEST_MAX = 4 * MB  # Graph refuses a request body over 4 MB
UPLOAD_CHUNK = 320 * 1024 * 10  # chunks are multiples of 320 KiB and under 4 MB
ATTACHMENT_MAX = 150 * MB

MSGFLAG_READ = 1
FLAG_STATUS_FLAGGED = 2
VERB_REPLIED = 102
PROP_MESSAGE_FLAGS = "Integer 0x0E07"
PROP_DELIVERY_TIME = "SystemTime 0x0E06"
PROP_SUBMIT_TIME = "SystemTime 0x0039"
PROP_TRANSPORT_HEADERS = "String 0x007D"
PROP_LAST_VERB = "Integer 0x1081"
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"
PLAIN_STRUCTURE = {"multipart/mixed", "multipart/alternative", "multipart/related"}


@dataclass
class Attachment:
    name: str
    content_type: str
    data: bytes
    is_inline: bool = False
    content_id: str | None = None

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"@odata.type": FILE_ATTACHMENT, "name": self.name, "contentType": self.content_type,
                                "contentBytes": base64.b64encode(self.data).decode("ascii"),
                                "isInline": self.is_inline}
        if self.content_id:
            body["contentId"] = self.content_id
        return body


@dataclass
class GraphMessage:
    """What goes up for one message: the JSON created in one request, then the large attachments one by one."""

    body: dict[str, Any]
    later: list[Attachment] = field(default_factory=list)  # 3-150 MB: by upload session after creation
    fidelity: Fidelity = field(default_factory=Fidelity)

    @property
    def upload_bytes(self) -> int:
        return sum(len(a.data) for a in self.later)


def graph_time(value: dt.datetime) -> str:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _recipients(message: Message, name: str) -> list[dict[str, Any]]:
    values = [str(v) for v in message.get_all(name, [])]
    out = []
    for display, address in getaddresses(values):
        if "@" in address:
            entry: dict[str, Any] = {"address": address}
            if display:
                entry["name"] = display
            out.append({"emailAddress": entry})
    return out


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "us-ascii"
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")


def _filename(part: Message, n: int) -> str:
    try:
        name = part.get_filename()
    except (ValueError, TypeError):  # a broken RFC 2231 parameter
        name = None
    if name:
        return str(name)
    subtype = part.get_content_subtype()
    return f"attachment-{n}.{'eml' if part.get_content_type() == 'message/rfc822' else subtype or 'bin'}"


def _importance(message: Message) -> str | None:
    priority = str(message.get("X-Priority", "")).strip()[:1]
    importance = str(message.get("Importance", "")).strip().lower()
    if priority in ("1", "2") or importance == "high":
        return "high"
    if priority in ("4", "5") or importance == "low":
        return "low"
    return None


class _Walk:
    """The message's parts sorted into one body and attachments, noting whatever the JSON form loses."""

    def __init__(self, fidelity: Fidelity) -> None:
        self.f = fidelity
        self.html: str | None = None
        self.plain: str | None = None
        self.attachments: list[Attachment] = []

    def attach(self, part: Message, inline: bool = False) -> None:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                data = inner[0].as_bytes()
            self.f.change("attached message", "kept as an .eml file attachment, not as an Outlook item")
        cid = str(part.get("Content-ID", "")).strip().strip("<>") or None
        self.attachments.append(Attachment(_filename(part, len(self.attachments) + 1), part.get_content_type(),
                                           data, inline and cid is not None, cid))

    def walk(self, part: Message, depth: int = 0) -> None:
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        if part.is_multipart():
            if ctype == "multipart/signed":
                self.f.drop("S/MIME signature", "Graph's JSON route cannot keep a signature; the signed content "
                            "is kept, the signature only as an attachment that no longer verifies")
            elif ctype not in PLAIN_STRUCTURE:
                self.f.change("MIME structure", f"{ctype} is flattened into one body and attachments")
            if depth >= 3:
                self.f.change("MIME structure", "nested parts flattened into one body and attachments")
            for child in part.get_payload():
                if isinstance(child, Message):
                    self.walk(child, depth + 1)
            return
        if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
            self.f.drop("S/MIME encryption", "the encrypted message is kept as an attachment (smime.p7m); Outlook "
                        "cannot open it as an encrypted message")
        elif ctype == "application/ms-tnef":
            self.f.change("TNEF (winmail.dat)", "kept as an attachment, not unpacked into Outlook properties")
        if disposition != "attachment" and ctype == "text/html" and self.html is None:
            self.html = _text(part)
            return
        if disposition != "attachment" and ctype == "text/plain" and self.plain is None:
            self.plain = _text(part)
            return
        if disposition != "attachment" and ctype in ("text/plain", "text/html"):
            self.f.change("body", f"a further {ctype} body part is kept as an attachment")
        self.attach(part, inline=disposition != "attachment")


def graph_message(raw: bytes, flags: frozenset[str], received: dt.datetime | None,
                  sent: dt.datetime | None = None) -> GraphMessage:
    """The Graph JSON for `raw` (RFC 822), with the MAPI properties that make it a received, non-draft message."""
    fidelity = Fidelity()
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    block = header_block(raw)
    facts = header_facts(block)
    walk = _Walk(fidelity)
    walk.walk(message)
    lowered = {f.lower() for f in flags}
    seen = "\\seen" in lowered
    sent = sent or facts.date
    props: list[dict[str, str]] = [{"id": PROP_MESSAGE_FLAGS, "value": str(MSGFLAG_READ if seen else 0)}]
    if received is not None:
        props.append({"id": PROP_DELIVERY_TIME, "value": graph_time(received)})
    if sent is not None:
        props.append({"id": PROP_SUBMIT_TIME, "value": graph_time(sent)})
    headers_text = block.decode("utf-8", "replace")
    if headers_text.strip():
        props.append({"id": PROP_TRANSPORT_HEADERS, "value": headers_text})
    if "\\answered" in lowered:
        props.append({"id": PROP_LAST_VERB, "value": str(VERB_REPLIED)})

    body: dict[str, Any] = {"subject": facts.subject or "", "isRead": seen}
    if walk.html is not None:
        body["body"] = {"contentType": "html", "content": walk.html}
        if walk.plain is not None:
            fidelity.change("body", "the text/plain alternative is not kept: Exchange makes its own from the HTML")
    else:
        body["body"] = {"contentType": "text", "content": walk.plain or ""}
    for name, key in (("From", "from"), ("Sender", "sender")):
        found = _recipients(message, name)
        if found:
            body[key] = found[0]
    if "sender" not in body and "from" in body:
        body["sender"] = body["from"]
    for name, key in (("To", "toRecipients"), ("Cc", "ccRecipients"), ("Bcc", "bccRecipients"),
                      ("Reply-To", "replyTo")):
        found = _recipients(message, name)
        if found:
            body[key] = found
    if facts.message_id:
        body["internetMessageId"] = facts.message_id
    importance = _importance(message)
    if importance:
        body["importance"] = importance
    if "\\flagged" in lowered:
        body["flag"] = {"flagStatus": "flagged"}
    body["singleValueExtendedProperties"] = props

    inline: list[dict[str, Any]] = []
    later: list[Attachment] = []
    budget = INLINE_ATTACHMENTS_MAX
    for attachment in walk.attachments:
        size = len(attachment.data)
        if size > ATTACHMENT_MAX:
            fidelity.drop(f"attachment {attachment.name}", f"{size} bytes, over Graph's 150 MB for an attachment")
        elif size * 4 // 3 + 1024 <= budget:
            inline.append(attachment.json())
            budget -= size * 4 // 3 + 1024
        else:
            later.append(attachment)
    if inline:
        body["attachments"] = inline
    if message.defects:
        fidelity.change("MIME structure", f"the message had {len(message.defects)} MIME defect(s); Exchange "
                        "stores what could be read")
    return GraphMessage(body, later, fidelity)
