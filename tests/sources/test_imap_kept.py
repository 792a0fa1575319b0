"""What an IMAP source leaves for the next one on the account: a listing used once and only while the
folder is unchanged, and signed-in connections that are dropped when the server has closed them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from migrate.errors import AuthError
from migrate.inventory import take_inventory
from migrate.model import Folder, MessageRef
from migrate.sources import Source, SourceOptions, imap_kept, open_source
from tests import corpus
from tests.servers.dovecot import Dovecot

PASSWORD = "Kept-2026!"
MESSAGE = (b"From: a@example.se\r\nTo: b@example.se\r\nSubject: %s\r\nMessage-ID: <%s@kept.example.se>\r\n"
           b"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n\r\nHej.\r\n")


@pytest.fixture
def account(dovecot: Dovecot, request: pytest.FixtureRequest) -> Iterator[str]:
    user = "kept-" + request.node.name[5:40].replace("_", "-")
    dovecot.add_user(user, PASSWORD)
    client = corpus.imap_client(dovecot, user, PASSWORD)
    try:
        client.create_folder("Arkiv")
        for n in range(5):
            client.append("INBOX", MESSAGE % (b"inbox %d" % n, b"i%d" % n), flags=[b"\\Seen"] if n % 2 else [],
                          msg_time=datetime(2020, 1, n + 1, tzinfo=UTC))
        client.append("Arkiv", MESSAGE % (b"old", b"a0"), msg_time=datetime(2019, 5, 1, tzinfo=UTC))
    finally:
        client.logout()
    yield user
    imap_kept._sign_out_all()  # the next test starts with nothing parked


def _open(dovecot: Dovecot, user: str) -> Source:
    return open_source(f"imaps://{user}@127.0.0.1:{dovecot.ports['imaps']}",
                       SourceOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path))


def _listing(source: Source) -> dict[str, list[MessageRef]]:
    return {f.name: list(source.messages(f)) for f in source.folders() if f.selectable}


def _inbox(source: Source) -> Folder:
    return next(f for f in source.folders() if f.name == "INBOX")


def test_an_inventory_listing_serves_the_next_source_once(dovecot: Dovecot, account: str) -> None:
    with _open(dovecot, account) as planner:
        take_inventory(planner)
        key = planner._account
    kept = {name: refs for name, (_, _, refs) in imap_kept._shelves[key].listings.items()}
    assert set(kept) == {"INBOX", "Arkiv"}
    with _open(dovecot, account) as runner:
        used = _listing(runner)
    # The run after the plan got the very objects the inventory listed: no second FETCH of the folder...
    assert {name: len(refs) for name, refs in used.items()} == {"INBOX": 5, "Arkiv": 1}
    assert all(a is b for name in used for a, b in zip(used[name], kept[name], strict=True))
    assert not imap_kept._shelves[key].listings
    # ...and only once: the next source lists for itself, and sees the same.
    with _open(dovecot, account) as later:
        relisted = _listing(later)
    assert relisted == used
    assert all(a is not b for a, b in zip(relisted["INBOX"], used["INBOX"], strict=True))


def test_a_folder_changed_since_the_inventory_is_listed_again(dovecot: Dovecot, account: str) -> None:
    with _open(dovecot, account) as planner:
        take_inventory(planner)
    client = corpus.imap_client(dovecot, account, PASSWORD)
    try:  # another client flags one message and files a new one, as a user would during the plan
        client.select_folder("INBOX")
        client.add_flags([client.search()[0]], [b"\\Flagged"])
        client.append("Arkiv", MESSAGE % (b"new", b"a1"))
    finally:
        client.logout()
    with _open(dovecot, account) as runner:
        seen = _listing(runner)
    assert any("\\Flagged" in ref.flags for ref in seen["INBOX"]), "a flag set after the inventory must show"
    assert len(seen["Arkiv"]) == 2, "a message filed after the inventory must show"


def test_a_source_that_read_bodies_leaves_no_listing(dovecot: Dovecot, account: str) -> None:
    with _open(dovecot, account) as mover:
        folder = _inbox(mover)
        refs = list(mover.messages(folder))
        assert len(list(mover.read(folder, refs))) == 5
        key = mover._account
    shelf = imap_kept._shelves.get(key)
    assert shelf is None or not shelf.listings


def test_a_parked_connection_the_server_closed_is_replaced(dovecot: Dovecot, account: str) -> None:
    with _open(dovecot, account) as planner:
        take_inventory(planner)
    dovecot.restart()  # every parked connection is gone on the server's side
    with _open(dovecot, account) as runner:
        seen = _listing(runner)
        folder = _inbox(runner)
        bodies = list(runner.read(folder, seen["INBOX"]))
    assert len(seen["INBOX"]) == 5 and len(bodies) == 5
    assert all(b"Hej." in raw for _, raw in bodies)


def test_a_parked_connection_serves_only_the_same_password(dovecot: Dovecot, account: str) -> None:
    with _open(dovecot, account) as planner:
        take_inventory(planner)
    wrong = open_source(f"imaps://{account}@127.0.0.1:{dovecot.ports['imaps']}",
                        SourceOptions(secret=lambda: "not-the-password", ca_file=dovecot.ca_path))
    with pytest.raises(AuthError), wrong:
        _listing(wrong)
    with _open(dovecot, account) as runner:  # the right password still finds what the inventory left
        assert len(_listing(runner)["INBOX"]) == 5
