"""The few header fields a listing needs, read defensively from raw header bytes.

Real mail has 8-bit bytes in headers, broken RFC 2047 words and folded lines with bare LF;
none of that may stop a listing, so every problem becomes a short code instead.
"""

from __future__ import annotations

import email.header
import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime

_WANTED = (b"message-id", b"date", b"subject")


@dataclass(frozen=True)
class HeaderFacts:
    message_id: str | None
    date: datetime | None
    subject: str | None
    problems: tuple[str, ...]


def header_block(raw: bytes) -> bytes:
    """The header part of a message: everything before the first empty line."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end != -1:
            cut = end + len(sep)
            other = b"\n\n" if sep == b"\r\n\r\n" else b"\r\n\r\n"
            end2 = raw.find(other)
            if end2 != -1 and end2 < end:
                continue
            return raw[:cut]
    return raw


def _unfold(block: bytes) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = {}
    name: bytes | None = None
    for line in block.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if name is not None and name in _WANTED:
                fields[name] += b" " + line.strip()
            continue
        key, colon, value = line.partition(b":")
        if not colon:
            name = None
            continue
        name = key.strip().lower()
        if name in _WANTED and name not in fields:  # the first occurrence wins, as in clients
            fields[name] = value.strip()
    return fields


def _text(value: bytes, problems: list[str]) -> str:
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        problems.append("8bit-header")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            problems.append("undecodable-header")
            return value.decode("latin-1")
    if "=?" not in text:
        return text
    try:
        parts = email.header.decode_header(text)
        return str(email.header.make_header(parts))
    except (LookupError, UnicodeDecodeError, ValueError, email.errors.HeaderParseError):
        problems.append("undecodable-header")
        return text


def parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def header_facts(raw_headers: bytes) -> HeaderFacts:
    problems: list[str] = []
    fields = _unfold(raw_headers)
    message_id = None
    if b"message-id" in fields:
        message_id = _text(fields[b"message-id"], problems).strip() or None
    subject = _text(fields[b"subject"], problems) if b"subject" in fields else None
    date_text = _text(fields[b"date"], problems) if b"date" in fields else None
    date = parse_date(date_text)
    if date_text and date is None:
        problems.append("bad-date")
    return HeaderFacts(message_id, date, subject, tuple(dict.fromkeys(problems)))
