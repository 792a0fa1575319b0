"""Maildir, plain or Maildir++ (Dovecot, Courier), read in place, even under a running Dovecot.

The root holds INBOX in cur/ and new/; Maildir++ keeps every other folder as a dot directory of
the root (".Kunder.Åkesson & Söner", names in IMAP modified UTF-7); Dovecot's LAYOUT=fs nests
plain directories instead. tmp/ holds deliveries in progress and is never read; Dovecot's and
Courier's own files (dovecot-uidlist, dovecot.index*, subscriptions, maildirfolder) are not mail.
A message file is renamed whenever its flags change (":2,S" becomes ":2,RS") or it moves from
new/ to cur/, so the key is the file name without that info part, and a file that moved between
listing and reading is looked up again by its key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import SplitResult

from imapclient.imap_utf7 import decode as imap_utf7_decode

from migrate.errors import UserError
from migrate.model import Flag, Folder, MessageRef, SourceProblem
from migrate.sources.base import Capabilities, Source, SourceOptions, path_from_url, register
from migrate.sources.eml import below, file_header
from migrate.sources.headers import header_facts
from migrate.sources.roles import role_for

_INFO_FLAGS = {"S": Flag.SEEN, "F": Flag.FLAGGED, "R": Flag.ANSWERED, "D": Flag.DRAFT, "T": Flag.DELETED}
_MAIL_DIRS = ("cur", "new")
_NOT_FOLDERS = frozenset({"cur", "new", "tmp", "courierimapkeywords", "courierimaphieracl"})


def split_name(name: str) -> tuple[str, frozenset[str]]:
    """The key (the name without its info part) and the flags of a message file name.

    The info follows ":2," (";2," where a file system forbids colons, as isync writes it);
    lower-case letters are Dovecot keywords, which have no standard meaning and are dropped.
    """
    for sep in (":2,", ";2,"):
        key, found, info = name.rpartition(sep)
        if found:
            return key, frozenset(_INFO_FLAGS[c] for c in info.split(",")[0] if c in _INFO_FLAGS)
    return name.partition(":")[0], frozenset()


def _decode(name: str) -> str:
    """A folder name as stored on disk: modified UTF-7, unless a client already wrote UTF-8."""
    if not name.isascii():
        return name
    try:
        return str(imap_utf7_decode(name.encode("ascii")))
    except (ValueError, UnicodeError):
        return name


def _is_maildir(path: Path) -> bool:
    return any((path / sub).is_dir() for sub in _MAIL_DIRS)


def _uid_order(directory: Path) -> dict[str, int]:
    """Dovecot's UID of each key, from dovecot-uidlist: the order an IMAP client sees."""
    try:
        lines = (directory / "dovecot-uidlist").read_bytes().splitlines()[1:]
    except OSError:
        return {}
    order: dict[str, int] = {}
    for line in lines:
        uid, _, name = line.partition(b" ")
        name = name.partition(b":")[2]  # "UID [fields] :last-known-file-name"
        if uid.isdigit() and name:
            order[split_name(name.decode("utf-8", "surrogateescape"))[0]] = int(uid)
    return order


