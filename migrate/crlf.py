"""CRLF line endings: what IMAP servers require and Exchange stores, so sizes and hashes are
compared on these bytes. Sources give messages as stored (mbox and Maildir often with bare LF)."""

from __future__ import annotations

import re

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


def to_crlf(raw: bytes) -> bytes:
    if raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r"):
        return raw  # already CRLF throughout: no copy
    return _LINE_ENDS.sub(b"\r\n", raw)
