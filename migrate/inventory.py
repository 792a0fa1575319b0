"""What a mailbox holds, and what will cause trouble in the move: the first look at any source."""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from migrate.mapping import collision_key, name_problem, target_paths
from migrate.model import Folder, FolderRole, ItemKind, MessageRef
from migrate.progress import Progress, Reporter, silent
from migrate.sources.base import Source

MB = 1024 * 1024
EXCHANGE_DEFAULT_LIMIT = 35 * MB  # a mailbox's default receive size; an admin can raise it
EXCHANGE_ABSOLUTE_LIMIT = 150 * MB  # nothing larger can be stored in Exchange Online
LARGEST_KEPT = 10


@dataclass(frozen=True)
class InventoryWarning:
    code: str
    folder: str | None
    message: str | None  # the source key of the message it is about
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "folder": self.folder, "message": self.message, "detail": self.detail}


@dataclass(frozen=True)
class LargeItem:
    size: int
    folder: str
    key: str
    subject: str | None


@dataclass
class FolderInventory:
    folder: Folder
    messages: int = 0
    bytes: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    largest: LargeItem | None = None
    years: Counter[int] = field(default_factory=Counter)  # messages by year received: the report's chart

    def add(self, ref: MessageRef) -> None:
        self.messages += 1
        self.bytes += ref.size
        when = ref.internal_date or ref.date
        if when is not None:
            self.years[when.year] += 1
            if self.oldest is None or when < self.oldest:
                self.oldest = when
            if self.newest is None or when > self.newest:
                self.newest = when
        if self.largest is None or ref.size > self.largest.size:
            self.largest = LargeItem(ref.size, self.folder.name, ref.key, ref.subject)


@dataclass
class Inventory:
    source: str
    folders: list[FolderInventory] = field(default_factory=list)
    warnings: list[InventoryWarning] = field(default_factory=list)
    largest: list[LargeItem] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(f.messages for f in self.folders)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.folders)

    def as_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        def item(value: LargeItem | None) -> dict[str, Any] | None:
            if value is None:
                return None
            return {"size": value.size, "folder": value.folder, "key": value.key, "subject": value.subject}

        targets = target_paths(f.folder for f in self.folders)
        return {
            "version": 1,
            "source": self.source,
            "folders": [
                {
                    "name": f.folder.name,
                    "path": list(f.folder.path),
                    "role": f.folder.role.value,
                    "kind": f.folder.kind.value,
                    "target": "/".join(targets[f.folder.name]),
                    "messages": f.messages,
                    "bytes": f.bytes,
                    "oldest": when(f.oldest),
                    "newest": when(f.newest),
                    "largest": item(f.largest),
                }
                for f in self.folders
            ],
            "totals": {"messages": self.messages, "bytes": self.bytes, "folders": len(self.folders)},
            "largest": [item(i) for i in self.largest],
            "warnings": [w.as_json() for w in self.warnings],
        }


def _folder_warnings(folders: list[Folder]) -> list[InventoryWarning]:
    warnings = []
    seen: dict[tuple[str, ...], Folder] = {}
    targets = target_paths(folders)
    for folder in folders:
        if not folder.selectable:
            continue
        if any("/" in part for part in folder.path):
            warnings.append(InventoryWarning("folder-slash", folder.name, None,
                                    "a '/' in a folder name: Microsoft's IMAP migration skips such "
                                    "folders; we rename the level with '_'"))
        for part in folder.path:
            problem = name_problem(part)
            if problem:
                warnings.append(InventoryWarning("folder-name-rejected", folder.name, None,
                                        f"Exchange refuses the name {part!r}: {problem}"))
        target = targets[folder.name]
        key = collision_key(target)
        if key in seen:
            other = seen[key]
            warnings.append(InventoryWarning("folder-collision", folder.name, None,
                                    f"lands in the same Exchange folder {'/'.join(target)!r} as "
                                    f"{other.name!r}; their messages would be merged"))
        else:
            seen[key] = folder
        if folder.role is FolderRole.ALL:
            warnings.append(InventoryWarning("all-mail-folder", folder.name, None,
                                    "holds every message of the other folders again (Gmail's All "
                                    "Mail); copying it would duplicate the mailbox"))
    return warnings


