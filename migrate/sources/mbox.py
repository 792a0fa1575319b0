"""mbox files, one or a folder of them: Thunderbird profiles, Apple Mail exports, plain *.mbox files.

A file is streamed line by line in binary and never held whole: customers bring mboxes of many
gigabytes. A message starts at a "From " line at the start of the file or after an empty line;
Netscape and old Thunderbird wrote no empty line before it, so a "From " line that reads as a
real envelope line ("From - " or a sender and a ctime date) starts one too. A Content-Length
header is trusted only when it lands exactly on the next "From " line or the end of the file:
writers that set it (mboxcl2) do not escape "From " in bodies, and writers that set it wrongly
are common. The key of a message is `relative-path:offset-of-its-From-line`, so read() seeks
straight to it and parses that one message again, without scanning the file.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import SplitResult

from migrate.errors import UserError
from migrate.model import Flag, Folder, MessageRef, SourceProblem
from migrate.sources.base import Capabilities, Source, SourceOptions, path_from_url, register
from migrate.sources.eml import below
from migrate.sources.headers import header_facts
from migrate.sources.roles import role_for

# Longest piece read at once: a longer line (a base64 blob without line breaks) comes in
# pieces, so memory stays flat; a piece that does not start a line is never a "From " line.
_PIECE = 1 << 16
# Header bytes kept for the listing's facts; the rest of a monstrous header still streams.
_HEADER_CAP = 256 * 1024
_BLANK = (b"\n", b"\r\n")

# Headers that mail clients add to keep their own state in the mbox (Dovecot hides the same
# set from IMAP clients; Thunderbird adds its X-Mozilla-* ones). They are stripped from the
# bytes read() gives back: their meaning travels as flags, the original message never had them,
# left in they would make the same message differ (and fingerprint differently) from its copy on
# an IMAP server or in a Maildir, and Content-Length is wrong anyway once "From " is un-escaped.
_CLIENT_HEADERS = frozenset(
    {
        b"status",
        b"x-status",
        b"x-mozilla-status",
        b"x-mozilla-status2",
        b"x-mozilla-keys",
        b"content-length",
        b"x-imap",
        b"x-imapbase",
        b"x-keywords",
        b"x-uid",
    }
)
_X_STATUS_FLAGS = {ord("F"): Flag.FLAGGED, ord("A"): Flag.ANSWERED, ord("D"): Flag.DELETED, ord("T"): Flag.DRAFT}
_MOZ_READ, _MOZ_REPLIED, _MOZ_FLAGGED, _MOZ_EXPUNGED = 0x1, 0x2, 0x4, 0x8

# Files that mail clients keep next to their mbox files (Thunderbird's .msf indexes and .dat
# settings, Eudora's .toc, Apple's table_of_contents): never mail, so skipped without a word.
_NOT_MAIL_SUFFIXES = frozenset(
    {".msf", ".dat", ".html", ".htm", ".json", ".sqlite", ".sqlite-wal", ".sqlite-shm", ".plist",
     ".js", ".xml", ".log", ".lock", ".bak", ".tmp", ".toc", ".ini", ".db"}
)
_NOT_MAIL_NAMES = frozenset({"table_of_contents", "Thumbs.db", "desktop.ini"})
_MBOX_SUFFIXES = (".mbox", ".mbx")

_MONTHS = {m: i for i, m in enumerate((b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug",
                                       b"sep", b"oct", b"nov", b"dec"), start=1)}
# ctime as in "Mon Jun  3 12:50:27 1996", with the variants found in the wild: no seconds,
# a zone name or offset before the year (Mail::Box, Gmail Takeout) or after it.
_ENVELOPE_DATE = re.compile(
    rb"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,? +(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
    rb" +(\d{1,2}) +(\d{1,2}):(\d\d)(?::(\d\d))?(?: +([a-z]{1,5}|[+-]\d{4}))? +(\d{4})(?: +([+-]\d{4}))?",
    re.IGNORECASE,
)


def _is_envelope(line: bytes) -> bool:
    """A "From " line that reads as an envelope, not as prose that lost its escape."""
    return line[5:].strip() == b"-" or _ENVELOPE_DATE.search(line, 5) is not None


def envelope_date(line: bytes) -> datetime | None:
    """The delivery time on a "From " line; without a numeric zone it is taken as UTC."""
    found = _ENVELOPE_DATE.search(line, 5)
    if found is None:
        return None
    month, day, hour, minute, second, zone1, year, zone2 = found.groups()
    try:
        when = datetime(int(year), _MONTHS[month[:3].lower()], int(day), int(hour), int(minute),
                        int(second or 0), tzinfo=UTC)
    except ValueError:
        return None
    for zone in (zone1, zone2):
        if zone and zone[:1] in b"+-":
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
            when -= offset if zone[:1] == b"+" else -offset
    return when


@dataclass
class _Parsed:
    """One message as found in the file."""

    start: int  # offset of its "From " line
    end: int  # offset of the next message's "From " line, or the end of the file
    size: int  # bytes read() gives back
    envelope: bytes
    header: bytes  # header lines kept in the message, for the listing's facts
    client: dict[bytes, bytes]  # the mail client's state headers, stripped from the message
    problem: tuple[str, str] | None  # (code, detail) when the message cannot be given back whole
    raw: bytes = b""


def _lands(fh: BinaryIO, target: int, file_size: int) -> bool:
    """True when a Content-Length ends the message exactly before a "From " line or the end."""
    if target > file_size:
        return False
    fh.seek(target - 1)
    probe = fh.read(8)
    if probe[:1] != b"\n":
        return target == file_size
    rest = probe[1:]
    if not rest or rest.startswith(b"From "):
        return True
    for blank in _BLANK:
        if rest.startswith(blank):
            return rest[len(blank):].startswith(b"From ") or target + len(blank) == file_size
    return False


def _after_separator(fh: BinaryIO, pos: int) -> int:
    """Where the next message starts when a trusted Content-Length ended this one at `pos`."""
    fh.seek(pos)
    line = fh.readline(8)
    return pos + len(line) if line in _BLANK else pos


def _read_header(fh: BinaryIO, pos: int, out: io.BytesIO | None) -> tuple[int, bytes, dict[bytes, bytes], int, bool]:
    """Read header lines up to the empty line that ends them (not consumed), a "From " line or the end.

    Gives back the position reached, the header lines kept, the client headers, the bytes kept,
    and whether the empty line was found.
    """
    header = bytearray()
    client: dict[bytes, bytes] = {}
    size, hiding, line_start = 0, False, True
    while line := fh.readline(_PIECE):
        at_start, line_start = line_start, line.endswith(b"\n")
        if at_start and line in _BLANK:
            fh.seek(pos)
            return pos, bytes(header), client, size, True
        if at_start and line.startswith(b"From ") and _is_envelope(line):
            break
        pos += len(line)
        if at_start and line[:1] not in (b" ", b"\t"):
            if line[:1] == b">" and line.lstrip(b">").startswith(b"From "):
                line = line[1:]
            name, colon, value = line.partition(b":")
            hiding = bool(colon) and name.strip().lower() in _CLIENT_HEADERS
            if hiding:
                client[name.strip().lower()] = value.strip()
        if hiding:
            continue  # a client header, or the folded rest of one
        if len(header) < _HEADER_CAP:
            header += line
        size += len(line)
        if out is not None:
            out.write(line)
    return pos, bytes(header), client, size, False


def _parse(fh: BinaryIO, start: int, file_size: int, collect: bool) -> _Parsed:
    """Read the message whose "From " line is at `start`; with `collect`, keep its bytes."""
    fh.seek(start)
    readline = fh.readline
    envelope = readline(_PIECE)
    pos = start + len(envelope)
    line_start = envelope.endswith(b"\n")
    while not line_start:  # an absurdly long envelope line: skip the rest of it
        piece = readline(_PIECE)
        if not piece:
            break
        pos += len(piece)
        line_start = piece.endswith(b"\n")
    out = io.BytesIO() if collect else None
    pos, header, client, size, complete = _read_header(fh, pos, out) if line_start else (pos, b"", {}, 0, False)

    problem: tuple[str, str] | None = None
    if not complete:
        if pos >= file_size:
            problem = ("truncated-mbox", "the file ends inside this message's header; it is not listed")
        else:
            problem = ("corrupt-mbox", f"this message's header has no end: another message starts at "
                                       f"byte {pos}; it is not listed")
        return _Parsed(start, pos, size, envelope, header, client, problem)
    # From here on the message is the file's bytes from `body` on, less what `removed` counts
    # (a "From " escape, the last separator), so the size needs no per-line arithmetic.
    body, removed = pos, 0
    blank = readline(_PIECE)
    pos += len(blank)
    length = client.get(b"content-length", b"")
    if length.isdigit() and _lands(fh, pos + int(length), file_size):
        end = pos + int(length)
        fh.seek(pos)
        if out is not None:
            out.write(blank)
        while pos < end:  # no "From " line can end it early: the length says where it ends
            line = readline(min(_PIECE, end - pos))
            if not line:
                break
            pos += len(line)
            if line_start and line[:1] == b">" and line.lstrip(b">").startswith(b"From "):
                line, removed = line[1:], removed + 1
            line_start = line.endswith(b"\n")
            if out is not None:
                out.write(line)
        size += end - body - removed
        end = _after_separator(fh, end)
    else:
        fh.seek(pos)
        end = -1
        held = blank  # an empty line is the separator if a "From " line follows it
        # The hot loop of a 10 GB file: one readline and a few byte tests per line, no arithmetic.
        while line := readline(_PIECE):
            if line_start:
                if line in _BLANK:
                    if held and out is not None:
                        out.write(held)
                    held = line
                    continue
                if line.startswith(b"From ") and (held or _is_envelope(line)):
                    end = fh.tell() - len(line)
                    break
                if held:
                    if out is not None:
                        out.write(held)
                    held = b""
                if line[:1] == b">" and line.lstrip(b">").startswith(b"From "):
                    line, removed = line[1:], removed + 1  # mboxrd: a ">" was added to ">*From " lines
            line_start = line.endswith(b"\n")
            if out is not None:
                out.write(line)
        if end < 0:  # the end of the file; an empty line held back was the writer's last separator
            end = fh.tell()
            if not line_start:
                problem = ("truncated-mbox", "the file ends in the middle of a line of this message, "
                                             "so the message is cut off; it is not listed")
        size += end - body - removed - len(held)
    return _Parsed(start, end, size, envelope, header, client, problem, out.getvalue() if out is not None else b"")


def _first_message(fh: BinaryIO) -> tuple[int, bool]:
    """The offset of the first "From " line, and whether anything but empty lines comes before it."""
    fh.seek(0)
    pos, after_blank, line_start, junk = 0, True, True, False
    while line := fh.readline(_PIECE):
        if line_start and line.startswith(b"From ") and (after_blank or _is_envelope(line)):
            break
        after_blank = line_start and line in _BLANK
        junk = junk or not after_blank
        line_start = line.endswith(b"\n")
        pos += len(line)
    return pos, junk


def _flags(client: dict[bytes, bytes]) -> tuple[frozenset[str], bool]:
    """Flags from Status, X-Status and X-Mozilla-Status; and whether Thunderbird expunged it."""
    flags: set[str] = set()
    if b"R" in client.get(b"status", b""):
        flags.add(Flag.SEEN)
    flags.update(flag for letter, flag in _X_STATUS_FLAGS.items() if letter in client.get(b"x-status", b""))
    try:
        moz = int(client.get(b"x-mozilla-status", b"0") or b"0", 16)
    except ValueError:
        moz = 0
    for bit, flag in ((_MOZ_READ, Flag.SEEN), (_MOZ_REPLIED, Flag.ANSWERED), (_MOZ_FLAGGED, Flag.FLAGGED)):
        if moz & bit:
            flags.add(flag)
    return frozenset(flags), bool(moz & _MOZ_EXPUNGED)


@dataclass
class _Node:
    """A folder found on disk: its mbox file, if it has one, and its children by name."""

    file: Path | None = None
    children: dict[str, _Node] = field(default_factory=dict)

    def child(self, name: str) -> _Node:
        return self.children.setdefault(name, _Node())


def _sniff(path: Path) -> bool:
    """An mbox starts with "From " (after empty lines at most); an empty file is an empty folder."""
    with path.open("rb") as fh:
        head = fh.read(1024).lstrip(b"\r\n")
    return not head or head.startswith(b"From ")


def _not_mail(name: str) -> bool:
    return name in _NOT_MAIL_NAMES or Path(name).suffix.lower() in _NOT_MAIL_SUFFIXES


def _strip_suffix(name: str) -> str:
    for suffix in _MBOX_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


class MboxSource(Source):
    """One mbox file or a tree of them; read-only: files are opened "rb" and never locked."""

    capabilities = Capabilities(flags=True, internal_dates=True, folders=True)

    def __init__(self, root: Path, url: str) -> None:
        super().__init__()
        self.url = url
        self.root = root
        self.base = root.parent if root.is_file() else root  # locators and keys are relative to it

    def _note(self, code: str, where: str, detail: str) -> None:
        """Keep a problem once, however often the folders are listed."""
        if (problem := SourceProblem(code, where, detail)) not in self.problems:
            self.problems.append(problem)

    # --- folders ---------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        top = _Node()
        if self.root.is_file():
            name = self.root.name
            if name == "mbox" and self.root.parent.name.lower().endswith(".mbox"):
                name = self.root.parent.name  # the file inside an Apple Mail export
            top.child(_strip_suffix(name)).file = self.root
        elif self.root.name.lower().endswith(".mbox") and (self.root / "mbox").is_file():
            node = top.child(_strip_suffix(self.root.name))  # one Apple Mail export, given itself
            node.file = self.root / "mbox"
            self._walk(self.root, node, apple=True)
        else:
            self._walk(self.root, top, apple=False)
        found: list[Folder] = []
        self._flatten(top, (), found)
        return sorted(found, key=lambda f: f.path[0] != "INBOX")  # stable: parents stay before children

    def _walk(self, directory: Path, node: _Node, apple: bool) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            raise UserError(f"cannot read the folder {directory}: {err.strerror}") from err
        for entry in entries:
            name, path = entry.name, Path(entry.path)
            if name.startswith("."):
                continue
            if entry.is_dir():
                if name.endswith(".sbd"):  # Thunderbird: the children of the file NAME
                    self._walk(path, node.child(name[:-4]), apple=False)
                elif name.lower().endswith(".mbox"):  # Apple Mail export: NAME.mbox/mbox, children inside
                    child = node.child(_strip_suffix(name))
                    if (path / "mbox").is_file():
                        child.file = path / "mbox"
                    self._walk(path, child, apple=True)
                else:
                    self._walk(path, node.child(name), apple=False)
            elif entry.is_file():
                if (apple and name == "mbox") or _not_mail(name):
                    continue
                try:
                    is_mbox = _sniff(path)
                except OSError as err:
                    raise UserError(f"cannot read {path}: {err.strerror}") from err
                # A file that says it is an mbox, or that Thunderbird indexes, is a damaged
                # folder to report, not a stray file to skip.
                if is_mbox or name.lower().endswith(_MBOX_SUFFIXES) or (directory / f"{name}.msf").exists():
                    node.child(_strip_suffix(name)).file = path
                else:
                    self._note("not-mbox", str(path), "skipped: its first line is not an mbox \"From \" line")

    def _flatten(self, node: _Node, parent: tuple[str, ...], found: list[Folder]) -> bool:
        """Append the folders under `node`, parents first; True if any was found."""
        any_found = False
        for name, child in node.children.items():
            if not parent and name.lower() == "inbox":
                name = "INBOX"  # as IMAP names it, so every source calls the inbox the same
            path = (*parent, name)
            at = len(found)
            has_children = self._flatten(child, path, found)
            if child.file is None and not has_children:
                continue
            locator = child.file.relative_to(self.base).as_posix() if child.file else ""
            found.insert(at, Folder(path, role=role_for(path), selectable=child.file is not None, locator=locator))
            any_found = True
        return any_found

    # --- messages --------------------------------------------------------------------------

    def _file(self, folder: Folder) -> Path:
        path = below(self.base, folder.locator)
        if not folder.locator or path is None:
            raise UserError(f"{folder.name!r} is not a folder of {self.url}")
        return path

    def _open(self, path: Path) -> BinaryIO:
        try:
            return path.open("rb")
        except OSError as err:
            raise UserError(f"cannot read {path}: {err.strerror}",
                            hint="check that the file exists and that you may read it") from err

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        if not folder.selectable:
            return
        path = self._file(folder)
        with self._open(path) as fh:
            file_size = os.fstat(fh.fileno()).st_size
            pos, junk = _first_message(fh)
            if junk:
                detail = (f"{pos} bytes before the first \"From \" line are not mail and are skipped"
                          if pos < file_size else "no \"From \" line: this is not an mbox file")
                self._note("corrupt-mbox", f"{path} at byte 0", detail)
            while pos < file_size:
                msg = _parse(fh, pos, file_size, collect=False)
                if msg.problem:
                    self._note(msg.problem[0], f"{path} at byte {pos}", msg.problem[1])
                else:
                    flags, expunged = _flags(msg.client)
                    if not expunged:  # Thunderbird shows these as gone until it compacts the file
                        facts = header_facts(msg.header)
                        yield MessageRef(
                            key=f"{folder.locator}:{msg.start}",
                            size=msg.size,
                            flags=flags,
                            internal_date=envelope_date(msg.envelope),
                            message_id=facts.message_id,
                            date=facts.date,
                            subject=facts.subject,
                            header_problems=facts.problems,
                        )
                pos = msg.end

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        path = self._file(folder)
        with self._open(path) as fh:
            file_size = os.fstat(fh.fileno()).st_size
            for ref in refs:
                locator, _, offset = ref.key.rpartition(":")
                if locator != folder.locator or not offset.isdigit():
                    raise UserError(f"message {ref.key} is not in folder {folder.name!r}")
                fh.seek(int(offset))
                msg = None
                if fh.read(5) == b"From ":
                    msg = _parse(fh, int(offset), file_size, collect=True)
                if msg is None or msg.problem or msg.size != ref.size:
                    # Thunderbird rewrites the file when it compacts a folder: offsets move.
                    raise UserError(
                        f"{path} changed since it was listed: no message of {ref.size} bytes at byte {offset}",
                        hint="close the mail client and list the source again",
                    )
                yield ref, msg.raw


@register("mbox")
def open_mbox(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return MboxSource(path_from_url(url), url)
