"""What only the IMAP target does: sign-in choices, names the server will not take, MULTIAPPEND and
its fallback, dropped connections, Exchange Online's ways, and how refusals are classified."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from migrate.errors import AuthError, TLSError, UnreachableError, UsageError
from migrate.targets import Failure, Outcome, TargetOptions, UploadItem, open_target
from migrate.targets.imap import EXCHANGE_ONLINE_MAX, ImapTarget, classify
from tests import corpus
from tests.servers.dovecot import Dovecot, free_port
from tests.targets.cases import PASSWORD, add_users, dovecot_account, drop_sessions


def _items(n: int, flags: frozenset[str] = frozenset({"\\Seen"})) -> list[UploadItem]:
    return [UploadItem(f"k{i}", f"Message-ID: <m{i}@example.se>\r\nSubject: {i}\r\n\r\nhej {i}\r\n".encode(),
                       flags, None, message_id=f"<m{i}@example.se>") for i in range(n)]


@pytest.fixture
def mailbox(dovecot: Dovecot) -> str:
    return dovecot_account(dovecot)


@pytest.fixture
def target(dovecot: Dovecot, mailbox: str) -> Iterator[ImapTarget]:
    opened = _open(dovecot, mailbox)
    with opened:
        yield opened


def _open(dovecot: Dovecot, user: str, **extra: str) -> ImapTarget:
    opened = open_target(f"imaps://{user}@127.0.0.1:{dovecot.ports['imaps']}",
                         TargetOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path, extra=extra))
    assert isinstance(opened, ImapTarget)
    return opened


def _server_names(dovecot: Dovecot, user: str) -> set[str]:
    client = corpus.imap_client(dovecot, user, PASSWORD)
    try:
        return {name for _, _, name in client.list_folders()}
    finally:
        client.logout()


# --- folders ------------------------------------------------------------------------------


def test_a_name_with_the_separator_gets_an_underscore_and_a_note(target: ImapTarget, dovecot: Dovecot,
                                                                 mailbox: str) -> None:
    folder = target.ensure_folder(("Kunder", "Fakturor 2023/2024"))
    assert folder.id == "Kunder/Fakturor 2023_2024"
    assert folder.note is not None and "'/'" in folder.note and "Fakturor 2023_2024" in folder.note
    assert {"Kunder", "Kunder/Fakturor 2023_2024"} <= _server_names(dovecot, mailbox)


def test_a_character_the_server_refuses_gets_an_underscore_and_a_note(target: ImapTarget) -> None:
    # Dovecot's Maildir++ layout keeps "." for itself and answers NO [CANNOT].
    folder = target.ensure_folder(("Bokslut 2023.12",))
    assert folder.id == "Bokslut 2023_12"
    assert folder.note is not None and "'.'" in folder.note
    assert target.ensure_folder(("Bokslut 2023.12",)).id == folder.id
    [result] = target.upload(folder, _items(1))
    assert result.outcome is Outcome.CREATED


def test_special_use_decides_not_the_name(dovecot: Dovecot, mailbox: str) -> None:
    # The mailbox has "Skickat" marked \Sent; a folder merely named "Sent Items" must not win.
    client = corpus.imap_client(dovecot, mailbox, PASSWORD)
    client.create_folder("Sent Items")
    client.logout()
    target = _open(dovecot, mailbox)
    with target:
        assert target.ensure_folder(("Sent Items",)).id == "Skickat"
        assert target.ensure_folder(("sent items",)).id == "Skickat"  # Exchange's names know no case


# --- sign-in ------------------------------------------------------------------------------


def test_wrong_password_is_an_auth_error_without_the_password(dovecot: Dovecot, mailbox: str) -> None:
    wrong = "Fel-Lösen-123"
    target = open_target(f"imaps://{mailbox}@127.0.0.1:{dovecot.ports['imaps']}",
                         TargetOptions(secret=lambda: wrong, ca_file=dovecot.ca_path))
    with pytest.raises(AuthError) as caught:
        target.ensure_folder(("Inbox",))
    assert "refused the login" in caught.value.one_line() and wrong not in caught.value.one_line()


def test_a_password_beyond_ascii_goes_by_sasl_plain(dovecot: Dovecot) -> None:
    user, password = "utf8-losen", "Höst-2025!åäö"
    add_users(dovecot, [user], password)
    with open_target(f"imaps://{user}@127.0.0.1:{dovecot.ports['imaps']}",
                     TargetOptions(secret=lambda: password, ca_file=dovecot.ca_path)) as target:
        assert target.ensure_folder(("Inbox",)).id == "INBOX"


def test_a_token_means_xoauth2_and_is_never_shown(dovecot: Dovecot, mailbox: str) -> None:
    token = "eyJ0eXAiOiJKV1QiLCJub25jZSI6InNlY3JldC10b2tlbiJ9.payload.signature"
    target = open_target(f"imaps://{mailbox}@127.0.0.1:{dovecot.ports['imaps']}",
                         TargetOptions(token=lambda: token, secret=lambda: PASSWORD, ca_file=dovecot.ca_path))
    with pytest.raises(AuthError) as caught:  # this Dovecot offers no XOAUTH2: the password is not tried
        target.ensure_folder(("Inbox",))
    assert "OAuth" in caught.value.message and token not in caught.value.one_line()


def test_exchange_online_takes_only_a_token() -> None:
    with pytest.raises(AuthError) as caught:  # said before any connection is tried
        open_target("imaps://anna@kund.se@outlook.office365.com", TargetOptions(secret=lambda: "x"))
    assert "OAuth" in caught.value.message and "outlook.office365.com" in caught.value.message
    target = open_target("imaps://anna%40kund.se@outlook.office365.com", TargetOptions(token=lambda: "t"))
    assert isinstance(target, ImapTarget) and target.where.user == "anna@kund.se"
    assert target.capabilities.keeps_raw_bytes is False
    assert target.capabilities.max_message_bytes == EXCHANGE_ONLINE_MAX


@pytest.mark.parametrize(
    ("url", "options", "error", "words"),
    [
        ("imap://u@192.0.2.1", TargetOptions(secret=lambda: "x", insecure=True), UsageError, "only to a server"),
        ("imaps://u@127.0.0.1", TargetOptions(), UsageError, "--target-password-env"),
        ("imaps://127.0.0.1", TargetOptions(secret=lambda: "x"), UsageError, "names no user"),
        ("imaps://u:pw@127.0.0.1", TargetOptions(secret=lambda: "x"), UsageError, "password inside"),
        ("imaps://u@127.0.0.1:99999", TargetOptions(secret=lambda: "x"), UsageError, "bad port"),
        ("imaps://u@h", TargetOptions(secret=lambda: "x", extra={"max_message_bytes": "many"}), UsageError,
         "numbers"),
    ],
)
def test_bad_target_urls_and_options(url: str, options: TargetOptions, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as caught:
        open_target(url, options)
    assert words in str(caught.value) + str(getattr(caught.value, "hint", ""))


def test_tls_and_reachability_errors_name_the_way_out(dovecot: Dovecot, mailbox: str) -> None:
    untrusted = open_target(f"imaps://{mailbox}@127.0.0.1:{dovecot.ports['imaps']}",
                            TargetOptions(secret=lambda: PASSWORD))
    with pytest.raises(TLSError) as caught:
        untrusted.ensure_folder(("Inbox",))
    assert caught.value.hint is not None and "--target-ca-file" in caught.value.hint
    nobody = open_target(f"imaps://{mailbox}@127.0.0.1:{free_port()}", TargetOptions(secret=lambda: PASSWORD))
    with pytest.raises(UnreachableError):
        nobody.ensure_folder(("Inbox",))


# --- upload -------------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["1", "0"])
def test_a_message_the_server_refuses_fails_alone(dovecot: Dovecot, mailbox: str, pipeline: str) -> None:
    """Dovecot refuses an empty message; pipelined or not, the others of the batch are stored."""
    items = _items(4)
    items[2] = UploadItem("empty", b"", frozenset(), None)
    target = _open(dovecot, mailbox, pipeline=pipeline)
    with target:
        folder = target.ensure_folder(("Blandat",))
        results = target.upload(folder, items)
        held = list(target.existing(folder))
    assert [r.outcome for r in results] == [Outcome.CREATED] * 2 + [Outcome.FAILED] + [Outcome.CREATED]
    assert results[2].failure is Failure.REJECTED and "zero byte" in (results[2].reason or "")
    assert "secs" not in (results[2].reason or "")  # Dovecot's timing is noise to the user
    assert sorted(m.message_id or "" for m in held) == ["<m0@example.se>", "<m1@example.se>", "<m3@example.se>"]


def test_flags_other_than_the_four_are_not_sent(target: ImapTarget) -> None:
    flags = frozenset({"\\Seen", "\\flagged", "\\Recent", "\\Deleted", "$Forwarded", "\\Answered", "\\Draft"})
    folder = target.ensure_folder(("Flaggor",))
    target.upload(folder, _items(2, flags))
    assert [m.flags for m in target.existing(folder)] == [
        frozenset({"\\Seen", "\\Flagged", "\\Answered", "\\Draft"})] * 2


def test_bare_lf_and_cr_go_up_as_crlf(target: ImapTarget) -> None:
    raw = b"Subject: rader\nX-Old: mac\rline\r\n\nett\ntv\xc3\xa5\r\n"
    folder = target.ensure_folder(("Rader",))
    [result] = target.upload(folder, [UploadItem("lf", raw, frozenset(), None)])
    assert result.target_id is not None
    assert target.read_back(folder, result.target_id) == (
        b"Subject: rader\r\nX-Old: mac\r\nline\r\n\r\nett\r\ntv\xc3\xa5\r\n")


def _break_during_upload(target: ImapTarget, after: int) -> list[int]:
    """Cut the upload connection's socket once `after` bytes of the next upload have gone out."""
    wire = target._ready_wire()
    assert not isinstance(wire, str)
    sock = wire._sock
    sent: list[int] = []

    class Cut:
        def __getattr__(self, name: str) -> Any:
            return getattr(sock, name)

        def sendall(self, data: bytes) -> None:
            if sum(sent) + len(data) > after:
                sock.shutdown(socket.SHUT_RDWR)
            sent.append(len(data))
            sock.sendall(data)

    wire._sock = Cut()  # type: ignore[assignment]
    return sent


