"""A worker's mailboxes do not wait for each other, and a task stays with a live worker however long its mailbox
takes: one `o365-migrate worker` with --concurrency 2 and a short --lease (with it, the broker's visibility
timeout), the Exchange sandbox throttling one mailbox for longer than that lease and not the other, the journal
in PostgreSQL, the tasks in a real Redis (fixtures of test_distributed)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.samplebox import FolderRole
from migrate.sandbox.server import Sandbox
from migrate.sandbox.testing import check_schema_errors, strict_config
from tests import corpus
from tests.batch import test_distributed as distributed
from tests.batch.test_distributed import (
    CLIENT,
    SECRET,
    TENANT,
    Workers,
    message_ids,
    shared_rows,
    wait_for,
    write_secret,
)
from tests.servers.dovecot import Dovecot

redis, workers = distributed.redis, distributed.workers  # the fixtures: a private Redis, worker processes

THROTTLE_WINDOW = 30.0  # seconds a refused upload waits: three leases (test_distributed.LEASE) and more


@pytest.fixture
def throttled(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox whose per-mailbox import budget takes one upload request per window: a mailbox with one folder
    of mail passes at once; one with two waits out the window between them (ErrorServerBusy, BackOffMilliseconds)."""
    sb = Sandbox(tmp_path / "sandbox", config=strict_config(throttle_enabled=True, throttle_bytes=1,
                                                            throttle_window_s=THROTTLE_WINDOW)).start()
    sb.add_app(CLIENT, secret=SECRET, permissions=["full_access_as_app"])
    try:
        yield sb
    finally:
        sb.stop()
        check_schema_errors(sb)


class Transitions:
    """Every state each mailbox of the given batches went through, in the order the shared database showed them."""

    def __init__(self, journal_db: str, batches: list[str]) -> None:
        self.seen: list[tuple[str, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(journal_db, batches), daemon=True)
        self._thread.start()

    def _run(self, journal_db: str, batches: list[str]) -> None:
        last: dict[str, str] = {}
        while not self._done.wait(0.1):
            for batch in batches:
                for mailbox, row in shared_rows(journal_db, batch).items():
                    if last.get(mailbox) != row["state"]:
                        last[mailbox] = row["state"]
                        self.seen.append((mailbox, row["state"]))

    def first(self, mailbox: str, *states: str) -> int:
        """Where the mailbox was first seen in one of `states`."""
        return next(n for n, (seen, state) in enumerate(self.seen) if seen == mailbox and state in states)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _send(csv: Path, workers: Workers, sandbox: Sandbox, dovecot: Dovecot,
          env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "migrate", "batch", str(csv), "--engine", "celery", "--broker", workers.broker,
         "--journal-db", workers.journal_db, "--to", f"ews://{TENANT}?endpoint={sandbox.ews_url}&impersonate=1",
         "--client-id", CLIENT, "--authority", sandbox.url, "--client-secret-env", "APP_SECRET",
         "--auth-ca-file", str(sandbox.ca_path), "--target-ca-file", str(sandbox.ca_path),
         "--ca-file", str(dovecot.ca_path), "--dir", str(csv.with_suffix(".batch")), "-q"],
        env={**os.environ, **env, "COLUMNS": "200"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True)


def test_a_throttled_mailbox_holds_up_neither_its_workers_other_mailbox_nor_its_own_task(
        dovecot: Dovecot, throttled: Sandbox, workers: Workers, tmp_path: Path) -> None:
    sources: dict[str, list[bytes]] = {}
    for name, kept in (("slow", (FolderRole.INBOX, FolderRole.SENT)), ("quick", (FolderRole.INBOX,))):
        user, password = f"pace-{name}-src", f"Src-{name}-Pw-7!"
        folders = [f for f in samplebox.build(2, seed=300 + len(name)) if f.role in kept]
        corpus.load_into_dovecot(dovecot, user, password, folders)
        address = f"{name}@{TENANT}"
        throttled.add_mailbox(address)
        sources[address] = [m.raw for f in folders for m in f.messages]
        (tmp_path / f"{name}.csv").write_text(
            "EmailAddress,UserName,Password,Host,Port,Security\n"
            f"{address},{user},{write_secret(tmp_path / 'secrets', user, password)},127.0.0.1,"
            f"{dovecot.ports['imaps']},tls\n", encoding="utf-8")
    env = {"APP_SECRET": SECRET, "O365M_CONFIG_DIR": str(tmp_path / "config"), "O365M_TOKEN_CACHE": "plaintext",
           "REQUESTS_CA_BUNDLE": str(throttled.ca_path)}
    workers.env = env
    workers.start(concurrency=2)
    states = Transitions(workers.journal_db, ["slow", "quick"])
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(_send(tmp_path / "slow.csv", workers, throttled, dovecot, env))
        # The slow mailbox's first folder went in; its second was refused until the budget's window has passed.
        wait_for("the slow mailbox refused for now", lambda: any(
            r.operation == "CreateItem" and r.status == 500 for r in throttled.requests))
        assert shared_rows(workers.journal_db, "slow")[f"slow@{TENANT}"]["state"] == "running"
        procs.append(_send(tmp_path / "quick.csv", workers, throttled, dovecot, env))  # the worker's other slot
        outputs = [proc.communicate(timeout=240) for proc in reversed(procs)]
    finally:
        states.stop()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (out, err) in zip(reversed(procs), outputs, strict=True):
        assert proc.returncode == 0, out + err + workers.logs()[-5000:]

    slow, quick = f"slow@{TENANT}", f"quick@{TENANT}"
    # The quick mailbox started after the slow one was throttled, and ended while the slow one still waited.
    assert states.first(slow, "running") < states.first(quick, "planning", "running") < states.first(quick, "done") \
        < states.first(slow, "done"), states.seen
    for address, raws in sources.items():
        received = [raw for _, raw in throttled.received_mime(address)]
        assert message_ids(received) == message_ids(raws), address  # each message there, once
    # The slow mailbox waited out a whole window (three leases): its worker kept its task all along, so the
    # broker never handed it to a worker again.
    assert "handed out again" not in workers.logs(), workers.logs()[-5000:]
