"""Real batches through the real entry point: Dovecot to Dovecot, Dovecot to the EWS sandbox, a failing
mailbox beside finishing ones, a SIGKILLed batch resumed, --retry-failed, the status JSON, and every file
the batch wrote (and everything it printed) searched for every password of the CSV."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from migrate import samplebox
from migrate.sandbox.server import Sandbox
from migrate.sandbox.testing import check_schema_errors, strict_config
from tests import corpus
from tests.servers.dovecot import Dovecot

ROLE_NAMES = {"INBOX": "INBOX", "Skickat": "Sent Items", "Utkast": "Drafts", "Papperskorgen": "Deleted Items",
              "Skräppost": "Junk Email", "Arkiv": "Archive"}


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, stdin=subprocess.DEVNULL,
                          timeout=timeout)


def mailbox_state(dovecot: Dovecot, user: str, password: str) -> dict[str, Counter[tuple[str, str]]]:
    """Every folder's messages as (raw bytes, flags), counted: a duplicate shows as a count of 2."""
    client = corpus.imap_client(dovecot, user, password)
    state: dict[str, Counter[tuple[str, str]]] = {}
    try:
        for _, _, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search()
            data = client.fetch(uids, [b"BODY.PEEK[]", b"FLAGS"]) if uids else {}
            state[name] = Counter((d[b"BODY[]"].decode("latin-1"),
                                   " ".join(sorted(f.decode() for f in d[b"FLAGS"] if f != b"\\Recent")))
                                  for d in data.values())
    finally:
        client.logout()
    return state


def assert_same_mailbox(dovecot: Dovecot, source: tuple[str, str], target: tuple[str, str]) -> None:
    src, dst = mailbox_state(dovecot, *source), mailbox_state(dovecot, *target)
    for name, messages in src.items():
        wanted = ROLE_NAMES.get(name, name)
        there = next(v for n, v in dst.items() if n.lower() == wanted.lower())
        assert there == messages, f"{target[0]}: {name}"
    assert sum(sum(c.values()) for c in dst.values()) == sum(sum(c.values()) for c in src.values())


def grep_secrets(root: Path, secrets: list[str], *outputs: str) -> None:
    """No password of the CSV in any file under the batch folder, nor in anything printed."""
    assert secrets
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"a password is in {path}"
    for text in outputs:
        for secret in secrets:
            assert secret not in text, "a password was printed"


