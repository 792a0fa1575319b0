"""`o365-migrate copy` through the real entry point: a copy, its JSON, a failure, and every bad input.

`copy SOURCE TARGET` is `run SOURCE --to TARGET`: the engine, with a journal in the state folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.errors import ExitCode
from tests import corpus
from tests.servers.dovecot import Dovecot, free_port
from tests.targets.cases import PASSWORD, add_users, dovecot_account, fresh_mailbox


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run([sys.executable, "-m", "migrate", "copy", *args], capture_output=True, text=True,
                          env=full_env, stdin=subprocess.DEVNULL, timeout=300)


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the journals go (XDG_STATE_HOME), inside the test's own folder."""
    path = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(path))
    return path


@pytest.fixture(scope="module")
def source_user(dovecot: Dovecot) -> str:
    user = fresh_mailbox("cli-src")
    add_users(dovecot, [user])
    corpus.load_into_dovecot(dovecot, user, PASSWORD, samplebox.build(4))
    return user


def test_copy_from_imap_then_again_as_json(dovecot: Dovecot, source_user: str, state_home: Path) -> None:
    target_user = dovecot_account(dovecot)
    args = [f"imaps://{source_user}@127.0.0.1:{dovecot.ports['imaps']}", "--password-env", "PW",
            "--ca-file", str(dovecot.ca_path),
            f"imap://{target_user}@127.0.0.1:{dovecot.ports['imap']}", "--target-password-env", "PW",
            "--target-ca-file", str(dovecot.ca_path)]
    first = run(*args, env={"PW": PASSWORD})
    assert first.returncode == 0, first.stderr
    assert "Run: imaps://" in first.stdout and "Sent Items" in first.stdout and "Total" in first.stdout
    [journal] = (state_home / "o365-migrate" / "journals").glob("*.sqlite")
    assert f"Journal: {journal}" in first.stdout.replace("\n", "")
    again = run(*args, "--json", "-", "-q", env={"PW": PASSWORD})
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    # The journal of the first copy knows every message: nothing is listed on the target, nothing sent.
    assert (doc["totals"]["created"], doc["totals"]["already"], doc["totals"]["failed"]) == (0, 40, 0)
    assert doc["journal"] == str(journal) and doc["exit_code"] == 0
    assert {f["source"]: f["target"] for f in doc["folders"]}["Skräppost"] == "Junk Email"
    assert PASSWORD not in first.stdout + first.stderr + again.stdout + again.stderr
    assert PASSWORD.encode() not in journal.read_bytes()


def test_copy_takes_runs_options(dovecot: Dovecot, source_user: str, tmp_path: Path, state_home: Path) -> None:
    target_user = dovecot_account(dovecot)
    args = [f"imaps://{source_user}@127.0.0.1:{dovecot.ports['imaps']}", "--password-env", "PW",
            "--ca-file", str(dovecot.ca_path),
            f"imaps://{target_user}@127.0.0.1:{dovecot.ports['imaps']}", "--target-password-env", "PW",
            "--target-ca-file", str(dovecot.ca_path)]
    dry = run(*args, "--dry-run", "--json", "-", env={"PW": PASSWORD})
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["totals"]["created"] == 40 and json.loads(dry.stdout)["dry_run"]
    assert not list((state_home / "o365-migrate" / "journals").glob("*"))  # a dry run keeps no journal
    journal, events = tmp_path / "copy.sqlite", tmp_path / "events.jsonl"
    done = run(*args, "-j", "2", "-q", "--journal", str(journal), "--log-json", str(events),
               "--json", str(tmp_path / "result.json"), env={"PW": PASSWORD})
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    # A fresh journal and dedupe on: had the dry run uploaded anything, it would be skipped here.
    assert (result["totals"]["created"], result["totals"]["skipped"]) == (40, 0)
    assert result["journal"] == str(journal) and journal.is_file()
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(e.get("total_items") for e in logged)


def test_a_message_that_fails_is_listed_and_the_exit_code_says_so(dovecot: Dovecot, tmp_path: Path) -> None:
    target_user = dovecot_account(dovecot)
    (tmp_path / "mail" / "Kunder").mkdir(parents=True)
    (tmp_path / "mail" / "Kunder" / "1.eml").write_bytes(b"Message-ID: <ok@example.se>\r\nSubject: ok\r\n\r\nhej\r\n")
    (tmp_path / "mail" / "Kunder" / "2.eml").write_bytes(b"")  # Dovecot will not store an empty message
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    result = run(f"eml:{tmp_path / 'mail'}", f"imaps://{target_user}@127.0.0.1:{dovecot.ports['imaps']}",
                 "--target-password-file", str(secret), "--target-ca-file", str(dovecot.ca_path))
    assert result.returncode == ExitCode.FAILED, (result.stdout, result.stderr)
    assert "1 item(s) did not move" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "--retry-failed" in result.stderr  # refused: the next run alone would not send it again
    assert "Kunder/2.eml" in result.stdout and "rejected" in result.stdout and "zero byte" in result.stdout


