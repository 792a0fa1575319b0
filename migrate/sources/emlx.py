"""Apple Mail's own store: ~/Library/Mail/V*/<account>/<Name>.mbox/.../Messages/*.emlx.

A mailbox is a `<Name>.mbox` directory; a child mailbox is a `.mbox` directory inside its
parent's; other directories on the way (V10, the account's UUID) are plain levels of the tree.
Messages sit in `<Name>.mbox/Messages/` or, in newer versions, `<Name>.mbox/<UUID>/Data/.../Messages/`.
An .emlx file is a line with the message's length in bytes, the message, then an XML plist with
`flags` (a bit field) and `date-received` (Unix seconds).

A `.partial.emlx` is a message whose attachments Apple Mail keeps outside it, in the mailbox's
Attachments/ folder. It is listed anyway, with a "partial-emlx" problem: its text, headers and
dates are worth moving, leaving it out would hide it from the counts, and the problem list tells
the engineer which messages arrive without their attachments.
"""

from __future__ import annotations

import os
import plistlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import SplitResult
from xml.parsers.expat import ExpatError

from migrate.errors import UserError
from migrate.model import Flag, Folder, MessageRef, SourceProblem
from migrate.sources.base import Capabilities, Source, SourceOptions, path_from_url, register
from migrate.sources.eml import below, natural_key, read_header
from migrate.sources.headers import header_facts
from migrate.sources.roles import role_for

# Bits of the plist's "flags" (Mail.app since 10.4, as collected by jwz in 2005): 0 read,
# 1 deleted, 2 answered, 3 encrypted, 4 flagged, 5 recent, 6 draft; higher bits are
# forwarded, attachment count, priority, junk state and display settings.
_FLAG_BITS = {1 << 0: Flag.SEEN, 1 << 1: Flag.DELETED, 1 << 2: Flag.ANSWERED, 1 << 4: Flag.FLAGGED, 1 << 6: Flag.DRAFT}
_PLIST_CAP = 1024 * 1024
_SKIP_DIRS = frozenset({"MailData"})  # Apple's indexes and settings, no mail


def _frame(fh: BinaryIO) -> tuple[int, int] | None:
    """Where the message starts in an .emlx file and its length, from the first line."""
    first = fh.readline(32)
    length = first.strip()
    if not first.endswith(b"\n") or not length.isdigit():
        return None
    return len(first), int(length)


def _plist(data: bytes) -> dict[str, Any]:
    try:
        value = plistlib.loads(data.strip())
    except (plistlib.InvalidFileException, ValueError, ExpatError):
        return {}
    return value if isinstance(value, dict) else {}


