"""Verification: reconcile each folder of the source with its folder on the target.

Exchange rebuilds MIME (DOMAIN.md, "What Exchange gives back"), so against a target that does
not keep raw bytes a message is matched by Message-ID and compared by received date and read
state; content hashes are compared only where the target keeps the bytes (Dovecot).

Events and contacts are matched by their identity (the UID, or a vCard's content fingerprint)
and compared by title (display name) and, for events, start and end as instants.
"""

from __future__ import annotations

import enum
import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from migrate.model import Folder, ItemKind, MessageRef
from migrate.progress import Progress, Reporter, silent
from migrate.sources.base import Source, chunked
from migrate.targets.base import ExistingMessage, Target

DATE_TOLERANCE = 1.0  # seconds: IMAP INTERNALDATE and Exchange keep whole seconds
FLAGS_COMPARED = ("\\Seen", "\\Flagged")  # what every target keeps; \Answered has no EWS/Graph property


class Verdict(enum.StrEnum):
    MATCH = "match"
    MISSING = "missing on target"
    EXTRA = "extra on target"
    DIFFERS = "differs"


@dataclass(frozen=True)
class Difference:
    verdict: Verdict
    key: str | None  # source key
    target_id: str | None
    message_id: str | None
    detail: str


@dataclass
class FolderCheck:
    source: str
    target: str
    source_count: int = 0
    target_count: int = 0
    matched: int = 0
    excluded: int = 0  # not meant to move (filters, too large): not counted as missing
    differences: list[Difference] = field(default_factory=list)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for d in self.differences if d.verdict is verdict)

    @property
    def verdict(self) -> Verdict:
        for verdict in (Verdict.MISSING, Verdict.DIFFERS, Verdict.EXTRA):
            if self.count(verdict):
                return verdict
        return Verdict.MATCH


@dataclass
class Verification:
    folders: list[FolderCheck] = field(default_factory=list)
    hashes_compared: bool = False

    @property
    def ok(self) -> bool:
        return all(f.count(Verdict.MISSING) == 0 and f.count(Verdict.DIFFERS) == 0 for f in self.folders)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "ok": self.ok,
            "hashes_compared": self.hashes_compared,
            "folders": [
                {
                    "source": f.source, "target": f.target, "verdict": f.verdict.value,
                    "source_count": f.source_count, "target_count": f.target_count, "matched": f.matched,
                    "excluded": f.excluded, "missing": f.count(Verdict.MISSING), "extra": f.count(Verdict.EXTRA),
                    "differs": f.count(Verdict.DIFFERS),
                    "differences": [
                        {"verdict": d.verdict.value, "key": d.key, "target_id": d.target_id,
                         "message_id": d.message_id, "detail": d.detail}
                        for d in f.differences
                    ],
                }
                for f in self.folders
            ],
        }


def flags_for(source: Source, ref: MessageRef) -> frozenset[str]:
    """The flags a message should carry on the target. A source without flags (POP3, .eml) held
    mail that its user had already downloaded and read, so it arrives read, not as 10,000 new."""
    return ref.flags if source.capabilities.flags else frozenset({"\\Seen"})


def _norm_id(message_id: str | None) -> str | None:
    return " ".join(message_id.split()) if message_id else None


def _crlf_sha256(raw: bytes) -> str:
    body = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return hashlib.sha256(body.replace(b"\0", b"\x80")).hexdigest()


