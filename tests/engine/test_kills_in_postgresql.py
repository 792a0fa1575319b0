"""SIGKILL mid-run with the journal in PostgreSQL, through the entry point that writes the shared journal: the
mailbox process a Celery worker starts (`python -m migrate.batch.worker`), handed the database the way a worker
hands it (the Job names the journal key, the secrets line carries the database URL). Dovecot to Dovecot and
Dovecot to the Exchange sandbox: the process is killed outright several times while its upload is under way
(its connection dropped mid-transaction, as when a machine dies), then run to its end. The target then holds
each source message once, the shared journal has every message closed and none pending, and the report and
the verification are read back from the database.

test_run_imap.py and test_run_ews.py kill `o365-migrate run` the same way with the journal in a SQLite file.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migrate import samplebox
from migrate.batch.job import Job, Secrets
from migrate.plan import Connection, SignIn
from migrate.sandbox.server import Sandbox
from tests.batch.test_batch_run import grep_secrets
from tests.engine.test_run_ews import CLIENT, MAILBOX, SECRET, TENANT, expected, received
from tests.engine.test_run_ews import sandbox as sandbox
from tests.engine.test_run_imap import PASSWORD, same_mailbox
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres

KEY = "kills/anna"  # the mailbox's journal key in the shared database (a batch uses batch/mailbox)


class MailboxRuns:
    """Runs of one mailbox's process, each with its events and its log in files of their own (an unread pipe
    would fill and stall it). Its stdin stays open while it runs: a worker closing it means "stop"."""

    def __init__(self, job: Job, secrets: Secrets, env: dict[str, str], logs: Path) -> None:
        self.job, self.secrets, self.env, self.logs = job, secrets, env, logs
        self.runs = 0
        logs.mkdir()

    def start(self) -> subprocess.Popen[str]:
        self.runs += 1
        with (self.logs / f"events-{self.runs}.jsonl").open("w") as out, \
                (self.logs / f"worker-{self.runs}.log").open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "migrate.batch.worker"], stdin=subprocess.PIPE,
                                    stdout=out, stderr=err, text=True, env={**os.environ, **self.env})
        assert proc.stdin is not None
        proc.stdin.write(self.job.model_dump_json() + "\n" + self.secrets.wire() + "\n")
        proc.stdin.flush()
        return proc

    def end(self) -> dict[str, Any]:
        """The last run's closing event."""
        lines = (self.logs / f"events-{self.runs}.jsonl").read_text(encoding="utf-8").splitlines()
        events = [json.loads(line) for line in lines]
        assert events and events[-1]["event"] == "end", self.log()
        return events[-1]

    def uploading(self) -> bool:
        """The current run's upload is under way: it has told of items moved (the target answered for them)."""
        for line in (self.logs / f"events-{self.runs}.jsonl").read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):  # a line still being written
                event = json.loads(line)
                if event["event"] == "progress" and event["phase"] == "upload" and event["items"]:
                    return True
        return False

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("worker-*.log")))


def closed_in_journal(journal_db: str, key: str) -> tuple[int, int]:
    """(closed, pending) rows of the journal `key` in the shared database, as any reader sees them."""
    import psycopg

    with psycopg.connect(journal_db) as conn:
        try:
            rows = dict(conn.execute(
                "SELECT i.status = 'pending', count(*) FROM items i JOIN folders f ON f.id = i.folder_id "
                "WHERE f.journal=%s GROUP BY 1", (key,)).fetchall())
        except psycopg.errors.UndefinedTable:
            return 0, 0  # the first run has not made the tables yet
    return int(rows.get(False, 0)), int(rows.get(True, 0))


def runs_in_journal(journal_db: str, key: str) -> int:
    import psycopg

    with psycopg.connect(journal_db) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM runs WHERE journal=%s", (key,)).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def upload_reported(runs: MailboxRuns, journal_db: str, begun: int) -> bool:
    return runs.uploading()


def run_recorded(runs: MailboxRuns, journal_db: str, begun: int) -> bool:
    """The run has begun in the journal (an IMAP target's upload follows at once)."""
    return runs_in_journal(journal_db, KEY) > begun


def kill_while_uploading(runs: MailboxRuns, journal_db: str, total: int, seed: int,
                         under_way: Callable[[MailboxRuns, str, int], bool], within: tuple[float, float],
                         kills: int = 3) -> int:
    """Start the mailbox and SIGKILL it a random moment (`within` seconds) after its upload is `under_way`,
    `kills` times: inside a batch's upload or its journal transaction. How many kills landed inside a run, the
    journal short of the end with a batch in flight (pending)."""
    rng = random.Random(seed)
    short = 0
    for _ in range(kills):
        begun = runs_in_journal(journal_db, KEY)
        proc = runs.start()
        try:
            deadline = time.monotonic() + 180
            while proc.poll() is None and not under_way(runs, journal_db, begun):
                assert time.monotonic() < deadline, "the upload did not begin: " + runs.log()[-3000:]
                time.sleep(0.02)
            time.sleep(rng.uniform(*within))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            assert proc.stdin is not None
            proc.stdin.close()
        closed, pending = closed_in_journal(journal_db, KEY)
        short += runs_in_journal(journal_db, KEY) > begun and closed < total and pending > 0
    return short


