"""The report's data: everything a report shows, read from the journal alone.

The journal holds the plan, the last run's result and the verification as JSON (meta keys
`plan`, `last_run`, `verification`) beside its per-message rows, so a report can be made at any
time after a run, on any machine, without the source or the target.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, ValidationError

from migrate.engine.journal import Journal, journal_for_plan
from migrate.errors import UserError
from migrate.model import Fidelity
from migrate.plan import plan_from_json

REPORT_VERSION: Literal[1] = 1
MB = 1024 * 1024
PLAN_SUFFIXES = (".yaml", ".yml")


class FolderRow(BaseModel):
    source: str
    target: str
    kind: str = "mail"  # mail, event or contact (an ItemKind value)
    planned: int | None = None  # messages the plan counted in the source
    moved: int = 0
    skipped: int = 0  # already on the target
    failed: int = 0
    pending: int = 0  # sent, outcome unknown: the next run checks them
    already: int = 0  # closed by an earlier run (last run's count)
    excluded: int = 0  # left out by the plan's date filters (last run's count)
    bytes: int = 0
    verdict: str | None = None  # a Verdict value, or None when not verified
    source_count: int | None = None
    target_count: int | None = None
    matched: int = 0
    missing: int = 0
    extra: int = 0
    differs: int = 0


class NotMoved(BaseModel):
    folder: str
    key: str | None  # None: the whole folder
    subject: str | None
    status: str  # failed, pending, missing on target, differs
    reason: str


class SkippedGroup(BaseModel):
    folder: str
    reason: str
    count: int


class ExclusionRow(BaseModel):
    folder: str
    message: str | None
    reason: str


class FidelityFolder(BaseModel):
    """Events and contacts of one folder by how faithfully they arrived; each item counts once, under the
    worst that happened to it."""

    folder: str
    target: str
    exact: int = 0  # every property carried as it was
    changed: int = 0  # something changed (a time zone mapped, a phone filed elsewhere), nothing left out
    dropped: int = 0  # at least one property left out


class FidelityNote(BaseModel):
    """One property changed or left out, over all items: how many items, and a few of them as examples."""

    kind: Literal["changed", "dropped"]
    property: str
    items: int
    examples: list[str] = Field(default_factory=list)  # "subject: what happened"


class YearRow(BaseModel):
    year: int
    messages: int  # as the source held them when the plan was made


class RunRow(BaseModel):
    number: int
    started: datetime
    ended: datetime | None
    seconds: float | None
    outcome: str | None


class Totals(BaseModel):
    planned: int = 0
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    pending: int = 0
    already: int = 0
    excluded: int = 0
    bytes: int = 0


class EstimateRow(BaseModel):
    messages: int
    bytes: int
    seconds: float
    basis: str


class VerificationSummary(BaseModel):
    ok: bool
    hashes_compared: bool
    matched: int
    missing: int
    extra: int
    differs: int


class ReportData(BaseModel):
    """The result model every report format renders; its JSON form is versioned."""

    version: Literal[1] = REPORT_VERSION
    generated: datetime
    journal: str  # the journal's file name, not its full path
    source: str
    target: str
    mailbox: str  # the Microsoft 365 mailbox, as an address (from the target URL)
    dry_run: bool = False
    started: datetime | None = None
    ended: datetime | None = None
    seconds: float = 0.0  # time spent running, summed over runs
    messages_per_second: float | None = None
    mb_per_second: float | None = None
    totals: Totals
    folders: list[FolderRow] = Field(default_factory=list)
    years: list[YearRow] = Field(default_factory=list)
    fidelity: list[FidelityFolder] = Field(default_factory=list)  # folders of events and contacts only
    fidelity_notes: list[FidelityNote] = Field(default_factory=list)
    not_moved: list[NotMoved] = Field(default_factory=list)
    skipped: list[SkippedGroup] = Field(default_factory=list)
    exclusions: list[ExclusionRow] = Field(default_factory=list)
    runs: list[RunRow] = Field(default_factory=list)
    estimate: EstimateRow | None = None
    verification: VerificationSummary | None = None
    stopped: str | None = None
    source_problems: list[str] = Field(default_factory=list)
    problems: int = 0  # messages (or folders) that did not arrive as they should
    verdict: Literal["verified", "problems", "not verified"]


# --- the JSON the engine writes into the journal (RunResult.as_json, Verification.as_json) ---------


class _FolderOutcomeDoc(BaseModel):
    source: str
    target: str
    created: int = 0
    skipped: int = 0
    failed: int = 0
    already: int = 0
    excluded: int = 0
    bytes: int = 0


class _FailureDoc(BaseModel):
    folder: str
    key: str | None = None
    subject: str | None = None
    failure: str | None = None
    reason: str | None = None


class _RunDoc(BaseModel):
    version: Literal[1]
    source: str
    target: str
    dry_run: bool = False
    started: datetime
    ended: datetime | None = None
    folders: list[_FolderOutcomeDoc] = Field(default_factory=list)
    failures: list[_FailureDoc] = Field(default_factory=list)
    stopped: str | None = None
    source_problems: list[str] = Field(default_factory=list)


class _DifferenceDoc(BaseModel):
    verdict: str
    key: str | None = None
    message_id: str | None = None
    detail: str


class _FolderCheckDoc(BaseModel):
    source: str
    target: str
    verdict: str
    source_count: int = 0
    target_count: int = 0
    matched: int = 0
    missing: int = 0
    extra: int = 0
    differs: int = 0
    differences: list[_DifferenceDoc] = Field(default_factory=list)


class _VerificationDoc(BaseModel):
    version: Literal[1]
    ok: bool
    hashes_compared: bool = False
    folders: list[_FolderCheckDoc] = Field(default_factory=list)


_Doc = TypeVar("_Doc")


def _meta(journal: Journal, key: str, read: Callable[[str], _Doc]) -> _Doc | None:
    text = journal.meta(key)
    if text is None:
        return None
    try:
        return read(text)
    except ValidationError as exc:
        raise UserError(f"the journal {journal.path} holds a '{key}' this version cannot read "
                        f"({exc.errors()[0]['msg']})",
                        hint="make the report with the o365-migrate that ran it") from None


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


# --- building the report ---------------------------------------------------------------------

EXAMPLES = 3


class _FidelityAccount:
    """Sums the per-item fidelity accounts of a journal into per-folder counts and per-property notes."""

    def __init__(self) -> None:
        self.folders: dict[str, FidelityFolder] = {}
        self._notes: dict[tuple[str, str], FidelityNote] = {}

    def add(self, folder: str, target: str, subject: str | None, fidelity: Fidelity) -> None:
        row = self.folders.setdefault(folder, FidelityFolder(folder=folder, target=target))
        if fidelity.dropped:
            row.dropped += 1
        elif fidelity.changed:
            row.changed += 1
        else:
            row.exact += 1
        kinds: tuple[tuple[Literal["changed", "dropped"], list[tuple[str, str]]], ...] = (
            ("changed", fidelity.changed), ("dropped", fidelity.dropped))
        for kind, pairs in kinds:
            seen: set[str] = set()
            for prop, text in pairs:
                note = self._notes.setdefault((kind, prop), FidelityNote(kind=kind, property=prop, items=0))
                if prop not in seen:
                    note.items += 1
                    seen.add(prop)
                if len(note.examples) < EXAMPLES:
                    note.examples.append(f"{subject or '(no title)'}: {text}")

    def notes(self) -> list[FidelityNote]:
        return sorted(self._notes.values(), key=lambda n: (n.kind != "dropped", -n.items, n.property))


def mailbox_of(url: str) -> str:
    """The mailbox address a target URL names: `ews://anna@contoso.se?...` -> anna@contoso.se,
    `imaps://anna%40contoso.se@outlook.office365.com` -> anna@contoso.se."""
    try:
        parts = urlsplit(url)
        user = unquote(parts.username or "")
        host = parts.hostname or ""
    except ValueError:
        return ""
    if "@" in user or not user:
        return user
    return f"{user}@{host}" if parts.scheme.lower() in ("ews", "graph", "m365") and host else user


def report_data(journal: Journal, now: datetime | None = None, verification_json: str | None = None) -> ReportData:
    """Everything a report shows, from the journal alone; `verification_json` is a verify --json document
    to use when the journal holds none (a batch keeps one beside each journal)."""
    plan = _meta(journal, "plan", plan_from_json)
    last = _meta(journal, "last_run", _RunDoc.model_validate_json)
    check = _meta(journal, "verification", _VerificationDoc.model_validate_json)
    if check is None and verification_json is not None:
        try:
            check = _VerificationDoc.model_validate_json(verification_json)
        except ValidationError as exc:
            raise UserError(f"the verification beside {journal.path} cannot be read ({exc.errors()[0]['msg']})",
                            hint="verify again: o365-migrate verify PLAN --json verify.json") from None
    if plan is None and last is None:
        raise UserError(f"the journal {journal.path} holds no plan and no run",
                        hint="run the migration first: o365-migrate run PLAN")

    rows: dict[str, FolderRow] = {}
    for planned in plan.included() if plan else []:
        rows[planned.source] = FolderRow(source=planned.source, target="/".join(planned.target),
                                         kind=planned.kind.value, planned=planned.messages)
    for t in journal.totals():
        row = rows.setdefault(t.source, FolderRow(source=t.source, target=t.target))
        row.target = t.target
        row.moved, row.skipped, row.failed, row.pending = t.done, t.skipped, t.failed, t.pending
        row.bytes = t.bytes_done
    for done in last.folders if last else []:
        row = rows.setdefault(done.source, FolderRow(source=done.source, target=done.target))
        row.already, row.excluded = done.already, done.excluded

    # One problem per message, however many ways it shows: failed in the run and missing in the check.
    not_moved: dict[tuple[str, str | None], NotMoved] = {}
    skipped: dict[tuple[str, str], int] = {}
    found = {(fc.source, d.key) for fc in check.folders for d in fc.differences} if check else set()
    subjects: dict[tuple[str, str | None], str | None] = {}  # of the messages the check found a problem with
    account = _FidelityAccount()
    for folder, item in journal.items():
        if item.status == "done" and item.fidelity is not None:
            account.add(folder, rows[folder].target if folder in rows else folder, item.subject, item.fidelity)
        if (folder, item.source_key) in found:
            subjects[(folder, item.source_key)] = item.subject
        if item.status in ("failed", "pending"):
            reason = item.reason or item.failure or (
                "sent, but the answer never came: the next run checks the target" if item.status == "pending"
                else "failed")
            not_moved[(folder, item.source_key)] = NotMoved(folder=folder, key=item.source_key, subject=item.subject,
                                                            status=item.status, reason=reason)
        elif item.status == "skipped":
            group = (folder, item.reason or "skipped")
            skipped[group] = skipped.get(group, 0) + 1
    for failure in last.failures if last else []:
        if failure.key is None:  # a whole folder, never in the journal's rows
            not_moved[(failure.folder, None)] = NotMoved(folder=failure.folder, key=None, subject=None,
                                                         status="failed", reason=failure.reason or "failed")

    if check is not None:
        for fc in check.folders:
            row = rows.setdefault(fc.source, FolderRow(source=fc.source, target=fc.target))
            row.verdict, row.source_count, row.target_count = fc.verdict, fc.source_count, fc.target_count
            row.matched, row.missing, row.extra, row.differs = fc.matched, fc.missing, fc.extra, fc.differs
            for d in fc.differences:
                if d.verdict == "extra on target" or (fc.source, d.key) in not_moved:
                    continue
                not_moved[(fc.source, d.key)] = NotMoved(folder=fc.source, key=d.key,
                                                         subject=subjects.get((fc.source, d.key)),
                                                         status=d.verdict, reason=d.detail)

    runs = []
    for number, started, ended, outcome in journal.runs():
        begun = _when(started)
        assert begun is not None
        runs.append(RunRow(number=number, started=begun, ended=_when(ended),
                           seconds=None if ended is None else max(0.0, ended - started), outcome=outcome))
    seconds = sum(r.seconds or 0.0 for r in runs)
    started_at = runs[0].started if runs else (last.started if last else None)
    ended_at = max((r.ended for r in runs if r.ended), default=None) if runs else (last.ended if last else None)

    folders = list(rows.values())
    years: dict[int, int] = {}
    for planned in plan.included() if plan else []:
        for year, count in planned.years.items():
            years[year] = years.get(year, 0) + count
    totals = Totals(planned=sum(f.planned or 0 for f in folders),
                    **{name: sum(getattr(f, name) for f in folders)
                       for name in ("moved", "skipped", "failed", "pending", "already", "excluded", "bytes")})
    verification = None
    if check is not None:
        verification = VerificationSummary(
            ok=check.ok, hashes_compared=check.hashes_compared,
            **{name: sum(getattr(f, name) for f in check.folders)
               for name in ("matched", "missing", "extra", "differs")},
        )
    stopped = last.stopped if last else None
    problems = len(not_moved)
    if problems or stopped:
        verdict: Literal["verified", "problems", "not verified"] = "problems"
    elif verification is not None and verification.ok:
        verdict = "verified"
    else:
        verdict = "not verified"

    return ReportData(
        generated=now or datetime.now(UTC),
        journal=journal.path.name,
        source=plan.source.url if plan else last.source if last else "",
        target=plan.target.url if plan else last.target if last else "",
        mailbox=mailbox_of(plan.target.url if plan else last.target if last else ""),
        dry_run=last.dry_run if last else False,
        started=started_at,
        ended=ended_at,
        seconds=round(seconds, 1),
        messages_per_second=round(totals.moved / seconds, 2) if seconds else None,
        mb_per_second=round(totals.bytes / MB / seconds, 2) if seconds else None,
        totals=totals,
        folders=folders,
        years=[YearRow(year=y, messages=n) for y, n in sorted(years.items())],
        fidelity=list(account.folders.values()),
        fidelity_notes=account.notes(),
        not_moved=list(not_moved.values()),
        skipped=[SkippedGroup(folder=f, reason=r, count=n) for (f, r), n in skipped.items()],
        exclusions=[ExclusionRow(folder=e.folder, message=e.message, reason=e.reason)
                    for e in (plan.excluded if plan else [])],
        runs=runs,
        estimate=EstimateRow(**dataclasses.asdict(plan.estimate)) if plan and plan.estimate else None,
        verification=verification,
        stopped=stopped,
        source_problems=last.source_problems if last else [],
        problems=problems,
        verdict=verdict,
    )


def from_journal(path: Path, now: datetime | None = None, verification: Path | None = None) -> ReportData:
    if not path.is_file():
        raise UserError(f"the journal {path} does not exist",
                        hint="give the journal, or the plan it sits beside: o365-migrate report PLAN -o report.html")
    try:
        journal = Journal(path)
    except sqlite3.DatabaseError:
        raise UserError(f"{path} is not a journal", hint="give the plan, or its .journal.sqlite file") from None
    try:
        text = verification.read_text(encoding="utf-8") if verification and verification.is_file() else None
        return report_data(journal, now, text)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} is not a readable journal ({exc})",
                        hint="give the plan's .journal.sqlite file") from None
    finally:
        journal.shut()


def from_plan(path: Path, now: datetime | None = None) -> ReportData:
    """The report of the journal that sits beside a plan (`plan.yaml` -> `plan.journal.sqlite`)."""
    journal = journal_for_plan(path)
    if not journal.is_file():
        raise UserError(f"no journal beside the plan {path} (looked for {journal.name})",
                        hint=f"run it first: o365-migrate run {path}")
    return from_journal(journal, now)


def from_path(path: Path, now: datetime | None = None) -> ReportData:
    """A journal, or a plan whose journal is beside it."""
    return from_plan(path, now) if path.suffix.lower() in PLAN_SUFFIXES else from_journal(path, now)
