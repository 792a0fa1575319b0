"""A batch's summary, per-mailbox reports and guides, from a batch folder made of real runs into the sandbox."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest

from migrate.engine.journal import Journal
from migrate.reporting.batch import batch_summary
from migrate.reporting.model import from_journal
from migrate.reporting.render import batch_csv, render_batch_html
from tests.conftest import shared_dir
from tests.reporting.batchdir import BatchFolder, build_batch
from tests.reporting.test_render import external_references


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchFolder]:
    corpus = shared_dir("corpus")
    root = tmp_path_factory.mktemp("batch")
    work = tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as mp:
        yield build_batch(root, work, corpus, mp)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "160"}, stdin=subprocess.DEVNULL, timeout=300)


def _journal_counts(path: Path) -> dict[str, int]:
    journal = Journal(path)
    try:
        counts: dict[str, int] = {}
        for _, item in journal.items():
            counts[item.status] = counts.get(item.status, 0) + 1
        return counts
    finally:
        journal.shut()


def test_summary_holds_every_mailbox_with_its_journals_numbers(batch: BatchFolder) -> None:
    summary = batch_summary(batch.root)
    assert [m.id for m in summary.mailboxes] == ["anna", "bo", "cecilia", "david"]
    anna, bo, cecilia, david = summary.mailboxes
    assert anna.mailbox == "anna@contoso.example" and anna.state == "done"
    assert anna.report is not None and bo.report is not None
    counts = _journal_counts(batch.journals["anna"])
    assert anna.report.totals.moved == counts["done"] > 0
    assert anna.report.totals.failed == counts["failed"] == 1  # the refused message
    assert anna.report.verdict == "problems"
    refused = [n for n in anna.report.not_moved if n.status == "failed"]
    assert len(refused) == 1 and refused[0].subject and "ErrorMimeContentConversionFailed" in refused[0].reason
    # The verification was read: every folder has a verdict, from the journal or verify.json beside it.
    assert all(f.verdict is not None for f in anna.report.folders if f.planned)
    assert bo.report.fidelity and sum(f.exact + f.changed + f.dropped for f in bo.report.fidelity) \
        == bo.report.totals.moved
    assert {f.kind for f in bo.report.folders} == {"event"}
    assert cecilia.report is None and cecilia.state == "failed" and cecilia.error
    assert david.report is None and david.state == "pending"
    assert summary.totals.moved == anna.report.totals.moved + bo.report.totals.moved
    assert summary.problems >= 2  # anna's refused message, cecilia's failure
    assert summary.not_done == 2


def test_batch_report_cli_writes_summary_reports_and_guides(batch: BatchFolder, tmp_path: Path) -> None:
    out = tmp_path / "rapport"
    result = cli("report", "--batch", str(batch.root), "-o", str(out), "--lang", "sv", "--guides", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Sammanfattning av flytten" in index and "misslyckades" in index and "väntar" in index
    assert "the source refused the sign-in" in index
    assert 'href="mailboxes/anna.html"' in index and 'href="mailboxes/bo.html"' in index
    assert not external_references(index)
    anna = (out / "mailboxes" / "anna.html").read_text(encoding="utf-8")
    assert "Rapport över e-postflytten" in anna and "anna@contoso.example" in anna and "<svg" in anna
    bo = (out / "mailboxes" / "bo.html").read_text(encoding="utf-8")
    assert "Kalendrar och kontakter: hur troget de kom fram" in bo
    guide = (out / "guides" / "bo.html").read_text(encoding="utf-8")
    assert "Din nya brevlåda i Microsoft 365" in guide and "Din kalender finns under Kalender" in guide
    assert not (out / "mailboxes" / "cecilia.html").exists()  # nothing ran: nothing to report on


def test_batch_csv_and_json_agree_with_the_summary(batch: BatchFolder, tmp_path: Path) -> None:
    summary = batch_summary(batch.root)
    rows = list(csv.DictReader(io.StringIO(batch_csv(summary))))
    assert [r["id"] for r in rows] == ["anna", "bo", "cecilia", "david"]
    assert sum(int(r["moved"] or 0) for r in rows) == summary.totals.moved
    assert rows[2]["state"] == "failed" and rows[2]["result"] == "none" and rows[2]["error"]
    result = cli("report", "--batch", str(batch.root), "-o", str(tmp_path / "j"), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "j" / "summary.json").read_text(encoding="utf-8"))
    assert doc["version"] == 1 and doc["totals"]["moved"] == summary.totals.moved
    anna = json.loads((tmp_path / "j" / "mailboxes" / "anna.json").read_text(encoding="utf-8"))
    assert anna["totals"] == summary.mailboxes[0].report.totals.model_dump()  # type: ignore[union-attr]


def test_batch_summary_pdf_and_a_single_runs_pdf(batch: BatchFolder, tmp_path: Path) -> None:
    html = render_batch_html(batch_summary(batch.root), "en")
    assert "Migration summary" in html
    result = cli("report", str(batch.journals["anna"]), "-o", str(tmp_path / "anna.pdf"), "--format", "pdf",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(tmp_path / "anna.pdf").pages)
    data = from_journal(batch.journals["anna"])
    assert "anna@contoso.example" in text
    assert "1 problem(s) to look at" in text
    assert f"{data.totals.moved}\nMoved" in text or f"{data.totals.moved} Moved" in text


def test_a_batch_folder_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    result = cli("report", "--batch", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 3
    assert "is not a batch folder" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "batch.json").write_text('{"version": 1, "mailboxes": [{"id": "x", "journal": "../../etc/j"}]}')
    result = cli("report", "--batch", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 3 and "outside the batch folder" in result.stderr
