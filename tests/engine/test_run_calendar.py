"""Calendars and contacts through the engine into the Exchange sandbox: plan, run, resume, dedupe, verify, report.

The corpus's .ics and .vcf files go in through the ics:/vcf: sources, out through the EWS target (real
msal, real exchangelib, every EWS request checked against Microsoft's schema).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from exchangelib.protocol import close_connections

from migrate.engine.journal import JournalPlace, open_journal
from migrate.engine.runner import Runner
from migrate.migration import open_plan_source, open_plan_target, run_plan
from migrate.model import Folder, ItemKind
from migrate.plan import Plan, load_plan
from migrate.reporting.model import from_journal
from migrate.reporting.render import render_html
from migrate.sandbox.server import Sandbox
from migrate.targets import ExistingMessage, Target, TargetFolder, UploadItem, UploadResult
from migrate.targets.ews_pim import IDENTITY_SET
from tests.conftest import shared_dir
from tests.engine.test_run_ews import MAILBOX, cli, env, make_plan
from tests.engine.test_run_ews import sandbox as sandbox
from tests.stores import POSTGRES, SQLITE, JournalStore


@pytest.fixture(autouse=True)
def fresh_protocols() -> Iterator[None]:
    yield
    close_connections()


IDENTITY_KEY = f"named:{IDENTITY_SET}:name:o365-migrate-identity:String"


def _held(sb: Sandbox, home: str) -> Counter[tuple[str, str]]:
    """(folder, identity) of every item under Calendar or Contacts, with how often it is there."""
    found: Counter[tuple[str, str]] = Counter()
    for folder in _folders(sb, home):
        for item in sb.items(MAILBOX, folder):
            assert item.data is not None
            found[(folder, item.extended_properties[IDENTITY_KEY][0])] += 1
    return found


def _in_source(plan: Plan, moved: set[tuple[str, str]] | None = None) -> Counter[tuple[str, str]]:
    """(target folder, identity) of every item the source holds (of those in `moved`, when given)."""
    want: Counter[tuple[str, str]] = Counter()
    with open_plan_source(plan) as source:
        folders = {f.name: f for f in source.folders()}
        for planned in plan.included():
            for ref in source.messages(folders[planned.source]):
                if moved is None or (planned.source, ref.key) in moved:
                    want[("/".join(planned.target), ref.message_id or "")] += 1
    return want


def _moved(journal_path: JournalPlace) -> set[tuple[str, str]]:
    journal = open_journal(journal_path)
    try:
        return {(folder, r.source_key) for folder, r in journal.items() if r.status in ("done", "skipped")}
    finally:
        journal.shut()


def _events(sb: Sandbox) -> Counter[tuple[str, str]]:
    return _held(sb, "Calendar")


def _folders(sb: Sandbox, home: str) -> list[str]:
    root = sb.store.distinguished_folder(MAILBOX, home.lower())
    assert root is not None
    return [home] + [f"{home}/{c.display_name}" for c in sb.store.child_folders(root.id)]


def test_corpus_calendars_plan_run_verify_and_rerun(sandbox: Sandbox, tmp_path: Path) -> None:
    root = tmp_path / "ics"
    shutil.copytree(shared_dir("corpus", "ics"), root)
    plan_path = make_plan(sandbox, tmp_path, f"ics:{root}")
    plan = load_plan(plan_path)
    assert plan.folders and all(f.kind is ItemKind.EVENT for f in plan.folders)
    assert sum(1 for f in plan.folders if f.target == ["Calendar"]) == 1  # one calendar is the default
    assert all(f.target[0] == "Calendar" and len(f.target) <= 2 for f in plan.folders)
    first = cli(tmp_path, "run", str(plan_path), "-q", "--json", str(tmp_path / "run1.json"))
    run1 = json.loads((tmp_path / "run1.json").read_text())
    created = run1["totals"]["created"]
    assert created > 100, first.stdout + first.stderr
    # Broken items fail alone, with a reason; nothing stops the run.
    assert run1["stopped"] is None
    assert all(f["reason"] for f in run1["failures"])
    events = _events(sandbox)
    journal_path = plan_path.with_name(plan_path.stem + ".journal.sqlite")
    assert events == _in_source(plan, _moved(journal_path))  # each event once, in its own folder

    again = cli(tmp_path, "run", str(plan_path), "-q", "--json", str(tmp_path / "run2.json"))
    run2 = json.loads((tmp_path / "run2.json").read_text())
    assert run2["totals"]["created"] == 0, again.stdout + again.stderr
    assert _events(sandbox) == events

    checked = cli(tmp_path, "verify", str(plan_path), "-q", "--json", str(tmp_path / "verify.json"))
    verification = json.loads((tmp_path / "verify.json").read_text())
    differs = [d for f in verification["folders"] for d in f["differences"] if d["verdict"] == "differs"]
    assert differs == [], differs[:5]
    missing = [d for f in verification["folders"] for d in f["differences"] if d["verdict"] == "missing on target"]
    assert missing == [], missing[:5]  # the failed ones are left out of the check, not missing
    assert checked.returncode == 0, checked.stdout + checked.stderr

    report = from_journal(plan_path.with_name(plan_path.stem + ".journal.sqlite"))
    assert sum(f.exact + f.changed + f.dropped for f in report.fidelity) == created
    assert report.fidelity_notes and {n.kind for n in report.fidelity_notes} == {"changed", "dropped"}
    html = render_html(report)
    assert "how faithfully they arrived" in html and report.fidelity_notes[0].property in html


def test_corpus_address_books_arrive_once_and_rerun_creates_nothing(sandbox: Sandbox,
                                                                     tmp_path: Path) -> None:
    root = tmp_path / "vcf"
    shutil.copytree(shared_dir("corpus", "vcf"), root)
    plan_path = make_plan(sandbox, tmp_path, f"vcf:{root}")
    plan = load_plan(plan_path)
    assert all(f.kind is ItemKind.CONTACT and f.target[0] == "Contacts" for f in plan.folders)
    cli(tmp_path, "run", str(plan_path), "-q", "--json", str(tmp_path / "run1.json"))
    run1 = json.loads((tmp_path / "run1.json").read_text())
    assert run1["stopped"] is None and run1["totals"]["created"] > 500
    stored = sum(len(sandbox.items(MAILBOX, f)) for f in _folders(sandbox, "Contacts"))
    assert stored == run1["totals"]["created"]
    journal_path = plan_path.with_name(plan_path.stem + ".journal.sqlite")
    assert _held(sandbox, "Contacts") == _in_source(plan, _moved(journal_path))
    cli(tmp_path, "run", str(plan_path), "-q", "--json", str(tmp_path / "run2.json"))
    run2 = json.loads((tmp_path / "run2.json").read_text())
    assert run2["totals"]["created"] == 0  # by UID, and by content fingerprint for cards without one
    assert sum(len(sandbox.items(MAILBOX, f)) for f in _folders(sandbox, "Contacts")) == stored
    checked = cli(tmp_path, "verify", str(plan_path), "-q", "--json", str(tmp_path / "verify.json"))
    verification = json.loads((tmp_path / "verify.json").read_text())
    problems = [(f["source"], d) for f in verification["folders"] for d in f["differences"]
                if d["verdict"] != "extra on target"]
    assert problems == [], problems[:5]
    assert checked.returncode == 0


class Killed(BaseException):
    """What a kill looks like to the run: nothing after it happens, in any thread."""


class KilledAfterUpload(Target):
    """The EWS target, killed right after its first batch landed: the journal never hears of it."""

    def __init__(self, inner: Target) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.url = inner.url

    def ensure_folder(self, path: tuple[str, ...], source: Folder | None = None) -> TargetFolder:
        return self.inner.ensure_folder(path, source)

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        self.inner.upload(folder, items)
        raise Killed

    def existing(self, folder: TargetFolder) -> Iterator[ExistingMessage]:
        return self.inner.existing(folder)

    def find(self, folder: TargetFolder, message_ids: Iterable[str]) -> dict[str, list[ExistingMessage]]:
        return self.inner.find(folder, message_ids)

    def close(self) -> None:
        self.inner.close()


# The journal in PostgreSQL for one kind only: the store's part (pending rows found again) is the same for both.
@pytest.mark.parametrize(("kind", "journal_store"), [("ics", SQLITE), ("vcf", SQLITE), ("ics", POSTGRES)],
                         indirect=["journal_store"])
def test_a_kill_after_items_landed_resumes_without_duplicates(sandbox: Sandbox, tmp_path: Path, kind: str,
                                                              journal_store: JournalStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env(tmp_path).items():
        monkeypatch.setenv(name, value)
    source = shared_dir("corpus", kind, "ical4j" if kind == "ics" else "ez-vcard")
    plan_path = make_plan(sandbox, tmp_path, f"{kind}:{source}")
    plan = load_plan(plan_path)
    plan.dedupe = False  # only the journal's pending rows make the second run look at the target
    journal_path = journal_store.place("journal")
    journal = open_journal(journal_path)
    with pytest.raises(Killed):
        Runner(plan, lambda: open_plan_source(plan), lambda: KilledAfterUpload(open_plan_target(plan)), journal,
               workers=1).run()
    pending = list(journal.items(status="pending"))
    journal.shut()
    assert pending  # sent or queued, never journaled
    home = "Calendar" if kind == "ics" else "Contacts"
    landed = _held(sandbox, home)
    assert sum(landed.values()) >= 1  # the first batch is there, unknown to the journal
    result = run_plan(plan, journal_path, workers=1)
    assert result.stopped is None
    assert _held(sandbox, home) == _in_source(plan, _moved(journal_path))  # nothing twice, nothing lost
    journal = open_journal(journal_path)
    try:
        assert not list(journal.items(status="pending"))
        skipped = [r for _, r in journal.items(status="skipped")]
        assert len(skipped) == sum(landed.values())  # found by identity, not sent again
        assert all(r.reason == "already on the target" for r in skipped)
    finally:
        journal.shut()