@pytest.mark.parametrize(
    ("target", "args", "env", "code", "words"),
    [
        ("imaps://{target}@127.0.0.1:{imaps}", ["--target-password-env", "TPW", "--target-ca-file", "{ca}"],
         {"TPW": "wrong"}, ExitCode.AUTH, "refused the login"),
        ("imaps://{target}@127.0.0.1:{free}", ["--target-password-env", "TPW"], {"TPW": "x"},
         ExitCode.UNREACHABLE, "refused the connection"),
        ("imaps://{target}@127.0.0.1:{imaps}", ["--target-password-env", "TPW"], {"TPW": "x"}, ExitCode.TLS,
         "--target-ca-file"),
        ("gopher://{target}@127.0.0.1", [], {}, ExitCode.USAGE, "unknown target kind"),
        ("imaps://{target}:secret@127.0.0.1", [], {}, ExitCode.USAGE, "password inside the target URL"),
        ("imap://{target}@192.0.2.1", ["--target-insecure", "--target-password-env", "TPW"], {"TPW": "x"},
         ExitCode.USAGE, "only to a server on this machine"),
        ("imaps://{target}@127.0.0.1:{imaps}", ["--target-password-env", "NOT_SET_ANYWHERE",
                                                "--target-ca-file", "{ca}"], {},
         ExitCode.BAD_INPUT, "NOT_SET_ANYWHERE is not set"),
        ("imaps://{target}@127.0.0.1:{imaps}", ["--target-ca-file", "{ca}"], {}, ExitCode.USAGE,
         "--target-password-env"),
        ("imaps://{target}@127.0.0.1:{imaps}", ["--target-password-env", "A", "--target-password-file", "/x"], {},
         ExitCode.USAGE, "both given"),
        ("imaps://anna@outlook.office365.com", ["--target-password-env", "TPW"], {"TPW": "x"}, ExitCode.AUTH,
         "takes only OAuth"),
    ],
)
def test_bad_target_is_one_line_with_a_named_exit_code(
    dovecot: Dovecot, args: list[str], target: str, env: dict[str, str], code: ExitCode, words: str
) -> None:
    values = {"target": "nobody", "ca": str(dovecot.ca_path), "free": str(free_port()),
              **{k: str(v) for k, v in dovecot.ports.items()}}
    result = run("sample:?messages=1", target.format(**values), *[a.format(**values) for a in args], env=env)
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert words in lines[0]
    assert "Traceback" not in result.stderr and "wrong" not in result.stderr


def test_a_password_in_the_target_url_is_refused_before_anything_is_written(state_home: Path) -> None:
    result = run("sample:?messages=1", "imaps://anna:Hemligt-42@127.0.0.1:1")
    assert result.returncode == ExitCode.USAGE, (result.stdout, result.stderr)
    assert "password inside the target URL" in result.stderr and "Hemligt-42" not in result.stdout + result.stderr
    assert not state_home.exists() or not [p for p in state_home.rglob("*") if p.is_file()]  # no journal kept it


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--password-env", "A", "--password-file", "/x"], ExitCode.USAGE, "--password-env and --password-file"),
        (["--auth", "kerberos", "--password-env", "A"], ExitCode.USAGE, "--auth"),
        (["--ca-file", "/no/such/ca.pem", "--password-env", "A"], ExitCode.USAGE, "/no/such/ca.pem is not a file"),
    ],
)
def test_bad_source_options_are_refused_before_connecting(args: list[str], code: ExitCode, words: str) -> None:
    result = run("imaps://anna@127.0.0.1:1", "imaps://bo@127.0.0.1:1", *args, "--target-password-env", "A",
                 env={"A": "x"})
    assert result.returncode == code, (result.stdout, result.stderr)
    assert words in result.stderr and "refused the connection" not in result.stderr
    assert "Traceback" not in result.stderr


def test_names_and_subjects_are_shown_as_they_are() -> None:
    from datetime import UTC, datetime

    from rich.console import Console

    from migrate.cli.migration import render_run
    from migrate.engine.runner import FolderOutcome, RunResult

    result = RunResult("imaps://a@gmail", "imaps://b@x", "/j.sqlite", False, datetime.now(UTC),
                       folders=[FolderOutcome("[Gmail]/Sent Mail", "Sent Items", 1, 0, 1),
                                FolderOutcome("[b]Kunder[/b]", "[b]Kunder[/b]", 2)],
                       failures=[{"folder": "[Gmail]/Sent Mail", "key": "1:2", "subject": "[SPAM] köp [/b]",
                                  "failure": "rejected", "reason": "NO [ALERT]"}],
                       source_problems=["Arkiv 7: '[x]' cut short [/]"])
    console = Console(record=True, width=120)
    render_run(result, console)
    text = console.export_text()
    assert "[Gmail]/Sent Mail" in text and "[b]Kunder[/b]" in text and "[SPAM] köp [/b]" in text
    assert "NO [ALERT]" in text and "'[x]' cut short [/]" in text
    assert "Total" in text
