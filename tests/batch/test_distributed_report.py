"""The report of a distributed batch, made on the batch's machine from the shared journal alone.

Real parts throughout: Redis, PostgreSQL, `o365-migrate worker` processes, the loopback Dovecot as the
source, the Exchange sandbox as the target. The workers' own folders (where each mailbox's plan, result and
verification files are kept) are deleted before the report: everything in it comes from the database."""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from migrate import samplebox
from migrate.sandbox.server import Sandbox
from tests import corpus
from tests.batch.test_batch_run import cli, grep_secrets
from tests.batch.test_distributed import (  # noqa: F401  (fixtures)
    CLIENT,
    SECRET,
    TENANT,
    Workers,
    message_ids,
    redis,
    sandbox,
    shared_rows,
    wait_for,
    workers,
)
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres

GOOD = ("rep-anna", "rep-bo", "rep-cilla")  # moved; a fourth row's password is wrong


def _journal_counts(journal_db: str, key: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(journal_db) as conn:
        rows = conn.execute("SELECT i.status, count(*) FROM items i JOIN folders f ON f.id = i.folder_id "
                            "WHERE f.journal=%s GROUP BY i.status", (key,)).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _dump(postgres: Postgres, url: str) -> bytes:
    done = subprocess.run([str(postgres.bindir / "pg_dump"), "--dbname", url, "--data-only"], capture_output=True,
                          check=True, timeout=120)
    return done.stdout


def test_report_of_a_celery_batch_comes_from_the_shared_journal(dovecot: Dovecot, sandbox: Sandbox,  # noqa: F811
                                                                workers: Workers, postgres: Postgres,  # noqa: F811
                                                                tmp_path: Path) -> None:
    """Before any worker runs, the report names every mailbox as not started; after the batch, with the
    workers' folders gone, it holds every mailbox with its journal's numbers, in every format and both
    languages; a second send with a new row shows that row (and the failed one, sent again) as not started.
    No password, each given to the workers by environment variable, is anywhere in the database."""
    env = {"APP_SECRET": SECRET, "O365M_CONFIG_DIR": str(tmp_path / "config"), "O365M_TOKEN_CACHE": "plaintext",
           "REQUESTS_CA_BUNDLE": str(sandbox.ca_path)}
    rows, sources, passwords = ["EmailAddress,UserName,Password,Host,Port,Security"], {}, [SECRET]
    for n, user in enumerate((*GOOD, "rep-dana")):
        address, password = f"{user}@{TENANT}", f"Pw-{user}-{n}!Zq"
        folders = samplebox.build(2, seed=300 + n)
        corpus.load_into_dovecot(dovecot, f"{user}-src", password, folders)
        sandbox.add_mailbox(address)
        sources[address] = [m.raw for f in folders for m in f.messages]
        variable = f"REPORT_PW_{n}"
        env[variable] = password if user != "rep-dana" else "Not-Dana-s-Password-9"
        passwords += [password, env[variable]]
        rows.append(f"{address},{user}-src,env:{variable},127.0.0.1,{dovecot.ports['imaps']},tls")
    users = tmp_path / "users.csv"
    users.write_text("\n".join(rows) + "\n", encoding="utf-8")
    batch = tmp_path / "users.batch"
    send = ["batch", str(users), "--engine", "celery", "--broker", workers.broker, "--journal-db", "env:REPORT_DB",
            "--to", f"ews://{TENANT}?endpoint={sandbox.ews_url}&impersonate=1", "--client-id", CLIENT,
            "--authority", sandbox.url, "--client-secret-env", "APP_SECRET", "--auth-ca-file", str(sandbox.ca_path),
            "--target-ca-file", str(sandbox.ca_path), "--ca-file", str(dovecot.ca_path), "--dir", str(batch), "-q"]
    env["REPORT_DB"] = workers.journal_db
    workers.env = env

    # Sent, no worker yet: every mailbox is there, none started.
    proc = _send(send, env)
    try:
        wait_for("the batch's mailboxes in the database and its folder", lambda: (batch / "batch.json").is_file()
                 and len(shared_rows(workers.journal_db, "users")) == 4)
        early = cli("report", "--batch", str(batch), "-f", "json", "-o", str(tmp_path / "early"), env=env)
        assert early.returncode == 0, early.stdout + early.stderr
        assert "4 mailbox(es) not started yet" in early.stdout
        summary = json.loads((tmp_path / "early" / "summary.json").read_text(encoding="utf-8"))
        assert summary["engine"] == "celery" and summary["not_started"] == [f"{u}@{TENANT}" for u in
                                                                            (*GOOD, "rep-dana")]
        assert all(m["state"] == "pending" and m["report"] is None for m in summary["mailboxes"])
        workers.start()
        workers.start()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1 and "1 of 4 mailbox(es) failed" in err, out + err + workers.logs()[-5000:]
    workers.stop()
    # The workers' folders hold each mailbox's plan.yaml, result.json and verify.json: gone, like a dead machine.
    for n in range(len(workers.procs)):
        assert (tmp_path / f"worker-{n}" / "users").is_dir()
        shutil.rmtree(tmp_path / f"worker-{n}")

    report = tmp_path / "report"
    made = cli("report", "--batch", str(batch), "-o", str(report), "--guides", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "still moving" not in made.stdout and "not started" not in made.stdout
    for fmt in ("json", "csv"):
        other = cli("report", "--batch", str(batch), "-f", fmt, "-o", str(report), env=env)
        assert other.returncode == 0, other.stdout + other.stderr
    swedish = cli("report", "--batch", str(batch), "--lang", "sv", "-o", str(tmp_path / "rapport"), env=env)
    assert swedish.returncode == 0, swedish.stdout + swedish.stderr

    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    boxes = {m["id"]: m for m in summary["mailboxes"]}
    assert list(boxes) == [f"{u}@{TENANT}" for u in (*GOOD, "rep-dana")]
    for user in GOOD:
        address = f"{user}@{TENANT}"
        box, raws = boxes[address], sources[address]
        assert box["state"] == "done" and box["report"]["verdict"] == "verified", box
        totals = box["report"]["totals"]
        counts = _journal_counts(workers.journal_db, f"users/{address}")
        assert totals["moved"] == counts.get("done", 0) and totals["skipped"] == counts.get("skipped", 0)
        assert totals["moved"] + totals["skipped"] == len(raws) == totals["planned"]
        assert message_ids([raw for _, raw in sandbox.received_mime(address)]) == message_ids(raws)
        assert box["report"]["journal"] == f"postgresql:users/{address}"
        assert box["report"]["runs"] and box["report"]["verification"]["ok"] is True  # the run and the check
        for fmt in ("html", "json", "csv"):
            assert (report / "mailboxes" / f"{address}.{fmt}").is_file()
        assert (report / "guides" / f"{address}.html").is_file()
        one = json.loads((report / "mailboxes" / f"{address}.json").read_text(encoding="utf-8"))
        assert one["mailbox"] == address and one["totals"] == totals
    dana = boxes[f"rep-dana@{TENANT}"]
    assert dana["state"] == "failed" and dana["report"] is None
    assert dana["error"].startswith("127.0.0.1 refused the login for rep-dana-src"), dana
    assert not (report / "mailboxes" / f"rep-dana@{TENANT}.html").exists()
    assert summary["verified"] == 3 and summary["problems"] == 1 and summary["not_done"] == 1
    assert summary["totals"]["moved"] == sum(boxes[f"{u}@{TENANT}"]["report"]["totals"]["moved"] for u in GOOD)

    index = (report / "index.html").read_text(encoding="utf-8")
    for user in GOOD:
        assert f'href="mailboxes/{user}@{TENANT}.html"' in index
    table = list(csv.DictReader(io.StringIO((report / "summary.csv").read_text(encoding="utf-8"))))
    assert [(r["id"], r["state"], r["result"]) for r in table] == [
        *((f"{u}@{TENANT}", "done", "verified") for u in GOOD), (f"rep-dana@{TENANT}", "failed", "none")]
    assert [int(r["moved"]) + int(r["skipped"]) for r in table[:3]] == [len(sources[f"{u}@{TENANT}"]) for u in GOOD]
    rapport = (tmp_path / "rapport" / "index.html").read_text(encoding="utf-8")
    assert "Sammanfattning av flytten" in rapport and "misslyckades" in rapport and "3 av 4 kontrollerade" in rapport
    guides = cli("guide", "--batch", str(batch), "-o", str(tmp_path / "guides"), "--lang", "sv", env=env)
    assert guides.returncode == 0 and "wrote 3 guide(s)" in guides.stdout, guides.stdout + guides.stderr

    # Sent again with one row more and no worker running: that row, and the failed one sent again, wait.
    users.write_text("\n".join([*rows, f"rep-eva@{TENANT},rep-eva-src,env:REPORT_PW_0,127.0.0.1,"
                                       f"{dovecot.ports['imaps']},tls"]) + "\n", encoding="utf-8")
    again = _send(send, env)
    try:
        wait_for("the new row in the database", lambda: shared_rows(workers.journal_db, "users")
                 .get(f"rep-eva@{TENANT}", {}).get("state") == "pending")
    finally:
        again.send_signal(signal.SIGINT)  # stop following; the tasks stay with the broker
        out, err = again.communicate(timeout=60)
    waiting = cli("report", "--batch", str(batch), "-f", "json", "-o", str(tmp_path / "waiting"), env=env)
    assert waiting.returncode == 0, waiting.stdout + waiting.stderr
    assert f"2 mailbox(es) not started yet: rep-dana@{TENANT}, rep-eva@{TENANT}" in waiting.stdout
    later = json.loads((tmp_path / "waiting" / "summary.json").read_text(encoding="utf-8"))
    states = {m["id"]: (m["state"], m["report"] is not None) for m in later["mailboxes"]}
    assert states == {**{f"{u}@{TENANT}": ("done", True) for u in GOOD},
                      f"rep-dana@{TENANT}": ("pending", False), f"rep-eva@{TENANT}": ("pending", False)}

    dump = _dump(postgres, workers.journal_db)
    # The dump holds the journals (plan, run, verification) and each mailbox's kept plan.yaml and row.json.
    assert b"users/rep-anna@" in dump and b"last_run" in dump and b"plan.yaml" in dump and b"row.json" in dump
    for password in passwords:
        assert password.encode() not in dump, "a password is in the journal database"
    for folder in (batch, report, tmp_path / "rapport", tmp_path / "early", tmp_path / "waiting", tmp_path / "guides"):
        grep_secrets(folder, passwords, made.stdout, made.stderr, early.stdout, early.stderr, out, err, workers.logs())


def _send(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen([sys.executable, "-m", "migrate", *args], env={**os.environ, **env, "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def _moved(dovecot: Dovecot, url: str, user: str, password: str, key: str, verify: bool) -> int:
    """One mailbox moved Dovecot to Dovecot with its journal in the shared database, as a worker's mailbox
    process does it (plan, run, verify); how many messages its source holds."""
    from migrate.engine.journal_pg import PostgresJournal
    from migrate.migration import plan_migration, run_plan, verify_plan
    from migrate.plan import Connection

    folders = samplebox.build(1, seed=len(user))
    corpus.load_into_dovecot(dovecot, f"{user}-src", password, folders)
    dovecot.add_user(f"{user}-dst", password)
    port, ca = dovecot.ports["imaps"], str(dovecot.ca_path)
    source = Connection(url=f"imaps://{user}-src@127.0.0.1:{port}", ca_file=ca).with_secret(password)
    target = Connection(url=f"imaps://{user}-dst@127.0.0.1:{port}", ca_file=ca).with_secret(password)
    plan, _ = plan_migration(source, target)

    def place() -> PostgresJournal:
        return PostgresJournal(url, key)

    run_plan(plan, place)
    if verify:
        verify_plan(plan, place)
    return sum(len(f.messages) for f in folders)


def test_a_report_names_the_mailboxes_still_moving_and_not_started(dovecot: Dovecot, postgres: Postgres,
                                                                  tmp_path: Path) -> None:
    """The database says one mailbox is done, one is being moved (its journal part-way: a snapshot), one
    waits; batch.json, as old as the batch's send, lists none of that. The report reads the database."""
    from migrate.batch.shared import SharedBatch, SharedMailbox
    from migrate.batch.status import BatchStatus, save_status

    url, password = postgres.new_database("moving"), "Pw-Moving-7?x"
    shared = SharedBatch(url)
    try:
        for line, user in enumerate(("mv-done", "mv-moving", "mv-waiting"), start=2):
            shared.register("office", SharedMailbox(f"{user}@example.test", line, f"{user}@example.test",
                                                    f"imaps://{user}-src@127.0.0.1", f"imaps://{user}-dst@127.0.0.1"))
        held = _moved(dovecot, url, "mv-done", password, "office/mv-done@example.test", verify=True)
        shared.update("office", "mv-done@example.test", state="done", started=1.0e9, ended=1.0e9 + 60)
        _moved(dovecot, url, "mv-moving", password, "office/mv-moving@example.test", verify=False)
        shared.update("office", "mv-moving@example.test", state="running", phase="upload", started=1.0e9)
    finally:
        shared.close()
    batch = tmp_path / "office.batch"
    batch.mkdir()
    save_status(batch, BatchStatus(csv=str(tmp_path / "office.csv"), to="imaps://{local}@127.0.0.1",
                                   engine="celery", name="office", journal_db="env:OFFICE_DB"))
    env = {"OFFICE_DB": url}

    made = cli("report", "--batch", str(batch), "-f", "json", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stdout.splitlines()[1:] == ["1 mailbox(es) still moving: mv-moving@example.test",
                                            "1 mailbox(es) not started yet: mv-waiting@example.test"]
    summary = json.loads((batch / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["moving"] == ["mv-moving@example.test"] and summary["not_started"] == ["mv-waiting@example.test"]
    done, moving, waiting = summary["mailboxes"]
    assert done["state"] == "done" and done["report"]["verdict"] == "verified"
    assert done["report"]["totals"]["moved"] + done["report"]["totals"]["skipped"] == held
    assert moving["state"] == "running" and moving["report"]["totals"]["moved"] > 0  # what it has moved so far
    assert waiting["state"] == "pending" and waiting["report"] is None
    # The one still moving is not verified yet: neither a problem nor "not verified" until it ends.
    assert (summary["verified"], summary["problems"], summary["unverified"], summary["not_done"]) == (1, 0, 0, 2)
    assert sorted(p.name for p in (batch / "report" / "mailboxes").iterdir()) == [
        "mv-done@example.test.json", "mv-moving@example.test.json"]

    for lang, moving_text, waiting_text in (("en", "still moving", "1 not started yet: mv-waiting@example.test"),
                                            ("sv", "flyttas nu", "1 inte påbörjade än: mv-waiting@example.test")):
        html = cli("report", "--batch", str(batch), "--lang", lang, "-o", str(tmp_path / lang), env=env)
        assert html.returncode == 0, html.stdout + html.stderr
        index = (tmp_path / lang / "index.html").read_text(encoding="utf-8")
        assert moving_text in index and waiting_text in index

    guides = cli("guide", "--batch", str(batch), "-o", str(tmp_path / "guides"), env=env)
    assert guides.returncode == 0, guides.stdout + guides.stderr
    assert guides.stdout.splitlines() == [f"wrote 2 guide(s) in {tmp_path / 'guides'}",
                                          "1 mailbox(es) still moving: mv-moving@example.test",
                                          "1 mailbox(es) not started yet: mv-waiting@example.test"]


def test_a_distributed_batch_report_says_what_is_wrong_in_one_line(postgres: Postgres, tmp_path: Path) -> None:
    from migrate.batch.status import BatchStatus, save_status
    from migrate.errors import ExitCode

    url = postgres.new_database("wrong")
    batch = tmp_path / "b"
    batch.mkdir()

    def report(journal_db: str, name: str = "office", env: dict[str, str] | None = None) -> \
            subprocess.CompletedProcess[str]:
        save_status(batch, BatchStatus(csv="office.csv", to="imaps://{local}@127.0.0.1", engine="celery", name=name,
                                       journal_db=journal_db))
        done = cli("report", "--batch", str(batch), env=env)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2, done.stderr
        return done

    unset = report("env:NOT_SET_OFFICE_DB")
    assert unset.returncode == ExitCode.USAGE and "journal_db env:NOT_SET_OFFICE_DB: the variable is not set" \
        in unset.stderr and "export NOT_SET_OFFICE_DB=" in unset.stderr, unset.stderr
    unknown = report(url, name="another")
    assert unknown.returncode == ExitCode.BAD_INPUT and "holds no batch named 'another'" in unknown.stderr
    closed = report(f"postgresql://postgres@127.0.0.1:{_closed_port()}/nothing")
    assert closed.returncode == ExitCode.UNREACHABLE and "cannot reach the journal database" in closed.stderr
    hidden = report("env:OFFICE_DB", env={"OFFICE_DB": f"postgresql://postgres:Db-Pw-55@127.0.0.1:{_closed_port()}/x"})
    assert hidden.returncode == ExitCode.UNREACHABLE and "Db-Pw-55" not in hidden.stdout + hidden.stderr


def _closed_port() -> int:
    from tests.servers.dovecot import free_port

    return free_port()
