"""The IMAP source lists folders on its own lean connection (migrate.imapwire), not imapclient's: the
names, delimiters and attributes must come out as imapclient gives them, whatever form the server
sends a name in (atom, quoted string with escapes, literal) and whatever it is called."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from imapclient import imap_utf7

from migrate.errors import TLSError
from migrate.imapwire import ListedFolder, Response, _list_entry
from migrate.model import FolderRole
from migrate.sources import SourceOptions, imap_kept, open_source
from tests import corpus
from tests.servers.dovecot import Dovecot

PASSWORD = "Listed-2026!"
# Names that take every form on the wire: plain atoms, spaces (quoted), a double quote and a
# backslash-free bracket (escaped in a quoted string), non-ASCII (modified UTF-7 with '&'), nesting.
NAMES = ["Arkiv", "Projekt 2024", 'Citat "viktigt"', "Kunder/Åkesson & Söner", "Kunder/Åkesson & Söner/2019",
         "Räkningar [gamla]", "日本語", "&amp; co", "Skickat"]


@pytest.mark.parametrize(("pieces", "literals", "expected"), [
    ([b'* LIST (\\HasNoChildren) "/" INBOX\r\n'], [], ListedFolder((b"\\HasNoChildren",), b"/", b"INBOX")),
    ([b'* LIST (\\HasNoChildren \\Sent) "." "Sent Items"\r\n'], [],
     ListedFolder((b"\\HasNoChildren", b"\\Sent"), b".", b"Sent Items")),
    ([b'* LIST () "/" "Citat \\"viktigt\\" \\\\ snedstreck"\r\n'], [],
     ListedFolder((), b"/", b'Citat "viktigt" \\ snedstreck')),
    ([b'* LIST (\\Noselect) NIL Flat\r\n'], [], ListedFolder((b"\\Noselect",), None, b"Flat")),
    ([b'* LIST () "\\\\" "A\\\\B"\r\n'], [], ListedFolder((), b"\\", b"A\\B")),
    ([b'* LIST (\\HasChildren) "/" {11}\r\n', b"\r\n"], [b'Odd"\r\nname'],
     ListedFolder((b"\\HasChildren",), b"/", b'Odd"\r\nname')),
    ([b'* list (\\Marked) "/" lower\r\n'], [], ListedFolder((b"\\Marked",), b"/", b"lower")),
    ([b"* 3 EXISTS\r\n"], [], None),
    ([b'* LSUB () "/" INBOX\r\n'], [], None),
])
def test_each_form_of_a_list_answer(pieces: list[bytes], literals: list[bytes], expected: ListedFolder | None) -> None:
    assert _list_entry(Response(pieces, literals)) == expected


@pytest.fixture
def account(dovecot: Dovecot) -> Iterator[str]:
    user = "listed-folders"
    dovecot.add_user(user, PASSWORD)
    client = corpus.imap_client(dovecot, user, PASSWORD)
    try:
        existing = {name for _, _, name in client.list_folders()}
        for name in NAMES:
            if name not in existing:
                client.create_folder(name)
    finally:
        client.logout()
    yield user
    imap_kept._sign_out_all()


def test_the_folders_are_those_imapclient_lists(dovecot: Dovecot, account: str) -> None:
    client = corpus.imap_client(dovecot, account, PASSWORD)
    try:
        theirs = {name: (frozenset(f.decode() for f in flags), delimiter.decode() if delimiter else "")
                  for flags, delimiter, name in client.list_folders()}
    finally:
        client.logout()
    source = open_source(f"imaps://{account}@127.0.0.1:{dovecot.ports['imaps']}",
                         SourceOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path))
    with source:
        ours = {f.locator: f for f in source.folders()}
    assert set(ours) == set(theirs) >= {*NAMES, "INBOX"}
    for locator, folder in ours.items():
        attributes, delimiter = theirs[locator]
        assert folder.delimiter == delimiter
        assert folder.path == tuple(locator.split(delimiter))
        assert folder.selectable == ("\\Noselect" not in attributes)
    # A name that needs modified UTF-7 on the wire reads as the user wrote it.
    assert ours["Kunder/Åkesson & Söner/2019"].path == ("Kunder", "Åkesson & Söner", "2019")
    assert imap_utf7.encode("日本語") != "日本語".encode() and ours["日本語"].path == ("日本語",)
    assert ours["Skickat"].role is FolderRole.SENT and "\\Sent" in theirs["Skickat"][0]  # SPECIAL-USE


def test_a_server_without_starttls_gets_no_password() -> None:
    """imap:// without --insecure: a server that refuses STARTTLS hears no LOGIN, and the user one line."""
    heard: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 LOGIN] plain only\r\n")
            for line in lines:
                heard.append(line)
                tag = line.split(b" ", 1)[0]
                conn.sendall(tag + b" BAD STARTTLS not supported\r\n" if b"STARTTLS" in line.upper()
                             else tag + b" OK\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        source = open_source(f"imap://anna@127.0.0.1:{port}", SourceOptions(secret=lambda: "Hemligt-1"))
        with pytest.raises(TLSError, match="does not offer STARTTLS"):
            source.folders()
        source.close()
    finally:
        listener.close()
    thread.join(5)
    assert heard and all(b"Hemligt" not in line and b"LOGIN" not in line.upper() for line in heard)
