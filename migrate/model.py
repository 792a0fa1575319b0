"""The shared vocabulary of a migration: folders, messages and what an inventory finds."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


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
    CALENDAR = "calendar"  # a calendar (the default one, or the only one, maps to Exchange's Calendar)
    CONTACTS = "contacts"  # an address book (maps to Exchange's Contacts)
    OTHER = "other"


class ItemKind(enum.StrEnum):
    """What a folder holds. Every item of every kind travels as bytes: RFC 822 for mail, one
    iCalendar object (an event with its overrides and time zones) for events, one vCard for
    contacts, so the engine's journal, fingerprints, resume and dedupe serve all three."""

    MAIL = "mail"
    EVENT = "event"
    CONTACT = "contact"


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
    kind: ItemKind = ItemKind.MAIL
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
    For events and contacts `message_id` carries the dedupe identity: the iCalendar/vCard UID,
    or `sha256:<hex>` of the normalised content for a vCard without one; `subject` the title
    or display name; `date` the event's start.
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


# --- Calendars and contacts -------------------------------------------------------------
# A neutral form of what Exchange can hold. Parsers fill it from iCalendar/vCard (and PST);
# targets turn it into their own items. What either side cannot keep goes into `Fidelity`.


@dataclass
class Fidelity:
    """The account of one item's move: each property carried as it was, changed (and how), or
    dropped (and why). Parsers and targets both write to it; nothing is dropped silently."""

    carried: list[str] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)  # property, what became of it
    dropped: list[tuple[str, str]] = field(default_factory=list)  # property, why

    def carry(self, prop: str) -> None:
        if prop not in self.carried:
            self.carried.append(prop)

    def change(self, prop: str, how: str) -> None:
        self.changed.append((prop, how))

    def drop(self, prop: str, why: str) -> None:
        self.dropped.append((prop, why))

    def merge(self, other: Fidelity) -> None:
        for prop in other.carried:
            self.carry(prop)
        self.changed.extend(other.changed)
        self.dropped.extend(other.dropped)

    @property
    def exact(self) -> bool:
        return not self.changed and not self.dropped


class Response(enum.StrEnum):
    NONE = "none"
    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"


class AttendeeRole(enum.StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    RESOURCE = "resource"  # a room or piece of equipment
    CHAIR = "chair"


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str | None = None
    role: AttendeeRole = AttendeeRole.REQUIRED
    response: Response = Response.NONE


@dataclass(frozen=True)
class Recurrence:
    """The series' rule as iCalendar writes it (`FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=...`), with
    its exception and extra dates in the series' own time zone (date for all-day series)."""

    rrule: str
    exdates: tuple[datetime | date, ...] = ()
    rdates: tuple[datetime | date, ...] = ()


@dataclass
class Event:
    """One calendar event; a series carries its changed occurrences in `overrides`.

    Times are timezone-aware datetimes, or dates when `all_day` (then `end` is exclusive, as
    in iCalendar: a one-day event on 5 May ends on 6 May). `timezone` is the zone the
    organiser used: an IANA name, or a Windows name as Outlook writes it, as the source had it.
    """

    uid: str
    summary: str = ""
    start: datetime | date | None = None
    end: datetime | date | None = None
    all_day: bool = False
    timezone: str | None = None
    description: str | None = None
    html_description: str | None = None
    location: str | None = None
    organizer: Attendee | None = None
    attendees: list[Attendee] = field(default_factory=list)
    recurrence: Recurrence | None = None
    recurrence_id: datetime | date | None = None  # set on an override: the occurrence it replaces
    overrides: list[Event] = field(default_factory=list)
    reminder_minutes: int | None = None  # before the start; None: no reminder
    categories: list[str] = field(default_factory=list)
    status: str | None = None  # CONFIRMED | TENTATIVE | CANCELLED
    busy: str = "busy"  # busy | free | tentative | oof, from TRANSP and X-MICROSOFT-CDO-BUSYSTATUS
    sensitivity: str = "normal"  # normal | private | confidential, from CLASS
    importance: str = "normal"  # low | normal | high, from PRIORITY or X-MICROSOFT-CDO-IMPORTANCE
    attachment_uris: list[str] = field(default_factory=list)
    created: datetime | None = None
    last_modified: datetime | None = None
    sequence: int = 0
    fidelity: Fidelity = field(default_factory=Fidelity)


@dataclass(frozen=True)
class PostalAddress:
    kind: str = "home"  # home | work | other
    street: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    po_box: str = ""


@dataclass(frozen=True)
class Typed:
    """A value with its vCard type: an e-mail address, a phone number, a web page."""

    value: str
    kind: str = "other"  # home | work | mobile | fax | pager | other ...
    preferred: bool = False


@dataclass
class Contact:
    """One person (or, with `is_group`, a contact group with `members` as e-mail addresses)."""

    uid: str | None
    display_name: str = ""
    given_name: str | None = None
    family_name: str | None = None
    middle_name: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    nickname: str | None = None
    emails: list[Typed] = field(default_factory=list)
    phones: list[Typed] = field(default_factory=list)
    addresses: list[PostalAddress] = field(default_factory=list)
    urls: list[Typed] = field(default_factory=list)
    im: list[Typed] = field(default_factory=list)
    birthday: date | None = None
    anniversary: date | None = None
    company: str | None = None
    department: str | None = None
    job_title: str | None = None
    notes: str | None = None
    categories: list[str] = field(default_factory=list)
    photo: bytes | None = None
    photo_type: str | None = None  # image/jpeg, image/png
    is_group: bool = False
    members: list[str] = field(default_factory=list)
    # Members named by the UID of another card (vCard 4 MEMBER:urn:uuid:..., Apple's
    # X-ADDRESSBOOKSERVER-MEMBER), "urn:uuid:" taken off: the target resolves them to the
    # contacts it made from those cards.
    member_uids: list[str] = field(default_factory=list)
    fidelity: Fidelity = field(default_factory=Fidelity)