def _close_in_time(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return True  # nothing to compare
    return abs((a - b).total_seconds()) <= DATE_TOLERANCE


def check_folder(
    source: Source,
    folder: Folder,
    target: Target,
    target_folder: Any,
    target_name: str,
    excluded: Callable[[MessageRef], bool] = lambda ref: False,
    report: Reporter = silent,
) -> FolderCheck:
    """Compare one folder. `excluded` says which source messages were never meant to move."""
    if folder.kind is not ItemKind.MAIL:
        return _check_items(source, folder, target, target_folder, target_name, excluded, report)
    check = FolderCheck(folder.name, target_name)
    raw = target.capabilities.keeps_raw_bytes
    on_target: dict[str | None, list[ExistingMessage]] = defaultdict(list)
    for message in target.existing(target_folder):
        check.target_count += 1
        on_target[_norm_id(message.message_id)].append(message)
    wanted: list[MessageRef] = []
    for ref in source.messages(folder):
        check.source_count += 1
        if excluded(ref):
            check.excluded += 1
        else:
            wanted.append(ref)
    report(Progress("verify", folder.name, 0, 0, total_items=None))
    for batch in chunked(wanted, 8 * 1024 * 1024):
        # Bodies are read only where they are compared: for hashes, or to know a message without an ID.
        need_bytes = [r for r in batch if raw or r.message_id is None]
        bodies = dict(((r.key, b) for r, b in source.read(folder, need_bytes))) if need_bytes else {}
        for ref in batch:
            _match(check, ref, bodies.get(ref.key), on_target, target, target_folder, raw, flags_for(source, ref))
    for messages in on_target.values():
        for message in messages:
            check.differences.append(Difference(Verdict.EXTRA, None, message.target_id, message.message_id,
                                                "on the target but not in the source"))
    return check


def _match(check: FolderCheck, ref: MessageRef, body: bytes | None, on_target: dict[str | None, list[ExistingMessage]],
           target: Target, target_folder: Any, raw: bool, expected_flags: frozenset[str]) -> None:
    candidates = on_target.get(_norm_id(ref.message_id), [])
    received = ref.internal_date or ref.date
    digest = _crlf_sha256(body) if body is not None else None
    best: ExistingMessage | None = None
    for message in candidates:
        if raw and digest is not None:
            their = message.sha256 or _crlf_sha256(target.read_back(target_folder, message.target_id))
            if their == digest:
                best = message
                break
        elif ref.message_id is None:
            if _close_in_time(received, message.received):
                best = message
                break
        else:
            best = best or message
            if _close_in_time(received, message.received):
                best = message
                break
    if best is None:
        check.differences.append(Difference(Verdict.MISSING, ref.key, None, ref.message_id,
                                            "in the source but not on the target" if not candidates else
                                            "a message with this Message-ID is there, but not with this content"))
        return
    candidates.remove(best)
    problems = []
    if not _close_in_time(received, best.received):
        problems.append(f"received {best.received} instead of {received}")
    for flag in FLAGS_COMPARED:
        if (flag in expected_flags) != (flag in best.flags):
            problems.append(f"{flag} {'missing' if flag in expected_flags else 'added'}")
    if raw and body is not None and best.size:
        sent = len(body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        if best.size != sent:
            problems.append(f"size {best.size} instead of {sent}")
    if problems:
        check.differences.append(Difference(Verdict.DIFFERS, ref.key, best.target_id, ref.message_id,
                                            "; ".join(problems)))
    else:
        check.matched += 1


# --- events and contacts ----------------------------------------------------------------------------


def _instant(value: datetime | date | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _day(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _times(raw: bytes) -> tuple[datetime | None, datetime | None] | None:
    """An event's start and end as instants, read from its iCalendar bytes; None when they cannot be read."""
    from migrate.pim.ical import parse_event  # the parser is needed only when calendars are verified

    try:
        event = parse_event(raw)
    except Exception:  # a file the run could not move either: nothing to compare it by
        return None
    if event.start is None:
        return None
    end = event.end
    if end is None:
        end = date.fromordinal(_day(event.start).toordinal() + 1) if event.all_day else event.start
    return _instant(event.start), _instant(end)


def _same_text(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").split()) == " ".join((b or "").split())


def _check_items(source: Source, folder: Folder, target: Target, target_folder: Any, target_name: str,
                 excluded: Callable[[MessageRef], bool], report: Reporter) -> FolderCheck:
    check = FolderCheck(folder.name, target_name)
    on_target: dict[str | None, list[ExistingMessage]] = defaultdict(list)
    for item in target.existing(target_folder):
        check.target_count += 1
        on_target[_norm_id(item.message_id)].append(item)
    wanted: list[MessageRef] = []
    for ref in source.messages(folder):
        check.source_count += 1
        if excluded(ref):
            check.excluded += 1
        else:
            wanted.append(ref)
    report(Progress("verify", folder.name, 0, 0, total_items=None))
    events = folder.kind is ItemKind.EVENT
    for batch in chunked(wanted, 8 * 1024 * 1024):
        bodies = {r.key: b for r, b in source.read(folder, batch)} if events else {}
        for ref in batch:
            candidates = on_target.get(_norm_id(ref.message_id), [])
            if not candidates:
                check.differences.append(Difference(Verdict.MISSING, ref.key, None, ref.message_id,
                                                    "in the source but not on the target"))
                continue
            there = candidates.pop(0)
            problems = []
            if ref.subject and not _same_text(ref.subject, there.subject):
                problems.append(f"{'title' if events else 'name'} {there.subject!r} instead of {ref.subject!r}")
            times = _times(bodies[ref.key]) if ref.key in bodies else None
            if times is not None:
                for label, want, got in (("start", times[0], there.received), ("end", times[1], there.end)):
                    if want is not None and got is not None and not _close_in_time(want, got):
                        problems.append(f"{label} {got:%Y-%m-%d %H:%M} UTC instead of {want:%Y-%m-%d %H:%M} UTC")
            if problems:
                check.differences.append(Difference(Verdict.DIFFERS, ref.key, there.target_id, ref.message_id,
                                                    "; ".join(problems)))
            else:
                check.matched += 1
    for items in on_target.values():
        for item in items:
            check.differences.append(Difference(Verdict.EXTRA, None, item.target_id, item.message_id,
                                                "on the target but not in the source"))
    return check