def _wait_for_sessions(dovecot: Dovecot, user: str, count: int) -> None:
    doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
    for _ in range(200):
        who = subprocess.run([doveadm, "-c", str(dovecot.config), "who", "-1", user],
                             capture_output=True, text=True).stdout
        if sum(1 for line in who.splitlines()[1:] if line.strip()) <= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the cut session of {user} did not end: {who}")


def _big_items(n: int) -> list[UploadItem]:
    """Messages of 300 KB: each goes out in its own writes, so a cut can fall between them."""
    return [UploadItem(i.key, i.raw + b"x" * 300_000 + b"\r\n", i.flags, None, message_id=i.message_id)
            for i in _items(n)]


@pytest.mark.parametrize(("pipeline", "after"), [("1", 0), ("1", 450_000), ("0", 0), ("0", 450_000)])
def test_a_dropped_connection_is_retry_and_the_next_call_reconnects(
    dovecot: Dovecot, mailbox: str, pipeline: str, after: int
) -> None:
    target = _open(dovecot, mailbox, pipeline=pipeline)
    with target:
        folder = target.ensure_folder(("Avbrott",))
        sent = _break_during_upload(target, after)
        results = target.upload(folder, _big_items(3))
        assert sent, "the upload never reached the socket"
        failed = [r for r in results if r.outcome is Outcome.FAILED]
        assert failed and all(r.failure is Failure.RETRY and r.reason for r in failed), results
        # What was answered OK is there; a message whose answer was lost may be there too, so it
        # is looked for before it goes again, as the engine does (after its back-off: here, once the
        # server has finished with the cut session, which may still be saving the last message).
        _wait_for_sessions(dovecot, mailbox, 1)
        stored = len(list(target.existing(folder)))
        assert 3 - len(failed) <= stored <= 3
        found = target.find(folder, [f"<m{i}@example.se>" for i in range(3)])
        again = target.upload(folder, [i for i in _big_items(3) if i.message_id not in found])
        assert all(r.outcome is Outcome.CREATED for r in again), again
        held = sorted(m.message_id or "" for m in target.existing(folder))
        assert held == [f"<m{i}@example.se>" for i in range(3)], (results, found, again)


