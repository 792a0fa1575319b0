"""Copy every folder of a source into a target, and skip what the target holds already.

No plan and no journal yet (they come with the engine): what makes a second run harmless is the
target itself. Before a folder is copied its messages are listed once, and a source message that
matches one of them is skipped: the same Message-ID and size, or, without a Message-ID, the
same size and sha256 where the target keeps raw bytes. Each message on the target matches one
source message only, so a message filed twice in the source arrives twice.

Failures are classified by the target; only RETRY is tried again, after a back-off that honours
the server's own request, and only once the target has been asked (by Message-ID) whether the
message arrived after all: a dropped connection does not tell whether the APPEND was done.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrate.crlf import to_crlf
from migrate.errors import ExitCode, UnreachableError
from migrate.mapping import target_path
from migrate.model import Folder, MessageRef
from migrate.progress import Progress, Reporter, silent
from migrate.sources.base import Source, chunked
from migrate.targets.base import (
    ExistingMessage,
    Failure,
    Outcome,
    Target,
    TargetFolder,
    UploadItem,
    UploadResult,
)


def id_key(message_id: str | None) -> str | None:
    return " ".join(message_id.split()) if message_id else None


def content_sha256(raw: bytes) -> str:
    # IMAP cannot carry NUL in a message: Dovecot keeps it but serves 0x80 instead. Hashing both
    # as 0x80 lets such a message (no Message-ID, only its content to know it by) be recognised.
    return hashlib.sha256(raw.replace(b"\0", b"\x80")).hexdigest()


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries per message, the first included
    first_wait: float = 2.0  # doubled at each try
    longest_wait: float = 900.0  # a server's own request (Exchange IMAP: about 300 s) is honoured up to this

    def wait(self, attempt: int, asked: float | None) -> float:
        backoff = self.first_wait * 2 ** (attempt - 1)
        return min(max(backoff, asked or 0.0), self.longest_wait)


@dataclass(frozen=True)
class FailedItem:
    folder: str
    key: str
    subject: str | None
    failure: Failure
    reason: str


@dataclass
class FolderCopy:
    source: str  # the folder's name in the source
    target: str  # where it went, as Exchange names it
    created: int = 0
    skipped: int = 0  # already on the target
    failed: int = 0
    bytes: int = 0  # of the messages created
    note: str | None = None  # what the target had to change

    @property
    def done(self) -> int:
        return self.created + self.skipped + self.failed


@dataclass
class CopyResult:
    source: str
    target: str
    folders: list[FolderCopy] = field(default_factory=list)
    failures: list[FailedItem] = field(default_factory=list)
    stopped: str | None = None  # why the run ended early: a failure that no further message can avoid
    source_problems: list[str] = field(default_factory=list)  # what the source could not read cleanly

    @property
    def created(self) -> int:
        return sum(f.created for f in self.folders)

    @property
    def skipped(self) -> int:
        return sum(f.skipped for f in self.folders)

    @property
    def failed(self) -> int:
        return sum(f.failed for f in self.folders)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.failures or self.stopped else ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "source": self.source,
            "target": self.target,
            "folders": [
                {"source": f.source, "target": f.target, "created": f.created, "skipped": f.skipped,
                 "failed": f.failed, "bytes": f.bytes, "note": f.note}
                for f in self.folders
            ],
            "totals": {"created": self.created, "skipped": self.skipped, "failed": self.failed},
            "failures": [
                {"folder": f.folder, "key": f.key, "subject": f.subject, "failure": f.failure.value,
                 "reason": f.reason}
                for f in self.failures
            ],
            "stopped": self.stopped,
            "source_problems": self.source_problems,
            "exit_code": int(self.exit_code),
        }


class OnTarget:
    """The messages of one target folder, as keys that source messages are matched against.

    A match takes the target message out of the pool, so it stands for one source message only.
    Where the target keeps raw bytes, a message is known by Message-ID and size, or without a
    Message-ID by size and sha256 (read back only for the few with a matching size). Where it
    rebuilds MIME (Exchange), sizes differ, so the Message-ID alone counts, or without one the
    received time to the second.
    """

    def __init__(self, target: Target, folder: TargetFolder, claimed: Collection[str] = ()) -> None:
        """`claimed`: target ids that already stand for a source message (an earlier run's journal
        says so), so they cannot stand for another copy of it."""
        self.target = target
        self.folder = folder
        self.raw = target.capabilities.keeps_raw_bytes
        self.dates = target.capabilities.keeps_internal_date
        self.by_id: Counter[tuple[str, int | None]] = Counter()
        self.no_id: dict[int, list[ExistingMessage]] = {}  # by size
        self.by_time: Counter[int] = Counter()  # received second, for targets that rebuild MIME
        self.hashes: dict[str, str] = {}  # target id -> sha256 of what it gives back
        self.known: set[str] = set()  # target ids seen or created in this run
        for message in target.existing(folder):
            if message.target_id in claimed:
                self.known.add(message.target_id)
            else:
                self.add(message)

    def claim(self, message_id: str | None, size: int) -> None:
        """Take one message out of the pool for a source message an earlier run found already there."""
        key = id_key(message_id)
        if key is not None:
            self._take((key, size if self.raw else None))

    def add(self, message: ExistingMessage) -> None:
        self.known.add(message.target_id)
        key = id_key(message.message_id)
        if key is not None:
            self.by_id[(key, message.size if self.raw else None)] += 1
        elif self.raw:
            self.no_id.setdefault(message.size, []).append(message)
        elif self.dates and message.received is not None:
            self.by_time[int(message.received.timestamp())] += 1

    def _take(self, key: tuple[str, int | None]) -> bool:
        if self.by_id[key] > 0:
            self.by_id[key] -= 1
            return True
        return False

    def take_listed(self, ref: MessageRef) -> bool:
        """Whether the message is there, judged from the listing alone (no body read)."""
        key = id_key(ref.message_id)
        if key is None:
            return False
        return self._take((key, ref.size if self.raw else None))

    def take_read(self, message_id: str | None, raw: bytes, received: float | None) -> bool:
        """Whether the message is there, judged from its CRLF bytes."""
        key = id_key(message_id)
        if key is not None:
            return self.raw and self._take((key, len(raw)))
        if not self.raw:
            second = int(received) if received is not None else None
            if second is not None and self.by_time[second] > 0:
                self.by_time[second] -= 1
                return True
            return False
        candidates = self.no_id.get(len(raw), [])
        digest = content_sha256(raw)
        for message in candidates:
            if self._hash(message) == digest:
                candidates.remove(message)
                return True
        return False

    def _hash(self, message: ExistingMessage) -> str:
        if message.sha256:
            return message.sha256
        if message.target_id not in self.hashes:
            self.hashes[message.target_id] = content_sha256(self.target.read_back(self.folder, message.target_id))
        return self.hashes[message.target_id]

    def arrived(self, items: Sequence[UploadItem]) -> set[str]:
        """The keys of items that reached the target although their upload failed (asked before a retry)."""
        found: set[str] = set()
        with_id = [item for item in items if item.message_id]
        fresh: list[ExistingMessage] = []
        if with_id:
            by_id = self.target.find(self.folder, {item.message_id for item in with_id if item.message_id})
            fresh = [m for ms in by_id.values() for m in ms if m.target_id not in self.known]
        if len(with_id) < len(items):
            fresh += [m for m in self.target.existing(self.folder)
                      if m.target_id not in self.known and m.message_id is None]
        for item in items:
            for message in fresh:
                if self._same(item, message):
                    fresh.remove(message)
                    self.known.add(message.target_id)
                    found.add(item.key)
                    break
        return found

    def _same(self, item: UploadItem, message: ExistingMessage) -> bool:
        if id_key(item.message_id) != id_key(message.message_id):
            return False
        if self.raw:
            if message.size != len(item.raw):
                return False
            return item.message_id is not None or self._hash(message) == content_sha256(item.raw)
        if item.message_id is not None:
            return True
        return (item.received is not None and message.received is not None
                and int(item.received.timestamp()) == int(message.received.timestamp()))


@dataclass
class _Run:
    source: Source
    target: Target
    report: Reporter
    retry: RetryPolicy
    sleep: Callable[[float], None]
    result: CopyResult

    def folder(self, folder: Folder) -> None:
        path = target_path(folder)
        there = self.target.ensure_folder(path, folder)
        entry = FolderCopy(folder.name, "/".join(path), note=there.note)
        self.result.folders.append(entry)
        self.report(Progress("copy", folder.name, 0, 0, note=there.note))
        on_target = OnTarget(self.target, there)
        caps = self.target.capabilities
        subjects: dict[str, str | None] = {}
        for batch in chunked(self.source.messages(folder), caps.max_batch_bytes, caps.max_batch_items):
            wanted = []
            for ref in batch:
                if on_target.take_listed(ref):
                    entry.skipped += 1
                elif caps.max_message_bytes is not None and ref.size > caps.max_message_bytes:
                    self.fail(entry, ref.key, ref.subject, Failure.TOO_LARGE,
                              f"{ref.size:,} bytes: over the target's limit of {caps.max_message_bytes:,}")
                else:
                    wanted.append(ref)
            items = []
            for ref, raw in self.source.read(folder, wanted):
                raw = to_crlf(raw)
                received = ref.internal_date or ref.date
                if on_target.take_read(ref.message_id, raw, received.timestamp() if received else None):
                    entry.skipped += 1
                    continue
                subjects[ref.key] = ref.subject
                items.append(UploadItem(ref.key, raw, ref.flags, received, ref.date, ref.message_id))
            if items:
                self.upload(there, entry, on_target, items, subjects)
            self.report(Progress("copy", folder.name, entry.done, entry.bytes))
            if self.result.stopped:
                return
        self.report(Progress("copy", folder.name, entry.done, entry.bytes, total_items=entry.done))

    def fail(self, entry: FolderCopy, key: str, subject: str | None, failure: Failure, reason: str) -> None:
        entry.failed += 1
        self.result.failures.append(FailedItem(entry.source, key, subject, failure, reason))

    def upload(self, there: TargetFolder, entry: FolderCopy, on_target: OnTarget, items: list[UploadItem],
               subjects: dict[str, str | None]) -> None:
        pending, tries = items, 0
        while pending:
            tries += 1
            again = self.send(there, entry, on_target, pending, subjects)
            pending = []
            reason = next((outcome.reason for _, outcome in again if outcome.reason), "the target asked to wait")
            asked = max((outcome.retry_after or 0.0 for _, outcome in again), default=0.0)
            while again and tries < self.retry.attempts and not self.result.stopped:
                wait = self.retry.wait(tries, asked)
                self.report(Progress("copy", entry.source, entry.done, entry.bytes,
                                     note=f"waiting {wait:.0f} s: {reason}"))
                self.sleep(wait)
                try:
                    arrived = on_target.arrived([item for item, _ in again])
                except UnreachableError as exc:  # cannot even look: wait again, as one more try
                    tries, reason, asked = tries + 1, exc.message, 0.0
                    continue
                entry.created += len(arrived)
                entry.bytes += sum(len(item.raw) for item, _ in again if item.key in arrived)
                pending = [item for item, _ in again if item.key not in arrived]
                again = []
            for item, outcome in again:
                why = "not sent again: the run stopped" if self.result.stopped else f"gave up after {tries} tries"
                self.fail(entry, item.key, subjects.get(item.key), Failure.RETRY,
                          f"{outcome.reason or 'passing failure'} ({why})")

    def send(self, there: TargetFolder, entry: FolderCopy, on_target: OnTarget, items: list[UploadItem],
             subjects: dict[str, str | None]) -> list[tuple[UploadItem, UploadResult]]:
        """Upload once and count the outcomes; the items to try again."""
        again: list[tuple[UploadItem, UploadResult]] = []
        for item, outcome in zip(items, self.target.upload(there, items), strict=True):
            if outcome.outcome is Outcome.CREATED:
                entry.created += 1
                entry.bytes += len(item.raw)
                if outcome.target_id:
                    on_target.known.add(outcome.target_id)
            elif outcome.outcome is Outcome.SKIPPED:
                entry.skipped += 1
            elif outcome.failure is Failure.RETRY:
                again.append((item, outcome))
            else:
                failure = outcome.failure or Failure.REJECTED
                self.fail(entry, item.key, subjects.get(item.key), failure, outcome.reason or failure.value)
                if failure is Failure.FATAL:
                    self.result.stopped = outcome.reason or "the target cannot take more"
        return again


def copy_mailbox(
    source: Source,
    target: Target,
    report: Reporter = silent,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CopyResult:
    """Copy every selectable folder of `source` to where mapping.target_path puts it in `target`."""
    run = _Run(source, target, report, retry or RetryPolicy(), sleep, CopyResult(source.url, target.url))
    for folder in source.folders():
        if folder.selectable:
            run.folder(folder)
        if run.result.stopped:
            break
    run.result.source_problems = [f"{p.where}: {p.detail}" for p in source.problems]
    return run.result
