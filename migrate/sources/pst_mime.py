"""An Outlook message (its MAPI properties) rebuilt as an RFC 822 message.

Outlook keeps no MIME for a message: it keeps properties. Received mail usually still has the
header block its server wrote (PR_TRANSPORT_MESSAGE_HEADERS); that block is kept as it was, less
its Content-* lines (the body below it is new). Sent mail, drafts and posts have no such block,
so From, To, Cc, Bcc, Subject, Date, Message-ID, In-Reply-To and References are written from the
properties. Bodies: plain text (PR_BODY), HTML (PR_HTML, or de-encapsulated from the compressed
RTF when Outlook kept only RTF, see pst_rtf); native RTF formatting has no MIME form a mail client
shows, so it travels as the plain text Outlook kept beside it, and that is noted. Attachments by
value keep their names and types; those the HTML shows (a Content-ID, or Outlook's MHTML
reference flag) go into multipart/related; embedded messages become message/rfc822, rebuilt the
same way. The bytes must be the same on every rebuild (the engine fingerprints them, and dedupe
compares sizes), so MIME boundaries come from the item's key, not from a random source.

Whatever the rebuilt message cannot carry is appended to `notes`, which the source turns into
SourceProblems (code `pst-fidelity`).
"""

from __future__ import annotations

import email.policy
import hashlib
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import compressed_rtf

from migrate.sources.pst_props import Props, codepage_name
from migrate.sources.pst_rtf import NotEncapsulated, deencapsulate

# Quoted-printable or base64 for every non-ASCII part: safe for any IMAP server and for EWS.
POLICY = email.policy.default.clone(linesep="\r\n", cte_type="7bit", max_line_length=78)

PR_SUBJECT, PR_CLIENT_SUBMIT_TIME, PR_TRANSPORT_HEADERS = 0x0037, 0x0039, 0x007D
PR_SENDER_NAME, PR_SENDER_ADDRTYPE, PR_SENDER_EMAIL = 0x0C1A, 0x0C1E, 0x0C1F
PR_SENT_REPRESENTING_NAME, PR_SENT_REPRESENTING_ADDRTYPE, PR_SENT_REPRESENTING_EMAIL = 0x0042, 0x0064, 0x0065
PR_SENDER_SMTP, PR_SENT_REPRESENTING_SMTP = 0x5D01, 0x5D02
PR_DISPLAY_BCC, PR_DISPLAY_CC, PR_DISPLAY_TO = 0x0E02, 0x0E03, 0x0E04
PR_MESSAGE_DELIVERY_TIME, PR_MESSAGE_FLAGS, PR_CREATION_TIME = 0x0E06, 0x0E07, 0x3007
PR_BODY, PR_HTML, PR_RTF_COMPRESSED, PR_INTERNET_CPID = 0x1000, 0x1013, 0x1009, 0x3FDE
PR_INTERNET_MESSAGE_ID, PR_IN_REPLY_TO, PR_REFERENCES, PR_SEARCH_KEY = 0x1035, 0x1042, 0x1039, 0x300B
PR_RECIPIENT_TYPE, PR_DISPLAY_NAME, PR_ADDRTYPE, PR_EMAIL_ADDRESS, PR_SMTP_ADDRESS = 0x0C15, 0x3001, 0x3002, \
    0x3003, 0x39FE
PR_ATTACH_METHOD, PR_ATTACH_FILENAME, PR_ATTACH_LONG_FILENAME, PR_ATTACH_MIME_TAG = 0x3705, 0x3704, 0x3707, 0x370E
PR_ATTACH_CONTENT_ID, PR_ATTACH_CONTENT_LOCATION, PR_ATTACH_FLAGS, PR_ATTACHMENT_HIDDEN = 0x3712, 0x3713, 0x3714, \
    0x7FFE
PR_ATTACH_LONG_PATHNAME = 0x370D

ATTACH_BY_VALUE, ATTACH_BY_REFERENCE, ATTACH_BY_REF_RESOLVE, ATTACH_BY_REF_ONLY = 1, 2, 3, 4
ATTACH_EMBEDDED_MSG, ATTACH_OLE, ATTACH_BY_WEBREFERENCE = 5, 6, 7
ATT_MHTML_REF = 0x4
MAX_DEPTH = 8  # embedded in embedded in ...: deeper than this is a loop in a damaged file

_CONTENT_HEADERS = re.compile(rb"^(content-[a-z-]*|mime-version)\s*:", re.IGNORECASE)
_META_CHARSET = re.compile(rb"(<meta[^>]*charset\s*=\s*[\"']?)([A-Za-z0-9_.:-]+)", re.IGNORECASE)