class MaildirSource(Source):
    capabilities = Capabilities(flags=True, internal_dates=True, folders=True)

    def __init__(self, root: Path, url: str) -> None:
        super().__init__()
        self.url = url
        self.root = root
        if not root.is_dir():
            raise UserError(f"{root} is not a folder", hint="maildir: wants the folder that holds cur/ and new/")
        # Where the messages of the last folder listed or read were seen, so that read() needs
        # no directory scan; one folder at a time keeps memory flat for half a million messages.
        self._index: tuple[str, dict[str, Path]] = ("", {})

    def folders(self) -> list[Folder]:
        found: dict[tuple[str, ...], str | None] = {}  # path -> directory relative to the root
        if _is_maildir(self.root):
            found[("INBOX",)] = ""
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except OSError as err:
            raise UserError(f"cannot read the folder {self.root}: {err.strerror}") from err
        for entry in entries:
            if not entry.is_dir() or entry.name in _NOT_FOLDERS or entry.name == "..":
                continue
            if entry.name.startswith("."):
                if _is_maildir(Path(entry.path)):
                    found[tuple(_decode(part) for part in entry.name[1:].split("."))] = entry.name
            else:
                self._walk_fs(Path(entry.path), (), found)
        if not found:
            raise UserError(f"{self.root} is not a Maildir: it has no cur/ or new/ folder and no .FOLDER in it",
                            hint="give the Maildir folder itself, for example ~/Maildir")
        for path in list(found):  # Maildir++ may hold ".A.B" without ".A": list the parent anyway
            for depth in range(1, len(path)):
                found.setdefault(path[:depth], None)
        inbox_first = sorted(found, key=lambda p: (p != ("INBOX",), p))
        return [Folder(p, role=role_for(p), selectable=found[p] is not None, locator=found[p] or "")
                for p in inbox_first]

    def _walk_fs(self, directory: Path, parent: tuple[str, ...], found: dict[tuple[str, ...], str | None]) -> None:
        """Dovecot's LAYOUT=fs: folders are plain nested directories, each a Maildir."""
        path = (*parent, _decode(directory.name))
        if _is_maildir(directory):
            found[path] = directory.relative_to(self.root).as_posix()
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith(".") and entry.name not in _NOT_FOLDERS:
                self._walk_fs(Path(entry.path), path, found)

    def _folder_dir(self, folder: Folder) -> Path:
        directory = below(self.root, folder.locator)
        if not folder.selectable or directory is None:
            raise UserError(f"{folder.name!r} is not a folder of {self.url}")
        return directory

    def _scan(self, directory: Path) -> dict[str, tuple[Path, os.stat_result]]:
        files: dict[str, tuple[Path, os.stat_result]] = {}
        for sub in _MAIL_DIRS:
            try:
                entries = list(os.scandir(directory / sub))
            except FileNotFoundError:
                continue
            except OSError as err:
                raise UserError(f"cannot read the folder {directory / sub}: {err.strerror}") from err
            for entry in entries:
                try:
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    files[split_name(entry.name)[0]] = (Path(entry.path), entry.stat())
                except FileNotFoundError:
                    continue  # renamed or expunged while we looked; a second scan finds a rename
        return files

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        if not folder.selectable:
            return
        directory = self._folder_dir(folder)
        uids = _uid_order(directory)
        files = self._scan(directory)
        if any(key not in files for key in uids):
            # A client renamed files while we listed (readdir may then skip one); Dovecot also
            # keeps expunged names in its uidlist for a while, so a second look settles it.
            files.update({k: v for k, v in self._scan(directory).items() if k not in files})
        self._index = (folder.locator, {key: path for key, (path, _) in files.items()})
        last = 1 << 62
        order = sorted(files.items(), key=lambda kv: (uids.get(kv[0], last), kv[1][1].st_mtime, kv[0]))
        for key, (path, st) in order:
            try:
                facts = header_facts(file_header(path, st.st_size))
            except FileNotFoundError:  # renamed since the scan (new flags), or expunged
                path, st = self._scan(directory).get(key, (path, st))
                try:
                    facts = header_facts(file_header(path, st.st_size))
                except FileNotFoundError:
                    continue
            yield MessageRef(
                key=key,
                size=st.st_size,
                flags=split_name(path.name)[1],
                internal_date=datetime.fromtimestamp(st.st_mtime, UTC),  # Dovecot's INTERNALDATE
                message_id=facts.message_id,
                date=facts.date,
                subject=facts.subject,
                header_problems=facts.problems,
            )

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        directory = self._folder_dir(folder)
        rescanned = False
        for ref in refs:
            locator, paths = self._index
            path = paths.get(ref.key) if locator == folder.locator else None
            data = _read(path) if path else None
            if data is None and not rescanned:  # another folder was listed since, or the file was renamed
                self._index = (folder.locator, {key: path for key, (path, _) in self._scan(directory).items()})
                rescanned = True
                path = self._index[1].get(ref.key)
                data = _read(path) if path else None
            if data is None:
                # Expunged since it was listed, as an IMAP FETCH would skip it: the run goes on.
                self.problems.append(SourceProblem("message-gone", f"{directory} {ref.key}",
                                                   "the message was deleted after it was listed"))
                continue
            yield ref, data


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}",
                        hint="run as a user that may read the mail store (root, or the mail user)") from err


@register("maildir")
def open_maildir(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return MaildirSource(path_from_url(url), url)
