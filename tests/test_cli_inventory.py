"""`o365-migrate inventory` through the real entry point: output, JSON, and every bad input."""

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
from tests.servers.dovecot import Dovecot

USER, PASSWORD = "cli-user", "Vinter-2025?"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          env=full_env, stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture(scope="module")
def mailbox(dovecot: Dovecot) -> Dovecot:
    corpus.load_into_dovecot(dovecot, USER, PASSWORD, samplebox.build(4))
    return dovecot


def test_inventory_of_imap_as_json(mailbox: Dovecot, tmp_path: Path) -> None:
    out = tmp_path / "inv.json"
    result = run("inventory", f"imaps://{USER}@127.0.0.1:{mailbox.ports['imaps']}", "--password-env", "PW",
                 "--ca-file", str(mailbox.ca_path), "--json", str(out), env={"PW": PASSWORD})
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    folders = {f["name"]: f for f in doc["folders"]}
    assert folders["Skickat"]["role"] == "sent"
    assert folders["Kunder/Åkesson & Söner/2019"]["messages"] == 4
    assert doc["totals"]["messages"] == 40
    assert doc["totals"]["bytes"] == sum(f["bytes"] for f in doc["folders"])
    inbox = folders["INBOX"]
    assert inbox["oldest"] <= inbox["newest"]
    assert inbox["largest"]["size"] > 0
    codes = {w["code"] for w in doc["warnings"]}
    assert {"no-message-id", "duplicate-message-id"} <= codes
    assert "Skickat" in result.stdout and "Total" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr + out.read_text()


def test_password_file_and_json_to_stdout(mailbox: Dovecot, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    result = run("inventory", f"pop3s://{USER}@127.0.0.1:{mailbox.ports['pop3s']}", "--password-file",
                 str(secret), "--ca-file", str(mailbox.ca_path), "--json", "-")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [f["name"] for f in doc["folders"]] == ["INBOX"]
    assert doc["totals"]["messages"] == 4


@pytest.mark.parametrize(
    ("args", "env", "code", "words"),
    [
        (["imaps://{user}@127.0.0.1:{imaps}", "--password-env", "PW", "--ca-file", "{ca}"], {"PW": "wrong"},
         ExitCode.AUTH, "refused the login"),
        (["pop3s://{user}@127.0.0.1:{pop3s}", "--password-env", "PW", "--ca-file", "{ca}"], {"PW": "wrong"},
         ExitCode.AUTH, "refused the login"),
        (["imaps://{user}@127.0.0.1:{imaps}", "--password-env", "PW"], {"PW": "x"}, ExitCode.TLS, "--ca-file"),
        (["imaps://{user}@127.0.0.1:{free}", "--password-env", "PW"], {"PW": "x"}, ExitCode.UNREACHABLE,
         "refused the connection"),
        (["imaps://{user}@127.0.0.1:{imap}", "--password-env", "PW", "--ca-file", "{ca}"], {"PW": "x"},
         ExitCode.TLS, "TLS"),
        (["imap://{user}@192.0.2.1", "--insecure"], {}, ExitCode.USAGE, "only to a server on this machine"),
        (["imaps://{user}:secret@127.0.0.1"], {}, ExitCode.USAGE, "password inside the source URL"),
        (["gopher://x"], {}, ExitCode.USAGE, "unknown source kind"),
        (["/home/x/mail"], {}, ExitCode.USAGE, "not a source URL"),
        (["mbox:/nonexistent/Inbox"], {}, ExitCode.BAD_INPUT, "does not exist"),
        (["imaps://{user}@127.0.0.1:{imaps}", "--password-env", "NOT_SET_ANYWHERE", "--ca-file", "{ca}"], {},
         ExitCode.BAD_INPUT,
         "NOT_SET_ANYWHERE is not set"),
        (["imaps://{user}@127.0.0.1:{imaps}", "--ca-file", "{ca}"], {}, ExitCode.USAGE, "no terminal"),
    ],
)
def test_bad_input_is_one_line_with_a_named_exit_code(
    mailbox: Dovecot, args: list[str], env: dict[str, str], code: ExitCode, words: str
) -> None:
    from tests.servers.dovecot import free_port

    values = {"user": USER, "ca": str(mailbox.ca_path), "free": str(free_port()), **{
        k: str(v) for k, v in mailbox.ports.items()}}
    result = run("inventory", *[a.format(**values) for a in args], env=env)
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert words in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = run("--debug", "inventory", "mbox:/nonexistent/Inbox")
    assert result.returncode == ExitCode.BAD_INPUT
    assert "Traceback" in result.stderr


def test_sample_mailbox_needs_nothing() -> None:
    result = run("inventory", "sample:")
    assert result.returncode == 0, result.stderr
    assert "Papperskorgen" in result.stdout and "trash" in result.stdout
    assert "120" in result.stdout


def test_corrupt_mbox_lists_the_good_messages_and_says_where(tmp_path: Path) -> None:
    folders = samplebox.build(5)
    samplebox.write_mbox_tree(folders[:1], tmp_path)
    inbox = tmp_path / "Inbox"
    data = inbox.read_bytes()
    inbox.write_bytes(data[: len(data) - 300])  # cut inside the last message
    (tmp_path / "Broken").write_bytes(b"this is not an mbox\n" + data[:2000])
    result = run("inventory", f"mbox:{tmp_path}", "--json", "-")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    counts = {f["name"]: f["messages"] for f in doc["folders"]}
    assert counts.get("INBOX", counts.get("Inbox")) >= 4
    problems = [w for w in doc["warnings"] if "mbox" in w["code"]]
    assert problems and any("byte" in w["detail"] for w in problems)
