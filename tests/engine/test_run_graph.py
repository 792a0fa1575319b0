"""Mail, calendars and contacts through the engine into the sandbox over Microsoft Graph: plan, run, rerun,
verify, through the real command line; every Graph body checked against Microsoft's schema."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.sandbox.server import Sandbox
from migrate.sandbox.testing import strict_config
from tests.conftest import shared_dir
from tests.engine.test_run_ews import CLIENT, MAILBOX, SECRET, TENANT, cli

GRAPH_PERMISSIONS = ["Mail.ReadWrite", "Calendars.ReadWrite", "Contacts.ReadWrite"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path / "sandbox", config=strict_config()).start()
    sb.add_app(CLIENT, secret=SECRET, permissions=GRAPH_PERMISSIONS)
    sb.add_mailbox(MAILBOX)
    try:
        yield sb
    finally:
        sb.stop()
        if sb.schema_errors:
            pytest.fail("Graph schema violations:\n" + "\n".join(str(v) for v in sb.schema_errors[:20]),
                        pytrace=False)


def make_plan(sandbox: Sandbox, tmp_path: Path, source: str) -> Path:
    plan = tmp_path / "plan.yaml"
    made = cli(tmp_path, "plan", source, "--to", f"graph://{MAILBOX}?endpoint={sandbox.graph_url}",
               "-o", str(plan), "--tenant", TENANT, "--client-id", CLIENT, "--authority", sandbox.url,
               "--client-secret-env", "APP_SECRET", "--auth-ca-file", str(sandbox.ca_path),
               "--target-ca-file", str(sandbox.ca_path))
    assert made.returncode == 0, made.stdout + made.stderr
    return plan


def _run_twice_and_verify(sandbox: Sandbox, tmp_path: Path, plan_path: Path) -> dict[str, object]:
    first = cli(tmp_path, "run", str(plan_path), "-q", "--json", str(tmp_path / "run1.json"))
    run1 = json.loads((tmp_path / "run1.json").read_text())
    assert run1["totals"]["created"] > 0 and run1["stopped"] is None, first.stdout + first.stderr
    again = cli(tmp_path, "run", str(plan_path), "-q", "--json", str(tmp_path / "run2.json"))
    assert (tmp_path / "run2.json").exists(), again.stdout[-3000:] + again.stderr[-3000:] + str(
        [(r.operation, r.status) for r in sandbox.requests if r.status >= 400][:20])
    run2 = json.loads((tmp_path / "run2.json").read_text())
    assert run2["totals"]["created"] == 0, again.stdout + again.stderr
    checked = cli(tmp_path, "verify", str(plan_path), "-q", "--json", str(tmp_path / "verify.json"))
    verification = json.loads((tmp_path / "verify.json").read_text())
    bad = [d for f in verification["folders"] for d in f["differences"]
           if d["verdict"] in ("differs", "missing on target")]
    assert bad == [], bad[:5]
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return dict(run1)


def test_mail_moves_through_graph_as_received_mail(sandbox: Sandbox, tmp_path: Path) -> None:
    root = tmp_path / "maildir"
    samplebox.write_maildir(samplebox.build(4), root)
    plan_path = make_plan(sandbox, tmp_path, f"maildir:{root}")
    run1 = _run_twice_and_verify(sandbox, tmp_path, plan_path)
    stored = [i for _, i in ((f, i) for f in ("Inbox",) for i in sandbox.items(MAILBOX, f))]
    assert stored and not any(i.is_draft for i in stored)
    assert run1["failures"] == []


def test_calendars_move_through_graph_once(sandbox: Sandbox, tmp_path: Path) -> None:
    root = tmp_path / "ics"
    shutil.copytree(shared_dir("corpus", "ics"), root)
    plan_path = make_plan(sandbox, tmp_path, f"ics:{root}")
    run1 = _run_twice_and_verify(sandbox, tmp_path, plan_path)
    assert all(f["reason"] for f in run1["failures"])  # type: ignore[attr-defined]


def test_contacts_move_through_graph_once(sandbox: Sandbox, tmp_path: Path) -> None:
    root = tmp_path / "vcf"
    shutil.copytree(shared_dir("corpus", "vcf"), root)
    plan_path = make_plan(sandbox, tmp_path, f"vcf:{root}")
    run1 = _run_twice_and_verify(sandbox, tmp_path, plan_path)
    # Contact groups have no Graph API: refused one by one, with the reason naming EWS.
    assert all("EWS" in f["reason"] or f["reason"] for f in run1["failures"])  # type: ignore[attr-defined]
