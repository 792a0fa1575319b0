"""Outlook contacts (IPM.Contact) as vCard 3.0 and distribution lists (IPM.DistList) as vCard 4.0
groups (KIND:group with MEMBER lines, RFC 6350), written with vobject.

A distribution list's members are read from its one-off entry ids (PidLidDistributionListOneOffMembers),
which carry each member's name and address even when the member is a contact of the same file.
"""

from __future__ import annotations

import struct
from datetime import date, datetime, timedelta

import vobject

from migrate.sources.pst_mime import subject
from migrate.sources.pst_props import PS_PUBLIC_STRINGS, PSETID_ADDRESS, Key, Props

PR_BODY, PR_DISPLAY_NAME, PR_GIVEN_NAME, PR_SURNAME, PR_MIDDLE_NAME = 0x1000, 0x3001, 0x3A06, 0x3A11, 0x3A44
PR_PREFIX, PR_GENERATION, PR_NICKNAME = 0x3A45, 0x3A05, 0x3A4F
PR_COMPANY, PR_TITLE, PR_DEPARTMENT, PR_BIRTHDAY, PR_ANNIVERSARY = 0x3A16, 0x3A17, 0x3A18, 0x3A42, 0x3A41
PR_BUSINESS_HOME_PAGE, PR_PERSONAL_HOME_PAGE = 0x3A51, 0x3A50
KEYWORDS = (PS_PUBLIC_STRINGS, "Keywords")
LID_IM, LID_HTML = (PSETID_ADDRESS, 0x8062), (PSETID_ADDRESS, 0x802B)
LID_ONE_OFF_MEMBERS, LID_MEMBERS = (PSETID_ADDRESS, 0x8054), (PSETID_ADDRESS, 0x8055)
LID_DIST_LIST_NAME = (PSETID_ADDRESS, 0x8053)

# (email address, its address type, its display name) for Email1..3.
_EMAILS = ((0x8083, 0x8082, 0x8080, 0x8084), (0x8093, 0x8092, 0x8090, 0x8094), (0x80A3, 0x80A2, 0x80A0, 0x80A4))
_PHONES = (
    (0x3A1A, ("voice", "pref")), (0x3A08, ("work", "voice")), (0x3A1B, ("work", "voice")),
    (0x3A09, ("home", "voice")), (0x3A2F, ("home", "voice")), (0x3A1C, ("cell", "voice")),
    (0x3A24, ("work", "fax")), (0x3A25, ("home", "fax")), (0x3A21, ("pager",)), (0x3A1E, ("car", "voice")),
    (0x3A1F, ("voice",)), (0x3A2E, ("x-assistant", "voice")), (0x3A57, ("work", "voice", "x-company")),
)
# street, city, region, postal code, country, PO box
_ADDRESSES: tuple[tuple[str, tuple[Key, ...]], ...] = (
    ("home", (0x3A5D, 0x3A59, 0x3A5C, 0x3A5B, 0x3A5A, 0x3A5E)),
    ("work", ((PSETID_ADDRESS, 0x8045), (PSETID_ADDRESS, 0x8046), (PSETID_ADDRESS, 0x8047),
              (PSETID_ADDRESS, 0x8048), (PSETID_ADDRESS, 0x8049), (PSETID_ADDRESS, 0x804A))),
    ("work", (0x3A29, 0x3A27, 0x3A28, 0x3A2A, 0x3A26, 0x3A2B)),
    ("postal", (0x3A63, 0x3A5F, 0x3A62, 0x3A61, 0x3A60, 0x3A64)),
)
_ONE_OFF_PROVIDER = bytes.fromhex("812b1fa4bea310199d6e00dd010f5402")
MAPI_UNICODE = 0x8000


def _email(props: Props, address: int, kind: int, name: int) -> str | None:
    value = props.text((PSETID_ADDRESS, address))
    if value and "@" in value:
        return value.strip()
    shown = props.text((PSETID_ADDRESS, name)) or ""  # Exchange addresses: "Name (smtp@address)"
    if "(" in shown and "@" in shown:
        return shown.rsplit("(", 1)[1].rstrip(")").strip()
    return None


