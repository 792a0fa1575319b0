"""HTML and plain text de-encapsulated from Outlook's RTF bodies ([MS-OXRTFEX] 2.1.3.1).

When Outlook keeps only an RTF body, an HTML or plain-text original is still inside it: HTML
markup in `{\\*\\htmltag ...}` groups, the original text between them, and RTF-only renderings
fenced off by `\\htmlrtf ... \\htmlrtf0`. RTFDE does the same with a full grammar, but took about
five seconds for one ordinary Outlook body here; a PST holds thousands of them, so this reader
does it in one pass over the tokens instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"  # a control word and its number
    rb"|\\'([0-9a-fA-F]{2})"  # one byte in the current code page
    rb"|\\([^a-zA-Z'])"  # a control symbol: \\ \{ \} \~ \*
    rb"|([{}])|([^\\{}\r\n]+)|[\r\n]+"
)

# Destinations whose text is never part of the body.
_SKIPPED = frozenset({
    b"fonttbl", b"colortbl", b"stylesheet", b"info", b"pict", b"object", b"listtable", b"listoverridetable",
    b"rsidtbl", b"generator", b"xmlnstbl", b"themedata", b"colorschememapping", b"latentstyles", b"datastore",
    b"header", b"footer", b"footnote", b"filetbl", b"revtbl", b"pgdsctbl", b"mhtmltag", b"fldinst",
})
_SYMBOLS = {b"par": "\r\n", b"line": "\r\n", b"tab": "\t", b"lquote": "\u2018", b"rquote": "\u2019",
            b"ldblquote": "\u201c", b"rdblquote": "\u201d", b"bullet": "\u2022", b"endash": "\u2013",
            b"emdash": "\u2014", b"emspace": "\u2003", b"enspace": "\u2002"}
_ESCAPED = {b"\\": "\\", b"{": "{", b"}": "}", b"~": "\u00a0", b"-": "\u00ad", b"_": "\u2011"}
# \fcharset numbers to code pages ([MSFT-RTF]).
_CHARSETS = {128: "cp932", 129: "cp949", 130: "cp1361", 134: "gbk", 136: "cp950", 161: "cp1253", 162: "cp1254",
             163: "cp1258", 177: "cp1255", 178: "cp1256", 186: "cp1257", 204: "cp1251", 222: "cp874", 238: "cp1250",
             77: "mac_roman", 2: "cp1252"}


class NotEncapsulated(ValueError):
    """The RTF was written by a rich-text editor, not converted from HTML or text."""


@dataclass(frozen=True)
class _State:
    skip: bool = False  # a destination whose text is not the body
    html_tag: bool = False  # inside {\*\htmltag}: markup to copy
    suppressed: bool = False  # inside \htmlrtf ... \htmlrtf0: RTF's own rendering
    font_table: bool = False
    codepage: str = "cp1252"
    uc: int = 1


def _codec(name: str) -> str:
    try:
        "".encode(name)
    except LookupError:
        return "cp1252"
    return name


def deencapsulate(rtf: bytes) -> tuple[str, str]:
    """("html" or "text", the original) from an encapsulated RTF body; NotEncapsulated otherwise."""
    head = rtf[:2048]
    if b"\\fromhtml" in head:
        kind = "html"
    elif b"\\fromtext" in head:
        kind = "text"
    else:
        raise NotEncapsulated("native RTF")
    default = "cp1252"
    if found := re.search(rb"\\ansicpg(\d+)", head):
        default = _codec(f"cp{int(found.group(1))}")
    fonts: dict[int, str] = {}
    current_font: int | None = None
    out: list[str] = []
    pending = bytearray()  # \'hh bytes, decoded together so double-byte code pages work
    pending_codepage = default
    state = _State(codepage=default)
    stack: list[_State] = []
    skip_chars = 0  # fallback characters still to skip after a \uN
    new_group = False

    def flush() -> None:
        if pending:
            out.append(pending.decode(pending_codepage, "replace"))
            pending.clear()

    def emit(text: str) -> None:
        flush()
        out.append(text)

    for match in _TOKEN.finditer(rtf):
        word, number, hexbyte, symbol, brace, text = match.groups()
        first_in_group, new_group = new_group, False
        if brace == b"{":
            stack.append(state)
            new_group = True
            continue
        if brace == b"}":
            state = stack.pop() if stack else state
            skip_chars = 0
            continue
        if word is not None:
            if first_in_group and word == b"htmltag":
                state = replace(state, html_tag=True, skip=False, codepage=default)
                continue
            if first_in_group and word == b"fonttbl":
                state = replace(state, skip=True, font_table=True)
                continue
            if first_in_group and word in _SKIPPED:
                state = replace(state, skip=True)
                continue
            if state.font_table:
                if word == b"f" and number is not None:
                    current_font = int(number)
                elif word == b"fcharset" and number is not None and current_font is not None:
                    fonts[current_font] = _codec(_CHARSETS.get(int(number), default))
                continue
            if word == b"htmlrtf":
                state = replace(state, suppressed=number != b"0")
                continue
            if word == b"f" and number is not None and not state.html_tag:
                state = replace(state, codepage=fonts.get(int(number), default))
                continue
            if word == b"uc" and number is not None:
                state = replace(state, uc=max(0, int(number)))
                continue
            if state.skip or (state.suppressed and not state.html_tag):
                continue
            if word == b"u" and number is not None:
                value = int(number)
                emit(chr(value + 65536 if value < 0 else value))
                skip_chars = state.uc
            elif word in _SYMBOLS:
                emit(_SYMBOLS[word])
            continue
        if symbol is not None:
            if symbol == b"*":
                if first_in_group:
                    new_group = True  # {\*\htmltag: the destination word comes next
                    state = replace(state, skip=not state.html_tag)
                continue
            if state.skip or (state.suppressed and not state.html_tag):
                continue
            if skip_chars:
                skip_chars -= 1
                continue
            if symbol in _ESCAPED:
                emit(_ESCAPED[symbol])
            continue
        if state.skip or (state.suppressed and not state.html_tag):
            continue
        if hexbyte is not None:
            if skip_chars:
                skip_chars -= 1
                continue
            if pending and pending_codepage != state.codepage:
                flush()
            pending_codepage = state.codepage
            pending.append(int(hexbyte, 16))
            continue
        if text:
            if skip_chars:
                dropped = min(skip_chars, len(text))
                text, skip_chars = text[dropped:], skip_chars - dropped
            if text:
                emit(text.decode(state.codepage, "replace"))
    flush()
    return kind, "".join(out)
