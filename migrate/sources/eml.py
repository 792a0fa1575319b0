"""A folder tree of .eml files, as a "save as" or an export tool leaves it.

Each directory is a mail folder named after it; the root's own .eml files, and a top-level
directory called Inbox in any case, make up INBOX. Only files named *.eml (any case) are mail:
an export folder also holds attachments, notes and indexes, and sniffing those for RFC 822 would
take a stray text file for a message. A directory with no .eml file anywhere below it is left
out, so an export's attachments/ folder does not become an empty mail folder.

There are no flags. There is no arrival time either: a file's mtime is when it was exported or
copied, and Exchange would file years of mail under that one day. So `internal_dates` is False
and `internal_date` comes only from the message itself, from the topmost Received: header (the
receiving server's own clock when it took the message in); where there is none (sent mail,
drafts) it stays None and the engine falls back to Date:.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import SplitResult

from migrate.errors import UserError
from migrate.model import Folder, MessageRef, SourceProblem
from migrate.sources.base import Capabilities, Source, SourceOptions, path_from_url, register
from migrate.sources.headers import header_block, header_facts, parse_date
from migrate.sources.roles import role_for

_CHUNK = 64 * 1024
_HEADER_CAP = 1024 * 1024  # a "header" longer than this is not one: stop reading
_SKIP_DIRS = frozenset({"__MACOSX"})


def read_header(fh: BinaryIO, limit: int) -> bytes:
    """The header block of the message at the file's position, reading at most `limit` bytes."""
    data = b""
    while len(data) < min(limit, _HEADER_CAP):
        chunk = fh.read(min(_CHUNK, limit - len(data)))
        if not chunk:
            break
        data += chunk
        if b"\n\n" in data or b"\r\n\r\n" in data:
            break
    return header_block(data)


def file_header(path: Path, size: int) -> bytes:
    """The header block of a message file; FileNotFoundError passes (the file went away)."""
    try:
        with path.open("rb") as fh:
            return read_header(fh, size)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}", hint="check that you may read it") from err


def received_date(header: bytes) -> datetime | None:
    """When the last server took the message in: the date after ';' in the topmost Received:."""
    lines = header.replace(b"\r\n", b"\n").split(b"\n")
    for i, line in enumerate(lines):
        if line[:9].lower() == b"received:":
            value = line[9:]
            for more in lines[i + 1:]:
                if more[:1] not in (b" ", b"\t"):
                    break
                value += b" " + more.strip()
            when = value.rpartition(b";")[2]
            return parse_date(when.decode("ascii", "replace").strip()) if b";" in value else None
    return None


def natural_key(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort "2.eml" before "10.eml", as a file manager does."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name))


def below(root: Path, relative: str) -> Path | None:
    """`root / relative`, unless `relative` (a key or locator handed back to us) would leave root."""
    rel = PurePosixPath(relative)
    return None if rel.is_absolute() or ".." in rel.parts else root / rel


def _skipped_dir(name: str) -> bool:
    return name.startswith(".") or name in _SKIP_DIRS


def _is_eml(name: str) -> bool:
    return name.lower().endswith(".eml") and not name.startswith(".")


class EmlSource(Source):
    capabilities = Capabilities(flags=False, internal_dates=False, folders=True)

    def __init__(self, root: Path, url: str) -> None:
        super().__init__()
        self.url = url
        self.root = root
        if not root.is_dir():
            raise UserError(f"{root} is not a folder", hint="eml: wants the folder that holds the .eml files")

    def _entries(self, directory: Path) -> list[os.DirEntry[str]]:
        try:
            return sorted(os.scandir(directory), key=lambda e: natural_key(e.name))
        except OSError as err:
            raise UserError(f"cannot read the folder {directory}: {err.strerror}") from err

    def folders(self) -> list[Folder]:
        found: list[Folder] = []
        entries = self._entries(self.root)
        inbox_dirs = [e for e in entries if e.is_dir() and e.name.lower() == "inbox"]
        has_inbox = any(e.is_file() and _is_eml(e.name) for e in entries)
        for entry in inbox_dirs:
            has_inbox = self._walk(Path(entry.path), ("INBOX",), found) or has_inbox
        if has_inbox:
            found.insert(0, Folder(("INBOX",), role=role_for(("INBOX",)), locator=""))
        for entry in entries:
            if entry.is_dir() and entry not in inbox_dirs and not _skipped_dir(entry.name):
                self._walk(Path(entry.path), (entry.name,), found, add_self=True)
        return found

    def _walk(self, directory: Path, path: tuple[str, ...], found: list[Folder], add_self: bool = False) -> bool:
        """Add the folders below `directory` (and itself, with `add_self`); True if any holds mail."""
        entries = self._entries(directory)
        own = any(e.is_file() and _is_eml(e.name) for e in entries)
        at = len(found)
        deeper = False
        for entry in entries:
            if entry.is_dir() and not _skipped_dir(entry.name):
                deeper = self._walk(Path(entry.path), (*path, entry.name), found, add_self=True) or deeper
        if add_self and (own or deeper):
            locator = directory.relative_to(self.root).as_posix()
            found.insert(at, Folder(path, role=role_for(path), selectable=own, locator=locator))
        return own or deeper

    def _dirs(self, folder: Folder) -> list[Path]:
        if folder.path == ("INBOX",):
            return [self.root] + [Path(e.path) for e in self._entries(self.root)
                                  if e.is_dir() and e.name.lower() == "inbox"]
        directory = below(self.root, folder.locator)
        if not folder.locator or directory is None:
            raise UserError(f"{folder.name!r} is not a folder of {self.url}")
        return [directory]

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        if not folder.selectable:
            return
        for directory in self._dirs(folder):
            for entry in self._entries(directory):
                if not (_is_eml(entry.name) and entry.is_file()):
                    continue
                path = Path(entry.path)
                try:
                    size = entry.stat().st_size
                    header = file_header(path, size)
                except FileNotFoundError:
                    continue  # deleted while we listed
                facts = header_facts(header)
                yield MessageRef(
                    key=path.relative_to(self.root).as_posix(),
                    size=size,
                    internal_date=received_date(header),
                    message_id=facts.message_id,
                    date=facts.date,
                    subject=facts.subject,
                    header_problems=facts.problems,
                )

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        for ref in refs:
            path = below(self.root, ref.key)
            if path is None:
                raise UserError(f"message {ref.key} is not in {self.url}")
            try:
                with path.open("rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                self.problems.append(
                    SourceProblem("message-gone", str(path), "the file was deleted after it was listed"))
                continue
            except OSError as err:
                raise UserError(f"cannot read {path}: {err.strerror}", hint="check that you may read it") from err
            yield ref, data


@register("eml")
def open_eml(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return EmlSource(path_from_url(url), url)
