"""Real journals for report tests, written the way `run` and `verify` write them, in either journal store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from migrate.engine.journal import ItemRecord, JournalPlace, open_journal
from migrate.engine.runner import FolderOutcome, RunResult
from migrate.engine.verify import Difference, FolderCheck, Verdict, Verification
from migrate.model import FolderRole
from migrate.plan import Connection, Estimate, Exclusion, FolderPlan, Plan, plan_json
from migrate.reporting import ReportData, from_journal, report_data
from tests.stores import set_run_clock

HOSTILE = "<script>alert(1)</script> Åäö"
CUSTOMERS = "Kunder/Åkesson & Söner"
STARTED = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
SECONDS = 50.0
P = TypeVar("P", bound=JournalPlace)  # the place it was given: a file, or a journal in the shared database


def make_plan() -> Plan:
    return Plan(
        source=Connection(url="imaps://anna@mail.example.se", password_env="PW"),
        target=Connection(url="ews://anna@contoso.onmicrosoft.com"),
        folders=[
            FolderPlan(source="INBOX", path=["INBOX"], target=["Inbox"], role=FolderRole.INBOX, messages=6,
                       bytes=6000, years={2019: 1, 2024: 2, 2026: 3}),
            FolderPlan(source=CUSTOMERS, path=["Kunder", "Åkesson & Söner"], target=["Kunder", "Åkesson & Söner"],
                       messages=3, bytes=3000, years={2024: 3}),
            FolderPlan(source="[Gmail]/All Mail", path=["[Gmail]", "All Mail"], target=["All Mail"],
                       role=FolderRole.ALL, include=False, messages=9),
        ],
        excluded=[
            Exclusion(folder="[Gmail]/All Mail", reason="holds messages of other folders again"),
            Exclusion(folder="INBOX", message="7:99", reason="160.0 MB is over the size limit of 150 MB"),
        ],
        estimate=Estimate(messages=9, bytes=9000, seconds=42.0, basis="0.50 MB/s per mailbox"),
    )


def write_journal(path: P, *, problems: bool = True, verified: bool = True) -> P:
    """INBOX: 4 moved, 1 already there, 1 failed (if problems); Kunder: 3 moved, 1 missing on verify (if problems)."""
    plan = make_plan()
    journal = open_journal(path)
    try:
        journal.set_meta("plan", plan_json(plan))
        run = journal.start_run()
        inbox = journal.folder("INBOX", "Inbox")
        customers = journal.folder(CUSTOMERS, "Kunder/Åkesson & Söner")
        records = [ItemRecord(f"1:{i}", "done", None, f"<m{i}@x>", 1000, f"Hej {i}", f"t{i}") for i in range(4)]
        records.append(ItemRecord("1:4", "skipped", None, "<m4@x>", 1000, "Dubblett", reason="already on the target"))
        failures = []
        if problems:
            records.append(ItemRecord("1:5", "failed", None, "<m5@x>", 1000, HOSTILE, failure="rejected",
                                      reason="the target refused it: malformed header"))
            failures.append({"folder": "INBOX", "key": "1:5", "subject": HOSTILE, "failure": "rejected",
                             "reason": "the target refused it: malformed header"})
        journal.close(inbox, records)
        journal.close(customers, [ItemRecord(f"2:{i}", "done", None, f"<k{i}@x>", 1024, f"Offert {i}", f"u{i}")
                                  for i in range(3)])
        journal.end_run(run, "failed" if problems else "done")
        set_run_clock(journal, run, STARTED.timestamp(), STARTED.timestamp() + SECONDS)

        result = RunResult(plan.source.url, plan.target.url, str(journal.path), False, STARTED,
                           datetime.fromtimestamp(STARTED.timestamp() + SECONDS, UTC))
        result.folders = [
            FolderOutcome("INBOX", "Inbox", created=4, skipped=1, failed=int(problems), bytes=4000),
            FolderOutcome(CUSTOMERS, "Kunder/Åkesson & Söner", created=3, bytes=3072),
        ]
        result.failures = failures
        journal.set_meta("last_run", json.dumps(result.as_json()))

        if verified:
            check = Verification(folders=[
                FolderCheck("INBOX", "Inbox", source_count=6, target_count=6, matched=5, excluded=int(problems),
                            differences=[Difference(Verdict.EXTRA, None, "old1", "<old@x>",
                                                    "on the target but not in the source")]),
                FolderCheck(CUSTOMERS, "Kunder/Åkesson & Söner", source_count=3, target_count=3 - problems,
                            matched=3 - problems,
                            differences=[Difference(Verdict.MISSING, "2:2", None, "<k2@x>",
                                                    "in the source but not on the target")] if problems else []),
            ])
            journal.set_meta("verification", json.dumps(check.as_json()))
    finally:
        journal.shut()
    return path


def report_of(place: JournalPlace, now: datetime | None = None) -> ReportData:
    """The report's data from a journal in either store: a file the way `report JOURNAL` reads it, a journal in
    the shared database the way a distributed batch's mailbox is read (the same `report_data`)."""
    if isinstance(place, Path):
        return from_journal(place, now=now)
    journal = open_journal(place)
    try:
        return report_data(journal, now)
    finally:
        journal.shut()
