"""The HTML report: built from a real journal only (in either store), escaped, self-contained, and loud on a
missing field."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import pytest

from migrate.engine.journal import journal_for_plan
from migrate.errors import ExitCode, UserError
from migrate.plan import save_plan
from migrate.reporting import ReportData, from_journal, from_path, render_html
from migrate.reporting.render import environment
from migrate.reporting.strings import STRINGS
from tests.reporting.journals import CUSTOMERS, HOSTILE, SECONDS, STARTED, make_plan, report_of, write_journal
from tests.stores import SQLITE, JournalStore

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "160"}, stdin=subprocess.DEVNULL, timeout=60)


@pytest.fixture
def data(tmp_path: Path) -> ReportData:
    return from_journal(write_journal(tmp_path / "plan.journal.sqlite"), now=NOW)


def test_the_model_holds_what_the_journal_says(journal_store: JournalStore) -> None:
    data = report_of(write_journal(journal_store.place("plan")), now=NOW)
    assert (data.source, data.target) == ("imaps://anna@mail.example.se", "ews://anna@contoso.onmicrosoft.com")
    # The shared store has no file: its journal is named by the last part of its key (postgresql:tests/plan).
    assert data.journal == ("plan.journal.sqlite" if journal_store.kind == SQLITE else "plan")
    assert data.totals.moved == 7 and data.totals.skipped == 1 and data.totals.failed == 1
    assert data.totals.bytes == 4000 + 3 * 1024
    assert data.started == STARTED and data.seconds == SECONDS
    assert data.messages_per_second == round(7 / SECONDS, 2)
    assert data.mb_per_second == round((4000 + 3072) / 1024 / 1024 / SECONDS, 2)
    inbox, customers = data.folders
    assert (inbox.source, inbox.target, inbox.planned, inbox.moved, inbox.failed) == ("INBOX", "Inbox", 6, 4, 1)
    assert (inbox.verdict, inbox.extra, inbox.matched) == ("extra on target", 1, 5)
    assert (customers.source, customers.verdict, customers.missing) == (CUSTOMERS, "missing on target", 1)
    # The failed message is one problem, the message missing on verify another.
    assert data.problems == 2 and data.verdict == "problems"
    failed, missing = data.not_moved
    assert (failed.folder, failed.subject, failed.status) == ("INBOX", HOSTILE, "failed")
    assert failed.reason == "the target refused it: malformed header"
    assert (missing.folder, missing.key, missing.status) == (CUSTOMERS, "2:2", "missing on target")
    assert missing.subject == "Offert 2"  # from the journal's row of the message the check did not find
    assert [(g.folder, g.reason, g.count) for g in data.skipped] == [("INBOX", "already on the target", 1)]
    assert [e.folder for e in data.exclusions] == ["[Gmail]/All Mail", "INBOX"]
    assert data.estimate is not None and data.estimate.seconds == 42.0
    assert data.verification is not None and not data.verification.ok
    assert [(r.number, r.seconds, r.outcome) for r in data.runs] == [(1, SECONDS, "failed")]


def test_html_shows_numbers_verdict_and_what_did_not_move(data: ReportData) -> None:
    html = render_html(data)
    assert "2 problem(s) to look at" in html
    assert "imaps://anna@mail.example.se" in html and "ews://anna@contoso.onmicrosoft.com" in html
    assert "the target refused it: malformed header" in html
    assert "in the source but not on the target" in html
    assert "160.0 MB is over the size limit of 150 MB" in html
    assert "Kunder/Åkesson &amp; Söner" in html  # escaped, not dropped
    assert "50\u00a0s" in html and "42\u00a0s" in html  # actual and estimated duration
    assert "0.14 messages/s" in html
    assert "missing on target: 1" in html and "Offert 2" in html
    assert "Nov 29, 2026, 09:00 UTC" in html


def test_hostile_subject_is_text_not_markup(data: ReportData) -> None:
    html = render_html(data)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Åäö" in html
    assert "<script" not in html.lower()


def test_report_is_self_contained(data: ReportData) -> None:
    html = render_html(data)
    links = re.findall(r"""\b(?:src|href|action|srcset)\s*=\s*["']?([^"'\s>]*)""", html, re.IGNORECASE)
    assert not [u for u in links if "http" in u.lower() or u.startswith("//")]
    assert "<link" not in html and "<img" not in html and "url(" not in html and "@import" not in html


def test_all_verified(journal_store: JournalStore) -> None:
    data = report_of(write_journal(journal_store.place("j"), problems=False), now=NOW)
    assert data.verdict == "verified" and data.problems == 0
    html = render_html(data)
    assert "All 7 messages moved and verified" in html
    assert "Nothing: every message that was meant to move has moved." in html


def test_a_stopped_run_is_not_all_well(journal_store: JournalStore) -> None:
    place = write_journal(journal_store.place("j"), problems=False)
    journal = journal_store.open("j")
    last = json.loads(journal.meta("last_run") or "{}")
    journal.set_meta("last_run", json.dumps({**last, "stopped": "the mailbox is full"}))
    journal.shut()
    data = report_of(place, now=NOW)
    assert data.verdict == "problems" and data.problems == 0
    html = render_html(data)
    assert "The migration stopped before the end" in html and "the mailbox is full" in html


def test_not_yet_verified(journal_store: JournalStore) -> None:
    data = report_of(write_journal(journal_store.place("j"), problems=False, verified=False), now=NOW)
    assert data.verdict == "not verified" and data.verification is None
    assert "7 messages moved, not yet verified" in render_html(data)


def test_a_missing_field_fails_the_render(data: ReportData) -> None:
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ data.totals.movde }}").render(data=data, t=STRINGS["en"])


