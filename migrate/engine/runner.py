"""Run a plan: read, upload and journal in overlapping stages, resumable at any kill point.

One reader thread lists and reads the source (a source connection is not shared); N upload
threads each hold their own target connection; this thread alone writes the journal, so
every batch is marked `pending` before it is sent and closed in one transaction after.
Memory stays bounded: the queues between the stages hold a few batches of capped bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from migrate.crlf import to_crlf
from migrate.engine.dedupe import OnTarget, content_sha256, id_key
from migrate.engine.journal import ItemRecord, Journal
from migrate.engine.retry import RetryPolicy
from migrate.engine.verify import flags_for
from migrate.errors import ExitCode, MigrateError, UnreachableError
from migrate.model import Folder, ItemKind, MessageRef
from migrate.plan import FolderPlan, Plan
from migrate.progress import Progress, Reporter, silent
from migrate.sources.base import Source, chunked
from migrate.targets.base import ExistingMessage, Failure, Outcome, Target, TargetFolder, UploadItem, UploadResult

SourceFactory = Callable[[], Source]
TargetFactory = Callable[[], Target]
# Seconds a round with only outcomes to write waits for more events before its commit.
LINGER = 0.03


@dataclass(frozen=True)
class Batch:
    folder: FolderPlan
    folder_id: int
    target_folder: TargetFolder
    items: list[UploadItem]
    subjects: dict[str, str | None]
    attempt: int = 1
    check_first: bool = False  # an earlier try may have landed: ask the target before sending
    job: _Job | None = None
    throttled: int = 0  # tries the service answered "wait" (not counted in `attempt`)
    durable_at: int = 0  # the journal commit that marked it pending: on the disk before it is sent
    fingerprints: dict[str, str] = field(default_factory=dict)  # key: sha256 of the bytes sent


@dataclass
class FolderOutcome:
    source: str
    target: str
    created: int = 0
    skipped: int = 0
    failed: int = 0
    already: int = 0  # closed in the journal by an earlier run
    excluded: int = 0  # left out by the plan's filters
    bytes: int = 0


@dataclass(eq=False)
class _Job:
    """One folder's move. The journal thread prepares its journal side; the reader thread opens its
    target folder (with the connection that thread alone uses) and reads it; folders overlap: the
    next is read while the last batches of the one before are still going up."""

    folder: Folder
    plan: FolderPlan
    folder_id: int
    closed: set[str]  # source keys the journal has closed
    in_flight: set[str]  # source keys a killed run left pending
    claims: tuple[set[str], list[tuple[str | None, int]]]  # journal.claims(): sent target ids, found ones
    outcome: FolderOutcome
    there: TargetFolder | None = None
    on_target: OnTarget | None = None
    batches: int = 0  # sent and not yet answered
    read_done: bool = False


@dataclass
class RunResult:
    source: str
    target: str
    journal: str
    dry_run: bool
    started: datetime
    ended: datetime | None = None
    folders: list[FolderOutcome] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    stopped: str | None = None
    source_problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.failures or self.stopped else ExitCode.OK

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.folders)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 1, "source": self.source, "target": self.target, "journal": self.journal,
            "dry_run": self.dry_run, "started": self.started.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "folders": [vars(f) for f in self.folders],
            "totals": {k: self.total(k) for k in ("created", "skipped", "failed", "already", "excluded", "bytes")},
            "failures": self.failures, "stopped": self.stopped, "source_problems": self.source_problems,
            "exit_code": int(self.exit_code),
        }


class _Stop(Exception):
    pass


class _Shared(Target):
    """A target that several reader threads use in turn: one call at a time, a listing read whole."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.capabilities = target.capabilities
        self._lock = threading.Lock()

    def ensure_folder(self, path: tuple[str, ...], source: Folder | None = None) -> TargetFolder:
        with self._lock:
            return self.target.ensure_folder(path, source)

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        with self._lock:
            return self.target.upload(folder, items)

    def existing(self, folder: TargetFolder) -> Iterator[ExistingMessage]:
        with self._lock:
            listed = list(self.target.existing(folder))  # dedupe keeps every one of them anyway
        yield from listed

    def find(self, folder: TargetFolder, message_ids: Iterable[str]) -> dict[str, list[ExistingMessage]]:
        with self._lock:
            return self.target.find(folder, message_ids)

    def read_back(self, folder: TargetFolder, target_id: str) -> bytes:
        with self._lock:
            return self.target.read_back(folder, target_id)

    def close(self) -> None:
        with self._lock:
            self.target.close()


