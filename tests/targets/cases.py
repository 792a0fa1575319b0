"""How each target backend is built for the conformance suite.

A backend joins the suite with one factory in FACTORIES: given the test's request (to pull the
fixtures it needs, such as a server) it returns a TargetCase for a fresh, empty mailbox. The
factory must honour `extra` options given to `TargetCase.open`, at least `max_message_bytes`.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from migrate.targets import Target, TargetFolder, TargetOptions, open_target
from tests import corpus
from tests.servers.dovecot import Dovecot

PASSWORD = "Host-2025!"
_serial = itertools.count(1)


@dataclass
class TargetCase:
    name: str
    url: str
    options: TargetOptions
    # Whether `folder` is the backend's own folder for the Exchange path it was asked for.
    well_known: Callable[[tuple[str, ...], TargetFolder], bool]
    extra: dict[str, str] = field(default_factory=dict)

    def open(self, **extra: str) -> Target:
        options = replace(self.options, extra={**self.options.extra, **extra})
        return open_target(self.url, options)


def fresh_mailbox(prefix: str = "t") -> str:
    return f"{prefix}{next(_serial):04d}"


def fresh_mailboxes(dovecot: Dovecot, count: int) -> list[str]:
    """Mailboxes that Dovecot knows already: made in one go, to pay the wait for a new second once."""
    users = [fresh_mailbox() for _ in range(count)]
    add_users(dovecot, users)
    return users


# Folders a Dovecot mailbox holds before the move; the fixture's config marks them SPECIAL-USE.
DOVECOT_OWN = {("Inbox",): "INBOX", ("Sent Items",): "Skickat", ("Deleted Items",): "Papperskorgen"}


def add_users(dovecot: Dovecot, users: list[str], password: str = PASSWORD) -> None:
    for user in users:
        dovecot.add_user(user, password)


_pools: dict[int, list[str]] = {}


def dovecot_account(dovecot: Dovecot) -> str:
    """A fresh target mailbox with a Swedish Sent and Trash folder, as a Dovecot user has them."""
    pool = _pools.setdefault(id(dovecot), [])
    if not pool:
        pool.extend(fresh_mailboxes(dovecot, 30))
    user = pool.pop()
    client = corpus.imap_client(dovecot, user, PASSWORD)
    try:
        for name in DOVECOT_OWN.values():
            if name != "INBOX":
                client.create_folder(name)
    finally:
        client.logout()
    return user


def drop_sessions(dovecot: Dovecot, *users: str) -> None:
    """End the users' IMAP connections from the server's side, as a server restart does elsewhere:
    Dovecot's own sessions outlive a restart of its master process, so restart() alone drops nothing."""
    doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
    for user in users:
        subprocess.run([doveadm, "-c", str(dovecot.config), "kick", user], check=True, capture_output=True)


def _dovecot_well_known(path: tuple[str, ...], folder: TargetFolder) -> bool:
    if path in DOVECOT_OWN:
        return folder.id == DOVECOT_OWN[path]
    if path[0] == "Inbox":
        return folder.id == "/".join(("INBOX", *path[1:]))
    return folder.id == "/".join(path)


def dovecot_imap(request: pytest.FixtureRequest) -> TargetCase:
    """Plain IMAP on loopback (TargetOptions.insecure): the cheapest path, no TLS at all."""
    dovecot: Dovecot = request.getfixturevalue("dovecot")
    user = dovecot_account(dovecot)
    return TargetCase("dovecot-imap", f"imap://{user}@127.0.0.1:{dovecot.ports['imap']}",
                      TargetOptions(secret=lambda: PASSWORD, insecure=True), _dovecot_well_known)


def dovecot_imaps_starttls(request: pytest.FixtureRequest) -> TargetCase:
    """imap:// on the plain port, upgraded with STARTTLS against the test CA."""
    dovecot: Dovecot = request.getfixturevalue("dovecot")
    user = dovecot_account(dovecot)
    return TargetCase("dovecot-imaps-starttls", f"imap://{user}@127.0.0.1:{dovecot.ports['imap']}",
                      TargetOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path), _dovecot_well_known)


FACTORIES: dict[str, Callable[[pytest.FixtureRequest], TargetCase]] = {
    "dovecot-imap": dovecot_imap,
    "dovecot-imaps-starttls": dovecot_imaps_starttls,
}
