"""An Outlook .pst through the real entry point (inventory, plan, run, run again, verify) into Dovecot."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import imapclient
import pytest
from exchangelib.protocol import close_connections

from migrate.model import ItemKind
from migrate.sandbox.server import Sandbox
from migrate.sources import open_source
from tests.conftest import shared_dir
from tests.engine.test_run_ews import MAILBOX, make_plan
from tests.engine.test_run_ews import cli as ews_cli
from tests.engine.test_run_ews import sandbox as sandbox  # the fixture: every EWS request schema-checked
from tests.engine.test_run_imap import PASSWORD, cli
from tests.servers.dovecot import Dovecot


@pytest.fixture(autouse=True)
def fresh_protocols() -> Iterator[None]:
    yield
    close_connections()


def _target(dovecot: Dovecot, user: str) -> dict[str, list[tuple[bytes, frozenset[str], str]]]:
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.ports["imaps"],
                                   ssl_context=ssl.create_default_context(cafile=str(dovecot.ca_path)))
    client.login(user, PASSWORD)
    client.normalise_times = False
    found: dict[str, list[tuple[bytes, frozenset[str], str]]] = {}
    try:
        for _, _, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search()
            data = client.fetch(uids, [b"BODY.PEEK[]", b"FLAGS", b"INTERNALDATE"]) if uids else {}
            found[name] = sorted((d[b"BODY[]"], frozenset(f.decode() for f in d[b"FLAGS"] if f != b"\\Recent"),
                                  d[b"INTERNALDATE"].isoformat()) for d in data.values())
    finally:
        client.logout()
    return found


def test_pst_mail_moves_into_imap_with_flags_dates_and_bytes(dovecot: Dovecot, tmp_path: Path) -> None:
    pst = shared_dir("corpus", "pst") / "pstsdk_sample1.pst"
    user = "dst-pst-sample1"
    dovecot.add_user(user, PASSWORD)
    inventory = cli("inventory", f"pst:{pst}", "--json", "-")
    assert inventory.returncode == 0, inventory.stderr
    assert json.loads(inventory.stdout)["totals"]["messages"] == 1
    plan = tmp_path / "plan.yaml"
    made = cli("plan", f"pst:{pst}", "--to", f"imaps://{user}@127.0.0.1:{dovecot.ports['imaps']}", "-o", str(plan),
               "--target-password-env", "PW", "--target-ca-file", str(dovecot.ca_path))
    assert made.returncode == 0, made.stdout + made.stderr
    first = cli("run", str(plan), "--json", str(tmp_path / "run.json"), "-q")
    assert first.returncode == 0, first.stdout + first.stderr
    totals = json.loads((tmp_path / "run.json").read_text())["totals"]
    assert (totals["created"], totals["failed"]) == (1, 0)

    with open_source(f"pst:{pst}") as source:
        [folder] = [f for f in source.folders() if f.kind is ItemKind.MAIL and f.path == ("Sample1",)]
        [(ref, raw)] = list(source.read(folder, list(source.messages(folder))))
    target = _target(dovecot, user)
    [(body, flags, arrived)] = target["Sample1"]
    assert body == raw  # Dovecot keeps the bytes: the rebuilt message arrives whole
    assert flags == {"\\Seen", "\\Flagged"}
    assert ref.internal_date is not None and arrived.startswith(ref.internal_date.strftime("%Y-%m-%dT%H:%M:%S"))

    again = cli("run", str(plan), "--json", "-", "-q")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["totals"]["created"] == 0
    assert _target(dovecot, user)["Sample1"] == target["Sample1"]
    checked = cli("verify", str(plan), "--json", str(tmp_path / "verify.json"), "-q")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads((tmp_path / "verify.json").read_text())["ok"]


def test_cli_inventory_of_a_pst_lists_roles_kinds_and_problems(tmp_path: Path) -> None:
    pst = shared_dir("corpus", "pst") / "java-libpst_passworded.pst"
    result = cli("inventory", f"pst:{pst}", "--json", "-")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    folders = {f["name"]: f for f in doc["folders"]}
    assert folders["Contacts"]["role"] == "contacts" and folders["Contacts"]["messages"] == 2
    assert folders["Sent Items"]["role"] == "sent" and folders["Junk E-mail"]["role"] == "junk"
    assert "pst-password" in {w["code"] for w in doc["warnings"]}


def test_cli_names_a_damaged_file_in_one_line(tmp_path: Path) -> None:
    cut = tmp_path / "Outlook.pst"
    cut.write_bytes((shared_dir("corpus", "pst") / "libyal_outlook.pst").read_bytes()[:20_000])
    result = cli("inventory", f"pst:{cut}")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    [line] = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert str(cut) in line and "cut short" in line


def test_pst_mail_calendar_and_contacts_go_into_the_exchange_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    """java-libpst_dist-list.pst: a recurring appointment, a contact and a distribution list, over EWS."""
    pst = shared_dir("corpus", "pst") / "java-libpst_dist-list.pst"
    plan_path = make_plan(sandbox, tmp_path, f"pst:{pst}")
    first = ews_cli(tmp_path, "run", str(plan_path), "-q", "--json", str(tmp_path / "run1.json"))
    run1 = json.loads((tmp_path / "run1.json").read_text())
    assert (run1["totals"]["created"], run1["totals"]["failed"]) == (3, 0), first.stdout + first.stderr
    [event] = sandbox.items(MAILBOX, "Calendar")
    assert event.data is not None
    assert str(event.data["uid"]).startswith("040000008200E00074C5B7101A82E008")
    assert event.subject == "Test appointment"
    data = event.data
    assert (data["subject"], data["busy"], data["reminder_minutes"], data["is_all_day"]) == \
        ("Test appointment", "Busy", 15, False)
    assert data["start_time_zone"] == "Pacific Standard Time"
    assert data["start"].startswith("2016-08-02T15:00:00")  # 08:00 in Los Angeles, in UTC
    assert data["recurrence"] is not None
    contacts = {item.subject: item for item in sandbox.items(MAILBOX, "Contacts")}
    assert set(contacts) == {"contact name 1", "test dist list"}
    person = contacts["contact name 1"].data
    assert person is not None and (person["given_name"], person["surname"]) == ("contact", "1")
    again = ews_cli(tmp_path, "run", str(plan_path), "-q", "--json", str(tmp_path / "run2.json"))
    assert json.loads((tmp_path / "run2.json").read_text())["totals"]["created"] == 0, again.stdout + again.stderr
    checked = ews_cli(tmp_path, "verify", str(plan_path), "-q", "--json", str(tmp_path / "verify.json"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
