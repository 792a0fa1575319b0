"""Tenant moves from a CSV: validate every row, then move N mailboxes at once, each with its own plan and
journal under one batch folder, resumable as a whole (see status.py for the folder's layout).

`prepare` turns the rows and the batch folder's last status into the status to start from and the jobs
to run; `Supervisor` runs them. The CLI (migrate.cli.batch) only parses, calls these, and renders.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from migrate.batch.job import Job, Secrets
from migrate.batch.rows import BatchFile, Defaults, MailboxRow, Problem, read_batch
from migrate.batch.secrets import SecretCell
from migrate.batch.status import STATUS_FILE, BatchStatus, MailboxStatus, load_status, mailbox_dir
from migrate.batch.supervisor import Supervisor, batch_lock, default_parallel

__all__ = ["BatchFile", "BatchStatus", "Defaults", "Job", "MailboxRow", "Problem", "SecretCell", "Supervisor",
           "batch_lock", "default_dir", "default_parallel", "load_status", "prepare", "read_batch"]

INTERRUPTED = "stopped before the end; the next batch run resumes it"


def default_dir(csv: Path) -> Path:
    """users.csv -> users.batch beside it: the same command finds the same folder again."""
    return csv.with_name(csv.stem + ".batch")


Jobs = list[tuple[Job, Callable[[], Secrets]]]


def prepare(batch_dir: Path, csv: Path, to: str, rows: list[MailboxRow], retry_failed: bool = False,
            workers: int | None = None, debug: bool = False) -> tuple[BatchStatus, Jobs]:
    """The status to start from (the last one, brought up to the CSV) and the mailboxes to run now.

    Done mailboxes are skipped unless their row changed; every other one runs again and resumes from its
    journal; with `retry_failed` only the failed ones run, and their refused items are tried again.
    A mailbox a killed batch left planning or running is `stopped`: its journal holds what it did.
    """
    earlier = load_status(batch_dir) if (batch_dir / STATUS_FILE).exists() else None
    status = BatchStatus(csv=str(csv.resolve()), to=to)
    for row in rows:
        entry = MailboxStatus(id=row.id, line=row.line, email=row.email, source=row.source.url,
                              target=row.target.url, plan=f"mailboxes/{row.id}/plan.yaml",
                              journal=f"mailboxes/{row.id}/journal.sqlite")
        before = earlier.mailbox(row.id) if earlier else None
        if before is not None:
            entry.state, entry.error, entry.started, entry.ended, entry.totals = (
                before.state, before.error, before.started, before.ended, before.totals)
            if before.state == "done" and (before.source, before.target) != (entry.source, entry.target):
                entry.state = "pending"  # the row now says something else: move it again (dedupe keeps it clean)
            if before.state in ("planning", "running"):
                entry.state, entry.error = "stopped", INTERRUPTED
        status.mailboxes.append(entry)
    if earlier is not None:  # rows taken out of the CSV stay on record: their mail may have moved
        listed = {m.id for m in status.mailboxes}
        status.mailboxes.extend(m for m in earlier.mailboxes if m.id not in listed)
    jobs: Jobs = []
    for row in rows:
        state = status.mailbox(row.id).state  # type: ignore[union-attr]  # every row has its entry
        wanted = state == "failed" if retry_failed else state != "done"
        if not wanted:
            continue
        job = Job(id=row.id, folder=str(mailbox_dir(batch_dir, row.id).resolve()), source=row.source,
                  target=row.target, filters=row.filters, include_folders=row.include_folders,
                  user_root=row.user_root, workers=workers, retry_failed=retry_failed, debug=debug)
        jobs.append((job, _secrets_of(row)))
    return status, jobs


def _secrets_of(row: MailboxRow) -> Callable[[], Secrets]:
    def resolve() -> Secrets:
        return Secrets.model_validate({"source": row.source_secret.resolve() if row.source_secret else None,
                                       "target": row.target_secret.resolve() if row.target_secret else None})

    return resolve