class Mailboxes:
    """Source and target accounts on the shared Dovecot, each with its own password."""

    def __init__(self, dovecot: Dovecot, stem: str) -> None:
        self.dovecot = dovecot
        self.stem = stem
        self.rows: list[tuple[str, str, str, str, str]] = []  # source, source pw, target, target pw, csv pw

    def add(self, name: str, messages_per_folder: int, csv_password: str | None = None) -> None:
        source, target = f"{self.stem}-{name}-src", f"{self.stem}-{name}-dst"
        source_pw, target_pw = f"Src-{name}-{self.stem[:6]}-Qx7!", f"Dst-{name}-{self.stem[:6]}-Zk4#"
        corpus.load_into_dovecot(self.dovecot, source, source_pw, samplebox.build(messages_per_folder,
                                                                                  seed=len(self.rows) + 7))
        self.dovecot.add_user(target, target_pw)
        self.rows.append((source, source_pw, target, target_pw, csv_password or source_pw))

    def csv(self, path: Path, passwords: dict[str, str] | None = None) -> Path:
        """Microsoft's three columns and a TargetPassword; EmailAddress's local part is the target login."""
        lines = ["EmailAddress,UserName,Password,TargetPassword"]
        for source, _, target, target_pw, csv_pw in self.rows:
            lines.append(f"{target}@example.test,{source},{(passwords or {}).get(source, csv_pw)},{target_pw}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    def secrets(self) -> list[str]:
        return [s for _, source_pw, _, target_pw, csv_pw in self.rows for s in (source_pw, target_pw, csv_pw)]

    def args(self, csv: Path, batch: Path) -> list[str]:
        port = self.dovecot.ports["imaps"]
        ca = str(self.dovecot.ca_path)
        return ["batch", str(csv), "--to", f"imaps://{{local}}@127.0.0.1:{port}", "--from",
                f"imaps://127.0.0.1:{port}", "--dir", str(batch), "--ca-file", ca, "--target-ca-file", ca, "-q"]


@pytest.fixture
def mailboxes(dovecot: Dovecot, request: pytest.FixtureRequest) -> Mailboxes:
    return Mailboxes(dovecot, request.node.name.replace("_", "")[4:20])


def status_json(batch: Path) -> tuple[int, dict[str, Any]]:
    result = cli("batch", "status", str(batch), "--json")
    return result.returncode, json.loads(result.stdout)


def test_a_batch_moves_every_mailbox_and_one_failure_stops_no_other(mailboxes: Mailboxes, dovecot: Dovecot,
                                                                     tmp_path: Path) -> None:
    for name in ("anna", "bo", "cia"):
        mailboxes.add(name, 6)
    mailboxes.add("dan", 3, csv_password="Wrong-Password-For-Dan-91")
    csv = mailboxes.csv(tmp_path / "users.csv")
    batch = tmp_path / "batch"
    events = batch / "events.jsonl"
    first = cli(*mailboxes.args(csv, batch), "-j", "2", "--log-json", str(tmp_path / "events.jsonl"))
    assert first.returncode == 1, first.stdout + first.stderr  # one mailbox failed: FAILED, the others moved
    assert "1 of 4 mailbox(es) failed" in first.stderr

    code, status = status_json(batch)
    assert code == 1  # not all done
    boxes = {m["id"]: m for m in status["mailboxes"]}
    assert status["counts"] == {"pending": 0, "planning": 0, "running": 0, "done": 3, "failed": 1, "stopped": 0}
    dan = boxes[f"{mailboxes.rows[3][2]}@example.test"]
    assert dan["state"] == "failed" and dan["line"] == 5, dan
    assert dan["error"].startswith(f"127.0.0.1 refused the login for {mailboxes.rows[3][0]}"), dan
    for source, source_pw, target, target_pw, _ in mailboxes.rows[:3]:
        box = boxes[f"{target}@example.test"]
        assert box["state"] == "done" and box["totals"]["verified"] is True, box
        assert box["totals"]["created"] == 60 and box["totals"]["failed"] == 0
        assert_same_mailbox(dovecot, (source, source_pw), (target, target_pw))
        folder = batch / "mailboxes" / box["id"]
        for name in ("plan.yaml", "journal.sqlite", "result.json", "verify.json"):
            assert (folder / name).is_file(), name
        assert box["plan"] == f"mailboxes/{box['id']}/plan.yaml"
        assert json.loads((folder / "verify.json").read_text())["ok"] is True
    batch_json = json.loads((batch / "batch.json").read_text())
    assert batch_json["version"] == 1 and batch_json["csv"] == str(csv)
    assert [m["line"] for m in batch_json["mailboxes"]] == [2, 3, 4, 5]

    # Again, unchanged: the done mailboxes are skipped, the failed one is tried again (and fails again).
    again = cli(*mailboxes.args(csv, batch))
    assert again.returncode == 1 and "3 mailbox(es) done before: skipped" in again.stderr

    # With the right password, --retry-failed runs only the failed mailbox.
    fixed = mailboxes.csv(tmp_path / "users.csv", passwords={mailboxes.rows[3][0]: mailboxes.rows[3][1]})
    ended_before = {m["id"]: m["ended"] for m in json.loads((batch / "batch.json").read_text())["mailboxes"]}
    retried = cli(*mailboxes.args(fixed, batch), "--retry-failed", "--log-json", str(events))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    code, status = status_json(batch)
    assert code == 0 and status["counts"]["done"] == 4
    ran = {json.loads(line)["mailbox"] for line in events.read_text().splitlines()}
    assert ran == {dan["id"]}
    for m in status["mailboxes"]:
        if m["id"] != dan["id"]:
            assert m["ended"] == ended_before[m["id"]]  # untouched
    assert_same_mailbox(dovecot, mailboxes.rows[3][:2], mailboxes.rows[3][2:4])

    grep_secrets(batch, mailboxes.secrets(), first.stdout, first.stderr, again.stdout, again.stderr, retried.stdout,
                 retried.stderr)
    grep_secrets(tmp_path / "events.jsonl", mailboxes.secrets())


def test_a_stopped_and_a_killed_batch_resume_and_duplicate_nothing(mailboxes: Mailboxes, dovecot: Dovecot,
                                                                    tmp_path: Path) -> None:
    for name in ("eva", "finn", "gro"):
        mailboxes.add(name, 150)  # 1,500 messages each
    csv = mailboxes.csv(tmp_path / "users.csv")
    batch = tmp_path / "batch"
    args = [sys.executable, "-m", "migrate", *mailboxes.args(csv, batch), "-j", "3"]
    env = {**os.environ, "COLUMNS": "200"}

    # Ctrl-C (SIGINT to the batch alone, as a terminal's would be): every worker stops, journals closed.
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True)
    _wait_for_progress(proc, batch, 200)
    proc.send_signal(signal.SIGINT)
    out1, err1 = proc.communicate(timeout=120)
    assert proc.returncode == 130, out1 + err1
    assert "run the same command again to resume" in err1 and f"--dir {batch}" in err1
    states = {m["state"] for m in json.loads((batch / "batch.json").read_text())["mailboxes"]}
    assert "stopped" in states and states <= {"stopped", "done"}

    # SIGKILL: nothing is told; the workers see their stdin end and stop on their own.
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True)
    try:
        workers = _wait_for_progress(proc, batch, _created(batch) + 300)
        assert len(workers) == 3
        for worker in workers:  # nothing secret in a worker's command line or environment
            seen = " ".join(worker.cmdline()) + " ".join(f"{k}={v}" for k, v in worker.environ().items())
            for secret in mailboxes.secrets():
                assert secret not in seen
        proc.send_signal(signal.SIGKILL)
    finally:
        out2, err2 = proc.communicate()
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive
    status = json.loads((batch / "batch.json").read_text())
    assert any(m["state"] != "done" for m in status["mailboxes"])

    final = cli(*mailboxes.args(csv, batch))
    assert final.returncode == 0, final.stdout + final.stderr
    code, status = status_json(batch)
    assert code == 0
    for source, source_pw, target, target_pw, _ in mailboxes.rows:
        assert_same_mailbox(dovecot, (source, source_pw), (target, target_pw))  # every message once
    assert all(m["totals"]["verified"] for m in status["mailboxes"])
    # Messages a killed run had sent are found on the target by the next and counted as skipped, not sent again.
    assert [m["totals"]["created"] + m["totals"]["skipped"] for m in status["mailboxes"]] == [1500] * 3
    grep_secrets(batch, mailboxes.secrets(), out1, err1, out2, err2, final.stdout, final.stderr)