def run_to_the_end(runs: MailboxRuns) -> dict[str, Any]:
    proc = runs.start()
    try:
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()
    assert proc.returncode == 0, runs.log()[-5000:]
    return runs.end()


def shared_journal_is_settled(journal_db: str, total: int, killed: int) -> None:
    """Every message closed, none pending; every run (the killed ones too) recorded; the verification and the
    report read from the shared journal."""
    from migrate.engine.journal_pg import PostgresJournal
    from migrate.reporting import report_data

    assert closed_in_journal(journal_db, KEY) == (total, 0)
    journal = PostgresJournal(journal_db, KEY)
    try:
        runs = journal.runs()
        assert sum(1 for run in runs if run[3] is None) >= killed  # a killed run never ends its own
        assert runs[-1][3] is not None
        data = report_data(journal)
    finally:
        journal.shut()
    assert data.verdict == "verified", (data.verdict, data.problems)
    assert data.totals.moved + data.totals.skipped == total and data.totals.failed == 0


def maildir_source(dovecot: Dovecot, user: str, folders: list[samplebox.SampleFolder]) -> None:
    """A source account with its mail written straight into its Maildir, owned as Dovecot's own mail is: thousands
    of IMAP APPENDs would take most of the test."""
    dovecot.add_user(user, PASSWORD)
    home = dovecot.maildir(user)
    samplebox.write_maildir(folders, home)
    owner = dovecot.mail_root.stat()
    for path in (home.parent, *home.parent.rglob("*")):
        os.chown(path, owner.st_uid, owner.st_gid)


@pytest.fixture
def journal_db(postgres: Postgres) -> str:
    return postgres.new_database("kills")


def test_dovecot_to_dovecot_killed_mid_upload_resumes_from_the_shared_journal(
        dovecot: Dovecot, journal_db: str, tmp_path: Path) -> None:
    source, target = "pgkill-src", "pgkill-dst"
    folders = samplebox.build(300, seed=31)  # 3,000 messages: seconds of upload, room for three kills on a fast machine
    total = sum(len(f.messages) for f in folders)
    maildir_source(dovecot, source, folders)
    dovecot.add_user(target, PASSWORD)
    imaps = f"127.0.0.1:{dovecot.ports['imaps']}"
    job = Job(id="anna", folder=str(tmp_path / "mailboxes" / "anna"), journal_key=KEY,
              source=Connection(url=f"imaps://{source}@{imaps}", ca_file=str(dovecot.ca_path)),
              target=Connection(url=f"imaps://{target}@{imaps}", ca_file=str(dovecot.ca_path)))
    runs = MailboxRuns(job, Secrets(source=PASSWORD, target=PASSWORD, journal_db=journal_db), {}, tmp_path / "logs")

    killed = kill_while_uploading(runs, journal_db, total, 20261130, run_recorded, within=(0.1, 0.8))
    assert killed >= 2, "the mailbox moved before it could be killed: make it larger"
    end = run_to_the_end(runs)
    assert end["state"] == "done" and end["totals"]["verified"] is True, end

    same_mailbox(dovecot, source, target)  # byte for byte, flags and dates, nothing twice
    shared_journal_is_settled(journal_db, total, killed)
    grep_secrets(tmp_path, [PASSWORD])


@pytest.mark.kills_clients
def test_dovecot_to_the_sandbox_killed_mid_upload_resumes_from_the_shared_journal(
        dovecot: Dovecot, sandbox: Sandbox, journal_db: str, tmp_path: Path) -> None:
    source = "pgkill-ews-src"
    folders = samplebox.build(80, seed=32)  # 800 messages: a few seconds of upload to kill in, three times
    total = sum(len(f.messages) for f in folders)
    maildir_source(dovecot, source, folders)
    job = Job(id="anna", folder=str(tmp_path / "mailboxes" / "anna"), journal_key=KEY,
              source=Connection(url=f"imaps://{source}@127.0.0.1:{dovecot.ports['imaps']}",
                                ca_file=str(dovecot.ca_path)),
              target=Connection(url=f"ews://{MAILBOX}?endpoint={sandbox.ews_url}&impersonate=1",
                                ca_file=str(sandbox.ca_path),
                                sign_in=SignIn(tenant=TENANT, client_id=CLIENT, authority=sandbox.url,
                                               client_secret_env="APP_SECRET", ca_file=str(sandbox.ca_path))))
    env = {"APP_SECRET": SECRET, "O365M_CONFIG_DIR": str(tmp_path / "config"), "O365M_TOKEN_CACHE": "plaintext"}
    runs = MailboxRuns(job, Secrets(source=PASSWORD, journal_db=journal_db), env, tmp_path / "logs")

    killed = kill_while_uploading(runs, journal_db, total, 20261201, upload_reported, within=(0.0, 0.6))
    assert killed >= 2, "the mailbox moved before it could be killed: make it larger"
    end = run_to_the_end(runs)
    assert end["state"] == "done" and end["totals"]["verified"] is True, end

    got = received(sandbox)
    assert got == expected(folders)  # every message once: counts, folders and the exact bytes sent
    shared_journal_is_settled(journal_db, total, killed)
    for folder in (tmp_path / "mailboxes", tmp_path / "logs"):  # not the sandbox's own files: it keeps the secret
        grep_secrets(folder, [PASSWORD, SECRET])

