"""A batch on Celery: one task per mailbox, taken by workers on any machine, with a shared journal.

The task runs the mailbox exactly as the single-machine batch does, in a worker process of its own
(migrate.batch.worker through `MailboxProcess`), so both paths share one code path for moving a mailbox;
only who starts that process, and where its journal is, differ.

Delivery is at least once; the task makes it exactly once in effect:
- acks_late: a task is acknowledged when it ends, so a worker that dies leaves it with the broker, which
  gives it to another worker a lease (`--lease`, 60 s) after the worker fell silent. With Redis that takes
  migrate.batch.keepalive: a live worker stamps the tasks it holds every few seconds, and the visibility
  timeout is the lease, so a move that lasts days is never handed out twice while its worker lives, and a
  killed worker's goes to another about a minute later, when the mailbox's lease has expired or nearly (the
  new delivery waits out the rest). RabbitMQ hands a dead consumer's messages back when its connection drops.
- idempotent: a mailbox already `done` is not moved again, nor is a `failed` one by a copy the broker handed
  out again or its retries (a batch run again marks its mailboxes pending first); otherwise the task takes
  the mailbox's lease (migrate.batch.shared), or, when a live worker holds it, retries until that worker has
  ended it (a copy ends then); the move itself resumes from the shared journal, which never sends a closed
  item twice.
- A worker stopping (Ctrl-C, SIGTERM: Celery's warm shutdown) stops its mailboxes cleanly and hands each
  back as a retry, so another worker resumes it; a mailbox whose lease was lost (the database unreachable
  past the expiry) is stopped at once, as another worker owns it now.
- A mailbox failing for good (a refused password, a folder the target rejects) is that mailbox's state in
  the shared database; the task ends normally and no other mailbox notices.

Each mailbox moves in its own process, so a throttled mailbox waiting on Exchange Online's budget holds up
none of the worker's other mailboxes (tests/batch/test_worker_pacing.py); Microsoft's per-mailbox limits
(4 concurrent Graph requests, the EWS upload limit) hold across every worker because the lease lets one
worker alone move a mailbox.

celery is imported only when this module is, and only the distributed commands import it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import psycopg
from celery import Celery
from celery.exceptions import Retry as CeleryRetry
from celery.signals import worker_shutting_down
from kombu.exceptions import OperationalError

from migrate.batch import broker as broker_transport
from migrate.batch.orders import Order, tenant_slot
from migrate.batch.plans import keep_plan, restore_plan
from migrate.batch.shared import LeaseKeeper, SharedBatch, SharedMailbox
from migrate.batch.supervisor import MailboxProcess
from migrate.errors import MigrateError, UnreachableError

TASK = "o365_migrate.move_mailbox"
QUEUE = "o365-migrate"
LEASE = 60.0  # seconds: longer than a mailbox process takes to stop once its worker is gone (worker.GRACE)
# Redis through kombu's Sentinel transport, which this project does not extend with keepalive stamps: a task
# is handed out again this long after a worker took it, so it must outlast a mailbox (the lease covers a copy)
SENTINEL_VISIBILITY = 3600.0
PROGRESS_EVERY = 2.0  # seconds between progress writes to the shared database

log = logging.getLogger(__name__)

# Set on Celery's warm shutdown: running mailboxes stop cleanly and go back to the broker.
STOPPING = threading.Event()
RetryLater = Callable[[float], NoReturn]  # raises Celery's Retry: the task goes back to the broker


@dataclass(frozen=True)
class WorkerSettings:
    journal_db: str  # the URL, resolved (it may hold a password: it goes to mailbox processes by pipe only)
    folder: Path  # this worker's own folder: plans, results and logs of the mailboxes it moved
    lease: float = LEASE


def make_app(broker: str, settings: WorkerSettings | None = None) -> Celery:
    """The Celery app: the batch that sends needs only the broker; a worker also its settings."""
    app = Celery("o365_migrate", broker=broker, set_as_current=False)
    visibility = SENTINEL_VISIBILITY
    if urlsplit(broker).scheme in ("redis", "rediss"):
        app.conf.broker_transport = broker_transport.NAME  # see migrate/batch/broker.py
        # A live worker stamps the tasks it holds (migrate/batch/keepalive.py): a task whose worker has been
        # silent for a lease goes to another, which by then may take the mailbox's lease over.
        visibility = settings.lease if settings is not None else LEASE
    app.conf.update(
        # Late acks, and none for a task that failed (the database out of reach, a retry the broker could not
        # take): the message stays with the broker, which hands it out again; the task is idempotent.
        task_acks_late=True, task_acks_on_failure_or_timeout=False, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json", accept_content=["json"], task_ignore_result=True, result_backend=None,
        task_default_queue=QUEUE, broker_connection_retry_on_startup=True, broker_connection_max_retries=None,
        # Redis: a dead worker's tasks go back to the queue `visibility` seconds after its last stamp; the
        # sweep that does it runs every few seconds (kombu's default, once in 100 s, would add to the wait).
        broker_transport_options={"visibility_timeout": visibility, "unacked_restore_throttle": 1,
                                  "unacked_restore_interval": int(max(1, min(10, visibility // 8)))},
        worker_hijack_root_logger=False,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.5, "interval_step": 1.0},
    )
    if settings is not None:
        @app.task(name=TASK, bind=True, max_retries=None, acks_late=True)
        def move_mailbox(task: Any, order: dict[str, Any], again: bool = False) -> str:
            # kombu marks a message it put back on the queue: the worker that held it went silent (killed, its
            # machine gone, the broker restarted under it). Its retries carry the mark on.
            if (task.request.delivery_info or {}).get("redelivered"):
                log.warning("mailbox %s/%s: handed out again, the worker that had it having gone silent",
                            order.get("batch"), order.get("id"))
                again = True

            def retry(wait: float) -> NoReturn:
                raise task.retry(countdown=wait, kwargs={"again": again})

            return run_order(Order.model_validate(order), settings, str(task.request.id or ""), retry, again)

        worker_shutting_down.connect(_stopping, weak=False)
    return app


def _stopping(**_: Any) -> None:
    STOPPING.set()


def submit(broker: str, orders: list[Order]) -> None:
    """One task per mailbox. The broker keeps them until a worker ends each one."""
    app = make_app(broker)
    try:
        with app.producer_or_acquire() as producer:
            for order in orders:
                app.send_task(TASK, args=[order.model_dump(mode="json")], queue=QUEUE, producer=producer)
    except OperationalError as exc:
        raise UnreachableError(f"cannot send the batch's tasks to the broker: {exc}",
                               hint="check --broker and that the broker runs there") from None


def run_order(order: Order, settings: WorkerSettings, task_id: str, retry: RetryLater, again: bool = False) -> str:
    """One mailbox to its end, unless another worker owns it: its final state. `again`: this delivery is a copy
    the broker handed out again, or a retry of one."""
    shared = SharedBatch(settings.journal_db)
    try:
        current = shared.mailbox(order.batch, order.id)
        if current is not None and current.state == "done":
            return "done"  # delivered again after it ended: nothing to do
        if again and current is not None and current.state == "failed":
            # A copy of a task that a worker ended with the failure recorded: the mailbox failed for good (a
            # batch run again marks its mailboxes pending before sending new tasks)
            return "failed"
        # Unique to this delivery: the broker may deliver the same task (same id) again to this very process
        # while it still moves the mailbox (Redis, past the visibility timeout); that copy must not pass as us.
        owner = f"{socket.gethostname()}/{os.getpid()}/{task_id}/{uuid.uuid4().hex[:12]}"
        if not shared.acquire(order.key, owner, settings.lease):
            held = shared.holder(order.key)
            retry(max(1.0, min(settings.lease, held[1] + 1 if held else settings.lease)))
        try:
            current = shared.mailbox(order.batch, order.id)
            if current is not None and current.state == "done":
                return "done"  # it ended between our look and our lease
            if current is None:
                shared.register(order.batch, SharedMailbox(order.id, order.line, order.email, order.source.url,
                                                           order.target.url))
            slot = _tenant_slot(order, shared, owner, settings.lease)
            if slot is None:  # the tenant's limit is reached across the workers: wait for a slot to free
                shared.release(order.key, owner)
                retry(max(1.0, settings.lease / 4))
            try:
                return _move(order, settings, shared, owner, retry, slot)
            except CeleryRetry:
                raise
            except Exception as exc:
                # A bug, or the database gone for good: the mailbox must not stay `running` for ever.
                log.exception("mailbox %s", order.key)
                with contextlib.suppress(Exception):
                    shared.update(order.batch, order.id, state="failed", phase=None, ended=time.time(),
                                  error=f"internal error on {socket.gethostname()}: {exc.__class__.__name__}: {exc} "
                                        "(see the worker's log)")
                return "failed"
            finally:
                if slot:
                    shared.release(slot, owner)
        finally:
            shared.release(order.key, owner)
    finally:
        shared.close()


def _note(shared: SharedBatch, batch: str, mailbox: str, **changes: Any) -> None:
    """Progress for `batch status`: a database out of reach for a moment must not stop the mailbox (its
    journal, which the mailbox's process writes, is what counts; the end state is written after)."""
    try:
        shared.update(batch, mailbox, **changes)
    except (psycopg.Error, MigrateError) as exc:
        log.warning("mailbox %s: progress not recorded: %s", mailbox, exc)


def _tenant_slot(order: Order, shared: SharedBatch, owner: str, ttl: float) -> str | None:
    """One of the tenant's `tenant_limit` slots (a lease like a mailbox's), or None when all are held."""
    if not order.tenant_limit or not order.tenant:
        return ""
    return next((slot for slot in (tenant_slot(order.tenant, n) for n in range(order.tenant_limit))
                 if shared.acquire(slot, owner, ttl)), None)


def _move(order: Order, settings: WorkerSettings, shared: SharedBatch, owner: str, retry: RetryLater, slot: str) -> str:
    batch, mailbox = order.batch, order.id
    folder = settings.folder / batch / mailbox
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    shared.update(batch, mailbox, state="planning", phase="starting", error=None, started=time.time(), ended=None,
                  owner=owner, items=0, bytes=0)
    restore_plan(shared, order.key, folder)  # the plan another worker began the mailbox with, if one did
    try:
        secrets = order.secrets(settings.journal_db)
    except MigrateError as exc:
        shared.update(batch, mailbox, state="failed", phase=None, error=exc.one_line(), ended=time.time())
        return "failed"
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    process = MailboxProcess(order.job(folder), secrets, folder / "worker.log", events)
    end: dict[str, Any] | None = None
    slot_keeper = LeaseKeeper(settings.journal_db, slot, owner, settings.lease, on_lost=process.interrupt)
    with LeaseKeeper(settings.journal_db, order.key, owner, settings.lease, on_lost=process.kill) as keeper, \
            contextlib.ExitStack() as slot_kept:
        if slot:  # the tenant's slot is renewed alongside; losing it stops the mailbox cleanly, to go again later
            slot_kept.enter_context(slot_keeper)
        interrupted, written = False, 0.0
        while True:
            try:
                _, event = events.get(timeout=0.5)
            except queue.Empty:
                if STOPPING.is_set() and not interrupted:
                    process.interrupt()
                    interrupted = True
                continue
            if event is None:
                break
            kind = event.get("event")
            if kind == "state":
                _note(shared, batch, mailbox, state=event["state"], phase=event.get("phase"), items=0, bytes=0)
            elif kind == "progress" and time.monotonic() - written > PROGRESS_EVERY:
                written = time.monotonic()
                _note(shared, batch, mailbox, items=int(event["items"]), bytes=int(event["bytes"]))
            elif kind == "planned":  # plan.yaml is written: kept for whoever resumes the mailbox
                keep_plan(shared, order.key, folder)
            elif kind == "end":
                end = event
        code = process.finish()
    if keeper.lost:
        return "lost"  # another worker owns the mailbox now: what it records is the truth
    if end is None:
        shared.update(batch, mailbox, state="failed", phase=None, ended=time.time(),
                      error=f"the mailbox's process ended without a result (exit code {code}); see {folder}/worker.log "
                            f"on {socket.gethostname()}")
        return "failed"
    shared.update(batch, mailbox, state=end["state"], error=end.get("error"), phase=None, ended=time.time(),
                  totals=end.get("totals") or {})
    if end["state"] == "stopped":
        shared.release(order.key, owner)
        retry(1.0)  # this worker is stopping: the broker hands the mailbox to another
    return str(end["state"])

