"""`batch --engine celery`: send one task a mailbox to the broker and follow them in the shared journal;
and `batch status` of such a batch. Imported only for that engine: it brings in celery and psycopg."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from migrate.batch import BatchFile, load_status
from migrate.batch.remote import (
    BROKER_SCHEMES,
    DATABASE_SCHEMES,
    check_name,
    prepare_remote,
    refresh,
    resolve_url,
    watch,
)
from migrate.batch.shared import SharedBatch
from migrate.batch.status import STATUS_FILE, BatchStatus, MailboxStatus, save_status
from migrate.cli.batch import _summary
from migrate.cli.worker import BROKER_EXAMPLE, DATABASE_EXAMPLE
from migrate.errors import ExitCode, MigrateError, UsageError


def move_remote(parsed: BatchFile, folder: Path, to: str, name: str | None, broker_text: str, db_text: str,
                retry_failed: bool, uploads: int | None, quiet: bool, err: Console,
                tenant_limit: int | None = None) -> None:
    broker = resolve_url(broker_text, "--broker", BROKER_SCHEMES, BROKER_EXAMPLE)
    db = resolve_url(db_text, "--journal-db", DATABASE_SCHEMES, DATABASE_EXAMPLE)
    batch_name = check_name(name or parsed.path.stem)
    if (folder / STATUS_FILE).exists():
        earlier = load_status(folder)
        if earlier.engine != "celery" or earlier.name != batch_name:
            raise UsageError(f"{folder} holds another batch ({earlier.engine}"
                             + (f", named {earlier.name}" if earlier.name else "") + ")",
                             hint="give the batch a folder of its own with --dir, or the same --name as before")
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    status = BatchStatus(csv=str(parsed.path.resolve()), to=to, engine="celery", name=batch_name, journal_db=db_text)
    shared = SharedBatch(db)
    console = Console()
    try:
        orders, skipped = prepare_remote(shared, batch_name, parsed.rows, retry_failed, uploads, debug, tenant_limit)
        refresh(status, shared)
        listed = {row.id for row in parsed.rows}
        status.mailboxes.sort(key=lambda m: (m.id not in listed, m.line))
        save_status(folder, status)
        if skipped:
            err.print(f"{skipped} mailbox(es) {'not failed' if retry_failed else 'done or moving'} before: skipped",
                      highlight=False)
        from migrate.batch.tasks import submit  # celery

        submit(broker, orders)
        if not quiet:
            err.print(f"{len(orders)} mailbox(es) sent to {_shown(broker)} as batch {batch_name}; workers take them: "
                      f"o365-migrate worker --broker URL --journal-db URL", highlight=False, soft_wrap=True)

        def changed(mailboxes: list[MailboxStatus]) -> None:
            save_status(folder, status)
            if quiet or live:
                return
            for m in mailboxes:
                if m.state in ("done", "failed", "stopped"):
                    err.print(f"{escape(m.id)}: {m.state}" + (f": {escape(m.error)}" if m.error else ""),
                              highlight=False)

        live = not quiet and console.is_terminal
        try:
            if live:
                with Live(get_renderable=lambda: _summary(status, folder), console=console, refresh_per_second=2,
                          transient=True):
                    watch(status, shared, {o.id for o in orders}, changed)
            else:
                watch(status, shared, {o.id for o in orders}, changed)
        except KeyboardInterrupt:
            save_status(folder, status)
            err.print(f"[yellow]stopped following the batch.[/] The workers go on; see where it stands with:\n"
                      f"  o365-migrate batch status {escape(str(folder))}", highlight=False, soft_wrap=True)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    finally:
        shared.close()
    save_status(folder, status)
    console.print(_summary(status, folder))
    failed = [m for m in status.mailboxes if m.state == "failed" and m.id in listed]
    if failed:
        raise MigrateError(f"{len(failed)} of {len(listed)} mailbox(es) failed (first: {failed[0].id}: "
                           f"{failed[0].error})",
                           hint=f"fix what the errors say (o365-migrate batch status {folder}), then run the same "
                                "command again, or add --retry-failed to send only the failed ones")


def refresh_status(status: BatchStatus, folder: Path) -> None:
    """batch.json brought up to the shared database (and written back, for the report)."""
    if status.journal_db is None or status.name is None:
        raise UsageError(f"{folder / STATUS_FILE} names no journal database", hint="run the batch again to rewrite it")
    shared = SharedBatch(resolve_url(status.journal_db, "--journal-db", DATABASE_SCHEMES, DATABASE_EXAMPLE))
    try:
        refresh(status, shared)
    finally:
        shared.close()
    save_status(folder, status)


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