@dataclass
class PstAttachment:
    props: Props
    read: Callable[[], bytes]  # the data of an attachment by value
    embedded: Callable[[], PstMessage] | None = None  # the message inside, for ATTACH_EMBEDDED_MSG


@dataclass
class PstMessage:
    """What the rebuilder needs of a message; `None` lists could not be reached (embedded messages)."""

    props: Props
    recipients: list[Props] | None
    attachments: list[PstAttachment] | None
    key: str  # the item's stable key: seeds the MIME boundaries


def subject(props: Props) -> str | None:
    """PR_SUBJECT without Outlook's prefix marker (\\x01 and the prefix length)."""
    text = props.text(PR_SUBJECT)
    if text and text.startswith("\x01") and len(text) >= 2:
        text = text[2:]
    return text


def rebuild(message: PstMessage, notes: list[str], depth: int = 0) -> bytes:
    """The message as RFC 822 bytes; what cannot be carried is described in `notes`."""
    props = message.props
    body = _body(message, notes, depth)
    header = _transport_header(props)
    if header is None:
        header = _built_header(message, notes)
    mime = body.as_bytes(policy=POLICY)
    return header + mime


# --- headers -----------------------------------------------------------------------------------


def _transport_header(props: Props) -> bytes | None:
    """The header block the receiving server wrote, less the lines that describe the old body."""
    text = props.text(PR_TRANSPORT_HEADERS)
    if not text or ":" not in text:
        return None
    raw = text.encode("utf-8", "replace").replace(b"\r\n", b"\n").split(b"\n\n")[0]
    kept: list[bytes] = []
    dropping = False
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        if line[:1] in (b" ", b"\t"):
            if not dropping and kept:
                kept.append(line)
            continue
        dropping = bool(_CONTENT_HEADERS.match(line))
        if not dropping:
            kept.append(line)
    if not any(line.lower().startswith((b"from:", b"date:", b"subject:", b"message-id:")) for line in kept):
        return None  # a fragment, not a header block: build the header from the properties
    return b"".join(line + b"\r\n" for line in kept)


def _address(name: str | None, addrtype: str | None, email_address: str | None, smtp: str | None) -> Address | str:
    """An address from MAPI fields: the SMTP address wins over an Exchange DN; none gives a bare name."""
    candidate = smtp or (email_address if (addrtype or "SMTP").upper() == "SMTP" else None) or ""
    if candidate.count("@") == 1 and " " not in candidate.strip():
        local, domain = candidate.strip().split("@")
        shown = (name or "").strip()
        if shown.strip("'\"").lower() == candidate.strip().lower():
            shown = ""  # Outlook shows a bare address as its own name
        try:
            return Address(display_name=shown, username=local, domain=domain)
        except (ValueError, IndexError):
            pass
    return (name or email_address or "").strip()


def _add_addresses(header: EmailMessage, field: str, people: list[Address | str], notes: list[str]) -> None:
    addresses = [p for p in people if isinstance(p, Address)]
    names = [p for p in people if isinstance(p, str) and p]
    if names:
        notes.append(f"{field}: {len(names)} recipient(s) without an internet address kept by name only: "
                     + ", ".join(names[:5]))
    parts = [str(a) for a in addresses]
    # A name without an address becomes an empty group ("Name:;"), which RFC 5322 allows.
    parts += [_group(n) for n in names]
    if parts:
        header[field] = ", ".join(parts)


def _group(name: str) -> str:
    cleaned = re.sub(r'[:;,<>"\\@()\[\]]', " ", name).strip() or "undisclosed"
    return f"{cleaned}:;"


