"""The shared vocabulary of a migration: folders, messages and what an inventory finds."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class FolderRole(enum.StrEnum):
    """What a folder is for; Exchange has a well-known folder for each role but OTHER."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    JUNK = "junk"
    ARCHIVE = "archive"
    ALL = "all"  # Gmail's All Mail: every message again, under another name
    FLAGGED = "flagged"  # virtual folders of flagged mail (Gmail Starred)
    OTHER = "other"


class Flag(enum.StrEnum):
    """Message state that survives a move; names as IMAP writes them."""

    SEEN = "\\Seen"
    FLAGGED = "\\Flagged"
    ANSWERED = "\\Answered"
    DRAFT = "\\Draft"
    DELETED = "\\Deleted"


@dataclass(frozen=True)
class Folder:
    """A folder as its source shows it.

    `path` holds the decoded name of each level, so the hierarchy does not depend on the
    source's delimiter; `name` is the full name as the source shows it (decoded).
    """

    path: tuple[str, ...]
    delimiter: str = "/"
    role: FolderRole = FolderRole.OTHER
    selectable: bool = True
    # What the backend needs to open the folder again (IMAP's encoded name, a file path).
    locator: str = ""

    @property
    def name(self) -> str:
        return self.delimiter.join(self.path)

    @property
    def leaf(self) -> str:
        return self.path[-1]

    @property
    def depth(self) -> int:
        return len(self.path)


@dataclass(frozen=True)
class MessageRef:
    """One message in a source folder, without its body.

    `key` is stable across runs of the same source: IMAP `UIDVALIDITY:UID`, POP3 UIDL,
    files a path plus offset. Header fields are the few the inventory and dedupe need.
    """

    key: str
    size: int
    flags: frozenset[str] = frozenset()
    internal_date: datetime | None = None
    message_id: str | None = None
    date: datetime | None = None
    subject: str | None = None
    header_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceProblem:
    """Something a source could not read cleanly, said where it is."""

    code: str
    where: str
    detail: str


@dataclass
class FolderStats:
    folder: Folder
    messages: int = 0
    bytes: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    largest: list[tuple[int, str, str | None]] = field(default_factory=list)  # size, key, subject