def in_date_range(plan: Plan, ref: MessageRef) -> bool:
    when = ref.internal_date or ref.date
    if when is None:
        return True
    f = plan.filters
    if f.since and when < datetime.combine(f.since, dtime.min, UTC):
        return False
    return not (f.until and when >= datetime.combine(f.until, dtime.max, UTC))


class Runner:
    def __init__(self, plan: Plan, open_source: SourceFactory, open_target: TargetFactory, journal: Journal,
                 report: Reporter = silent, workers: int | None = None, dry_run: bool = False,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 readers: int = 2) -> None:
        self.plan = plan
        self.open_source = open_source
        self.open_target = open_target
        self.journal = journal
        self.report = report
        self.workers = workers
        self.dry_run = dry_run
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        # Folders read at once, each on its own source connection (opened only when a reader gets a
        # folder, so a one-folder POP3 maildrop, which takes one session at a time, gets one).
        self.readers = max(1, readers)
        self._problems: list[str] = []
        self._marked: list[Batch] = []  # marked pending in the open journal transaction, not yet sent
        self._target_reached = False  # once it answered, an unreachable target is waited for (a restart)
        self.result = RunResult(plan.source.url, plan.target.url, str(journal.path), dry_run, datetime.now(UTC))
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._uploads: queue.Queue[Batch | None] = queue.Queue()
        self._stop = threading.Event()
        self._pause_lock = threading.Lock()
        self._paused_until = 0.0  # monotonic: the service asked this mailbox to wait (throttling) until then
        self._in_flight = 0
        self._pending_error: BaseException | None = None
        # Bytes read but not yet uploaded, queued and in the uploaders' hands alike: the reader
        # waits while they exceed the cap, so memory stays flat on a mailbox of any size.
        self._held = 0
        self._held_cap = 16 * 1024 * 1024
        self._held_lock = threading.Condition()
        # Target ids that stand for a source message in this run (sent, or claimed from the journal):
        # a retry must not take one of them for another message.
        self._known: set[str] = set()
        self._known_lock = threading.Lock()

    # --- the whole run ---------------------------------------------------------------------

    def run(self) -> RunResult:
        run_id = self.journal.start_run()
        outcome = "interrupted"
        # Only the reader threads use this connection (folders, dedupe listings, read-backs), one at a
        # time: a connection (a sign-in) fewer than one each, and their folder work is short.
        reader_target = None if self.dry_run else _Shared(self.open_target())
        try:
            n = self.workers or (reader_target.capabilities.concurrency if reader_target else 1)
            uploaders = [threading.Thread(target=self._upload_loop, name=f"upload-{i}", daemon=True)
                         for i in range(0 if self.dry_run else n)]
            for thread in uploaders:
                thread.start()
            try:
                with self.open_source() as source:
                    self._all_folders(source, reader_target, n)
                    self.result.source_problems = [f"{p.where}: {p.detail}" for p in source.problems] + self._problems
            finally:
                for _ in uploaders:
                    self._uploads.put(None)
                for thread in uploaders:
                    thread.join()
            outcome = "stopped" if self.result.stopped else ("failed" if self.result.failures else "done")
        finally:
            if reader_target is not None:
                reader_target.close()
            self.journal.end_run(run_id, outcome)
            self.result.ended = datetime.now(UTC)
        return self.result

    # --- the folders: the reader feeds this thread, which feeds the uploaders --------------

    def _all_folders(self, source: Source, target: Target | None, uploaders: int) -> None:
        folders = {f.name: f for f in source.folders()}
        plans = iter(self.plan.included())
        jobs: queue.Queue[_Job | None] = queue.Queue()
        count = min(self.readers, max(1, len(self.plan.included())))

        def next_job() -> bool:
            """Prepare the next folder's journal side and hand it to a reader; False at the end."""
            for plan_folder in plans:
                folder = folders.get(plan_folder.source)
                if folder is None:
                    self.result.failures.append({"folder": plan_folder.source, "key": None, "subject": None,
                                                 "failure": "missing", "reason": "the folder is gone"})
                    continue
                jobs.put(self._job(folder, plan_folder))
                return True
            for _ in range(count):
                jobs.put(None)
            return False

        # Batches small enough that every uploader has one while the readers fill the next,
        # within the bytes held in memory.
        batch_bytes = max(256 * 1024, min(8 * 1024 * 1024, self._held_cap // (2 * max(uploaders, 1))))
        readers = [threading.Thread(target=self._reader, name=f"reader-{i}", daemon=True,
                                    args=(source if i == 0 else None, target, jobs, batch_bytes))
                   for i in range(count)]
        more = True
        with self.journal.together():  # the first folders' journal rows: one commit
            for _ in range(count + 1):  # a folder ahead: no reader waits for the journal
                more = more and next_job()
        for reader in readers:
            reader.start()
        reading = count
        released = False

        def handle(events: list[tuple[str, Any]], touched: list[_Job]) -> BaseException | None:
            """One round's events, inside its journal transaction; an upload thread's death, if any."""
            nonlocal more, reading
            died: BaseException | None = None
            for kind, payload in events:
                job: _Job | None = None
                if kind == "batch":
                    job = payload.job
                    self._send(payload)
                elif kind == "records":
                    job = payload[0]
                    self._close(job.outcome, job.folder_id, payload[1])
                elif kind == "uploaded":
                    job = payload[0].job
                    self._uploaded(job.outcome, payload[0], payload[1], job.on_target)
                elif kind == "started":
                    job = payload
                    self.report(Progress("upload", job.plan.source, 0, 0, total_items=None))
                elif kind == "read-done":
                    job = payload
                    job.read_done = True
                    more = more and next_job()
                elif kind == "reader-done":
                    reading -= 1
                elif kind == "died":  # an upload thread died: stop as a kill would, its batch left pending
                    died = died or payload
                elif kind == "error":
                    reading -= 1
                    self._halt()
                    self._pending_error = self._pending_error or payload
                if job is not None and job not in touched:
                    touched.append(job)
            return died

        try:
            while reading or self._in_flight:
                # Everything that is ready is handled in one journal transaction: one commit (one
                # fsync) a round instead of one per batch. Batches go to the uploaders only after
                # the commit that marks them pending.
                events = self._gather(None)
                died: BaseException | None = None
                touched: list[_Job] = []
                with self.journal.together():
                    lingers_until = time.monotonic() + LINGER
                    while True:
                        died = handle(events, touched) or died
                        # Outcomes alone are in no hurry: a kill before their commit leaves their batch
                        # pending, which the next run checks against the target. So a round with no
                        # batch to send waits a moment for more, and one commit (one fsync) covers them.
                        if self._marked or died is not None or self._stop.is_set() or not (
                                reading or self._in_flight):
                            break
                        events = self._gather(lingers_until - time.monotonic())
                        if not events:
                            break
                if died is not None:
                    raise died
                for batch in self._marked:
                    # The uploader flushes the journal up to here before sending (Journal.sync): the
                    # flush is off this thread, and one covers the rounds committed while it waited.
                    self._uploads.put(dataclasses.replace(batch, durable_at=self.journal.commits))
                self._marked.clear()
                for job in touched:
                    self._progress(job)
                if self._stop.is_set() and not released:
                    released = True  # a reader waiting for a folder must hear that there is none
                    for _ in readers:
                        jobs.put(None)
        except BaseException:
            # Never leave a reader behind (a kill, a dead uploader): it would go on reading a closed source.
            self._halt()
            for _ in readers:
                jobs.put(None)
            for reader in readers:
                reader.join()
            raise
        for reader in readers:
            reader.join()
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error

    def _gather(self, wait: float | None) -> list[tuple[str, Any]]:
        """The events that are ready, waiting for the first up to `wait` seconds (None: as long as it
        takes); none when the wait ran out."""
        if wait is not None and wait <= 0:
            return []
        try:
            events = [self._events.get(timeout=wait)]
        except queue.Empty:
            return []
        while len(events) < 256:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        return events

    def _progress(self, job: _Job) -> None:
        done = job.outcome.created + job.outcome.skipped + job.outcome.failed
        finished = job.read_done and job.batches == 0
        self.report(Progress("upload", job.plan.source, done, job.outcome.bytes,
                             total_items=done if finished else None))

    def _job(self, folder: Folder, plan_folder: FolderPlan) -> _Job:
        name = "/".join(plan_folder.target)
        outcome = FolderOutcome(plan_folder.source, name)
        self.result.folders.append(outcome)
        folder_id = self.journal.folder(plan_folder.source, name)
        closed = self.journal.closed_keys(folder_id)
        in_flight = {r.source_key for r in self.journal.pending(folder_id)}
        claims: tuple[set[str], list[tuple[str | None, int]]] = (set(), [])
        if not self.dry_run and (self.plan.dedupe or in_flight):
            sent, found = self.journal.claims(folder_id)
            with self._known_lock:
                self._known |= sent
            claims = (sent, list(found))
        return _Job(folder, plan_folder, folder_id, closed, in_flight, claims, outcome)

    def _reader(self, source: Source | None, target: Target | None, jobs: queue.Queue[_Job | None],
                batch_bytes: int) -> None:
        own_source = source is None
        own_target = target is None and not self.dry_run
        try:
            while not self._stop.is_set():
                job = jobs.get()
                if job is None:
                    break
                if source is None:
                    source = self.open_source()
                if target is None and not self.dry_run:
                    target = self.open_target()
                self._open_folder_patiently(target, job)
                self._events.put(("started", job))
                self._read_folder(source, job, batch_bytes)
                self._events.put(("read-done", job))
        except BaseException as exc:
            self._events.put(("error", exc))
            return
        finally:
            if own_source and source is not None:
                self._problems += [f"{p.where}: {p.detail}" for p in source.problems]
                source.close()
            if own_target and target is not None:
                target.close()
        self._events.put(("reader-done", None))

    def _open_folder_patiently(self, target: Target | None, job: _Job) -> None:
        """Open the folder on the target, waiting out a moment when the target cannot be reached (a
        server restart) as uploads do; the target reconnects on the next call."""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self._open_folder(target, job)
                self._target_reached = True
                return
            except UnreachableError as exc:
                # A target never reached in this run is a wrong address or port: say so at once.
                if not self._target_reached or attempt == self.retry.attempts or self._stop.is_set():
                    raise
                wait = self.retry.wait(attempt, None)
                self.report(Progress("upload", job.plan.source, 0, 0, note=f"target unreachable ({exc.message}): "
                                     f"waiting {wait:.0f} s"))
                self._stop.wait(wait)

    def _open_folder(self, target: Target | None, job: _Job) -> None:
        if target is None:
            job.there = TargetFolder(tuple(job.plan.target), "(dry run)")
            return
        job.there = target.ensure_folder(tuple(job.plan.target), job.folder)
        # The target is listed when dedupe is on, or when an earlier run was killed mid-batch.
        if self.plan.dedupe or job.in_flight:
            sent, found = job.claims
            job.on_target = OnTarget(target, job.there, claimed=sent)
            for message_id, size in found:
                job.on_target.claim(message_id, size)

    def _read_folder(self, source: Source, job: _Job, batch_bytes: int) -> None:
        folder, on_target, in_flight = job.folder, job.on_target, job.in_flight
        assert job.there is not None
        caps_limit = self.plan.filters.max_message_size
        batch_items = 100
        if not self.dry_run and on_target is not None:
            capabilities = on_target.target.capabilities
            batch_bytes = min(batch_bytes, capabilities.max_batch_bytes)
            batch_items = capabilities.max_batch_items
            # Not read at all when the target would refuse it anyway.
            caps_limit = min(caps_limit, capabilities.max_message_bytes or caps_limit)
        for refs in chunked(self._wanted(source, folder, job.closed, job.outcome), batch_bytes, batch_items):
            if self._stop.is_set():
                break
            records: list[ItemRecord] = []
            to_read: list[MessageRef] = []
            for ref in refs:
                check = on_target is not None and (self.plan.dedupe or ref.key in in_flight)
                if ref.size > caps_limit:
                    records.append(ItemRecord(ref.key, "failed", None, ref.message_id, ref.size, ref.subject,
                                              failure=Failure.TOO_LARGE.value,
                                              reason=f"{ref.size:,} bytes: over the limit of {caps_limit:,}"))
                # Where the target keeps raw bytes, sizes are compared on the CRLF bytes (after the
                # read): the listed size of an LF message would match the wrong copy.
                elif check and on_target is not None and not on_target.raw and (
                        matched := on_target.take_listed(ref)) is not None:
                    records.append(ItemRecord(ref.key, "skipped", None, ref.message_id, ref.size, ref.subject,
                                              matched, reason="already on the target"))
                else:
                    to_read.append(ref)
            items: list[UploadItem] = []
            subjects: dict[str, str | None] = {}
            fingerprints: dict[str, str] = {}
            mail = folder.kind is ItemKind.MAIL
            for ref, raw in source.read(folder, to_read):
                # Mail goes as CRLF, which IMAP demands and Exchange stores; an iCalendar or vCard
                # item goes as the source has it (a UTF-16 vCard would not survive the rewrite).
                raw = to_crlf(raw) if mail else raw
                received = ref.internal_date or ref.date
                check = on_target is not None and (self.plan.dedupe or ref.key in in_flight)
                # hashlib lets go of the GIL for large data: the hash runs beside the other threads.
                fingerprint = hashlib.sha256(raw).hexdigest()
                if check and on_target is not None and (matched := on_target.take_read(
                        ref.message_id, raw, received.timestamp() if received else None)) is not None:
                    records.append(ItemRecord(ref.key, "skipped", fingerprint, ref.message_id, len(raw), ref.subject,
                                              matched, reason="already on the target"))
                    continue
                subjects[ref.key] = ref.subject
                fingerprints[ref.key] = fingerprint
                items.append(UploadItem(ref.key, raw, flags_for(source, ref), received, ref.date, ref.message_id,
                                        crlf=mail))
            if records:
                self._events.put(("records", (job, records)))
            if items:
                self._hold(sum(len(i.raw) for i in items))
                self._events.put(("batch", Batch(job.plan, job.folder_id, job.there, items, subjects, job=job,
                                                              fingerprints=fingerprints)))

    def _halt(self) -> None:
        self._stop.set()
        with self._held_lock:
            self._held_lock.notify_all()

    def _hold(self, size: int) -> None:
        with self._held_lock:
            # A batch larger than the cap still goes, alone, once everything before it is done.
            self._held_lock.wait_for(lambda: self._held == 0 or self._held + size <= self._held_cap
                                     or self._stop.is_set())
            self._held += size

    def _release(self, size: int) -> None:
        with self._held_lock:
            self._held -= size
            self._held_lock.notify_all()

    def _wanted(self, source: Source, folder: Folder, closed: set[str], outcome: FolderOutcome) -> Iterator[MessageRef]:
        for ref in source.messages(folder):
            if ref.key in closed:
                outcome.already += 1
            elif not in_date_range(self.plan, ref):
                outcome.excluded += 1
            else:
                yield ref

    # --- journal side (this thread only) ---------------------------------------------------

    def _close(self, outcome: FolderOutcome, folder_id: int, records: list[ItemRecord]) -> None:
        if not self.dry_run:
            self.journal.close(folder_id, records)
        for r in records:
            if r.status == "skipped":
                outcome.skipped += 1
                if r.target_id:  # the copy it matched stands for it now: no retry may take it
                    with self._known_lock:
                        self._known.add(r.target_id)
            elif r.status == "failed":
                outcome.failed += 1
                self.result.failures.append({"folder": outcome.source, "key": r.source_key, "subject": r.subject,
                                             "failure": r.failure, "reason": r.reason})

    def _send(self, batch: Batch) -> None:
        if batch.job is not None:
            batch.job.batches += 1
        if not self.dry_run:
            self.journal.mark_pending(batch.folder_id, [
                ItemRecord(i.key, "pending", batch.fingerprints.get(i.key), i.message_id, len(i.raw),
                           batch.subjects.get(i.key))
                for i in batch.items])
            self._in_flight += 1
            self._marked.append(batch)  # sent once the journal's pending mark is committed
        else:  # a dry run goes through everything but the upload
            self._close_counts_dry(batch)

    def _close_counts_dry(self, batch: Batch) -> None:
        self._release(sum(len(i.raw) for i in batch.items))
        assert batch.job is not None
        batch.job.batches -= 1
        outcome = batch.job.outcome
        outcome.created += len(batch.items)
        outcome.bytes += sum(len(i.raw) for i in batch.items)

    def _uploaded(self, outcome: FolderOutcome, batch: Batch, results: list[UploadResult],
                  on_target: OnTarget | None) -> None:
        self._in_flight -= 1
        if batch.job is not None:
            batch.job.batches -= 1
        self._release(sum(len(i.raw) for i in batch.items))
        records: list[ItemRecord] = []
        again: list[UploadItem] = []
        waits: list[float] = []
        throttled = False
        for item, result in zip(batch.items, results, strict=True):
            subject = batch.subjects.get(item.key)
            base = (item.key, item.message_id, len(item.raw), subject)
            if result.outcome is Outcome.CREATED:
                records.append(ItemRecord(base[0], "done", None, base[1], base[2], base[3], result.target_id,
                                          attempts=batch.attempt, fidelity=result.fidelity))
                outcome.created += 1
                outcome.bytes += len(item.raw)
                if result.target_id:
                    with self._known_lock:
                        self._known.add(result.target_id)
            elif result.outcome is Outcome.SKIPPED:
                records.append(ItemRecord(base[0], "skipped", None, base[1], base[2], base[3], result.target_id,
                                          reason=result.reason or "already on the target", attempts=batch.attempt))
                outcome.skipped += 1
            elif result.failure is Failure.RETRY and not self._stop.is_set() and (
                    batch.attempt < self.retry.attempts if not result.retry_after
                    else batch.throttled < self.retry.throttled_attempts):
                again.append(item)
                waits.append(result.retry_after or 0.0)
                throttled = throttled or bool(result.retry_after)
            else:
                failure = result.failure or Failure.REJECTED
                reason = result.reason or failure.value
                if failure is Failure.RETRY:
                    reason += f" (gave up after {batch.attempt + batch.throttled} tries)"
                records.append(ItemRecord(base[0], "failed", None, base[1], base[2], base[3], failure=failure.value,
                                          reason=reason, attempts=batch.attempt))
                outcome.failed += 1
                self.result.failures.append({"folder": outcome.source, "key": item.key, "subject": subject,
                                             "failure": failure.value, "reason": reason})
                if failure is Failure.FATAL:
                    self.result.stopped = reason
                    self._halt()
        self.journal.close(batch.folder_id, records)  # the batch's outcomes land together
        if again:
            asked = max(waits)
            wait = self.retry.wait(batch.attempt, asked)  # a throttled batch's attempt stays: the service's wait
            if throttled:
                # The mailbox's budget is full: hold every upload lane, or fresh batches take the room the
                # moment it frees and this one meets a full budget again at its turn.
                self._pause_uploads(wait)
            self.report(Progress("upload", outcome.source, outcome.created + outcome.skipped + outcome.failed,
                                 outcome.bytes, note=f"target busy: waiting {wait:.0f} s"))
            retry = Batch(batch.folder, batch.folder_id, batch.target_folder, again, batch.subjects,
                          batch.attempt + (0 if throttled else 1), check_first=True, job=batch.job,
                          throttled=batch.throttled + (1 if throttled else 0))
            self._in_flight += 1
            if batch.job is not None:
                batch.job.batches += 1
            with self._held_lock:  # the retried items are held again until they are done
                self._held += sum(len(i.raw) for i in again)
            threading.Timer(wait, self._uploads.put, args=(retry,)).start() if wait > 0 else self._uploads.put(retry)

    # --- upload threads --------------------------------------------------------------------

    def _upload_loop(self) -> None:
        target: Target | None = None
        try:
            try:  # signed in while the readers fetch the first batch, not after it is ready
                target = self.open_target()
            except MigrateError:
                target = None  # the first batch opens it again, with its retries and its reason
            while True:
                batch = self._uploads.get()
                if batch is None:
                    return
                try:
                    if self.result.stopped:  # a fatal answer (quota, mailbox gone): what is queued would fail too
                        results = [UploadResult(i.key, Outcome.FAILED, failure=Failure.RETRY,
                                                reason=f"not sent: the run stopped ({self.result.stopped})")
                                   for i in batch.items]
                        self._events.put(("uploaded", (batch, results)))
                        continue
                    self.journal.sync(batch.durable_at)  # its pending mark on the disk before it is sent
                    if target is None:
                        target = self.open_target()
                    self._wait_out_pause(batch)
                    results = self._upload(target, batch)
                except MigrateError as exc:
                    results = [UploadResult(i.key, Outcome.FAILED, failure=Failure.RETRY, reason=exc.message)
                               for i in batch.items]
                except BaseException as exc:
                    # Anything else ends this thread. Unreported, its batch would never be answered and
                    # run() would wait for it forever: hand the error to the journal thread to raise.
                    self._events.put(("died", exc))
                    return
                self._events.put(("uploaded", (batch, results)))
        finally:
            if target is not None:
                target.close()

    def _pause_uploads(self, seconds: float) -> None:
        with self._pause_lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def _wait_out_pause(self, batch: Batch) -> None:
        """Before a send: wait while the service asked the mailbox to pause."""
        while not self._stop.is_set():
            with self._pause_lock:
                left = self._paused_until - time.monotonic()
                if left <= 0:
                    return
            self._stop.wait(min(left, 1.0))

    def _arrived(self, target: Target, batch: Batch) -> dict[str, str | None]:
        """The items of a batch that landed although their answer was lost: the first try may have
        been stored before the connection dropped. Only copies no other source message stands for
        count, and a message without Message-ID is known by its bytes (or received time on Exchange)."""
        items = batch.items
        raw = target.capabilities.keeps_raw_bytes
        fresh: list[ExistingMessage] = []
        with_id = {i.message_id for i in items if i.message_id}
        if with_id:
            fresh += [m for ms in target.find(batch.target_folder, with_id).values() for m in ms]
        if len(with_id) < len(items) or any(not i.message_id for i in items):
            fresh += [m for m in target.existing(batch.target_folder) if m.message_id is None]
        arrived: dict[str, str | None] = {}
        with self._known_lock:
            fresh = [m for m in fresh if m.target_id not in self._known]
            for item in items:
                for message in fresh:
                    if self._same(target, batch, item, message, raw):
                        fresh.remove(message)
                        self._known.add(message.target_id)
                        arrived[item.key] = message.target_id
                        break
        return arrived

    @staticmethod
    def _same(target: Target, batch: Batch, item: UploadItem, message: ExistingMessage, raw: bool) -> bool:
        if id_key(item.message_id) != id_key(message.message_id):
            return False
        if raw:
            if message.size not in (0, len(item.raw)):
                return False
            return item.message_id is not None or (
                content_sha256(target.read_back(batch.target_folder, message.target_id)) == content_sha256(item.raw))
        if item.message_id is not None:
            return True
        return (item.received is not None and message.received is not None
                and int(item.received.timestamp()) == int(message.received.timestamp()))

    def _upload(self, target: Target, batch: Batch) -> list[UploadResult]:
        items = batch.items
        arrived: dict[str, str | None] = {}
        if batch.check_first:
            arrived = self._arrived(target, batch)
        send = [i for i in items if i.key not in arrived]
        sent = iter(target.upload(batch.target_folder, send) if send else [])
        return [UploadResult(i.key, Outcome.CREATED, target_id=arrived[i.key], reason="arrived on an earlier try")
                if i.key in arrived else next(sent) for i in items]