def _built_header(message: PstMessage, notes: list[str]) -> bytes:
    props = message.props
    header = EmailMessage(policy=POLICY)
    sender = _address(props.text(PR_SENT_REPRESENTING_NAME) or props.text(PR_SENDER_NAME),
                      props.text(PR_SENT_REPRESENTING_ADDRTYPE) or props.text(PR_SENDER_ADDRTYPE),
                      props.text(PR_SENT_REPRESENTING_EMAIL) or props.text(PR_SENDER_EMAIL),
                      props.text(PR_SENT_REPRESENTING_SMTP) or props.text(PR_SENDER_SMTP))
    if sender:
        _add_addresses(header, "From", [sender], notes)
    if message.recipients is not None:
        by_type: dict[int, list[Address | str]] = {1: [], 2: [], 3: []}
        for row in message.recipients:
            kind = row.int(PR_RECIPIENT_TYPE) or 1
            by_type.setdefault(kind & 0x3, []).append(_address(
                row.text(PR_DISPLAY_NAME), row.text(PR_ADDRTYPE), row.text(PR_EMAIL_ADDRESS),
                row.text(PR_SMTP_ADDRESS)))
        for kind, field in ((1, "To"), (2, "Cc"), (3, "Bcc")):
            _add_addresses(header, field, by_type.get(kind, []), notes)
    else:
        for tag, field in ((PR_DISPLAY_TO, "To"), (PR_DISPLAY_CC, "Cc"), (PR_DISPLAY_BCC, "Bcc")):
            shown = props.text(tag)
            if shown:
                names = [n.strip() for n in shown.split(";") if n.strip()]
                _add_addresses(header, field, list(names), notes)
    text = subject(props)
    if text is not None:
        header["Subject"] = text
    sent = props.time(PR_CLIENT_SUBMIT_TIME) or props.time(PR_MESSAGE_DELIVERY_TIME) or props.time(PR_CREATION_TIME)
    if sent is not None:
        header["Date"] = format_datetime(sent)
    message_id = (props.text(PR_INTERNET_MESSAGE_ID) or "").strip()
    if not message_id:
        key = props.binary(PR_SEARCH_KEY)
        seed = key.hex() if key else hashlib.sha256(message.key.encode()).hexdigest()[:32]
        message_id = f"<pst.{seed}@o365-migrate.invalid>"
        notes.append("Message-ID: Outlook kept none; one was made from the item's search key so that "
                     "a second run recognises the message")
    header["Message-ID"] = message_id
    for tag, field in ((PR_IN_REPLY_TO, "In-Reply-To"), (PR_REFERENCES, "References")):
        value = (props.text(tag) or "").strip()
        if value:
            header[field] = value
    return header.as_bytes(policy=POLICY).split(b"\r\n\r\n", 1)[0] + b"\r\n"


# --- bodies ------------------------------------------------------------------------------------


def _rtf(props: Props, notes: list[str]) -> bytes | None:
    compressed = props.binary(PR_RTF_COMPRESSED)
    if compressed is None:
        if PR_RTF_COMPRESSED in props.unreachable:
            notes.append("RTF body: kept outside what libpff gives of an embedded message; its formatting "
                         "is not carried")
        return None
    try:
        return bytes(compressed_rtf.decompress(compressed))
    except Exception as err:  # compressed_rtf raises bare Exceptions on damaged data
        notes.append(f"RTF body: cannot be decompressed ({err})")
        return None


def _html_from_rtf(rtf: bytes, notes: list[str]) -> tuple[bytes | None, bytes | None]:
    """(html, text) de-encapsulated from RTF ([MS-OXRTFEX]); both None for native RTF."""
    try:
        kind, original = deencapsulate(rtf)
    except NotEncapsulated:
        return None, None
    data = original.encode("utf-8")
    if kind == "html":
        return _META_CHARSET.sub(lambda m: m.group(1) + b"utf-8", data), None  # now UTF-8, whatever it said
    return None, data


def _html(props: Props) -> tuple[bytes, str] | None:
    found = props.raw(PR_HTML)
    if found is None or not found[1]:
        return None
    kind, data = found
    if kind == 0x1F:
        return data.decode("utf-16-le", "replace").rstrip("\x00").encode("utf-8"), "utf-8"
    charset = codepage_name(props.int(PR_INTERNET_CPID)) or "utf-8"
    return data.rstrip(b"\x00"), charset


def _body(message: PstMessage, notes: list[str], depth: int) -> EmailMessage:
    props = message.props
    text = props.text(PR_BODY)
    html = _html(props)
    rtf = _rtf(props, notes) if html is None else None
    if rtf is not None:
        from_rtf, text_from_rtf = _html_from_rtf(rtf, notes)
        if from_rtf is not None:
            html = (from_rtf, "utf-8")
        elif text_from_rtf is not None and not text:
            text = text_from_rtf.decode("utf-8", "replace")
        elif text_from_rtf is None:
            notes.append("RTF body: its formatting has no MIME form; the plain text Outlook kept travels")
    if PR_BODY in props.unreachable and not text:
        notes.append("plain-text body: kept outside what libpff gives of an embedded message; not carried")

    inline: list[EmailMessage] = []
    attached: list[EmailMessage] = []
    if message.attachments is None:
        notes.append("attachments: this embedded message's attachment table cannot be reached with libpff, "
                     "so its attachments are not carried")
    else:
        for number, attachment in enumerate(message.attachments, start=1):
            part = _attachment(attachment, number, notes, depth, html is not None)
            if part is None:
                continue
            (inline if part.get_content_disposition() == "inline" and html is not None else attached).append(part)

    body = EmailMessage(policy=POLICY)
    if html is None:
        body.set_content(text or "", cte=None)
    else:
        # HTML with the images it shows (multipart/related), beside the plain text if there is one.
        shown = EmailMessage(policy=POLICY)
        _set_html(shown, html)
        if inline:
            shown.make_related()
            for part in inline:
                shown.attach(part)
        if text is None or not text.strip():
            body = shown
        else:
            body.set_content(text, cte=None)
            body.make_alternative()
            body.attach(shown)
    if attached:
        body.make_mixed()
        for part in attached:
            body.attach(part)
    _fix_boundaries(body, message.key)
    for part in body.walk():
        if part is not body:
            del part["MIME-Version"]  # the email package adds it to every part it makes
    return body


