"""Run a plan: read, upload and journal in overlapping stages, resumable at any kill point.

One reader thread lists and reads the source (a source connection is not shared); N upload
threads each hold their own target connection; this thread alone writes the journal, so
every batch is marked `pending` before it is sent and closed in one transaction after.
Memory stays bounded: the queues between the stages hold a few batches of capped bytes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from migrate.copy import OnTarget, RetryPolicy, content_sha256, id_key, to_crlf
from migrate.engine.journal import ItemRecord, Journal
from migrate.engine.verify import flags_for
from migrate.errors import ExitCode, MigrateError
from migrate.model import Folder, MessageRef
from migrate.plan import FolderPlan, Plan
from migrate.progress import Progress, Reporter, silent
from migrate.sources.base import Source, chunked
from migrate.targets.base import ExistingMessage, Failure, Outcome, Target, TargetFolder, UploadItem, UploadResult

SourceFactory = Callable[[], Source]
TargetFactory = Callable[[], Target]


@dataclass(frozen=True)
class Batch:
    folder: FolderPlan
    folder_id: int
    target_folder: TargetFolder
    items: list[UploadItem]
    subjects: dict[str, str | None]
    attempt: int = 1
    check_first: bool = False  # an earlier try may have landed: ask the target before sending


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
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.plan = plan
        self.open_source = open_source
        self.open_target = open_target
        self.journal = journal
        self.report = report
        self.workers = workers
        self.dry_run = dry_run
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.result = RunResult(plan.source.url, plan.target.url, str(journal.path), dry_run, datetime.now(UTC))
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._uploads: queue.Queue[Batch | None] = queue.Queue()
        self._stop = threading.Event()
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
        main_target = None if self.dry_run else self.open_target()
        try:
            n = self.workers or (main_target.capabilities.concurrency if main_target else 1)
            uploaders = [threading.Thread(target=self._upload_loop, name=f"upload-{i}", daemon=True)
                         for i in range(0 if self.dry_run else n)]
            for thread in uploaders:
                thread.start()
            try:
                with self.open_source() as source:
                    folders = {f.name: f for f in source.folders()}
                    for plan_folder in self.plan.included():
                        if self._stop.is_set():
                            break
                        folder = folders.get(plan_folder.source)
                        if folder is None:
                            self.result.failures.append({"folder": plan_folder.source, "key": None, "subject": None,
                                                         "failure": "missing", "reason": "the folder is gone"})
                            continue
                        self._folder(source, folder, plan_folder, main_target)
                    self.result.source_problems = [f"{p.where}: {p.detail}" for p in source.problems]
            finally:
                for _ in uploaders:
                    self._uploads.put(None)
                for thread in uploaders:
                    thread.join()
            outcome = "stopped" if self.result.stopped else ("failed" if self.result.failures else "done")
        finally:
            if main_target is not None:
                main_target.close()
            self.journal.end_run(run_id, outcome)
            self.result.ended = datetime.now(UTC)
        return self.result

    # --- one folder: the reader feeds this thread, which feeds the uploaders ---------------

    def _folder(self, source: Source, folder: Folder, plan_folder: FolderPlan, target: Target | None) -> None:
        name = "/".join(plan_folder.target)
        outcome = FolderOutcome(plan_folder.source, name)
        self.result.folders.append(outcome)
        folder_id = self.journal.folder(plan_folder.source, name)
        closed = self.journal.closed_keys(folder_id)
        in_flight = {r.source_key for r in self.journal.pending(folder_id)}
        if target is None:
            there = TargetFolder(tuple(plan_folder.target), "(dry run)")
            on_target = None
        else:
            there = target.ensure_folder(tuple(plan_folder.target), folder)
            # The target is listed when dedupe is on, or when an earlier run was killed mid-batch.
            on_target = None
            if self.plan.dedupe or in_flight:
                sent, found = self.journal.claims(folder_id)
                with self._known_lock:
                    self._known |= sent
                on_target = OnTarget(target, there, claimed=sent)
                for message_id, size in found:
                    on_target.claim(message_id, size)
        self.report(Progress("upload", plan_folder.source, 0, 0, total_items=None))
        reader = threading.Thread(target=self._read_folder, name="reader", daemon=True,
                                  args=(source, folder, plan_folder, folder_id, there, closed, in_flight,
                                        on_target, outcome))
        reader.start()
        reading = True
        try:
            while reading or self._in_flight:
                kind, payload = self._events.get()
                if kind == "batch":
                    self._send(payload)
                elif kind == "records":
                    self._close(outcome, *payload)
                elif kind == "uploaded":
                    self._uploaded(outcome, payload[0], payload[1], on_target)
                elif kind == "read-done":
                    reading = False
                elif kind == "died":  # an upload thread died: stop as a kill would, its batch left pending
                    raise payload
                elif kind == "error":
                    self._halt()
                    reading = False
                    if not self._in_flight:
                        reader.join()
                        raise payload
                    self._pending_error = payload
                self.report(Progress("upload", plan_folder.source, outcome.created + outcome.skipped + outcome.failed,
                                     outcome.bytes))
        except BaseException:
            # Never leave the reader behind (a kill, a dead uploader): it would go on reading a closed source.
            self._halt()
            reader.join()
            raise
        reader.join()
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        self.report(Progress("upload", plan_folder.source, outcome.created + outcome.skipped + outcome.failed,
                             outcome.bytes, total_items=outcome.created + outcome.skipped + outcome.failed))

    def _read_folder(self, source: Source, folder: Folder, plan_folder: FolderPlan, folder_id: int,
                     there: TargetFolder, closed: set[str], in_flight: set[str], on_target: OnTarget | None,
                     outcome: FolderOutcome) -> None:
        try:
            caps_limit = self.plan.filters.max_message_size
            batch_bytes, batch_items = 8 * 1024 * 1024, 100
            if not self.dry_run and on_target is not None:
                batch_bytes = on_target.target.capabilities.max_batch_bytes
                batch_items = on_target.target.capabilities.max_batch_items
            for refs in chunked(self._wanted(source, folder, closed, outcome), batch_bytes, batch_items):
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
                    elif check and on_target is not None and not on_target.raw and on_target.take_listed(ref):
                        records.append(ItemRecord(ref.key, "skipped", None, ref.message_id, ref.size, ref.subject,
                                                  reason="already on the target"))
                    else:
                        to_read.append(ref)
                items: list[UploadItem] = []
                subjects: dict[str, str | None] = {}
                for ref, raw in source.read(folder, to_read):
                    raw = to_crlf(raw)
                    received = ref.internal_date or ref.date
                    check = on_target is not None and (self.plan.dedupe or ref.key in in_flight)
                    if check and on_target is not None and on_target.take_read(
                            ref.message_id, raw, received.timestamp() if received else None):
                        records.append(ItemRecord(ref.key, "skipped", None, ref.message_id, len(raw), ref.subject,
                                                  reason="already on the target"))
                        continue
                    subjects[ref.key] = ref.subject
                    items.append(UploadItem(ref.key, raw, flags_for(source, ref), received, ref.date, ref.message_id))
                if records:
                    self._events.put(("records", (folder_id, records)))
                if items:
                    self._hold(sum(len(i.raw) for i in items))
                    self._events.put(("batch", Batch(plan_folder, folder_id, there, items, subjects)))
        except BaseException as exc:
            self._events.put(("error", exc))
            return
        self._events.put(("read-done", None))

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
            elif r.status == "failed":
                outcome.failed += 1
                self.result.failures.append({"folder": outcome.source, "key": r.source_key, "subject": r.subject,
                                             "failure": r.failure, "reason": r.reason})

    def _send(self, batch: Batch) -> None:
        if not self.dry_run:
            self.journal.mark_pending(batch.folder_id, [
                ItemRecord(i.key, "pending", None, i.message_id, len(i.raw), batch.subjects.get(i.key))
                for i in batch.items])
            self._in_flight += 1
            self._uploads.put(batch)
        else:  # a dry run goes through everything but the upload
            self._close_counts_dry(batch)

    def _close_counts_dry(self, batch: Batch) -> None:
        self._release(sum(len(i.raw) for i in batch.items))
        outcome = self.result.folders[-1]
        outcome.created += len(batch.items)
        outcome.bytes += sum(len(i.raw) for i in batch.items)

    def _uploaded(self, outcome: FolderOutcome, batch: Batch, results: list[UploadResult],
                  on_target: OnTarget | None) -> None:
        self._in_flight -= 1
        self._release(sum(len(i.raw) for i in batch.items))
        records: list[ItemRecord] = []
        again: list[UploadItem] = []
        waits: list[float] = []
        for item, result in zip(batch.items, results, strict=True):
            subject = batch.subjects.get(item.key)
            base = (item.key, item.message_id, len(item.raw), subject)
            if result.outcome is Outcome.CREATED:
                records.append(ItemRecord(base[0], "done", None, base[1], base[2], base[3], result.target_id,
                                          attempts=batch.attempt))
                outcome.created += 1
                outcome.bytes += len(item.raw)
                if result.target_id:
                    with self._known_lock:
                        self._known.add(result.target_id)
                    if on_target is not None:
                        on_target.known.add(result.target_id)
            elif result.outcome is Outcome.SKIPPED:
                records.append(ItemRecord(base[0], "skipped", None, base[1], base[2], base[3], result.target_id,
                                          reason=result.reason or "already on the target", attempts=batch.attempt))
                outcome.skipped += 1
            elif result.failure is Failure.RETRY and batch.attempt < self.retry.attempts and not self._stop.is_set():
                again.append(item)
                waits.append(result.retry_after or 0.0)
            else:
                failure = result.failure or Failure.REJECTED
                reason = result.reason or failure.value
                if failure is Failure.RETRY:
                    reason += f" (gave up after {batch.attempt} tries)"
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
            wait = self.retry.wait(batch.attempt, max(waits))
            self.report(Progress("upload", outcome.source, outcome.created + outcome.skipped + outcome.failed,
                                 outcome.bytes, note=f"target busy: waiting {wait:.0f} s"))
            retry = Batch(batch.folder, batch.folder_id, batch.target_folder, again, batch.subjects,
                          batch.attempt + 1, check_first=True)
            self._in_flight += 1
            with self._held_lock:  # the retried items are held again until they are done
                self._held += sum(len(i.raw) for i in again)
            threading.Timer(wait, self._uploads.put, args=(retry,)).start() if wait > 0 else self._uploads.put(retry)

    # --- upload threads --------------------------------------------------------------------

    def _upload_loop(self) -> None:
        target: Target | None = None
        try:
            while True:
                batch = self._uploads.get()
                if batch is None:
                    return
                try:
                    if target is None:
                        target = self.open_target()
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
