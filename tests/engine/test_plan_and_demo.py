"""The plan file as a person edits it, and the demo as a new user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from migrate.errors import ExitCode, UserError
from migrate.inventory import take_inventory
from migrate.plan import Connection, Filters, Transports, load_plan, make_plan, plan_from_json, plan_json, save_plan
from migrate.sources import open_source

DEMO_SECRET = "demo-Secret-Value-4711"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "O365M_DEMO_CLIENT_SECRET": DEMO_SECRET}
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, stdin=subprocess.DEVNULL, timeout=300)


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    with open_source("sample:?messages=3&big=2000000") as source:
        inventory = take_inventory(source)
    made = make_plan(inventory, Connection(url="sample:"), Connection(url="imaps://u@127.0.0.1"),
                     Filters(exclude_folders=["Skräp*"], max_message_size=1_000_000), bytes_per_second=None)
    path = tmp_path / "plan.yaml"
    save_plan(made, path)
    return path


def test_plan_round_trips_and_lists_what_is_left_out(plan_file: Path) -> None:
    made = load_plan(plan_file)
    assert [f.source for f in made.folders if not f.include] == ["Skräppost"]
    reasons = [e.reason for e in made.excluded]
    assert any("exclude-folder" in r for r in reasons)
    assert any("over the size limit" in r for r in reasons)  # the 2 MB message
    assert made.estimate is not None and made.estimate.messages == sum(f.messages for f in made.included())
    text = plan_file.read_text()
    assert "target: [Sent Items]" in text and "Åkesson & Söner" in text  # readable, not escaped


def test_a_bad_edit_names_the_line(plan_file: Path) -> None:
    lines = plan_file.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if "include: true" in line)
    lines[number] = lines[number].replace("include: true", "include: perhaps")
    plan_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as caught:
        load_plan(plan_file)
    assert f"line {number + 1}" in caught.value.one_line()
    assert "include" in caught.value.one_line()
    result = cli("run", str(plan_file))
    assert result.returncode == ExitCode.BAD_INPUT
    assert f"line {number + 1}" in result.stderr and "Traceback" not in result.stderr


def test_broken_yaml_and_unknown_keys_are_one_line_errors(tmp_path: Path, plan_file: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_plan(bad)
    extra = tmp_path / "extra.yaml"
    extra.write_text(plan_file.read_text() + "surprise: 1\n")
    with pytest.raises(UserError, match="surprise: not a field of a plan") as caught:
        load_plan(extra)
    assert "correct its name or remove it" in caught.value.one_line()


def test_the_journal_copy_of_a_plan_reads_back_the_same(plan_file: Path) -> None:
    """A plan made in memory is kept in the journal as JSON written without pydantic; the report reads
    it back with pydantic's validation: both must agree on every field (dates, roles, years, None)."""
    made = load_plan(plan_file)
    made.transports = Transports(mail="imap", chosen_by="--transport")
    made.filters.since = date(2020, 2, 29)
    text = plan_json(made)
    assert plan_from_json(text) == made
    assert json.loads(text)["created"].endswith("Z") and list(json.loads(text))[:3] == ["version", "created", "source"]
    with pytest.raises(ValueError, match="mail"):
        Transports(mail="smtp")  # type: ignore[arg-type]


def test_a_held_secret_is_never_shown_or_kept(plan_file: Path, tmp_path: Path) -> None:
    made = load_plan(plan_file)
    secret = "Hemligt-Lösen-9931"
    made.source = made.source.with_secret(secret)
    held = made.source.held_secret()
    assert held is not None and held() == secret
    assert made.target.held_secret() is None and load_plan(plan_file).source.held_secret() is None
    saved = tmp_path / "again.yaml"
    save_plan(made, saved)
    for shown in (repr(made), str(made.source), plan_json(made), saved.read_text()):
        assert secret not in shown


def test_demo_runs_end_to_end_and_writes_a_verified_report(tmp_path: Path) -> None:
    result = cli("demo", "--dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout
    report = tmp_path / "demo" / "report.html"
    assert report.exists() and "All 251 messages moved and verified" in " ".join(report.read_text().split())
    journal = tmp_path / "demo" / "plan.journal.sqlite"
    shown = cli("report", str(journal), "-o", str(tmp_path / "again.html"), "--json", "-")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["version"] == 1
    # The app's secret lands in no file the demo wrote (the sandbox keeps only what it must check).
    assert DEMO_SECRET not in result.stdout + result.stderr
    for path in (tmp_path / "demo").rglob("*"):
        if path.is_file() and "exchange-sandbox" not in path.parts:
            assert DEMO_SECRET.encode() not in path.read_bytes(), path