def contact_vcard(props: Props, photo: bytes | None, notes: list[str]) -> tuple[bytes, str]:
    """The contact as vCard 3.0 bytes, and its display name."""
    card = vobject.vCard()
    shown = props.text(PR_DISPLAY_NAME) or subject(props) or ""
    card.add("fn").value = shown
    card.add("n").value = vobject.vcard.Name(
        family=props.text(PR_SURNAME) or "", given=props.text(PR_GIVEN_NAME) or "",
        additional=props.text(PR_MIDDLE_NAME) or "", prefix=props.text(PR_PREFIX) or "",
        suffix=props.text(PR_GENERATION) or "")
    if nickname := props.text(PR_NICKNAME):
        card.add("nickname").value = nickname
    seen_emails: set[str] = set()
    for number, (address, kind, _name, original) in enumerate(_EMAILS):
        found = _email(props, address, kind, original)
        if found and found.lower() not in seen_emails:
            seen_emails.add(found.lower())
            line = card.add("email")
            line.value = found
            line.type_param = ["INTERNET", "PREF"] if number == 0 else ["INTERNET"]
        elif props.text((PSETID_ADDRESS, address)) and not found:
            notes.append(f"e-mail {number + 1}: an Exchange address with no internet form is left out")
    for phone_tag, kinds in _PHONES:
        if number_text := (props.text(phone_tag) or "").strip():
            line = card.add("tel")
            line.value = number_text
            line.type_param = [k.upper() for k in kinds]
    seen_addresses: set[tuple[str, ...]] = set()
    for address_kind, tags in _ADDRESSES:
        parts = tuple((props.text(t) or "").strip() for t in tags)
        if any(parts) and parts not in seen_addresses:
            seen_addresses.add(parts)
            street, city, region, code, country, box = parts
            line = card.add("adr")
            line.value = vobject.vcard.Address(street=street, city=city, region=region, code=code,
                                               country=country, box=box)
            line.type_param = [address_kind.upper()]
    company, department = props.text(PR_COMPANY), props.text(PR_DEPARTMENT)
    if company or department:
        card.add("org").value = [company or "", *([department] if department else [])]
    if title := props.text(PR_TITLE):
        card.add("title").value = title
    for day_tag, field in ((PR_BIRTHDAY, "bday"), (PR_ANNIVERSARY, "x-anniversary")):
        when = props.time(day_tag)
        if when is not None:
            card.add(field).value = _day(when).isoformat()
    url_keys: tuple[Key, ...] = (PR_BUSINESS_HOME_PAGE, PR_PERSONAL_HOME_PAGE, LID_HTML)
    for url_key in url_keys:
        if url := (props.text(url_key) or "").strip():
            card.add("url").value = url
    if im := (props.text(LID_IM) or "").strip():
        card.add("impp").value = im if ":" in im else f"sip:{im}"
    if (body := props.text(PR_BODY)) and body.strip():
        card.add("note").value = body.replace("\r\n", "\n").strip("\n")
    if categories := props.texts(KEYWORDS):
        card.add("categories").value = categories
    if photo:
        line = card.add("photo")
        line.value = photo
        line.encoding_param = "b"
        line.type_param = "PNG" if photo.startswith(b"\x89PNG") else "JPEG"
    return card.serialize().encode("utf-8"), shown


def _day(value: datetime) -> date:
    """Outlook stores a birthday as local midnight in UTC (22:00 the day before in Stockholm in
    summer): the nearest midnight is the day meant."""
    return (value + timedelta(hours=12)).date()


def one_off(entry_id: bytes) -> tuple[str, str] | None:
    """(name, address) from a one-off entry id ([MS-OXCDATA] 2.2.5.1)."""
    if len(entry_id) < 24 or entry_id[4:20] != _ONE_OFF_PROVIDER:
        return None
    (flags,) = struct.unpack_from("<H", entry_id, 22)
    rest = entry_id[24:]
    if flags & MAPI_UNICODE:
        fields = rest.decode("utf-16-le", "replace").split("\x00")
    else:
        fields = rest.decode("cp1252", "replace").split("\x00")
    if len(fields) < 3:
        return None
    name, kind, address = fields[0], fields[1], fields[2]
    if kind.upper() != "SMTP" or "@" not in address:
        return None
    return name, address


def group_vcard(props: Props, notes: list[str]) -> tuple[bytes, str]:
    """The distribution list as a vCard 4.0 group with one MEMBER per member."""
    card = vobject.vCard()
    name = props.text(PR_DISPLAY_NAME) or props.text(LID_DIST_LIST_NAME) or subject(props) or ""
    card.add("version").value = "4.0"
    card.add("kind").value = "group"
    card.add("fn").value = name
    card.add("n").value = vobject.vcard.Name(family=name)
    entries = props.binaries(LID_ONE_OFF_MEMBERS) or props.binaries(LID_MEMBERS)
    skipped = 0
    for entry in entries:
        member = one_off(entry)
        if member is None:
            skipped += 1
            continue
        line = card.add("member")
        line.value = f"mailto:{member[1]}"
    if skipped:
        notes.append(f"members: {skipped} member(s) without an internet address are left out")
    if (body := props.text(PR_BODY)) and body.strip():
        card.add("note").value = body.replace("\r\n", "\n").strip("\n")
    if categories := props.texts(KEYWORDS):
        card.add("categories").value = categories
    return card.serialize().encode("utf-8"), name
