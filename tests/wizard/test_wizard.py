"""The wizard end to end, driven through the real questionary by prompt_toolkit's pipe input.

Discovery asks a loopback autoconfig server; the source is the real Dovecot (IMAP, POP3) or a Thunderbird
profile built from corpus files; the target is the project's Exchange sandbox over EWS with a real MSAL sign-in,
every request checked against Microsoft's schema. Then verification and the report, and a replay with --yes.
"""

from __future__ import annotations

import io
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import imapclient
import pytest
import yaml
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from migrate import samplebox
from migrate.discovery.network import Network
from migrate.errors import ExitCode
from migrate.sandbox.server import Sandbox
from migrate.sandbox.testing import check_schema_errors, strict_config
from migrate.sources.base import registered_schemes
from migrate.wizard.answers import load_answers
from migrate.wizard.flow import CALENDAR_SCHEMES, Interrupted, Wizard, WizardOptions
from tests.conftest import shared_dir
from tests.corpus import load_into_dovecot
from tests.servers.dovecot import Dovecot
from tests.wizard.conftest import resolver_for
from tests.wizard.servers import AutoconfigServer, DnsServer, config_xml
from tests.wizard.test_local_stores import thunderbird_home

TENANT, CLIENT, SECRET, MAILBOX = "contoso.example", "migrate-tests", "s3cr3t-Client-Value", "anna@contoso.example"
ENTER, DOWN, SPACE, CTRL_C, CLEAR = "\r", "\x1b[B", " ", "\x03", "\x15"  # CLEAR: Ctrl-U empties a line


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path / "sandbox", config=strict_config()).start()
    sb.add_app(CLIENT, secret=SECRET, permissions=["full_access_as_app"])
    sb.add_mailbox(MAILBOX)
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("O365M_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("O365M_TOKEN_CACHE", "plaintext")
    try:
        yield sb
    finally:
        sb.stop()
        from migrate.targets.ews import close_all

        close_all()
    check_schema_errors(sb)


@contextmanager
def typed(keys: str) -> Iterator[None]:
    """Everything typed ahead; prompt_toolkit hands each prompt the keys the one before left over."""
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        with create_app_session(input=pipe, output=DummyOutput()):
            yield


def calendar_keys() -> str:
    """Step 5 asks only when this version has calendar sources: then 'mail only' (the default)."""
    return ENTER if any(s in registered_schemes() for s in CALENDAR_SCHEMES) else ""


def microsoft_keys(sandbox: Sandbox) -> str:
    return (CLEAR + MAILBOX + ENTER  # the mailbox (the default is the source address)
            + ENTER  # let preflight choose the transport
            + ENTER  # tenant: contoso.example, from the mailbox
            + CLIENT + ENTER
            + DOWN + ENTER  # as the app, with a client secret
            + ENTER + "APP_SECRET" + ENTER  # from an environment variable
            + "y"  # advanced settings: the sandbox's authority, EWS and Graph addresses, no IMAP, and CA
            + CLEAR + sandbox.url + ENTER + sandbox.ews_url + ENTER + sandbox.graph_url + ENTER + "none" + ENTER
            + str(sandbox.ca_path) + ENTER + str(sandbox.ca_path) + ENTER)


def network(autoconfig: AutoconfigServer, dns_server: DnsServer, ca_file: Path) -> Network:
    # Probing is not reached (autoconfig answers); if it were, it would meet a closed loopback port.
    return Network(autoconfig_bases=autoconfig.bases(), resolver=resolver_for(dns_server), ca_file=ca_file,
                   address_of=lambda host, port: ("127.0.0.1", 9), timeout=3)


def run_wizard(options: WizardOptions, keys: str) -> tuple[int, str]:
    buffer = io.StringIO()
    options.console = Console(file=buffer, width=200, force_terminal=False)
    with typed(keys):
        try:
            code = Wizard(options).run()
        except Interrupted:
            code = 130
    return code, buffer.getvalue()


def test_imap_move_with_a_wrong_password_first_then_replayed(
        dovecot: Dovecot, sandbox: Sandbox, autoconfig: AutoconfigServer, dns_server: DnsServer, ca_file: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folders = samplebox.build(4)
    load_into_dovecot(dovecot, "anna", "right-password", folders)
    monkeypatch.setenv("SRC_PASSWORD", "right-password")
    autoconfig.pages["/d/example.test/mail/config-v1.1.xml"] = config_xml(
        "127.0.0.1", dovecot.ports["imaps"], username="%EMAILLOCALPART%")
    job = tmp_path / "job"
    keys = (ENTER  # IMAP
            + "anna@example.test" + ENTER
            + ENTER  # the server autoconfig found
            + ENTER + "wrong-password" + ENTER  # typed now
            + "y" + str(dovecot.ca_path) + ENTER  # Dovecot's private CA, asked for after the TLS refusal
            + DOWN + ENTER + "SRC_PASSWORD" + ENTER  # second try: from an environment variable
            + calendar_keys()
            + "y" + SPACE + ENTER + ENTER + ENTER  # change choices: untick the first folder, no dates
            + microsoft_keys(sandbox)
            + ENTER)  # start
    code, said = run_wizard(WizardOptions(lang="en", folder=job, network=network(autoconfig, dns_server, ca_file),
                                          home=tmp_path / "home"), keys)
    assert code == 0, said
    assert "refused the login for anna" in said  # the wrong password's reason, in one line
    assert "Verified: every message" in said and "Report:" in said
    answers = load_answers(job / "answers.yaml")
    assert answers.server is not None and answers.server.password == "env:SRC_PASSWORD"
    assert answers.server.ca_file == str(dovecot.ca_path)
    left_out = answers.exclude_folders
    assert len(left_out) == 1
    # Preflight chose: the app has EWS (full_access_as_app) but no Graph permission, and IMAP was left out.
    assert "Preflight:" in said and "Transport: mail by EWS" in said
    assert answers.target is not None and answers.target.transport == "auto"
    assert yaml.safe_load((job / "plan.yaml").read_text())["transports"]["mail"] == "ews"
    for name in ("answers.yaml", "plan.yaml", "report.html"):
        text = (job / name).read_text(encoding="utf-8")
        assert "right-password" not in text and "wrong-password" not in text and SECRET not in text
    received = sandbox.received_mime(MAILBOX)
    expected = sum(len(f.messages) for f in folders if "/".join(f.path) not in left_out)
    assert len(received) == expected and expected < sum(len(f.messages) for f in folders)

    # The same move again, unattended, from the answers file alone: nothing moves twice.
    env = {**os.environ, "COLUMNS": "160"}
    replay = subprocess.run([sys.executable, "-m", "migrate", "wizard", "--answers", str(job / "answers.yaml"),
                             "--yes"], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                            timeout=600)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "Verified: every message" in replay.stdout
    assert len(sandbox.received_mime(MAILBOX)) == expected

    # The tenant blocks EWS meanwhile, and the app has no Graph permission: the replay stops at the check, with
    # the admin's fix, before anything moves.
    sandbox.set_ews_blocked(True)
    blocked = subprocess.run([sys.executable, "-m", "migrate", "wizard", "--answers", str(job / "answers.yaml"),
                              "--yes"], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                             timeout=600)
    assert blocked.returncode == ExitCode.PREFLIGHT, blocked.stdout + blocked.stderr
    assert "EwsAllowedAppIDs" in blocked.stdout and "Traceback" not in blocked.stderr
    sandbox.set_ews_blocked(False)

    # An answers file that lacks an answer is refused with its name, not asked for.
    partial = yaml.safe_load((job / "answers.yaml").read_text())
    del partial["target"]
    (tmp_path / "partial.yaml").write_text(yaml.safe_dump(partial))
    refused = subprocess.run([sys.executable, "-m", "migrate", "wizard", "--answers", str(tmp_path / "partial.yaml"),
                              "--yes"], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                             timeout=600)
    assert refused.returncode == 2 and "target.client_id" in refused.stderr and "Traceback" not in refused.stderr


def pop_inbox(dovecot: Dovecot, user: str, password: str, messages: list[bytes]) -> None:
    dovecot.add_user(user, password)
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.ports["imaps"],
                                   ssl_context=ssl.create_default_context(cafile=str(dovecot.ca_path)))
    client.login(user, password)
    for raw in messages:
        client.append("INBOX", raw)
    client.logout()


def test_pop_user_in_swedish_stopped_with_ctrl_c_and_resumed(
        dovecot: Dovecot, sandbox: Sandbox, autoconfig: AutoconfigServer, dns_server: DnsServer, ca_file: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mbox = shared_dir("corpus", "mbox") / "mail-box_imagemagick-list_45msgs.mbox"
    thunderbird_home(tmp_path / "home", mbox)
    from migrate.sources import open_source

    with open_source(f"mbox:{mbox}") as source:
        folder = source.folders()[0]
        refs = list(source.messages(folder))
        first = next(raw for _, raw in source.read(folder, refs[:1]))
    new = b"Message-ID: <still-on-server@example.test>\r\nSubject: kvar\r\nFrom: a@example.test\r\n\r\nhej\r\n"
    pop_inbox(dovecot, "bo", "pop-password", [first, new])  # one already downloaded to Thunderbird, one not
    monkeypatch.setenv("POP_PASSWORD", "pop-password")
    autoconfig.pages["/d/example.test/mail/config-v1.1.xml"] = config_xml(
        "127.0.0.1", dovecot.ports["pop3s"], kind="pop3", username="%EMAILLOCALPART%")
    job = tmp_path / "job"
    start = (DOWN + ENTER  # POP
             + "bo@example.test" + ENTER
             + ENTER  # the POP server autoconfig found
             + DOWN + ENTER + "POP_PASSWORD" + ENTER
             + "y" + str(dovecot.ca_path) + ENTER
             + ENTER  # the Thunderbird POP account found in the profile
             + ENTER  # also the mail still on the server
             + calendar_keys()
             + ENTER  # no changes to folders or dates
             + CLEAR + MAILBOX + ENTER + ENTER)
    options = WizardOptions(lang="sv", folder=job, network=network(autoconfig, dns_server, ca_file),
                            home=tmp_path / "home")
    code, said = run_wizard(options, start + CTRL_C)  # stopped at the tenant question
    assert code == 130
    assert "Avbrutet. Inget lämnades halvgjort" in said
    assert f"o365-migrate wizard --answers {job / 'answers.yaml'}" in said
    assert not (job / "plan.yaml").exists() and not list(job.glob("*.tmp"))
    saved = load_answers(job / "answers.yaml")
    assert saved.local_store is not None and saved.local_store.url.endswith("Mail/pop.telia.com")
    assert saved.move_server_mail is True and saved.target is None

    # Resume: every earlier answer is the default, so Enter goes through them.
    resume = (ENTER + ENTER + ENTER + ENTER + ENTER  # kind, address, server, password source, variable
              + ENTER + ENTER + calendar_keys() + ENTER  # the store, the server too, (calendars,) no changes
              + microsoft_keys(sandbox) + ENTER)
    options = WizardOptions(lang="sv", folder=job, answers=saved, network=network(autoconfig, dns_server, ca_file),
                            home=tmp_path / "home")
    code, said = run_wizard(options, resume)
    # The history verifies. The server's plan reports one difference: the message it found already moved came
    # from Thunderbird, whose received time (the mbox envelope) differs from the one POP3 derives from the
    # Received header; verification is right to name it, so the wizard ends with FAILED and both reports.
    assert code == 1, said
    assert said.count("Kontrollerat: varje meddelande") == 1 and "Kontrollen hittade" in said
    assert "Flyttade 1, fanns redan 1, flyttades inte 0." in said
    assert (job / "plan.yaml").exists() and (job / "plan-2.yaml").exists()
    assert (job / "report.html").exists() and (job / "report-2.html").exists()
    inbox = [mime for folder_name, mime in sandbox.received_mime(MAILBOX) if folder_name == "Inbox"]
    assert len(inbox) == len(refs) + 1  # the mbox's messages, plus the one only on the server: none twice
    assert sum(b"<still-on-server@example.test>" in m for m in inbox) == 1
