"""What the calendar and address book sources share: an item's listing facts from its bytes.

An event's `MessageRef` carries its UID as `message_id` (a lone changed occurrence adds its
RECURRENCE-ID), its summary as `subject`, its start as `date` (midnight UTC for an all-day
event) and its last change as `internal_date`. A card carries its UID, or `sha256:` of its
normalised content when it has none, and its display name. An item that cannot be read at all
becomes a `SourceProblem` and is left out of the listing; the rest goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time

from migrate.model import FolderRole, MessageRef, SourceProblem
from migrate.pim.events import DamagedItem, parse_event
from migrate.pim.ical import CalendarNote, split_calendar
from migrate.pim.vcard import card_facts, card_fingerprint, split_vcards

EVENT_ROLE = FolderRole.CALENDAR
CONTACT_ROLE = FolderRole.CONTACTS


def _moment(value: datetime | date | None) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    return None


def event_ref(key: str, identity: str, data: bytes, where: str) -> MessageRef | SourceProblem:
    try:
        event = parse_event(data)
    except DamagedItem as exc:
        return SourceProblem("damaged-event", where, f"{identity}: {exc}; not carried")
    return MessageRef(key=key, size=len(data), internal_date=event.last_modified, message_id=identity,
                      date=_moment(event.start), subject=event.summary or None)


def event_items(data: bytes, where: str, problems: list[SourceProblem]) -> Iterator[tuple[str, bytes]]:
    """The items of one iCalendar file or resource; what is not carried goes to `problems`."""
    notes: list[CalendarNote] = []
    yield from split_calendar(data, notes)
    for note in notes:
        problem = SourceProblem(note.code, where, note.detail)
        if problem not in problems:
            problems.append(problem)


def _parse_rev(text: str | None) -> datetime | None:
    """REV as vCard writes it: `20240101T120000Z`, `2024-01-01T12:00:00Z` or a date."""
    found = re.match(r"(\d{4})-?(\d{2})-?(\d{2})(?:T(\d{2}):?(\d{2}):?(\d{2}))?", (text or "").strip())
    if not found:
        return None
    try:
        year, month, day, hour, minute, second = (int(g or 0) for g in found.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def card_ref(key: str, data: bytes) -> MessageRef:
    uid, name, rev = card_facts(data)
    return MessageRef(key=key, size=len(data), internal_date=_parse_rev(rev),
                      message_id=uid or card_fingerprint(data), subject=name or None)


def card_keys(cards: Iterable[bytes]) -> Iterator[tuple[str, bytes]]:
    """A key for each card of one address book: `uid:UID`, or `sha256:...` of its content; a
    second card with the same key gets `#2`, and so on, in file order."""
    seen: dict[str, int] = {}
    for data in cards:
        uid, _, _ = card_facts(data)
        key = f"uid:{uid}" if uid else card_fingerprint(data)
        seen[key] = seen.get(key, 0) + 1
        yield (key if seen[key] == 1 else f"{key}#{seen[key]}"), data


def split_cards(data: bytes) -> list[bytes]:
    return list(split_vcards(data))