def _wait_for_progress(proc: subprocess.Popen[str], batch: Path, created: int) -> list[psutil.Process]:
    """Wait until the journals hold `created` messages; the batch's workers then."""
    deadline = time.monotonic() + 120
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and proc.poll() is None:
        if (batch / "batch.json").exists():
            # A mailbox's process leads a session of its own (forked from the batch's fork server, or started
            # fresh): the fork server and multiprocessing's resource tracker are the batch's helpers, not workers.
            workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if _leads_session(p)]
            if _created(batch) >= created:
                break
        time.sleep(0.1)
    assert proc.poll() is None, "the batch finished before it could be stopped: make the mailboxes larger"
    return workers


def _leads_session(process: psutil.Process) -> bool:
    try:
        return os.getsid(process.pid) == process.pid
    except ProcessLookupError:
        return False


def _created(batch: Path) -> int:
    status = json.loads((batch / "batch.json").read_text())
    return sum(_journal_done(batch / m["journal"]) for m in status["mailboxes"])


def _journal_done(path: Path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM items WHERE status = 'done'").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


TENANT, CLIENT, SECRET = "contoso.example", "migrate-tests", "s3cr3t-Client-Value"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path / "sandbox", config=strict_config()).start()
    sb.add_app(CLIENT, secret=SECRET, permissions=["full_access_as_app"])
    try:
        yield sb
    finally:
        sb.stop()
        check_schema_errors(sb)


def test_a_batch_into_the_exchange_sandbox_over_ews(mailboxes: Mailboxes, dovecot: Dovecot, sandbox: Sandbox,
                                                     tmp_path: Path) -> None:
    """One mailbox from Dovecot (Host/Port/Security columns), one from a Maildir (SourceKind and a path
    relative to the CSV); --to names the tenant, each row's EmailAddress the mailbox."""
    mailboxes.add("hanna", 4)
    source, source_pw = mailboxes.rows[0][:2]
    folders = samplebox.build(5, seed=11)
    samplebox.write_maildir(folders, tmp_path / "ivar-maildir")
    for address in ("hanna@contoso.example", "ivar@contoso.example"):
        sandbox.add_mailbox(address)
    csv = tmp_path / "users.csv"
    csv.write_text("EmailAddress,UserName,Password,Host,Port,Security,SourceKind,Source\n"
                   f"hanna@contoso.example,{source},{source_pw},127.0.0.1,{dovecot.ports['imaps']},tls,,\n"
                   "ivar@contoso.example,,,,,,maildir,ivar-maildir\n", encoding="utf-8")
    csv.chmod(0o600)
    batch = tmp_path / "batch"
    env = {"APP_SECRET": SECRET, "O365M_CONFIG_DIR": str(tmp_path / "config"), "O365M_TOKEN_CACHE": "plaintext",
           "REQUESTS_CA_BUNDLE": str(sandbox.ca_path)}
    result = cli("batch", str(csv), "--to", f"ews://{TENANT}?endpoint={sandbox.ews_url}&impersonate=1",
                 "--client-id", CLIENT, "--authority", sandbox.url, "--client-secret-env", "APP_SECRET",
                 "--auth-ca-file", str(sandbox.ca_path), "--target-ca-file", str(sandbox.ca_path),
                 "--ca-file", str(dovecot.ca_path), "--dir", str(batch), "-q", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    _, status = status_json(batch)
    boxes = {m["id"]: m for m in status["mailboxes"]}
    assert boxes["hanna@contoso.example"]["target"].startswith("ews://hanna@contoso.example?endpoint=")
    assert sum(1 for _ in sandbox.received_mime("hanna@contoso.example")) == 40
    assert sum(1 for _ in sandbox.received_mime("ivar@contoso.example")) == sum(len(f.messages) for f in folders)
    for box in boxes.values():
        assert box["state"] == "done" and box["totals"]["verified"] is True, box
        verify = json.loads((batch / "mailboxes" / box["id"] / "verify.json").read_text())
        assert verify["ok"] and verify["hashes_compared"] is False  # Exchange: properties, not bytes
    grep_secrets(batch, [source_pw, SECRET], result.stdout, result.stderr)