def test_the_target_reconnects_after_a_server_restart(dovecot: Dovecot, mailbox: str) -> None:
    target = _open(dovecot, mailbox)
    with target:
        folder = target.ensure_folder(("Omstart",))
        first = target.upload(folder, _items(3))
        before = target._wire
        drop_sessions(dovecot, mailbox)
        dovecot.restart()
        second = target.upload(folder, _items(6)[3:])
        if any(r.outcome is Outcome.FAILED for r in second):  # the old connection's loss is seen by a send
            assert all(r.failure is Failure.RETRY for r in second), second
            second = target.upload(folder, _items(6)[3:])
        assert target._wire is not before  # a new connection, not the old one
        assert all(r.outcome is Outcome.CREATED for r in first + second), second
        assert len(list(target.existing(folder))) == 6
        assert len({r.target_id for r in first + second}) == 6


def test_exchange_online_mode_stores_flagged_again(dovecot: Dovecot, mailbox: str) -> None:
    target = _open(dovecot, mailbox, exchange_online="1")
    with target:
        assert not target.capabilities.keeps_raw_bytes
        assert target.capabilities.max_message_bytes == EXCHANGE_ONLINE_MAX
        folder = target.ensure_folder(("Flaggat",))
        client = target.client
        stored: list[tuple[Any, ...]] = []
        original = client.add_flags

        def add_flags(*args: Any, **kwargs: Any) -> Any:
            stored.append(args)
            return original(*args, **kwargs)

        client.add_flags = add_flags
        items = _items(3) + _items(5, frozenset({"\\Flagged"}))[3:]
        results = target.upload(folder, items)
        held = {m.target_id: m for m in target.existing(folder)}
    uids = sorted(int(r.target_id.partition(":")[2]) for r in results[3:] if r.target_id)
    assert stored == [(uids, [b"\\Flagged"])]  # one STORE for the batch, on the new UIDs
    assert all("\\Flagged" in held[r.target_id].flags for r in results[3:] if r.target_id)


@pytest.mark.parametrize(
    ("text", "failure", "wait"),
    [
        ("NO [TOOBIG] Message too large", Failure.TOO_LARGE, None),
        ("NO [LIMIT] Mail size is too large", Failure.TOO_LARGE, None),
        ("NO [OVERQUOTA] Quota exceeded (mailbox for user is full)", Failure.FATAL, None),
        ("BAD Request is throttled. Suggested Backoff Time: 201317 milliseconds", Failure.RETRY, 201.317),
        ("NO Server Busy. Please try again later", Failure.RETRY, 300.0),
        ("NO [UNAVAILABLE] Temporary failure", Failure.RETRY, None),
        ("NO [TRYCREATE] Mailbox doesn't exist: Nope", Failure.REJECTED, None),
        ("Can't save a zero byte message.", Failure.REJECTED, None),
    ],
)
def test_refusals_are_classified(text: str, failure: Failure, wait: float | None) -> None:
    assert classify(text) == (failure, wait)
