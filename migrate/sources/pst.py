"""Outlook data files (.pst, and .ost where libpff reads it) as a source: `pst:PATH`, `ost:PATH`.

A POP user's whole mailbox often lives in one .pst on the PC. libpff (pypff) reads ANSI and
Unicode files read-only; this module walks the mailbox part of the folder tree (the IPM subtree
the message store points at: search folders, views, reminders and free/busy data are Outlook's
own bookkeeping) and turns every item into bytes the engine can move: mail as rebuilt RFC 822
(pst_mime), appointments as one iCalendar object each (pst_ical), contacts and distribution
lists as vCards (pst_vcard).

Roles come from the message store's and the root folder's entry ids (Sent Items, Deleted Items,
Drafts, Junk E-mail, Calendar, Contacts, whatever language the folders are named in), then from
the Inbox's own markers, then from names. A folder's kind comes from its container class.
The key of an item is its node id, which never changes within a file. Items are rebuilt one at a
time, for the listing (the size must be the exact size of the bytes read() gives) and again for
read(): nothing is held between the two, so memory stays flat whatever the file's size.
A damaged item is a SourceProblem and the listing goes on; a file libpff cannot open at all is one
UserError naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult

import pypff

from migrate.errors import UserError
from migrate.model import Flag, Folder, FolderRole, ItemKind, MessageRef, SourceProblem
from migrate.sources.base import Capabilities, Source, SourceOptions, path_from_url, register
from migrate.sources.headers import header_block, header_facts
from migrate.sources.pst_mime import PstAttachment, PstMessage, rebuild, subject
from migrate.sources.pst_props import HeapError, NamedMap, Props, embedded_props
from migrate.sources.roles import role_for

PR_MESSAGE_CLASS, PR_MESSAGE_FLAGS, PR_FLAG_STATUS, PR_LAST_VERB_EXECUTED = 0x001A, 0x0E07, 0x1090, 0x1081
PR_MESSAGE_DELIVERY_TIME, PR_CLIENT_SUBMIT_TIME, PR_CONTAINER_CLASS = 0x0E06, 0x0039, 0x3613
PR_IPM_SUBTREE, PR_IPM_OUTBOX, PR_IPM_WASTEBASKET, PR_IPM_SENTMAIL = 0x35E0, 0x35E2, 0x35E3, 0x35E4
PR_IPM_APPOINTMENT, PR_IPM_CONTACT, PR_IPM_DRAFTS, PR_ADDITIONAL_REN_ENTRYIDS = 0x36D0, 0x36D1, 0x36D7, 0x36D8
PR_PST_PASSWORD = 0x67FF
MSGFLAG_READ, MSGFLAG_UNSENT = 0x1, 0x8
FLAG_STATUS_FLAGGED = 2
VERB_REPLIED = frozenset({102, 103})  # reply to sender, reply to all

_SIGNATURE = b"!BDN"
# Data bytes per block of a node's data tree ([MS-PST] 2.2.2.8): the page less its trailer.
_BLOCK_DATA = {14: 8192 - 12, 15: 8192 - 12, 23: 8192 - 16, 36: 65536 - 24}

# Container classes that hold what the migration does not move (yet): tasks, notes, journal.
_NOT_MOVED = ("IPF.Task", "IPF.StickyNote", "IPF.Journal", "Outlook.Reminder", "IPF.Configuration")


@dataclass(frozen=True)
class _FolderInfo:
    node: int
    path: tuple[str, ...]
    kind: ItemKind
    role: FolderRole
    container: str


def _damage(err: BaseException) -> str:
    """libpff's error chain, shortened to its first cause."""
    text = str(err).strip()
    first = re.split(r"\.\s+", text)
    useful = [part for part in first if "unable" in part or "invalid" in part]
    return (useful[1] if len(useful) > 1 else useful[0] if useful else text)[:200]


def _why(err: BaseException, path: Path) -> str:
    """Why libpff could not open a file: a cut-off copy is named as such."""
    size = path.stat().st_size
    for offset in re.findall(r"offset: (\d+)", str(err)):
        if int(offset) >= size:
            return f"it is cut short (its index points to byte {int(offset):,}, but the file has {size:,} bytes)"
    return _damage(err)


