"""Load the sample mailbox into each kind of source, so one suite can compare them all."""

from __future__ import annotations

import ssl
from pathlib import Path

import imapclient

from migrate import samplebox
from migrate.samplebox import SampleFolder
from tests.servers.dovecot import Dovecot

BIG_ATTACHMENT = 8_000_000  # base64 makes the message itself about 10.8 MB


def build() -> list[SampleFolder]:
    return samplebox.build(messages_per_folder=12, big_message_bytes=BIG_ATTACHMENT)


def imap_client(dovecot: Dovecot, user: str, password: str) -> imapclient.IMAPClient:
    context = ssl.create_default_context(cafile=str(dovecot.ca_path))
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.ports["imaps"], ssl_context=context)
    client.login(user, password)
    return client


def load_into_dovecot(dovecot: Dovecot, user: str, password: str, folders: list[SampleFolder]) -> None:
    dovecot.add_user(user, password)
    client = imap_client(dovecot, user, password)
    try:
        for folder in folders:
            name = dovecot.separator.join(folder.path)
            if folder.path != ("INBOX",):
                client.create_folder(name)
            for msg in folder.messages:
                client.append(name, msg.raw, flags=sorted(msg.flags), msg_time=msg.internal_date)
    finally:
        client.logout()


def normalise(raw: bytes) -> bytes:
    """Line endings to CRLF: IMAP servers serve CRLF whatever they were given."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def tree_state(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file below root with its size, mtime and content hash: to prove a read changed nothing."""
    import hashlib

    state = {}
    for path in sorted(root.rglob("*")):
        # Dovecot rewrites its own index files whenever anyone logs in; the mail is what counts.
        if path.is_file() and not path.name.startswith("dovecot"):
            st = path.stat()
            digest = hashlib.sha256(path.read_bytes()).digest()
            state[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, digest)
    return state