def _set_html(part: EmailMessage, html: tuple[bytes, str]) -> None:
    data, charset = html
    try:
        part.set_content(data.decode(charset), subtype="html", cte=None)
    except (UnicodeDecodeError, LookupError):
        part.set_content(data, maintype="text", subtype="html", cte="base64")
        part.set_param("charset", charset)


def _fix_boundaries(body: EmailMessage, key: str) -> None:
    """Boundaries from the item's key, so that the same item always gives the same bytes."""
    for number, part in enumerate(p for p in body.walk() if p.get_content_maintype() == "multipart"):
        seed = hashlib.sha256(f"{key}/{number}".encode()).hexdigest()[:24]
        part.set_boundary(f"=_pst_{seed}")


# --- attachments -------------------------------------------------------------------------------


def _filename(props: Props, number: int) -> str:
    for tag in (PR_ATTACH_LONG_FILENAME, PR_ATTACH_FILENAME, PR_DISPLAY_NAME):
        name = (props.text(tag) or "").strip()
        if name:
            return re.sub(r"[\x00-\x1f/\\]", "_", name)
    return f"attachment-{number}"


def _attachment(attachment: PstAttachment, number: int, notes: list[str], depth: int,
                has_html: bool) -> EmailMessage | None:
    props = attachment.props
    method = props.int(PR_ATTACH_METHOD) or ATTACH_BY_VALUE
    name = _filename(props, number)
    if method == ATTACH_EMBEDDED_MSG and attachment.embedded is not None:
        if depth >= MAX_DEPTH:
            notes.append(f"attachment {name!r}: messages nested deeper than {MAX_DEPTH} levels are not carried")
            return None
        try:
            inner = attachment.embedded()
        except (OSError, ValueError) as err:
            notes.append(f"attachment {name!r}: the embedded message cannot be read ({err})")
            return None
        inner_notes: list[str] = []
        raw = rebuild(inner, inner_notes, depth + 1)
        notes.extend(f"embedded message {name!r}: {n}" for n in inner_notes)
        part = EmailMessage(policy=POLICY)
        part.set_content(email.message_from_bytes(raw, _class=EmailMessage, policy=POLICY),
                         cte="7bit" if raw.isascii() else "8bit")
        return part
    if method in (ATTACH_BY_REFERENCE, ATTACH_BY_REF_RESOLVE, ATTACH_BY_REF_ONLY, ATTACH_BY_WEBREFERENCE):
        where = props.text(PR_ATTACH_LONG_PATHNAME) or "a path outside the PST"
        notes.append(f"attachment {name!r}: a link to {where}, not a copy; the file itself is not in the PST")
        return None
    try:
        data = attachment.read()
    except (OSError, ValueError) as err:
        notes.append(f"attachment {name!r}: cannot be read ({err})")
        return None
    mime_type = (props.text(PR_ATTACH_MIME_TAG) or "").strip().lower()
    if method == ATTACH_OLE:
        notes.append(f"attachment {name!r}: an OLE object; its raw storage travels as a file")
        mime_type = "application/octet-stream"
    if "/" not in mime_type:
        mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    maintype, subtype = mime_type.split("/", 1)
    content_id = (props.text(PR_ATTACH_CONTENT_ID) or "").strip().strip("<>")
    location = (props.text(PR_ATTACH_CONTENT_LOCATION) or "").strip()
    flags = props.int(PR_ATTACH_FLAGS) or 0
    shown_in_body = bool(content_id or flags & ATT_MHTML_REF) and has_html
    part = EmailMessage(policy=POLICY)
    if maintype == "text":
        part.set_content(data, maintype, subtype, cte="base64", filename=name,
                         disposition="inline" if shown_in_body else "attachment")
    else:
        part.set_content(data, maintype, subtype, filename=name,
                         disposition="inline" if shown_in_body else "attachment")
    if content_id:
        part["Content-ID"] = f"<{content_id}>"
    if shown_in_body and not content_id:
        part["Content-Location"] = location or name
    return part
