"""The engine into the Exchange sandbox over EWS: kills, throttling and rejected items.

Real msal signs in to the sandbox's authority; real exchangelib talks to its EWS endpoint;
every EWS request is checked against Microsoft's schema (a violation fails the test).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.sandbox.faults import Fault
from migrate.sandbox.server import Sandbox
from migrate.sandbox.testing import strict_config
from tests.corpus import normalise

TENANT, CLIENT, SECRET, MAILBOX = "contoso.example", "migrate-tests", "s3cr3t-Client-Value", "anna@contoso.example"


@pytest.fixture
def sandbox(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path / "sandbox", config=strict_config()).start()
    sb.add_app(CLIENT, secret=SECRET, permissions=["full_access_as_app"])
    sb.add_mailbox(MAILBOX)
    try:
        yield sb
    finally:
        sb.stop()
        violations = sb.schema_errors
        if request.node.get_closest_marker("kills_clients"):
            # A client killed mid-request leaves a cut-off body; only such requests may fail to parse.
            violations = [v for v in violations if v.operation != "(unparsable)"]
        if violations:
            pytest.fail("EWS schema violations:\n" + "\n".join(str(v) for v in violations[:20]), pytrace=False)


def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "160", "APP_SECRET": SECRET, "O365M_CONFIG_DIR": str(tmp_path / "config"),
            "O365M_TOKEN_CACHE": "plaintext"}


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          env=env(tmp_path), stdin=subprocess.DEVNULL, timeout=600)


def make_plan(sandbox: Sandbox, tmp_path: Path, source: str) -> Path:
    plan = tmp_path / "plan.yaml"
    made = cli(tmp_path, "plan", source, "--to", f"ews://{MAILBOX}?endpoint={sandbox.ews_url}&impersonate=1",
               "-o", str(plan), "--tenant", TENANT, "--client-id", CLIENT, "--authority", sandbox.url,
               "--client-secret-env", "APP_SECRET", "--auth-ca-file", str(sandbox.ca_path),
               "--target-ca-file", str(sandbox.ca_path))
    assert made.returncode == 0, made.stdout + made.stderr
    assert SECRET not in plan.read_text()
    return plan


def received(sandbox: Sandbox) -> Counter[tuple[str, bytes]]:
    return Counter((folder, normalise(mime)) for folder, mime in sandbox.received_mime(MAILBOX))


def expected(folders: list[samplebox.SampleFolder]) -> Counter[tuple[str, bytes]]:
    names = {"INBOX": "Inbox", "Skickat": "Sent Items", "Utkast": "Drafts", "Papperskorgen": "Deleted Items",
             "Skräppost": "Junk Email", "Arkiv": "Archive"}
    want: Counter[tuple[str, bytes]] = Counter()
    for f in folders:
        name = names.get("/".join(f.path), "/".join(f.path))
        for m in f.messages:
            want[(name, normalise(m.raw))] += 1
    return want


@pytest.mark.kills_clients
def test_kill_and_resume_into_exchange_loses_and_duplicates_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    folders = samplebox.build(60)
    store = tmp_path / "maildir"
    samplebox.write_maildir(folders, store)
    plan = make_plan(sandbox, tmp_path, f"maildir:{store}")
    rng = random.Random(7)
    killed = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "-q"], env=env(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.5, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    assert killed >= 2
    final = cli(tmp_path, "run", str(plan), "-q", "--json", "-")
    assert final.returncode == 0, final.stderr
    got = received(sandbox)
    assert got == expected(folders)  # every message once: counts, folders and the exact bytes sent
    assert max(got.values()) <= max(expected(folders).values())
    checked = cli(tmp_path, "verify", str(plan), "-q", "--json", "-")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["hashes_compared"] is False  # Exchange: properties, not bytes


def test_throttling_and_rejected_items_are_waited_for_and_listed(sandbox: Sandbox, tmp_path: Path) -> None:
    folders = samplebox.build(8)
    store = tmp_path / "maildir"
    samplebox.write_maildir(folders, store)
    plan = make_plan(sandbox, tmp_path, f"maildir:{store}")
    sandbox.inject(
        Fault.server_busy(back_off_ms=1200, operation="CreateItem"),
        Fault.item_error("ErrorMimeContentConversionFailed", item_index=2),
        Fault.http_503(retry_after_s=1, operation="CreateItem"),
    )
    log = tmp_path / "events.jsonl"
    result = cli(tmp_path, "run", str(plan), "-q", "--json", str(tmp_path / "run.json"), "--log-json", str(log))
    assert result.returncode == 1, result.stdout + result.stderr  # one item could not move: FAILED
    run = json.loads((tmp_path / "run.json").read_text())
    assert [f["failure"] for f in run["failures"]] == ["rejected"]
    assert run["totals"]["created"] == sum(len(f.messages) for f in folders) - 1
    assert any("waiting" in (json.loads(line).get("note") or "") for line in log.read_text().splitlines())
    # The rejected item is listed with its reason and is not on the target; nothing else is missing or doubled.
    got = received(sandbox)
    assert sum(got.values()) == run["totals"]["created"]
    assert max(got.values()) <= max(expected(folders).values())