def _nid(entry_id: bytes | None) -> int | None:
    """The node id at the end of a PST entry id ([MS-PST] 2.4.3.2)."""
    if not entry_id or len(entry_id) < 24:
        return None
    return int(struct.unpack_from("<I", entry_id, len(entry_id) - 4)[0])


class PstSource(Source):
    """One .pst or .ost file, opened read-only."""

    capabilities = Capabilities(flags=True, internal_dates=True, folders=True)

    def __init__(self, path: Path, url: str) -> None:
        super().__init__()
        self.url = url
        self.path = path
        self._file: Any = None
        self._folders: dict[int, Any] = {}
        self._infos: list[_FolderInfo] | None = None
        # Where each item of the last folder listed sits, so read() goes straight to it.
        self._index: tuple[int, dict[str, int]] = (-1, {})
        if not path.is_file():
            raise UserError(f"{path} is not a file", hint="pst: wants the .pst or .ost file itself")
        try:
            with path.open("rb") as fh:
                head = fh.read(12)
        except OSError as err:
            raise UserError(f"cannot read {path}: {err.strerror}", hint="check that you may read it") from err
        if head[:4] != _SIGNATURE:
            raise UserError(f"{path} is not an Outlook data file: it does not start with the PST signature",
                            hint="give a .pst or .ost file; export one from Outlook with File > Open & Export")
        version = struct.unpack_from("<H", head, 10)[0] if len(head) >= 12 else 0
        self.block_size = _BLOCK_DATA.get(version, 8192 - 16)
        handle = pypff.file()
        try:
            handle.open(str(path))
        except (OSError, ValueError) as err:
            raise UserError(f"{path} cannot be read as an Outlook data file: {_why(err, path)}; nothing in it "
                            "was readable", hint="the copy is probably truncated or damaged: copy it again, or "
                            "repair it with Outlook's scanpst.exe") from err
        self._file = handle
        try:
            self.names = NamedMap.from_entries(handle.name_to_id_map.record_sets[0].entries)
        except (OSError, AttributeError, IndexError, TypeError):
            self.names = NamedMap()
            self._note("pst-damaged", str(path), "the named-property map cannot be read: appointment and "
                       "contact details that depend on it are left out")
        try:
            found = handle.ascii_codepage
            self.codepage = found.decode("ascii") if isinstance(found, bytes) else str(found or "cp1252")
            "".encode(self.codepage)
        except (OSError, AttributeError, LookupError, UnicodeDecodeError):
            self.codepage = "cp1252"

    # --- bookkeeping ---------------------------------------------------------------------------

    def _note(self, code: str, where: str, detail: str) -> None:
        if (problem := SourceProblem(code, where, detail)) not in self.problems:
            self.problems.append(problem)

    def _props(self, record_sets: Any) -> Props:
        return Props.from_record_sets(record_sets, self.names, self.codepage)

    def close(self) -> None:
        # libpff's objects hold the file: drop every one of them before closing it.
        self._folders.clear()
        self._index = (-1, {})
        self._infos = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    # --- folders -------------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        infos = self._walk()
        return [Folder(i.path, role=i.role, kind=i.kind, locator=str(i.node),
                       selectable=True) for i in infos]

    def _walk(self) -> list[_FolderInfo]:
        if self._infos is not None:
            return self._infos
        if self._file is None:
            raise UserError(f"{self.path} is closed")
        try:
            root = self._file.get_root_folder()
            store = self._props(self._file.get_message_store().record_sets)
        except (OSError, AttributeError) as err:
            raise UserError(f"{self.path}: the folder tree cannot be read ({_damage(err)})",
                            hint="repair the file with Outlook's scanpst.exe, then try again") from err
        if store.int(PR_PST_PASSWORD):
            self._note("pst-password", str(self.path),
                       "the file has an Outlook password; it does not encrypt the data, so the file was read "
                       "without it")
        roles: dict[int, FolderRole] = {}
        for tag, role in ((PR_IPM_WASTEBASKET, FolderRole.TRASH), (PR_IPM_SENTMAIL, FolderRole.SENT)):
            if (nid := _nid(store.binary(tag))) is not None:
                roles[nid] = role
        root_props = self._props(root.record_sets)
        roles.update(self._special(root_props))
        subtree_nid = _nid(store.binary(PR_IPM_SUBTREE))
        subtree = None
        for child in self._children(root, ()):
            if child.identifier == subtree_nid:
                subtree = child
        found: list[_FolderInfo] = []
        if subtree is None:
            self._note("pst-damaged", str(self.path), "the mailbox's top folder is not marked: every folder "
                       "below the root is listed")
            self._visit(root, (), roles, found, top=True)
        else:
            self._visit(subtree, (), roles, found, top=True)
        self._infos = found
        return found

    def _special(self, props: Props) -> dict[int, FolderRole]:
        """Roles the root folder (and the Inbox) point at, by entry id."""
        roles: dict[int, FolderRole] = {}
        for tag, role in ((PR_IPM_DRAFTS, FolderRole.DRAFTS), (PR_IPM_APPOINTMENT, FolderRole.CALENDAR),
                          (PR_IPM_CONTACT, FolderRole.CONTACTS)):
            if (nid := _nid(props.binary(tag))) is not None:
                roles[nid] = role
        additional = props.binaries(PR_ADDITIONAL_REN_ENTRYIDS)
        if len(additional) > 4 and (nid := _nid(additional[4])) is not None:  # [4] is Junk E-mail
            roles[nid] = FolderRole.JUNK
        return roles

    def _children(self, folder: Any, path: tuple[str, ...]) -> list[Any]:
        children = []
        try:
            count = folder.number_of_sub_folders
        except OSError as err:
            self._note("pst-damaged", "/".join(path) or str(self.path), f"its sub-folders cannot be read "
                       f"({_damage(err)})")
            return []
        for index in range(count):
            try:
                children.append(folder.get_sub_folder(index))
            except OSError as err:
                self._note("pst-damaged", "/".join(path) or str(self.path),
                           f"sub-folder {index + 1} cannot be read ({_damage(err)})")
        return children

    def _visit(self, folder: Any, path: tuple[str, ...], roles: dict[int, FolderRole], found: list[_FolderInfo],
               top: bool = False) -> None:
        node = folder.identifier
        props = self._props(folder.record_sets)
        container = props.text(PR_CONTAINER_CLASS) or "IPF.Note"
        self._folders[node] = folder
        if top:
            # The top of the mailbox is listed only when it holds items itself (Outlook allows it).
            if self._count(folder, path) and (name := (folder.name or "").strip()):
                found.append(_FolderInfo(node, (name,), ItemKind.MAIL, FolderRole.OTHER, container))
        else:
            info = self._describe(node, path, props, container, roles)
            if info is None:
                if self._count(folder, path):
                    self._note("pst-not-moved", "/".join(path), f"a folder of {container} items: these are "
                               "not moved (only mail, calendars and contacts are)")
                return
            found.append(info)
        for child in self._children(folder, path):
            try:
                name = (child.name or "").strip() or f"folder-{child.identifier}"
                self._visit(child, (*path, name), roles, found)
            except OSError as err:
                self._note("pst-damaged", "/".join(path) or str(self.path), f"a sub-folder cannot be read "
                           f"({_damage(err)}); it and the folders below it are not listed")

    def _describe(self, node: int, path: tuple[str, ...], props: Props, container: str,
                  roles: dict[int, FolderRole]) -> _FolderInfo | None:
        if container.startswith(_NOT_MOVED):
            return None
        if container.startswith("IPF.Appointment"):
            return _FolderInfo(node, path, ItemKind.EVENT, FolderRole.CALENDAR, container)
        if container.startswith("IPF.Contact"):
            return _FolderInfo(node, path, ItemKind.CONTACT, FolderRole.CONTACTS, container)
        role = roles.get(node)
        if role in (FolderRole.CALENDAR, FolderRole.CONTACTS):
            role = None  # marked so, but holding mail by its class: a mail folder
        if role is None and len(path) == 1 and PR_IPM_APPOINTMENT in props:
            role = FolderRole.INBOX  # Outlook keeps the special folders' entry ids on the Inbox too
            self._special_from_inbox(props, roles)
        if role is None:
            role = role_for(path)
            if role in (FolderRole.CALENDAR, FolderRole.CONTACTS):
                role = FolderRole.OTHER
        return _FolderInfo(node, path, ItemKind.MAIL, role, container)

    def _special_from_inbox(self, props: Props, roles: dict[int, FolderRole]) -> None:
        for nid, role in self._special(props).items():
            roles.setdefault(nid, role)

    def _count(self, folder: Any, path: tuple[str, ...]) -> int:
        try:
            return int(folder.number_of_sub_messages)
        except OSError as err:
            self._note("pst-damaged", "/".join(path), f"its items cannot be counted ({_damage(err)})")
            return 0

    def _folder(self, folder: Folder) -> Any:
        self._walk()
        try:
            return self._folders[int(folder.locator)]
        except (KeyError, ValueError):
            raise UserError(f"{folder.name!r} is not a folder of {self.url}") from None

    # --- items ---------------------------------------------------------------------------------

    def _items(self, folder: Folder, wanted: set[str] | None = None) -> Iterator[tuple[str, Any]]:
        handle = self._folder(folder)
        node, known = self._index
        if wanted is not None and node == handle.identifier and wanted <= known.keys():
            positions: Sequence[int] = sorted(known[key] for key in wanted)
        else:
            positions = range(self._count(handle, folder.path))
            known = {}
            self._index = (handle.identifier, known)
        for index in positions:
            try:
                item = handle.get_sub_message(index)
                key = str(item.identifier)
            except OSError as err:
                self._note("pst-damaged-item", f"{folder.name} item {index + 1}", f"cannot be read "
                           f"({_damage(err)}); it is not listed")
                continue
            known.setdefault(key, index)
            if wanted is None or key in wanted:
                yield key, item

    def _convert(self, folder: Folder, key: str, item: Any) -> tuple[MessageRef, bytes] | None:
        where = f"{folder.name} item {key}"
        try:
            props = self._props(item.record_sets)
            item_class = props.text(PR_MESSAGE_CLASS) or "IPM.Note"
            notes: list[str] = []
            if folder.kind is ItemKind.EVENT:
                ref, raw = self._event(props, item, item_class, key, notes, where)
            elif folder.kind is ItemKind.CONTACT:
                ref, raw = self._contact(props, item, item_class, key, notes, where)
            else:
                ref, raw = self._mail(props, item, key, notes)
        except _NotMoved as why:
            self._note("pst-not-moved", where, str(why))
            return None
        except (OSError, ValueError, HeapError, struct.error, UnicodeError) as err:
            self._note("pst-damaged-item", where, f"cannot be read ({_damage(err)}); it is not moved")
            return None
        label = f"{where} ({ref.subject})" if ref.subject else where
        for note in notes:
            self._note("pst-fidelity", label, note)
        return ref, raw

    def _mail(self, props: Props, item: Any, key: str, notes: list[str]) -> tuple[MessageRef, bytes]:
        raw = rebuild(self._message(props, item, key), notes)
        facts = header_facts(header_block(raw))
        flags: set[str] = set()
        message_flags = props.int(PR_MESSAGE_FLAGS) or 0
        if message_flags & MSGFLAG_READ:
            flags.add(Flag.SEEN)
        if message_flags & MSGFLAG_UNSENT:
            flags.add(Flag.DRAFT)
        if props.int(PR_FLAG_STATUS) == FLAG_STATUS_FLAGGED:
            flags.add(Flag.FLAGGED)
        if props.int(PR_LAST_VERB_EXECUTED) in VERB_REPLIED:
            flags.add(Flag.ANSWERED)
        ref = MessageRef(key=key, size=len(raw), flags=frozenset(flags),
                         internal_date=props.time(PR_MESSAGE_DELIVERY_TIME),
                         message_id=facts.message_id, date=props.time(PR_CLIENT_SUBMIT_TIME) or facts.date,
                         subject=subject(props) if subject(props) is not None else facts.subject,
                         header_problems=facts.problems)
        return ref, raw

    def _message(self, props: Props, item: Any, key: str) -> PstMessage:
        recipients: list[Props] = []
        rows = item.recipients if hasattr(item, "recipients") else None
        if rows is not None:
            recipients = [self._props([row]) for row in rows.record_sets]
        attachments = [self._attachment(a, f"{key}.{n}") for n, a in enumerate(self._attachments(item))]
        return PstMessage(props, recipients, attachments, key)

    @staticmethod
    def _attachments(item: Any) -> list[Any]:
        count = item.number_of_attachments if hasattr(item, "number_of_attachments") else 0
        return [item.get_attachment(index) for index in range(count)]

    def _attachment(self, attachment: Any, key: str) -> PstAttachment:
        props = self._props(attachment.record_sets)

        def read() -> bytes:
            size = attachment.size
            attachment.seek_offset(0, 0)
            return bytes(attachment.read_buffer(size)) if size else b""

        embedded: Callable[[], PstMessage] | None = None
        if props.int(0x3705) == 5:
            def embedded() -> PstMessage:
                inner = embedded_props(read(), self.names, self.block_size, self.codepage)
                return PstMessage(inner, None, None, key)
        return PstAttachment(props, read, embedded)

    def _event(self, props: Props, item: Any, item_class: str, key: str, notes: list[str],
               where: str) -> tuple[MessageRef, bytes]:
        from migrate.sources.pst_ical import appointment_ics

        if not item_class.upper().startswith("IPM.APPOINTMENT"):
            raise _NotMoved(f"a {item_class} item in a calendar folder: only appointments are moved")
        exceptions = [self._attachment(a, f"{key}.{n}") for n, a in enumerate(self._attachments(item))]
        event = appointment_ics(props, exceptions, self._recipients(item), notes)
        return MessageRef(key=key, size=len(event.raw), message_id=event.uid, date=event.start,
                          subject=event.summary), event.raw

    def _recipients(self, item: Any) -> list[Props]:
        rows = item.recipients if hasattr(item, "recipients") else None
        return [] if rows is None else [self._props([row]) for row in rows.record_sets]

    def _contact(self, props: Props, item: Any, item_class: str, key: str, notes: list[str],
                 where: str) -> tuple[MessageRef, bytes]:
        from migrate.sources.pst_vcard import contact_vcard, group_vcard

        upper = item_class.upper()
        if upper.startswith("IPM.DISTLIST"):
            raw, name = group_vcard(props, notes)
        elif upper.startswith("IPM.CONTACT"):
            photo = self._contact_photo(item)
            raw, name = contact_vcard(props, photo, notes)
        else:
            raise _NotMoved(f"a {item_class} item in a contacts folder: only contacts and distribution lists "
                            "are moved")
        return MessageRef(key=key, size=len(raw), message_id="sha256:" + hashlib.sha256(raw).hexdigest(),
                          subject=name), raw

    def _contact_photo(self, item: Any) -> bytes | None:
        """Outlook keeps a contact's picture as an attachment flagged PR_ATTACHMENT_CONTACTPHOTO."""
        for attachment in self._attachments(item):
            props = self._props(attachment.record_sets)
            if props.bool(0x7FFF):
                return bytes(attachment.read_buffer(attachment.size))
        return None

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        for key, item in self._items(folder):
            converted = self._convert(folder, key, item)
            if converted is not None:
                yield converted[0]

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        wanted = {ref.key for ref in refs}
        found: dict[str, bytes] = {}
        # Items are found by walking the folder once (libpff has no lookup by node id); each is
        # given back in the order asked, so at most the batch asked for is held.
        for key, item in self._items(folder, wanted):
            converted = self._convert(folder, key, item)
            if converted is not None:
                found[key] = converted[1]
        for ref in refs:
            if ref.key in found:
                yield ref, found.pop(ref.key)
            else:
                self._note("message-gone", f"{folder.name} item {ref.key}", "listed before but not readable now")


class _NotMoved(Exception):
    """An item of a kind the migration does not move."""


@register("pst", "ost")
def open_pst(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return PstSource(path_from_url(url), url)
