"""A batch CSV is checked whole before anything moves: every problem with its line and column."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from migrate.batch import Defaults, SecretCell, read_batch
from migrate.batch.urls import target_url, with_user
from migrate.discovery.playbooks import all_playbooks
from migrate.errors import ExitCode
from migrate.plan import SignIn
from migrate.sources.base import SourceOptions
from migrate.sources.connect import endpoint

TO = "imaps://{local}@127.0.0.1:9993"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", "TPW": "target-secret", **(env or {})},
                          stdin=subprocess.DEVNULL, timeout=120)


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_every_problem_is_reported_at_once_with_line_and_column(tmp_path: Path) -> None:
    csv = write(tmp_path / "users.csv", "\n".join([
        "EmailAddress,UserName,Password,Colour,SourceKind,Source,Since,Playbook,TargetMailbox",
        ",bob,pw-bob,,,,,,",
        "anna@example.com,anna,,,,,,,",
        "carl@example.com,carl,pw-carl,,floppy,,,,",
        "dora@example.com,dora,pw-dora,,mbox,/nonexistent/dora.mbox,,,",
        "erik@example.com,erik,pw-erik,,,,2024-13-01,,",
        "fia@example.com,fia,pw-fia,,,,,nosuchprovider,",
        "gus@example.com,gus,pw-gus,,,,,,anna@example.com",
        "hugo@example.com,hugo,env:O365M_TEST_NOT_SET,,,,,,",
        "ines@example.com,ines,file:/nonexistent/ines.pw,,,,,,",
        "jon@example.com,jon,pw-jon,,,,,,,,surplus",
        "kim@example.com,,pw-kim,,,,,,",
        "",
    ]))
    result = cli("batch", str(csv), "--to", TO, "--from", "imaps://127.0.0.1:9993", "--target-password-env", "TPW",
                 "--check")
    assert result.returncode == ExitCode.BAD_INPUT, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(csv))]
    where = [line[len(str(csv)) + 1:] for line in lines]
    providers = ", ".join(sorted(b.name for b in all_playbooks() if b.kind == "provider"))
    assert "gmail" in providers
    known = ("EmailAddress, UserName, Password, UserRoot, Source, SourceKind, Host, Port, Security, Auth, "
             "TargetMailbox, TargetPassword, Transport, IncludeFolders, ExcludeFolders, Since, Until, MaxMessageSize, "
             "Playbook")
    assert where == [
        f"1:4: unknown column 'Colour'; known: {known}",
        "2:1: EmailAddress is empty: it names the mailbox in Microsoft 365",
        "3:3: Password is empty: the old server needs one (or write env:VAR or file:PATH)",
        "4:5: unknown source kind 'floppy'; use one of: caldav, carddav, eml, emlx, ics, imap, maildir, mbox, ost, "
        "pop3, pst, vcf",
        "5:6: unreadable path /nonexistent/dora.mbox: it does not exist or cannot be read",
        "6:7: Since '2024-13-01' is not a date: write YYYY-MM-DD",
        f"7:8: unknown provider playbook 'nosuchprovider'; known: {providers}",
        "8:9: duplicate target mailbox anna@example.com (also on line 3)",
        "9:3: Password: the environment variable O365M_TEST_NOT_SET is not set",
        "10:3: Password: unreadable path /nonexistent/ines.pw: the password file is missing or cannot be read",
        "11:10: 11 values, but the header names 9 columns",
        "12:2: UserName is empty: the login on the old server is needed for imaps",
    ]
    assert "12 problem(s)" in result.stderr and "nothing was moved" in result.stderr
    assert not (tmp_path / "users.batch").exists()  # nothing was started, not even the batch folder


def test_a_bad_header_is_reported_and_no_row_is_read(tmp_path: Path) -> None:
    csv = write(tmp_path / "users.csv", "Mail,UserName,UserName\nanna@example.com,anna,anna\n")
    parsed = read_batch(csv, Defaults(to=TO))
    assert [(p.line, p.column, p.message) for p in parsed.problems] == [
        (1, 1, "unknown column 'Mail'; known: " + ", ".join(
            ["EmailAddress", "UserName", "Password", "UserRoot", "Source", "SourceKind", "Host", "Port", "Security",
             "Auth", "TargetMailbox", "TargetPassword", "Transport", "IncludeFolders", "ExcludeFolders", "Since",
             "Until", "MaxMessageSize", "Playbook"])),
        (1, 3, "the column UserName is there twice (also column 2)"),
        (1, 1, "no EmailAddress column: the header must name it (Microsoft's form: EmailAddress,UserName,Password)"),
    ]
    assert parsed.rows == []


def test_plaintext_passwords_in_a_file_others_can_read_are_warned_about(tmp_path: Path) -> None:
    text = "EmailAddress,UserName,Password\nanna@example.com,anna,Hemligt-123\n"
    args = ("--to", TO, "--from", "imaps://127.0.0.1:9993", "--target-password-env", "TPW", "--check")
    open_csv = write(tmp_path / "open.csv", text, 0o644)
    result = cli("batch", str(open_csv), *args)
    assert result.returncode == 0, result.stderr
    assert f"run: chmod 600 {open_csv}" in result.stderr
    assert "Hemligt-123" not in result.stdout + result.stderr

    closed = write(tmp_path / "closed.csv", text, 0o600)
    assert "chmod" not in cli("batch", str(closed), *args).stderr
    # Passwords named by reference are not plaintext in the file: no warning however it is readable.
    by_env = write(tmp_path / "env.csv", "EmailAddress,UserName,Password\nanna@example.com,anna,env:TPW\n", 0o644)
    assert "chmod" not in cli("batch", str(by_env), *args).stderr


def test_microsofts_imap_migration_file_is_taken_as_it_is(tmp_path: Path) -> None:
    """The sample of learn.microsoft.com's "CSV files for IMAP migration batches", with admin-login forms
    and UserRoot, as Excel saves it (BOM, CRLF)."""
    csv = tmp_path / "microsoft.csv"
    csv.write_bytes("\ufeffEmailAddress,UserName,Password,UserRoot\r\n"
                    "terrya@contoso.edu,contoso\\terry.adams,1091990,\r\n"
                    "annb@contoso.edu,ann.beebe*mailadmin,2111991,\r\n"
                    "paulc@contoso.edu,/contoso-students/mailadmin/paul.cannon,3281986,\r\n"
                    "lukas@contoso.edu,mailadmin,4531987,/users/lukas.ahlers\r\n".encode())
    csv.chmod(0o600)
    sign_in = SignIn(tenant="contoso.onmicrosoft.com", client_id="app", client_secret_env="S")
    parsed = read_batch(csv, Defaults(to="ews://contoso.onmicrosoft.com", source="imaps://imap.contoso.edu",
                                      sign_in=sign_in))
    assert parsed.problems == [] and parsed.warnings == []
    rows = {r.email: r for r in parsed.rows}
    assert [r.target.url for r in parsed.rows] == ["ews://terrya@contoso.edu", "ews://annb@contoso.edu",
                                                   "ews://paulc@contoso.edu", "ews://lukas@contoso.edu"]
    assert rows["lukas@contoso.edu"].user_root == "/users/lukas.ahlers"
    # Every login reaches the IMAP server exactly as Microsoft's file spells it.
    logins = [endpoint(urlsplit(r.source.url), r.source.url, 993, 143, SourceOptions()).user for r in parsed.rows]
    assert logins == ["contoso\\terry.adams", "ann.beebe*mailadmin", "/contoso-students/mailadmin/paul.cannon",
                      "mailadmin"]
    assert all(r.source_secret is not None and r.source_secret.plaintext for r in parsed.rows)
    assert "1091990" not in repr(parsed.rows)  # a secret cell's repr shows no password

    result = cli("batch", str(csv), "--to", "ews://contoso.onmicrosoft.com", "--from", "imaps://imap.contoso.edu",
                 "--client-id", "app", "--client-secret-env", "S", "--check")
    assert result.returncode == 0, result.stderr
    assert "4 mailbox(es), no problems" in result.stdout


def test_a_semicolon_file_from_swedish_excel_and_the_column_forms(tmp_path: Path) -> None:
    store = tmp_path / "anna.mbox"
    store.write_bytes(b"From a@b Thu Jan  1 00:00:00 2024\nSubject: x\n\nhej\n")
    csv = write(tmp_path / "users.csv", "\n".join([
        "E-mail address;User name;Password;Host;Port;Security;Source Kind;Source;Include Folders;Max Message Size",
        "anna@example.com;;;;;;mbox;anna.mbox;INBOX;20",
        "bo@example.com;bo;pw-bo;127.0.0.1;1143;starttls;;;INBOX;",
        "cia@example.com;cia;pw-cia;127.0.0.1;1110;none;pop3;;;",
        "dan@example.com;dan;pw-dan;mail.example.net;;none;;;;",
        "",
    ]), 0o600)
    parsed = read_batch(csv, Defaults(to=TO, target_password=None))
    problems = [(p.line, p.column, p.message) for p in parsed.problems]
    assert (5, 6, "Security none sends the password in clear: allowed only to this machine, not mail.example.net") \
        in problems
    # no target password anywhere: every row says so, at its email column (there is no TargetPassword column)
    assert sum("no password for the target" in m for _, _, m in problems) == 4

    parsed = read_batch(csv, Defaults(to=TO, target_password=_env_cell()))
    assert [(p.line, p.column) for p in parsed.problems] == [(5, 6)]
    anna, bo, cia = parsed.rows
    assert anna.source.url == f"mbox:{store}" and anna.filters.max_message_size == 20 * 1024 * 1024
    assert anna.include_folders == ["INBOX"]
    assert bo.source.url == "imap://bo@127.0.0.1:1143" and not bo.source.insecure  # STARTTLS
    assert cia.source.url == "pop3://cia@127.0.0.1:1110" and cia.source.insecure
    assert anna.target.url == "imaps://anna@127.0.0.1:9993"


def _env_cell() -> SecretCell:
    return SecretCell("env", "TPW")


def test_target_and_source_urls_from_a_place_or_a_template() -> None:
    assert target_url("ews://contoso.onmicrosoft.com?endpoint=https://h/EWS/Exchange.asmx", "anna@contoso.com",
                      "anna@contoso.com", "anna", None) == \
        "ews://anna@contoso.com?endpoint=https://h/EWS/Exchange.asmx"
    assert target_url("graph://contoso.onmicrosoft.com", "anna@contoso.com", "", "", None) == \
        "graph://anna@contoso.com"
    assert target_url("imaps://outlook.office365.com", "anna@contoso.com", "", "", None) == \
        "imaps://anna@contoso.com@outlook.office365.com"
    assert target_url("ews://contoso.onmicrosoft.com", "anna@contoso.com", "", "", "imap") == \
        "imaps://anna@contoso.com@outlook.office365.com"
    assert target_url("ews://contoso.onmicrosoft.com", "anna@contoso.com", "", "", "graph") == \
        "graph://anna@contoso.com"
    assert target_url("imaps://{local}@mail.example.net:993", "anna@contoso.com", "", "", None) == \
        "imaps://anna@mail.example.net:993"
    assert with_user("imaps://mail.example.com", "contoso\\hollyh") == "imaps://contoso%5Chollyh@mail.example.com"
    assert with_user("imaps://someone@mail.example.com", "other") == "imaps://someone@mail.example.com"
