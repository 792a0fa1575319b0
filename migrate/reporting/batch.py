"""A batch's summary: every mailbox of a batch folder with its state and, where it ran, its report.

The batch folder (written by `o365-migrate batch`):
    BATCH_DIR/batch.json  {"version": 1, "csv": ..., "mailboxes": [{"id", "line", "source", "target", "plan",
                           "journal", "state", "error", "started", "ended", "totals"}]}, paths relative to BATCH_DIR
    BATCH_DIR/mailboxes/<id>/{plan.yaml, journal.sqlite, result.json, verify.json}
Each mailbox's numbers come from its journal (as a single run's report does); batch.json adds the
state and the error of mailboxes that never got as far as a journal.

A distributed batch (`--engine celery`) keeps only batch.json in its folder, naming the batch and its
journal database: the journals, and where each mailbox stands, are read from that database
(migrate.reporting.documents says where a mailbox's documents live).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from migrate.discovery.cutover import DomainCheck
from migrate.errors import UserError
from migrate.reporting.documents import BATCH_FILE, FolderDocuments, MailboxDocuments, SharedDocuments
from migrate.reporting.model import ReportData, Totals, mailbox_of

State = Literal["pending", "planning", "running", "done", "failed", "stopped"]
MOVING = ("planning", "running")  # a worker has the mailbox now: its report is a snapshot


class _MailboxDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the batch may record more than a report needs

    id: str
    line: int | None = None
    email: str = ""  # the CSV's EmailAddress: the user's address
    source: str = ""
    target: str = ""
    plan: str | None = None
    journal: str | None = None
    state: State = "pending"
    error: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    totals: dict[str, Any] | None = None


class _BatchDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Literal[1]
    csv: str | None = None
    mailboxes: list[_MailboxDoc] = Field(default_factory=list)
    engine: Literal["local", "celery"] = "local"
    name: str | None = None  # a distributed batch's name in its journal database
    journal_db: str | None = None  # that database, as given: a URL without a password, or env:VAR


class MailboxSummary(BaseModel):
    id: str
    line: int | None
    mailbox: str
    source: str
    target: str
    state: State
    error: str | None
    started: datetime | None
    ended: datetime | None
    report: ReportData | None  # None: no journal yet (not started, or failed before moving anything)

    @property
    def result(self) -> str:
        return self.report.verdict if self.report is not None else "none"


class BatchSummary(BaseModel):
    """The result model of a batch summary; its JSON form is versioned."""

    version: Literal[1] = 1
    generated: datetime
    folder: str  # the batch folder's name
    csv: str | None
    mailboxes: list[MailboxSummary]
    totals: Totals
    seconds: float  # summed over mailboxes
    verified: int
    problems: int
    unverified: int
    not_done: int  # mailboxes not in state done
    moving: list[str] = Field(default_factory=list)  # ids of the mailboxes being moved now
    not_started: list[str] = Field(default_factory=list)  # ids of the mailboxes no worker has begun
    engine: Literal["local", "celery"] = "local"
    domains: list[DomainCheck] = Field(default_factory=list)

    def mailbox_domains(self) -> list[str]:
        found: list[str] = []
        for m in self.mailboxes:
            domain = m.mailbox.rpartition("@")[2].lower()
            if domain and domain not in found:
                found.append(domain)
        return found


def batch_summary(folder: Path, now: datetime | None = None) -> BatchSummary:
    doc = _load(folder)
    generated = now or datetime.now(UTC)
    documents = _documents(folder, doc)
    rows: list[MailboxSummary] = []
    try:
        # A distributed batch's mailboxes as its workers left them; batch.json is as old as its last refresh.
        entries = ([_MailboxDoc.model_validate(m) for m in documents.mailboxes()]
                   if isinstance(documents, SharedDocuments) else doc.mailboxes)
        for m in entries:
            rows.append(MailboxSummary(id=m.id, line=m.line, mailbox=mailbox_of(m.target) or m.email or m.id,
                                       source=m.source, target=m.target, state=m.state, error=m.error,
                                       started=m.started, ended=m.ended,
                                       report=documents.report(m.id, m.journal, generated)))
    finally:
        documents.close()
    reports = [r.report for r in rows if r.report is not None]
    totals = Totals(**{name: sum(getattr(r.totals, name) for r in reports) for name in Totals.model_fields})
    return BatchSummary(
        generated=generated, folder=folder.resolve().name, csv=doc.csv, mailboxes=rows, totals=totals,
        seconds=round(sum(r.seconds for r in reports), 1),
        verified=sum(1 for r in reports if r.verdict == "verified"),
        # A mailbox on its way has items in flight and no verification yet: judged when it ends.
        problems=sum(1 for r in rows if (r.report is not None and r.report.verdict == "problems"
                                         and r.state not in MOVING) or r.state == "failed"),
        unverified=sum(1 for r in rows if r.report is not None and r.report.verdict == "not verified"
                       and r.state not in MOVING),
        not_done=sum(1 for r in rows if r.state != "done"),
        moving=[r.id for r in rows if r.state in MOVING],
        not_started=[r.id for r in rows if r.state == "pending"],
        engine=doc.engine,
    )


def _documents(folder: Path, doc: _BatchDoc) -> MailboxDocuments:
    if doc.engine == "local":
        return FolderDocuments(folder)
    if not doc.journal_db or not doc.name:
        raise UserError(f"{folder / BATCH_FILE} is a distributed batch's but names no journal database",
                        hint="run the batch again with the same --name and --journal-db to rewrite it")
    return SharedDocuments(folder, doc.journal_db, doc.name)


def _load(folder: Path) -> _BatchDoc:
    path = folder / BATCH_FILE
    if not path.is_file():
        raise UserError(f"{folder} is not a batch folder (no {BATCH_FILE} in it)",
                        hint="give the folder `o365-migrate batch` wrote, e.g. report --batch ./batch-2026-11-30")
    try:
        return _BatchDoc.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc).splitlines()[0]
        raise UserError(f"{path} cannot be read ({detail})",
                        hint="make the report with the o365-migrate that ran the batch") from None
