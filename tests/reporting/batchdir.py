"""A batch folder made of real single runs, laid out exactly as `o365-migrate batch` writes it.

Each mailbox is planned, run and verified by the library into the Exchange sandbox (real msal,
real exchangelib, every EWS request checked against Microsoft's schema):
- anna: a Maildir of sample mail, one message refused by the target (a failure with its reason);
- bo: calendars from the shared corpus (.ics), with their fidelity account;
- cecilia: failed before it moved anything (no journal), as a sign-in refusal leaves it;
- david: still waiting.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from exchangelib.protocol import close_connections

from migrate import samplebox
from migrate.migration import plan_migration, run_plan, verify_plan
from migrate.plan import Connection, SignIn, save_plan
from migrate.sandbox.faults import Fault
from migrate.sandbox.server import Sandbox
from migrate.sandbox.testing import strict_config

TENANT, CLIENT, SECRET = "contoso.example", "migrate-tests", "s3cr3t-Client-Value"
CORPUS_ICS = ("vobject",)  # a small corpus folder: quick, and with changes to account for


@dataclass
class BatchFolder:
    root: Path
    journals: dict[str, Path]


def _target(sandbox: Sandbox, mailbox: str) -> Connection:
    return Connection(url=f"ews://{mailbox}?endpoint={sandbox.ews_url}&impersonate=1", ca_file=str(sandbox.ca_path),
                      sign_in=SignIn(tenant=TENANT, client_id=CLIENT, authority=sandbox.url,
                                     client_secret_env="APP_SECRET", ca_file=str(sandbox.ca_path)))


def _one(root: Path, ident: str, source: Connection, target: Connection) -> dict[str, object]:
    folder = root / "mailboxes" / ident
    folder.mkdir(parents=True)
    plan, _ = plan_migration(source, target)
    save_plan(plan, folder / "plan.yaml")
    journal = folder / "journal.sqlite"
    result = run_plan(plan, journal)
    (folder / "result.json").write_text(json.dumps(result.as_json(), indent=2, default=str), encoding="utf-8")
    check = verify_plan(plan, journal)
    (folder / "verify.json").write_text(json.dumps(check.as_json(), indent=2), encoding="utf-8")
    close_connections()
    totals = result.as_json()["totals"]
    return {"plan": f"mailboxes/{ident}/plan.yaml", "journal": f"mailboxes/{ident}/journal.sqlite",
            "state": "done", "error": None, "started": result.started.isoformat(),
            "ended": result.ended.isoformat() if result.ended else None,
            "totals": {**totals, "verified": check.ok}}


def build_batch(root: Path, work: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> BatchFolder:
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("O365M_CONFIG_DIR", str(work / "config"))
    monkeypatch.setenv("O365M_TOKEN_CACHE", "plaintext")
    maildir = work / "maildir"
    samplebox.write_maildir(samplebox.build(4), maildir)
    ics = work / "ics"
    for name in CORPUS_ICS:
        shutil.copytree(corpus / "ics" / name, ics / name)
    sandbox = Sandbox(work / "sandbox", config=strict_config()).start()
    try:
        sandbox.add_app(CLIENT, secret=SECRET, permissions=["full_access_as_app"])
        rows: list[dict[str, object]] = []
        for line, (ident, mailbox) in enumerate((("anna", "anna@contoso.example"), ("bo", "bo@contoso.example"),
                                                 ("cecilia", "cecilia@contoso.example"),
                                                 ("david", "david@contoso.example")), start=2):
            sandbox.add_mailbox(mailbox)
            row: dict[str, object] = {"id": ident, "line": line, "email": mailbox,
                                      "target": f"ews://{mailbox}?endpoint={sandbox.ews_url}&impersonate=1"}
            if ident == "anna":
                sandbox.inject(Fault.item_error("ErrorMimeContentConversionFailed", item_index=1))
                row |= {"source": f"maildir:{maildir}", **_one(root, ident, Connection(url=f"maildir:{maildir}"),
                                                              _target(sandbox, mailbox))}
            elif ident == "bo":
                row |= {"source": f"ics:{ics}", **_one(root, ident, Connection(url=f"ics:{ics}"),
                                                      _target(sandbox, mailbox))}
            elif ident == "cecilia":
                row |= {"source": "imaps://cecilia@mail.example.se", "plan": "mailboxes/cecilia/plan.yaml",
                        "journal": "mailboxes/cecilia/journal.sqlite", "state": "failed",
                        "error": "the source refused the sign-in (check the password)", "totals": {}}
            else:
                row |= {"source": "imaps://david@mail.example.se", "plan": "mailboxes/david/plan.yaml",
                        "journal": "mailboxes/david/journal.sqlite", "state": "pending", "totals": {}}
            rows.append(row)
        if sandbox.schema_errors:
            pytest.fail("EWS schema violations:\n" + "\n".join(str(v) for v in sandbox.schema_errors[:20]))
    finally:
        sandbox.stop()
    (root / "batch.json").write_text(json.dumps({"version": 1, "csv": "users.csv", "to": TENANT,
                                                 "mailboxes": rows}, indent=2), encoding="utf-8")
    return BatchFolder(root, {"anna": root / "mailboxes/anna/journal.sqlite",
                              "bo": root / "mailboxes/bo/journal.sqlite"})
