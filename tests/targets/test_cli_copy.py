"""`o365-migrate copy` through the real entry point: a copy, its JSON, a failure, and every bad input."""

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


@pytest.fixture(scope="module")
def source_user(dovecot: Dovecot) -> str:
    user = fresh_mailbox("cli-src")
    add_users(dovecot, [user])
    corpus.load_into_dovecot(dovecot, user, PASSWORD, samplebox.build(4))
    return user


def test_copy_from_imap_then_again_as_json(dovecot: Dovecot, source_user: str) -> None:
    target_user = dovecot_account(dovecot)
    args = [f"imaps://{source_user}@127.0.0.1:{dovecot.ports['imaps']}", "--password-env", "PW",
            "--ca-file", str(dovecot.ca_path),
            f"imap://{target_user}@127.0.0.1:{dovecot.ports['imap']}", "--target-password-env", "PW",
            "--target-ca-file", str(dovecot.ca_path)]
    first = run(*args, env={"PW": PASSWORD})
    assert first.returncode == 0, first.stderr
    assert "Sent Items" in first.stdout and "Total" in first.stdout and "Nothing failed" in first.stdout
    again = run(*args, "--json", "-", env={"PW": PASSWORD})
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["totals"] == {"created": 0, "skipped": 40, "failed": 0} and doc["exit_code"] == 0
    assert {f["source"]: f["target"] for f in doc["folders"]}["Skräppost"] == "Junk Email"
    assert PASSWORD not in first.stdout + first.stderr + again.stdout + again.stderr


def test_a_message_that_fails_is_listed_and_the_exit_code_says_so(dovecot: Dovecot, tmp_path: Path) -> None:
    target_user = dovecot_account(dovecot)
    (tmp_path / "Kunder").mkdir()
    (tmp_path / "Kunder" / "1.eml").write_bytes(b"Message-ID: <ok@example.se>\r\nSubject: ok\r\n\r\nhej\r\n")
    (tmp_path / "Kunder" / "2.eml").write_bytes(b"")  # Dovecot will not store an empty message
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    result = run(f"eml:{tmp_path}", f"imaps://{target_user}@127.0.0.1:{dovecot.ports['imaps']}",
                 "--target-password-file", str(secret), "--target-ca-file", str(dovecot.ca_path))
    assert result.returncode == ExitCode.FAILED, (result.stdout, result.stderr)
    assert "1 message(s) did not move" in result.stderr and len(result.stderr.strip().splitlines()) == 1
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


def test_names_and_subjects_are_shown_as_they_are() -> None:
    from rich.console import Console

    from migrate.cli.copy import render
    from migrate.copy import CopyResult, FailedItem, FolderCopy
    from migrate.targets import Failure

    result = CopyResult("imaps://a@gmail", "imaps://b@x", [FolderCopy("[Gmail]/Sent Mail", "Sent Items", 1, 0, 1,
                                                                      note="'[x]' renamed [/]")],
                        [FailedItem("[Gmail]/Sent Mail", "1:2", "[SPAM] köp [/b]", Failure.REJECTED, "NO [ALERT]")])
    console = Console(record=True, width=120)
    render(result, console)
    text = console.export_text()
    assert "[Gmail]/Sent Mail" in text and "[SPAM] köp [/b]" in text and "NO [ALERT]" in text and "[/]" in text
