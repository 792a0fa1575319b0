"""One mailbox of a batch, start to end: plan (or reuse the plan), run, verify, and say where it stands.

This runs inside the mailbox's own worker process. Everything it learns goes out as events (plain
dicts) through `emit`; the files it writes are the batch layout's (see migrate.batch.status).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.batch.job import Job, Secrets
from migrate.batch.scope import narrow
from migrate.batch.status import write_atomically
from migrate.engine.journal import Journal, JournalPlace, open_journal
from migrate.migration import plan_migration, run_plan, verify_plan
from migrate.plan import Plan, load_plan, save_plan
from migrate.progress import Progress

Emit = Callable[[dict[str, Any]], None]
PLAN, JOURNAL, RESULT, VERIFY, ROW = "plan.yaml", "journal.sqlite", "result.json", "verify.json", "row.json"


@dataclass
class Outcome:
    state: str  # done | failed | stopped
    error: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)


class _Counter:
    """Progress per folder summed into one figure per phase, sent at most a few times a second."""

    def __init__(self, emit: Emit, every: float = 0.3) -> None:
        self.emit = emit
        self.every = every
        self.folders: dict[tuple[str, str | None], tuple[int, int]] = {}
        self.last = 0.0
        self.note: str | None = None

    def __call__(self, event: Progress) -> None:
        self.folders[(event.phase, event.folder)] = (event.items, event.bytes)
        now = time.monotonic()
        if now - self.last < self.every and event.note == self.note:
            return
        self.last, self.note = now, event.note
        mine = [v for (phase, _), v in self.folders.items() if phase == event.phase]
        self.emit({"event": "progress", "phase": event.phase, "items": sum(i for i, _ in mine),
                   "bytes": sum(b for _, b in mine), "note": event.note})


def journal_place(job: Job, secrets: Secrets) -> JournalPlace:
    """The mailbox's journal: its file in the batch folder, or its rows in the shared database."""
    if secrets.journal_db is None or job.journal_key is None:
        return Path(job.folder) / JOURNAL
    url, key = secrets.journal_db.get_secret_value(), job.journal_key

    def shared() -> Journal:
        from migrate.engine.journal_pg import PostgresJournal  # psycopg only where a database is used

        return PostgresJournal(url, key)

    return shared


def move_mailbox(job: Job, secrets: Secrets, emit: Emit) -> Outcome:
    folder = Path(job.folder)
    journal = journal_place(job, secrets)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    source_secret = secrets.source.get_secret_value() if secrets.source else None
    target_secret = secrets.target.get_secret_value() if secrets.target else None
    source, target = job.source.with_secret(source_secret), job.target.with_secret(target_secret)
    counter = _Counter(emit)

    emit({"event": "state", "state": "planning", "phase": "inventory"})
    plan = _reused_plan(folder, job)
    reused = plan is not None
    if plan is None:
        plan, _ = plan_migration(source, target, job.filters, report=counter)
        narrow(plan, job.include_folders, job.user_root)
        save_plan(plan, folder / PLAN)
        write_atomically(folder / ROW, json.dumps(job.planning(), indent=2, ensure_ascii=False) + "\n")
    plan.source, plan.target = plan.source.with_secret(source_secret), plan.target.with_secret(target_secret)
    planned = plan.estimate.messages if plan.estimate else sum(f.messages for f in plan.included())
    emit({"event": "planned", "messages": planned, "bytes": plan.estimate.bytes if plan.estimate else 0})

    emit({"event": "state", "state": "running", "phase": "upload"})
    # A plan made a moment ago was checked by its preflight; one kept from before is checked again (a tenant
    # changes: EWS blocked since, consent revoked).
    result = run_plan(plan, journal, workers=job.workers, report=counter, retry_failed=job.retry_failed,
                      preflight=reused)
    write_atomically(folder / RESULT, json.dumps(result.as_json(), indent=2, ensure_ascii=False, default=str) + "\n")
    totals = journal_totals(journal, planned)
    if result.stopped:
        return Outcome("failed", f"stopped: {result.stopped}", totals)

    emit({"event": "state", "state": "running", "phase": "verify"})
    verification = verify_plan(plan, journal, report=counter)
    write_atomically(folder / VERIFY, json.dumps(verification.as_json(), indent=2, ensure_ascii=False) + "\n")
    totals["verified"] = verification.ok
    if totals["failed"]:
        return Outcome("failed", f"{totals['failed']} item(s) did not move (see result.json; --retry-failed tries "
                                 "them again)", totals)
    if not verification.ok:
        missing = sum(f["missing"] + f["differs"] for f in verification.as_json()["folders"])
        return Outcome("failed", f"verification: {missing} message(s) missing or differing on the target", totals)
    return Outcome("done", None, totals)


def _reused_plan(folder: Path, job: Job) -> Plan | None:
    """The plan made for this row before (and perhaps edited since), while the row is unchanged."""
    plan_file, row_file = folder / PLAN, folder / ROW
    if not plan_file.exists() or not row_file.exists():
        return None
    try:
        same = json.loads(row_file.read_text(encoding="utf-8")) == job.planning()
    except (OSError, ValueError):
        return None
    return load_plan(plan_file) if same else None


def journal_totals(place: JournalPlace, planned: int | None) -> dict[str, Any]:
    """The whole journal's count (every run of this mailbox), not only the last run's."""
    journal = open_journal(place)
    try:
        folders = journal.totals()
    finally:
        journal.shut()
    return {"planned": planned, "created": sum(f.done for f in folders), "skipped": sum(f.skipped for f in folders),
            "failed": sum(f.failed for f in folders), "bytes": sum(f.bytes_done for f in folders), "verified": None}
