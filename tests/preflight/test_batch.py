"""A batch into m365://tenant: preflight runs for each mailbox, a mailbox the tenant does not let in fails with
the admin's fix while the others move, and each plan records the transport chosen for its mailbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from migrate import samplebox
from tests.preflight.conftest import ALICE, CLIENT, SECRET, TENANT, Tenant

BOB = "bob@contoso.example"


def test_a_batch_into_m365_chooses_per_mailbox_and_a_refused_one_does_not_stop_the_other(tenant: Tenant,
                                                                                          tmp_path: Path) -> None:
    tenant.sandbox.add_mailbox(BOB)
    tenant.sandbox.set_mailbox_policy(ALICE, imap_enabled=False)  # alice: mail by EWS, not IMAP
    tenant.sandbox.set_mailbox_policy(BOB, imap_enabled=False, ews_enabled=False, licensed=False)  # bob: no way in
    folders = samplebox.build(4, seed=3)
    for name in ("alice", "bob"):
        samplebox.write_maildir(folders, tmp_path / f"{name}-maildir")
    csv = tmp_path / "users.csv"
    csv.write_text(f"EmailAddress,SourceKind,Source\n{ALICE},maildir,alice-maildir\n{BOB},maildir,bob-maildir\n",
                   encoding="utf-8")
    place = tenant.url.replace(f"m365://{ALICE}", f"m365://{TENANT}")
    env = {**os.environ, "COLUMNS": "200", "PREFLIGHT_SECRET": SECRET, "O365M_CONFIG_DIR": str(tenant.config_dir),
           "O365M_TOKEN_CACHE": "plaintext"}
    batch = tmp_path / "batch"
    ran = subprocess.run([sys.executable, "-m", "migrate", "batch", str(csv), "--to", place, "--client-id", CLIENT,
                          "--authority", tenant.sandbox.url, "--client-secret-env", "PREFLIGHT_SECRET",
                          "--auth-ca-file", str(tenant.sandbox.ca_path), "--target-ca-file", str(tenant.ca_bundle),
                          "--dir", str(batch), "-q"], capture_output=True, text=True, env=env,
                         stdin=subprocess.DEVNULL, timeout=600)
    assert ran.returncode != 0  # one mailbox failed
    status = subprocess.run([sys.executable, "-m", "migrate", "batch", "status", str(batch), "--json"],
                            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    boxes = {m["id"]: m for m in json.loads(status.stdout)["mailboxes"]}
    assert boxes[ALICE]["state"] == "done", boxes[ALICE]
    assert boxes[BOB]["state"] == "failed" and "no transport can carry mail" in boxes[BOB]["error"]
    plan = yaml.safe_load((batch / "mailboxes" / ALICE / "plan.yaml").read_text())
    assert plan["transports"]["mail"] == "ews"
    assert len(tenant.sandbox.received_mime(ALICE)) == sum(len(f.messages) for f in folders)
    assert tenant.sandbox.received_mime(BOB) == []
    assert SECRET not in ran.stdout + ran.stderr