def test_a_missing_string_fails_the_render(data: ReportData, monkeypatch: pytest.MonkeyPatch) -> None:
    partial = {k: v for k, v in STRINGS["en"].items() if k != "exclusions"}
    monkeypatch.setitem(STRINGS, "xx", partial)
    with pytest.raises(jinja2.UndefinedError):
        render_html(data, "xx")


def test_a_plan_finds_its_journal(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    write_journal(journal_for_plan(plan))
    assert from_path(plan, now=NOW).totals.moved == 7
    with pytest.raises(UserError, match="no journal beside the plan"):
        from_path(tmp_path / "other.yaml")


def test_a_journal_from_a_newer_version_is_refused(journal_store: JournalStore) -> None:
    place = write_journal(journal_store.place("j"))
    journal = journal_store.open("j")
    last = json.loads(journal.meta("last_run") or "{}")
    journal.set_meta("last_run", json.dumps({**last, "version": 2}))
    journal.shut()
    with pytest.raises(UserError, match="'last_run' this version cannot read"):
        report_of(place)


def test_an_empty_journal_says_what_to_do(journal_store: JournalStore) -> None:
    journal_store.open("j").shut()
    with pytest.raises(UserError, match="holds no plan and no run"):
        report_of(journal_store.place("j"))


def test_cli_writes_html_and_json(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan)
    write_journal(journal_for_plan(plan))
    (tmp_path / "report.html").write_text("old")
    result = cli("report", str(plan), "-o", "report.html", "--json", "report.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "2 problem(s) to look at" in html
    assert "&lt;script&gt;" in html
    doc = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert doc["version"] == 1 and doc["verdict"] == "problems" and doc["totals"]["moved"] == 7
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written via rename
    # The journal itself works as the argument too.
    again = cli("report", "plan.journal.sqlite", "-o", "direct.html", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "wrote direct.html: problems" in again.stdout
    assert "2 problem(s) to look at" in (tmp_path / "direct.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("argument", ["missing.journal.sqlite", "missing.yaml"])
def test_cli_missing_journal_is_one_line_and_exit_3(tmp_path: Path, argument: str) -> None:
    result = cli("report", argument, "-o", "report.html", cwd=tmp_path)
    assert result.returncode == ExitCode.BAD_INPUT == 3
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "report.html").exists()
    assert not (tmp_path / "missing.journal.sqlite").exists()  # looking did not create it


def test_cli_refuses_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database " * 100)
    result = cli("report", "notes.txt", "-o", "report.html", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "is not a journal" in result.stderr


def test_cli_formats_and_guides_for_a_single_run(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan)
    write_journal(journal_for_plan(plan))
    as_csv = cli("report", str(plan), "--format", "csv", "-o", "-", cwd=tmp_path)
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.startswith("record,mailbox,folder,")
    assert "not_moved,anna@contoso.onmicrosoft.com" in as_csv.stdout
    made = cli("report", str(plan), "-o", "rapport.html", "--lang", "sv", "--guides", "--keep-days", "14", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "Rapport över e-postflytten" in (tmp_path / "rapport.html").read_text(encoding="utf-8")
    guide = (tmp_path / "rapport.guide.html").read_text(encoding="utf-8")
    assert "Din nya brevlåda i Microsoft 365" in guide and "i 14 dagar" in guide
    alone = cli("guide", str(plan), "-o", "guide.json", "--format", "json", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    doc = json.loads((tmp_path / "guide.json").read_text(encoding="utf-8"))
    assert doc["mailbox"] == "anna@contoso.onmicrosoft.com" and doc["old_account"] == "mail.example.se"
    assert doc["verified"] is False and doc["keep_days"] == 30
    no_output = cli("report", str(plan), cwd=tmp_path)
    assert no_output.returncode == 2 and "give -o FILE" in no_output.stderr