def _received(plist: dict[str, Any]) -> datetime | None:
    when = plist.get("date-received")
    if not isinstance(when, int | float) or isinstance(when, bool):
        return None
    try:
        return datetime.fromtimestamp(when, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _flags(plist: dict[str, Any]) -> frozenset[str]:
    bits = plist.get("flags")
    if not isinstance(bits, int):
        return frozenset()
    return frozenset(flag for bit, flag in _FLAG_BITS.items() if bits & bit)


class EmlxSource(Source):
    capabilities = Capabilities(flags=True, internal_dates=True, folders=True)

    def __init__(self, root: Path, url: str) -> None:
        super().__init__()
        self.url = url
        self.root = root
        if not root.is_dir():
            raise UserError(f"{root} is not a folder",
                            hint="emlx: wants an Apple Mail folder, for example ~/Library/Mail/V10/<account>")

    def _note(self, code: str, where: str, detail: str) -> None:
        """Keep a problem once, however often the folders are listed."""
        if (problem := SourceProblem(code, where, detail)) not in self.problems:
            self.problems.append(problem)

    def _subdirs(self, directory: Path) -> list[Path]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            raise UserError(f"cannot read the folder {directory}: {err.strerror}") from err
        return [Path(e.path) for e in entries
                if e.is_dir() and not e.name.startswith(".") and e.name not in _SKIP_DIRS]

    def folders(self) -> list[Folder]:
        found: list[Folder] = []
        # The root may be one mailbox itself, or any folder above mailboxes.
        self._walk([self.root] if self.root.name.endswith(".mbox") else self._subdirs(self.root), (), found)
        return sorted(found, key=lambda f: f.path[0] != "INBOX")  # stable: parents stay before children

    def _walk(self, directories: list[Path], parent: tuple[str, ...], found: list[Folder]) -> bool:
        """Add the mailboxes among `directories` and below them, parents first; True if any."""
        any_found = False
        for directory in directories:
            at = len(found)
            if directory.name.endswith(".mbox"):
                name = directory.name[:-5]
                if not parent and name.lower() == "inbox":
                    name = "INBOX"  # as IMAP names it, so every source calls the inbox the same
                path = (*parent, name)
                self._walk([d for d in self._subdirs(directory) if d.name.endswith(".mbox")], path, found)
                locator = directory.relative_to(self.root).as_posix()
                found.insert(at, Folder(path, role=role_for(path), locator=locator))
                any_found = True
            elif self._walk(self._subdirs(directory), (*parent, directory.name), found):
                path = (*parent, directory.name)
                found.insert(at, Folder(path, role=role_for(path), selectable=False))
                any_found = True
        return any_found

    def _mailbox(self, folder: Folder) -> Path:
        directory = below(self.root, folder.locator)
        if not folder.selectable or directory is None:
            raise UserError(f"{folder.name!r} is not a folder of {self.url}")
        return directory

    def _files(self, mailbox: Path) -> list[Path]:
        """The .emlx files of one mailbox, in Apple's message-number order; child mailboxes excluded."""
        files: list[Path] = []
        for directory, subdirs, names in os.walk(mailbox):
            subdirs[:] = [d for d in subdirs if not d.endswith(".mbox") and not d.startswith(".")]
            if os.path.basename(directory) == "Messages":
                files.extend(Path(directory, n) for n in names if n.endswith(".emlx") and not n.startswith("."))
        return sorted(files, key=lambda p: (natural_key(p.name), p.as_posix()))

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        if not folder.selectable:
            return
        for path in self._files(self._mailbox(folder)):
            ref = self._ref(path)
            if ref is not None:
                yield ref

    def _ref(self, path: Path) -> MessageRef | None:
        try:
            with path.open("rb") as fh:
                frame = _frame(fh)
                file_size = os.fstat(fh.fileno()).st_size
                if frame is None or sum(frame) > file_size:
                    self._note("corrupt-emlx", str(path), "not an .emlx file, or cut short: it is not listed")
                    return None
                start, length = frame
                header = read_header(fh, length)
                fh.seek(start + length)
                plist = _plist(fh.read(_PLIST_CAP))
        except FileNotFoundError:
            return None  # deleted while we listed
        except OSError as err:
            raise UserError(f"cannot read {path}: {err.strerror}", hint="check that you may read it") from err
        if path.name.endswith(".partial.emlx"):
            self._note("partial-emlx", str(path), "Apple Mail keeps this message's attachments outside it (in the "
                       "mailbox's Attachments folder): it moves without them")
        facts = header_facts(header)
        return MessageRef(
            key=path.relative_to(self.root).as_posix(),
            size=length,
            flags=_flags(plist),
            internal_date=_received(plist),
            message_id=facts.message_id,
            date=facts.date,
            subject=facts.subject,
            header_problems=facts.problems,
        )

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        mailbox = self._mailbox(folder)
        for ref in refs:
            path = below(self.root, ref.key)
            if path is None or not path.is_relative_to(mailbox):
                raise UserError(f"message {ref.key} is not in folder {folder.name!r}")
            try:
                with path.open("rb") as fh:
                    frame = _frame(fh)
                    data = fh.read(frame[1]) if frame else b""
            except FileNotFoundError:
                self.problems.append(
                    SourceProblem("message-gone", str(path), "the file was deleted after it was listed"))
                continue
            except OSError as err:
                raise UserError(f"cannot read {path}: {err.strerror}", hint="check that you may read it") from err
            if frame is None or len(data) != frame[1]:
                raise UserError(f"{path} changed since it was listed: it is no longer a whole .emlx file",
                                hint="quit Apple Mail and list the source again")
            yield ref, data


@register("emlx")
def open_emlx(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return EmlxSource(path_from_url(url), url)
