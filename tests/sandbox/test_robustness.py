"""Fault plans, the throttle budget, and MIME that is old, broken or hostile."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from exchangelib import Account
from exchangelib.errors import ErrorServerBusy
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from migrate.sandbox import Fault, FaultKind, Sandbox
from migrate.sandbox.faults import FaultPlan, ThrottleBudget
from migrate.sandbox.mime import message_facts, rebuild
from migrate.sandbox.soap import T_NS, sub, t
from migrate.sandbox.testing import require_schema_dir

from .conftest import populate
from .helpers import ALICE, account, app_credentials, confidential_app, message


def test_fault_plan_order_and_operation_filter() -> None:
    plan = FaultPlan([Fault.item_busy(), Fault.http_503()], busy_every_n_requests=3)
    first = plan.next_for("GetFolder")  # the CreateItem-only fault waits; the 503 behind it does not
    assert first is not None and first.kind is FaultKind.HTTP_503
    assert plan.next_for("GetFolder") is None
    busy = plan.next_for("GetFolder")  # third request: busy every 3
    assert busy is not None and busy.kind is FaultKind.SERVER_BUSY
    item = plan.next_for("CreateItem")
    assert item is not None and item.kind is FaultKind.ITEM_ERROR
    assert plan.pending == []


def test_throttle_budget_window() -> None:
    now = [1000.0]
    budget = ThrottleBudget(budget_bytes=100, window_s=300, clock=lambda: now[0])
    assert budget.charge("a@x", 60) == 0
    assert budget.charge("b@x", 90) == 0  # budgets are per mailbox
    wait = budget.charge("a@x", 60)
    assert wait == 300_000  # until the first 60 bytes leave the window
    now[0] += 150
    assert budget.charge("a@x", 60) == 150_000
    now[0] += 150
    assert budget.charge("a@x", 60) == 0
    assert budget.charge("c@x", 500) == 0  # bigger than the budget, but alone: let it through


def test_throttle_answers_server_busy(sandbox_factory: Callable[..., Sandbox],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sb = populate(sandbox_factory(throttle_enabled=True, throttle_bytes=4000))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sb.ca_path))
    acct: Account = account(sb, app_credentials(confidential_app(sb)))
    body = b"From: a@example.org\nSubject: big\n\n" + b"x" * 2500 + b"\n"
    acct.bulk_create(acct.inbox, [message(body)])
    with pytest.raises(ErrorServerBusy) as raised:
        acct.bulk_create(acct.inbox, [message(body)])
    assert raised.value.back_off and raised.value.back_off > 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_message_facts_never_raise_and_are_xml_safe(raw: bytes) -> None:
    facts = message_facts(raw)
    holder = etree.Element(t("Item"), nsmap={"t": T_NS})
    for text in [facts.subject, facts.message_id, facts.body, facts.references, facts.header_block,
                 *(v for h in facts.headers for v in h), *(a.name for a in facts.attachments),
                 *(a.name + a.email for a in facts.sender + facts.to + facts.cc)]:
        if text is not None:
            sub(holder, t("Value"), text)  # lxml refuses XML-illegal characters
    assert rebuild(raw, has_attachments=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([b"Subject: ", b"=?utf-8?b?", b"?=", b"\xff\xfe", b"\x00", b"\r\n", b"\n",
                                 b"Content-Type: multipart/mixed; boundary=x\n", b"--x\n", b"--x--",
                                 b"filename*=utf-8''%E2%9C%93", b"From: ", b"<a@b>", b"\x1b$B"]), max_size=40))
def test_header_soup_is_survivable(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    message_facts(raw)
    rebuild(raw, has_attachments=True)


def corpus_files() -> list[Path]:
    root = require_schema_dir().parent / "corpus" / "eml"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".md")


def test_every_corpus_message_uploads_and_reads_back(alice: Account, tenant: Sandbox) -> None:
    files = corpus_files()
    assert files, "the shared corpus has no EML files"
    raws = [p.read_bytes() for p in files]
    created = []
    for start in range(0, len(raws), 50):
        created += alice.bulk_create(alice.inbox, [message(r) for r in raws[start:start + 50]])
    failures = [(f.name, r) for f, r in zip(files, created, strict=True) if isinstance(r, Exception)]
    assert not failures
    # Not "attachments": exchangelib's Item.attach is quadratic, and issue408.eml has 328 of them (minutes of CPU).
    fetched = list(alice.fetch(created, only_fields=["subject", "message_id", "body", "mime_content", "sender",
                                                     "to_recipients", "datetime_sent", "has_attachments"]))
    assert [f.mime_content for f in fetched] == raws
    assert not [r for r in tenant.requests if r.status >= 500]
    assert [m for _, m in tenant.received_mime(ALICE)] == raws


def test_large_message_passes_lxml_text_limit(alice: Account, tenant: Sandbox) -> None:
    # One base64 text node over 10 MB: lxml refuses it unless parsers use huge_tree (both ends must).
    payload = base64.encodebytes(os.urandom(6 * 1024 * 1024))  # MimeContent ends up near 11 MB
    raw = (b"From: a@example.org\nSubject: big one\nMessage-ID: <big@x>\nContent-Type: application/octet-stream\n"
           b"Content-Transfer-Encoding: base64\n\n" + payload)
    (created,) = alice.bulk_create(alice.inbox, [message(raw)])
    assert not isinstance(created, Exception)
    (item,) = alice.fetch([created], only_fields=["mime_content", "size"])
    assert item.mime_content == raw and item.size == len(raw)


def test_serve_runs_until_interrupted(tmp_path: Path) -> None:
    require_schema_dir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = (
        "import sys\nfrom pathlib import Path\nfrom migrate.sandbox import serve\n"
        f"serve({port}, Path(sys.argv[1]), apps=[('cli-app', 'pw')], mailboxes=['{ALICE}'],\n"
        "      on_ready=lambda sb: print(sb.authority, sb.ca_path, flush=True))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=repo, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        authority, ca_path = proc.stdout.readline().split()
        config = requests.get(f"{authority}/v2.0/.well-known/openid-configuration", verify=ca_path, timeout=30)
        assert config.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert (tmp_path / "sandbox.sqlite3").is_file()
