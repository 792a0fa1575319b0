"""Distributed batches through the real entry points: `batch --engine celery` sends one task a mailbox to a
real Redis, `o365-migrate worker` processes (Celery's worker) move them with the journal in a real
PostgreSQL, from the loopback Dovecot into the Exchange sandbox or into Dovecot. One worker SIGKILLed
mid-mailbox (another resumes it: targets equal to sources, nothing twice), the broker restarted mid-batch,
a mailbox failing for good beside the others, and every file and output searched for every password."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import psutil
import pytest

from migrate import samplebox
from migrate.sandbox.server import Sandbox
from migrate.sandbox.testing import check_schema_errors, strict_config
from tests import corpus
from tests.batch.test_batch_run import assert_same_mailbox, cli, grep_secrets
from tests.conftest import IN_CI
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres
from tests.servers.redis import Redis, redis_binary

TENANT, CLIENT, SECRET = "contoso.example", "migrate-tests", "s3cr3t-Client-Value-77"
# Seconds: a dead worker's mailbox moves on soon after, in a test. The broker's visibility timeout follows it:
# a live worker keeps its tasks however long they run, a silent one loses them this long after.
LEASE = "10"


@pytest.fixture
def redis() -> Iterator[Redis]:
    if redis_binary() is None:
        if IN_CI:
            pytest.fail("redis-server is not installed: the test command installs redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = Redis().start()
    try:
        yield server
    finally:
        server.cleanup()


class Workers:
    """`o365-migrate worker` processes, each with a folder of its own, stopped by their own pids."""

    def __init__(self, root: Path, broker: str, journal_db: str, env: dict[str, str]) -> None:
        self.root, self.broker, self.journal_db, self.env = root, broker, journal_db, env
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        log = (self.root / f"worker-{n}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "migrate", "worker", "--broker", self.broker, "--journal-db", self.journal_db,
             "--concurrency", str(concurrency), "--dir", str(self.root / f"worker-{n}"), "--lease", LEASE,
             "--hostname", f"w{n}@test"],
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob("worker-*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(tmp_path: Path, redis: Redis, postgres: Postgres) -> Iterator[Workers]:
    group = Workers(tmp_path, redis.url, postgres.new_database("batch"), {})
    try:
        yield group
    finally:
        group.stop()


def shared_rows(journal_db: str, batch: str) -> dict[str, dict[str, Any]]:
    import psycopg

    with psycopg.connect(journal_db) as conn:
        try:
            cur = conn.execute("SELECT id, state, phase, owner, items FROM mailboxes WHERE batch=%s", (batch,))
        except psycopg.errors.UndefinedTable:
            return {}  # the batch has not made its tables yet
        return {r[0]: {"state": r[1], "phase": r[2], "owner": r[3], "items": r[4]} for r in cur}


def journal_done(journal_db: str, key: str) -> int:
    import psycopg

    with psycopg.connect(journal_db) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM items i JOIN folders f ON f.id = i.folder_id "
                               "WHERE f.journal=%s AND i.status='done'", (key,)).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0


class Concurrent:
    """The most mailboxes of a batch seen moving at once (sampled from the shared database)."""

    def __init__(self, journal_db: str, batch: str) -> None:
        self.seen = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(journal_db, batch), daemon=True)
        self._thread.start()

    def _run(self, journal_db: str, batch: str) -> None:
        while not self._done.wait(0.1):
            rows = shared_rows(journal_db, batch)
            self.seen = max(self.seen, sum(1 for r in rows.values() if r["state"] in ("planning", "running")))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def wait_for(what: str, test: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = test()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def write_secret(folder: Path, name: str, value: str) -> str:
    folder.mkdir(exist_ok=True, mode=0o700)
    path = folder / f"{name}.pw"
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return f"file:{path}"


def message_ids(raws: list[bytes]) -> Counter[str]:
    return Counter(str(message_from_bytes(raw)["Message-ID"]) for raw in raws)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path / "sandbox", config=strict_config()).start()
    sb.add_app(CLIENT, secret=SECRET, permissions=["full_access_as_app"])
    try:
        yield sb
    finally:
        sb.stop()
        check_schema_errors(sb)


def test_twenty_mailboxes_into_the_sandbox_on_two_workers_one_killed(dovecot: Dovecot, sandbox: Sandbox,
                                                                     workers: Workers, tmp_path: Path) -> None:
    """20 mailboxes from Dovecot to the sandbox over EWS, the journal in PostgreSQL, two workers. One worker
    is SIGKILLed while it moves a mailbox; the other (and a third started later) resume its mailboxes from
    the shared journal: every target holds its source's messages once."""
    rows, passwords, sources = ["EmailAddress,UserName,Password,Host,Port,Security"], [], {}
    for n in range(20):
        user, password = f"dist{n:02d}-src", f"Src-{n:02d}-Pw-Lk8?"
        folders = samplebox.build(15 if n < 2 else 1, seed=100 + n)  # two big ones: there is a middle to kill in
        corpus.load_into_dovecot(dovecot, user, password, folders)
        address = f"dist{n:02d}@{TENANT}"
        sandbox.add_mailbox(address)
        sources[address] = [m.raw for f in folders for m in f.messages]
        rows.append(f"{address},{user},{write_secret(tmp_path / 'secrets', user, password)},127.0.0.1,"
                    f"{dovecot.ports['imaps']},tls")
        passwords.append(password)
    csv = tmp_path / "tenant.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    env = {"APP_SECRET": SECRET, "O365M_CONFIG_DIR": str(tmp_path / "config"), "O365M_TOKEN_CACHE": "plaintext",
           "REQUESTS_CA_BUNDLE": str(sandbox.ca_path)}
    workers.env = env
    workers.start()
    workers.start()
    batch = tmp_path / "tenant.batch"
    proc = subprocess.Popen(
        [sys.executable, "-m", "migrate", "batch", str(csv), "--engine", "celery", "--broker", workers.broker,
         "--journal-db", workers.journal_db, "--to", f"ews://{TENANT}?endpoint={sandbox.ews_url}&impersonate=1",
         "--client-id", CLIENT, "--authority", sandbox.url, "--client-secret-env", "APP_SECRET",
         "--auth-ca-file", str(sandbox.ca_path), "--target-ca-file", str(sandbox.ca_path),
         "--ca-file", str(dovecot.ca_path), "--dir", str(batch), "-q"],
        env={**os.environ, **env, "COLUMNS": "200"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True)
    big = {f"dist{n:02d}@{TENANT}": len(sources[f"dist{n:02d}@{TENANT}"]) for n in range(2)}
    try:
        # A big mailbox part-way through its upload (in the journal: some sent, not all): kill its worker outright.
        victim = wait_for("a big mailbox part-way through its upload", lambda: next(
            (m for m, total in big.items() if 0 < journal_done(workers.journal_db, f"tenant/{m}") < total), None))
        at_kill = shared_rows(workers.journal_db, "tenant")
        owner = at_kill[victim]["owner"]
        killed = next(p for p in workers.procs if owner.startswith(f"{_hostname()}/{p.pid}/"))
        # Mailboxes the surviving worker had: its tasks stay its own (it stamps them alive), never handed out again.
        survivors = {m for m, r in at_kill.items() if r["owner"] and not r["owner"].startswith(f"{_hostname()}/"
                                                                                            f"{killed.pid}/")}
        children = psutil.Process(killed.pid).children(recursive=True)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        psutil.wait_procs(children, timeout=60)  # its mailbox processes see their worker gone and stop
        workers.start()  # a machine joins later
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err + workers.logs()[-5000:]

    code_status = cli("batch", "status", str(batch), "--json")
    assert code_status.returncode == 0, code_status.stdout + code_status.stderr
    status = json.loads(code_status.stdout)
    assert status["engine"] == "celery" and status["counts"]["done"] == 20
    boxes = {m["id"]: m for m in status["mailboxes"]}
    assert boxes[victim]["worker"] != f"{_hostname()}/{killed.pid}"  # another worker finished it
    # The killed worker's task went back to the queue a lease after it fell silent, with the broker's visibility
    # timeout left at its default (not an hour: the batch above would have timed out).
    again = set(re.findall(r"mailbox tenant/(\S+): handed out again", workers.logs()))
    assert victim in again and not again & survivors, (again, survivors)
    for address, raws in sources.items():
        box = boxes[address]
        assert box["state"] == "done" and box["totals"]["verified"] is True, box
        received = [raw for _, raw in sandbox.received_mime(address)]
        assert message_ids(received) == message_ids(raws), address  # each message there, once
        assert box["totals"]["created"] + box["totals"]["skipped"] == len(raws)
    for folder in (batch, tmp_path / "worker-0", tmp_path / "worker-1", tmp_path / "worker-2"):
        grep_secrets(folder, [*passwords, SECRET], out, err, workers.logs())


def _hostname() -> str:
    import socket

    return socket.gethostname()


def test_a_broker_restart_and_a_mailbox_failing_for_good_stop_no_other(dovecot: Dovecot, redis: Redis,
                                                                       workers: Workers, tmp_path: Path) -> None:
    rows, passwords, pairs = ["EmailAddress,UserName,Password,TargetPassword"], [], []
    for n in range(6):
        source, target = f"rst{n}-src", f"rst{n}-dst"
        source_pw, target_pw = f"Src-rst{n}-Qq1!", f"Dst-rst{n}-Ww2#"
        corpus.load_into_dovecot(dovecot, source, source_pw, samplebox.build(12 if n < 2 else 2, seed=50 + n))
        dovecot.add_user(target, target_pw)
        given = source_pw if n != 5 else "Wrong-Password-For-Rst5"
        rows.append(f"{target}@example.test,{source},{write_secret(tmp_path / 'secrets', source, given)},"
                    f"{write_secret(tmp_path / 'secrets', target, target_pw)}")
        passwords += [source_pw, target_pw]
        pairs.append(((source, source_pw), (target, target_pw)))
    csv = tmp_path / "office.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    port, ca = dovecot.ports["imaps"], str(dovecot.ca_path)
    args = ["batch", str(csv), "--engine", "celery", "--broker", redis.url, "--journal-db", workers.journal_db,
            "--to", f"imaps://{{local}}@127.0.0.1:{port}", "--from", f"imaps://127.0.0.1:{port}",
            "--dir", str(tmp_path / "office.batch"), "--ca-file", ca, "--target-ca-file", ca, "-q",
            "--tenant-limit", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "migrate", *args], env={**os.environ, "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    most = Concurrent(workers.journal_db, "office")
    try:
        # The tasks wait in the broker, which restarts before any worker is there and again while they move.
        wait_for("the batch's mailboxes in the database", lambda: len(shared_rows(workers.journal_db, "office")) == 6)
        time.sleep(1)
        redis.restart()
        workers.start()
        workers.start()
        wait_for("a mailbox moving", lambda: any(r["phase"] == "upload"
                                                 for r in shared_rows(workers.journal_db, "office").values()))
        redis.restart()
        out, err = proc.communicate(timeout=180)
    finally:
        most.stop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out + err + workers.logs()[-5000:]
    assert most.seen == 2  # 2 workers x 2 mailboxes could run 4 at once: --tenant-limit 2 held across them
    assert "1 of 6 mailbox(es) failed" in err
    status = json.loads(cli("batch", "status", str(tmp_path / "office.batch"), "--json").stdout)
    boxes = {m["id"]: m for m in status["mailboxes"]}
    assert status["counts"]["done"] == 5 and status["counts"]["failed"] == 1
    failed = boxes["rst5-dst@example.test"]
    assert failed["error"].startswith("127.0.0.1 refused the login for rst5-src"), failed
    for source, target in pairs[:5]:
        assert_same_mailbox(dovecot, source, target)
    grep_secrets(tmp_path / "office.batch", passwords, out, err, workers.logs())



def test_a_distributed_batch_sends_no_password_and_names_what_is_missing(postgres: Postgres, redis: Redis,
                                                                        tmp_path: Path) -> None:
    csv = tmp_path / "users.csv"
    target = write_secret(tmp_path / "secrets", "anna-dst", "Target-Pw-In-File-2")
    csv.write_text(f"EmailAddress,UserName,Password,TargetPassword\nanna@example.test,anna,Plain-Pw-In-Csv-1,{target}\n",
                   encoding="utf-8")
    csv.chmod(0o600)
    db = postgres.new_database("refuse")
    base = ["batch", str(csv), "--to", "imaps://{local}@127.0.0.1:1", "--from", "imaps://127.0.0.1:1",
            "--dir", str(tmp_path / "b")]
    plain = cli(*base, "--engine", "celery", "--broker", redis.url, "--journal-db", db)
    assert plain.returncode == 2 and "the source password is written in the CSV" in plain.stderr, plain.stderr
    assert "Traceback" not in plain.stderr and "Plain-Pw-In-Csv-1" not in plain.stdout + plain.stderr
    leaked = cli(*base, "--engine", "celery", "--broker", "redis://:Broker-Pw-9@127.0.0.1:1/0", "--journal-db", db)
    assert leaked.returncode == 2 and "--broker holds a password" in leaked.stderr
    assert "Broker-Pw-9" not in leaked.stdout + leaked.stderr
    missing = cli(*base, "--engine", "celery", "--broker", redis.url)
    assert missing.returncode == 2 and "--engine celery needs --broker URL and --journal-db URL" in missing.stderr
    local = cli(*base, "--broker", redis.url)
    assert local.returncode == 2 and "are for --engine celery" in local.stderr
