"""The batch's side of a distributed batch (`--engine celery`): which mailboxes go out as tasks, and where
they stand, read back from the shared database into the batch folder's batch.json.

The batch folder stays the place people and the report look at: batch.json names the engine, the batch's
name in the shared database and the --journal-db as given (a URL without a password, or env:VAR), so
`batch status BATCH_DIR` reads every mailbox's state from the database, wherever its worker runs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from migrate.batch.orders import Order, journal_key, order_of
from migrate.batch.rows import MailboxRow
from migrate.batch.shared import SharedBatch, SharedMailbox
from migrate.batch.status import BatchStatus, MailboxStatus
from migrate.errors import UsageError

BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp", "sentinel")
DATABASE_SCHEMES = ("postgresql", "postgres")
ENDED = ("done", "failed")  # `stopped` is not an end here: its task goes back to the broker for another worker
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def resolve_url(text: str, option: str, schemes: tuple[str, ...], example: str) -> str:
    """A service URL from the command line: as given, or from the variable `env:VAR` names. A password may
    come only by variable: a command line shows in the process list, and batch.json keeps what was given."""
    from_env = text.startswith("env:")
    url = os.environ.get(text[4:], "") if from_env else text
    if from_env and not url:
        raise UsageError(f"{option} {text}: the variable is not set", hint=f"export {text[4:]}={example}")
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        shown = f"{parts.scheme}://{parts.hostname or ''}" if parts.scheme else repr(url.rpartition("@")[2])
        raise UsageError(f"{option} {shown} is not a {schemes[0]} URL", hint=f"write {example}")
    if parts.password and not from_env:
        raise UsageError(f"{option} holds a password, which would show in the process list and in batch.json",
                         hint=f"put the URL in a variable and give {option} env:VAR"
                              + (" (or the password in PGPASSWORD or ~/.pgpass)" if schemes == DATABASE_SCHEMES
                                 else ""))
    return url


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UsageError(f"--name {name!r} is not a batch name",
                         hint="letters, digits, '.', '_' and '-', up to 100, starting with a letter or digit")
    return name


def prepare_remote(shared: SharedBatch, name: str, rows: list[MailboxRow], retry_failed: bool = False,
                   uploads: int | None = None, debug: bool = False,
                   tenant_limit: int | None = None) -> tuple[list[Order], int]:
    """The orders to send now, and how many mailboxes were left out (done, or owned by a live worker).

    Done mailboxes are skipped unless their row changed; with `retry_failed` only failed ones go. Every
    order is made before anything is written, so a password written in the CSV stops the batch whole."""
    orders = [order_of(name, row, uploads, retry_failed, debug, tenant_limit) for row in rows]
    known = {m.id: m for m in shared.mailboxes(name)}
    todo: list[Order] = []
    for row, order in zip(rows, orders, strict=True):
        before = known.get(row.id)
        if retry_failed:
            wanted = before is not None and before.state == "failed"
        else:
            same = before is not None and (before.source, before.target) == (row.source.url, row.target.url)
            wanted = not (before is not None and before.state == "done" and same)
        held = shared.holder(journal_key(name, row.id))
        if not wanted or (held is not None and held[1] > 0):
            continue  # a live worker moves it now: its task is still with the broker
        shared.register(name, SharedMailbox(row.id, row.line, row.email, row.source.url, row.target.url))
        todo.append(order)
    return todo, len(rows) - len(todo)


def refresh(status: BatchStatus, shared: SharedBatch) -> list[MailboxStatus]:
    """Bring batch.json's mailboxes up to the shared database; the ones whose state changed."""
    changed: list[MailboxStatus] = []
    assert status.name is not None
    for row in shared.mailboxes(status.name):
        entry = status.mailbox(row.id)
        if entry is None:
            entry = MailboxStatus(id=row.id, line=row.line, email=row.email, source=row.source, target=row.target,
                                  plan="", journal=f"postgresql:{journal_key(status.name, row.id)}")
            status.mailboxes.append(entry)
        if entry.state != row.state or entry.error != row.error:
            changed.append(entry)
        entry.state = row.state  # type: ignore[assignment]  # the workers write only batch states
        entry.phase, entry.error, entry.totals = row.phase, row.error, row.totals
        entry.started = _when(row.started)
        entry.ended = _when(row.ended)
        entry.worker = "/".join(row.owner.split("/")[:2]) if row.owner else entry.worker  # host/pid
    return changed


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def watch(status: BatchStatus, shared: SharedBatch, ids: set[str], on_change: Callable[[list[MailboxStatus]], None],
          every: float = 1.0) -> None:
    """Follow the database until every mailbox in `ids` has ended; Ctrl-C leaves the workers going."""
    while True:
        changed = refresh(status, shared)
        if changed:
            on_change(changed)
        if all(m.state in ENDED for m in status.mailboxes if m.id in ids):
            return
        time.sleep(every)
