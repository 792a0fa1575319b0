"""`o365-migrate preflight`, and preflight at the start of `plan` and `run`: the table, the JSON, the exit code,
the choice kept in the plan, and an m365:// move whose mail goes by IMAP and whose calendar goes by Graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from migrate import samplebox
from migrate.errors import ExitCode
from tests.preflight.conftest import ALICE, CLIENT, SECRET, Tenant

CALENDAR = """BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//o365-migrate tests//EN\r\n""" + "".join(
    f"BEGIN:VEVENT\r\nUID:preflight-{n}@example.se\r\nDTSTAMP:20260101T090000Z\r\n"
    f"DTSTART:202602{n + 10:02d}T090000Z\r\nDTEND:202602{n + 10:02d}T100000Z\r\nSUMMARY:Möte {n}\r\nEND:VEVENT\r\n"
    for n in range(5)) + "END:VCALENDAR\r\n"


def cli(tenant: Tenant, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PREFLIGHT_SECRET": SECRET, "O365M_CONFIG_DIR": str(tenant.config_dir),
           "O365M_TOKEN_CACHE": "plaintext", "XDG_STATE_HOME": str(tenant.config_dir / "state")}
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=300)


def test_preflight_prints_the_table_and_json_and_exits_by_what_it_found(tenant: Tenant) -> None:
    ok = cli(tenant, "preflight", "--to", tenant.url, "--json", "-", *tenant.cli_args())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    found = json.loads(ok.stdout)
    assert found["choice"] == {"mail": "imap", "calendars": "ews", "contacts": "ews"}
    assert found["limits"]["max_message_bytes"] == 36 * 1024 ** 2
    assert "IMAP" in ok.stderr and "works" in ok.stderr  # the table goes to stderr when JSON takes stdout
    assert SECRET not in ok.stdout + ok.stderr
    tenant.sandbox.set_mailbox_policy(ALICE, imap_enabled=False)
    tenant.sandbox.set_ews_blocked(True)
    tenant.permit(["Calendars.ReadWrite", "Contacts.ReadWrite"])
    refused = cli(tenant, "preflight", "--to", tenant.url, *tenant.cli_args())
    assert refused.returncode == ExitCode.PREFLIGHT, refused.stdout + refused.stderr
    assert f"Set-CASMailbox -Identity {ALICE} -ImapEnabled $true" in refused.stdout
    assert f'EwsAllowedAppIDs @{{Add="{CLIENT}"}}' in refused.stdout
    assert "Mail.ReadWrite" in refused.stdout
    assert "Traceback" not in refused.stderr
    assert refused.stderr.strip().count("\n") == 0  # one line: what and the first fix


def test_bad_transport_and_missing_sign_in_are_one_line_usage_errors(tenant: Tenant) -> None:
    bad = cli(tenant, "preflight", "--to", tenant.url, "--transport", "calendars=imap", *tenant.cli_args())
    assert bad.returncode == ExitCode.USAGE and "imap cannot carry calendars" in bad.stderr
    bare = cli(tenant, "preflight", "--to", tenant.url)
    assert bare.returncode == ExitCode.USAGE and "--tenant" in bare.stderr and "Traceback" not in bare.stderr


def test_an_m365_move_takes_mail_by_imap_and_the_calendar_by_graph_when_ews_is_blocked(tenant: Tenant,
                                                                                      tmp_path: Path) -> None:
    tenant.sandbox.set_ews_blocked(True)
    folders = samplebox.build(12)
    store = tmp_path / "maildir"
    samplebox.write_maildir(folders, store)
    plan = tmp_path / "plan.yaml"
    made = cli(tenant, "plan", f"maildir:{store}", "--to", tenant.url, "-o", str(plan), *tenant.cli_args())
    assert made.returncode == 0, made.stdout + made.stderr
    assert yaml.safe_load(plan.read_text())["transports"]["mail"] == "imap"
    ran = cli(tenant, "run", str(plan), "-q", "--json", "-")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    sent = sum(len(f.messages) for f in folders)
    assert sum(f["created"] for f in json.loads(ran.stdout)["folders"]) == sent
    landed = [p for p in tenant.dovecot.maildir(ALICE).rglob("*") if p.parent.name in ("cur", "new")]
    assert len(landed) == sent  # by IMAP, into Dovecot
    assert tenant.sandbox.received_mime(ALICE) == []  # nothing by EWS or Graph
    checked = cli(tenant, "verify", str(plan), "-q", "--json", "-")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    ics = tmp_path / "kalender.ics"
    ics.write_text(CALENDAR, encoding="utf-8")
    moved = cli(tenant, "run", f"ics:{ics}", "--to", tenant.url, "-q", "--json", "-", *tenant.cli_args())
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert len(tenant.sandbox.items(ALICE, "Calendar")) == 5  # by Graph: EWS is blocked, IMAP has no calendars
    ews_calls = [r for r in tenant.sandbox.requests if r.operation not in ("blocked",) and r.path.startswith("/EWS")]
    assert ews_calls == []


def test_a_run_stops_before_moving_when_the_tenant_changed_since_the_plan(tenant: Tenant, tmp_path: Path) -> None:
    store = tmp_path / "maildir"
    samplebox.write_maildir(samplebox.build(4), store)
    plan = tmp_path / "plan.yaml"
    made = cli(tenant, "plan", f"maildir:{store}", "--to", tenant.url, "-o", str(plan), *tenant.cli_args())
    assert made.returncode == 0, made.stdout + made.stderr
    tenant.sandbox.set_mailbox_policy(ALICE, imap_enabled=False)  # the admin turned IMAP off meanwhile
    ran = cli(tenant, "run", str(plan), "-q")
    assert ran.returncode == ExitCode.PREFLIGHT, ran.stdout + ran.stderr
    assert "-ImapEnabled $true" in ran.stdout + ran.stderr
    assert not list(tenant.dovecot.maildir(ALICE).rglob("cur/*"))
    moved = cli(tenant, "run", str(plan), "-q", "--transport", "mail=ews", "--json", "-")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert len(tenant.sandbox.received_mime(ALICE)) == sum(f["created"] for f in json.loads(moved.stdout)["folders"])
