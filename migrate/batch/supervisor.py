"""Run a batch: N mailbox workers at once, each its own process, and batch.json kept true throughout.

The supervisor starts workers (migrate.batch.worker), feeds each its Job and secrets through a pipe,
reads their events, and writes batch.json after every change of state. One mailbox's failure is that
mailbox's state, never the batch's end. A stop (Ctrl-C, SIGTERM) asks every worker to stop (SIGINT),
waits for their journals to close, and leaves the rest pending; the next run picks up where this left.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from migrate.batch import forked
from migrate.batch.forked import ForkedWorker
from migrate.batch.job import Job, Secrets
from migrate.batch.status import BatchStatus, MailboxStatus, save_status
from migrate.batch.worker import GRACE
from migrate.errors import MigrateError, UserError

OnEvent = Callable[[str, dict[str, Any]], None]
SecretSource = Callable[[], Secrets]  # resolved when the worker starts, so a file read fails on its own row

# Mailboxes at once, by target transport. Exchange Online's limits are per mailbox (150 MB per 5 minutes of
# imports; Graph's 4 concurrent requests per app and mailbox), so a tenant move speeds up with mailboxes in
# parallel, and what caps it is what they share:
#  - ews: EWSMaxConcurrency (27) may be charged to the one app identity that impersonates every mailbox:
#    6 mailboxes x 4 uploads stays under it, with room for their readers' folder calls.
#  - graph: budgets are per app *and* mailbox; the tenant-wide ones are far above 8 x 4 requests.
#  - imap(s): the old server is usually one server for all rows: 8 mailboxes x 2 readers = 16 connections
#    from this machine, under the per-address caps common at hosting providers (about 20).
# Never more than the rows, nor more than two a CPU: each worker parses and hashes MIME.
PARALLEL = {"ews": 6, "graph": 8, "imaps": 8, "imap": 8}
PARALLEL_OTHER = 4


def default_parallel(target_urls: list[str]) -> int:
    if not target_urls:
        return 1
    by_transport = min(PARALLEL.get(u.partition(":")[0].lower(), PARALLEL_OTHER) for u in target_urls)
    return max(1, min(by_transport, len(target_urls), 2 * (os.cpu_count() or 1)))


@dataclass
class LiveMailbox:
    """What the live table shows of a mailbox while it moves (not kept in batch.json)."""

    phase: str | None = None
    items: int = 0
    bytes: int = 0
    planned: int | None = None
    note: str | None = None
    since: float | None = None  # when the upload began (monotonic), for the rate
    items_per_s: float = 0.0
    bytes_per_s: float = 0.0


class MailboxProcess:
    """One mailbox's worker process (migrate.batch.worker), started by the batch here or by a Celery task."""

    def __init__(self, job: Job, secrets: Secrets, log: Path, events: queue.Queue[tuple[str, Any]]) -> None:
        self.id = job.id
        self.ended = False
        self.killed = False
        self._log = log.open("ab")
        self.proc: subprocess.Popen[str] | ForkedWorker
        if forked.available() and not os.environ.get("O365M_COLD_START"):
            # Forked from a process that has imported what a mailbox needs (migrate.batch.forked): the same
            # worker, a CPU-second sooner. O365M_COLD_START=1 starts a fresh interpreter instead.
            stdin_r, stdin_w = os.pipe()
            stdout_r, stdout_w = os.pipe()
            try:
                self.proc = ForkedWorker(stdin_r, stdout_w, self._log.fileno())
            finally:
                os.close(stdin_r)
                os.close(stdout_w)
            self._stdin: IO[str] = open(stdin_w, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
            stdout: IO[str] = open(stdout_r, encoding="utf-8")  # noqa: SIM115 - read to its end by _read
        else:
            # A session of its own: Ctrl-C on the terminal reaches the batch alone, which stops workers in order.
            self.proc = subprocess.Popen([sys.executable, "-m", "migrate.batch.worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log, start_new_session=True,
                                         text=True, encoding="utf-8")
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self._stdin, stdout = self.proc.stdin, self.proc.stdout
        self._stdin.write(job.model_dump_json() + "\n" + secrets.wire() + "\n")
        self._stdin.flush()  # stdin stays open: its end tells the worker the batch is gone
        self._reader = threading.Thread(target=self._read, args=(stdout, events), daemon=True,
                                        name=f"events-{job.id}")
        self._reader.start()

    def _read(self, stdout: IO[str], events: queue.Queue[tuple[str, Any]]) -> None:
        for line in stdout:
            with contextlib.suppress(ValueError):
                events.put((self.id, json.loads(line)))
        with contextlib.suppress(OSError):
            stdout.close()
        events.put((self.id, None))

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def finish(self) -> int:
        code = self.proc.wait()
        self._reader.join()
        with contextlib.suppress(OSError):
            self._stdin.close()
        self._log.close()
        return code


class Supervisor:
    def __init__(self, batch_dir: Path, status: BatchStatus, jobs: list[tuple[Job, SecretSource]], parallel: int,
                 on_event: OnEvent | None = None) -> None:
        self.batch_dir = batch_dir
        self.status = status
        self.jobs = jobs
        self.parallel = max(1, parallel)
        self.on_event = on_event
        self.live: dict[str, LiveMailbox] = {job.id: LiveMailbox() for job, _ in jobs}
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._running: dict[str, MailboxProcess] = {}
        self._lock = threading.Lock()  # the live table reads status and live from its own thread

    def run(self) -> bool:
        """Every job to its end; False when stopped first (the caller says how to resume)."""
        todo = deque(self.jobs)
        with _terminate_as_interrupt():
            try:
                while todo or self._running:
                    while todo and len(self._running) < self.parallel:
                        job, secrets = todo.popleft()
                        self._start(job, secrets)
                    try:
                        mailbox_id, event = self._events.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    self._handle(mailbox_id, event)
            except KeyboardInterrupt:
                self._stop()
                return False
        return True

    # --- workers -----------------------------------------------------------------------------

    def _mailbox(self, mailbox_id: str) -> MailboxStatus:
        found = self.status.mailbox(mailbox_id)
        assert found is not None
        return found

    def _start(self, job: Job, secrets: SecretSource) -> None:
        m = self._mailbox(job.id)
        folder = Path(job.folder)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            given = secrets()
        except MigrateError as exc:
            self._set(m, state="failed", error=exc.one_line(), ended=datetime.now(UTC))
            return
        self._set(m, state="planning", phase="starting", error=None, started=datetime.now(UTC), ended=None)
        self._running[job.id] = MailboxProcess(job, given, folder / "worker.log", self._events)

    def _handle(self, mailbox_id: str, event: dict[str, Any] | None) -> None:
        m = self._mailbox(mailbox_id)
        live = self.live[mailbox_id]
        if event is None:
            self._ended(m, self._running.pop(mailbox_id))
            return
        if self.on_event is not None:
            self.on_event(mailbox_id, event)
        kind = event.get("event")
        with self._lock:
            if kind == "progress":
                live.items, live.bytes, live.note = int(event["items"]), int(event["bytes"]), event.get("note")
                if event.get("phase") == "upload" and live.since is not None:
                    elapsed = max(time.monotonic() - live.since, 1e-3)
                    live.items_per_s, live.bytes_per_s = live.items / elapsed, live.bytes / elapsed
            elif kind == "planned":
                live.planned = int(event["messages"])
            elif kind == "state":
                live.phase, live.items, live.bytes, live.note = event.get("phase"), 0, 0, None
                if live.phase == "upload":
                    live.since = time.monotonic()
        if kind == "state":
            self._set(m, state=event["state"], phase=event.get("phase"))
        elif kind == "end":
            self._running[mailbox_id].ended = True
            self._set(m, state=event["state"], error=event.get("error"), phase=None,
                      totals=event.get("totals") or m.totals, ended=datetime.now(UTC))

    def _ended(self, m: MailboxStatus, worker: MailboxProcess) -> None:
        code = worker.finish()
        if worker.ended:
            return
        if worker.killed:
            self._set(m, state="stopped", phase=None, error="stopped before the end; the next batch run resumes it",
                      ended=datetime.now(UTC))
            return
        log = self.batch_dir / Path(m.plan).parent / "worker.log"
        self._set(m, state="failed", phase=None, ended=datetime.now(UTC),
                  error=f"the worker process ended without a result (exit code {code}); see {log}")

    def _set(self, m: MailboxStatus, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(m, name, value)
            save_status(self.batch_dir, self.status)
        if self.on_event is not None and "state" in changes:
            self.on_event(m.id, {"event": "mailbox", "state": m.state, "error": m.error})

    def _stop(self) -> None:
        """Ask every worker to stop, wait for their journals to close; a second Ctrl-C kills them."""
        for worker in self._running.values():
            worker.interrupt()
        deadline = time.monotonic() + GRACE + 5
        try:
            while self._running and time.monotonic() < deadline:
                try:
                    mailbox_id, event = self._events.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._handle(mailbox_id, event)
        except KeyboardInterrupt:
            pass
        for worker in self._running.values():
            worker.kill()  # the journal makes a kill safe: at most the batch in flight is sent again
        while self._running:
            mailbox_id, event = self._events.get()
            self._handle(mailbox_id, event)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) stops the batch the way Ctrl-C does."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def batch_lock(batch_dir: Path) -> IO[str]:
    """One batch at a time in a folder; the lock goes with the process, however it ends."""
    batch_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fh = (batch_dir / "batch.lock").open("a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise UserError(f"another batch is running in {batch_dir}",
                        hint="wait for it, or stop it with Ctrl-C; then run the batch again") from None
    return fh
