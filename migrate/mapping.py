"""Where each source folder lands in Exchange, and which names Exchange will not take.

Roles map to Exchange's well-known folders; every other folder keeps its nesting. Exchange
compares folder names without regard to case, so two names that differ only in case collide.
Calendars and address books go into Exchange's Calendar and Contacts: the default one (or the
first) into the folder itself, every other one into a sub-folder named after it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from migrate.model import Folder, FolderRole, ItemKind

WELL_KNOWN: dict[FolderRole, str] = {
    FolderRole.INBOX: "Inbox",
    FolderRole.SENT: "Sent Items",
    FolderRole.DRAFTS: "Drafts",
    FolderRole.TRASH: "Deleted Items",
    FolderRole.JUNK: "Junk Email",
    FolderRole.ARCHIVE: "Archive",
}
# Exchange's own folders for events and contacts, and the role that marks a source's default one.
PIM_HOME: dict[ItemKind, tuple[str, FolderRole]] = {
    ItemKind.EVENT: ("Calendar", FolderRole.CALENDAR),
    ItemKind.CONTACT: ("Contacts", FolderRole.CONTACTS),
}
# Exchange's top-level folders that hold no mail: a mail folder of that name must not land in them.
NOT_FOR_MAIL = frozenset({"calendar", "contacts", "tasks", "notes", "journal"})
MAX_NAME = 255  # Exchange's limit on a folder's display name


def name_problem(name: str) -> str | None:
    """Why Exchange would refuse this folder name, or None."""
    if not name.strip():
        return "empty name"
    if len(name) > MAX_NAME:
        return f"longer than {MAX_NAME} characters"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "control characters"
    if name != name.strip():
        return "leading or trailing spaces"
    return None


def target_path(folder: Folder) -> tuple[str, ...]:
    """The folder's path in Exchange: a well-known folder for a role, else its own nesting.

    A user folder under the source's inbox ("INBOX/Kunder") stays under Exchange's Inbox. A
    calendar or address book, taken alone, is the default one: see `target_paths` for several.
    """
    if folder.kind in PIM_HOME:
        return (PIM_HOME[folder.kind][0],)
    if folder.role in WELL_KNOWN and folder.depth <= 2:
        return (WELL_KNOWN[folder.role],)
    path = folder.path
    if path[0] == "INBOX":
        return ("Inbox", *path[1:])
    if path[0].casefold() in NOT_FOR_MAIL:
        return (f"{path[0]} (mail)", *path[1:])
    return path


def target_paths(folders: Iterable[Folder]) -> dict[str, tuple[str, ...]]:
    """Each folder's path in Exchange, by source name. Of several calendars (address books) the one
    the source marks as its default (role CALENDAR/CONTACTS) goes into Calendar (Contacts), or the
    first listed when none or several are marked; the others into sub-folders named after them."""
    listed = list(folders)
    paths = {f.name: target_path(f) for f in listed}
    for kind, (home, role) in PIM_HOME.items():
        mine = [f for f in listed if f.kind is kind and f.selectable]
        if len(mine) < 2:
            continue
        marked = [f for f in mine if f.role is role]
        default = marked[0] if len(marked) == 1 else mine[0]
        for folder in mine:
            if folder is not default:
                paths[folder.name] = (home, folder.leaf)
    return paths


def collision_key(path: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFC", p).casefold() for p in path)
