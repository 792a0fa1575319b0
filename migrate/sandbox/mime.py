"""What Exchange derives from an uploaded MIME message, and how it hands MIME back.

Migrated mail is old and messy: raw 8-bit bytes in headers, broken RFC 2047 words, missing Date headers,
undecodable bodies. Nothing here may raise on such input; every value is decoded defensively and made safe to
put into XML. Rebuilding follows what Exchange does on read (parse, re-serialise, CRLF, new boundaries, its own
X-MS-* headers), so verification code cannot come to rely on byte equality against Exchange.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import functools
import re
import uuid
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime

from .soap import xml_safe


@dataclass(frozen=True)
class Address:
    name: str
    email: str


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int
    is_inline: bool
    content_id: str | None


@dataclass
class MessageFacts:
    subject: str | None = None
    message_id: str | None = None
    date_sent: dt.datetime | None = None
    sender: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    in_reply_to: str | None = None
    references: str | None = None
    importance: str = "Normal"
    attachments: list[Attachment] = field(default_factory=list)
    body: str | None = None
    body_type: str = "Text"
    headers: list[tuple[str, str]] = field(default_factory=list)
    header_block: str = ""


def _raw_text(value: object) -> str:
    """A raw header value as parsed by compat32 holds undecodable bytes as surrogates; recover and decode them
    (UTF-8 first, then Windows-1252, which is what 8-bit headers in old mail mostly are)."""
    text = str(value)
    try:
        raw = text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return text
    for charset in ("utf-8", "cp1252"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def decode_header_value(value: object) -> str:
    text = _raw_text(value)
    try:
        decoded = str(make_header(decode_header(text)))
    except Exception:  # HeaderParseError, LookupError, binascii errors...: keep the undecoded text
        decoded = text
    return xml_safe(" ".join(decoded.split()))


def _raw_values(msg: Message, name: str) -> list[str]:
    """Header values as written. msg.get() would wrap 8-bit values in a Header that replaces their bytes."""
    return [_raw_text(v) for k, v in msg.raw_items() if k.lower() == name.lower()]


def _raw_value(msg: Message, name: str) -> str | None:
    values = _raw_values(msg, name)
    return values[0] if values else None


def _addresses(msg: Message, name: str) -> list[Address]:
    values = _raw_values(msg, name)
    try:
        pairs = getaddresses(values)
    except Exception:  # incl. RecursionError: mimekit's stack-overflow.eml nests address groups that deep
        return []
    return [Address(decode_header_value(n), xml_safe(a.strip())) for n, a in pairs if a.strip()]


def _date(msg: Message) -> dt.datetime | None:
    raw = _raw_value(msg, "Date")
    if raw is None:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except Exception:  # unparseable dates are common in old mail; Exchange then uses the received time
        return None
    if when.tzinfo is None:  # RFC 5322 "-0000": the zone is unknown; UTC is the least wrong guess
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def _importance(msg: Message) -> str:
    value = (_raw_value(msg, "Importance") or "").strip().lower()
    priority = (_raw_value(msg, "X-Priority") or "").strip()[:1]
    if value == "high" or priority in ("1", "2"):
        return "High"
    if value == "low" or priority in ("4", "5"):
        return "Low"
    return "Normal"


def _part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError):
        payload = None
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _filename(part: Message) -> str | None:
    """The attachment's name from Content-Disposition or Content-Type, decoded from RFC 2231, RFC 2047 or
    raw 8-bit bytes (all three occur in real mail)."""
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        value = _raw_value(part, header)
        if value is None:
            continue
        holder = Message()
        holder[header] = value
        found = holder.get_param(param, header=header)
        if found is None or found == "":
            continue
        text = collapse_rfc2231_value(found) if isinstance(found, tuple) else str(found)
        return decode_header_value(text) or None
    return None


def _walk(msg: Message, facts: MessageFacts) -> None:
    plain: str | None = None
    html: str | None = None
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (_raw_value(part, "Content-Disposition") or "").split(";")[0].strip().lower()
        name = _filename(part)
        if disposition == "attachment" or (name and disposition != "inline") or ctype == "message/rfc822":
            try:
                payload = part.get_payload(decode=True)
            except (ValueError, TypeError, AssertionError):
                payload = None
            size = len(payload) if isinstance(payload, bytes) else len(str(part.get_payload()))
            cid = _raw_value(part, "Content-ID")
            facts.attachments.append(Attachment(
                name or ("Untitled attachment" if ctype != "message/rfc822" else "Attached message"),
                xml_safe(ctype), size, disposition == "inline",
                decode_header_value(cid).strip("<>") if cid else None,
            ))
        elif ctype == "text/plain" and plain is None:
            plain = _part_text(part)
        elif ctype == "text/html" and html is None:
            html = _part_text(part)
    if html is not None and plain is None:
        facts.body, facts.body_type = xml_safe(html), "HTML"
    elif plain is not None:
        facts.body = xml_safe(plain)


@functools.lru_cache(maxsize=1024)
def message_facts(raw: bytes) -> MessageFacts:
    """Properties Exchange extracts from MIME. Never raises; unknown or broken values are left out.

    Kept for the last messages seen (callers only read them): an item is rendered again for each FindItem and
    GetItem that names it, and parsing its MIME each time made the sandbox, one process for every mailbox of
    a batch, the slowest part of a tenant move on loopback."""
    facts = MessageFacts()
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # arbitrary input: a parser bug must not fail the request
        return facts
    header_end = re.search(rb"\r?\n\r?\n", raw)
    facts.header_block = xml_safe(_raw_text(raw[: header_end.start() if header_end else len(raw)]
                                           .decode("ascii", "surrogateescape")))
    for name, value in msg.raw_items():
        facts.headers.append((xml_safe(_raw_text(name)), decode_header_value(value)))
    subject = _raw_value(msg, "Subject")
    if subject is not None:
        facts.subject = decode_header_value(subject)
    facts.message_id = xml_safe((_raw_value(msg, "Message-ID") or "").strip()) or None
    facts.in_reply_to = xml_safe((_raw_value(msg, "In-Reply-To") or "").strip()) or None
    facts.references = xml_safe(" ".join((_raw_value(msg, "References") or "").split())) or None
    facts.date_sent = _date(msg)
    facts.sender = _addresses(msg, "Sender") or _addresses(msg, "From")
    facts.to = _addresses(msg, "To")
    facts.cc = _addresses(msg, "Cc")
    facts.bcc = _addresses(msg, "Bcc")
    facts.reply_to = _addresses(msg, "Reply-To")
    facts.importance = _importance(msg)
    # A broken MIME tree still yields the headers found so far.
    with contextlib.suppress(Exception):
        _walk(msg, facts)
    return facts


def rebuild(raw: bytes, has_attachments: bool) -> bytes:
    """MIME as Exchange would hand it back: parsed and re-serialised (headers refolded, CRLF line ends, fresh
    multipart boundaries) plus the X-MS-* headers Exchange adds. Falls back to a line-end normalised copy
    when the message cannot be re-serialised."""
    extra = f"X-MS-Has-Attach: {'yes' if has_attachments else ''}\r\nX-MS-TNEF-Correlator: \r\n".encode()
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for part in msg.walk():
            if part.is_multipart():
                part.set_boundary(f"_000_{uuid.uuid4().hex}_")
        out = msg.as_bytes(policy=email.policy.SMTP)
    except Exception:  # Exchange would still answer; so must we
        out = re.sub(rb"\r?\n", b"\r\n", raw)
    header_end = out.find(b"\r\n\r\n")
    if header_end < 0:
        return out + b"\r\n" + extra
    return out[: header_end + 2] + extra + out[header_end + 2:]
