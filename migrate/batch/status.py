"""The batch folder and its `batch.json`: where every mailbox stands, for people, scripts and reports.

Layout (the report command reads exactly this):

  BATCH_DIR/batch.json                     this status, rewritten atomically after every change
  BATCH_DIR/mailboxes/<id>/plan.yaml       the mailbox's plan (no secrets; edit it and run the batch again)
  BATCH_DIR/mailboxes/<id>/journal.sqlite  its journal: what moved, resumable at any kill point
  BATCH_DIR/mailboxes/<id>/result.json     the last run's RunResult.as_json()
  BATCH_DIR/mailboxes/<id>/verify.json     the last verification's Verification.as_json()
  BATCH_DIR/mailboxes/<id>/worker.log      what the mailbox's worker process said (warnings, a crash)

`plan` and `journal` in batch.json are relative to BATCH_DIR, so the folder can be moved or archived whole.
`totals` counts the whole journal (all runs together): planned, created, skipped, failed, bytes, and
`verified` (true, false, or null before verification).

A distributed batch (`--engine celery`, see migrate.batch.remote) keeps this file too, with `engine`, its
`name` and `journal_db`: the journals, plans and logs are then in the shared database and on the workers,
`journal` reads `postgresql:NAME/MAILBOX`, `plan` is empty, and `worker` names who moved each mailbox.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from migrate.errors import UserError

State = Literal["pending", "planning", "running", "done", "failed", "stopped"]
STATES: tuple[State, ...] = ("pending", "planning", "running", "done", "failed", "stopped")
STATUS_FILE = "batch.json"
MAILBOXES = "mailboxes"


class MailboxStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    line: int
    email: str = ""
    source: str
    target: str
    plan: str
    journal: str
    state: State = "pending"
    phase: str | None = None  # inventory, upload, verify: what a running mailbox is doing
    error: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    totals: dict[str, Any] = Field(default_factory=dict)
    worker: str | None = None  # a distributed batch: the worker (host/pid) that moved it last


class BatchStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Literal[1] = 1
    csv: str
    to: str
    updated: datetime = Field(default_factory=lambda: datetime.now(UTC))
    mailboxes: list[MailboxStatus] = Field(default_factory=list)
    # A distributed batch (--engine celery): its name in the shared journal database, and that database as
    # --journal-db gave it (a URL without a password, or env:VAR), where every mailbox's state is read.
    engine: Literal["local", "celery"] = "local"
    name: str | None = None
    journal_db: str | None = None

    def mailbox(self, mailbox_id: str) -> MailboxStatus | None:
        return next((m for m in self.mailboxes if m.id == mailbox_id), None)

    def counts(self) -> dict[str, int]:
        return {state: sum(1 for m in self.mailboxes if m.state == state) for state in STATES}


def mailbox_dir(batch_dir: Path, mailbox_id: str) -> Path:
    return batch_dir / MAILBOXES / mailbox_id


def save_status(batch_dir: Path, status: BatchStatus) -> None:
    """Write batch.json so that a reader, or a kill, never meets half a file."""
    status.updated = datetime.now(UTC)
    text = json.dumps(status.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    write_atomically(batch_dir / STATUS_FILE, text)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def load_status(batch_dir: Path) -> BatchStatus:
    path = batch_dir / STATUS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{batch_dir} holds no batch ({STATUS_FILE} is missing)",
                        hint="give the folder a batch ran in (--dir, or <csv name>.batch beside the CSV)") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}", hint="the file is damaged; run the batch again to rewrite "
                                                           "it") from None
    try:
        return BatchStatus.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path} is not a batch status of this version ({exc.error_count()} problems)",
                        hint="run the batch again with this version to rewrite it") from None
