"""vCard 2.1, 3.0 and 4.0 properties read from a card's bytes, in the charset each one was written in.

A card is read per property, not as one decoded text: vCard 2.1 names a charset per property
(`N;CHARSET=windows-1253;ENCODING=QUOTED-PRINTABLE:...`), Outlook writes Windows-1252 with no
charset at all, and quoted-printable values continue over lines that end in '=' (soft line
breaks) without the leading space that folds every other line. Cards in UTF-16 (with a byte
order mark) are decoded whole first. vobject, the usual Python parser, decodes the whole file
up front and gives up on the first odd line, which loses cards these exports are full of.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from dataclasses import dataclass, field

from migrate.pim.lines import split_params

_UTF16_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_BARE_ENCODINGS = {"QUOTED-PRINTABLE": "QUOTED-PRINTABLE", "BASE64": "BASE64", "B": "BASE64", "8BIT": "8BIT",
                   "7BIT": "7BIT"}


@dataclass
class CardProperty:
    group: str  # Apple's "item1" in "item1.EMAIL"; '' when none
    name: str  # upper case
    params: dict[str, list[str]]  # NAME -> values; vCard 2.1's bare TYPE values under TYPE
    raw: bytes  # the value as written (after unfolding)
    text: str = ""  # the value decoded to text (quoted-printable and charset undone), escapes kept
    binary: bytes | None = None  # the value's bytes for BASE64 / ENCODING=b
    problem: str = ""  # how decoding it went wrong, if it did

    @property
    def types(self) -> set[str]:
        return {t.upper() for value in self.params.get("TYPE", []) for t in value.split(",") if t}

    def param(self, name: str) -> str:
        values = self.params.get(name)
        return values[0] if values else ""


@dataclass
class CardLines:
    version: str
    properties: list[CardProperty] = field(default_factory=list)
    changes: list[tuple[str, str]] = field(default_factory=list)  # how the card was decoded


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name.strip().strip('"')).name
    except LookupError:
        return None


def _physical_lines(data: bytes) -> tuple[list[bytes], bool]:
    """The card's lines, and whether the bytes were UTF-16 (and are now UTF-8)."""
    for bom, codec in _UTF16_BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(codec, "replace").encode("utf-8").splitlines(), True
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.splitlines(), False


def _is_qp(head: bytes) -> bool:
    upper = head.upper()
    return b"QUOTED-PRINTABLE" in upper.split(b":", 1)[0]


def _logical_lines(lines: list[bytes]) -> list[bytes]:
    result: list[bytes] = []
    qp_open = False
    for line in lines:
        if result and qp_open:  # a soft line break: '=' at the end joins the next line as it is
            result[-1] = result[-1][:-1] + line
        elif result and line[:1] in (b" ", b"\t"):
            result[-1] += line[1:]
        elif line.strip():
            result.append(line)
        else:
            qp_open = False
            continue
        qp_open = _is_qp(result[-1]) and result[-1].endswith(b"=")
    return result


def _split(line: bytes) -> tuple[str, str, dict[str, list[str]], bytes] | None:
    quoted = False
    for i, byte in enumerate(line):
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x3A and not quoted:
            head = line[:i].decode("utf-8", "replace")
            name, params = split_params(head)
            group, dot, bare = name.rpartition(".")
            if not re.fullmatch(r"[A-Z0-9_-]+", bare):
                return None
            grouped: dict[str, list[str]] = {}
            for key, value in params:
                if not value:  # vCard 2.1: `TEL;WORK;VOICE` and `;QUOTED-PRINTABLE`
                    if key in _BARE_ENCODINGS:
                        grouped.setdefault("ENCODING", []).append(_BARE_ENCODINGS[key])
                    else:
                        grouped.setdefault("TYPE", []).append(key)
                else:
                    grouped.setdefault(key, []).append(value.strip('"'))
            return group if dot else "", bare, grouped, line[i + 1:]
    return None


def read_card(data: bytes) -> CardLines:
    """Every property of one card; an unreadable line is left out and counted as a change."""
    lines, utf16 = _physical_lines(data)
    logical = _logical_lines(lines)
    parsed = [p for p in (_split(line) for line in logical) if p is not None]
    card = CardLines(version="3.0")
    if len(parsed) < len(logical):
        card.changes.append(("vCard", f"{len(logical) - len(parsed)} line(s) that are not properties were left out"))
    if utf16:
        card.changes.append(("vCard", "written in UTF-16: read as such"))
    for _group, name, _params, raw in parsed:
        if name == "VERSION":
            card.version = raw.decode("ascii", "replace").strip()
    # Outlook names the code page only on the lines it wrote quoted-printable; the others are in
    # the same code page, so a charset named on any line is the card's own.
    named = {c for _, _, params, _ in parsed for c in params.get("CHARSET", []) if _codec(c) not in (None, "utf-8")}
    default = _codec(next(iter(named))) if len(named) == 1 else None
    guessed = False
    for group, name, params, raw in parsed:
        prop = CardProperty(group, name, params, raw)
        _decode(prop, card, utf16, default)
        if prop.problem == "cp1252-guess":
            prop.problem = ""
            guessed = True
        card.properties.append(prop)
    if guessed:
        card.changes.append(("CHARSET", "text that is not UTF-8 and names no charset: read as Windows-1252"))
    return card


def _decode(prop: CardProperty, card: CardLines, utf16: bool, default: str | None) -> None:
    encoding = prop.param("ENCODING").upper()
    raw = prop.raw
    if encoding in ("B", "BASE64"):
        try:
            prop.binary = base64.b64decode(_pad(b"".join(raw.split())))
        except (binascii.Error, ValueError):
            prop.problem = "its base64 data is damaged"
        return
    if encoding == "QUOTED-PRINTABLE":
        raw = quopri.decodestring(raw)
    charset = prop.param("CHARSET")
    if utf16:
        prop.text = raw.decode("utf-8", "replace")
        return
    codec = _codec(charset) if charset else None
    if charset and codec is None:
        card.changes.append((prop.name, f"unknown charset {charset!r}: read as UTF-8"))
    if codec is not None:
        text = raw.decode(codec, "replace")
        if "\ufffd" in text:
            prop.problem = f"bytes that are not {charset}"
        prop.text = text
        return
    try:
        prop.text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if default is not None:
            prop.text = raw.decode(default, "replace")
            if ("CHARSET", f"text without a charset read in {default}, the one the card names elsewhere") \
                    not in card.changes:
                card.changes.append(("CHARSET", f"text without a charset read in {default}, the one the card "
                                                 "names elsewhere"))
            return
        prop.text = raw.decode("cp1252", "replace")
        prop.problem = "cp1252-guess"


def _pad(data: bytes) -> bytes:
    """Base64 whose padding the writer left off (or got wrong)."""
    data = data.rstrip(b"=")
    return data + b"=" * (-len(data) % 4)


def unescape(text: str, version: str) -> str:
    r"""A text value with its escapes undone: \n \, \; \\ (vCard 2.1 escapes only ';')."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if version == "2.1" and nxt not in ";\\":
                out.append(ch)
                i += 1
                continue
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def components(text: str, version: str) -> list[str]:
    """A structured value (N, ADR, ORG) split at the ';' that are not escaped."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == ";":
            parts.append(unescape("".join(current), version).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append(unescape("".join(current), version).strip())
    return parts
