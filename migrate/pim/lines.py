"""iCalendar content lines (RFC 5545 3.1) read from bytes, keeping each line's own bytes.

Real files end lines with CRLF, LF or a lone CR (old Macs), start with a byte order mark, fold
long lines with a space or a tab, and leave empty lines about; all of that is taken here, so the
cut into items and the parser see the same lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_NAME = re.compile(rb"[A-Za-z0-9-]+")


@dataclass
class ContentLine:
    name: str  # upper case
    params: list[tuple[str, str]]  # (NAME upper case, value without quotes), in order
    value: bytes  # after the first colon that is not inside a quoted parameter value
    logical: bytes  # the unfolded line
    physical: list[bytes]  # the line as the file folded it, without line ends


def decode(data: bytes) -> str:
    """Text of a value: UTF-8 as RFC 5545 says, Windows-1252 for files written otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _physical_lines(data: bytes) -> list[bytes]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            data = data[len(bom):]
            if codec != "utf-8":
                data = data.decode(codec, "replace").encode("utf-8")
            break
    if b"\n" in data:
        lines = [line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n")]
    else:
        lines = data.split(b"\r")
    return lines


def split_params(head: str) -> tuple[str, list[tuple[str, str]]]:
    """`NAME;P1=a,b;P2="x;y"` into the name and its parameters; a bare parameter has value ''."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in head:
        if ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    params: list[tuple[str, str]] = []
    for part in parts[1:]:
        key, _, value = part.partition("=")
        if key.strip():
            params.append((key.strip().upper(), value.strip()))
    return parts[0].strip().upper(), params


def _parse(logical: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    quoted = False
    for i, byte in enumerate(logical):
        if byte == 0x22:  # "
            quoted = not quoted
        elif byte == 0x3A and not quoted:  # :
            name, params = split_params(decode(logical[:i]))
            if not _NAME.fullmatch(name.encode("ascii", "replace")):
                return None
            return name, params, logical[i + 1:]
    return None


def content_lines(data: bytes) -> list[ContentLine]:
    """The content lines of an iCalendar stream; a line that is not `NAME[;params]:value` is left out."""
    result: list[ContentLine] = []
    pending: list[bytes] = []

    def flush() -> None:
        if not pending:
            return
        logical = pending[0] + b"".join(p[1:] for p in pending[1:])
        parsed = _parse(logical)
        if parsed is not None:
            result.append(ContentLine(parsed[0], parsed[1], parsed[2], logical, list(pending)))
        pending.clear()

    for line in _physical_lines(data):
        if line[:1] in (b" ", b"\t") and pending:
            pending.append(line)
            continue
        flush()
        if line.strip():
            pending.append(line)
    flush()
    return result


def param_values(line: ContentLine, name: str) -> list[str]:
    """Every value of a parameter, quotes taken off."""
    return [value.strip('"') for key, value in line.params if key == name]


def unescape_text(value: bytes | str) -> str:
    r"""A TEXT value with RFC 5545 escapes undone: \n \N \, \; \\."""
    text = decode(value) if isinstance(value, bytes) else value
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