def take_inventory(source: Source, report: Reporter = silent) -> Inventory:
    """List every folder and message of a source once, without reading message bodies."""
    inventory = Inventory(source=source.url)
    folders = source.folders()
    inventory.warnings.extend(_folder_warnings(folders))
    largest: list[tuple[int, int, LargeItem]] = []
    # First place of each Message-ID; later places only for the IDs seen twice, so memory
    # grows with the mailbox's distinct IDs, not with lists per message.
    first: dict[str, tuple[str, str]] = {}
    again: dict[str, list[tuple[str, str]]] = defaultdict(list)
    counter = 0
    kinds = {folder.name: folder.kind for folder in folders}
    for folder in folders:
        if not folder.selectable:
            continue
        entry = FolderInventory(folder)
        inventory.folders.append(entry)
        report(Progress("inventory", folder.name, 0, 0))
        for ref in source.messages(folder):
            entry.add(ref)
            counter += 1
            item = LargeItem(ref.size, folder.name, ref.key, ref.subject)
            if len(largest) < LARGEST_KEPT:
                heapq.heappush(largest, (ref.size, counter, item))
            else:
                heapq.heappushpop(largest, (ref.size, counter, item))
            inventory.warnings.extend(_message_warnings(folder, ref))
            if ref.message_id:
                if ref.message_id in first:
                    again[ref.message_id].append((folder.name, ref.key))
                else:
                    first[ref.message_id] = (folder.name, ref.key)
            if entry.messages % 500 == 0:
                report(Progress("inventory", folder.name, entry.messages, entry.bytes))
        report(Progress("inventory", folder.name, entry.messages, entry.bytes, total_items=entry.messages))
    for message_id, later in again.items():
        places = [first[message_id], *later]
        if places:
            folders_of = Counter(name for name, _ in places)
            code, what = _DUPLICATE.get(kinds.get(places[0][0], ItemKind.MAIL), _DUPLICATE[ItemKind.MAIL])
            inventory.warnings.append(InventoryWarning(
                code, places[0][0], places[0][1],
                f"{message_id} is on {len(places)} {what} ("
                + ", ".join(f"{n} in {name}" for name, n in folders_of.items())
                + "); duplicates within a folder are told apart by size and content",
            ))
    for problem in source.problems:
        inventory.warnings.append(InventoryWarning(problem.code, None, None, f"{problem.where}: {problem.detail}"))
    inventory.largest = [item for _, _, item in sorted(largest, key=lambda t: (-t[0], t[1]))]
    return inventory


def _message_warnings(folder: Folder, ref: MessageRef) -> list[InventoryWarning]:
    warnings = []
    if ref.size > EXCHANGE_ABSOLUTE_LIMIT:
        warnings.append(InventoryWarning("too-large", folder.name, ref.key,
                                f"{ref.size / MB:.1f} MB: over Exchange Online's absolute limit of "
                                "150 MB; it cannot be moved"))
    elif ref.size > EXCHANGE_DEFAULT_LIMIT:
        warnings.append(InventoryWarning("over-default-limit", folder.name, ref.key,
                                f"{ref.size / MB:.1f} MB: over the default 35 MB; raise it with "
                                "Set-Mailbox -MaxReceiveSize 150MB before the move"))
    if not ref.message_id and folder.kind is ItemKind.MAIL:  # events and cards always carry an identity
        warnings.append(InventoryWarning("no-message-id", folder.name, ref.key,
                                "no Message-ID: recognised on the target by content instead"))
    for problem in ref.header_problems:
        code = "undecodable-header" if problem == "undecodable-header" else problem
        warnings.append(InventoryWarning(code, folder.name, ref.key, _PROBLEM_TEXT.get(problem, problem)))
    return warnings


# The same identity twice: a Message-ID for mail, a UID for events and cards.
_DUPLICATE = {
    ItemKind.MAIL: ("duplicate-message-id", "messages"),
    ItemKind.EVENT: ("duplicate-uid", "events"),
    ItemKind.CONTACT: ("duplicate-uid", "contacts"),
}

_PROBLEM_TEXT = {
    "8bit-header": "raw 8-bit bytes in a header (not RFC 2047 encoded); read as UTF-8",
    "undecodable-header": "a header that cannot be decoded; moved as it is",
    "bad-date": "a Date header that cannot be read",
}
