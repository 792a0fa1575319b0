"""The few header fields a listing needs, read defensively from raw header bytes.

Real mail has 8-bit bytes in headers, broken RFC 2047 words and folded lines with bare LF;
none of that may stop a listing, so every problem becomes a short code instead.
"""

from __future__ import annotations

import binascii
import email.header
import email.utils
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

_WANTED = (b"message-id", b"date", b"subject")


class HeaderFacts(NamedTuple):
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
    quick = _encoded_words(text)
    if quick is not None:
        return quick
    try:
        parts = email.header.decode_header(text)
        return str(email.header.make_header(parts))
    except (LookupError, UnicodeDecodeError, ValueError, email.errors.HeaderParseError):
        problems.append("undecodable-header")
        return text


# The common form of an encoded header, done without the email package's general machinery (a listing
# decodes thousands of subjects): encoded words alone, in one charset Python names as the email package
# does, separated by white space, which RFC 2047 drops. Anything else goes the general way.
_ENCODED_WORD = re.compile(r"=\?([^?]*?)\?([qQbB])\?(.*?)\?=")
_QUICK_CHARSETS = {"utf-8": "utf-8", "iso-8859-1": "iso-8859-1", "iso-8859-15": "iso-8859-15",
                   "windows-1252": "windows-1252", "us-ascii": "ascii"}
_BAD_Q = re.compile(r"=(?![0-9A-Fa-f]{2})|[\r\n]")


def _encoded_words(text: str) -> str | None:
    """`text` decoded as email.header.decode_header and make_header would, or None to let them."""
    charset = None
    decoded = []
    at = 0
    for word in _ENCODED_WORD.finditer(text):
        if text[at:word.start()].strip() or (at == 0 and word.start() != 0):
            return None  # text outside the encoded words
        name = word.group(1).lower()
        if charset is None:
            charset = name
        elif name != charset:
            return None
        encoded = word.group(3)
        try:
            if word.group(2) in "bB":
                padding = len(encoded) % 4
                decoded.append(binascii.a2b_base64(encoded + "==="[:4 - padding] if padding else encoded))
            elif _BAD_Q.search(encoded):
                return None
            else:
                decoded.append(binascii.a2b_qp(encoded, header=True))
        except (binascii.Error, ValueError):
            return None
        at = word.end()
    codec = _QUICK_CHARSETS.get(charset or "")
    if codec is None or text[at:].strip():
        return None
    try:
        return b"".join(decoded).decode(codec)
    except UnicodeDecodeError:
        return None


_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                         "nov", "dec"), 1)}
# `Mon, 2 Mar 2015 10:50:00 +0000`, what nearly every client writes; the rest goes to email.utils.
_PLAIN_DATE = re.compile(r"(?:[A-Za-z]{3}, )?(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_ZONES: dict[str, timezone] = {}


def _plain_date(text: str) -> datetime | None:
    found = _PLAIN_DATE.fullmatch(text)
    if found is None:
        return None
    day, month, year, hour, minute, second, sign, zone_h, zone_m = found.groups()
    number = _MONTHS.get(month.lower())
    if number is None or int(year) < 100 or int(zone_m) > 59:  # two-digit years: email.utils' own rules
        return None
    zone = sign + zone_h + zone_m
    tz = _ZONES.get(zone)
    if tz is None:
        if zone == "-0000":
            return None  # RFC 5322: no zone information; email.utils gives a naive datetime
        offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
        tz = _ZONES.setdefault(zone, UTC if not offset else timezone(-offset if sign == "-" else offset))
    try:
        return datetime(int(year), number, int(day), int(hour), int(minute), int(second), tzinfo=tz)
    except ValueError:
        return None


def parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    quick = _plain_date(text)
    if quick is not None:
        return quick
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
