"""Where each source folder lands in Exchange, and which names Exchange will not take.

Roles map to Exchange's well-known folders; every other folder keeps its nesting. Exchange
compares folder names without regard to case, so two names that differ only in case collide.
"""

from __future__ import annotations

import unicodedata

from migrate.model import Folder, FolderRole

WELL_KNOWN: dict[FolderRole, str] = {
    FolderRole.INBOX: "Inbox",
    FolderRole.SENT: "Sent Items",
    FolderRole.DRAFTS: "Drafts",
    FolderRole.TRASH: "Deleted Items",
    FolderRole.JUNK: "Junk Email",
    FolderRole.ARCHIVE: "Archive",
}
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

    A user folder under the source's inbox ("INBOX/Kunder") stays under Exchange's Inbox.
    """
    if folder.role in WELL_KNOWN and folder.depth <= 2:
        return (WELL_KNOWN[folder.role],)
    path = folder.path
    if path[0] == "INBOX":
        return ("Inbox", *path[1:])
    return path


def collision_key(path: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFC", p).casefold() for p in path)
