"""plan, run and verify through the real entry point, Dovecot to Dovecot, including kills and restarts."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import imapclient
import pytest

from migrate import samplebox
from migrate.errors import ExitCode
from tests import corpus
from tests.servers.dovecot import Dovecot

PASSWORD = "Flytt-2026!"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "160", "PW": PASSWORD, **(env or {})},
                          stdin=subprocess.DEVNULL, timeout=timeout)


def mailbox_state(dovecot: Dovecot, user: str) -> dict[str, Counter[tuple[str, frozenset[str], str]]]:
    """Every folder's messages as (sha256, flags, INTERNALDATE), counted: duplicates show as counts > 1."""
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.ports["imaps"],
                                   ssl_context=ssl.create_default_context(cafile=str(dovecot.ca_path)))
    client.login(user, PASSWORD)
    client.normalise_times = False
    state: dict[str, Counter[tuple[str, frozenset[str], str]]] = {}
    try:
        for _, _, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search()
            data = client.fetch(uids, [b"BODY.PEEK[]", b"FLAGS", b"INTERNALDATE"]) if uids else {}
            state[name] = Counter(
                (hashlib.sha256(d[b"BODY[]"]).hexdigest(),
                 frozenset(f.decode() for f in d[b"FLAGS"] if f != b"\\Recent"),
                 d[b"INTERNALDATE"].isoformat())
                for d in data.values())
    finally:
        client.logout()
    return state


ROLE_NAMES = {"INBOX": "INBOX", "Skickat": "Sent Items", "Utkast": "Drafts", "Papperskorgen": "Deleted Items",
              "Skräppost": "Junk Email", "Arkiv": "Archive"}


def same_mailbox(dovecot: Dovecot, source: str, target: str) -> None:
    src = mailbox_state(dovecot, source)
    dst = mailbox_state(dovecot, target)
    for name, messages in src.items():
        there = dst.get(ROLE_NAMES.get(name, name))
        if there is None:  # well-known folders land on the target's special-use folders
            there = dst[next(n for n in dst if n.lower() == ROLE_NAMES.get(name, name).lower())]
        assert there == messages, name
        assert max(there.values(), default=1) <= max(messages.values(), default=1), f"duplicates in {name}"


@pytest.fixture
def accounts(dovecot: Dovecot, request: pytest.FixtureRequest) -> tuple[str, str]:
    stem = request.node.name.replace("[", "-").replace("]", "")[:40]
    source, target = f"src-{stem}", f"dst-{stem}"
    dovecot.add_user(target, PASSWORD)
    return source, target


def plan_args(dovecot: Dovecot, source: str, target: str, plan: Path) -> list[str]:
    return ["plan", f"imaps://{source}@127.0.0.1:{dovecot.ports['imaps']}", "--to",
            f"imaps://{target}@127.0.0.1:{dovecot.ports['imaps']}", "-o", str(plan),
            "--password-env", "PW", "--ca-file", str(dovecot.ca_path),
            "--target-password-env", "PW", "--target-ca-file", str(dovecot.ca_path)]


def test_plan_run_verify_is_byte_identical(dovecot: Dovecot, accounts: tuple[str, str], tmp_path: Path) -> None:
    source, target = accounts
    corpus.load_into_dovecot(dovecot, source, PASSWORD, corpus.build())
    plan = tmp_path / "plan.yaml"
    made = cli(*plan_args(dovecot, source, target, plan))
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in plan.read_text()
    first = cli("run", str(plan), "--json", str(tmp_path / "run.json"), "-q")
    assert first.returncode == 0, first.stdout + first.stderr
    totals = json.loads((tmp_path / "run.json").read_text())["totals"]
    assert totals["created"] == sum(len(f.messages) for f in corpus.build()) and totals["failed"] == 0
    same_mailbox(dovecot, source, target)
    again = cli("run", str(plan), "--json", str(tmp_path / "run2.json"), "-q")
    assert again.returncode == 0
    assert json.loads((tmp_path / "run2.json").read_text())["totals"]["created"] == 0
    checked = cli("verify", str(plan), "--json", str(tmp_path / "verify.json"), "-q")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["ok"] and report["hashes_compared"]
    same_mailbox(dovecot, source, target)


def test_a_fresh_run_on_a_full_target_duplicates_nothing(dovecot: Dovecot, accounts: tuple[str, str],
                                                          tmp_path: Path) -> None:
    """Dedupe: a new journal, but the target already holds the mail (copied by another tool)."""
    source, target = accounts
    corpus.load_into_dovecot(dovecot, source, PASSWORD, samplebox.build(6))
    plan = tmp_path / "plan.yaml"
    assert cli(*plan_args(dovecot, source, target, plan)).returncode == 0
    assert cli("run", str(plan), "-q").returncode == 0
    result = cli("run", str(plan), "-q", "--journal", str(tmp_path / "other.sqlite"), "--json", "-")
    assert result.returncode == 0, result.stderr
    totals = json.loads(result.stdout)["totals"]
    assert totals["created"] == 0 and totals["skipped"] == 60
    same_mailbox(dovecot, source, target)


def test_dry_run_writes_nothing(dovecot: Dovecot, accounts: tuple[str, str], tmp_path: Path) -> None:
    source, target = accounts
    corpus.load_into_dovecot(dovecot, source, PASSWORD, samplebox.build(3))
    plan = tmp_path / "plan.yaml"
    assert cli(*plan_args(dovecot, source, target, plan)).returncode == 0
    result = cli("run", str(plan), "--dry-run", "--json", "-", "-q")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["created"] == 30
    assert sum(sum(c.values()) for c in mailbox_state(dovecot, target).values()) == 0


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(dovecot: Dovecot, accounts: tuple[str, str],
                                                                 tmp_path: Path) -> None:
    source, target = accounts
    # 4,000 messages: a run takes long enough (several seconds) for the kills to land mid-copy.
    corpus.load_into_dovecot(dovecot, source, PASSWORD, samplebox.build(400))
    plan = tmp_path / "plan.yaml"
    assert cli(*plan_args(dovecot, source, target, plan)).returncode == 0
    rng = random.Random(20261129)
    env = {**os.environ, "COLUMNS": "160", "PW": PASSWORD}
    killed = 0
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "-q"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    assert killed >= 3, "the run finished before it could be killed: make the mailbox larger"
    final = cli("run", str(plan), "-q", "--json", "-")
    assert final.returncode == 0, final.stderr
    same_mailbox(dovecot, source, target)
    assert cli("verify", str(plan), "-q").returncode == 0


def test_dovecot_restart_mid_run_reconnects_and_completes(dovecot: Dovecot, accounts: tuple[str, str],
                                                          tmp_path: Path) -> None:
    source, target = accounts
    corpus.load_into_dovecot(dovecot, source, PASSWORD, samplebox.build(150))
    plan = tmp_path / "plan.yaml"
    assert cli(*plan_args(dovecot, source, target, plan)).returncode == 0
    env = {**os.environ, "COLUMNS": "160", "PW": PASSWORD}
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "-q"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    time.sleep(1.0)
    subprocess.run(["doveadm", "-c", str(dovecot.config), "kick", "*"], capture_output=True)
    dovecot.restart()
    _, err = proc.communicate(timeout=300)
    # Whatever the run made of the outage, running again completes it and nothing is doubled.
    if proc.returncode != 0:
        assert proc.returncode == ExitCode.FAILED or proc.returncode > 0, err
        assert "Traceback" not in err
        assert cli("run", str(plan), "-q").returncode == 0
    same_mailbox(dovecot, source, target)
