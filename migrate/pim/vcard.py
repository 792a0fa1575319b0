"""vCard files cut into cards, a card read into `Contact`, and a fingerprint for cards without UID.

A card travels as the source wrote it (charset, encoding and folding untouched), so the journal's
fingerprint is the source's; `card_fingerprint` gives a second identity that does not change when
a program re-folds lines, changes line ends or reorders properties, for dedupe of cards without
UID. Odd input never raises: what cannot be read is said in the contact's fidelity account.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import ClassVar
from urllib.parse import unquote_to_bytes

from migrate.model import Contact, PostalAddress, Typed
from migrate.pim.cardlines import CardLines, CardProperty, components, read_card, unescape

__all__ = ["card_fingerprint", "parse_card", "split_vcards"]

_UTF16 = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# Structure, not content: never part of the account.
_STRUCTURE = frozenset({"BEGIN", "END", "VERSION", "PRODID"})
# Not content either, but left out of the fingerprint only: a re-export changes them.
_VOLATILE = frozenset({"REV", "PRODID", "VERSION", "X-ABUID"})
_IM = {"X-AIM": "aim", "X-ICQ": "icq", "X-JABBER": "xmpp", "X-MSN": "msn", "X-YAHOO": "yahoo",
       "X-SKYPE": "skype", "X-SKYPE-USERNAME": "skype", "X-GOOGLE-TALK": "gtalk", "X-GTALK": "gtalk",
       "X-QQ": "qq", "X-GADUGADU": "gadugadu", "X-MS-IMADDRESS": "im", "X-SIP": "sip"}
_ANNIVERSARY = ("ANNIVERSARY", "X-ANNIVERSARY", "X-MS-ANNIVERSARY", "X-EVOLUTION-ANNIVERSARY",
                "X-WAB-WEDDING_ANNIVERSARY")
_NO_PLACE = {
    "GEO": "coordinates: no field in Exchange contacts",
    "TZ": "the contact's time zone: no field in Exchange contacts",
    "SOUND": "a sound clip: no field in Exchange contacts",
    "LOGO": "a company logo: Exchange keeps one picture (PHOTO)",
    "KEY": "a public key: not carried",
    "MAILER": "the contact's mail program: no field in Exchange",
    "AGENT": "a contact acting for this one: not carried",
    "SORT-STRING": "a sort key: Exchange sorts by its own fields",
    "CLASS": "the card's access class: no field in Exchange",
    "SOURCE": "where the card can be fetched: not carried",
    "GENDER": "gender: not carried",
    "X-GENDER": "gender: not carried",
    "LANG": "the contact's languages: not carried",
    "RELATED": "a related person: not carried",
    "ROLE": "a role beside the job title: not carried",
    "FBURL": "a free/busy address: not carried",
    "CALURI": "a calendar address: not carried",
    "CALADRURI": "a calendar address: not carried",
    "CLIENTPIDMAP": "a sync program's bookkeeping",
    "XML": "extension XML: not carried",
    "REV": "when the card last changed: Exchange keeps its own time stamps",
    "NAME": "the source's name for the card: not carried",
}
_APPLE_LABEL = re.compile(r"_\$!<(.*)>!\$_")


def split_vcards(data: bytes) -> Iterator[bytes]:
    """Each BEGIN:VCARD...END:VCARD of a file, as the file has it (a UTF-16 file's cards keep
    their byte order mark, so each stands alone). Text outside cards is left out."""
    for bom, codec in _UTF16:
        if data.startswith(bom):
            for card in _split_lines(data[len(bom):].decode(codec, "replace").encode("utf-8")):
                yield bom + card.decode("utf-8").encode(codec)
            return
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    yield from _split_lines(data)


def _split_lines(data: bytes) -> Iterator[bytes]:
    lines = data.splitlines(keepends=True)
    depth, start = 0, 0
    for i, line in enumerate(lines):
        word = line.strip().upper()
        if word.startswith(b"BEGIN:VCARD"):
            if depth == 0:
                start = i
            depth += 1
        elif word.startswith(b"END:VCARD") and depth:
            depth -= 1
            if depth == 0:
                yield b"".join(lines[start:i + 1])
    if depth:  # the file ends inside a card: give what there is; the parser says it is cut off
        yield b"".join(lines[start:])


def card_fingerprint(data: bytes) -> str:
    """`sha256:<hex>` of the card's content, whatever its folding, line ends, property order,
    charset or transfer encoding."""
    card = read_card(data)
    lines = []
    for prop in card.properties:
        if prop.name in _VOLATILE or prop.name in ("BEGIN", "END"):
            continue
        params = sorted((k, ",".join(sorted(v.upper() for v in vs))) for k, vs in prop.params.items()
                        if k not in ("CHARSET", "ENCODING"))
        value = prop.binary.hex() if prop.binary is not None else unescape(prop.text, card.version).strip()
        lines.append(f"{prop.name};{params}:{value}")
    return "sha256:" + hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()


def card_facts(data: bytes) -> tuple[str | None, str, str | None]:
    """UID, display name and REV of a card, for listings that need no more."""
    card = read_card(data)
    found: dict[str, str] = {}
    for prop in card.properties:
        if prop.name in ("UID", "FN", "REV", "N", "ORG") and prop.name not in found:
            found[prop.name] = unescape(prop.text, card.version).strip()
    name = found.get("FN") or " ".join(p for p in reversed(components(found.get("N", ""), card.version)[:2]) if p)
    return found.get("UID") or None, name or found.get("ORG", "").split(";")[0], found.get("REV")


def parse_card(data: bytes) -> Contact:
    """One card as the neutral `Contact`; each property carried, changed or dropped with a reason."""
    card = read_card(data)
    contact = Contact(uid=None)
    reader = _CardReader(card, contact)
    reader.read()
    return contact


class _CardReader:
    def __init__(self, card: CardLines, contact: Contact) -> None:
        self.card = card
        self.contact = contact
        self.f = contact.fidelity
        self.labels = {p.group: _label(p.text) for p in card.properties if p.name == "X-ABLABEL" and p.group}
        for prop, how in card.changes:
            self.f.change(prop, how)

    def text(self, prop: CardProperty) -> str:
        return unescape(prop.text, self.card.version).strip()

    def read(self) -> None:
        c, f = self.contact, self.f
        if not any(p.name == "BEGIN" for p in self.card.properties) or not any(
                p.name == "END" for p in self.card.properties):
            f.change("vCard", "the card is cut off (no BEGIN or END line); what is there is read")
        seen_altids: set[tuple[str, str]] = set()
        for prop in self.card.properties:
            altid = prop.param("ALTID")
            if altid:  # vCard 4: the same value again in another form (language, script, text)
                if (prop.name, altid) in seen_altids:
                    f.carry(prop.name)
                    continue
                seen_altids.add((prop.name, altid))
            if prop.problem:
                f.change(prop.name, f"{prop.problem}: read as well as it goes")
            step = self._steps.get(prop.name)
            try:
                if prop.name in _STRUCTURE:
                    continue
                if step is not None:
                    step(self, prop)
                elif prop.name in _IM:
                    self._im(prop, _IM[prop.name])
                elif prop.name in _ANNIVERSARY:
                    self._anniversary(prop)
                elif prop.name in _NO_PLACE:
                    f.drop(prop.name, _NO_PLACE[prop.name])
                elif prop.name.startswith("X-"):
                    f.drop(prop.name, "a program's own property")
                else:
                    f.drop(prop.name, "no place for it in Exchange contacts")
            except Exception as exc:  # one unreadable property costs only itself
                f.drop(prop.name, f"unreadable: {str(exc)[:120]}")
        if not c.display_name:
            parts = [c.prefix, c.given_name, c.middle_name, c.family_name, c.suffix]
            built = " ".join(p for p in parts if p) or c.company or (c.emails[0].value if c.emails else "")
            if built:
                c.display_name = built
                f.change("FN", "no display name (FN): built from the name, company or e-mail")
            else:
                f.change("FN", "the card names no one (no FN, N, company or e-mail): it has no display name")

    # --- names -----------------------------------------------------------------------

    def _fn(self, prop: CardProperty) -> None:
        if not self.contact.display_name:
            self.contact.display_name = self.text(prop)
            self.f.carry("FN")
        else:
            self.f.drop("FN", "a second display name")

    def _n(self, prop: CardProperty) -> None:
        parts = components(prop.text, self.card.version) + [""] * 5
        family, given, middle, prefix, suffix = (p.replace(",", " ").strip() or None for p in parts[:5])
        c = self.contact
        c.family_name, c.given_name, c.middle_name, c.prefix, c.suffix = family, given, middle, prefix, suffix
        self.f.carry("N")

    def _nickname(self, prop: CardProperty) -> None:
        if self.contact.nickname is None:
            self.contact.nickname = self.text(prop).split(",")[0].strip() or None
            self.f.carry("NICKNAME")
        else:
            self.f.drop("NICKNAME", "Exchange keeps one nickname")

    def _uid(self, prop: CardProperty) -> None:
        self.contact.uid = self.text(prop) or None
        self.f.carry("UID")

    # --- ways to reach ---------------------------------------------------------------

    def _typed(self, prop: CardProperty) -> tuple[set[str], bool]:
        types = prop.types
        label = self.labels.get(prop.group) if prop.group else None
        if label:
            types = types | {label.upper()}
        preferred = "PREF" in types or prop.param("PREF") == "1"
        return types, preferred

    def _email(self, prop: CardProperty) -> None:
        value = self.text(prop)
        if value.lower().startswith("mailto:"):
            value = value[7:]
        if not value:
            return
        types, preferred = self._typed(prop)
        kind = "work" if "WORK" in types else "home" if "HOME" in types else "other"
        self.contact.emails.append(Typed(value, kind, preferred))
        self.f.carry("EMAIL")

    def _tel(self, prop: CardProperty) -> None:
        value = self.text(prop)
        if value.lower().startswith("tel:"):
            value = value[4:]
        if not value:
            return
        types, preferred = self._typed(prop)
        if "CELL" in types or "MOBILE" in types or "IPHONE" in types:
            kind = "mobile"
        elif "PAGER" in types:
            kind = "pager"
        elif "FAX" in types:
            kind = "work_fax" if "WORK" in types else "home_fax" if "HOME" in types else "fax"
        elif "CAR" in types:
            kind = "car"
        elif "ISDN" in types:
            kind = "isdn"
        elif "MAIN" in types:
            kind = "main"
        elif "WORK" in types:
            kind = "work"
        elif "HOME" in types:
            kind = "home"
        else:
            kind = "other"
        self.contact.phones.append(Typed(value, kind, preferred))
        self.f.carry("TEL")

    def _adr(self, prop: CardProperty) -> None:
        parts = components(prop.text, self.card.version) + [""] * 7
        po_box, extended, street, city, region, code, country = parts[:7]
        types, _ = self._typed(prop)
        kind = "work" if "WORK" in types else "home" if "HOME" in types else "other"
        street = "\n".join(p for p in (street, extended) if p)
        if not any((po_box, street, city, region, code, country)):
            return
        self.contact.addresses.append(PostalAddress(kind, street, city, region, code, country, po_box))
        self.f.carry("ADR")

    def _label_only(self, prop: CardProperty) -> None:
        if any(p.name == "ADR" for p in self.card.properties):
            self.f.drop("LABEL", "the printed form of an address whose parts are carried")
            return
        types, _ = self._typed(prop)
        kind = "work" if "WORK" in types else "home" if "HOME" in types else "other"
        self.contact.addresses.append(PostalAddress(kind, street=self.text(prop)))
        self.f.change("LABEL", "an address given only in its printed form: carried as the street")

    def _url(self, prop: CardProperty) -> None:
        types, preferred = self._typed(prop)
        kind = "work" if "WORK" in types else "home" if "HOME" in types or "HOMEPAGE" in types else "other"
        if self.text(prop):
            self.contact.urls.append(Typed(self.text(prop), kind, preferred))
            self.f.carry("URL")

    def _impp(self, prop: CardProperty) -> None:
        value = self.text(prop)
        scheme, colon, rest = value.partition(":")
        service = prop.param("X-SERVICE-TYPE").lower() or (scheme.lower() if colon else "im")
        self._im(prop, service, rest if colon else value)

    def _im(self, prop: CardProperty, service: str, value: str | None = None) -> None:
        address = value if value is not None else self.text(prop)
        if address:
            _, preferred = self._typed(prop)
            self.contact.im.append(Typed(address, service, preferred))
            self.f.carry(prop.name)

    # --- dates -------------------------------------------------------------------------

    def _bday(self, prop: CardProperty) -> None:
        when = self._date(prop)
        if when is not None:
            self.contact.birthday = when
            self.f.carry("BDAY")

    def _anniversary(self, prop: CardProperty) -> None:
        when = self._date(prop)
        if when is not None:
            self.contact.anniversary = when
            self.f.carry(prop.name)

    def _x_abdate(self, prop: CardProperty) -> None:
        label = self.labels.get(prop.group, "")
        if label.lower() == "anniversary":
            self._anniversary(prop)
        else:
            self.f.drop("X-ABDATE", f"a date labelled {label or 'without a label'!r}: no field in Exchange")

    def _date(self, prop: CardProperty) -> date | None:
        text = self.text(prop)
        found = re.match(r"^(\d{4}|--)-?(\d{2})-?(\d{2})", text)
        if not found:
            what = "a date given as text" if prop.param("VALUE").lower() == "text" else "not a date"
            self.f.drop(prop.name, f"{what}: {text[:40]!r}")
            return None
        year_text, month, day = found.groups()
        omit = prop.param("X-APPLE-OMIT-YEAR")
        if year_text == "--" or (omit and omit == year_text):
            self.f.change(prop.name, "a date without a year: stored with the year 1604, as Apple marks "
                                     "dates without one")
            year = 1604
        else:
            year = int(year_text)
        try:
            return date(year, int(month), int(day))
        except ValueError:
            self.f.drop(prop.name, f"{text!r} is not a real date")
            return None

    # --- work and the rest -------------------------------------------------------------

    def _org(self, prop: CardProperty) -> None:
        parts = [p for p in components(prop.text, self.card.version) if p]
        if parts:
            self.contact.company = parts[0]
            self.contact.department = ", ".join(parts[1:]) or None
            self.f.carry("ORG")

    def _title(self, prop: CardProperty) -> None:
        self.contact.job_title = self.text(prop) or None
        self.f.carry("TITLE")

    def _note(self, prop: CardProperty) -> None:
        text = self.text(prop)
        if text:
            self.contact.notes = f"{self.contact.notes}\n\n{text}" if self.contact.notes else text
            self.f.carry("NOTE")

    def _categories(self, prop: CardProperty) -> None:
        for part in re.split(r"(?<!\\),", prop.text):
            text = unescape(part, self.card.version).strip()
            if text and text not in self.contact.categories:
                self.contact.categories.append(text)
        self.f.carry("CATEGORIES")

    def _photo(self, prop: CardProperty) -> None:
        if self.contact.photo is not None:
            self.f.drop("PHOTO", "Exchange keeps one picture")
            return
        data, media = prop.binary, ""
        value = prop.raw.strip().decode("ascii", "replace")
        if data is None and prop.problem:
            self.f.drop("PHOTO", prop.problem)
            return
        if data is None and value.lower().startswith("data:"):
            head, _, payload = value[5:].partition(",")
            media = head.split(";")[0]
            try:
                if head.lower().endswith(";base64"):
                    data = base64.b64decode(_pad(payload.encode()))
                else:
                    data = unquote_to_bytes(payload)
            except (binascii.Error, ValueError):
                self.f.drop("PHOTO", "its data: URI is damaged")
                return
        if data is None:
            self.f.drop("PHOTO", "a link to a picture elsewhere: not fetched")
            return
        kind = media or prop.param("MEDIATYPE") or prop.param("TYPE") or next(iter(prop.types), "")
        self.contact.photo = data
        self.contact.photo_type = _media_type(kind, data)
        self.f.carry("PHOTO")

    # --- groups ----------------------------------------------------------------------

    def _kind_group(self, prop: CardProperty) -> None:
        value = self.text(prop).lower()
        if value == "group":
            self.contact.is_group = True
            self.f.carry(prop.name)
        elif value in ("individual", "org", "organization", "location", ""):
            self.f.carry(prop.name)
        else:
            self.f.drop(prop.name, f"a card of kind {value!r}: carried as a person")


    def _member(self, prop: CardProperty) -> None:
        value = self.text(prop)
        lower = value.lower()
        if lower.startswith("mailto:"):
            self.contact.members.append(value[7:])
        elif lower.startswith("urn:uuid:"):
            self.contact.member_uids.append(value[9:])
        elif "@" in value and ":" not in value:
            self.contact.members.append(value)
        else:
            self.f.drop(prop.name, f"a member given as {value[:60]!r}, neither an e-mail address nor a card's UID")
            return
        self.f.carry(prop.name)

    def _ablabel(self, prop: CardProperty) -> None:
        if not prop.group:
            self.f.drop("X-ABLABEL", "a label that belongs to no property")

    def _abshowas(self, prop: CardProperty) -> None:
        self.f.drop("X-ABSHOWAS", "Apple's choice to show the card as a company: not carried")

    _steps: ClassVar[dict[str, Callable[[_CardReader, CardProperty], None]]] = {
        "FN": _fn, "N": _n, "NICKNAME": _nickname, "UID": _uid, "EMAIL": _email, "TEL": _tel, "ADR": _adr,
        "LABEL": _label_only, "URL": _url, "IMPP": _impp, "BDAY": _bday, "X-ABDATE": _x_abdate, "ORG": _org,
        "TITLE": _title, "NOTE": _note, "CATEGORIES": _categories, "PHOTO": _photo, "KIND": _kind_group,
        "X-ADDRESSBOOKSERVER-KIND": _kind_group, "MEMBER": _member, "X-ADDRESSBOOKSERVER-MEMBER": _member,
        "X-ABLABEL": _ablabel, "X-ABSHOWAS": _abshowas,
    }


def _label(text: str) -> str:
    found = _APPLE_LABEL.fullmatch(text.strip())
    return found.group(1) if found else text.strip()


def _pad(data: bytes) -> bytes:
    data = b"".join(data.split()).rstrip(b"=")
    return data + b"=" * (-len(data) % 4)


def _media_type(hint: str, data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    hint = hint.lower()
    if hint and "/" not in hint:
        hint = "image/" + {"jpg": "jpeg"}.get(hint, hint)
    return hint or "application/octet-stream"
