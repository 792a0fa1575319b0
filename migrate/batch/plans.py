"""A distributed mailbox's plan, kept in the shared database as soon as it is made.

A local batch plans a mailbox once and reuses that plan.yaml on every later run while the CSV row is
unchanged (migrate.batch.mailbox keeps row.json beside it to tell). On Celery the plan is made in the folder
of whichever worker took the mailbox first; the worker that resumes it, perhaps on another machine after the
first one died, would find no plan and take the source's whole inventory again, and could plan the mailbox
differently half-way through its move. So the worker copies plan.yaml and row.json into the database when
the mailbox's process has planned (the journal's `meta`, under the mailbox's journal key, as the files'
names), and writes them into its own folder before it starts a mailbox: the mailbox then goes on with the
plan it began with, exactly as a local batch would. Neither file holds a secret (a plan keeps connections
without their passwords), which the distributed tests check in a dump of the database.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

from migrate.batch.mailbox import PLAN, ROW
from migrate.batch.shared import SharedBatch
from migrate.batch.status import write_atomically
from migrate.errors import MigrateError

log = logging.getLogger(__name__)


def keep_plan(shared: SharedBatch, journal: str, folder: Path) -> bool:
    """The plan the mailbox's process has just made (or reused), and the row it was made from, into the
    database; False when the folder holds no plan (nothing to keep)."""
    plan, row = folder / PLAN, folder / ROW
    if not plan.is_file() or not row.is_file():
        return False
    try:
        # Together: a plan is reused only beside the row it was made from.
        shared.keep(journal, {PLAN: plan.read_text(encoding="utf-8"), ROW: row.read_text(encoding="utf-8")})
    except (psycopg.Error, MigrateError, OSError) as exc:  # the move goes on; a resume would plan afresh
        log.warning("mailbox %s: its plan is not kept in the database: %s", journal, exc)
        return False
    return True


def restore_plan(shared: SharedBatch, journal: str, folder: Path) -> bool:
    """The plan kept for the mailbox, written into this worker's folder for its process to reuse (it does
    while the row is unchanged); False when none was kept (the mailbox's first start: it plans)."""
    try:
        plan, row = shared.kept(journal, PLAN), shared.kept(journal, ROW)
        if plan is None or row is None:
            return False
        # The row last: a kill between the two writes leaves a plan beside an older row, which is planned again.
        write_atomically(folder / PLAN, plan)
        write_atomically(folder / ROW, row)
    except (psycopg.Error, MigrateError, OSError) as exc:  # the mailbox is planned afresh: slower, still right
        log.warning("mailbox %s: its kept plan cannot be read: %s", journal, exc)
        return False
    return True
